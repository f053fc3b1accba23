#!/usr/bin/env python3
"""Train a Keras Deep-Q-Network (Nature DQN + Double DQN) to play an Atari game from pixels.

    python3 dqn_atari.py -env Breakout-v0
    python3 dqn_atari.py -env Breakout-v0 --continue Breakout-v0_weights.h5 --start 0.1 --end 0.0 -pre 300000
    python3 dqn_atari.py -env Pong-v0 --play Pong-v0_weights.h5 -r
"""
import argparse
import contextlib
import dataclasses
import datetime
import functools
import json
import math
import os
import secrets
import sys
from pathlib import Path

from common.errors import OneLineErrorParser, UserError
from training import PeriodicEvaluation, RunFiles, restore_checkpoint, run_training

PROG = "dqn_atari.py"
EVAL_GAMES = 30
MAX_SEED = 2**32 - 1  # NumPy's and the ALE's seeds are 32-bit
MAX_THREADS = 1024


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
    n_step: int = 1
    prioritized: bool = False
    priority_exponent: float = 0.5
    importance_exponent: float = 0.5
    learning_rate: float = 1e-4
    optimizer: str = "adam"
    optimizer_epsilon: float | None = None
    loss: str = "huber"
    dueling: bool = False
    distributional: str = "none"
    quantiles: int = 200
    clip_norm: float | None = None
    target_update: int = 1_000
    train_every: int = 4
    save_every: int = 10
    seed: int | None = None
    threads: int = 0
    learner: str = "thread"
    precision: str = "auto"
    continue_from: str | None = None
    render: bool = False
    out: str = "."
    life_loss_signal: bool = True
    idle_penalty: bool = False
    checkpoint_every: int = 50
    keep_checkpoints: int = 2
    save_memory: bool = True
    eval_every: int = 0
    envs: int = 1
    preset: str | None = None


# One-flag recipes (--preset NAME): the Config fields each sets, unless the command line gives them.
PRESETS = {
    # Two million agent steps on a 2-core CPU: the defaults' gradient step every 4 agent steps, a
    # 100,000-transition memory, exploration over the first 250,000 steps, an evaluation every 100,000.
    "laptop": dict(steps=2_000_000, pre_steps=10_000, memory_size=100_000, epsilon_steps=250_000,
                   epsilon_end=0.01, learning_rate=1e-4, target_update=1_000, train_every=4,
                   eval_every=100_000, checkpoint_every=20),
}


def build_parser():
    parser = OneLineErrorParser(
        prog=PROG, allow_abbrev=False,
        description="Train a Deep-Q-Network on an Atari game, or play/evaluate trained weights.",
        formatter_class=_HelpFormatter)
    d = Config()
    seed_flags = parser.add_argument_group("the original command line")
    seed_flags.add_argument("-env", "--env", metavar="ID", dest="env_id", default=d.env_id,
                            help="game id: Pong-v0, Breakout-v0, ALE/Pong-v5, PongNoFrameskip-v4 or a bare Pong")
    seed_flags.add_argument("-r", "--render", action="store_true", help="show the game while it runs")
    seed_flags.add_argument("--continue", dest="continue_from", metavar="WEIGHTS",
                            help="start from these weights (loaded into the online and the target network)")
    seed_flags.add_argument("--start", metavar="EPS", dest="epsilon_start", type=_probability, default=d.epsilon_start,
                            help="epsilon (probability of a random action) when it starts to fall")
    seed_flags.add_argument("--end", metavar="EPS", dest="epsilon_end", type=_probability, default=d.epsilon_end,
                            help="epsilon after --epsilon-steps")
    seed_flags.add_argument("-pre", "--pre", metavar="N", dest="pre_steps", type=whole_number, default=d.pre_steps,
                            help="steps that fill the replay memory before learning starts and epsilon "
                                 "falls; played randomly, or greedily by the loaded agent with --continue")
    run = parser.add_argument_group("training")
    run.add_argument("--steps", metavar="N", type=positive_number, default=d.steps, help="total agent steps (each = 4 frames)")
    run.add_argument("--epsilon-steps", metavar="N", type=whole_number, default=d.epsilon_steps,
                     help="agent steps over which epsilon moves linearly from --start to --end")
    run.add_argument("--memory-size", metavar="N", type=positive_number, default=d.memory_size, help="replay memory capacity (transitions)")
    run.add_argument("--memory-compression", choices=("zstd", "lz4", "none"), default=d.memory_compression,
                     help="how replay frames are stored")
    run.add_argument("--batch-size", metavar="N", type=positive_number, default=d.batch_size, help="transitions per gradient step")
    run.add_argument("--gamma", metavar="GAMMA", type=_probability, default=d.gamma, help="discount factor")
    run.add_argument("--n-step", metavar="N", type=positive_number, default=d.n_step,
                     help="agent steps per learning target: the discounted rewards of N steps, then the "
                          "value of the state reached (1: the Nature paper's one-step target; "
                          "Rainbow uses 3)")
    run.add_argument("--prioritized", action="store_true",
                     help="prioritized replay (Schaul et al. 2016, proportional, as in Rainbow): "
                          "transitions drawn in proportion to their last |TD error| ** --priority-exponent, "
                          "the loss weighted by (N P) ** -(--importance-exponent)")
    run.add_argument("--priority-exponent", metavar="ALPHA", type=_priority_exponent, default=d.priority_exponent,
                     help="with --prioritized: how strongly priorities skew sampling (0 would be uniform)")
    run.add_argument("--importance-exponent", metavar="BETA", type=_probability, default=d.importance_exponent,
                     help="with --prioritized: beta, how much of the sampling skew the loss weights undo "
                          "(1: all of it)")
    run.add_argument("--lr", metavar="LR", dest="learning_rate", type=_learning_rate, default=d.learning_rate, help="learning rate")
    run.add_argument("--optimizer", choices=("adam", "rmsprop"), default=d.optimizer,
                     help="rmsprop with --lr 0.00025 is the Nature paper's")
    run.add_argument("--optimizer-epsilon", metavar="EPS", type=_positive_float, default=None,
                     help="the optimizer's epsilon, added to the root of Adam's second moment, under "
                          "the root of RMSprop's centered one "
                          "(default: 1.5e-4 for adam as Dopamine; 0.01 / 32**2 for rmsprop, the Nature paper's 0.01 "
                          "for its loss summed over 32 transitions, ours being their mean, as DQN Zoo; "
                          "PyTorch's and Keras's own default is 1e-8 and 1e-7)")
    run.add_argument("--loss", choices=("huber", "logcosh", "mse"), default=d.loss,
                     help="TD loss (a quantile network learns with the quantile Huber loss)")
    run.add_argument("--dueling", action="store_true",
                     help="dueling head (Wang et al. 2016): value and advantage streams after the "
                          "convolutions, Q = V + A - mean(A)")
    run.add_argument("--distributional", choices=("none", "quantile"), default=d.distributional,
                     help="quantile: learn --quantiles quantiles of each action's return with the quantile "
                          "Huber loss, kappa 1 (QR-DQN, Dabney et al. 2018); actions go by their mean")
    run.add_argument("--quantiles", metavar="N", type=positive_number, default=d.quantiles,
                     help="with --distributional quantile: quantiles per action")
    run.add_argument("--clip-norm", metavar="NORM", type=_positive_float, default=None, help="clip gradients to this global norm")
    run.add_argument("--target-update", metavar="N", type=positive_number, default=d.target_update,
                     help="agent steps between copies of the online network into the target network")
    run.add_argument("--train-every", metavar="N", type=positive_number, default=d.train_every, help="agent steps per gradient step")
    run.add_argument("--envs", metavar="N", type=positive_number, default=d.envs,
                     help="copies of the game played side by side, their actions chosen in one forward pass; "
                          "each copy keeps --memory-size / N transitions; every step of every copy counts as "
                          "an agent step (4 copies: 3-13%% more steps/s on 2 cores, but on Pong, seeds 1 and 2, they "
                          "learned more slowly than one copy: README, Results)")
    run.add_argument("--save-every", metavar="N", type=positive_number, default=d.save_every, help="episodes between weight saves")
    run.add_argument("--seed", metavar="N", type=_seed, default=None, help="random seed (default: drawn and saved in the config)")
    run.add_argument("--threads", metavar="N", type=thread_count, default=d.threads, help="CPU threads for the network (0: all cores)")
    run.add_argument("--learner", choices=("thread", "main"), default=d.learner,
                     help="thread: gradient steps run in a second thread while the game goes on; main: in the "
                          "loop's thread (same results, slower)")
    run.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default=d.precision,
                     help="bfloat16 runs the network in mixed precision (float32 weights); auto: bfloat16 on "
                          "CPUs with bfloat16 instructions (AMX or AVX-512 BF16), float32 elsewhere")
    run.add_argument("--no-life-loss-signal", dest="life_loss_signal", action="store_false",
                     help="do not treat a lost life as a terminal for learning")
    run.add_argument("--idle-penalty", action="store_true",
                     help="reward -1 after every 30 decisions without moving at the start of a round, "
                          "until the first move (learning only)")
    run.add_argument("--out", metavar="DIR", default=d.out, help="folder for the log, weights and configuration")
    safety = parser.add_argument_group("checkpoints and resuming")
    safety.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its newest complete checkpoint "
                             "(steps, epsilon, memory, optimizer, log); --steps may be raised")
    safety.add_argument("--checkpoint-every", metavar="N", type=positive_number, default=d.checkpoint_every,
                        help="episodes between full checkpoints (also taken on Ctrl-C/SIGTERM and at the end)")
    safety.add_argument("--keep-checkpoints", metavar="K", type=positive_number, default=d.keep_checkpoints,
                        help="complete checkpoints kept")
    safety.add_argument("--save-memory", action=argparse.BooleanOptionalAction, default=d.save_memory,
                        help="put the replay memory in checkpoints; --no-save-memory leaves it out (a run "
                             "resumed from such a checkpoint refills it), and either may change on --resume")
    play = parser.add_argument_group("playing and evaluating")
    play.add_argument("--play", metavar="WEIGHTS", help="play greedily with these weights and print each score")
    play.add_argument("--eval", metavar="WEIGHTS",
                      help="evaluate with the published protocol (up to 30 no-ops, epsilon 0.05, at most "
                           "18,000 frames a game): mean ± std, min, max, human-normalised score, JSON summary")
    play.add_argument("--games", metavar="N", type=positive_number, default=None,
                      help=f"games to play (default: 1 with --play, {EVAL_GAMES} with --eval)")
    play.add_argument("--record", metavar="FILE",
                      help="with --play/--eval: write a video of the first game (.mp4 or .gif)")
    play.add_argument("--eval-every", metavar="N", type=whole_number, default=d.eval_every,
                      help="while training: evaluate 10 games every this many steps into <env>_eval.txt (0: never)")
    flags = {action.dest: action.option_strings[-1] for action in parser._actions if action.option_strings}
    recipes = "; ".join(f"{name}: " + " ".join(f"{flags[field]} {value}" for field, value in values.items())
                        for name, values in PRESETS.items())
    run.add_argument("--preset", choices=sorted(PRESETS), default=None,
                     help=f"a named recipe ({recipes}); a flag given beside it wins, and <env>_config.json "
                          "records the values used")
    return parser


def config_from_args(args, explicit=frozenset()):
    """The Config of the parsed command line: a ``--preset``'s values where no flag gave the field."""
    fields = {f.name for f in dataclasses.fields(Config)}
    given = {key: value for key, value in vars(args).items() if key in fields}
    preset = {key: value for key, value in PRESETS.get(args.preset, {}).items() if key not in explicit}
    return Config(**{**given, **preset})


# The flags --play and --eval use; any other given with them would be ignored.
PLAY_FIELDS = {"env_id", "render", "seed", "threads", "precision", "play", "eval", "games", "record"}


def check_combination(parser, args, explicit):
    """Refuses flags that would be silently ignored together (one line, exit 2); ``explicit``:
    the fields the command line gave (:func:`explicit_fields`)."""
    if args.play and args.eval:
        parser.error("--play and --eval cannot be used together")
    playing = "--play" if args.play else "--eval" if args.eval else None
    if playing and (args.resume or args.continue_from):
        parser.error(f"{playing} plays weights and trains nothing: drop {'--resume' if args.resume else '--continue'}")
    if playing and explicit - PLAY_FIELDS:
        flags = {action.dest: action.option_strings[-1] for action in parser._actions}
        field = min(explicit - PLAY_FIELDS, key=list(flags).index)
        where = "; the summary is written beside the weights" if field == "out" and args.eval else ""
        parser.error(f"{flags[field]} applies to training, not to {playing}{where}")
    if args.distributional == "quantile" and "loss" in explicit:
        parser.error("--loss applies to networks of one value per action: --distributional quantile "
                     "learns with the quantile Huber loss")
    if "quantiles" in explicit and args.distributional != "quantile" and not args.resume and not playing:
        parser.error("--quantiles applies to --distributional quantile only")
    if args.prioritized and args.envs > 1:
        parser.error("--prioritized keeps one replay memory for the whole run: use it with --envs 1")
    if args.resume and args.continue_from:
        parser.error("--resume goes on from a checkpoint, --continue starts a new run from weights: choose one")
    for flag, value in (("--games", args.games), ("--record", args.record)):
        if value is not None and not playing:
            parser.error(f"{flag} applies to --play or --eval only")
    d = Config()
    for flag, value, default in (("--priority-exponent", args.priority_exponent, d.priority_exponent),
                                 ("--importance-exponent", args.importance_exponent, d.importance_exponent)):
        if value != default and not args.prioritized and not args.resume and not playing:
            parser.error(f"{flag} applies to --prioritized replay only")


def explicit_fields(argv):
    """The fields the command line gave, whatever their value: parsed again without defaults."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def flag_name(field):
    """How the command line spells a Config field: ``learning_rate`` -> ``--lr``."""
    action = _actions_by_field().get(field)
    if action is None:
        return field
    return next((flag for flag in action.option_strings if flag.startswith("--")), action.option_strings[0])


def setting(field, value):
    """A field's value as the command line gives it: ``with --lr 0.0001``, ``with --prioritized``,
    ``without --no-life-loss-signal``, ``with --no-save-memory``."""
    action = _actions_by_field().get(field)
    if action is None or action.nargs != 0:
        return f"with {flag_name(field)} {value!r}"
    if isinstance(action, argparse.BooleanOptionalAction):
        return f"with {action.option_strings[0 if value else 1]}"
    return f"{'with' if value == action.const else 'without'} {flag_name(field)}"


@functools.cache
def _actions_by_field():
    return {action.dest: action for action in build_parser()._actions if action.option_strings}


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    explicit = explicit_fields(argv)
    check_combination(parser, args, explicit)
    try:
        if args.play or args.eval:
            games = args.games or (EVAL_GAMES if args.eval else 1)
            play(config_from_args(args, explicit), args.eval or args.play, games=games, protocol=bool(args.eval),
                 record=args.record)
            return 0
        if args.resume:
            resume(config_from_args(args, explicit), explicit)
        else:
            train(config_from_args(args, explicit))
        return 0
    except UserError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


# ---------------------------------------------------------------------------------------------
# Training


def train(config):
    """Builds the pieces for ``config`` and trains; returns the finished run's counters."""
    from checkpoint import CheckpointStore

    validate(config)
    config = with_resolved_optimizer_epsilon(with_resolved_precision(with_drawn_seed(config)))
    files = RunFiles.for_env(ensure_writable_folder(config.out), config.env_id)
    with run_lock(config.out, config.env_id):
        store = CheckpointStore(files.checkpoints, keep=config.keep_checkpoints)
        earlier_checkpoints = store.latest() is not None
        if earlier_checkpoints and not config.continue_from:
            raise UserError(f"{store.folder} holds checkpoints of an earlier run: continue it with --resume, "
                            f"or move that folder away, or choose another --out")
        earlier_files = (files.weights.exists() or files.best_weights.exists() or _has_content(files.log)
                         or _has_content(files.evaluations))
        if earlier_files and not config.continue_from:
            raise UserError(f"{config.out} already holds a run of {config.env_id} ({files.log.name}, "
                            f"{files.weights.name}): continue it with --resume or --continue "
                            f"{files.weights}, or choose another --out")
        for warning in pre_fill_warnings(config):
            print(f"{PROG}: warning: {warning}", file=sys.stderr)
        with opened_pieces(config, files) as pieces:
            if config.continue_from:
                load_into_both_networks(pieces.agent, config.continue_from, pieces.game)
                # only once the weights loaded: a refused run moves nothing
                config = set_aside_earlier_run(files, config)
            save_config(files.config, config)
            print(f"training {config.env_id} ({pieces.envs[0].action_space.n} actions) for {config.steps:,} "
                  f"steps; log {files.log}, weights {files.weights}")
            return pieces.run(config, files, store)


def with_drawn_seed(config):
    """The configuration with a seed: the given one, or one drawn now and saved with the run."""
    return config if config.seed is not None else dataclasses.replace(config, seed=secrets.randbits(31))


def with_resolved_precision(config):
    """The configuration with ``--precision auto`` replaced by what it means on this machine."""
    if config.precision != "auto":
        return config
    with native_stderr_silenced():
        from agent import backend

        return dataclasses.replace(config, precision=backend.default_precision())


def with_resolved_optimizer_epsilon(config):
    """The configuration with the optimizer's default epsilon written in, so that a resumed run goes on
    with the epsilon it started with whatever the default becomes."""
    if config.optimizer_epsilon is not None:
        return config
    with native_stderr_silenced():
        from agent.dqn import OPTIMIZER_EPSILON

    return dataclasses.replace(config, optimizer_epsilon=OPTIMIZER_EPSILON[config.optimizer])


def set_aside_earlier_run(files, config):
    """Renames the files of an earlier run in ``--out`` out of the way of a run started with
    --continue (``Pong-v0_log.txt`` -> ``Pong-v0_log.before-<time>.txt``; the weights' evaluation
    summaries and the checkpoints folder likewise), so the new run starts its own log and nothing is
    overwritten or deleted. All or nothing: a rename that fails puts the earlier ones back. Returns
    ``config``, its ``continue_from`` following the weights it names if they moved."""
    stamp = f"before-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    moves = {path: path.with_name(f"{path.stem}.{stamp}{path.suffix}") for path in _earlier_run_paths(files)}
    taken = [aside for aside in moves.values() if aside.exists()]
    if taken:
        raise UserError(f"cannot move the earlier run aside: {taken[0]} already exists; try again in a second")
    continued = Path(config.continue_from).resolve()
    done = []
    try:
        for path, aside in moves.items():
            path.rename(aside)
            done.append((path, aside))
    except OSError as error:
        for path, aside in reversed(done):
            aside.rename(path)
        raise UserError(f"cannot move {path} aside: {error.strerror or error}; nothing was moved") from None
    if moves:
        print(f"the earlier run's files are now {', '.join(aside.name for aside in moves.values())} "
              f"(never deleted: remove them when you no longer need them)")
    for path, aside in moves.items():
        if continued == path.resolve() or path.resolve() in continued.parents:
            return dataclasses.replace(config, continue_from=str(aside / continued.relative_to(path.resolve())))
    return config


def _earlier_run_paths(files):
    """The files of ``files`` that exist, and the evaluation summaries of its weights."""
    paths = [getattr(files, field.name) for field in dataclasses.fields(files)]
    for weights in (files.weights, files.best_weights):
        paths += [path for path in weights.parent.glob(f"{weights.stem}_eval*.json") if ".before-" not in path.name]
    return [path for path in paths if path.exists()]


# A run with --optimizer rmsprop started before the configuration recorded the optimizer's epsilon
# ran with the default of that time, 0.01 (now 0.01 / 32**2: agent/dqn.py).
RMSPROP_EPSILON_BEFORE_RECORDED = 0.01
# Settings a resumed run may change; any other flag must match the checkpoint's configuration.
RESUMABLE_OVERRIDES = {"steps", "render", "threads", "learner", "out", "save_every", "checkpoint_every",
                       "keep_checkpoints", "save_memory"}


def resume(cli_config, explicit):
    """Continues the run in ``--out`` from its newest complete checkpoint."""
    from checkpoint import CheckpointStore, read_manifest
    from preprocessing import resolve_env_id
    from common.runlog import truncate_after_step, truncate_eval_after_step

    resolve_env_id(cli_config.env_id)
    files = RunFiles.for_env(Path(cli_config.out), cli_config.env_id)
    store = CheckpointStore(files.checkpoints, keep=cli_config.keep_checkpoints)
    folder = store.latest()
    if folder is None:  # before anything is written: a mistyped --out is not created
        raise UserError(f"no complete checkpoint of {cli_config.env_id} in {store.folder}")
    ensure_writable_folder(cli_config.out)
    with run_lock(cli_config.out, cli_config.env_id):
        store.remove_partial()
        config = resumed_config(read_manifest(folder), with_resolved_precision(cli_config), explicit, folder)
        validate(config, check_weights=False)
        store.keep = config.keep_checkpoints
        with opened_pieces(config, files) as pieces:
            progress = restore_checkpoint(folder, config, pieces.agent, pieces.memory, pieces.envs, pieces.game)
            dropped = truncate_after_step(files.log, progress.step) if _has_content(files.log) else 0
            if _has_content(files.evaluations):
                truncate_eval_after_step(files.evaluations, progress.step)
            save_config(files.config, config)
            print(f"resuming {config.env_id} from {folder.name}: step {progress.step:,}, "
                  f"episode {progress.tally.episodes}" + (f"; dropped {dropped} log rows after it" if dropped else ""))
            return pieces.run(config, files, store, progress)


def pre_fill_warnings(config):
    """What -pre would waste with these settings, one line each."""
    warnings = []
    if config.pre_steps >= config.steps:
        warnings.append(f"-pre {config.pre_steps:,} >= --steps {config.steps:,}: this run will not learn, "
                        f"only fill its memory")
    if config.pre_steps > config.memory_size:
        warnings.append(f"-pre {config.pre_steps:,} > --memory-size {config.memory_size:,}: the first "
                        f"{config.pre_steps - config.memory_size:,} steps played before learning starts are "
                        f"overwritten before any is learned from")
    return warnings


@dataclasses.dataclass
class Pieces:
    """What a training run is made of, built from its configuration."""

    envs: list
    game: str
    agent: object
    memory: object
    evaluation: object

    def run(self, config, files, store, progress=None):
        return run_training(config, self.envs, self.agent, self.memory, files, game=self.game,
                            checkpoints=store, progress=progress, evaluation=self.evaluation)


@contextlib.contextmanager
def opened_pieces(config, files):
    """The pieces of a run of ``config``; their games close on leaving, whatever ends the run (a
    refused weights file, a damaged checkpoint, Ctrl-C), and a window opened by -r with them."""
    setup_backend(config)
    with contextlib.ExitStack() as games:
        envs, game = open_envs(config, render=config.render)
        for env in envs:
            games.callback(env.close)
        evaluation = None
        if config.eval_every:
            import evaluation as protocol

            with native_stderr_silenced():
                eval_env = protocol.make_eval_env(config.env_id, seed=config.seed)
            games.callback(eval_env.close)
            evaluation = PeriodicEvaluation(config, files, eval_env, game)
        yield Pieces(envs, game, make_agent(config, envs[0].action_space.n), make_memory(config), evaluation)


def resumed_config(manifest, cli_config, explicit, folder):
    """The checkpoint's configuration with the overrides the command line may make."""
    saved = manifest.get("config", {})
    if saved.get("env_id") != cli_config.env_id:
        raise UserError(f"checkpoint {folder} belongs to {saved.get('env_id')}, not {cli_config.env_id}")
    known = {f.name for f in dataclasses.fields(Config)}
    defaults = Config()  # what a checkpoint older than a setting ran with
    if saved.get("optimizer") == "rmsprop" and saved.get("optimizer_epsilon") is None:
        saved = dict(saved, optimizer_epsilon=RMSPROP_EPSILON_BEFORE_RECORDED)
    for key in sorted((explicit & known) - RESUMABLE_OVERRIDES):
        made_with = saved.get(key, getattr(defaults, key))
        if made_with != getattr(cli_config, key):
            may_change = ", ".join(sorted(flag_name(field) for field in RESUMABLE_OVERRIDES))
            raise UserError(f"checkpoint {folder} was made {setting(key, made_with)}, but this command runs "
                            f"{setting(key, getattr(cli_config, key))}; only {may_change} may change")
    overrides = {key: getattr(cli_config, key) for key in (RESUMABLE_OVERRIDES & explicit) | {"out"}}
    return with_resolved_optimizer_epsilon(
        dataclasses.replace(Config(**{k: v for k, v in saved.items() if k in known}), **overrides))


# ---------------------------------------------------------------------------------------------
# Building the pieces


def _has_content(path):
    return path.is_file() and path.stat().st_size > 0


def validate(config, check_weights=True):
    """Refuses a game id or numbers that cannot make a run, with one line naming the flag; before
    any folder is made or TensorFlow is imported."""
    from preprocessing import resolve_env_id

    resolve_env_id(config.env_id)
    if config.memory_size < config.batch_size:
        raise UserError(f"--memory-size {config.memory_size} is smaller than --batch-size {config.batch_size}")
    if config.envs > 64:
        raise UserError(f"--envs {config.envs}: at most 64 copies of the game")
    if config.envs > 1 and config.memory_size // config.envs < 1_000:
        raise UserError(f"--memory-size {config.memory_size} leaves {config.memory_size // config.envs} "
                        f"transitions to each of the --envs {config.envs} copies: at least 1,000 each")
    if config.batch_size > 4096:
        raise UserError(f"--batch-size {config.batch_size} is absurdly large (at most 4096)")
    if check_weights and config.continue_from and not Path(config.continue_from).is_file():
        raise UserError(f"weights file not found: {config.continue_from}")
    from memory import ReplayMemory

    ReplayMemory.ensure_fits(config.memory_size, config.memory_compression)


def ensure_writable_folder(folder, what="--out folder"):
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise UserError(f"cannot write to {what} {folder}: {error.strerror or error}") from None
    return folder


@contextlib.contextmanager
def run_lock(folder, env_id):
    """Holds ``<folder>/.<env>.lock`` while a run of ``env_id`` trains in ``folder``, so that a second
    one there (a new run, ``--resume`` or ``--continue``) is refused instead of writing the same log,
    checkpoints and weights. The file holds the process id and is removed when the run ends; the
    operating system drops the lock of a process that dies."""
    import fcntl

    path = Path(folder) / f".{env_id.replace('/', '_')}.lock"
    while True:
        lock = open(path, "a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "?"
            lock.close()
            raise UserError(f"another run of {env_id} is training in {folder} (process {holder}): "
                            f"wait for it to end, or choose another --out") from None
        try:
            if os.stat(path).st_ino == os.fstat(lock.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        lock.close()  # its holder removed that file as it ended: lock the one there now
    try:
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield
    finally:
        path.unlink(missing_ok=True)  # while still locked: a run that opened this file sees it gone, retries
        lock.close()


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

        from agent import backend

        backend.probe_devices()
    backend.configure_threads(config.threads)
    precision = with_resolved_precision(config).precision
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    keras.utils.set_random_seed(config.seed)


def open_envs(config, *, render):
    """``config.envs`` preprocessed copies of the game (seeds seed, seed + 1, ...; ``render``
    shows the first) and the name of the game (recorded in weight files)."""
    from preprocessing import make_env, resolve_env_id

    explicit_id = resolve_env_id(config.env_id)
    if explicit_id != config.env_id:
        print(f"using {explicit_id} for {config.env_id}")
    render_mode = "human" if render and display_available() else None
    with native_stderr_silenced():
        envs = [make_env(config.env_id, seed=None if config.seed is None else config.seed + index,
                         render_mode=render_mode if index == 0 else None, idle_penalty=config.idle_penalty)
                for index in range(config.envs)]
    from evaluation import game_name

    return envs, game_name(envs[0])


def display_available(suggest_record=False):
    """True where -r can open a window (macOS, Windows, an X11 or Wayland session); else says so."""
    if sys.platform in ("darwin", "win32") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        return True
    hint = "; --record FILE.mp4 writes a video instead" if suggest_record else ""
    print(f"{PROG}: no display found, so -r shows no window{hint}", file=sys.stderr)
    return False


def network_head(config):
    """The ``agent.Head`` that ``--dueling``, ``--distributional`` and ``--quantiles`` choose."""
    from agent import Head

    return Head(dueling=config.dueling, quantiles=config.quantiles if config.distributional == "quantile" else 0)


def head_settings(head):
    """The Config fields that build ``head`` (the inverse of ``network_head``)."""
    return dict(dueling=head.dueling, distributional="quantile" if head.quantiles else "none",
                quantiles=head.quantiles or Config.quantiles)


def head_flags(head):
    """The command line's words for ``head``: "--dueling --distributional quantile --quantiles 200"."""
    flags = ["--dueling"] * head.dueling + [f"--distributional quantile --quantiles {head.quantiles}"] * bool(head.quantiles)
    return " ".join(flags) or "neither --dueling nor --distributional"


def make_agent(config, num_actions):
    from agent import build_agent

    return build_agent(num_actions, head=network_head(config), loss=config.loss, optimizer=config.optimizer,
                       learning_rate=config.learning_rate, clip_norm=config.clip_norm,
                       optimizer_epsilon=config.optimizer_epsilon, seed=config.seed)


def make_memory(config):
    """One ReplayMemory, or with ``--envs N`` a ReplayStreams of one stream per game copy."""
    from memory import ReplayMemory, ReplayStreams

    settings = dict(compression=config.memory_compression, n_step=config.n_step, gamma=config.gamma,
                    seed=config.seed, priority_exponent=config.priority_exponent if config.prioritized else None)
    if config.envs > 1:
        return ReplayStreams(config.memory_size, config.envs, **settings)
    return ReplayMemory(config.memory_size, **settings)


def load_into_both_networks(agent, path, game):
    from agent import HeadMismatchError, load_weights

    try:
        load_weights(path, agent.online, game=game)
    except HeadMismatchError as error:
        raise UserError(f"{error}: train on them with {head_flags(error.recorded)}") from None
    agent.sync_target()
    agent.sync_actor()


def save_config(path, config):
    from common.atomic_file import write_text

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
    if protocol:  # refused now rather than after the games
        ensure_writable_folder(Path(weights).parent, "the weights' folder (for the evaluation summary)")
    config = with_resolved_precision(with_drawn_seed(config))
    setup_backend(config)
    from agent import load_weights, read_head

    config = dataclasses.replace(config, **head_settings(read_head(weights)))  # the network the file holds
    render_mode = "human" if config.render and display_available(suggest_record=True) else None
    rules = {} if protocol else {"epsilon": 0.0, "max_frames": None}
    with contextlib.ExitStack() as stack:
        with native_stderr_silenced():
            env = evaluation.make_eval_env(config.env_id, seed=config.seed, render_mode=render_mode)
        stack.callback(env.close)
        agent = make_agent(config, env.action_space.n)
        load_weights(weights, agent.online, game=evaluation.game_name(env))
        recorder = stack.enter_context(evaluation.VideoRecorder(record)) if record else None
        summary = evaluation.evaluate(
            env, evaluation.greedy_policy(agent), episodes=games, seed=config.seed, recorder=recorder,
            on_episode=lambda number, game: print(f"game {number}: score {game.score:g} ({game.frames:,} frames)"),
            **rules)
    print(summary.describe())
    if record:
        print(f"video of game 1: {record}")
    if protocol:
        print(f"summary: {evaluation.write_new_summary(weights, summary)}")
    return summary


# ---------------------------------------------------------------------------------------------
# Argument types: each bad number becomes one line on stderr and exit code 2.


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except for on/off flags and options that have none."""

    def _get_help_string(self, action):
        if action.nargs == 0 or action.default is None:
            return action.help
        return super()._get_help_string(action)


def _number(text, kind, convert):
    try:
        return convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None


def whole_number(text):
    value = _number(text, "a whole number", int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    if value > 10**10:
        raise argparse.ArgumentTypeError(f"{value} is absurdly large")
    return value


def _seed(text):
    value = whole_number(text)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"{value} is larger than the largest seed, 2**32 - 1")
    return value


def thread_count(text):
    value = whole_number(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"{value} is absurdly many threads (at most {MAX_THREADS})")
    return value


def positive_number(text):
    value = whole_number(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text):
    value = _number(text, "a number", float)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{value} must be a finite number greater than 0")
    return value


def _probability(text):
    value = _number(text, "a number", float)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 1")
    return value


def _priority_exponent(text):
    value = _probability(text)
    if value == 0.0:
        raise argparse.ArgumentTypeError("0 would sample uniformly: leave out --prioritized instead")
    return value


def _learning_rate(text):
    value = _positive_float(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is absurdly large for a learning rate")
    return value


if __name__ == "__main__":
    sys.exit(main())
