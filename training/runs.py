"""Starting a run in a folder, or resuming the one there: the checks before anything is written,
the earlier run set aside, the lock that keeps a second run out, and the parts handed to the loop."""
import contextlib
import dataclasses
import datetime
import json
import os
import sys
from pathlib import Path

from common.atomic_file import write_text
from common.errors import SettingError, UserError
from common.native_stderr import native_stderr_silenced
from training.build import PROG, load_into_both_networks, make_agent, make_memory, open_envs, setup_backend
from training.checkpoints import CheckpointStore, read_manifest, restore_checkpoint, resumed_config
from training.config import (RunFiles, pre_fill_warnings, validate, with_drawn_seed, with_resolved_optimizer_epsilon,
                             with_resolved_precision)
from training.loop import run_training
from training.periodic_evaluation import PeriodicEvaluation
from training.tensorboard import check_folder as check_tensorboard_events


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """Where a run stopped: what the command prints as it goes, for a Python caller."""

    config: object  # the Config the run went with, seed and precision resolved
    files: RunFiles
    steps: int
    episodes: int
    mean_recent_score: float  # the last 100 episodes' raw scores; nan before the first ends
    stopped: bool  # by Ctrl-C or SIGTERM before config.steps

    @property
    def finished(self):
        return not self.stopped


def train(config, name=str):
    """Builds the parts of a run of ``config`` and trains; returns its RunSummary.
    ``name(field)`` names a setting in the warnings (the command line: its flags)."""
    validate(config)
    config = with_resolved_optimizer_epsilon(with_resolved_precision(with_drawn_seed(config)))
    files = RunFiles.for_env(ensure_writable_folder(config.out), config.env_id)
    with run_lock(config.out, config.env_id):
        store = CheckpointStore(files.checkpoints, keep=config.keep_checkpoints)
        earlier_checkpoints = store.latest() is not None
        if earlier_checkpoints and not config.continue_from:
            raise SettingError(f"{SettingError.literal(store.folder)} holds checkpoints of an earlier run: continue "
                               f"it with {{resume}}, or move that folder away, or choose another {{out}}")
        earlier_files = ([path.name for path in (files.log, files.evaluations) if _has_content(path)]
                         + [path.name for path in (files.weights, files.best_weights) if path.exists()])
        if earlier_files and not config.continue_from:
            raise SettingError(SettingError.literal(f"{config.out} already holds a run of {config.env_id} "
                                                    f"({', '.join(earlier_files)})")
                               + f": continue it with {{resume}} or {{continue_from}} "
                                 f"{SettingError.literal(files.weights)}, or choose another {{out}}")
        check_tensorboard_folder(config.tensorboard)  # before --continue sets the earlier run aside
        for warning in pre_fill_warnings(config, name):
            print(f"{PROG}: warning: {warning}", file=sys.stderr)
        with opened_run_parts(config, files) as parts:
            if config.continue_from:
                load_into_both_networks(parts.agent, config.continue_from, parts.rom)
                # only once the weights loaded: a refused run moves nothing
                config = set_aside_earlier_run(files, config)
            save_config(files.config, config)
            print(f"training {config.env_id} ({parts.envs[0].action_space.n} actions) for {config.steps:,} "
                  f"steps; log {files.log}, weights {files.weights}")
            return parts.run(config, files, store)


def resume(cli_config, explicit):
    """Continues the run in ``cli_config.out`` from its newest complete checkpoint; returns its
    RunSummary. ``explicit``: the fields the caller set, which must match the checkpoint's unless
    a resume may change them."""
    from common.runlog import truncate_after_step, truncate_eval_after_step
    from preprocessing import resolve_env_id

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
        with opened_run_parts(config, files) as parts:
            progress = restore_checkpoint(folder, config, parts.agent, parts.memory, parts.envs, parts.rom)
            check_tensorboard_folder(config.tensorboard, progress.tensorboard_files)  # before the logs are cut
            dropped = truncate_after_step(files.log, progress.step) if _has_content(files.log) else 0
            if _has_content(files.evaluations):
                truncate_eval_after_step(files.evaluations, progress.step)
            save_config(files.config, config)
            print(f"resuming {config.env_id} from {folder.name}: step {progress.step:,}, "
                  f"episode {progress.tally.episodes}" + (f"; dropped {dropped} log rows after it" if dropped else ""))
            return parts.run(config, files, store, progress)


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
    except BaseException as error:  # Ctrl-C among the renames puts the earlier ones back too
        for path_back, aside in reversed(done):
            aside.rename(path_back)
        if not isinstance(error, OSError):
            raise
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


@dataclasses.dataclass
class RunParts:
    """What a training run is made of, built from its configuration."""

    envs: list
    rom: str
    agent: object
    memory: object
    evaluation: object

    def run(self, config, files, store, progress=None):
        progress = run_training(config, self.envs, self.agent, self.memory, files, game=self.rom,
                                checkpoints=store, progress=progress, evaluation=self.evaluation)
        return RunSummary(config, files, progress.step, progress.tally.episodes, progress.tally.mean_recent_score,
                          stopped=progress.step < config.steps)


@contextlib.contextmanager
def opened_run_parts(config, files):
    """The parts of a run of ``config``; their games close on leaving, whatever ends the run (a
    refused weights file, a damaged checkpoint, Ctrl-C), and a window opened by -r with them."""
    setup_backend(config)
    with contextlib.ExitStack() as games:
        envs, rom = open_envs(config, render=config.render)
        for env in envs:
            games.callback(env.close)
        evaluation = None
        if config.eval_every:
            from evaluation import make_eval_env

            with native_stderr_silenced():
                eval_env = make_eval_env(config.env_id, seed=config.seed)
            games.callback(eval_env.close)
            evaluation = PeriodicEvaluation(config, files, eval_env, rom)
        yield RunParts(envs, rom, make_agent(config, envs[0].action_space.n), make_memory(config), evaluation)


def ensure_writable_folder(folder, what="{out} folder"):
    """``folder``, made if needed, once a file could be written there; else a SettingError naming
    ``what`` (a template)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise SettingError(f"cannot write to {what} " + SettingError.literal(f"{folder}: {error.strerror or error}")) from None
    return folder


def check_tensorboard_folder(folder, own_files=()):
    """A SettingError naming ``{tensorboard}`` unless a run could write its events into ``folder``
    (None: no TensorBoard log), which holds no event files but ``own_files`` (the names of the run's
    own; None: any). Called before a run changes anything."""
    if folder is not None:
        check_tensorboard_events(folder, own_files=own_files)
        ensure_writable_folder(folder, "{tensorboard} folder")


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
            raise SettingError(SettingError.literal(f"another run of {env_id} is training in {folder} (process {holder})")
                               + ": wait for it to end, or choose another {out}") from None
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


def save_config(path, config):
    try:
        write_text(path, json.dumps(dataclasses.asdict(config), indent=2) + "\n")
    except OSError as error:  # a full disk, or a folder where the file should be
        raise UserError(f"cannot write {path}: {error.strerror or error}") from None


def _has_content(path):
    return path.is_file() and path.stat().st_size > 0
