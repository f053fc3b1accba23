"""The training command's options: the parser, the checks of flags given together, and the words
for settings (a Config field as its flag: ``learning_rate`` -> ``--lr``).

``dqn_atari.py`` parses with them; the Python API (``training.api``) puts a Config through the same
checks, so both refuse the same settings with the same message.
"""
import argparse
import dataclasses
import functools

from common import arguments
from common.errors import OneLineErrorParser, SettingError, UserError
from training.build import PROG
from training.config import PRESETS, Config

EVAL_GAMES = 30


def build_parser(parser_class=OneLineErrorParser):
    parser = parser_class(
        prog=PROG, allow_abbrev=False,
        description="Train a Deep-Q-Network on an Atari game, or play/evaluate trained weights.",
        formatter_class=arguments.HelpFormatter)
    d = Config()
    seed_flags = parser.add_argument_group("the original command line")
    seed_flags.add_argument("-env", "--env", metavar="ID", dest="env_id", default=d.env_id,
                            help="game id: Pong-v0, Breakout-v0, ALE/Pong-v5, PongNoFrameskip-v4 or a bare Pong")
    seed_flags.add_argument("-r", "--render", action="store_true", help="show the game while it runs")
    seed_flags.add_argument("--continue", dest="continue_from", metavar="WEIGHTS",
                            help="start from these weights (loaded into the online and the target network)")
    seed_flags.add_argument("--start", metavar="EPS", dest="epsilon_start", type=arguments.probability, default=d.epsilon_start,
                            help="epsilon (probability of a random action) when it starts to fall")
    seed_flags.add_argument("--end", metavar="EPS", dest="epsilon_end", type=arguments.probability, default=d.epsilon_end,
                            help="epsilon after --epsilon-steps")
    seed_flags.add_argument("-pre", "--pre", metavar="N", dest="pre_steps", type=arguments.whole_number, default=d.pre_steps,
                            help="steps that fill the replay memory before learning starts and epsilon "
                                 "falls; played randomly, or by the loaded agent at --start's epsilon with --continue")
    run = parser.add_argument_group("training")
    run.add_argument("--steps", metavar="N", type=arguments.positive_number, default=d.steps, help="total agent steps (each = 4 frames)")
    run.add_argument("--epsilon-steps", metavar="N", type=arguments.whole_number, default=d.epsilon_steps,
                     help="agent steps over which epsilon moves linearly from --start to --end")
    run.add_argument("--memory-size", metavar="N", type=arguments.positive_number, default=d.memory_size, help="replay memory capacity (transitions)")
    run.add_argument("--memory-compression", choices=("zstd", "lz4", "none"), default=d.memory_compression,
                     help="how replay frames are stored")
    run.add_argument("--batch-size", metavar="N", type=arguments.positive_number, default=d.batch_size, help="transitions per gradient step")
    run.add_argument("--gamma", metavar="GAMMA", type=arguments.probability, default=d.gamma, help="discount factor")
    run.add_argument("--n-step", metavar="N", type=arguments.positive_number, default=d.n_step,
                     help="agent steps per learning target: the discounted rewards of N steps, then the "
                          "value of the state reached (1: the Nature paper's one-step target; "
                          "Rainbow uses 3)")
    run.add_argument("--prioritized", action="store_true",
                     help="prioritized replay (Schaul et al. 2016, proportional, as in Rainbow): "
                          "transitions drawn in proportion to their last |TD error| ** --priority-exponent, "
                          "the loss weighted by (N P) ** -(--importance-exponent)")
    run.add_argument("--priority-exponent", metavar="ALPHA", type=arguments.priority_exponent, default=d.priority_exponent,
                     help="with --prioritized: how strongly priorities skew sampling (0 would be uniform)")
    run.add_argument("--importance-exponent", metavar="BETA", type=arguments.probability, default=d.importance_exponent,
                     help="with --prioritized: beta, how much of the sampling skew the loss weights undo "
                          "(1: all of it)")
    run.add_argument("--lr", metavar="LR", dest="learning_rate", type=arguments.learning_rate, default=d.learning_rate, help="learning rate")
    run.add_argument("--optimizer", choices=("adam", "rmsprop"), default=d.optimizer,
                     help="rmsprop with --lr 0.00025 is the Nature paper's")
    run.add_argument("--optimizer-epsilon", metavar="EPS", type=arguments.positive_float, default=None,
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
    run.add_argument("--quantiles", metavar="N", type=arguments.positive_number, default=d.quantiles,
                     help="with --distributional quantile: quantiles per action")
    run.add_argument("--clip-norm", metavar="NORM", type=arguments.positive_float, default=None, help="clip gradients to this global norm")
    run.add_argument("--target-update", metavar="N", type=arguments.positive_number, default=d.target_update,
                     help="agent steps between copies of the online network into the target network")
    run.add_argument("--train-every", metavar="N", type=arguments.positive_number, default=d.train_every, help="agent steps per gradient step")
    run.add_argument("--envs", metavar="N", type=arguments.positive_number, default=d.envs,
                     help="copies of the game played side by side, their actions chosen in one forward pass; "
                          "each copy keeps --memory-size / N transitions; every step of every copy counts as "
                          "an agent step (docs/performance.md and docs/results.md weigh speed against learning)")
    run.add_argument("--save-every", metavar="N", type=arguments.positive_number, default=d.save_every, help="episodes between weight saves")
    run.add_argument("--seed", metavar="N", type=arguments.seed, default=None, help="random seed (default: drawn and saved in the config)")
    run.add_argument("--threads", metavar="N", type=arguments.thread_count, default=d.threads, help="CPU threads for the network (0: all cores)")
    run.add_argument("--learner", choices=("thread", "main"), default=d.learner,
                     help="thread: gradient steps run in a second thread while the game goes on; main: in the "
                          "loop's thread (same results)")
    run.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default=d.precision,
                     help="bfloat16 runs the network in mixed precision (float32 weights); auto: bfloat16 on "
                          "CPUs with bfloat16 instructions (AMX or AVX-512 BF16), float32 elsewhere")
    run.add_argument("--no-life-loss-signal", dest="life_loss_signal", action="store_false",
                     help="do not treat a lost life as a terminal for learning")
    run.add_argument("--idle-penalty", action="store_true",
                     help="reward -1 after every 30 decisions without moving at the start of a round, "
                          "until the first move (learning only)")
    run.add_argument("--out", metavar="DIR", default=d.out, help="folder for the log, weights and configuration")
    run.add_argument("--tensorboard", metavar="DIR", default=d.tensorboard,
                     help="also write the run's curves as TensorBoard event files into DIR (tensorboard --logdir "
                          "DIR; pip install tensorboard to view them); may change on --resume")
    safety = parser.add_argument_group("checkpoints and resuming")
    safety.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its newest complete checkpoint "
                             "(steps, epsilon, memory, optimizer, log); --steps may be raised")
    safety.add_argument("--checkpoint-every", metavar="N", type=arguments.positive_number, default=d.checkpoint_every,
                        help="episodes between full checkpoints (also taken on Ctrl-C/SIGTERM and at the end)")
    safety.add_argument("--keep-checkpoints", metavar="K", type=arguments.positive_number, default=d.keep_checkpoints,
                        help="complete checkpoints kept")
    safety.add_argument("--save-memory", action=argparse.BooleanOptionalAction, default=d.save_memory,
                        help="put the replay memory in checkpoints; --no-save-memory leaves it out (a run "
                             "resumed from such a checkpoint refills it), and either may change on --resume")
    play = parser.add_argument_group("playing and evaluating")
    play.add_argument("--play", metavar="WEIGHTS", help="play with these weights, epsilon 0.01, and print each score")
    play.add_argument("--eval", metavar="WEIGHTS",
                      help="evaluate with the published protocol (up to 30 no-ops, epsilon 0.05, at most "
                           "18,000 frames a game): mean ± std, min, max, human-normalised score, JSON summary")
    play.add_argument("--games", metavar="N", type=arguments.positive_number, default=None,
                      help=f"games to play (default: 1 with --play, {EVAL_GAMES} with --eval)")
    play.add_argument("--record", metavar="FILE",
                      help="with --play/--eval: write a video of the first game (.mp4 or .gif)")
    play.add_argument("--eval-every", metavar="N", type=arguments.whole_number, default=d.eval_every,
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
# --precision is not among them: play acts with a float32 copy of the network (docs/usage.md).
PLAY_FIELDS = {"env_id", "render", "seed", "threads", "play", "eval", "games", "record"}


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
    for flag, field in (("--priority-exponent", "priority_exponent"), ("--importance-exponent", "importance_exponent")):
        if field in explicit and not args.prioritized and not args.resume and not playing:
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


def worded(error):
    """A UserError's message, the settings it names worded as this command's flags."""
    from training.checkpoints import SettingMismatchError

    if isinstance(error, SettingMismatchError):
        return error.worded(flag_name, setting)
    return error.worded(flag_name) if isinstance(error, SettingError) else str(error)


class RaisingParser(OneLineErrorParser):
    def error(self, message):
        raise UserError(message)


def argv_of(config):
    """The command line that gives ``config``: a flag for each field that differs from its default."""
    defaults, argv = Config(), []
    for field in dataclasses.fields(Config):
        value = getattr(config, field.name)
        if value == getattr(defaults, field.name):
            continue
        action = _actions_by_field()[field.name]
        if isinstance(action, argparse.BooleanOptionalAction):
            argv.append(action.option_strings[0 if value else 1])
        elif action.nargs == 0:  # store_true / store_false: differing from the default means given
            argv.append(action.option_strings[-1])
        else:
            argv += [action.option_strings[-1], str(value)]
    return argv
