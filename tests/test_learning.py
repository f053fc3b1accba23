"""End to end: the training loop the CLI runs must learn a tiny image game to a near-optimal score.

This is the test that fails if the learning rule, the target network or the replay memory is
broken (each was broken on purpose once to see it fail: see the README's testing notes).
"""
import keras
import numpy as np
import pytest

import dqn_atari
import training
from catch_env import CatchEnv
from preprocessing import FrameStack

BALLS = 5


def greedy_scores(agent, episodes, seed):
    env, scores = CatchEnv(BALLS), []
    for episode in range(episodes):
        frame, _ = env.reset(seed=seed + episode)
        stack, score, done = FrameStack(), 0.0, False
        state = stack.reset(frame)
        while not done:
            frame, reward, done, _, _ = env.step(agent.act(state, 0.0))
            state = stack.append(frame)
            score += reward
        scores.append(score)
    return np.array(scores)


@pytest.fixture
def restore_precision():
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("precision, n_step, prioritized, envs", [
    ("float32", 1, False, 1), ("bfloat16", 1, False, 1), ("bfloat16", 3, False, 2), ("bfloat16", 3, True, 1)])
def test_training_loop_learns_catch_to_a_near_optimal_score(tmp_path, precision, n_step, prioritized, envs,
                                                            restore_precision):
    config = dqn_atari.Config(
        env_id="Catch", steps=4_000, pre_steps=500, epsilon_start=1.0, epsilon_end=0.05,
        epsilon_steps=2_000, memory_size=5_000, memory_compression="none", batch_size=32,
        gamma=0.9, n_step=n_step, learning_rate=5e-4, target_update=250, train_every=2, save_every=50,
        prioritized=prioritized, seed=3, precision=precision, out=str(tmp_path), envs=envs)
    dqn_atari.setup_backend(config)
    agent = dqn_atari.make_agent(config, num_actions=3)
    memory = dqn_atari.make_memory(config)
    files = training.RunFiles.for_env(tmp_path, config.env_id)
    before = greedy_scores(agent, 20, seed=1000).mean()

    games = [CatchEnv(BALLS) for _ in range(envs)]
    training.run_training(config, games if envs > 1 else games[0], agent, memory, files, game="catch")

    after = greedy_scores(agent, 20, seed=1000)
    assert after.mean() >= 0.9 * BALLS, f"greedy mean {after.mean()} (before training {before})"
    assert files.log.stat().st_size > 0 and files.weights.stat().st_size > 0
