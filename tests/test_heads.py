"""The network's heads: dueling (Wang et al. 2016) and quantiles (QR-DQN, Dabney et al. 2018)."""
import re
from collections import namedtuple

import keras
import numpy as np
import pytest

from agent import (Head, HeadMismatchError, build_agent, build_q_network, head_of, load_weights,
                   quantile_double_dqn_loss, quantile_huber_loss, read_head, save_weights)
from agent.network import action_values

Batch = namedtuple("Batch", "s_tm1 a_tm1 r_t discount_t s_t weights")
as_numpy = keras.ops.convert_to_numpy


def tensors(*arrays):
    """numpy inputs as the backend's tensors, as the train step hands them to the learning rule."""
    return [keras.ops.convert_to_tensor(array) for array in arrays]
HEADS = [Head(), Head(dueling=True), Head(quantiles=8), Head(dueling=True, quantiles=8)]


def states(rng, size=8):
    return rng.integers(0, 256, (size, 84, 84, 4), dtype=np.uint8)


def test_the_quantile_huber_loss_of_a_hand_computed_case():
    # Quantiles theta = [0, 1] at taus [0.25, 0.75]; target samples [0.5, 3].
    # u_ij = target_j - theta_i: [[0.5, 3], [-0.5, 2]]; Huber (kappa 1): [[0.125, 2.5], [0.125, 1.5]].
    # Weights |tau_i - 1{u_ij < 0}|: [[0.25, 0.25], [0.25, 0.75]].
    # Mean over j, sum over i: (0.03125 + 0.625) / 2 + (0.03125 + 1.125) / 2 = 0.90625.
    u = np.array([[[0.5, 3.0], [-0.5, 2.0]]], np.float32)
    assert float(quantile_huber_loss(u, np.array([0.25, 0.75], np.float32))[0]) == pytest.approx(0.90625)


def test_the_quantile_target_takes_the_online_mean_argmax_valued_by_the_target_quantiles():
    q_t_online = np.array([[[0.0, 0.0], [1.0, 1.0]]], np.float32)    # by its mean the online network picks a_t = 1
    q_t_target = np.array([[[9.0, 9.0], [-1.0, 4.0]]], np.float32)   # the target's own best would be action 0
    q_tm1 = np.array([[[0.0, 1.0], [7.0, 7.0]]], np.float32)         # a_tm1 = 0: theta = [0, 1]
    loss, mean_q, per_sample = quantile_double_dqn_loss(*tensors(
        q_tm1, np.array([0], np.int32), np.array([1.0], np.float32), np.array([0.5], np.float32),
        q_t_online, q_t_target, np.ones(1, np.float32)))
    # target samples 1 + 0.5 * [-1, 4] = [0.5, 3]: the hand-computed case above.
    assert float(loss) == pytest.approx(0.90625) and float(mean_q) == pytest.approx(0.5)
    np.testing.assert_allclose(as_numpy(per_sample), [0.90625])


def numpy_quantile_loss(q_tm1, a_tm1, r_t, discount_t, q_t_online, q_t_target, weights):
    """QR-DQN's Double-DQN loss written with loops, as the paper's Algorithm 1 reads."""
    batch, _, n = q_tm1.shape
    taus = (np.arange(n) + 0.5) / n
    per_sample = np.zeros(batch)
    for b in range(batch):
        a_t = np.argmax(q_t_online[b].mean(axis=1))
        targets = r_t[b] + discount_t[b] * q_t_target[b, a_t]
        for i in range(n):
            for j in range(n):
                u = targets[j] - q_tm1[b, a_tm1[b], i]
                huber = 0.5 * u * u if abs(u) <= 1 else abs(u) - 0.5
                per_sample[b] += abs(taus[i] - (u < 0)) * huber / n
    return (weights * per_sample).mean(), q_tm1[np.arange(batch), a_tm1].mean(), per_sample


def test_the_quantile_loss_matches_a_numpy_reference_on_random_batches():
    rng = np.random.default_rng(0)
    b, a, n = 6, 3, 5
    arrays = (rng.normal(0, 2, (b, a, n)).astype(np.float32), rng.integers(0, a, b).astype(np.int32),
              rng.uniform(-1, 1, b).astype(np.float32), np.array([0.99, 0.0, 0.5, 0.99, 0.0, 0.9], np.float32),
              rng.normal(0, 2, (b, a, n)).astype(np.float32), rng.normal(0, 2, (b, a, n)).astype(np.float32),
              rng.uniform(0.1, 1, b).astype(np.float32))
    got = [as_numpy(x) for x in quantile_double_dqn_loss(*tensors(*arrays))]
    expected = numpy_quantile_loss(*arrays)
    for value, reference in zip(got, expected):
        np.testing.assert_allclose(value, reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("quantiles", [0, 8])
def test_dueling_q_is_value_plus_advantage_minus_its_mean(quantiles):
    model = build_q_network(5, head=Head(dueling=True, quantiles=quantiles))
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(0, 0.05, w.shape).astype(np.float32) for w in model.get_weights()])
    streams = keras.Model(model.input, [model.get_layer("value").output, model.get_layer("advantages").output])
    x = states(rng, 3)
    value, advantages = (as_numpy(y) for y in streams(x))
    per_action = max(quantiles, 1)
    value, advantages = value.reshape(3, 1, per_action), advantages.reshape(3, 5, per_action)
    expected = value + advantages - advantages.mean(axis=1, keepdims=True)
    q = as_numpy(model(x)).reshape(3, 5, per_action)
    np.testing.assert_allclose(q, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q.mean(axis=1), value[:, 0], rtol=1e-5, atol=1e-6)  # the identity: mean_a Q = V
    assert np.abs(advantages - advantages.mean(axis=1, keepdims=True)).max() > 1e-3  # the streams are not trivial


@pytest.mark.parametrize("head", HEADS, ids=Head.describe)
def test_each_head_has_its_shape_and_acts_on_the_mean_of_its_quantiles(head):
    model = build_q_network(6, head=head)
    assert head_of(model) == head
    assert model.output_shape == ((None, 6, head.quantiles) if head.quantiles else (None, 6))
    outputs = model(states(np.random.default_rng(2), 4))
    q_values = as_numpy(action_values(outputs))
    assert q_values.shape == (4, 6)
    np.testing.assert_allclose(q_values, as_numpy(outputs).mean(axis=-1) if head.quantiles else as_numpy(outputs),
                               rtol=1e-6, atol=1e-7)
    agent = build_agent(6, head=head, seed=0)
    np.testing.assert_allclose(agent.frozen_q_function()(states(np.random.default_rng(3), 2)),
                               as_numpy(action_values(agent.online(states(np.random.default_rng(3), 2)))),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("head", HEADS[1:], ids=Head.describe)
def test_train_steps_of_each_head_fit_a_fixed_batch(head):
    keras.utils.set_random_seed(0)
    agent = build_agent(4, head=head, learning_rate=1e-3, seed=0)
    rng = np.random.default_rng(0)
    batch = Batch(states(rng), rng.integers(0, 4, 8), rng.uniform(-1, 1, 8).astype(np.float32),
                  np.ones(8, np.float32), states(rng), np.ones(8, np.float32))
    learned = [agent.train_step(batch) for _ in range(30)]
    assert learned[-1].loss < 0.5 * learned[0].loss
    assert learned[0].td_errors.shape == (8,) and (head.quantiles == 0 or (learned[0].td_errors > 0).all())


def test_a_weights_file_records_its_head_and_refuses_another(tmp_path):
    rng = np.random.default_rng(4)
    for head in HEADS:
        model = build_q_network(4, head=head)
        model.set_weights([rng.normal(0, 0.05, w.shape).astype(np.float32) for w in model.get_weights()])
        path = tmp_path / f"{head.describe()}.h5"
        save_weights(path, model, game="pong")
        assert read_head(path) == head
        copy = build_q_network(4, head=head)
        load_weights(path, copy, game="pong")
        assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), copy.get_weights()))
        for other in HEADS:
            if other != head:
                expected = f"{head.describe()} network, not of the {other.describe()} network"
                with pytest.raises(HeadMismatchError, match=re.escape(expected)):
                    load_weights(path, build_q_network(4, head=other), game="pong")


def test_quantile_networks_of_another_number_of_quantiles_are_refused(tmp_path):
    save_weights(tmp_path / "w.h5", build_q_network(4, head=Head(quantiles=8)), game="pong")
    with pytest.raises(HeadMismatchError, match=r"quantile \(8\) network, not of the quantile \(16\)"):
        load_weights(tmp_path / "w.h5", build_q_network(4, head=Head(quantiles=16)), game="pong")
