"""How many bytes a replay memory needs, and a refusal when the machine does not have them.

The refusal happens before the first frame is stored: a memory that outgrows the machine is
found out hours into a run, when the kernel kills the process and the run is lost.
"""
import os

from errors import UserError

FLAG_ARRAYS_BYTES_PER_SLOT = 4 + 4 + 4  # int32 action, float32 reward, four bool flags
COMPRESSED_INDEX_BYTES_PER_SLOT = 8 + 4 + 2  # int64 arena offset, int32 length, uint16 dictionary
ASSUMED_COMPRESSION_RATIO = 4.0
"""A pessimistic ratio for planning: the worst case measured (Space Invaders, lz4, before a
dictionary is trained) compresses 4.5 to 1, and 11 to 60 to 1 with one. The store grows its
arena as it needs, so this only decides whether to refuse."""
ARENA_GROWTH_SLACK = 1.25


class MemoryTooLargeError(UserError):
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


def available_memory_bytes() -> int | None:
    """Bytes the kernel says a new allocation can get without swapping (MemAvailable).

    Falls back to the free physical pages where /proc/meminfo does not exist; None when the
    platform tells neither, in which case nothing is refused.
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


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
            f"choose a smaller capacity or a compressed memory (--memory-compression zstd)"
        )


def format_gb(num_bytes: int) -> str:
    return f"{num_bytes / 1e9:.2f} GB"
