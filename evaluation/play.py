"""``--play`` and ``--eval``: trained weights playing their game, watched, filmed or judged."""
import contextlib
import dataclasses
import sys
from pathlib import Path

from common.errors import UserError
from common.native_stderr import native_stderr_silenced
from evaluation.protocol import evaluate, greedy_policy, make_eval_env, write_new_summary
from evaluation.video import VideoRecorder, video_format
from preprocessing import rom_name
from training.build import PROG, make_agent, setup_backend, window_available
from training.checkpoints import MANIFEST
from training.config import head_settings, with_drawn_seed, with_resolved_precision
from training.runs import ensure_writable_folder

# --play explores as the presets' training ends (rl-baselines3-zoo plays Atari the same way): a
# greedy Breakout agent can wait without serving until the game's 108,000-frame limit, half an
# hour in the window.
PLAY_EPSILON = 0.01


def play(config, weights, *, games, protocol, record=None):
    """Plays ``games`` games with ``weights``, printing each score; returns the EvalSummary.

    ``protocol=True`` is ``--eval``: the published evaluation (no-op starts, epsilon 0.05, at most
    18,000 frames a game) with a JSON summary beside the weights. Otherwise it is ``--play``:
    epsilon ``PLAY_EPSILON`` and no cap but the game's own.
    """
    if not Path(weights).is_file():
        raise UserError(f"weights file not found: {weights}")
    if record:
        video_format(record)
    if protocol:  # refused now rather than after the games
        ensure_writable_folder(Path(weights).parent, "the weights' folder (for the evaluation summary)")
        if (Path(weights).parent / MANIFEST).is_file():
            print(f"{PROG}: warning: {weights} is in a checkpoint folder, which its run deletes once it has "
                  f"newer ones, and its evaluation summary with it: copy the weights out to keep both",
                  file=sys.stderr)
    config = with_resolved_precision(with_drawn_seed(config))
    setup_backend(config)
    from agent import load_weights, read_head

    config = dataclasses.replace(config, **head_settings(read_head(weights)))  # the network the file holds
    render_mode = "human" if config.render and window_available(suggest_record=True) else None
    rules = {} if protocol else {"epsilon": PLAY_EPSILON, "max_frames": None}
    with contextlib.ExitStack() as stack:
        with native_stderr_silenced():
            env = make_eval_env(config.env_id, seed=config.seed, render_mode=render_mode)
        stack.callback(env.close)
        agent = make_agent(config, env.action_space.n)
        load_weights(weights, agent.online, game=rom_name(env))
        recorder = stack.enter_context(VideoRecorder(record)) if record else None
        summary = evaluate(
            env, greedy_policy(agent), episodes=games, seed=config.seed, recorder=recorder,
            on_episode=lambda number, game: print(f"game {number}: score {game.score:g} ({game.frames:,} frames)"),
            **rules)
    print(summary.describe())
    if record:
        print(f"video of game 1: {record}")
    if protocol:
        print(f"summary: {write_new_summary(weights, summary)}")
    return summary
