"""The agent: Nature network, Double DQN target, epsilon schedule, train step and weight files."""
import os
import platform
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import keras
import numpy as np
import pytest

from agent import (DQNAgent, LinearSchedule, WeightsError, build_agent, build_q_network,
                   double_dqn_loss, load_weights, make_optimizer, save_weights)

Batch = namedtuple("Batch", "s_tm1 a_tm1 r_t discount_t s_t weights")
REPO_ROOT = Path(__file__).resolve().parent.parent
as_numpy = keras.ops.convert_to_numpy  # a model's output, on whichever backend runs the suite


def tensors(*arrays):
    """numpy inputs as the backend's tensors, as the train step hands them to the learning rule."""
    return [keras.ops.convert_to_tensor(array) for array in arrays]
tensorflow_only = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                     reason="checks the TensorFlow train step (KERAS_BACKEND is another)")


def random_batch(rng, size=8, num_actions=4):
    states = lambda: rng.integers(0, 256, (size, 84, 84, 4), dtype=np.uint8)  # noqa: E731
    return Batch(states(), rng.integers(0, num_actions, size), rng.uniform(-1, 1, size).astype(np.float32),
                 np.ones(size, np.float32), states(), np.ones(size, np.float32))


def test_network_is_the_nature_cnn_with_uint8_input():
    model = build_q_network(6)
    assert model.input.dtype == "uint8" and model.output_shape == (None, 6)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size, c.strides) for c in convs] == [
        (32, (8, 8), (4, 4)), (64, (4, 4), (2, 2)), (64, (3, 3), (1, 1))]
    conv_params = (8 * 8 * 4 * 32 + 32) + (4 * 4 * 32 * 64 + 64) + (3 * 3 * 64 * 64 + 64)
    dense_params = (7 * 7 * 64 * 512 + 512) + (512 * 6 + 6)
    assert model.count_params() == conv_params + dense_params == 1_687_206


def test_double_dqn_target_uses_online_argmax_and_target_value():
    q_tm1 = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32)
    q_t_online = np.array([[0.0, 9.0], [9.0, 0.0], [0.0, 9.0]], np.float32)  # picks a_t = 1, 0, 1
    q_t_target = np.array([[7.0, 5.0], [11.0, 13.0], [2.0, 3.0]], np.float32)  # values them 5, 11, 3
    a_tm1 = np.array([0, 1, 1], np.int32)
    r_t = np.array([1.0, -1.0, 0.5], np.float32)
    discount_t = np.array([0.5, 0.5, 0.0], np.float32)                         # the third game ended
    batch = tensors(q_tm1, a_tm1, r_t, discount_t, q_t_online, q_t_target)
    loss, mean_q, td_errors = double_dqn_loss(*batch, tensors(np.ones(3, np.float32))[0],
                                              keras.losses.mean_squared_error)
    # targets: 1 + 0.5*5 = 3.5, -1 + 0.5*11 = 4.5 and 0.5 (no bootstrap); chosen values 1, 4 and 6.
    # Plain DQN's max over the target network would give 1 + 0.5*7 = 4.5 and -1 + 0.5*13 = 5.5.
    np.testing.assert_allclose(as_numpy(td_errors), [2.5, 0.5, -5.5])
    assert float(loss) == pytest.approx((2.5 ** 2 + 0.5 ** 2 + 5.5 ** 2) / 3)
    assert float(mean_q) == pytest.approx(11 / 3)
    # Importance-sampling weights scale each transition's term of the mean.
    weighted, _, _ = double_dqn_loss(*batch, tensors(np.array([1.0, 0.25, 1.0], np.float32))[0],
                                     keras.losses.mean_squared_error)
    assert float(weighted) == pytest.approx((2.5 ** 2 + 0.25 * 0.5 ** 2 + 5.5 ** 2) / 3)


def test_linear_schedule_is_a_function_of_the_absolute_step():
    schedule = LinearSchedule(1.0, 0.1, 100)
    assert [schedule(t) for t in (-5, 0, 50, 100, 10_000)] == pytest.approx([1.0, 1.0, 0.55, 0.1, 0.1])
    assert LinearSchedule(0.1, 0.0, 0)(0) == 0.0


def test_train_steps_fit_a_fixed_batch_and_leave_the_target_network_alone():
    keras.utils.set_random_seed(0)
    agent = build_agent(4, learning_rate=1e-3, seed=0)
    batch = random_batch(np.random.default_rng(0))
    target_before = [w.copy() for w in agent.target.get_weights()]
    losses = [agent.train_step(batch)[0] for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]
    assert all(np.array_equal(a, b) for a, b in zip(target_before, agent.target.get_weights()))
    agent.sync_target()
    assert all(np.array_equal(a, b) for a, b in zip(agent.online.get_weights(), agent.target.get_weights()))


@pytest.fixture
def mixed_bfloat16():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_a_bfloat16_target_computes_what_the_mixed_precision_online_network_computes(mixed_bfloat16, tmp_path):
    """Under mixed precision the target keeps the online weights already rounded to bfloat16 (one
    rounding per sync instead of one per gradient step): its values must be the online network's, bit
    for bit, after a sync and after its weights went through a weights file (checkpoints)."""
    agent = build_agent(4, learning_rate=1e-3, seed=0)
    assert agent.online.weights[0].dtype == "float32" and agent.target.weights[0].dtype == "bfloat16"
    rng = np.random.default_rng(0)
    agent.train_step(random_batch(rng))
    states = random_batch(rng).s_t
    online = lambda: as_numpy(agent.online(states, training=False))  # noqa: E731
    target = lambda: as_numpy(agent.target(states, training=False))  # noqa: E731
    before = target()
    assert not np.array_equal(online(), before)  # the step moved the online network, not the target
    agent.sync_target()
    assert target().dtype == np.float32 and np.array_equal(target(), online())
    save_weights(tmp_path / "target.h5", agent.target, game="pong")
    load_weights(tmp_path / "target.h5", agent.target)
    assert np.array_equal(target(), online())
    stale = build_q_network(4, dtype="bfloat16")
    load_weights(tmp_path / "target.h5", stale)
    assert np.array_equal(as_numpy(stale(states)), online())


@tensorflow_only
@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_the_train_step_on_plain_tensorflow_ops_computes_what_the_keras_calls_compute(policy, monkeypatch):
    """The TensorFlow step runs the networks as plain ops that round the online weights once for
    both of its forward passes and rescale s_t once for both networks: the same bits as calling
    the Keras models (losses, TD errors, and the weights after three steps)."""
    from agent import backend

    keras.mixed_precision.set_global_policy(policy)
    try:
        plain = build_agent(6, learning_rate=1e-3, seed=0)
        assert backend.module().plain_forward(plain.online) is not None
        monkeypatch.setattr(backend.module(), "plain_forward", lambda model: None)
        called = build_agent(6, learning_rate=1e-3, seed=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    called.online.set_weights(plain.online.get_weights())
    called.sync_target()
    plain.sync_target()
    rng = np.random.default_rng(5)
    for _ in range(3):
        batch = random_batch(rng, size=16, num_actions=6)
        a, b = plain.learn(batch), called.learn(batch)
        assert a.loss == b.loss and a.mean_q == b.mean_q and np.array_equal(a.td_errors, b.td_errors)
    assert all(np.array_equal(x, y) for x, y in zip(plain.online.get_weights(), called.online.get_weights(), strict=True))


# epsilon 1.0 shows that the optimizer's epsilon reaches the fused kernel (a tiny one would not:
# m / (sqrt(v) + eps) then turns float rounding in near-zero gradients into visible differences).
@tensorflow_only
@pytest.mark.parametrize("clip_norm, epsilon", [(None, 1.5e-4), (0.05, 1.5e-4), (None, 1.0)])
def test_the_fast_adam_update_matches_keras_adam(clip_norm, epsilon):
    """The TensorFlow train step applies Adam with a fused kernel; a subclass of Adam takes Keras's path."""
    from agent import backend

    class KerasPathAdam(keras.optimizers.Adam):
        pass

    agents = []
    for optimizer in (make_optimizer("adam", 1e-3, clip_norm, epsilon),
                      KerasPathAdam(1e-3, epsilon=epsilon, global_clipnorm=clip_norm)):
        keras.utils.set_random_seed(3)
        agents.append(DQNAgent(build_q_network(4), build_q_network(4), optimizer))
    assert backend.module().can_fuse_adam(agents[0].optimizer) and not backend.module().can_fuse_adam(agents[1].optimizer)
    rng = np.random.default_rng(3)
    # Two steps: beyond that, Adam's m / (sqrt(v) + eps) turns float rounding into visible drift.
    for _ in range(2):
        batch = random_batch(rng)
        losses = [agent.train_step(batch)[0] for agent in agents]
        assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    fast, reference = agents
    assert int(fast.optimizer.iterations) == int(reference.optimizer.iterations) == 2
    for a, b in zip(fast.online.get_weights() + [v.numpy() for v in fast.optimizer.variables[2:]],
                    reference.online.get_weights() + [v.numpy() for v in reference.optimizer.variables[2:]]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert not np.allclose(fast.online.get_weights()[0], fast.target.get_weights()[0])


@pytest.mark.parametrize("name, epsilon, expected", [
    ("adam", None, 1.5e-4), ("adam", 1e-8, 1e-8), ("rmsprop", None, 0.01 / 32**2), ("rmsprop", 1e-5, 1e-5)])
def test_the_optimizer_epsilon_has_a_default_per_optimizer_and_can_be_set(name, epsilon, expected):
    agent = build_agent(4, optimizer=name, optimizer_epsilon=epsilon)
    assert agent.optimizer.epsilon == pytest.approx(expected)


def test_the_actor_holds_the_weights_from_before_the_latest_gradient_step():
    agent = build_agent(4, learning_rate=1e-3, seed=0)
    batch = random_batch(np.random.default_rng(0))
    agent.train_step(batch)
    before = agent.online.get_weights()
    agent.train_step(batch)
    assert all(np.array_equal(a, b) for a, b in zip(agent.actor.get_weights(), before, strict=True))
    assert not np.array_equal(agent.actor.get_weights()[0], agent.online.get_weights()[0])
    state = batch.s_t[0]
    assert agent.act(state, 0.0) == int(np.argmax(as_numpy(agent.actor(state[None]))[0]))


def test_evaluation_plays_a_float32_copy_of_the_online_network_and_leaves_the_actor_alone(mixed_bfloat16):
    """Evaluation and play compute as training acts (float32, the actor's dtype), with the weights of
    the latest step, without syncing the actor (whose one-step lag the learner thread relies on)."""
    agent = build_agent(4, learning_rate=1e-3, seed=0)
    rng = np.random.default_rng(0)
    batch = random_batch(rng)
    agent.train_step(batch)
    agent.train_step(batch)
    actor_before = agent.actor.get_weights()
    q_function = agent.frozen_q_function()
    states = random_batch(rng).s_t
    frozen = q_function(states)
    assert all(np.array_equal(a, b) for a, b in zip(agent.actor.get_weights(), actor_before, strict=True))
    agent.sync_actor()  # now the actor holds the latest weights too: same dtype, same values
    # the same values (PyTorch computes the frozen forward pass with plain ops: within rounding)
    assert frozen.dtype == np.float32
    np.testing.assert_allclose(frozen, as_numpy(agent.actor(states)), rtol=1e-6, atol=1e-7)
    online = as_numpy(agent.online(states, training=False))
    assert not np.array_equal(frozen, online)  # the mixed-precision online network rounds to bfloat16
    np.testing.assert_allclose(frozen, online, rtol=0.05, atol=0.05)
    agent.train_step(batch)
    assert np.array_equal(q_function(states), frozen)  # a copy: later steps leave it alone
    assert not np.array_equal(agent.frozen_q_function()(states), frozen)


def test_act_is_greedy_at_epsilon_zero_and_uniform_at_one():
    agent = build_agent(4, seed=1)
    state = np.random.default_rng(1).integers(0, 256, (84, 84, 4), dtype=np.uint8)
    greedy = int(np.argmax(agent.frozen_q_function()(state[None])[0]))  # the actor has the online weights so far
    assert {agent.act(state, 0.0) for _ in range(20)} == {greedy}
    counts = np.bincount([agent.act(state, 1.0) for _ in range(2000)], minlength=4)
    assert counts.min() > 400


def test_act_batch_draws_as_act_does_state_by_state_and_takes_the_greedy_ones_from_one_pass():
    agent, twin = build_agent(4, seed=2), build_agent(4, seed=2)
    twin.actor.set_weights(agent.actor.get_weights())
    states = np.random.default_rng(2).integers(0, 256, (6, 84, 84, 4), dtype=np.uint8)
    greedy = np.argmax(as_numpy(agent.actor(states)), axis=1).tolist()
    for epsilon in (0.0, 0.5, 1.0):  # the same random draws, in the same order, as one act per state
        assert agent.act_batch(states, epsilon) == [twin.act(state, epsilon) for state in states]
    assert agent.act_batch(states, 0.0) == greedy
    calls = []
    q_function, agent._actor_q_values = agent._actor_q_values, lambda s: calls.append(len(s)) or q_function(s)
    agent.act_batch(states, 0.5)
    assert len(calls) <= 1 and sum(calls) <= len(states)


def test_auto_precision_is_bfloat16_only_on_cpus_with_bfloat16_instructions(monkeypatch):
    from agent import backend

    assert "fpu" in backend.cpu_flags()  # read from this machine's /proc/cpuinfo
    with_bfloat16 = "float32"  # what JAX and PyTorch keep, and TensorFlow on a GPU
    if backend.name() == "tensorflow":
        import tensorflow as tf

        with_bfloat16 = "float32" if tf.config.list_physical_devices("GPU") else "bfloat16"
    monkeypatch.setattr(backend, "cpu_flags", lambda: frozenset({"avx512f", "amx_tile", "amx_bf16"}))
    assert backend.default_precision() == with_bfloat16
    monkeypatch.setattr(backend, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_bf16"}))
    assert backend.default_precision() == with_bfloat16
    monkeypatch.setattr(backend, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_vnni"}))
    assert backend.default_precision() == "float32"
    monkeypatch.setattr(backend, "cpu_flags", lambda: frozenset())
    assert backend.default_precision() == "float32"


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the oneDNN default is set on x86 only")
def test_tensorflow_runs_its_onednn_kernels_on_every_x86_cpu_unless_the_user_says_otherwise():
    script = ("import agent, keras; from tensorflow.python.util import _pywrap_util_port as port; "
              "print(keras.backend.backend(), port.IsMklEnabled())")

    def enabled(**settings):
        env = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
        env.update(KERAS_BACKEND="tensorflow", **settings)
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                                cwd=REPO_ROOT, timeout=300)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()[-2:]

    assert enabled() == ["tensorflow", "True"]  # TensorFlow alone turns it on only with AVX-512 or AMX
    assert enabled(TF_ENABLE_ONEDNN_OPTS="0") == ["tensorflow", "False"]


def test_gradient_norm_clipping_and_optimizers_are_selectable():
    assert make_optimizer("adam", 1e-4, clip_norm=10.0).global_clipnorm == 10.0
    rmsprop = make_optimizer("rmsprop", 0.00025)
    assert isinstance(rmsprop, keras.optimizers.RMSprop) and float(rmsprop.learning_rate) == pytest.approx(0.00025)
    # Gradients of the batch-mean loss, small as they are in training: the epsilon must not swamp them.
    weight, gradient = keras.Variable(np.zeros(3, np.float32)), np.array([5e-4, -2e-3, 1e-5], np.float32)
    rmsprop.apply([keras.ops.convert_to_tensor(gradient)], [weight])
    # The Nature DQN's code on the same batch of 32: dw is the gradient of the summed loss, 32 times ours;
    # g2 = 0.95 g2 + 0.05 dw^2, g = 0.95 g + 0.05 dw, update -lr * dw / sqrt(g2 - g^2 + 0.01)
    summed = 32 * gradient.astype(np.float64)
    nature = -0.00025 * summed / np.sqrt(0.05 * summed**2 - (0.05 * summed) ** 2 + 0.01)
    np.testing.assert_allclose(as_numpy(weight), nature, rtol=1e-4)
    for loss in ("huber", "logcosh", "mse"):
        agent = DQNAgent(build_q_network(4), build_q_network(4), make_optimizer("adam", 1e-4), loss=loss)
        assert np.isfinite(agent.train_step(random_batch(np.random.default_rng(2)))[0])


def test_weights_round_trip_and_refuse_another_game(tmp_path):
    path = tmp_path / "Pong-v0_weights.h5"
    model = build_q_network(6)
    save_weights(path, model, game="pong")
    fresh = build_q_network(6)
    load_weights(path, fresh, game="pong")
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), fresh.get_weights()))
    with pytest.raises(WeightsError, match="6 actions, but this game has 4"):
        load_weights(path, build_q_network(4), game="breakout")
    with pytest.raises(WeightsError, match="for pong, not for space_invaders"):
        load_weights(path, build_q_network(6), game="space_invaders")


@pytest.mark.parametrize("content", [b"", b"not an hdf5 file at all", None])
def test_missing_or_corrupt_weights_raise_one_clear_error(tmp_path, content):
    path = tmp_path / "broken_weights.h5"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(WeightsError, match=str(path)):
        load_weights(path, build_q_network(6))


def test_a_failed_save_leaves_the_previous_weights_file_intact(tmp_path):
    path = tmp_path / "w.h5"
    save_weights(path, build_q_network(6), game="pong")
    good = path.read_bytes()

    class Exploding:
        output_shape = (None, 6)
        layers = ()

        def get_weights(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        save_weights(path, Exploding(), game="pong")
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["w.h5"]


TRAIN_A_FEW_STEPS = """
import numpy as np, keras
from collections import namedtuple
from agent import Head, build_agent
assert keras.backend.backend() == "{backend}"
head = Head(dueling={dueling}, quantiles={quantiles})
rng = np.random.default_rng(0)
B = namedtuple("B", "s_tm1 a_tm1 r_t discount_t s_t weights")
s = lambda: rng.integers(0, 256, (8, 84, 84, 4), dtype=np.uint8)
batch = B(s(), rng.integers(0, 4, 8), rng.uniform(-1, 1, 8).astype(np.float32), np.ones(8, np.float32), s(),
          np.ones(8, np.float32))
agent = build_agent(4, head=head, learning_rate=1e-3, seed=0)
losses = [agent.train_step(batch)[0] for _ in range(15)]
assert losses[-1] < losses[0], losses
td_errors = agent.train_step(batch).td_errors
assert td_errors.shape == (8,) and np.isfinite(td_errors).all() and np.abs(td_errors).max() > 0, td_errors
# Zero importance weights zero the gradient: a fresh agent's first Adam step then moves nothing.
still = build_agent(4, head=head, learning_rate=1e-3, seed=0)
before = still.online.get_weights()
still.train_step(batch._replace(weights=np.zeros(8, np.float32)))
assert all(np.array_equal(a, b) for a, b in zip(before, still.online.get_weights()))
assert agent.act(batch.s_tm1[0], 0.0) in range(4)
print("ok", losses[0], losses[-1])
"""


def run_on_backend(backend, script):
    """Runs ``script`` in a fresh Python with ``KERAS_BACKEND=backend`` (skips where an optional
    backend is not installed) and checks that it printed ``ok``."""
    probe = subprocess.run([sys.executable, "-c", f"import {backend}"], capture_output=True)
    if backend != "tensorflow" and probe.returncode != 0:
        pytest.skip(f"{backend} is not installed (optional backend)")
    env = dict(os.environ, KERAS_BACKEND=backend,
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok")


@pytest.mark.parametrize("backend, dueling, quantiles", [
    ("tensorflow", False, 0), ("jax", False, 0), ("jax", True, 8), ("torch", False, 0), ("torch", True, 8)])
def test_train_steps_run_on_each_installed_backend(backend, dueling, quantiles):
    """Plain and dueling-quantile networks (tests/test_heads.py trains each head on the suite's own backend)."""
    run_on_backend(backend, TRAIN_A_FEW_STEPS.format(backend=backend, dueling=dueling, quantiles=quantiles))


TORCH_FORWARD_MATCHES_KERAS = """
import numpy as np, keras, torch
from agent import backend
from agent.network import build_q_network
rng = np.random.default_rng(0)
states = rng.integers(0, 256, (5, 84, 84, 4), dtype=np.uint8)
for dtype, tolerance in (("float32", 1e-5), ("mixed_bfloat16", 5e-2)):
    keras.mixed_precision.set_global_policy(dtype)
    model = build_q_network(6)
    model.set_weights([rng.normal(0, 0.05, w.shape).astype(np.float32) for w in model.get_weights()])
    forward = backend.module().forward_of(model)
    assert forward.__name__ == "forward", "fell back to the Keras call"
    expected = keras.ops.convert_to_numpy(model(states, training=False)).astype(np.float32)
    got = forward(states).float().detach().cpu().numpy()
    assert np.abs(expected).max() > 0.1 and np.allclose(got, expected, atol=tolerance, rtol=tolerance), (dtype, got - expected)
    forward(states).float().sum().backward()
    assert all(v.value.grad is not None and v.value.grad.abs().sum() > 0 for v in model.trainable_variables)
print("ok")
"""


def test_torch_backend_runs_the_network_as_plain_torch_ops_that_match_the_keras_model():
    run_on_backend("torch", TORCH_FORWARD_MATCHES_KERAS)
