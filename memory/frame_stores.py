"""Where the replay memory keeps its frames: a raw uint8 ring, or the same ring compressed.

Both stores take frames in ring order (slot 0, 1, ..., capacity - 1, 0, ...) and hand back the
frames at given slots as `uint8[H, W]` arrays. The replay memory owns every index rule; a store
only keeps bytes, so the compressed store is bit-exact with the raw one by construction.
"""
import numpy as np

from memory.codecs import CODECS, train_dictionary
from memory.snapshot_file import check_layout

COMPRESSIONS = ("zstd", "lz4", "none")

FIRST_DICTIONARY_AFTER = 1_000
"""Frames stored before the first dictionary is trained (0.1 s of training on 1,000 frames)."""
DICTIONARY_EVERY = 100_000
"""Frames between dictionaries, so the dictionary follows the screens a learning agent reaches."""
DICTIONARY_SAMPLE_FRAMES = 2_000
ARENA_INITIAL_BYTES = 1 << 20
ARENA_GROWTH = 1.25


class RawFrameStore:
    """Frames as one preallocated `uint8[capacity, H, W]` ring: 7,056 bytes per 84x84 frame."""

    def __init__(self, capacity: int, frame_shape: tuple[int, int]):
        self._frames = np.zeros((capacity, *frame_shape), dtype=np.uint8)

    def put(self, slot: int, frame: np.ndarray):
        self._frames[slot] = frame

    def frames_at(self, slots: np.ndarray) -> list[np.ndarray]:
        """uint8[H, W] for each slot in `slots` (int64[N]): views into the ring, valid until the next put."""
        return [self._frames[slot] for slot in slots.tolist()]

    @property
    def nbytes(self) -> int:
        return self._frames.nbytes

    def state(self) -> dict[str, np.ndarray]:
        return {"frames": self._frames}

    def restore(self, state: dict[str, np.ndarray]):
        check_layout(self._frames, state["frames"], "frames")
        self._frames = state["frames"]


class CompressedFrameStore:
    """Frames compressed one by one into a circular byte arena, found by per-slot offsets.

    Per frame the index costs 14 bytes (int64 offset, int32 length, uint16 dictionary number);
    the compressed bytes lie back to back in one uint8 arena, oldest first, so freeing the
    oldest frame frees the arena's tail. Offsets are logical (they only grow); a frame's bytes
    start at `offset % arena.size` and never straddle the arena's end. The arena grows by
    `ARENA_GROWTH` when the live frames outgrow it, rebasing offsets to the tail.

    A zstd dictionary is trained from the store's own frames after `first_dictionary_after`
    frames and again every `dictionary_every` frames; each frame records the dictionary it was
    compressed with, and a dictionary is dropped when its last frame is overwritten.
    """

    def __init__(self, capacity: int, frame_shape: tuple[int, int], compression: str, *,
                 first_dictionary_after: int = FIRST_DICTIONARY_AFTER,
                 dictionary_every: int = DICTIONARY_EVERY,
                 dictionary_sample_frames: int = DICTIONARY_SAMPLE_FRAMES):
        self._capacity = capacity
        self._frame_shape = tuple(frame_shape)
        self._frame_bytes = int(np.prod(frame_shape))
        self._compression = compression
        self._first_dictionary_after = first_dictionary_after
        self._dictionary_every = dictionary_every
        self._dictionary_sample_frames = dictionary_sample_frames
        self._offsets = np.zeros(capacity, dtype=np.int64)
        self._lengths = np.zeros(capacity, dtype=np.int32)
        self._dictionary_ids = np.zeros(capacity, dtype=np.uint16)
        self._arena = np.zeros(ARENA_INITIAL_BYTES, dtype=np.uint8)
        self._head = 0
        self._frames_written = 0
        self._frames_since_dictionary = 0
        self._dictionaries = {0: b""}
        self._codecs = {0: self._make_codec(b"")}

    def put(self, slot: int, frame: np.ndarray):
        if slot != self._frames_written % self._capacity:
            raise ValueError(f"frames must be stored in ring order: slot {slot} given, "
                             f"{self._frames_written % self._capacity} expected")
        current_id = max(self._codecs)
        data = self._codecs[current_id].compress(np.ascontiguousarray(frame, dtype=np.uint8))
        self._offsets[slot] = self._append(data, self._tail_after_overwrite())
        self._lengths[slot] = len(data)
        self._dictionary_ids[slot] = current_id
        self._frames_written += 1
        self._drop_unused_dictionaries()
        self._frames_since_dictionary += 1
        if self._frames_since_dictionary >= self._dictionary_interval():
            self._train_next_dictionary()

    def frames_at(self, slots: np.ndarray) -> list[np.ndarray]:
        """uint8[H, W] for each slot in `slots` (int64[N]), decompressed.

        The frames of each dictionary are decoded in one call and returned as views of the
        decoder's output, so nothing is copied after decoding.
        """
        ids = self._dictionary_ids[slots]
        if len(ids) == 0 or (ids == ids[0]).all():
            return self._decode(int(ids[0]) if len(ids) else 0, slots)
        frames = [None] * len(slots)
        for dictionary_id in np.unique(ids).tolist():
            chosen = np.flatnonzero(ids == dictionary_id)
            for index, frame in zip(chosen.tolist(), self._decode(dictionary_id, slots[chosen])):
                frames[index] = frame
        return frames

    def frames(self, slots: np.ndarray) -> np.ndarray:
        """uint8[N, H, W]: the frames stored at `slots` (int64[N]), decompressed."""
        return np.stack(self.frames_at(np.asarray(slots, dtype=np.int64)))

    @property
    def nbytes(self) -> int:
        index = self._offsets.nbytes + self._lengths.nbytes + self._dictionary_ids.nbytes
        return self._arena.nbytes + index + sum(len(d) for d in self._dictionaries.values())

    @property
    def compressed_frame_bytes(self) -> float:
        """Mean compressed size of the frames the store holds now."""
        live = min(self._frames_written, self._capacity)
        return float(self._lengths[:live].mean()) if live else 0.0

    @property
    def dictionary_ids(self) -> list[int]:
        return sorted(self._dictionaries)

    def state(self) -> dict[str, np.ndarray]:
        ids = sorted(self._dictionaries)
        return {
            "offsets": self._offsets, "lengths": self._lengths,
            "dictionary_ids": self._dictionary_ids, "arena": self._arena,
            "counters": np.array([self._head, self._frames_written, self._frames_since_dictionary],
                                 dtype=np.int64),
            "dictionary_numbers": np.array(ids, dtype=np.int64),
            "dictionary_lengths": np.array([len(self._dictionaries[i]) for i in ids], dtype=np.int64),
            "dictionary_bytes": np.frombuffer(b"".join(self._dictionaries[i] for i in ids),
                                              dtype=np.uint8),
        }

    def restore(self, state: dict[str, np.ndarray]):
        offsets, lengths, ids = state["offsets"], state["lengths"], state["dictionary_ids"]
        for name, array in (("offsets", offsets), ("lengths", lengths), ("dictionary_ids", ids)):
            check_layout(getattr(self, "_" + name), array, name)
        head, frames_written, frames_since_dictionary = (int(value) for value in state["counters"])
        dictionaries = _split_dictionaries(
            state["dictionary_numbers"], state["dictionary_lengths"], state["dictionary_bytes"])
        codecs = {number: self._make_codec(dictionary) for number, dictionary in dictionaries.items()}
        self._offsets, self._lengths, self._dictionary_ids = offsets, lengths, ids
        self._arena = state["arena"]
        self._head, self._frames_written = head, frames_written
        self._frames_since_dictionary = frames_since_dictionary
        self._dictionaries, self._codecs = dictionaries, codecs

    def _make_codec(self, dictionary: bytes):
        return CODECS[self._compression](self._frame_bytes, dictionary)

    def _decode(self, dictionary_id: int, slots: np.ndarray) -> list[np.ndarray]:
        """uint8[H, W] views of the frames at `slots`, all compressed with one dictionary."""
        if not len(slots):
            return []
        starts = self._offsets[slots] % self._arena.size
        lengths = self._lengths[slots].astype(np.int64)
        decoded = self._codecs[dictionary_id].decompress_many(self._arena, starts, lengths)
        return [np.frombuffer(frame, dtype=np.uint8).reshape(self._frame_shape) for frame in decoded]

    def _tail_after_overwrite(self) -> int:
        """Logical offset of the oldest frame that stays live once the next frame is written."""
        oldest_kept = max(0, self._frames_written - self._capacity + 1)
        if oldest_kept == self._frames_written:
            return self._head
        return int(self._offsets[oldest_kept % self._capacity])

    def _append(self, data: bytes, tail: int) -> int:
        """Copy `data` to the arena's head and return its logical offset; grow when it does not fit."""
        offset = self._unwrapped_position(len(data))
        if offset + len(data) - tail > self._arena.size:
            self._grow(tail, len(data))
            offset = self._unwrapped_position(len(data))
        start = offset % self._arena.size
        self._arena[start:start + len(data)] = np.frombuffer(data, dtype=np.uint8)
        self._head = offset + len(data)
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
        grown = np.zeros(max(int(size * ARENA_GROWTH), live + incoming), dtype=np.uint8)
        start = tail % size
        first_part = min(live, size - start)
        grown[:first_part] = self._arena[start:start + first_part]
        grown[first_part:live] = self._arena[:live - first_part]
        self._arena = grown
        self._offsets -= tail
        self._head = live

    def _dictionary_interval(self) -> int:
        return self._first_dictionary_after if max(self._codecs) == 0 else self._dictionary_every

    def _train_next_dictionary(self):
        self._frames_since_dictionary = 0
        recent = min(self._dictionary_sample_frames, self._frames_written, self._capacity)
        newest = self._frames_written
        slots = np.arange(newest - recent, newest) % self._capacity
        dictionary = train_dictionary(self.frames(slots))
        if dictionary is None:
            return
        number = max(self._codecs) + 1
        if number > np.iinfo(self._dictionary_ids.dtype).max:
            return
        self._dictionaries[number] = dictionary
        self._codecs[number] = self._make_codec(dictionary)

    def _drop_unused_dictionaries(self):
        """Forget dictionaries older than the one the oldest live frame was compressed with."""
        oldest = max(0, self._frames_written - self._capacity) % self._capacity
        oldest_id = int(self._dictionary_ids[oldest])
        for number in [n for n in self._dictionaries if n < oldest_id]:
            del self._dictionaries[number]
            del self._codecs[number]


def make_frame_store(capacity: int, frame_shape: tuple[int, int], compression: str):
    """The store for `compression`, one of COMPRESSIONS."""
    if compression == "none":
        return RawFrameStore(capacity, frame_shape)
    return CompressedFrameStore(capacity, frame_shape, compression)


def _split_dictionaries(numbers: np.ndarray, lengths: np.ndarray, blob: np.ndarray) -> dict[int, bytes]:
    """{dictionary number: bytes} from the concatenation written by CompressedFrameStore.state()."""
    ends = np.cumsum(lengths).tolist()
    data = blob.tobytes()
    return {int(number): data[end - int(length):end]
            for number, length, end in zip(numbers.tolist(), lengths.tolist(), ends)}
