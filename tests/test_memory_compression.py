"""Compressed frame stores on real Breakout frames: bit-exact with the raw ring, dictionaries, arena.

Real frames matter here: constant test frames compress to a few bytes and would never make the
arena grow or a dictionary learn anything.
"""
import ale_py
import cv2
import gymnasium
import numpy as np
import pytest

from memory import COMPRESSIONS, ReplayMemory
from memory.byte_ring import ByteRing
from memory.codecs import CODECS, train_dictionary
from memory.frame_stores import CompressedFrameStore, RawFrameStore

SHAPE = (84, 84)
COMPRESSED = [name for name in COMPRESSIONS if name != "none"]


@pytest.fixture(scope="module")
def breakout():
    """uint8[2600, 84, 84] frames and bool[2600] episode ends of random Breakout play."""
    gymnasium.register_envs(ale_py)
    env = gymnasium.make("ALE/Breakout-v5", obs_type="grayscale", frameskip=4,
                         repeat_action_probability=0.0)
    rng = np.random.default_rng(0)
    observation, _ = env.reset(seed=0)
    frames, ends = [], []
    for _ in range(2600):
        frames.append(cv2.resize(observation, SHAPE[::-1], interpolation=cv2.INTER_AREA))
        observation, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
        ends.append(terminated or truncated)
        if terminated or truncated:
            observation, _ = env.reset()
    env.close()
    return np.stack(frames), np.array(ends)


def fill(memory: ReplayMemory, frames: np.ndarray, ends: np.ndarray):
    """Store the frames as played: a life lost every 150 steps, a new episode after each end."""
    memory.start_episode(frames[0])
    for step in range(1, len(frames)):
        if ends[step - 1]:
            memory.start_episode(frames[step])
        else:
            memory.add(step % 4, float(step % 3) - 1.0, frames[step], step % 150 == 0, False)


@pytest.mark.parametrize("compression", COMPRESSED)
def test_compressed_batches_equal_the_raw_ring_bit_for_bit(breakout, compression):
    frames, ends = breakout  # 2,600 frames in 2,200 slots: some with a dictionary, some without
    raw = ReplayMemory(2200, compression="none", seed=11)
    compressed = ReplayMemory(2200, compression=compression, seed=11)
    for memory in (raw, compressed):
        fill(memory, frames, ends)

    assert len(compressed) == len(raw) > 2000
    for _ in range(5):
        for raw_field, compressed_field in zip(raw.sample(32), compressed.sample(32)):
            np.testing.assert_array_equal(compressed_field, raw_field)
    assert compressed.nbytes < raw.nbytes / 4
    assert compressed.stats()["dictionaries"] == 1 and raw.stats()["dictionaries"] == 0
    assert compressed.stats()["stored_frame_bytes"] < raw.stats()["stored_frame_bytes"] / 4 == 7056 / 4


@pytest.mark.parametrize("compression", COMPRESSED)
def test_compressed_memory_round_trips_through_a_file(breakout, compression, tmp_path):
    frames, ends = breakout
    original = ReplayMemory(2200, compression=compression, seed=4)
    fill(original, frames, ends)
    path = tmp_path / "memory.npz"

    original.save(path)
    resumed = ReplayMemory(2200, compression=compression)
    resumed.load(path)

    for memory in (original, resumed):
        memory.add(1, 0.0, frames[5], False, False)
    for original_field, resumed_field in zip(original.sample(32), resumed.sample(32)):
        np.testing.assert_array_equal(resumed_field, original_field)


def small_store(compression: str, capacity: int) -> CompressedFrameStore:
    return CompressedFrameStore(capacity, SHAPE, compression, first_dictionary_after=100,
                                dictionary_check_every=100, dictionary_sample_frames=100,
                                min_frames_between_dictionaries=100)


@pytest.mark.parametrize("compression", COMPRESSED)
def test_a_dictionary_trained_on_the_game_shrinks_its_frames(breakout, compression):
    frames, _ = breakout
    store = CompressedFrameStore(2600, SHAPE, compression)

    for position in range(2600):
        store.put(position, frames[position])

    with_dictionary = store.stored_bytes(np.arange(2000, 2600))
    plain = CODECS[compression](frames[0].size)
    without = [len(plain.compress(frame)) for frame in frames[2000:2600]]
    assert store.dictionary_ids == [0, 1]
    assert with_dictionary.mean() < 0.8 * np.mean(without)


@pytest.mark.parametrize("compression", COMPRESSED)
def test_dictionaries_are_dropped_with_their_last_frame(breakout, compression):
    frames, _ = breakout
    store = small_store(compression, capacity=250)

    for position in range(120):
        store.put(position % 250, frames[position])
    assert store.dictionary_ids == [0, 1]
    mixed = np.array([110, 3, 119, 50, 101])  # compressed with and without the dictionary
    np.testing.assert_array_equal(store.frames(mixed), frames[mixed])
    for position in range(120, 600):
        store.put(position % 250, frames[position])

    assert store.dictionary_ids[0] > 0
    live = np.arange(600 - 250, 600)
    np.testing.assert_array_equal(store.frames(live % 250), frames[live])


@pytest.mark.parametrize("compression", COMPRESSED)
def test_a_new_dictionary_follows_screens_the_old_one_does_not_know(breakout, compression):
    frames, _ = breakout
    store = CompressedFrameStore(2600, SHAPE, compression, dictionary_check_every=300,
                                 min_frames_between_dictionaries=300)
    for position in range(2300):  # dictionary 1 after 2,000 frames, its reference size at 2,300
        store.put(position, frames[position])
    assert store.dictionary_ids == [0, 1]
    inverted = 255 - frames

    for position in range(2300, 2600):
        store.put(position, inverted[position])

    assert store.dictionary_ids == [0, 1, 2]
    expected = np.concatenate([frames[:2300], inverted[2300:2600]])
    np.testing.assert_array_equal(store.frames(np.arange(2600)), expected)


@pytest.mark.parametrize("compression", COMPRESSED)
def test_the_arena_grows_and_wraps_without_losing_a_frame(compression):
    noise = np.random.default_rng(0).integers(0, 256, size=(700, *SHAPE), dtype=np.uint8)
    store = small_store(compression, capacity=180)  # 180 incompressible frames outgrow 1 MiB

    for position in range(700):
        store.put(position % 180, noise[position])

    live = np.arange(700 - 180, 700)
    np.testing.assert_array_equal(store.frames(live % 180), noise[live])
    assert store.nbytes > 180 * 7056


@pytest.mark.parametrize("compression", COMPRESSED)
def test_store_state_restores_exactly(breakout, compression):
    frames, _ = breakout
    store = small_store(compression, capacity=250)
    for position in range(500):
        store.put(position % 250, frames[position])

    copy = small_store(compression, capacity=250)
    copy.restore({name: np.array(array) for name, array in store.state().items()})
    for position in range(500, 520):
        store.put(position % 250, frames[position])
        copy.put(position % 250, frames[position])

    for name, array in store.state().items():
        np.testing.assert_array_equal(copy.state()[name], array, err_msg=name)
    np.testing.assert_array_equal(copy.frames(np.arange(250)), store.frames(np.arange(250)))


def test_byte_ring_keeps_every_live_record_through_growth_and_wraps():
    rng = np.random.default_rng(3)
    records = [rng.integers(0, 256, size=int(rng.integers(1, 3000)), dtype=np.uint8).tobytes()
               for _ in range(400)]
    ring = ByteRing(capacity=60, initial_bytes=4096)

    for index, record in enumerate(records):
        ring.put(index % 60, record)
        if index % 37 == 0 or index == len(records) - 1:
            live = np.arange(max(0, index - 59), index + 1)
            starts, lengths = ring.locate(live % 60)
            assert [ring.arena[start:start + length].tobytes() for start, length in zip(starts, lengths)] \
                == [records[i] for i in live]
    assert ring.arena.size < 2 * 60 * 3000


def test_byte_ring_takes_records_in_ring_order_only():
    ring = ByteRing(capacity=10)
    ring.put(0, b"first")
    with pytest.raises(ValueError, match="ring order"):
        ring.put(2, b"skips a slot")


def test_raw_store_hands_back_the_frames_at_the_slots_asked():
    store = RawFrameStore(4, SHAPE)
    for slot in range(4):
        store.put(slot, np.full(SHAPE, slot + 1, dtype=np.uint8))

    frames = store.frames_at(np.array([3, 0, 2]))

    assert [frame.shape for frame in frames] == [SHAPE] * 3
    assert [int(frame[0, 0]) for frame in frames] == [4, 1, 3]


@pytest.mark.parametrize("name", sorted(CODECS))
def test_codecs_round_trip_with_and_without_a_dictionary(breakout, name):
    frames, _ = breakout
    dictionary = train_dictionary(frames[:200])
    assert dictionary is not None
    for primer in (b"", dictionary):
        codec = CODECS[name](frames[0].size, primer)
        blobs = [codec.compress(frame) for frame in frames[300:310]]
        arena = np.frombuffer(b"".join(blobs), dtype=np.uint8)
        starts = np.cumsum([0] + [len(blob) for blob in blobs[:-1]])
        lengths = np.array([len(blob) for blob in blobs])

        decoded = b"".join(codec.decompress_many(arena, starts, lengths))

        np.testing.assert_array_equal(np.frombuffer(decoded, dtype=np.uint8).reshape(-1, *SHAPE),
                                      frames[300:310])


def test_too_few_frames_train_no_dictionary():
    assert train_dictionary(np.zeros((3, *SHAPE), dtype=np.uint8)) is None
