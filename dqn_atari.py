#!/usr/bin/env python3
"""Train a Keras Deep-Q-Network (Nature DQN + Double DQN) to play an Atari game from pixels.

    python3 dqn_atari.py -env Breakout-v0
    python3 dqn_atari.py -env Breakout-v0 --continue Breakout-v0_weights.h5 --start 0.1 --end 0.0 -pre 300000
    python3 dqn_atari.py -env Pong-v0 --play Pong-v0_weights.h5 -r
"""
import argparse
import collections
import contextlib
import dataclasses
import json
import os
import secrets
import sys
import time
from pathlib import Path

from errors import UserError

PROG = "dqn_atari.py"
EVAL_GAMES = 30


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything a run depends on; saved as ``<env>_config.json`` beside the log.

    Defaults follow CleanRL's ``dqn_atari.py`` (Huang et al. 2022), itself the Nature DQN recipe
    (Mnih et al. 2015) with Adam: see the README for the table and sources.
    """

    env_id: str = "Pong-v0"
    steps: int = 10_000_000
    pre_steps: int = 80_000
    epsilon_start: float = 1.0
    epsilon_end: float = 0.01
    epsilon_steps: int = 1_000_000
    memory_size: int = 1_000_000
    memory_compression: str = "zstd"
    batch_size: int = 32
    gamma: float = 0.99
    learning_rate: float = 1e-4
    optimizer: str = "adam"
    loss: str = "huber"
    clip_norm: float | None = None
    target_update: int = 1_000
    train_every: int = 4
    save_every: int = 10
    seed: int | None = None
    threads: int = 0
    precision: str = "float32"
    continue_from: str | None = None
    render: bool = False
    out: str = "."
    life_loss_signal: bool = True
    idle_penalty: bool = False
    checkpoint_every: int = 50
    keep_checkpoints: int = 2
    save_memory: bool = True
    eval_every: int = 0


def build_parser():
    parser = _OneLineErrorParser(
        prog=PROG, allow_abbrev=False,
        description="Train a Deep-Q-Network on an Atari game, or play/evaluate trained weights.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d = Config()
    seed_flags = parser.add_argument_group("the original command line")
    seed_flags.add_argument("-env", "--env", dest="env_id", default=d.env_id,
                            help="game id: Pong-v0, Breakout-v0, ALE/Pong-v5, PongNoFrameskip-v4 or a bare Pong")
    seed_flags.add_argument("-r", "--render", action="store_true", help="show the game while it runs")
    seed_flags.add_argument("--continue", dest="continue_from", metavar="WEIGHTS",
                            help="start from these weights (loaded into the online and the target network)")
    seed_flags.add_argument("--start", dest="epsilon_start", type=_probability, default=d.epsilon_start,
                            help="epsilon (probability of a random action) when it starts to fall")
    seed_flags.add_argument("--end", dest="epsilon_end", type=_probability, default=d.epsilon_end,
                            help="epsilon after --epsilon-steps")
    seed_flags.add_argument("-pre", "--pre", dest="pre_steps", type=_count, default=d.pre_steps,
                            help="steps that fill the replay memory before learning starts and epsilon "
                                 "falls; played randomly, or greedily by the loaded agent with --continue")
    run = parser.add_argument_group("training")
    run.add_argument("--steps", type=_positive, default=d.steps, help="total agent steps (each = 4 frames)")
    run.add_argument("--epsilon-steps", type=_count, default=d.epsilon_steps,
                     help="agent steps over which epsilon moves linearly from --start to --end")
    run.add_argument("--memory-size", type=_positive, default=d.memory_size, help="replay memory capacity (transitions)")
    run.add_argument("--memory-compression", choices=("zstd", "lz4", "none"), default=d.memory_compression,
                     help="how replay frames are stored")
    run.add_argument("--batch-size", type=_positive, default=d.batch_size, help="transitions per gradient step")
    run.add_argument("--gamma", type=_probability, default=d.gamma, help="discount factor")
    run.add_argument("--lr", dest="learning_rate", type=_learning_rate, default=d.learning_rate, help="learning rate")
    run.add_argument("--optimizer", choices=("adam", "rmsprop"), default=d.optimizer,
                     help="rmsprop with --lr 0.00025 is the Nature paper's")
    run.add_argument("--loss", choices=("huber", "logcosh", "mse"), default=d.loss, help="TD loss")
    run.add_argument("--clip-norm", type=_positive_float, default=None, help="clip gradients to this global norm")
    run.add_argument("--target-update", type=_positive, default=d.target_update,
                     help="agent steps between copies of the online network into the target network")
    run.add_argument("--train-every", type=_positive, default=d.train_every, help="agent steps per gradient step")
    run.add_argument("--save-every", type=_positive, default=d.save_every, help="episodes between weight saves")
    run.add_argument("--seed", type=_count, default=None, help="random seed (default: drawn and saved in the config)")
    run.add_argument("--threads", type=_count, default=d.threads, help="CPU threads for the network (0: all cores)")
    run.add_argument("--precision", choices=("float32", "bfloat16"), default=d.precision,
                     help="bfloat16 runs the network in mixed precision (CPUs with AMX/AVX512-BF16, recent GPUs)")
    run.add_argument("--no-life-loss-signal", dest="life_loss_signal", action="store_false",
                     help="do not treat a lost life as a terminal for learning")
    run.add_argument("--idle-penalty", action="store_true",
                     help="reward -1 after 30 decisions without moving at the start of a round (learning only)")
    run.add_argument("--out", default=d.out, help="folder for the log, weights and configuration")
    safety = parser.add_argument_group("checkpoints and resuming")
    safety.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its newest complete checkpoint "
                             "(steps, epsilon, memory, optimizer, log); --steps may be raised")
    safety.add_argument("--checkpoint-every", type=_positive, default=d.checkpoint_every,
                        help="episodes between full checkpoints (also taken on Ctrl-C/SIGTERM and at the end)")
    safety.add_argument("--keep-checkpoints", type=_positive, default=d.keep_checkpoints,
                        help="complete checkpoints kept")
    safety.add_argument("--no-save-memory", dest="save_memory", action="store_false",
                        help="leave the replay memory out of checkpoints (a resumed run refills it)")
    play = parser.add_argument_group("playing and evaluating")
    play.add_argument("--play", metavar="WEIGHTS", help="play greedily with these weights and print each score")
    play.add_argument("--eval", metavar="WEIGHTS",
                      help="evaluate with the published protocol (up to 30 no-ops, epsilon 0.05, at most "
                           "18,000 frames a game): mean ± std, min, max, human-normalised score, JSON summary")
    play.add_argument("--games", type=_positive, default=None,
                      help=f"games to play (default: 1 with --play, {EVAL_GAMES} with --eval)")
    play.add_argument("--record", metavar="FILE",
                      help="with --play/--eval: write a video of the first game (.mp4 or .gif)")
    play.add_argument("--eval-every", type=_count, default=d.eval_every,
                      help="while training: evaluate 10 games every this many steps into <env>_eval.txt (0: never)")
    return parser


def config_from_args(args):
    fields = {f.name for f in dataclasses.fields(Config)}
    return Config(**{key: value for key, value in vars(args).items() if key in fields})


def explicit_fields(parser, args):
    """The configuration fields the command line set to something other than their default."""
    return {key for key, value in vars(args).items() if value != parser.get_default(key)}


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.play or args.eval:
            games = args.games or (EVAL_GAMES if args.eval else 1)
            play(config_from_args(args), args.eval or args.play, games=games, protocol=bool(args.eval),
                 record=args.record)
            return 0
        if args.resume:
            resume(config_from_args(args), explicit_fields(parser, args))
        else:
            train(config_from_args(args))
        return 0
    except UserError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


# ---------------------------------------------------------------------------------------------
# Training


@dataclasses.dataclass(frozen=True)
class RunFiles:
    """The files of a run, named as the original tool named them (``/`` in an id becomes ``_``)."""

    log: Path
    weights: Path
    config: Path

    @classmethod
    def for_env(cls, out, env_id):
        stem = Path(out) / env_id.replace("/", "_")
        return cls(Path(f"{stem}_log.txt"), Path(f"{stem}_weights.h5"), Path(f"{stem}_config.json"))


def train(config):
    """Builds the pieces for ``config`` and trains; returns the finished run's counters."""
    validate(config)
    config = dataclasses.replace(config, seed=secrets.randbits(31) if config.seed is None else config.seed)
    files = RunFiles.for_env(ensure_writable_folder(config.out), config.env_id)
    store = checkpoint_store(config)
    if store.latest() is not None:
        raise UserError(f"{store.folder} holds checkpoints of an earlier run: continue it with --resume, "
                        f"or move that folder away, or choose another --out")
    setup_backend(config)
    env, game = open_env(config, render=config.render)
    agent = make_agent(config, env.action_space.n)
    if config.continue_from:
        load_into_both_networks(agent, config.continue_from, game)
    memory = make_memory(config)
    save_config(files.config, config)
    print(f"training {config.env_id} ({env.action_space.n} actions) for {config.steps:,} steps; "
          f"log {files.log}, weights {files.weights}")
    return run_training(config, env, agent, memory, files, game=game, checkpoints=store)


# Settings a resumed run may change; any other flag must match the checkpoint's configuration.
RESUMABLE_OVERRIDES = {"steps", "render", "threads", "out", "save_every", "checkpoint_every",
                       "keep_checkpoints", "save_memory"}


def resume(cli_config, explicit):
    """Continues the run in ``--out`` from its newest complete checkpoint."""
    from checkpoint import read_manifest
    from runlog import truncate_after_step

    files = RunFiles.for_env(ensure_writable_folder(cli_config.out), cli_config.env_id)
    store = checkpoint_store(cli_config)
    store.remove_partial()
    folder = store.latest()
    if folder is None:
        raise UserError(f"no complete checkpoint of {cli_config.env_id} in {store.folder}")
    manifest = read_manifest(folder)
    config = resumed_config(manifest, cli_config, explicit, folder)
    validate(config)
    setup_backend(config)
    env, game = open_env(config, render=config.render)
    agent = make_agent(config, env.action_space.n)
    memory = make_memory(config)
    progress = restore_checkpoint(folder, config, agent, memory, env, game)
    dropped = truncate_after_step(files.log, progress.step) if files.log.exists() else 0
    save_config(files.config, config)
    print(f"resuming {config.env_id} from {folder.name}: step {progress.step:,}, "
          f"episode {progress.tally.episodes}" + (f"; dropped {dropped} log rows after it" if dropped else ""))
    return run_training(config, env, agent, memory, files, game=game, checkpoints=store, progress=progress)


def resumed_config(manifest, cli_config, explicit, folder):
    """The checkpoint's configuration with the overrides the command line may make."""
    saved = manifest.get("config", {})
    if saved.get("env_id") != cli_config.env_id:
        raise UserError(f"checkpoint {folder} belongs to {saved.get('env_id')}, not {cli_config.env_id}")
    for key in sorted(explicit - RESUMABLE_OVERRIDES - {"resume"}):
        if key in saved and saved[key] != getattr(cli_config, key):
            raise UserError(f"checkpoint {folder} was made with {key}={saved[key]!r}, but this command "
                            f"asks for {getattr(cli_config, key)!r}; only {', '.join(sorted(RESUMABLE_OVERRIDES))} may change")
    known = {f.name for f in dataclasses.fields(Config)}
    overrides = {key: getattr(cli_config, key) for key in RESUMABLE_OVERRIDES & explicit | {"out"}}
    return dataclasses.replace(Config(**{k: v for k, v in saved.items() if k in known}), **overrides)


def checkpoint_store(config):
    from checkpoint import CheckpointStore

    return CheckpointStore(Path(config.out) / f"{config.env_id.replace('/', '_')}_checkpoints",
                           keep=config.keep_checkpoints)


def write_checkpoint(store, config, agent, memory, env, progress, game):
    """Everything needed to continue exactly: networks, optimizer, memory, counters and RNGs."""
    import pickle
    import random

    import numpy as np

    from agent import save_weights as write_weights
    from atomic_file import atomic_path, write_bytes
    from preprocessing import env_snapshot

    def write_files(folder):
        write_weights(folder / "online.h5", agent.online, game=game)
        write_weights(folder / "target.h5", agent.target, game=game)
        with atomic_path(folder / "optimizer.npz") as temp, open(temp, "wb") as f:
            np.savez(f, **{f"{i:04d}": _to_numpy(v) for i, v in enumerate(agent.optimizer.variables)})
        if config.save_memory:
            memory.save(folder / "memory.npz")
        write_bytes(folder / "progress.pkl", pickle.dumps({
            "step": progress.step, "tally": progress.tally, "stack": progress.stack,
            "state": progress.state, "elapsed": time.monotonic() - progress.tally.started,
            "env": env_snapshot(env), "agent_rng": agent.rng.bit_generator.state,
            "python_random": random.getstate(), "numpy_random": np.random.get_state()}))

    return store.save(progress.step, write_files, {
        "env_id": config.env_id, "game": game, "episodes": progress.tally.episodes,
        "config": dataclasses.asdict(config)})


def restore_checkpoint(folder, config, agent, memory, env, game):
    """Loads a checkpoint written by ``write_checkpoint``; returns the run's Progress."""
    import pickle
    import random

    import numpy as np

    from agent import load_weights
    from checkpoint import CheckpointError
    from preprocessing import restore_env

    load_weights(folder / "online.h5", agent.online, game=game)
    load_weights(folder / "target.h5", agent.target, game=game)
    try:
        with np.load(folder / "optimizer.npz") as saved:
            for variable, key in zip(agent.optimizer.variables, sorted(saved.files), strict=True):
                variable.assign(saved[key])
        data = pickle.loads((folder / "progress.pkl").read_bytes())
        restore_env(env, data["env"])
    except (OSError, ValueError, KeyError, pickle.UnpicklingError, EOFError) as error:
        raise CheckpointError(f"checkpoint {folder} cannot be restored: {error}") from None
    agent.rng.bit_generator.state = data["agent_rng"]
    random.setstate(data["python_random"])
    np.random.set_state(data["numpy_random"])
    tally = data["tally"]
    tally.started = time.monotonic() - data["elapsed"]
    progress = Progress(data["step"], tally, data["stack"], data["state"])
    if (folder / "memory.npz").exists():
        memory.load(folder / "memory.npz")
    else:
        memory.start_episode(progress.state[..., -1])
    return progress


def _to_numpy(variable):
    import keras

    return keras.ops.convert_to_numpy(variable.value)


def run_training(config, env, agent, memory, files, *, game, checkpoints=None, progress=None):
    """The training loop: act, store, learn, log. Shared by the CLI and the end-to-end test.

    ``progress`` continues a resumed run; ``checkpoints`` (a CheckpointStore) receives a
    checkpoint every ``config.checkpoint_every`` episodes, on SIGINT/SIGTERM, and at the end.
    """
    from runlog import RunLogWriter

    policy_epsilon = epsilon_policy(config)
    evaluation = PeriodicEvaluation(config, files) if config.eval_every else None
    progress = progress or Progress.start(config, env, memory)
    tally = progress.tally
    with RunLogWriter(files.log) as log, StatusLine(config.steps, progress.step) as status, \
            StopRequest() as stop:
        while progress.step < config.steps and not stop.requested:
            step = progress.step = progress.step + 1
            epsilon = policy_epsilon(step - 1)
            action = agent.act(progress.state, epsilon)
            frame, reward, terminated, truncated, info = env.step(action)
            learning_terminal = terminated or (config.life_loss_signal and info.get("life_lost", False))
            memory.add(action, reward + info.get("idle_penalty", 0.0), frame, learning_terminal, truncated)
            progress.state = progress.stack.append(frame)
            tally.episode.add_step(reward)
            if learning_due(config, step, len(memory)):
                tally.episode.add_learning(*agent.train_step(memory.sample(config.batch_size)))
            if step % config.target_update == 0:
                agent.sync_target()
            if evaluation:
                evaluation.maybe_run(step, agent)
            if terminated or truncated:
                record = tally.finish_episode(step, epsilon)
                log.append(record)
                status.episode_done(record, tally)
                if record.episode % config.save_every == 0:
                    save_weights(files.weights, agent, game)
                progress.new_episode(env, memory)
                if checkpoints and record.episode % config.checkpoint_every == 0:
                    write_checkpoint(checkpoints, config, agent, memory, env, progress, game)
            status.update(step, epsilon, tally)
    save_weights(files.weights, agent, game)
    if checkpoints:
        folder = write_checkpoint(checkpoints, config, agent, memory, env, progress, game)
        if stop.requested:
            print(f"stopped at step {progress.step:,}; checkpoint {folder}; continue with --resume")
    return tally


class Progress:
    """Where a run stands between two steps, beyond the networks and the replay memory."""

    def __init__(self, step, tally, stack, state):
        self.step, self.tally, self.stack, self.state = step, tally, stack, state

    @classmethod
    def start(cls, config, env, memory):
        from preprocessing import FrameStack

        progress = cls(0, RunTally(started=time.monotonic()), FrameStack(), None)
        progress.new_episode(env, memory, seed=config.seed)
        return progress

    def new_episode(self, env, memory, seed=None):
        frame, _ = env.reset(seed=seed)
        self.state = self.stack.reset(frame)
        memory.start_episode(frame)


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


def learning_due(config, step, memory_length):
    return step > config.pre_steps and step % config.train_every == 0 and memory_length >= config.batch_size


class EpisodeTally:
    """Sums of one episode: raw score, clipped return, length, and learning statistics."""

    def __init__(self):
        self.score = 0.0
        self.clipped_return = 0.0
        self.length = 0
        self.losses = []
        self.q_values = []

    def add_step(self, reward):
        self.score += reward
        self.clipped_return += max(-1.0, min(1.0, reward))
        self.length += 1

    def add_learning(self, loss, mean_q):
        self.losses.append(loss)
        self.q_values.append(mean_q)


class RunTally:
    """Counters of the whole run: episodes finished, recent scores, the episode in progress."""

    def __init__(self, started, episodes=0):
        self.started = started
        self.episodes = episodes
        self.recent_scores = collections.deque(maxlen=100)
        self.episode = EpisodeTally()

    def finish_episode(self, step, epsilon):
        from runlog import EpisodeRecord

        done, self.episode = self.episode, EpisodeTally()
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


# ---------------------------------------------------------------------------------------------
# Building the pieces


def validate(config):
    """Refuses numbers that cannot make a run, with one line naming the flag."""
    if config.memory_size < config.batch_size:
        raise UserError(f"--memory-size {config.memory_size} is smaller than --batch-size {config.batch_size}")
    if config.batch_size > 4096:
        raise UserError(f"--batch-size {config.batch_size} is absurdly large (at most 4096)")
    if config.continue_from and not Path(config.continue_from).is_file():
        raise UserError(f"weights file not found: {config.continue_from}")
    from memory import ReplayMemory

    ReplayMemory.ensure_fits(config.memory_size, config.memory_compression)


def ensure_writable_folder(folder):
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise UserError(f"cannot write to --out folder {folder}: {error.strerror or error}") from None
    return folder


@contextlib.contextmanager
def native_stderr_silenced():
    """Hides what C++ libraries print straight to file descriptor 2 (TensorFlow's oneDNN and CUDA
    probes, the ALE's banner), which no Python logging setting reaches. TF_CPP_MIN_LOG_LEVEL=0 shows it."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def setup_backend(config):
    with native_stderr_silenced():
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()
    from agent import backend

    backend.configure_threads(config.threads)
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if config.precision == "bfloat16" else "float32")
    keras.utils.set_random_seed(config.seed)


def open_env(config, *, render):
    """The preprocessed environment and the name of its game (recorded in weight files)."""
    from preprocessing import make_env, resolve_env_id

    explicit_id = resolve_env_id(config.env_id)
    if explicit_id != config.env_id:
        print(f"using {explicit_id} for {config.env_id}")
    render_mode = "human" if render and display_available() else None
    with native_stderr_silenced():
        env = make_env(config.env_id, seed=config.seed, render_mode=render_mode,
                       idle_penalty=config.idle_penalty)
    from evaluation import game_name

    return env, game_name(env)


def display_available(suggest_record=False):
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        return True
    hint = "; --record FILE.mp4 writes a video instead" if suggest_record else ""
    print(f"{PROG}: no display found, so -r shows no window{hint}", file=sys.stderr)
    return False


def make_agent(config, num_actions):
    from agent import build_agent

    return build_agent(num_actions, gamma=config.gamma, loss=config.loss, optimizer=config.optimizer,
                       learning_rate=config.learning_rate, clip_norm=config.clip_norm, seed=config.seed)


def make_memory(config):
    from memory import ReplayMemory

    return ReplayMemory(config.memory_size, compression=config.memory_compression, seed=config.seed)


def load_into_both_networks(agent, path, game):
    from agent import load_weights

    load_weights(path, agent.online, game=game)
    agent.sync_target()


def save_weights(path, agent, game):
    from agent import save_weights as write

    write(path, agent.online, game=game)


def save_config(path, config):
    from atomic_file import write_text

    write_text(path, json.dumps(dataclasses.asdict(config), indent=2) + "\n")


# ---------------------------------------------------------------------------------------------
# Playing


def play(config, weights, *, games, protocol, record=None):
    """Plays ``games`` games with ``weights``, printing each score; returns the EvalSummary.

    ``protocol=True`` is ``--eval``: the published evaluation (no-op starts, epsilon 0.05, at most
    18,000 frames a game) with a JSON summary beside the weights. Otherwise it is ``--play``:
    greedy and uncapped.
    """
    import evaluation

    if not Path(weights).is_file():
        raise UserError(f"weights file not found: {weights}")
    if record:
        evaluation.video_format(record)
    config = dataclasses.replace(config, seed=secrets.randbits(31) if config.seed is None else config.seed)
    setup_backend(config)
    render_mode = "human" if config.render and display_available(suggest_record=True) else None
    with native_stderr_silenced():
        env = evaluation.make_eval_env(config.env_id, seed=config.seed, render_mode=render_mode)
    agent = make_agent(config, env.action_space.n)
    from agent import load_weights

    load_weights(weights, agent.online, game=evaluation.game_name(env))
    rules = {} if protocol else {"epsilon": 0.0, "max_frames": None}
    with contextlib.ExitStack() as stack:
        recorder = stack.enter_context(evaluation.VideoRecorder(record)) if record else None
        summary = evaluation.evaluate(
            env, evaluation.greedy_policy(agent), episodes=games, seed=config.seed, recorder=recorder,
            on_episode=lambda number, game: print(f"game {number}: score {game.score:g} ({game.frames:,} frames)"),
            **rules)
    print(summary.describe())
    if record:
        print(f"video of game 1: {record}")
    if protocol:
        path = evaluation.summary_path(weights)
        evaluation.write_summary(path, summary, weights=weights)
        print(f"summary: {path}")
    env.close()
    return summary


class PeriodicEvaluation:
    """``--eval-every``: a short protocol evaluation every N steps, appended to ``<env>_eval.txt``."""

    def __init__(self, config, files):
        import evaluation

        self.every = config.eval_every
        self.seed = config.seed
        self.path = files.log.with_name(files.log.name.replace("_log.txt", "_eval.txt"))
        with native_stderr_silenced():
            self.env = evaluation.make_eval_env(config.env_id, seed=config.seed)

    def maybe_run(self, step, agent):
        import evaluation

        if step % self.every:
            return
        summary = evaluation.evaluate(self.env, evaluation.greedy_policy(agent),
                                      episodes=evaluation.TRAINING_EVAL_EPISODES, seed=self.seed)
        evaluation.log_evaluation(self.path, summary, step)
        print(f"evaluation at step {step:,}: {summary.describe()}")


# ---------------------------------------------------------------------------------------------
# Argument types: each bad number becomes one line on stderr and exit code 2.


class _OneLineErrorParser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see -h)\n")


def _number(text, kind, convert):
    try:
        return convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None


def _count(text):
    value = _number(text, "a whole number", int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    if value > 10**10:
        raise argparse.ArgumentTypeError(f"{value} is absurdly large")
    return value


def _positive(text):
    value = _count(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text):
    value = _number(text, "a number", float)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} must be greater than 0")
    return value


def _probability(text):
    value = _number(text, "a number", float)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 1")
    return value


def _learning_rate(text):
    value = _positive_float(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is absurdly large for a learning rate")
    return value


if __name__ == "__main__":
    sys.exit(main())
