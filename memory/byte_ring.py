"""Variable-length byte records in a circular arena: one record per ring slot, oldest freed first.

This is how the compressed store keeps a million frames of a few hundred bytes each without a
Python object per frame: the records lie back to back in one uint8 array and each slot costs
12 bytes of index (int64 offset, int32 length).
"""
import numpy as np

from memory.snapshot_file import check_layout

INITIAL_BYTES = 1 << 20
GROWTH = 1.25


class ByteRing:
    """Records written in ring order (slot 0, 1, ..., capacity - 1, 0, ...), each replacing the oldest.

    Offsets are logical: they only grow, and a record's bytes start at `offset % arena.size`
    without straddling the arena's end (a record that would is moved to the next lap). When the
    live records [tail, head) outgrow the arena, it grows by `GROWTH` and the live bytes move to
    its start, offsets rebased. The arena never shrinks; untouched pages cost no memory.
    """

    def __init__(self, capacity: int, initial_bytes: int = INITIAL_BYTES):
        self._capacity = capacity
        self._offsets = np.zeros(capacity, dtype=np.int64)
        self._lengths = np.zeros(capacity, dtype=np.int32)
        self._arena = np.zeros(initial_bytes, dtype=np.uint8)
        self._head = 0
        self._records_written = 0

    @property
    def arena(self) -> np.ndarray:
        """uint8[size]: the bytes; records are found with `locate`."""
        return self._arena

    @property
    def nbytes(self) -> int:
        return self._arena.nbytes + self._offsets.nbytes + self._lengths.nbytes

    def put(self, slot: int, record: bytes):
        """Store `record` in `slot`, which must be the next slot in ring order."""
        if slot != self._records_written % self._capacity:
            raise ValueError(f"records must be stored in ring order: slot {slot} given, "
                             f"{self._records_written % self._capacity} expected")
        self._offsets[slot] = self._append(record, self._tail_after_overwrite())
        self._lengths[slot] = len(record)
        self._records_written += 1

    def locate(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(starts int64[N], lengths int64[N]): where the records of `slots` lie in `arena`."""
        return self._offsets[slots] % self._arena.size, self._lengths[slots].astype(np.int64)

    def lengths(self, slots: np.ndarray) -> np.ndarray:
        """int32[N]: the byte lengths of the records in `slots`."""
        return self._lengths[slots]

    def state(self) -> dict[str, np.ndarray]:
        return {"offsets": self._offsets, "lengths": self._lengths, "arena": self._arena,
                "cursor": np.array([self._head, self._records_written], dtype=np.int64)}

    def restore(self, state: dict[str, np.ndarray]):
        offsets, lengths, arena = state["offsets"], state["lengths"], state["arena"]
        check_layout(self._offsets, offsets, "offsets")
        check_layout(self._lengths, lengths, "lengths")
        head, records_written = (int(value) for value in state["cursor"])
        self._offsets, self._lengths, self._arena = offsets, lengths, arena
        self._head, self._records_written = head, records_written

    def _tail_after_overwrite(self) -> int:
        """Logical offset of the oldest record that stays live once the next one is written."""
        oldest_kept = max(0, self._records_written - self._capacity + 1)
        if oldest_kept == self._records_written:
            return self._head
        return int(self._offsets[oldest_kept % self._capacity])

    def _append(self, record: bytes, tail: int) -> int:
        """Copy `record` to the head and return its logical offset; grow when it does not fit."""
        offset = self._unwrapped_position(len(record))
        if offset + len(record) - tail > self._arena.size:
            self._grow(tail, len(record))
            offset = self._unwrapped_position(len(record))
        start = offset % self._arena.size
        self._arena[start:start + len(record)] = np.frombuffer(record, dtype=np.uint8)
        self._head = offset + len(record)
        return offset

    def _unwrapped_position(self, length: int) -> int:
        """The head, or the arena's next lap when `length` bytes would straddle its end."""
        size = self._arena.size
        if self._head % size + length > size:
            return (self._head // size + 1) * size
        return self._head

    def _grow(self, tail: int, incoming: int):
        """Move the live bytes [tail, head) to the start of a larger arena and rebase the offsets."""
        live = self._head - tail
        size = self._arena.size
        grown = np.zeros(max(int(size * GROWTH), live + incoming), dtype=np.uint8)
        start = tail % size
        first_part = min(live, size - start)
        grown[:first_part] = self._arena[start:start + first_part]
        grown[first_part:live] = self._arena[:live - first_part]
        self._arena = grown
        self._offsets -= tail
        self._head = live
