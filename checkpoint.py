"""Crash-safe checkpoint folders: the newest complete one always survives a ``kill -9``.

    <out>/<env>_checkpoints/
        step-000000012345/          a complete checkpoint: MANIFEST.json is written last
        .step-000000067890.partial/ one being written (or left by a crash): ignored, cleaned

A checkpoint is written into a ``.partial`` folder, every file fsynced, the manifest last; then
the folder is renamed to its final name and the parent folder fsynced. A reader only trusts a
folder whose manifest exists and lists files of the recorded sizes. Older checkpoints are deleted
only after a newer one is complete, keeping the newest ``keep``.
"""
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

from common.atomic_file import fsync_path, write_text
from common.errors import UserError

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
        if manifest.get("format") != FORMAT:
            raise ValueError("not a dqn-atari checkpoint")
        for name, size in manifest["files"].items():
            if (folder / name).stat().st_size != size:
                raise ValueError(f"{name} has the wrong size")
    except (OSError, ValueError, KeyError, TypeError) as error:
        if strict:
            raise CheckpointError(f"checkpoint {folder} is incomplete or damaged: {error}") from None
        return None
    return manifest

