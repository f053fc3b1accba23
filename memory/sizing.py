"""How many bytes a replay memory needs, and a refusal when the machine does not have them.

The refusal happens before the first frame is stored: a memory that outgrows the machine is
found out hours into a run, when the kernel kills the process and the run is lost.
"""
import os
from pathlib import Path

from common.errors import SettingError

FLAG_ARRAYS_BYTES_PER_SLOT = 4 + 4 + 4  # int32 action, float32 reward, four bool flags
COMPRESSED_INDEX_BYTES_PER_SLOT = 8 + 4 + 2  # int64 arena offset, int32 length, uint16 dictionary
ASSUMED_COMPRESSION_RATIO = 4.0
"""A pessimistic ratio for planning: the worst case measured (Space Invaders, lz4, before a
dictionary is trained) compresses 4.5 to 1, and 11 to 60 to 1 with one. The store grows its
arena as it needs, so this only decides whether to refuse."""
ARENA_GROWTH_SLACK = 1.25


class MemoryTooLargeError(SettingError):
    """The requested replay capacity does not fit in the memory this machine has available."""


def required_bytes(capacity: int, compression: str, frame_shape=(84, 84)) -> int:
    """Bytes a full memory of `capacity` frames will hold, including its per-slot arrays.

    Raw frames cost exactly their pixels; compressed frames are estimated with
    `ASSUMED_COMPRESSION_RATIO` and the arena's growth slack.
    """
    frame_bytes = int(frame_shape[0]) * int(frame_shape[1])
    if compression == "none":
        per_slot = frame_bytes + FLAG_ARRAYS_BYTES_PER_SLOT
    else:
        stored_frame = frame_bytes / ASSUMED_COMPRESSION_RATIO * ARENA_GROWTH_SLACK
        per_slot = stored_frame + COMPRESSED_INDEX_BYTES_PER_SLOT + FLAG_ARRAYS_BYTES_PER_SLOT
    return int(capacity * per_slot)


UNLIMITED = 2**62
"""cgroup v1 writes "no limit" as a number near 2**63; anything this large is no limit."""


def available_memory_bytes(root="/") -> int | None:
    """Bytes a new allocation can get: the kernel's MemAvailable, or less where this process's
    container (its memory cgroup) has a limit closer than that.

    Falls back to the free physical pages where /proc/meminfo does not exist; None when the
    platform tells neither, in which case nothing is refused. ``root`` is for tests.
    """
    figures = [_meminfo_available(Path(root)), cgroup_headroom_bytes(root)]
    figures = [figure for figure in figures if figure is not None]
    return min(figures) if figures else None


def _meminfo_available(root):
    try:
        with open(root / "proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def cgroup_headroom_bytes(root="/") -> int | None:
    """Bytes this process's memory cgroup can still take before its limit (the smallest along its
    path, for cgroup v2 and v1), counting the inactive file cache the kernel would reclaim as free;
    None where no limit applies or the cgroup files cannot be read."""
    root = Path(root)
    try:
        lines = (root / "proc/self/cgroup").read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    headrooms = []
    try:
        for line in lines:
            _, controllers, path = line.split(":", 2)
            if controllers == "":
                headrooms.append(_v2_headroom(root / "sys/fs/cgroup", path))
            elif "memory" in controllers.split(","):
                headrooms.append(_v1_headroom(root / "sys/fs/cgroup/memory", path))
    except ValueError:  # not what a kernel writes: no figure rather than a refusal
        return None
    headrooms = [headroom for headroom in headrooms if headroom is not None]
    return min(headrooms) if headrooms else None


def _v2_headroom(mount, path):
    return _smallest_headroom(mount, path, "memory.max", "memory.current", "inactive_file")


def _v1_headroom(mount, path):
    return _smallest_headroom(mount, path, "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")


def _smallest_headroom(mount, path, limit_file, usage_file, inactive_key):
    """The least room under a limit from the process's cgroup up to the mount: a parent's limit
    binds the usage of all its children, siblings included. Inside a container the folders below
    the mount are missing (it sees its own cgroup as the mount), and the mount's limit counts."""
    folder, headrooms = mount / path.lstrip("/"), []
    while True:
        limit = _read(folder / limit_file)
        if limit not in (None, "max") and int(limit) < UNLIMITED:
            usage = int(_read(folder / usage_file) or 0)
            headrooms.append(int(limit) - usage + _stat(folder, inactive_key))
        if folder == mount or mount not in folder.parents:
            break
        folder = folder.parent
    return max(min(headrooms), 0) if headrooms else None


def _read(path):
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _stat(folder, key):
    """One figure of ``memory.stat``, 0 where it is missing."""
    for line in (_read(folder / "memory.stat") or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    return 0


def ensure_fits(capacity: int, compression: str, frame_shape=(84, 84), available: int | None = None):
    """Raise MemoryTooLargeError, naming both figures, when the memory cannot fit.

    `available` defaults to `available_memory_bytes()`; tests pass their own figure.
    """
    needed = required_bytes(capacity, compression, frame_shape)
    if available is None:
        available = available_memory_bytes()
    if available is not None and needed > available:
        raise MemoryTooLargeError(
            f"a replay memory of {capacity:,} transitions with compression '{compression}' needs "
            f"{format_gb(needed)} but this machine has only {format_gb(available)} available; "
            f"choose a smaller {{memory_size}}"
            + (" or a compressed memory ({memory_compression} zstd)" if compression == "none" else "")
        )


def format_gb(num_bytes: int) -> str:
    return f"{num_bytes / 1e9:.2f} GB"
