"""Prioritized replay: the sum tree, sampling in proportion to priority, the importance weights,
and priorities that survive a checkpoint. Frames are filled with their position + 1 and actions
equal that value, as in test_memory, so a sampled transition shows where it came from."""
import numpy as np
import pytest

from common.errors import UserError
from memory import ReplayMemory
from memory.sum_tree import SumTree
from test_memory import frame, play

ALPHA = 0.5


def test_the_sum_tree_keeps_sums_and_finds_leaves_by_prefix_sum():
    tree = SumTree(5)  # not a power of two: 8 leaves, 3 unused
    tree.set(np.arange(5), [1.0, 0.0, 2.0, 3.0, 4.0])
    assert tree.total == 10.0
    # cumulative ranges: slot 0 [0, 1), slot 2 [1, 3), slot 3 [3, 6), slot 4 [6, 10); slot 1 holds nothing
    np.testing.assert_array_equal(tree.find([0.0, 0.999, 1.0, 2.5, 3.0, 5.999, 6.0, 9.999]),
                                  [0, 0, 2, 2, 3, 3, 4, 4])
    tree.set(4, 0.0)
    tree.set([0, 0], [7.0, 5.0])  # a later duplicate wins
    assert tree.total == 10.0 and tree.get([0, 4]).tolist() == [5.0, 0.0]
    assert set(tree.find(np.linspace(0, 9.999, 200)).tolist()) == {0, 2, 3}
    copy = SumTree(5)
    copy.restore(tree.state())
    assert copy.total == tree.total and np.array_equal(copy.find([4.0, 9.0]), tree.find([4.0, 9.0]))
    with pytest.raises(ValueError):
        tree.set(1, -1.0)


def test_a_large_tree_draws_in_proportion_and_never_draws_an_empty_slot():
    rng = np.random.default_rng(0)
    priorities = rng.random(1000) * (rng.random(1000) < 0.5)  # half of the slots empty
    tree = SumTree(1000)
    tree.set(np.arange(1000), priorities)
    assert tree.total == pytest.approx(priorities.sum())
    drawn = tree.find(rng.random(200_000) * tree.total)
    assert np.all(priorities[drawn] > 0)
    counts = np.bincount(drawn, minlength=1000)
    heavy = np.argsort(priorities)[-20:]
    np.testing.assert_allclose(counts[heavy] / 200_000, priorities[heavy] / priorities.sum(), rtol=0.15)


def prioritized(capacity=20, **kwargs):
    return ReplayMemory(capacity, priority_exponent=ALPHA, seed=0, **kwargs)


def test_transitions_are_drawn_in_proportion_to_their_priority_to_the_alpha():
    memory = prioritized()
    play(memory, 1, 5)  # transitions with actions 1 .. 4 at positions 0 .. 3
    memory.update_priorities(np.arange(4), np.array([1.0, -4.0, 9.0, 0.0]))

    actions = np.concatenate([memory.sample(100).a_tm1 for _ in range(400)])

    expected = (np.array([1.0, 4.0, 9.0, 0.0]) + 1e-6) ** ALPHA
    frequencies = np.bincount(actions, minlength=5)[1:] / len(actions)
    np.testing.assert_allclose(frequencies, expected / expected.sum(), atol=0.01)


def test_importance_weights_undo_the_skew_relative_to_the_batch_s_rarest():
    memory = prioritized()
    play(memory, 1, 5)
    memory.update_priorities(np.arange(4), np.array([1.0, 4.0, 9.0, 16.0]))

    batch = memory.sample(64, importance_exponent=0.5)

    probability = (batch.a_tm1.astype(float) ** 2) ** ALPHA  # action k had |TD error| k ** 2
    expected = probability ** -0.5 / (probability ** -0.5).max()
    np.testing.assert_allclose(batch.weights, expected, rtol=1e-5)
    assert batch.weights.dtype == np.float32 and batch.weights.max() == 1.0
    np.testing.assert_array_equal(batch.positions, batch.a_tm1 - 1)


def test_a_new_transition_gets_the_largest_priority_seen_so_far():
    memory = prioritized()
    play(memory, 1, 3)
    memory.update_priorities(np.array([0, 1]), np.array([0.01, 3.0]))
    memory.sample(1)  # priorities take effect at the next draw
    memory.add(3, 0.0, frame(4), False, False)  # new: action 3 at position 2
    memory.add(4, 0.0, frame(5), False, False)  # new: action 4 at position 3

    actions = np.concatenate([memory.sample(100).a_tm1 for _ in range(100)])

    counts = np.bincount(actions, minlength=5)
    # 2, 3 and 4 all at priority 3 ** alpha, 1 at 0.01 ** alpha
    assert counts[3] == pytest.approx(counts[2], rel=0.1) and counts[4] == pytest.approx(counts[2], rel=0.1)
    assert counts[1] < counts[2] / 5


def test_new_priorities_take_effect_at_the_next_draw_not_before():
    """So that the transitions stored between a gradient step and the next draw get the same
    priority whether the step ran in the loop's thread or beside it (see the module doc)."""
    memory = prioritized()
    play(memory, 1, 3)
    memory.update_priorities(np.array([0, 1]), np.array([0.01, 3.0]))
    memory.add(3, 0.0, frame(4), False, False)  # stored before the next draw: the old largest, 1

    actions = np.concatenate([memory.sample(100).a_tm1 for _ in range(100)])

    counts = np.bincount(actions, minlength=4)
    assert counts[2] == pytest.approx(3 ** ALPHA * counts[3], rel=0.15)
    assert counts[1] == pytest.approx(0.01 ** ALPHA * counts[3], abs=40)


def test_never_draws_what_uniform_replay_would_not_and_forgets_overwritten_priorities():
    memory = ReplayMemory(12, priority_exponent=ALPHA, n_step=3, seed=0)
    play(memory, 1, 20)  # the ring wrapped: positions 8 .. 18 hold transitions, all at priority 1
    # An old batch's priorities arrive after positions 0 .. 2 were overwritten by 12 .. 14 (same
    # slots): they must not stick to the new transitions.
    memory.update_priorities(np.array([0, 1, 2]), np.array([1e6, 1e6, 1e6]))
    # Huge priorities on the newest transitions, whose 3-step horizons are still open.
    memory.update_priorities(np.array([17, 18]), np.array([1e6, 1e6]))

    batch = memory.sample(3000)

    uniform = ReplayMemory(12, n_step=3, seed=0)
    play(uniform, 1, 20)
    sampleable = set(uniform.sample(3000).positions.tolist())
    assert sampleable == set(range(11, 17))  # whole stacks (>= 8 + 3), closed horizons (<= 19 - 3)
    counts = np.bincount(batch.positions, minlength=20)
    assert set(np.flatnonzero(counts).tolist()) == sampleable
    np.testing.assert_allclose(counts[11:17] / 3000, 1 / 6, atol=0.04)


def test_priorities_and_their_maximum_survive_save_and_load(tmp_path):
    original = prioritized(16)
    play(original, 1, 30)
    original.update_priorities(original.sample(8).positions, np.linspace(0.1, 5.0, 8))
    path = tmp_path / "memory.npz"

    original.save(path)
    resumed = prioritized(16)
    resumed.load(path)

    for memory in (original, resumed):
        memory.add(30, 1.0, frame(31), False, False)  # gets the saved maximum priority
    for _ in range(3):
        a, b = original.sample(12, importance_exponent=0.7), resumed.sample(12, importance_exponent=0.7)
        for field_a, field_b in zip(a, b, strict=True):
            np.testing.assert_array_equal(field_a, field_b)
        for memory in (original, resumed):
            memory.update_priorities(a.positions, np.arange(12.0))


def test_uniform_replay_keeps_its_batches_and_ignores_priorities():
    a, b = ReplayMemory(20, seed=4), ReplayMemory(20, seed=4)
    for memory in (a, b):
        play(memory, 1, 15)
    a.update_priorities(np.arange(5), np.full(5, 100.0))
    first, second = a.sample(16), b.sample(16)
    for field_a, field_b in zip(first, second, strict=True):
        np.testing.assert_array_equal(field_a, field_b)
    assert np.all(first.weights == 1.0)


@pytest.mark.parametrize("exponent", [0.0, 1.5, -0.5])
def test_a_priority_exponent_outside_0_to_1_is_refused(exponent):
    with pytest.raises(UserError, match="priority exponent"):
        ReplayMemory(10, priority_exponent=exponent)


def test_when_the_unsampleable_hold_nearly_all_priority_the_draw_still_ends_among_the_sampleable():
    memory = ReplayMemory(8, priority_exponent=ALPHA, n_step=3, seed=0)
    play(memory, 1, 7)  # transitions at positions 0 .. 5
    memory.update_priorities(np.arange(6), np.array([0, 1e12, 0, 0, 0, 0]))
    memory.sample(1)
    memory.add(7, 0.0, frame(8), False, False)  # two new transitions at the largest priority,
    memory.add(8, 0.0, frame(9), False, False)  # their 3-step horizons still open
    # Now only positions 4 and 5 are sampleable (whole stacks, closed horizons), at 1e-3 against
    # 3e6 for position 1 (its stack lost its first frame) and the two open horizons.

    positions = memory.sample(64).positions

    assert set(positions.tolist()) == {4, 5}


def test_a_snapshot_whose_priorities_do_not_match_its_transitions_is_refused(tmp_path):
    memory = prioritized(10)
    play(memory, 1, 6)
    path = tmp_path / "memory.npz"
    memory.save(path)
    arrays = dict(np.load(path))
    arrays["priorities"] = np.zeros_like(arrays["priorities"])
    np.savez(path, **arrays)

    with pytest.raises(UserError, match="damaged: priorities do not match"):
        prioritized(10).load(path)


def test_diverged_td_errors_stop_the_run_with_one_clear_line():
    memory = prioritized()
    play(memory, 1, 5)
    with pytest.raises(UserError, match="diverged"):
        memory.update_priorities(np.arange(2), np.array([1.0, np.nan]))
