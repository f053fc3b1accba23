"""A snapshot taken mid-episode continues the game frame for frame in a fresh environment."""
import pickle

import numpy as np

from preprocessing import env_snapshot, make_env, restore_env


def play(env, actions):
    """Frames, rewards and flags of ``actions``, resetting (with no-op starts) at each game over."""
    trace = []
    for action in actions:
        frame, reward, terminated, truncated, info = env.step(action)
        trace.append((frame, reward, terminated, info["lives"], info["life_lost"]))
        if terminated or truncated:
            frame, _ = env.reset()
            trace.append((frame, "reset"))
    return trace


def test_snapshot_restores_emulator_rng_and_wrapper_counters_in_a_fresh_env():
    env = make_env("Breakout-v0", seed=7)
    rng = np.random.default_rng(0)
    play(env, rng.integers(0, 4, 120))
    snapshot = pickle.loads(pickle.dumps(env_snapshot(env)))
    actions = rng.integers(0, 4, 400)
    original = play(env, actions)

    fresh = make_env("Breakout-v0", seed=12345)
    restore_env(fresh, snapshot)
    replayed = play(fresh, actions)

    assert any(len(item) == 2 for item in original), "the trace should cross a game over and a reset"
    assert any(item[-1] is True for item in original if len(item) == 5), "and a life lost"
    assert len(original) == len(replayed)
    for a, b in zip(original, replayed):
        assert np.array_equal(a[0], b[0]) and a[1:] == b[1:]
