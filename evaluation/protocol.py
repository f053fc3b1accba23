"""Judging a trained agent by the published protocol, and the files that keep the verdict.

The protocol is the one of Mnih et al. 2015 (Nature, Methods, "Evaluation procedure"): each of
30 games starts with up to 30 no-op frames, so the games differ; the agent acts epsilon-greedily
with epsilon 0.05, so it cannot replay one memorised sequence; a game lasts until game over
(losing a life does not end it) or 5 minutes of emulator time, 18,000 frames at 60 Hz. The
score is the raw game score, reported with its mean, standard deviation, minimum and maximum,
and human-normalised (``evaluation.scores``).
"""
import dataclasses
import json
import re
from pathlib import Path

import gymnasium as gym
import numpy as np

from common import atomic_file, runlog
from common.errors import UserError
from evaluation.scores import REFERENCE_SCORES, human_normalized, reference_source
from preprocessing import FrameStack, make_env, rom_name
from preprocessing.wrappers import FireReset

EPISODES = 30
EPSILON = 0.05
MAX_FRAMES = 18_000
NOOP_MAX = 30
TRAINING_EVAL_EPISODES = 10


@dataclasses.dataclass(frozen=True)
class Episode:
    """One evaluation game: its raw score, its length in raw frames, and whether a time cap ended it."""

    score: float
    frames: int
    truncated: bool


@dataclasses.dataclass(frozen=True)
class EvalSummary:
    """The games of one evaluation and the conditions they were played under.

    Attributes:
      game: ALE ROM name (``pong``), the key of ``REFERENCE_SCORES``.
      env_id: the registered id the games ran on (``Pong-v0``).
      games: one :class:`Episode` per game, in play order.
      epsilon, max_frames, noop_max: the protocol (``max_frames`` None: no cap).
      seed: the seed the evaluation started from; None if unseeded.
    """

    game: str
    env_id: str | None
    games: tuple
    epsilon: float
    max_frames: int | None
    noop_max: int
    seed: int | None = None

    @property
    def episodes(self):
        return len(self.games)

    @property
    def scores(self):
        """float64[episodes]: the raw score of each game."""
        return np.array([episode.score for episode in self.games], dtype=np.float64)

    @property
    def frames(self):
        return [episode.frames for episode in self.games]

    @property
    def mean(self):
        return float(np.mean(self.scores))

    @property
    def std(self):
        """Standard deviation over the games (population form, ``ddof=0``)."""
        return float(np.std(self.scores))

    @property
    def min(self):
        return float(np.min(self.scores))

    @property
    def max(self):
        return float(np.max(self.scores))

    @property
    def human_normalized(self):
        """The mean score human-normalised (see :func:`human_normalized`); None without references."""
        return human_normalized(self.game, self.mean)

    def as_record(self, step):
        """The evaluation log's row for training step ``step``."""
        return runlog.EvalRecord(step, self.episodes, self.mean, self.std, self.min, self.max,
                                 self.human_normalized)

    def to_dict(self):
        """Plain JSON-ready data: statistics, the reference they are normalised by, protocol, games."""
        reference = None
        if self.game in REFERENCE_SCORES:
            random_score, human_score = REFERENCE_SCORES[self.game]
            reference = {"random": random_score, "human": human_score, "source": reference_source(self.game)}
        return {
            "game": self.game,
            "env_id": self.env_id,
            "episodes": self.episodes,
            "mean_score": self.mean,
            "std_score": self.std,
            "min_score": self.min,
            "max_score": self.max,
            "human_normalized": self.human_normalized,
            "reference": reference,
            "protocol": {"epsilon": self.epsilon, "max_frames": self.max_frames,
                         "noop_max": self.noop_max, "seed": self.seed},
            "games": [dataclasses.asdict(episode) for episode in self.games],
        }

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def describe(self):
        """One line for people: ``30 games: 20.3 ± 0.9 (min 18, max 21), human-normalised 1.37 (137%)``."""
        line = (f"{self.episodes} game{'s' * (self.episodes != 1)}: {self.mean:.1f} ± {self.std:.1f} "
                f"(min {_score(self.min)}, max {_score(self.max)}), ")
        normalized = self.human_normalized
        if normalized is None:
            line += f"no human reference for {self.game}"
        else:
            line += f"human-normalised {normalized:.2f} ({100 * normalized:.0f}% of human)"
        capped = sum(episode.truncated for episode in self.games)
        if capped:
            line += f"; {capped} stopped by the time cap"
        return line


def make_eval_env(env_id, seed=None, *, render_mode=None, **options):
    """The environment of the protocol: ``preprocessing.make_env`` with up to 30 no-op frames.

    Everything else is as in training (action repeat, FIRE after reset, the id's own sticky
    actions), so the agent meets the game it learned; life losses are not flagged, since a game
    ends only at game over. ``render_mode="human"`` opens the game window; ``options`` go to
    ``make_env``.
    """
    return make_env(env_id, seed, noop_max=NOOP_MAX, life_loss_signal=False, idle_penalty=False,
                    render_mode=render_mode, **options)


def greedy_policy(agent):
    """``policy(state uint8[84,84,4]) -> int``: the action of highest Q-value by the agent's online
    network as it is now, computed as the agent acts while training (``agent.frozen_q_function``:
    float32 even where the network trains in mixed precision).

    It leaves the agent's own random generator and its actor alone, so evaluating during training
    does not change what training does next.
    """
    q_values = agent.frozen_q_function()
    return lambda state: int(np.argmax(q_values(state[None])[0]))


def evaluate(env, policy, *, episodes=EPISODES, epsilon=EPSILON, max_frames=MAX_FRAMES, seed=None,
             recorder=None, on_episode=None):
    """Plays ``episodes`` games of ``env`` and returns their :class:`EvalSummary`.

    Args:
      env: an env from :func:`make_eval_env` (or ``preprocessing.make_env``): frames uint8[84,84],
        raw rewards, ``terminated`` at game over, ``info["episode_frame_number"]`` in raw frames.
      policy: ``policy(state uint8[84,84,4]) -> int``, the greedy action (see
        :func:`greedy_policy`). It is called only on the decisions that do not explore.
      epsilon: each decision is uniformly random with this probability, drawn from the
        evaluation's own generator.
      max_frames: no decision starts unless the game stays within this many raw frames even if
        the decision is the longest one possible (a lost life followed by FIRE takes two action
        repeats); None for no cap. A game is also over when the env truncates it.
      seed: resets the env with it before the first game and seeds the exploration, so the
        evaluation replays exactly; None continues the env's own sequence.
      recorder: a :class:`VideoRecorder` that receives the native screen of the first game,
        after the reset and after every decision.
      on_episode: ``on_episode(number, episode)`` after each game (1-based number), e.g. to print it.
    """
    _check_protocol(episodes, epsilon, max_frames)
    act = _epsilon_greedy(policy, epsilon, int(env.action_space.n), np.random.default_rng(seed))
    longest_step = _longest_step_frames(env)
    games = []
    for number in range(1, episodes + 1):
        frame, info = env.reset(seed=seed) if number == 1 and seed is not None else env.reset()
        record = _screen_recorder(env, recorder if number == 1 else None)
        episode = _play_game(env, act, frame, info, max_frames, longest_step, record)
        games.append(episode)
        if on_episode is not None:
            on_episode(number, episode)
    return EvalSummary(rom_name(env), env.spec.id if env.spec else None, tuple(games), float(epsilon),
                       max_frames, _wrapper_attribute(env, "noop_max", 0), seed)


def _play_game(env, act, frame, info, max_frames, longest_step, record):
    """One game from its first frame to game over, env truncation or the frame cap."""
    stack = FrameStack()
    state, score = stack.reset(frame), 0.0
    record()
    while max_frames is None or info["episode_frame_number"] + longest_step <= max_frames:
        frame, reward, terminated, truncated, info = env.step(act(state))
        score += float(reward)
        record()
        if terminated or truncated:
            return Episode(score, int(info["episode_frame_number"]), bool(truncated and not terminated))
        state = stack.append(frame)
    return Episode(score, int(info["episode_frame_number"]), True)


def _epsilon_greedy(policy, epsilon, num_actions, rng):
    """``act(state) -> int``: uniformly random with probability ``epsilon`` (from ``rng``), else ``policy``."""

    def act(state):
        if rng.random() < epsilon:
            return int(rng.integers(num_actions))
        return int(policy(state))

    return act


def _check_protocol(episodes, epsilon, max_frames):
    if not (isinstance(episodes, int) and episodes >= 1):
        raise UserError(f"the number of evaluation games must be a whole number >= 1, got {episodes!r}")
    if not 0.0 <= epsilon <= 1.0:
        raise UserError(f"the evaluation epsilon must be in [0, 1], got {epsilon!r}")
    if max_frames is not None and not (isinstance(max_frames, int) and max_frames >= 1):
        raise UserError(f"the frame cap must be a whole number >= 1, got {max_frames!r}")


def _longest_step_frames(env):
    """Raw frames one ``step()`` can take: one action repeat, two where FIRE follows a lost life."""
    frames_per_action = _wrapper_attribute(env, "frames_per_action", 1)
    fire_after_life_loss = any(isinstance(layer, FireReset) and layer.after_life_loss for layer in _layers(env))
    return frames_per_action * (2 if fire_after_life_loss else 1)


def _layers(env):
    while isinstance(env, gym.Wrapper):
        yield env
        env = env.env
    yield env


def _wrapper_attribute(env, name, default):
    try:
        return env.get_wrapper_attr(name)
    except AttributeError:
        return default


def _screen_recorder(env, recorder):
    """``record()``: hands the env's native RGB screen to ``recorder``; does nothing without one."""
    if recorder is None:
        return lambda: None
    return lambda: recorder.add(native_screen(env))


def native_screen(env):
    """The emulator's screen, ``uint8[210,160,3]``, whatever the env's render mode."""
    return env.unwrapped.ale.getScreenRGB()


def _score(value):
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


# ---------------------------------------------------------------------------------------------
# Files: the JSON summary and the evaluation log


def summary_path(weights):
    """Where the summary of a new evaluation of ``weights`` goes: ``Pong-v0_weights.h5`` ->
    ``Pong-v0_weights_eval.json``, beside earlier ones ``Pong-v0_weights_eval-2.json``, -3, ...
    (one more than the highest): an evaluation never replaces another, as another seed or number
    of games gives another result."""
    weights = Path(weights)
    number = 1
    for path in weights.parent.glob("*.json"):
        found = _summary_number(weights, path)
        if found:
            number = max(number, found + 1)
    return _summary_name(weights, number)


def _summary_name(weights, number):
    return weights.with_name(f"{weights.stem}_eval{'' if number == 1 else f'-{number}'}.json")


def _summary_number(weights, path):
    """1 for ``<stem>_eval.json``, N for ``<stem>_eval-N.json``; None for another name."""
    match = re.fullmatch(re.escape(f"{weights.stem}_eval") + r"(?:-(\d+))?\.json", path.name)
    return int(match[1] or 1) if match else None


def write_new_summary(weights, summary):
    """Writes ``summary`` of ``weights`` to a new :func:`summary_path` and returns that path; an
    evaluation that finished at the same moment cannot take the same name."""
    path = summary_path(weights)
    while True:
        try:
            write_summary(path, summary, weights=weights, replace=False)
            return path
        except FileExistsError:
            later = summary_path(weights)  # another evaluation took that name: the next one
            # The same name again: a file the name search does not see holds it (a case-insensitive disk).
            path = later if later != path else _summary_name(Path(weights), _summary_number(Path(weights), path) + 1)


def write_summary(path, summary, *, weights=None, replace=True):
    """Atomically writes ``summary`` as JSON to ``path``, naming the ``weights`` file it judged;
    ``replace=False`` raises FileExistsError rather than replace a file there."""
    data = summary.to_dict()
    if weights is not None:
        data = {"weights": str(weights), **data}
    try:
        atomic_file.write_text(path, json.dumps(data, indent=2) + "\n", replace=replace)
    except FileExistsError:
        raise
    except OSError as error:
        raise UserError(f"cannot write the evaluation summary {path}: {error.strerror or error}") from None


def log_evaluation(path, summary, step):
    """Appends ``summary`` as the row for training step ``step`` to the evaluation log at ``path``."""
    with runlog.EvalLogWriter(path) as log:
        log.append(summary.as_record(step))

