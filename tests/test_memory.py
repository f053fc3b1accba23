"""Replay memory index rules, pinned with frames whose pixels all equal a known number.

As in Dopamine's buffer tests, the frame at position p is filled with the value p + 1 (0 is the
padding before an episode start), and every action equals the value of the frame it was taken
from, so a sampled transition shows which frames it was built from.
"""
import numpy as np
import pytest

from common.errors import UserError
from memory import COMPRESSIONS, Batch, MemoryTooLargeError, ReplayMemory, ReplayStreams, available_memory_bytes

SHAPE = (84, 84)


def frame(value: int) -> np.ndarray:
    return np.full(SHAPE, value, dtype=np.uint8)


def play(memory: ReplayMemory, first: int, last: int, *, terminated_at=(), truncated_at=(), reward=0.0):
    """Start an episode at frame value `first` and step through values first + 1 .. last."""
    memory.start_episode(frame(first))
    for value in range(first + 1, last + 1):
        memory.add(value - 1, reward, frame(value), value in terminated_at, value in truncated_at)


def transitions_by_action(memory: ReplayMemory, draws: int = 3000) -> dict[int, tuple]:
    """{action: (s_tm1 values, s_t values, reward, discount)} over a large sample."""
    batch = memory.sample(draws)
    seen = {}
    for k, action in enumerate(batch.a_tm1.tolist()):
        seen[action] = (batch.s_tm1[k, 0, 0].tolist(), batch.s_t[k, 0, 0].tolist(),
                        float(batch.r_t[k]), float(batch.discount_t[k]))
    return seen


@pytest.fixture(params=COMPRESSIONS)
def compression(request):
    return request.param


def test_stacks_of_one_episode_before_the_ring_wraps(compression):
    memory = ReplayMemory(10, compression=compression, seed=0)
    play(memory, 1, 6)

    seen = transitions_by_action(memory)

    assert len(memory) == 5
    assert sorted(seen) == [1, 2, 3, 4, 5]
    assert seen[1][:2] == ([0, 0, 0, 1], [0, 0, 1, 2])
    assert seen[2][:2] == ([0, 0, 1, 2], [0, 1, 2, 3])
    assert seen[5][:2] == ([2, 3, 4, 5], [3, 4, 5, 6])


def test_a_stack_never_reaches_across_an_episode_start(compression):
    memory = ReplayMemory(20, compression=compression, seed=0)
    play(memory, 1, 3, terminated_at={3})
    play(memory, 4, 7)

    seen = transitions_by_action(memory)

    assert sorted(seen) == [1, 2, 4, 5, 6]
    assert len(memory) == 5
    assert seen[4][:2] == ([0, 0, 0, 4], [0, 0, 4, 5])
    assert seen[5][:2] == ([0, 0, 4, 5], [0, 4, 5, 6])
    assert seen[6][:2] == ([0, 4, 5, 6], [4, 5, 6, 7])


def test_stacks_across_the_physical_end_of_the_ring(compression):
    memory = ReplayMemory(8, compression=compression, seed=0)
    play(memory, 1, 13)  # 13 frames in 8 slots: values 6..13 remain, in slots 5, 6, 7, 0, ..., 4

    seen = transitions_by_action(memory)

    assert sorted(seen) == [9, 10, 11, 12]
    assert len(memory) == 4
    assert seen[9][:2] == ([6, 7, 8, 9], [7, 8, 9, 10])
    assert seen[12][:2] == ([9, 10, 11, 12], [10, 11, 12, 13])


def test_next_to_the_cursor_an_episode_start_masks_overwritten_frames(compression):
    memory = ReplayMemory(8, compression=compression, seed=0)
    play(memory, 1, 6, terminated_at={6})
    play(memory, 7, 13)  # slots 0..4 now hold 9..13; value 6 (last of episode one) is the oldest

    seen = transitions_by_action(memory)

    assert sorted(seen) == [7, 8, 9, 10, 11, 12]
    assert len(memory) == 6
    assert seen[7][:2] == ([0, 0, 0, 7], [0, 0, 7, 8])
    assert seen[8][:2] == ([0, 0, 7, 8], [0, 7, 8, 9])


def test_a_partial_episode_cut_by_the_cursor_is_not_sampled(compression):
    memory = ReplayMemory(8, compression=compression, seed=0)
    play(memory, 1, 6)
    play(memory, 7, 10)  # values 3..6 (episode one, its start overwritten) and 7..10 remain

    seen = transitions_by_action(memory)

    assert sorted(seen) == [7, 8, 9]
    assert len(memory) == 3


def test_nothing_to_sample_until_a_transition_exists(compression):
    memory = ReplayMemory(10, compression=compression, seed=0)
    memory.start_episode(frame(1))

    assert len(memory) == 0
    with pytest.raises(ValueError, match="no complete transition"):
        memory.sample(1)


def test_terminal_gives_discount_zero_and_truncation_bootstraps(compression):
    memory = ReplayMemory(20, compression=compression, seed=0)
    play(memory, 1, 4, terminated_at={3}, truncated_at={2, 4})

    seen = transitions_by_action(memory)

    assert seen[1][3] == pytest.approx(0.99)  # truncated: the next state still counts
    assert seen[2][3] == 0.0  # terminated
    assert seen[3][3] == pytest.approx(0.99)


def test_a_lost_life_ends_no_stack(compression):
    memory = ReplayMemory(20, compression=compression, seed=0)
    play(memory, 1, 5, terminated_at={2})  # a terminal from a lost life; the game goes on

    seen = transitions_by_action(memory)

    assert seen[1][3] == 0.0
    assert seen[1][1] == [0, 0, 1, 2]
    assert seen[2][:2] == ([0, 0, 1, 2], [0, 1, 2, 3])
    assert seen[4][:2] == ([1, 2, 3, 4], [2, 3, 4, 5])


def test_rewards_are_clipped_on_the_way_in():
    memory = ReplayMemory(10, seed=0)
    memory.start_episode(frame(1))
    for value, reward in zip((2, 3, 4), (5.0, -3.0, 0.5)):
        memory.add(value - 1, reward, frame(value), False, False)

    rewards = {action: seen[2] for action, seen in transitions_by_action(memory).items()}

    assert rewards == {1: 1.0, 2: -1.0, 3: 0.5}


def test_batch_shapes_and_dtypes(compression):
    memory = ReplayMemory(50, compression=compression, seed=0)
    play(memory, 1, 30)

    batch = memory.sample(32)

    assert isinstance(batch, Batch)
    assert batch.s_tm1.shape == batch.s_t.shape == (32, 84, 84, 4)
    assert batch.s_tm1.dtype == batch.s_t.dtype == np.uint8
    assert batch.a_tm1.shape == batch.r_t.shape == batch.discount_t.shape == (32,)
    assert (batch.a_tm1.dtype, batch.r_t.dtype, batch.discount_t.dtype) == (np.int32, np.float32, np.float32)
    assert batch.s_tm1.flags.c_contiguous and batch.s_t.flags.c_contiguous


def test_a_history_other_than_four():
    memory = ReplayMemory(10, history=2, seed=0)
    play(memory, 1, 4)

    seen = transitions_by_action(memory)

    assert seen[1][:2] == ([0, 1], [1, 2])
    assert seen[3][:2] == ([2, 3], [3, 4])


def reference_transitions(log: list[tuple], capacity: int, history: int = 4, n_step: int = 1,
                          gamma: float = 0.99):
    """{action: (s_tm1, s_t, reward, discount)} computed the slow, obvious way from the add log.

    log: (value, episode, terminated, truncated, reward) for every frame stored, in order; the
    flags and the reward belong to the transition taken from that frame.
    """
    written = len(log)
    oldest = max(0, written - capacity)

    def stack_ending_at(position, episode):
        stack = []
        for back in range(position - history + 1, position + 1):
            if back < 0 or log[back][1] != episode:
                stack.append(0)
            elif back < oldest:
                return None
            else:
                stack.append(log[back][0])
        return stack

    expected = {}
    for position in range(oldest, written - 1):
        value, episode = log[position][:2]
        if log[position + 1][1] != episode:
            continue
        s_tm1 = stack_ending_at(position, episode)
        reward, discount, step = 0.0, 1.0, position
        while True:  # walk the horizon one agent step at a time
            _, _, terminated, truncated, step_reward = log[step]
            reward += discount * step_reward
            discount = 0.0 if terminated else discount * gamma
            step += 1
            if terminated or truncated or step - position == n_step:
                break
            if step + 1 == written:
                discount = None  # the next step has not been played yet
                break
            if log[step + 1][1] != episode:
                break  # the episode stopped here without a flag
        if s_tm1 is not None and discount is not None:
            expected[value] = (s_tm1, stack_ending_at(step, episode), pytest.approx(reward), pytest.approx(discount))
    return expected


@pytest.mark.parametrize("n_step", [1, 3])
@pytest.mark.parametrize("frames_to_store", [60, 150, 230])
def test_matches_a_reference_over_random_episodes(compression, frames_to_store, n_step):
    rng = np.random.default_rng(7)
    memory = ReplayMemory(37, compression=compression, n_step=n_step, seed=1)
    log, episode = [], 0
    while len(log) < frames_to_store:
        episode += 1
        value = len(log) + 1
        memory.start_episode(frame(value))
        log.append((value, episode, False, False, 0.0))
        for _ in range(int(rng.integers(0, 12))):
            value = len(log) + 1
            terminated, truncated = bool(rng.random() < 0.2), bool(rng.random() < 0.1)
            reward = float(rng.choice([-1.0, 0.0, 0.0, 1.0]))
            memory.add(value - 1, reward, frame(value), terminated, truncated)
            log[-1] = log[-1][:2] + (terminated, truncated, reward)
            log.append((value, episode, False, False, 0.0))

    expected = reference_transitions(log, 37, n_step=n_step)
    seen = transitions_by_action(memory, draws=6000)

    assert len(memory) == len(expected)
    assert seen == expected


def test_n_step_returns_and_where_the_horizon_stops(compression):
    memory = ReplayMemory(30, compression=compression, n_step=3, gamma=0.5, seed=0)
    memory.start_episode(frame(1))
    for value, reward, terminated in ((2, 1.0, False), (3, 0.0, False), (4, 1.0, False), (5, -1.0, True),
                                      (6, 1.0, False), (7, 0.0, False)):
        memory.add(value - 1, reward, frame(value), terminated, False)

    seen = transitions_by_action(memory)

    assert seen[1] == ([0, 0, 0, 1], [1, 2, 3, 4], 1.0 + 0.25, 0.125)   # three steps, bootstraps
    assert seen[2] == ([0, 0, 1, 2], [2, 3, 4, 5], 0.5 - 0.25, 0.0)     # the lost life at 5 ends it
    assert seen[4] == ([1, 2, 3, 4], [2, 3, 4, 5], -1.0, 0.0)
    assert sorted(seen) == [1, 2, 3, 4] and len(memory) == 4            # 5 and 6 wait for more steps

    memory.start_episode(frame(8))                                      # the episode stopped unflagged
    seen = transitions_by_action(memory)

    assert seen[5] == ([2, 3, 4, 5], [4, 5, 6, 7], 1.0, 0.25)           # the game went on after the life
    assert seen[6] == ([3, 4, 5, 6], [4, 5, 6, 7], 0.0, 0.5)
    assert len(memory) == 6


def test_the_same_seed_gives_the_same_batches(compression):
    memories = [ReplayMemory(30, compression=compression, seed=seed) for seed in (5, 5, 6)]
    for memory in memories:
        play(memory, 1, 50)

    same = [memories[0].sample(16), memories[1].sample(16)]
    other = memories[2].sample(16)

    for field_a, field_b in zip(*same):
        np.testing.assert_array_equal(field_a, field_b)
    assert not np.array_equal(same[0].a_tm1, other.a_tm1)


def test_save_and_load_round_trip_after_the_ring_wraps(compression, tmp_path):
    original = ReplayMemory(16, compression=compression, seed=3)
    play(original, 1, 25, terminated_at={9})
    play(original, 26, 40)
    original.sample(8)
    path = tmp_path / "memory.npz"

    original.save(path)
    resumed = ReplayMemory(16, compression=compression, seed=99)
    resumed.load(path)

    assert [p.name for p in tmp_path.iterdir()] == ["memory.npz"]
    assert len(resumed) == len(original) and resumed.frames_written == original.frames_written
    for memory in (original, resumed):
        memory.add(39, 1.0, frame(41), True, False)
        memory.start_episode(frame(42))
        memory.add(41, 0.0, frame(43), False, False)
    for _ in range(3):
        for field_a, field_b in zip(original.sample(12), resumed.sample(12)):
            np.testing.assert_array_equal(field_a, field_b)


def test_save_replaces_an_existing_file(tmp_path):
    path = tmp_path / "memory.npz"
    path.write_bytes(b"an older snapshot")
    memory = ReplayMemory(10, seed=0)
    play(memory, 1, 4)

    memory.save(path)
    loaded = ReplayMemory(10, seed=0)
    loaded.load(path)

    assert len(loaded) == 3


def test_load_refuses_a_snapshot_of_another_shape(tmp_path):
    path = tmp_path / "memory.npz"
    memory = ReplayMemory(10, seed=0)
    play(memory, 1, 4)
    memory.save(path)

    with pytest.raises(UserError, match="capacity 10.*20"):
        ReplayMemory(20, seed=0).load(path)
    with pytest.raises(UserError, match="compression 'none'.*'zstd'"):
        ReplayMemory(10, compression="zstd", seed=0).load(path)
    with pytest.raises(UserError, match="priority_exponent None.*0.5"):
        ReplayMemory(10, priority_exponent=0.5, seed=0).load(path)  # uniform snapshot, prioritized memory


def test_load_refuses_missing_and_foreign_files(tmp_path):
    memory = ReplayMemory(10, seed=0)
    with pytest.raises(UserError, match="not found"):
        memory.load(tmp_path / "absent.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(UserError, match="cannot read"):
        memory.load(garbage)
    other_arrays = tmp_path / "other.npz"
    np.savez(other_arrays, weights=np.zeros(3))
    with pytest.raises(UserError, match="not a replay memory"):
        memory.load(other_arrays)


def test_a_million_raw_transitions_take_at_most_7_2_gb():
    assert ReplayMemory.required_bytes(1_000_000, "none") <= 7.2e9
    small = ReplayMemory(1000, seed=0)
    assert small.nbytes == ReplayMemory.required_bytes(1000, "none")


def test_a_capacity_beyond_the_available_memory_is_refused_with_both_figures():
    with pytest.raises(MemoryTooLargeError, match=r"needs 7\.07 GB .* only 2\.00 GB available"):
        ReplayMemory.ensure_fits(1_000_000, "none", available=2_000_000_000)
    ReplayMemory.ensure_fits(1_000_000, "zstd", available=2_500_000_000)


def test_an_absurd_capacity_is_refused_before_anything_is_allocated():
    with pytest.raises(MemoryTooLargeError, match="available"):
        ReplayMemory(10**13, compression="zstd")
    assert issubclass(MemoryTooLargeError, UserError)


@pytest.mark.parametrize("settings, message", [
    ({"capacity": 3}, "at least 5"),
    ({"capacity": 100, "compression": "gzip"}, "unknown memory compression"),
    ({"capacity": 100, "history": 0}, "positive integer"),
    ({"capacity": 6, "n_step": 3}, "at least 7"),
    ({"capacity": 100, "n_step": 0}, "n-step horizon must be a positive integer"),
])
def test_bad_settings_are_user_errors(settings, message):
    with pytest.raises(UserError, match=message):
        ReplayMemory(**settings)


def test_misuse_by_the_caller_is_a_programming_error():
    memory = ReplayMemory(10)
    with pytest.raises(RuntimeError, match="start_episode"):
        memory.add(0, 0.0, frame(1), False, False)
    with pytest.raises(ValueError, match="uint8"):
        memory.start_episode(np.zeros((84, 84), dtype=np.float32))


# ---------------------------------------------------------------------------------------------
# One stream per game copy (--envs N)


def fill_streams(memory: ReplayStreams, lengths):
    """Stream k plays one episode of lengths[k] steps through frame values 100 k + 1, ..."""
    for index, (stream, length) in enumerate(zip(memory.streams, lengths)):
        play(stream, 100 * index + 1, 100 * index + 1 + length)


def test_streams_split_the_capacity_and_sample_every_transition_equally_often():
    memory = ReplayStreams(300, 3, seed=0)
    assert [stream.capacity for stream in memory.streams] == [100, 100, 100] and memory.capacity == 300
    fill_streams(memory, [10, 20, 40])
    assert len(memory) == sum(len(stream) for stream in memory.streams) == 70
    batches = [memory.sample(250) for _ in range(40)]
    assert batches[0].s_tm1.shape == (250, *SHAPE, 4) and batches[0].a_tm1.shape == (250,)
    stream_of = np.concatenate([batch.a_tm1 for batch in batches]) // 100
    np.testing.assert_allclose(np.bincount(stream_of, minlength=3) / 10_000, np.array([10, 20, 40]) / 70, atol=0.02)
    for batch in batches:  # each stack comes from its own stream (or is padding), and s_t follows s_tm1
        stream = (batch.a_tm1 // 100)[:, None]
        assert ((batch.s_tm1[:, 0, 0] == 0) | (batch.s_tm1[:, 0, 0] // 100 == stream)).all()
        assert (batch.s_t[:, 0, 0, -1] == batch.a_tm1 + 1).all()


def test_streams_save_and_load_each_stream_and_the_draw_between_them(tmp_path):
    original, resumed = ReplayStreams(120, 2, seed=4, compression="zstd"), ReplayStreams(120, 2, seed=9, compression="zstd")
    fill_streams(original, [30, 70])
    original.save(tmp_path / "memory.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memory-0.npz", "memory-1.npz"]
    resumed.load(tmp_path / "memory.npz")
    for a, b in zip(original.sample(64), resumed.sample(64), strict=True):
        assert np.array_equal(a, b)
    with pytest.raises(UserError, match="with envs 2, not 3"):
        ReplayStreams(180, 3, seed=0, compression="zstd").load(tmp_path / "memory.npz")
    (tmp_path / "memory-1.npz").unlink()
    with pytest.raises(UserError, match="not found"):
        ReplayStreams(120, 2, seed=0, compression="zstd").load(tmp_path / "memory.npz")


def test_streams_refuse_prioritized_sampling():
    with pytest.raises(UserError, match="use it with envs 1"):
        ReplayStreams(100, 2, priority_exponent=0.5)


def fake_system(root, cgroup_lines, files, mem_available_kb=16_000_000):
    """A /proc and /sys/fs/cgroup tree as the kernel shows them, under ``root``."""
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/meminfo").write_text(f"MemTotal: 33000000 kB\nMemAvailable: {mem_available_kb} kB\n")
    (root / "proc/self/cgroup").write_text("".join(f"{line}\n" for line in cgroup_lines))
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


GB = 1_000_000_000


@pytest.mark.parametrize("cgroup_lines, files, expected", [
    # cgroup v2 seen from inside a container (a cgroup namespace): its own limit at the root
    (["0::/"], {"sys/fs/cgroup/memory.max": f"{4 * GB}", "sys/fs/cgroup/memory.current": f"{GB}",
                "sys/fs/cgroup/memory.stat": f"anon {GB // 2}\ninactive_file {GB // 2}\n"}, int(3.5 * GB)),
    # cgroup v2 on a host: the limit sits on a parent slice, the process's own group has none
    (["0::/user.slice/job.scope"], {"sys/fs/cgroup/user.slice/memory.max": f"{2 * GB}",
                                    "sys/fs/cgroup/user.slice/memory.current": f"{GB}",
                                    "sys/fs/cgroup/user.slice/job.scope/memory.max": "max",
                                    "sys/fs/cgroup/user.slice/job.scope/memory.current": f"{GB // 2}"}, GB),
    # cgroup v1 inside Docker: /proc names the host's path, the container sees its own group as the mount
    (["4:memory:/docker/abc", "1:cpu:/docker/abc"],
     {"sys/fs/cgroup/memory/memory.limit_in_bytes": f"{4 * GB}",
      "sys/fs/cgroup/memory/memory.usage_in_bytes": f"{2 * GB}",
      "sys/fs/cgroup/memory/memory.stat": f"inactive_file 5\ntotal_inactive_file {GB}\n"}, 3 * GB),
    # cgroup v1 on a host (a batch system's job): the job's limit binds its task's siblings too
    (["4:memory:/job/task"],
     {"sys/fs/cgroup/memory/job/memory.limit_in_bytes": f"{8 * GB}",
      "sys/fs/cgroup/memory/job/memory.usage_in_bytes": f"{7 * GB}",
      "sys/fs/cgroup/memory/job/task/memory.limit_in_bytes": "9223372036854771712",
      "sys/fs/cgroup/memory/job/task/memory.usage_in_bytes": f"{GB}"}, GB),
    # cgroup v1 with no limit (the kernel writes a number near 2**63): MemAvailable decides
    (["4:memory:/"], {"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712",
                      "sys/fs/cgroup/memory/memory.usage_in_bytes": f"{GB}"},
     16_000_000 * 1024),
    # no cgroup files at all
    (["0::/"], {}, 16_000_000 * 1024),
])
def test_the_available_memory_is_the_containers_limit_where_that_is_closer(tmp_path, cgroup_lines, files,
                                                                           expected):
    root = fake_system(tmp_path, cgroup_lines, files)
    assert available_memory_bytes(root) == expected


def test_a_memory_that_fits_the_machine_but_not_its_container_is_refused(tmp_path):
    root = fake_system(tmp_path, ["0::/"], {"sys/fs/cgroup/memory.max": f"{4 * GB}",
                                            "sys/fs/cgroup/memory.current": f"{GB}"})
    assert available_memory_bytes(root) == 3 * GB
    with pytest.raises(MemoryTooLargeError, match=r"needs 7\.07 GB .* only 3\.00 GB available; choose a smaller "
                                                  r"memory_size or a compressed memory \(memory_compression zstd\)"):
        ReplayMemory.ensure_fits(1_000_000, "none", available=available_memory_bytes(root))
    with pytest.raises(MemoryTooLargeError, match=r"choose a smaller memory_size$"):
        ReplayMemory.ensure_fits(10_000_000, "zstd", available=available_memory_bytes(root))
