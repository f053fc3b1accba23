"""Checkpoints: everything a run needs to go on exactly, written crash-safe, and the rules of a resume.

A checkpoint holds the three networks, the optimizer's state, the replay memory, the counters
and every random generator. The newest complete one always survives a ``kill -9``:

    <out>/<env>_checkpoints/
        step-000000012345/          a complete checkpoint: MANIFEST.json is written last
        .step-000000067890.partial/ one being written (or left by a crash): ignored, cleaned

A checkpoint is written into a ``.partial`` folder, every file fsynced, the manifest last; then
the folder is renamed to its final name and the parent folder fsynced. A reader only trusts a
folder whose manifest exists and lists files of the recorded sizes. Older checkpoints are deleted
only after a newer one is complete, keeping the newest ``keep``.

A resumed run goes on with the checkpoint's configuration; the command line may change only the
settings in ``RESUMABLE_OVERRIDES`` (:func:`resumed_config`).
"""
import dataclasses
import json
import os
import pickle
import random
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from common.atomic_file import atomic_path, fsync_path, write_bytes, write_text
from common.errors import SettingError, UserError
from training.config import Config, with_resolved_optimizer_epsilon
from training.state import Progress, game_copies, memory_streams

MANIFEST = "MANIFEST.json"
FORMAT = "dqn-atari-checkpoint"
_COMPLETE = re.compile(r"^step-(\d{12})$")
_PARTIAL_SUFFIX = ".partial"
# Tests set this to hold a save between its files and its manifest, to kill the process there.
PAUSE_BEFORE_MANIFEST = "DQN_ATARI_TEST_CHECKPOINT_PAUSE"


class CheckpointError(UserError):
    """No usable checkpoint, or one made by another game or configuration."""


class CheckpointStore:
    """The checkpoint folders of one run."""

    def __init__(self, folder, keep=2):
        self.folder = Path(folder)
        self.keep = keep

    def save(self, step, write_files, metadata):
        """Writes a checkpoint for ``step``: ``write_files(folder)`` fills a temporary folder,
        then the manifest (``metadata`` plus the file sizes) is written and the folder published."""
        final = self.folder / f"step-{step:012d}"
        if read_manifest(final, strict=False) is not None:
            return final  # nothing has changed since this step was saved
        partial = self.folder / f".{final.name}{_PARTIAL_SUFFIX}"
        try:
            if not self.folder.is_dir():
                self.folder.mkdir(parents=True)
                fsync_path(self.folder.parent)  # so that the new folder's entry survives a power cut
            self.remove_partial()
            partial.mkdir()
            write_files(partial)
            _pause_for_tests(partial)
            sizes = {p.name: p.stat().st_size for p in sorted(partial.iterdir()) if p.is_file()}
            write_text(partial / MANIFEST, json.dumps({"format": FORMAT, "step": step, "files": sizes,
                                                       **metadata}, indent=2) + "\n")
            fsync_path(partial)
            if final.exists():
                shutil.rmtree(final)  # an incomplete folder of the same step
            os.rename(partial, final)
            fsync_path(self.folder)
        except BaseException as error:  # also write_files's own (a weights file it could not write, say)
            shutil.rmtree(partial, ignore_errors=True)
            if isinstance(error, OSError):
                raise CheckpointError(f"cannot write a checkpoint in {self.folder}: "
                                      f"{error.strerror or error}") from None
            raise
        self._prune()
        return final

    def complete(self):
        """Complete checkpoint folders, oldest first."""
        return [p for p in self._step_folders() if read_manifest(p, strict=False) is not None]

    def latest(self):
        """The newest complete checkpoint folder, or None."""
        found = self.complete()
        return found[-1] if found else None

    def remove_partial(self):
        """Deletes folders left by an interrupted save."""
        if self.folder.is_dir():
            for leftover in self.folder.glob(f".step-*{_PARTIAL_SUFFIX}"):
                shutil.rmtree(leftover, ignore_errors=True)

    def _step_folders(self):
        """Folders named as complete checkpoints (``step-N``), oldest first, whether complete or not."""
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if _COMPLETE.match(p.name) and p.is_dir())

    def _prune(self):
        """Deletes the checkpoints older than the newest ``keep`` complete ones, and any incomplete
        folder among them. Each is first renamed to a ``.partial`` name, so that a deletion cut
        short by a crash is finished by the next save's cleanup instead of staying for good."""
        kept = self.complete()[-self.keep:]
        if not kept:
            return
        for old in self._step_folders():
            if old.name >= kept[0].name:
                break
            doomed = old.with_name(f".{old.name}{_PARTIAL_SUFFIX}")
            try:
                os.rename(old, doomed)
            except OSError:
                continue
            shutil.rmtree(doomed, ignore_errors=True)


def _pause_for_tests(partial):
    seconds = float(os.environ.get(PAUSE_BEFORE_MANIFEST, 0))
    if seconds > 0:
        print(f"checkpoint files written to {partial}, manifest pending", file=sys.stderr, flush=True)
        time.sleep(seconds)


def read_manifest(folder, strict=True):
    """The manifest of a complete checkpoint; None (or CheckpointError when strict) if incomplete."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError("not a dqn-atari checkpoint")
        if not isinstance(manifest.get("files"), dict) or not isinstance(manifest.get("config", {}), dict):
            raise ValueError(f"{MANIFEST} holds no list of files or no configuration")
        for name, size in manifest["files"].items():
            if (folder / name).stat().st_size != size:
                raise ValueError(f"{name} has the wrong size")
    except (OSError, ValueError, KeyError, TypeError) as error:
        if strict:
            raise CheckpointError(f"checkpoint {folder} is incomplete or damaged: {error}") from None
        return None
    return manifest


def write_checkpoint(store, config, agent, memory, envs, progress, game):
    """Everything needed to continue exactly: networks, optimizer, memory, counters and RNGs."""
    from agent import save_weights as write_weights
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
            "tensorboard_files": progress.tensorboard_files,
            "envs": [env_snapshot(env) for env in envs], "agent_rng": agent.rng.bit_generator.state,
            "python_random": random.getstate(), "numpy_random": np.random.get_state()}))

    return store.save(progress.step, write_files, {
        "env_id": config.env_id, "game": game, "episodes": progress.tally.episodes,
        "config": dataclasses.asdict(config)})


def restore_checkpoint(folder, config, agent, memory, envs, game):
    """Loads a checkpoint written by ``write_checkpoint``; returns the run's Progress."""
    from agent import load_weights
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
        progress.tensorboard_files = data.get("tensorboard_files")  # None in checkpoints from before they were recorded
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


# A run with --optimizer rmsprop started before the configuration recorded the optimizer's epsilon
# ran with the default of that time, 0.01 (now 0.01 / 32**2: agent/dqn.py).
RMSPROP_EPSILON_BEFORE_RECORDED = 0.01
# Settings a resumed run may change; any other must match the checkpoint's configuration.
RESUMABLE_OVERRIDES = frozenset({"steps", "render", "threads", "learner", "out", "save_every", "checkpoint_every",
                                 "keep_checkpoints", "save_memory", "tensorboard"})


class SettingMismatchError(SettingError, CheckpointError):
    """A resume asked for a setting other than the one the checkpoint was made with."""

    def __init__(self, folder, field, made_with, asked):
        self.folder, self.field, self.made_with, self.asked = folder, field, made_with, asked
        super().__init__(self.worded())

    def worded(self, name=str, setting=None):
        """The message, each setting worded by ``setting(field, value)`` (``with --lr 0.0001``) and
        each name by ``name(field)``; by default ``with learning_rate=0.0001``."""
        setting = setting or (lambda field, value: f"with {name(field)}={value!r}")
        may_change = ", ".join(sorted(name(field) for field in RESUMABLE_OVERRIDES))
        return (f"checkpoint {self.folder} was made {setting(self.field, self.made_with)}, but this command runs "
                f"{setting(self.field, self.asked)}; only {may_change} may change")


def resumed_config(manifest, asked, given, folder):
    """The checkpoint's configuration with what ``asked`` (a Config) may change of it; ``given``:
    the fields the caller set explicitly, which must otherwise match (SettingMismatchError)."""
    saved = manifest.get("config", {})
    if saved.get("env_id") != asked.env_id:
        raise CheckpointError(f"checkpoint {folder} belongs to {saved.get('env_id')}, not {asked.env_id}")
    known = {f.name for f in dataclasses.fields(Config)}
    defaults = Config()  # what a checkpoint older than a setting ran with
    if saved.get("optimizer") == "rmsprop" and saved.get("optimizer_epsilon") is None:
        saved = dict(saved, optimizer_epsilon=RMSPROP_EPSILON_BEFORE_RECORDED)
    for key in sorted((given & known) - RESUMABLE_OVERRIDES):
        made_with = saved.get(key, getattr(defaults, key))
        if made_with != getattr(asked, key):
            raise SettingMismatchError(folder, key, made_with, getattr(asked, key))
    overrides = {key: getattr(asked, key) for key in (RESUMABLE_OVERRIDES & given) | {"out"}}
    return with_resolved_optimizer_epsilon(
        dataclasses.replace(Config(**{k: v for k, v in saved.items() if k in known}), **overrides))
