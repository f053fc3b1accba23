"""Where the replay memory keeps its frames: a raw uint8 ring, or the same ring compressed.

Both stores take frames in ring order (slot 0, 1, ..., capacity - 1, 0, ...) and hand back the
frames at given slots as `uint8[H, W]` arrays. The replay memory owns every index rule; a store
only keeps bytes, so the compressed store is bit-exact with the raw one by construction.
"""
import numpy as np

from memory.byte_ring import ByteRing
from memory.codecs import CODECS, train_dictionary
from memory.snapshot_file import check_layout

COMPRESSIONS = ("zstd", "lz4", "none")

FIRST_DICTIONARY_AFTER = 2_000
DICTIONARY_SAMPLE_FRAMES = 2_000
"""A dictionary learns from this many of the newest frames (0.2 s of training). zstd's trainer
fills a 64 KiB dictionary only from about 2,000 frames: on 1,000 frames of Breakout it builds
4 KiB and frames come out twice as large."""
DICTIONARY_CHECK_EVERY = 10_000
RETRAIN_WHEN_LARGER = 1.25
"""A new dictionary is trained when the last DICTIONARY_CHECK_EVERY frames compress this much
worse than the first ones did after the current dictionary was trained: the agent has reached
screens the dictionary does not know."""
MIN_FRAMES_BETWEEN_DICTIONARIES = 100_000
"""Bounds the dictionaries alive at once (each adds a decoder call to every sample)."""


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

    def stats(self) -> dict:
        return {"stored_frame_bytes": float(self._frames[0].nbytes), "dictionaries": 0}

    def state(self) -> dict[str, np.ndarray]:
        return {"frames": self._frames}

    def restore(self, state: dict[str, np.ndarray]):
        check_layout(self._frames, state["frames"], "frames")
        self._frames = state["frames"]


class CompressedFrameStore:
    """Frames compressed one by one into a `ByteRing`, decompressed only when asked for.

    Per frame the index costs 14 bytes (ring offset and length, uint16 dictionary number).
    A zstd dictionary trained on the store's own frames (see RETRAIN_WHEN_LARGER for when)
    shrinks frames two to four times further than plain zstd and speeds up decoding; each frame
    records the dictionary it was compressed with, and a dictionary is dropped when its last
    frame is overwritten.
    """

    def __init__(self, capacity: int, frame_shape: tuple[int, int], compression: str, *,
                 first_dictionary_after: int = FIRST_DICTIONARY_AFTER,
                 dictionary_check_every: int = DICTIONARY_CHECK_EVERY,
                 dictionary_sample_frames: int = DICTIONARY_SAMPLE_FRAMES,
                 min_frames_between_dictionaries: int = MIN_FRAMES_BETWEEN_DICTIONARIES):
        self._capacity = capacity
        self._frame_shape = tuple(frame_shape)
        self._frame_bytes = int(np.prod(frame_shape))
        self._compression = compression
        self._first_dictionary_after = first_dictionary_after
        self._dictionary_check_every = dictionary_check_every
        self._dictionary_sample_frames = dictionary_sample_frames
        self._min_frames_between_dictionaries = min_frames_between_dictionaries
        self._ring = ByteRing(capacity)
        self._dictionary_ids = np.zeros(capacity, dtype=np.uint16)
        self._frames_written = 0
        self._frames_since_dictionary = 0
        self._reference_bytes = 0.0
        self._dictionaries = {0: b""}
        self._codecs = {0: self._make_codec(b"")}

    def put(self, slot: int, frame: np.ndarray):
        current_id = max(self._codecs)
        self._ring.put(slot, self._codecs[current_id].compress(np.ascontiguousarray(frame)))
        self._dictionary_ids[slot] = current_id
        self._frames_written += 1
        self._drop_unused_dictionaries()
        self._frames_since_dictionary += 1
        self._train_dictionary_when_due()

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
        dictionaries = sum(len(dictionary) for dictionary in self._dictionaries.values())
        return self._ring.nbytes + self._dictionary_ids.nbytes + dictionaries

    @property
    def compressed_frame_bytes(self) -> float:
        """Mean compressed size of the frames the store holds now."""
        return self._mean_bytes_of_newest(self._capacity)

    def stats(self) -> dict:
        return {"stored_frame_bytes": self.compressed_frame_bytes,
                "dictionaries": len([number for number in self._dictionaries if number])}

    @property
    def dictionary_ids(self) -> list[int]:
        """The dictionaries kept: those of live frames and the one new frames use (0 is none)."""
        return sorted(self._dictionaries)

    def stored_bytes(self, slots: np.ndarray) -> np.ndarray:
        """int32[N]: compressed sizes of the frames at `slots`."""
        return self._ring.lengths(slots)

    def state(self) -> dict[str, np.ndarray]:
        ids = sorted(self._dictionaries)
        return {
            **{"ring_" + name: array for name, array in self._ring.state().items()},
            "dictionary_ids": self._dictionary_ids,
            "counters": np.array([self._frames_written, self._frames_since_dictionary], dtype=np.int64),
            "reference_bytes": np.array(self._reference_bytes, dtype=np.float64),
            "dictionary_numbers": np.array(ids, dtype=np.int64),
            "dictionary_lengths": np.array([len(self._dictionaries[i]) for i in ids], dtype=np.int64),
            "dictionary_bytes": np.frombuffer(b"".join(self._dictionaries[i] for i in ids),
                                              dtype=np.uint8),
        }

    def restore(self, state: dict[str, np.ndarray]):
        ids = state["dictionary_ids"]
        check_layout(self._dictionary_ids, ids, "dictionary_ids")
        frames_written, frames_since_dictionary = (int(value) for value in state["counters"])
        reference_bytes = float(state["reference_bytes"])
        dictionaries = _split_dictionaries(
            state["dictionary_numbers"], state["dictionary_lengths"], state["dictionary_bytes"])
        codecs = {number: self._make_codec(dictionary) for number, dictionary in dictionaries.items()}
        self._ring.restore({name[len("ring_"):]: array for name, array in state.items()
                            if name.startswith("ring_")})
        self._dictionary_ids = ids
        self._frames_written, self._frames_since_dictionary = frames_written, frames_since_dictionary
        self._reference_bytes = reference_bytes
        self._dictionaries, self._codecs = dictionaries, codecs

    def _make_codec(self, dictionary: bytes):
        return CODECS[self._compression](self._frame_bytes, dictionary)

    def _decode(self, dictionary_id: int, slots: np.ndarray) -> list[np.ndarray]:
        """uint8[H, W] views of the frames at `slots`, all compressed with one dictionary."""
        if not len(slots):
            return []
        starts, lengths = self._ring.locate(slots)
        decoded = self._codecs[dictionary_id].decompress_many(self._ring.arena, starts, lengths)
        return [np.frombuffer(frame, dtype=np.uint8).reshape(self._frame_shape) for frame in decoded]

    def _newest_slots(self, count: int) -> np.ndarray:
        count = min(count, self._frames_written, self._capacity)
        return np.arange(self._frames_written - count, self._frames_written) % self._capacity

    def _mean_bytes_of_newest(self, count: int) -> float:
        slots = self._newest_slots(count)
        return float(self.stored_bytes(slots).mean()) if len(slots) else 0.0

    def _train_dictionary_when_due(self):
        """Train the first dictionary early, later ones only when frames compress notably worse."""
        if max(self._codecs) == 0:
            if self._frames_since_dictionary >= self._first_dictionary_after:
                self._train_next_dictionary()
            return
        if self._frames_since_dictionary % self._dictionary_check_every:
            return
        recent = self._mean_bytes_of_newest(self._dictionary_check_every)
        if not self._reference_bytes:
            self._reference_bytes = recent
        elif (recent > self._reference_bytes * RETRAIN_WHEN_LARGER
              and self._frames_since_dictionary >= self._min_frames_between_dictionaries):
            self._train_next_dictionary()

    def _train_next_dictionary(self):
        self._frames_since_dictionary = 0
        self._reference_bytes = 0.0
        number = max(self._codecs) + 1
        if number > np.iinfo(self._dictionary_ids.dtype).max:
            return
        dictionary = train_dictionary(self.frames(self._newest_slots(self._dictionary_sample_frames)))
        if dictionary is not None:
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
