"""One .npz file per memory snapshot, written so that a crash leaves the old file or the new one.

Arrays are stored uncompressed: frames are already compressed in the compressed stores, and the
raw ring's gigabytes would take minutes to deflate.
"""
import zipfile

import numpy as np

from common.atomic_file import atomic_path
from common.errors import UserError


def write_arrays_atomically(path, arrays: dict[str, np.ndarray]):
    """Write `arrays` to a temporary file beside `path`, fsync it, then rename it over `path`."""
    with atomic_path(path) as temporary, open(temporary, "wb") as file:
        np.savez(file, **arrays)


def read_arrays(path) -> dict[str, np.ndarray]:
    """Every array in the snapshot at `path`; UserError when it is missing or not a snapshot."""
    try:
        with np.load(path, allow_pickle=False) as snapshot:
            return {name: snapshot[name] for name in snapshot.files}
    except FileNotFoundError:
        raise UserError(f"replay memory file not found: {path}") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise UserError(f"cannot read replay memory file {path}: {error}") from None


def check_layout(current: np.ndarray, loaded: np.ndarray, name: str):
    """ValueError unless `loaded` has the shape and dtype of the array it replaces."""
    if loaded.shape != current.shape or loaded.dtype != current.dtype:
        raise ValueError(f"{name}: expected {current.dtype}{list(current.shape)}, "
                         f"found {loaded.dtype}{list(loaded.shape)}")
