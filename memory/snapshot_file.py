"""One .npz file per memory snapshot, written so that a crash leaves the old file or the new one.

Arrays are stored uncompressed: frames are already compressed in the compressed stores, and the
raw ring's gigabytes would take minutes to deflate.
"""
import os
import zipfile
from pathlib import Path

import numpy as np

from errors import UserError


def write_arrays_atomically(path, arrays: dict[str, np.ndarray]):
    """Write `arrays` to a temporary file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as file:
            np.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_directory(path.parent)


def read_arrays(path) -> dict[str, np.ndarray]:
    """Every array in the snapshot at `path`; UserError when it is missing or not a snapshot."""
    try:
        with np.load(path, allow_pickle=False) as snapshot:
            return {name: snapshot[name] for name in snapshot.files}
    except FileNotFoundError:
        raise UserError(f"replay memory file not found: {path}") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise UserError(f"cannot read replay memory file {path}: {error}") from None


def _fsync_directory(directory: Path):
    """Make the rename itself durable; platforms that cannot open a directory skip this."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def check_layout(current: np.ndarray, loaded: np.ndarray, name: str):
    """ValueError unless `loaded` has the shape and dtype of the array it replaces."""
    if loaded.shape != current.shape or loaded.dtype != current.dtype:
        raise ValueError(f"{name}: expected {current.dtype}{list(current.shape)}, "
                         f"found {loaded.dtype}{list(loaded.shape)}")
