#!/usr/bin/env python3
"""Train every combination of games, settings and seeds with dqn_atari.py, side by side on Ray Tune.

    python3 dqn_sweep.py --games Pong-v0 Breakout-v0 --seeds 1 2 3 --set lr=1e-4,6.25e-5 \\
        --preset laptop --out sweeps/lr
    python3 dqn_sweep.py --summary --out sweeps/lr

Each combination is an ordinary training run in a folder of its own, ``sweeps/lr/Pong-v0/lr=1e-4/seed-1``,
holding what ``dqn_atari.py --out FOLDER`` writes. The trainer runs as a subprocess; this program
imports only its light parts (its options and checks, its file and checkpoint layout: no Keras), and Ray
stays an optional extra (requirements-sweep.txt). The same command again skips the finished runs and
resumes the others from their newest checkpoint; a trainer or Ray worker that dies is retried by
Tune and resumes the same way. At the end, and with --summary, a table and an overlay graph per game.
docs/sweeps.md: running it on a cluster.
"""
import dataclasses
import datetime
import difflib
import fcntl
import itertools
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

from common import arguments, atomic_file
from common.errors import OneLineErrorParser, UserError
from common.runlog import LogFormatError, read_log
from memory import MemoryTooLargeError
from training import options as trainer
from training.checkpoints import CheckpointStore, read_manifest
from training.config import RunFiles, validate

PROG = "dqn_sweep.py"
HERE = Path(__file__).resolve().parent
TRAINER = HERE / "dqn_atari.py"
VISUALIZER = HERE / "reward_visualizer.py"

# What the sweep adds to a run folder, beside the trainer's files.
DONE_FILE = "sweep_done.json"  # written atomically once the trainer has exited 0
TRAINER_OUTPUT = "sweep_trainer.out"  # the trainer's stdout and stderr, every attempt appended
SET_ASIDE_PREFIX = "set-aside-"  # files of an attempt killed before its first checkpoint
# What the sweep writes under --out.
SUMMARY_FILE = "summary.md"
GRAPHS_FOLDER = "graphs"
TUNE_FOLDER = "ray_tune"  # Tune's own records of each attempt (trial states, errors)

NO_SETTINGS = "defaults"
SEED_FOLDER = re.compile(r"seed-(\d+)")
SETTING_VALUE = re.compile(r"[A-Za-z0-9_.+-]+")  # a folder name's part: no '/', ',' or '='
MEAN_WINDOW = 100
CONNECT_TIMEOUT_S = 10
LOCK_WAIT_S = 600  # a run's last checkpoint, its replay memory included, on a slow disk

# Trainer options (long flags) the sweep gives every run itself, or that train nothing: never in --set
# or after --, in any of their spellings (-env, --env).
OWN_OPTIONS = {
    "env": "give the games with --games",
    "seed": "give the seeds with --seeds",
    "out": "give the sweep's folder with --out; each run gets a folder under it",
    "resume": "the sweep resumes interrupted runs by itself",
    "continue": "a sweep starts its runs afresh or resumes them",
    "play": "a sweep trains", "eval": "a sweep trains", "games": "a sweep trains", "record": "a sweep trains",
    "render": "runs on Ray workers have no window", "help": "see dqn_atari.py -h",
}


@dataclasses.dataclass(frozen=True)
class Run:
    """One run of a sweep: a game, one value for each swept setting, a seed, and the folder it trains in.

    ``settings`` is ``(("lr", "1e-4"), ("n-step", "3"))``: trainer long-flag names without dashes and
    values as typed, in --set order; the folder is ``<out>/<game>/<lr=1e-4,n-step=3>/seed-<seed>``.
    """

    game: str
    settings: tuple
    seed: int
    folder: Path

    @property
    def setting_label(self):
        return ",".join(f"{name}={value}" for name, value in self.settings) or NO_SETTINGS

    @property
    def label(self):
        return f"{self.game} {self.setting_label} seed {self.seed}"

    @property
    def file_stem(self):
        """The game as a file name, as the trainer's files have it: ``ALE/Pong-v5`` -> ``ALE_Pong-v5``."""
        return self.game.replace("/", "_")

    @property
    def files(self):
        """The trainer's files of this run (``training.config.RunFiles``)."""
        return RunFiles.for_env(self.folder, self.game)

    def training_args(self, shared_args):
        """The trainer flags that make this run what it is (not where it writes or how many threads)."""
        return ["-env", self.game, "--seed", str(self.seed), *shared_args,
                *(f"--{name}={value}" for name, value in self.settings)]


def plan_runs(out, games, seeds, settings):
    """Every combination, games outermost: ``settings`` is ``[(name, [values])]``."""
    names = [name for name, _ in settings]
    combinations = list(itertools.product(*(values for _, values in settings)))
    return [Run(game, tuple(zip(names, values)), seed, Path(out))
            for game, values, seed in itertools.product(games, combinations, seeds)]


def with_folders(runs):
    return [dataclasses.replace(run, folder=run.folder / run.file_stem / run.setting_label / f"seed-{run.seed}")
            for run in runs]


def discover_runs(out):
    """The runs already under ``out`` (``<game>/<setting>/seed-N`` folders), for --summary alone."""
    runs = []
    for folder in sorted(Path(out).glob("*/*/seed-*")):
        match = SEED_FOLDER.fullmatch(folder.name)
        if not (match and folder.is_dir()) or folder.parent.parent.name in (GRAPHS_FOLDER, TUNE_FOLDER):
            continue
        settings = () if folder.parent.name == NO_SETTINGS else tuple(
            tuple(pair.split("=", 1)) for pair in folder.parent.name.split(","))
        runs.append(Run(folder.parent.parent.name, settings, int(match[1]), folder))
    if not runs:
        raise UserError(f"no runs under {out} (folders <game>/<setting>/seed-N): give --games and --seeds")
    return runs


# ---------------------------------------------------------------------------------------------
# Checking what the user typed, with the trainer's own rules


def trainer_flags():
    """Every option string of the trainer's parser (``-env``, ``--env``, ``--lr``, ``--no-save-memory``)
    to its argparse action, so that two spellings of one option are one action."""
    return {flag: action for action in trainer.build_parser()._actions for flag in action.option_strings}


def owned_actions(flags):
    """The trainer's actions that the sweep owns (OWN_OPTIONS), each to why."""
    return {flags[f"--{name}"]: why for name, why in OWN_OPTIONS.items()}


def parse_settings(texts, flags):
    """``["lr=1e-4,6.25e-5"]`` -> ``[("lr", ["1e-4", "6.25e-5"])]``; UserError for a name the trainer
    lacks or owned by the sweep, a repeated name or value, or a value that cannot name a folder."""
    settings, owned = [], owned_actions(flags)
    for text in texts:
        name, equals, values = text.partition("=")
        if not (equals and name and values):
            raise UserError(f"--set {text}: expected NAME=VALUE[,VALUE...], e.g. --set lr=1e-4,6.25e-5")
        action = flags.get(f"--{name}")
        if action in owned:
            raise UserError(f"--set {name}: {owned[action]}")
        if action is None:
            names = sorted(flag[2:] for flag in flags if flag.startswith("--"))
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean {close[0]}?)" if close else "; dqn_atari.py -h lists its options"
            raise UserError(f"--set {name}: unknown setting, dqn_atari.py has no option --{name}{hint}")
        if name in (known for known, _ in settings):
            raise UserError(f"--set {name} is given twice: put all its values in one, {name}=V1,V2")
        values = values.split(",")
        for value in values:
            if not SETTING_VALUE.fullmatch(value):
                raise UserError(f"--set {name}: value {value!r} must be letters, digits and . _ + - only "
                                f"(it names the run's folder)")
        if len(set(values)) < len(values):
            raise UserError(f"--set {name}: a value is given twice in {text}")
        settings.append((name, values))
    return settings


def check_trainer_flags(tokens, flags, swept):
    """Refuses flags after ``--`` that the sweep gives itself or sweeps with --set (``swept``: each
    such action to its --set name); the trainer would take the last of two, silently. The trainer
    takes no abbreviations (allow_abbrev=False): it refuses them itself."""
    owned = owned_actions(flags)
    for token in tokens:
        action = flags.get(token.split("=", 1)[0])
        if action in owned:
            raise UserError(f"{token} after --: {owned[action]}")
        if action in swept:
            raise UserError(f"{token} after --: --{swept[action]} is swept by --set {swept[action]}=...")


def check_with_trainer(runs, shared_args):
    """Has the trainer's own checks judge every run's flags; raises UserError with its one line."""
    for run in runs:
        message = refusal(run.training_args(shared_args))
        if message:
            raise UserError(f"dqn_atari.py refuses {run.label}: {message}")


def refusal(training_args):
    """The trainer's one-line refusal of these flags, or None when it accepts them: what dqn_atari.py
    checks before it builds anything (its parser, its rules for flags given together, then
    ``training.config.validate``), with its own functions in this process, so that no rule is copied
    here. Whether the replay memory fits is left to the trainer, on the machine that runs it: a
    cluster's driver may be smaller than its workers."""
    parser = trainer.build_parser(trainer.RaisingParser)
    try:
        args = parser.parse_args(training_args)
        explicit = trainer.explicit_fields(training_args)
        trainer.check_combination(parser, args, explicit)
    except UserError as error:  # the trainer's usage errors, which it prints with "(see -h)"
        return f"{error} (see dqn_atari.py -h)"
    try:
        validate(trainer.config_from_args(args, explicit), check_weights=False)
    except MemoryTooLargeError:
        return None
    except UserError as error:
        return trainer.worded(error)
    return None


# ---------------------------------------------------------------------------------------------
# A run folder's state


def run_state(folder, game, training_args):
    """``done`` (finished with these flags), ``resume`` (a complete checkpoint), ``restart`` (files
    of an attempt that never completed a checkpoint) or ``new``."""
    folder = Path(folder)
    if finished_with(folder) == list(training_args):
        return "done"
    if newest_manifest(folder, game) is not None:
        return "resume"
    if trainer_files(folder):
        return "restart"
    return "new"


def finished_with(folder):
    """The training flags of the run that finished in ``folder``, or None."""
    try:
        return json.loads((Path(folder) / DONE_FILE).read_text())["training_args"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def newest_manifest(folder, game):
    """The manifest of the newest checkpoint that ``dqn_atari.py --resume`` would take (complete: its
    files all there, of the sizes it records), or None."""
    newest = CheckpointStore(RunFiles.for_env(folder, game).checkpoints).latest()
    return None if newest is None else read_manifest(newest, strict=False)


def trainer_files(folder):
    """What an attempt left in ``folder``, the sweep's own files and hidden ones (the lock) aside."""
    if not Path(folder).is_dir():
        return []
    return sorted(path for path in Path(folder).iterdir() if not path.name.startswith((".", SET_ASIDE_PREFIX))
                  and path.name not in (DONE_FILE, TRAINER_OUTPUT))


def set_aside(folder):
    """Moves the files of an attempt that died before its first checkpoint into ``set-aside-<time>/``
    (the trainer refuses to start afresh on top of them); nothing is deleted."""
    aside = Path(folder) / f"{SET_ASIDE_PREFIX}{datetime.datetime.now():%Y%m%d-%H%M%S-%f}"
    aside.mkdir()
    for path in trainer_files(folder):
        if path != aside:
            path.rename(aside / path.name)
    return aside


# ---------------------------------------------------------------------------------------------
# One run, on a Ray worker


def train_to_the_end(config):
    """Ray Tune trainable: brings one run to its end, resuming from its newest checkpoint if it has
    one. Raises when the trainer fails, so that Tune retries the run (FailureConfig.max_failures)."""
    spec = config["run"]
    folder, training_args = Path(spec["folder"]), spec["training_args"]
    wait_for_trainer_to_end(folder, spec["file_stem"])
    state = run_state(folder, spec["game"], training_args)
    if state == "done":
        return
    if state == "restart":
        print(f"{spec['label']}: the files of an attempt without a checkpoint are now in {set_aside(folder)}")
    print(f"{spec['label']}: {'resuming' if state == 'resume' else 'starting'} in {folder}", flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, spec["trainer"], "--threads", str(spec["threads"]), *training_args,
               "--out", str(folder), *(["--resume"] if state == "resume" else [])]
    status = run_trainer(command, folder / TRAINER_OUTPUT, spec["env"])
    if status != 0:
        raise RuntimeError(f"{spec['label']}: dqn_atari.py {exit_description(status)}: "
                           f"{last_line(folder / TRAINER_OUTPUT)} (all of it: {folder / TRAINER_OUTPUT})")
    atomic_file.write_text(folder / DONE_FILE, json.dumps(
        {"training_args": training_args, "finished": datetime.datetime.now().isoformat(timespec="seconds")},
        indent=2) + "\n")
    print(f"{spec['label']}: finished", flush=True)


def wait_for_trainer_to_end(folder, file_stem, timeout_s=LOCK_WAIT_S):
    """Waits while a trainer holds the run's lock (``.<env>.lock``, flock): the one a dead worker
    left may still be stopping, perhaps writing a checkpoint. After ``timeout_s`` the new trainer is
    started anyway, and refuses with its own message if the folder is still in use."""
    path = Path(folder) / f".{file_stem}.lock"
    deadline = time.monotonic() + timeout_s
    while path.exists() and time.monotonic() < deadline:
        try:
            with open(path) as lock:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared: a read-only file may take it on NFS too
                return
        except FileNotFoundError:
            return
        except BlockingIOError:
            time.sleep(1)


def run_trainer(command, output_path, extra_env):
    """Runs the trainer with its output appended to ``output_path``; returns its exit status. If the
    worker dies first the kernel sends the trainer SIGTERM (where Ray has not ended it already), so
    that no trainer goes on without a parent, holding its folder against the retry."""
    with open(output_path, "ab") as output:
        output.write(f"\n=== {datetime.datetime.now():%Y-%m-%d %H:%M:%S} {shlex.join(command)}\n".encode())
        output.flush()
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=Path(output_path).parent, env={**os.environ, **extra_env},
                                   preexec_fn=_terminate_with_parent if sys.platform == "linux" else None)
        try:
            return process.wait()
        except BaseException:
            process.terminate()
            process.wait()
            raise


def _terminate_with_parent():
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def exit_description(status):
    if status < 0:
        return f"was killed by {signal.Signals(-status).name}"
    return f"exited with status {status}"


def last_line(path):
    try:
        return last_nonempty(Path(path).read_text(errors="replace"))
    except OSError:
        return "(no output)"


# ---------------------------------------------------------------------------------------------
# Many runs, on Ray Tune


def import_ray():
    """Ray and Tune, or a UserError saying how to install them."""
    try:
        import ray
        from ray import tune
    except ImportError as error:
        raise UserError(f"Ray Tune is not installed ({error}): pip install -r requirements-sweep.txt "
                        f"(or the sweep extra, pip install '.[sweep]')") from None
    return ray, tune


def train_on_ray(specs, args, out):
    """Runs one Tune trial per spec; returns a line for each run that failed after its retries."""
    ray, tune = import_ray()
    connect_ray(ray, args.address)
    try:
        trainable = tune.with_resources(train_to_the_end, {"cpu": args.cpus_per_run, "gpu": args.gpus_per_run})
        tuner = tune.Tuner(
            trainable,
            param_space={"run": tune.grid_search(specs)},
            tune_config=tune.TuneConfig(max_concurrent_trials=args.max_concurrent, trial_name_creator=trial_name,
                                        trial_dirname_creator=trial_name),
            run_config=tune.RunConfig(name=TUNE_FOLDER, storage_path=str(out.resolve()), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=args.max_failures)))
        results = tuner.fit()
    finally:
        ray.shutdown()
    return [str(result.error).strip().splitlines()[-1] for result in results if result.error]


def connect_ray(ray, address):
    """Starts a Ray instance on this machine (``address`` None) or joins the cluster at ``address``.
    The workers find common/ and training/ (which the trainable imports) on PYTHONPATH: the same
    checkout path on every node."""
    python_path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    options = {"runtime_env": {"env_vars": {"PYTHONPATH": python_path}}}
    if address is None:
        # Only a few small dicts travel between the processes: a small object store will do.
        options.update(include_dashboard=False, object_store_memory=2**28)
    try:
        ray.init(address=address, **options)
    except ConnectionError as error:
        raise UserError(f"--address {address}: cannot reach a Ray cluster there ({error})") from None


def check_reachable(address):
    """Refuses a HOST:PORT that takes no connection at once (ray.init would retry it for minutes)."""
    host, colon, port = address.rpartition(":")
    if not colon or not port.isdigit() or "://" in address:
        return  # auto, or a ray:// client address: ray.init says what is wrong with it
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise UserError(f"--address {address}: no Ray head answers there ({error.strerror or error}); "
                        f"start one with `ray start --head --port {port}`") from None


def trial_name(trial):
    return re.sub(r"[^A-Za-z0-9_.=,+-]+", "_", trial.config["run"]["label"])


def trial_spec(run, shared_args, args):
    """What the trainable needs of a run, as plain data that Tune can store and show."""
    env = {}
    if 0 < args.gpus_per_run < 1:  # runs sharing a GPU: each takes memory as it needs it, not all at once
        env = {"TF_FORCE_GPU_ALLOW_GROWTH": "true", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    return {"label": run.label, "folder": str(run.folder.resolve()), "game": run.game,
            "file_stem": run.file_stem, "training_args": run.training_args(shared_args), "trainer": str(TRAINER),
            "threads": max(1, int(args.cpus_per_run)), "env": env}


# ---------------------------------------------------------------------------------------------
# The summary: a table and an overlay graph per game


@dataclasses.dataclass(frozen=True)
class Outcome:
    """Where one run stands, from its folder: ``steps`` is the global step of its last logged episode."""

    run: Run
    status: str
    steps: int | None
    episodes: int
    mean_score: float | None
    protocol_score: float | None


def outcome(run):
    episodes = read_episodes(run.files.log)
    scores = [episode.score for episode in episodes[-MEAN_WINDOW:]]
    return Outcome(run, run_status(run), episodes[-1].step if episodes else None, len(episodes),
                   sum(scores) / len(scores) if scores else None, protocol_score(run))


def read_episodes(log):
    if not log.is_file():
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a torn last line of a run still training: skipped, as it should
        try:
            return read_log(log)
        except LogFormatError:
            return []


def run_status(run):
    if finished_with(run.folder) is not None:
        return "done"
    manifest = newest_manifest(run.folder, run.game)
    if manifest is not None:
        return f"checkpoint {manifest['step']:,}"
    return "no checkpoint" if trainer_files(run.folder) else "not started"


def protocol_score(run):
    """The mean score of the newest ``--eval`` of the run's weights (``<env>_weights_eval[-N].json``)."""
    pattern = re.compile(re.escape(f"{run.files.weights.stem}_eval") + r"(?:-(\d+))?\.json")
    found = [(int(match[1] or 1), path) for path in run.folder.glob("*.json")
             if (match := pattern.fullmatch(path.name))]
    if not found:
        return None
    try:
        return float(json.loads(max(found)[1].read_text())["mean_score"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


SUMMARY_COLUMNS = ("setting", "seed", "status", "steps", "episodes", f"mean of last {MEAN_WINDOW}", "protocol")
RIGHT_ALIGNED = {"seed", "steps", "episodes", f"mean of last {MEAN_WINDOW}", "protocol"}


def summary_text(outcomes):
    """A Markdown table per game, in plan order; numbers as the log holds them (mean to 2 places)."""
    sections = []
    for game in dict.fromkeys(outcome.run.game for outcome in outcomes):
        rows = [summary_row(outcome) for outcome in outcomes if outcome.run.game == game]
        sections.append(f"## {game}\n\n{markdown_table(SUMMARY_COLUMNS, rows)}")
    return "\n\n".join(sections) + "\n"


def summary_row(outcome):
    return (outcome.run.setting_label, str(outcome.run.seed), outcome.status, _cell(outcome.steps, ","),
            str(outcome.episodes), _cell(outcome.mean_score, ".2f"), _cell(outcome.protocol_score, ".2f"))


def _cell(value, form):
    return "-" if value is None else format(value, form)


def markdown_table(header, rows):
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]

    def line(cells):
        return "| " + " | ".join(cell.rjust(width) if name in RIGHT_ALIGNED else cell.ljust(width)
                                 for name, cell, width in zip(header, cells, widths)) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if name in RIGHT_ALIGNED else ("-" * (w + 2))
                          for name, w in zip(header, widths)) + "|"
    return "\n".join([line(header), rule, *map(line, rows)])


def draw_overlays(outcomes, out):
    """One set of overlay graphs per game (reward_visualizer.py), each run labelled by its setting and
    seed; returns what to print. The visualizer labels a log by its folder's name, so it is given
    links named ``<setting>,seed-N/<env>_log.txt`` in ``graphs/logs/<env>/``."""
    lines = []
    for stem in dict.fromkeys(outcome.run.file_stem for outcome in outcomes):
        logged = [o.run for o in outcomes if o.run.file_stem == stem and o.episodes]
        if not logged:
            lines.append(f"{stem}: no episode logged yet, no graph")
            continue
        links = log_links(logged, Path(out) / GRAPHS_FOLDER / "logs" / stem)
        result = subprocess.run([sys.executable, str(VISUALIZER), "-f", *map(str, links),
                                 "-o", str(Path(out) / GRAPHS_FOLDER), "-n", stem],
                                capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if result.returncode == 0:
            lines += [f"{stem}: {line}" for line in result.stdout.splitlines() if line.endswith(".png")]
        else:
            lines.append(f"{stem}: no graph, reward_visualizer.py failed: {last_nonempty(result.stderr)}")
    return lines


def log_links(runs, folder):
    """Relative links to each run's log (and evaluation log) under ``folder``, made anew."""
    shutil.rmtree(folder, ignore_errors=True)  # links only: their targets stay
    links = []
    for run in runs:
        place = folder / f"{run.setting_label},seed-{run.seed}"
        place.mkdir(parents=True)
        for target in (run.files.log, run.files.evaluations):
            if target.exists():
                (place / target.name).symlink_to(os.path.relpath(target.resolve(), place.resolve()))
        links.append(place / run.files.log.name)
    return links


def last_nonempty(text):
    return ([line for line in text.splitlines() if line.strip()] or ["(no output)"])[-1]


def report(runs, out):
    """Prints the summary and graph paths, and writes the table to ``<out>/summary.md``."""
    outcomes = [outcome(run) for run in runs]
    text = summary_text(outcomes)
    print(text, end="")
    Path(out).mkdir(parents=True, exist_ok=True)
    atomic_file.write_text(Path(out) / SUMMARY_FILE, text)
    print(f"\nsummary: {Path(out) / SUMMARY_FILE}")
    for line in draw_overlays(outcomes, out):
        print(f"graph {line}")


# ---------------------------------------------------------------------------------------------
# The command line


def build_parser():
    parser = OneLineErrorParser(
        prog=PROG,
        description="Train every combination of --games, --set values and --seeds, one dqn_atari.py run "
                    "each in <out>/<game>/<setting>/seed-<n>, side by side on Ray Tune (this machine, or a "
                    "cluster: docs/sweeps.md). Run the same command again to skip finished runs and resume "
                    "the others from their newest checkpoint.",
        epilog="Flags after -- go to every run's dqn_atari.py, e.g. -- --steps 2000000 --n-step 3 "
               "(not -env, --seed, --out, --resume, --continue, --play, --eval: the sweep owns those). "
               "Example: dqn_sweep.py --games Pong-v0 Breakout-v0 --seeds 1 2 3 --set lr=1e-4,6.25e-5 "
               "--preset laptop --out sweeps/lr",
        formatter_class=arguments.HelpFormatter)
    what = parser.add_argument_group("what to train")
    what.add_argument("--games", nargs="+", metavar="ID",
                      help="game ids, as dqn_atari.py -env takes them (Pong-v0, Breakout-v0, ALE/Pong-v5)")
    what.add_argument("--seeds", nargs="+", type=arguments.seed, metavar="N",
                      help="one run per seed for each game and setting")
    what.add_argument("--set", action="append", metavar="NAME=V1,V2",
                      help="sweep a dqn_atari.py option, named by its long flag without dashes "
                           "(lr, memory-size, n-step, gamma...); several --set make every combination")
    what.add_argument("--preset", metavar="NAME", help="dqn_atari.py --preset for every run (laptop)")
    what.add_argument("--out", required=True, metavar="DIR",
                      help="the sweep's folder: a folder per run, summary.md, graphs/, ray_tune/; on a cluster "
                           "a path that every node sees (NFS)")
    ray_group = parser.add_argument_group("Ray")
    ray_group.add_argument("--address", metavar="auto|HOST:PORT",
                           help="join a running Ray cluster: auto (the one `ray start` made on this machine) or "
                                "its head's address (default: start a Ray instance on this machine for the sweep)")
    ray_group.add_argument("--cpus-per-run", type=arguments.positive_float, default=2.0, metavar="N",
                           help="CPUs Ray reserves for each run; the trainer gets --threads of its whole part "
                                "(a flag after -- wins) (default: %(default)g, one plays while the other learns)")
    ray_group.add_argument("--gpus-per-run", type=arguments.non_negative_float, default=0.0, metavar="N",
                           help="GPUs per run; a fraction shares one (0.5: two runs a GPU, each growing its "
                                "memory as needed) (default: %(default)g)")
    ray_group.add_argument("--max-concurrent", type=arguments.positive_number, metavar="N",
                           help="at most this many runs at once (default: as many as the CPUs and GPUs allow)")
    ray_group.add_argument("--max-failures", type=arguments.whole_number, default=3, metavar="N",
                           help="times a run is retried, from its newest checkpoint, after its trainer or its "
                                "Ray worker dies")
    actions = parser.add_argument_group("instead of training")
    actions.add_argument("--dry-run", action="store_true",
                         help="check every run with dqn_atari.py, list the runs, their state and command, exit")
    actions.add_argument("--summary", action="store_true",
                         help="print and write the summary table and graphs, train nothing (without --games: "
                              "every run found under --out)")
    return parser


def split_trainer_flags(argv):
    """``[sweep flags..., "--", trainer flags...]`` -> the two lists."""
    if "--" not in argv:
        return list(argv), []
    cut = argv.index("--")
    return list(argv[:cut]), list(argv[cut + 1:])


def check_lists(games, seeds):
    for name, values in (("--games", games), ("--seeds", seeds)):
        repeated = sorted({str(value) for value in values if values.count(value) > 1})
        if repeated:
            raise UserError(f"{name}: {', '.join(repeated)} given twice")


def main(argv=None):
    """The command line; returns the exit status (a UserError: one line on stderr and 2)."""
    try:
        return sweep(sys.argv[1:] if argv is None else argv)
    except UserError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2


def sweep(argv):
    own_flags, trainer_flags = split_trainer_flags(argv)
    parser = build_parser()
    args = parser.parse_args(own_flags)
    out = Path(args.out)
    if args.summary and not (args.games or args.seeds or args.set):
        report(discover_runs(out), out)
        return 0
    if not (args.games and args.seeds):
        parser.error("--games and --seeds are required (with --summary alone: the runs found under --out)")
    runs, shared_args = plan_sweep(args, trainer_flags)
    if args.summary:
        report(runs, out)
        return 0
    check_with_trainer(runs, shared_args)
    states = {run: run_state(run.folder, run.game, run.training_args(shared_args)) for run in runs}
    if args.dry_run:
        list_runs(runs, states, shared_args, args)
        return 0
    return train_and_report(runs, states, shared_args, args)


def plan_sweep(args, trainer_flags_given):
    """The runs of the command line, and the trainer flags they all get; UserError for bad input."""
    check_lists(args.games, args.seeds)
    flags = trainer_flags()
    settings = parse_settings(args.set or [], flags)
    check_trainer_flags(trainer_flags_given, flags, {flags[f"--{name}"]: name for name, _ in settings})
    shared_args = [*(["--preset", args.preset] if args.preset else []), *trainer_flags_given]
    return with_folders(plan_runs(Path(args.out), args.games, args.seeds, settings)), shared_args


def train_and_report(runs, states, shared_args, args):
    """Trains the runs that are not done, prints the summary; 0 once every run is done, else 1."""
    pending = [run for run in runs if states[run] != "done"]
    failures = []
    if pending:
        import_ray()  # before any run starts: a missing Ray or cluster is one line
        if args.address:
            check_reachable(args.address)
        print(f"{PROG}: {len(pending)} of {len(runs)} runs to train ({describe_states(states)})", flush=True)
        failures = train_on_ray([trial_spec(run, shared_args, args) for run in pending], args, Path(args.out))
    else:
        print(f"{PROG}: all {len(runs)} runs are done; nothing to train")
    report(runs, Path(args.out))
    for failure in failures:
        print(f"{PROG}: failed: {failure}", file=sys.stderr)
    unfinished = [run for run in pending if run_state(run.folder, run.game, run.training_args(shared_args)) != "done"]
    if unfinished:
        print(f"{PROG}: {len(unfinished)} of {len(runs)} runs did not finish; the same command again resumes them",
              file=sys.stderr)
    return 1 if unfinished else 0


def describe_states(states):
    counts = {state: list(states.values()).count(state) for state in ("new", "resume", "restart", "done")}
    words = {"new": "new", "resume": "to resume", "restart": "to restart", "done": "done"}
    return ", ".join(f"{count} {words[state]}" for state, count in counts.items() if count)


def list_runs(runs, states, shared_args, args):
    print(f"{len(runs)} runs under {args.out} ({describe_states(states)}):")
    for run in runs:
        spec = trial_spec(run, shared_args, args)
        command = ["dqn_atari.py", "--threads", str(spec["threads"]), *spec["training_args"], "--out", str(run.folder),
                   *(["--resume"] if states[run] == "resume" else [])]
        print(f"  {states[run]:<8} {run.folder}\n           {shlex.join(command)}")


if __name__ == "__main__":
    sys.exit(main())
