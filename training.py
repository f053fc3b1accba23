"""The training loop and what it keeps: counters, progress display, checkpoints, evaluations.

``dqn_atari.py`` builds the pieces from the command line and hands them to ``run_training``;
the end-to-end test hands it a tiny game instead of an Atari one.
"""
import collections
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from preprocessing import clip_reward


@dataclasses.dataclass(frozen=True)
class RunFiles:
    """The files of a run, named as the original tool named them (``/`` in an id becomes ``_``)."""

    log: Path
    weights: Path
    config: Path
    evaluations: Path
    checkpoints: Path
    best_weights: Path

    @classmethod
    def for_env(cls, out, env_id):
        stem = Path(out) / env_id.replace("/", "_")
        return cls(*(Path(f"{stem}_{name}") for name in
                     ("log.txt", "weights.h5", "config.json", "eval.txt", "checkpoints", "weights_best.h5")))


def run_training(config, env, agent, memory, files, *, game, checkpoints=None, progress=None,
                 evaluation=None):
    """The training loop: act, store, learn, log. Shared by the CLI and the end-to-end test.

    ``env`` is one game, or a list of copies of it played side by side (``--envs N``): each
    round the agent chooses an action for every copy in one forward pass, then the copies take
    their steps one after the other, each an agent step of its own (epsilon, learning, target
    syncs and evaluations count agent steps). ``memory`` is then a ``ReplayStreams`` with one
    stream per copy. ``progress`` continues a resumed run; ``checkpoints`` (a CheckpointStore)
    receives a checkpoint every ``config.checkpoint_every`` episodes (at the end of that round),
    on SIGINT/SIGTERM, and at the end; ``evaluation`` (a PeriodicEvaluation) runs every
    ``config.eval_every`` steps.
    """
    from common.runlog import RunLogWriter

    envs, streams = game_copies(env), memory_streams(memory)
    policy_epsilon = epsilon_policy(config)
    progress = progress or Progress.start(config, envs, streams)
    tally = progress.tally

    def count(finished_steps):
        for batch, learned in finished_steps:
            tally.add_learning(learned.loss, learned.mean_q)
            memory.update_priorities(batch.positions, learned.td_errors)

    def evaluate(step):
        count(learner.finish())
        finished = evaluation.run(step, agent, stop=lambda: stop.requested)
        progress.pending_evaluation = None if finished else step

    with RunLogWriter(files.log) as log, StatusLine(config.steps, progress.step) as status, \
            StopRequest() as stop, Learner(agent, threaded=config.learner == "thread") as learner:
        if evaluation and progress.pending_evaluation is not None:  # cut short by the stop that ended a sitting
            evaluate(progress.pending_evaluation)
        while progress.step < config.steps and not stop.requested:
            epsilon = policy_epsilon(progress.step)
            actions = agent.act_batch(progress.states, epsilon)
            checkpoint_due = False
            for index, (game_env, stream, action) in enumerate(zip(envs, streams, actions)):
                if progress.step >= config.steps:
                    break
                step = progress.step = progress.step + 1
                frame, reward, terminated, truncated, info = game_env.step(action)
                learning_terminal = terminated or (config.life_loss_signal and info.get("life_lost", False))
                learning_reward = reward + info.get("idle_penalty", 0.0)
                stream.add(action, learning_reward, frame, learning_terminal, truncated)
                progress.states[index] = progress.stacks[index].append(frame)
                tally.open_episodes[index].add_step(reward, learning_reward)
                if learning_due(config, step, progress.learning_starts, memory):
                    if memory.prioritized:  # the step in flight sets its priorities before the next draw
                        count(learner.finish())
                    count(learner.start(memory.sample(config.batch_size, config.importance_exponent)))
                # Whatever reads the online network waits for the step in flight.
                if step % config.target_update == 0:
                    count(learner.finish())
                    agent.sync_target()
                if evaluation and evaluation.due(step):
                    evaluate(step)
                if terminated or truncated:
                    count(learner.finish())  # each episode's row counts the gradient steps taken while it ran
                    record = tally.finish_episode(index, step, epsilon)
                    log.append(record)
                    status.episode_done(record, tally)
                    if record.episode % config.save_every == 0:
                        warn_on_failure(save_weights, files.weights, agent, game)
                    progress.new_episode(index, game_env, stream)
                    checkpoint_due |= record.episode % config.checkpoint_every == 0
                status.update(step, epsilon, tally)
            if checkpoints and checkpoint_due:
                count(learner.finish())  # a later copy of the round may have started one
                warn_on_failure(write_checkpoint, checkpoints, config, agent, memory, envs, progress, game)
        count(learner.finish())
        save_weights(files.weights, agent, game)
        if checkpoints:
            folder = write_checkpoint(checkpoints, config, agent, memory, envs, progress, game)
            if stop.requested:
                print(f"stopped at step {progress.step:,}; checkpoint {folder}; continue with --resume")
    return tally


def game_copies(env):
    """The game copies of a run as a list: ``env`` itself where it is one."""
    return list(env) if isinstance(env, (list, tuple)) else [env]


def memory_streams(memory):
    """The replay streams of a run, one per game copy: a ``ReplayStreams``'s, or ``[memory]``."""
    return getattr(memory, "streams", [memory])


class Learner:
    """Runs the agent's gradient steps: in a second thread (``--learner thread``, the default), so
    that the emulator, the replay memory and the action choice go on while the network learns, or
    in the loop's own thread (``--learner main``).

    ``start(batch)`` hands the actor the current weights (see ``DQNAgent``) and starts one step;
    ``finish()`` waits for the step in flight. Both return the steps that finished meanwhile, as
    (batch, ``Learned``) pairs. The batch is drawn in the loop's thread, the actor is only copied
    while no step is in flight, and the loop finishes the step before anything reads the online
    network, so both modes compute the same thing; the thread only changes when it is computed.
    """

    def __init__(self, agent, *, threaded):
        import concurrent.futures

        self.agent = agent
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="learner") if threaded else None
        self._in_flight = None  # (batch, Future)

    def start(self, batch):
        finished = self.finish()
        self.agent.sync_actor()
        if self._pool is None:
            return [*finished, (batch, self.agent.learn(batch))]
        self._in_flight = (batch, self._pool.submit(self.agent.learn, batch))
        return finished

    def finish(self):
        if self._in_flight is None:
            return []
        (batch, learned), self._in_flight = self._in_flight, None
        return [(batch, learned.result())]

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def warn_on_failure(save, *args):
    """A periodic save that fails (disk full, say) is reported and training goes on (returns False);
    the save at the end of the run reports the same failure as an error."""
    from common.errors import UserError

    try:
        save(*args)
    except UserError as error:
        print(f"warning: {error}", file=sys.stderr)
        return False
    return True


class Progress:
    """Where a run stands between two rounds of steps, beyond the networks and the replay memory:
    the step count, the counters, and each game copy's frame stack."""

    def __init__(self, step, tally, stacks, learning_starts):
        self.step, self.tally, self.stacks = step, tally, list(stacks)
        self.states = np.stack([stack.state for stack in self.stacks])
        self.learning_starts = learning_starts
        self.pending_evaluation = None  # the step of an evaluation a stop request cut short

    @classmethod
    def start(cls, config, envs, streams):
        from preprocessing import FrameStack

        progress = cls(0, RunTally(started=time.monotonic(), games=len(envs)),
                       [FrameStack() for _ in envs], config.pre_steps)
        for index, (env, stream) in enumerate(zip(envs, streams)):
            progress.new_episode(index, env, stream, seed=None if config.seed is None else config.seed + index)
        return progress

    def new_episode(self, index, env, stream, seed=None):
        frame, _ = env.reset(seed=seed)
        self.states[index] = self.stacks[index].reset(frame)
        stream.start_episode(frame)


class StopRequest:
    """Turns SIGINT (Ctrl-C) and SIGTERM into a flag the loop checks after each step."""

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                self._previous[name] = signal.signal(getattr(signal, name), self._request)
        return self

    def __exit__(self, *exc_info):
        import signal

        for name, handler in self._previous.items():
            signal.signal(getattr(signal, name), handler)

    def _request(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


def epsilon_policy(config):
    """epsilon as a function of the absolute step: the pre-fill phase first, then the linear schedule."""
    from agent import LinearSchedule

    schedule = LinearSchedule(config.epsilon_start, config.epsilon_end, config.epsilon_steps)
    prefill_epsilon = 0.0 if config.continue_from else 1.0

    def epsilon(step):
        return prefill_epsilon if step < config.pre_steps else schedule(step - config.pre_steps)

    return epsilon


def learning_due(config, step, learning_starts, memory):
    """Whether a gradient step is due after ``step``; the memory is measured only when one could be."""
    return step > learning_starts and step % config.train_every == 0 and len(memory) >= config.batch_size


class EpisodeTally:
    """Sums of one episode: raw score, clipped return, length, and learning statistics."""

    def __init__(self):
        self.score = 0.0
        self.clipped_return = 0.0
        self.length = 0
        self.losses = []
        self.q_values = []

    def add_step(self, reward, learning_reward):
        """``reward``: the raw game score; ``learning_reward``: what the memory stores before clipping."""
        self.score += reward
        self.clipped_return += clip_reward(learning_reward)
        self.length += 1

    def add_learning(self, loss, mean_q):
        self.losses.append(loss)
        self.q_values.append(mean_q)


class RunTally:
    """Counters of the whole run: episodes finished, recent scores, the episode in progress in
    each game copy."""

    def __init__(self, started, episodes=0, games=1):
        self.started = started
        self.episodes = episodes
        self.recent_scores = collections.deque(maxlen=100)
        self.open_episodes = [EpisodeTally() for _ in range(games)]

    def __setstate__(self, state):
        # Checkpoints written before --envs kept the one episode in progress as ``episode``.
        if "episode" in state:
            state["open_episodes"] = [state.pop("episode")]
        self.__dict__.update(state)

    def add_learning(self, loss, mean_q):
        """A gradient step, counted in every episode in progress."""
        for episode in self.open_episodes:
            episode.add_learning(loss, mean_q)

    def finish_episode(self, index, step, epsilon):
        """Closes the episode of game copy ``index``; returns its ``EpisodeRecord``."""
        from common.runlog import EpisodeRecord

        done, self.open_episodes[index] = self.open_episodes[index], EpisodeTally()
        self.episodes += 1
        self.recent_scores.append(done.score)
        return EpisodeRecord(
            step=step, episode=self.episodes, score=done.score, clipped_return=done.clipped_return,
            length=done.length, epsilon=round(epsilon, 6), wall_time=round(time.monotonic() - self.started, 3),
            loss=_mean_or_none(done.losses), mean_q=_mean_or_none(done.q_values))

    @property
    def mean_recent_score(self):
        return sum(self.recent_scores) / len(self.recent_scores) if self.recent_scores else float("nan")


def _mean_or_none(values):
    return sum(values) / len(values) if values else None


class StatusLine:
    """A progress bar on a terminal (tqdm) and one printed line per finished episode."""

    def __init__(self, total_steps, first_step=0):
        from tqdm import tqdm

        self.bar = tqdm(total=total_steps, initial=first_step, unit="step", dynamic_ncols=True,
                        disable=None, file=sys.stderr)
        self.last_step = first_step
        self.last_time = time.monotonic()
        self.steps_per_second = 0.0

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.bar.close()

    def update(self, step, epsilon, tally):
        self.bar.update(step - self.bar.n)
        now = time.monotonic()
        if now - self.last_time >= 2.0:
            self.steps_per_second = (step - self.last_step) / (now - self.last_time)
            self.last_step, self.last_time = step, now
            self.bar.set_postfix(eps=f"{epsilon:.3f}", mean100=f"{tally.mean_recent_score:.1f}",
                                 sps=f"{self.steps_per_second:.0f}", refresh=False)

    def episode_done(self, record, tally):
        loss = "-" if record.loss is None else f"{record.loss:.4f}"
        self.bar.write(f"episode {record.episode:5d}  step {record.step:10,d}  score {record.score:6.1f}  "
                       f"mean100 {tally.mean_recent_score:6.1f}  eps {record.epsilon:.3f}  "
                       f"sps {self.steps_per_second:5.0f}  loss {loss}", file=sys.stdout)


class _EvaluationStopped(Exception):
    """Raised between the games of a periodic evaluation when the run is asked to stop."""


class PeriodicEvaluation:
    """``--eval-every``: a short protocol evaluation every N steps, appended to ``<env>_eval.txt``.

    The weights that scored the best mean so far (over the whole evaluation log, so a resumed run
    competes with its past) are kept in ``<env>_weights_best.h5``: the agent at the
    end of a run is not always its best one.
    """

    def __init__(self, config, files, env, game):
        self.every = config.eval_every
        self.seed = config.seed
        self.path = files.evaluations
        self.best_weights = files.best_weights
        self.env = env
        self.game = game

    def due(self, step):
        return step % self.every == 0

    def run(self, step, agent, stop=None):
        """Evaluates ``agent`` for ``step``; returns False, logging nothing, if ``stop()`` turned true
        before its last game (Ctrl-C or SIGTERM: the run then stops without waiting for the rest,
        and a resumed run plays this evaluation again first)."""
        import evaluation

        games = evaluation.TRAINING_EVAL_EPISODES

        def stop_between_games(number, game):
            if stop is not None and number < games and stop():
                raise _EvaluationStopped(number)

        try:
            summary = evaluation.evaluate(self.env, evaluation.greedy_policy(agent), episodes=games,
                                          seed=self.seed, on_episode=stop_between_games)
        except _EvaluationStopped as stopped:
            print(f"evaluation at step {step:,} stopped after {stopped.args[0]} of {games} games; "
                  f"a resumed run plays it again")
            return False
        best_before = self._best_mean()
        message = f"evaluation at step {step:,}: {summary.describe()}"
        # The weights before the row: a kill between the two never leaves a logged best unsaved.
        if (best_before is None or summary.mean > best_before) and warn_on_failure(
                save_weights, self.best_weights, agent, self.game):
            message += f"; best so far, saved to {self.best_weights.name}"
        evaluation.log_evaluation(self.path, summary, step)
        print(message)
        return True

    def _best_mean(self):
        from common.runlog import read_eval_log

        if not self.path.exists() or self.path.stat().st_size == 0:
            return None
        records = read_eval_log(self.path, allow_no_rows=True)
        return max((record.mean_score for record in records), default=None)


def write_checkpoint(store, config, agent, memory, envs, progress, game):
    """Everything needed to continue exactly: networks, optimizer, memory, counters and RNGs."""
    import pickle
    import random

    from agent import save_weights as write_weights
    from common.atomic_file import atomic_path, write_bytes
    from preprocessing import env_snapshot

    def write_files(folder):
        write_weights(folder / "online.h5", agent.online, game=game)
        write_weights(folder / "target.h5", agent.target, game=game)
        write_weights(folder / "actor.h5", agent.actor, game=game)
        with atomic_path(folder / "optimizer.npz") as temp, open(temp, "wb") as f:
            np.savez(f, **{f"{i:04d}": _to_numpy(v) for i, v in enumerate(agent.optimizer.variables)})
        if config.save_memory:
            memory.save(folder / "memory.npz")
        write_bytes(folder / "progress.pkl", pickle.dumps({
            "step": progress.step, "tally": progress.tally, "stacks": progress.stacks,
            "elapsed": time.monotonic() - progress.tally.started,
            "learning_starts": progress.learning_starts, "pending_evaluation": progress.pending_evaluation,
            "envs": [env_snapshot(env) for env in envs], "agent_rng": agent.rng.bit_generator.state,
            "python_random": random.getstate(), "numpy_random": np.random.get_state()}))

    return store.save(progress.step, write_files, {
        "env_id": config.env_id, "game": game, "episodes": progress.tally.episodes,
        "config": dataclasses.asdict(config)})


def restore_checkpoint(folder, config, agent, memory, envs, game):
    """Loads a checkpoint written by ``write_checkpoint``; returns the run's Progress."""
    import pickle
    import random

    from agent import load_weights
    from checkpoint import CheckpointError
    from preprocessing import restore_env

    envs = game_copies(envs)
    load_weights(folder / "online.h5", agent.online, game=game)
    load_weights(folder / "target.h5", agent.target, game=game)
    if (folder / "actor.h5").exists():
        load_weights(folder / "actor.h5", agent.actor, game=game)
    else:  # a checkpoint from before the actor had its own network
        agent.sync_actor()
    try:
        with np.load(folder / "optimizer.npz") as saved:
            for variable, key in zip(agent.optimizer.variables, sorted(saved.files), strict=True):
                variable.assign(saved[key])
        data = pickle.loads((folder / "progress.pkl").read_bytes())
        # Checkpoints written before --envs held one game: "env" and "stack".
        snapshots, stacks = data.get("envs", [data.get("env")]), data.get("stacks", [data.get("stack")])
        if len(snapshots) != len(envs) or len(stacks) != len(envs):
            raise ValueError(f"it holds {len(snapshots)} game copies, this run plays {len(envs)}")
        for env, snapshot in zip(envs, snapshots):
            restore_env(env, snapshot)
        agent.rng.bit_generator.state = data["agent_rng"]
        random.setstate(data["python_random"])
        np.random.set_state(data["numpy_random"])
        tally = data["tally"]
        tally.started = time.monotonic() - data["elapsed"]
        progress = Progress(data["step"], tally, stacks, data["learning_starts"])
        progress.pending_evaluation = data.get("pending_evaluation")
    except Exception as error:  # a damaged or foreign pickle can fail in any way
        raise CheckpointError(f"checkpoint {folder} cannot be restored: "
                              f"{type(error).__name__}: {error}") from None
    if any(folder.glob("memory*.npz")):
        memory.load(folder / "memory.npz")
    else:
        # Saved without its memory: refill it for -pre steps before learning again.
        for stream, state in zip(memory_streams(memory), progress.states):
            stream.start_episode(state[..., -1])
        progress.learning_starts = progress.step + config.pre_steps
    return progress


def _to_numpy(variable):
    import keras

    return keras.ops.convert_to_numpy(variable.value)


def save_weights(path, agent, game):
    from agent import save_weights as write

    write(path, agent.online, game=game)
