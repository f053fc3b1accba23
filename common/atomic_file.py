"""Crash-safe file replacement: write to a temp name in the same folder, fsync, rename.

A reader (or a run restarted after ``kill -9``) sees either the old complete file or the new
complete file, never a half-written one.
"""
import contextlib
import os
import tempfile
from pathlib import Path

TEMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_path(path, replace=True):
    """Yields a temporary path beside ``path``; on a clean exit it is fsynced and renamed onto ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched. With
    ``replace=False`` an existing ``path`` is never replaced: FileExistsError instead (the file
    appears by a hard link, which like a rename is all or nothing).
    """
    path = Path(path)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)
    os.close(fd)
    try:
        yield Path(temp_name)
        fsync_path(temp_name)
        if replace:
            os.replace(temp_name, path)
        else:
            os.link(temp_name, path)
            os.unlink(temp_name)
        fsync_path(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def write_bytes(path, data, replace=True):
    """Atomically replaces ``path`` with ``data`` (``replace=False``: see :func:`atomic_path`)."""
    with atomic_path(path, replace) as temp:
        temp.write_bytes(data)


def write_text(path, text, replace=True):
    """Atomically replaces ``path`` with ``text`` (UTF-8)."""
    write_bytes(path, text.encode("utf-8"), replace)


def _read_umask():
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


# Read once, at import, while the main thread runs alone: reading the umask means setting it, and
# a file another thread (the learner's) made in that moment would get the temporary mask.
_UMASK = _read_umask()


def fsync_path(path):
    """Flushes a file's data, or a folder's entries (a rename, a new file), to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
