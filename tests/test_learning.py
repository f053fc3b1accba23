"""End to end: the training loop the CLI runs must learn a tiny image game to a near-optimal score.

These are the tests that fail if the learning rule, the target network, the replay memory or the
loop's bookkeeping is broken (each was broken on purpose to see them fail: ``tests/mutants/``).

Each case trains until its greedy policy catches nearly every ball, with a step cap, instead of
training a fixed number of steps and hoping one seed's rounding lands above the bar: the step at
which a working learner gets there moves with the CPU's float rounding (AMX, AVX-512 BF16, plain
float32) and the backend, whether it gets there does not.
"""
import gymnasium
import keras
import numpy as np
import pytest
from catch_env import CatchEnv

import dqn_atari
import training
import training.build
import training.config
import training.loop
from agent import backend
from memory import ReplayMemory
from preprocessing import FrameStack, make_env

BALLS = 5
EVAL_GAMES = 50
"""Greedy games per check: 250 balls, so that the bar measures a policy and not a lucky draw."""
BAR = 0.9 * BALLS
"""A mean of 4.5 allows 6 misses in 250 balls (each miss costs 2); random play scores about -3,
and a learner that only steers in the last step or two before the catch stays far below it."""
FIRST_CHECK, CHECK_EVERY, STEP_CAP = 1_000, 250, 10_000
"""Working learners reached the bar within 1,000 to 2,750 steps in every case and seed measured
(README, Tests): the cap leaves more than three times the slowest."""


def greedy_scores(q_values, games=EVAL_GAMES, seed=1000):
    """float[games]: the scores of ``games`` Catch games played greedily side by side by ``q_values``
    (states uint8[N,84,84,4] -> float32[N,A]); game i is seeded ``seed + i``, so every check plays
    the same balls."""
    envs = [CatchEnv(BALLS) for _ in range(games)]
    stacks = [FrameStack() for _ in range(games)]
    states = np.stack([stack.reset(env.reset(seed=seed + i)[0]) for i, (env, stack) in enumerate(zip(envs, stacks))])
    scores, done = np.zeros(games), np.zeros(games, bool)
    while not done.all():  # every game lasts BALLS drops, so all end on the same step
        actions = np.argmax(np.asarray(q_values(states)), axis=1)
        for i in np.flatnonzero(~done):
            frame, reward, done[i], _, _ = envs[i].step(actions[i])
            states[i] = stacks[i].append(frame)
            scores[i] += reward
    return scores


class Reached(Exception):
    """Raised by ``TrainUntilTheBar`` to end training once the bar is reached."""


class TrainUntilTheBar:
    """The loop's periodic-evaluation hook: every CHECK_EVERY steps from FIRST_CHECK on, the greedy
    mean over EVAL_GAMES games; ends the run (``Reached``) at the first check that reaches BAR."""

    def __init__(self):
        self.history = []  # (step, greedy mean)

    def due(self, step):
        return step >= FIRST_CHECK and step % CHECK_EVERY == 0

    def run(self, step, agent, stop=None, tensorboard=None):
        self.history.append((step, greedy_scores(agent.frozen_q_function()).mean()))
        if self.history[-1][1] >= BAR:
            raise Reached
        return True


@pytest.fixture
def restore_precision():
    yield
    keras.mixed_precision.set_global_policy("float32")


def catch_config(tmp_path, **overrides):
    settings = dict(
        env_id="Catch", steps=STEP_CAP, pre_steps=500, epsilon_start=1.0, epsilon_end=0.05,
        epsilon_steps=2_000, memory_size=5_000, memory_compression="none", batch_size=32,
        gamma=0.9, learning_rate=5e-4, target_update=250, train_every=2, save_every=10,
        seed=3, out=str(tmp_path))
    return dqn_atari.Config(**{**settings, **overrides})


def train_on_catch(config):
    """(greedy mean before training, TrainUntilTheBar's history, the run's files)."""
    training.build.setup_backend(config)
    agent = training.build.make_agent(config, num_actions=3)
    memory = training.build.make_memory(config)
    files = training.config.RunFiles.for_env(config.out, config.env_id)
    before = greedy_scores(agent.frozen_q_function()).mean()
    games = [CatchEnv(BALLS) for _ in range(config.envs)]
    until = TrainUntilTheBar()
    try:
        training.loop.run_training(config, games if config.envs > 1 else games[0], agent, memory, files,
                              game="catch", evaluation=until)
    except Reached:
        pass
    return before, until.history, files


@pytest.mark.parametrize("precision, n_step, prioritized, envs, dueling, distributional", [
    ("float32", 1, False, 1, False, "none"),    # the Nature target, in float32 on every CPU
    ("bfloat16", 1, False, 1, False, "none"),   # mixed precision, where the CPU has bfloat16 instructions
    ("auto", 3, False, 2, True, "none"),        # dueling, multi-step targets, two copies of the game
    ("auto", 3, True, 1, False, "quantile"),    # QR-DQN, multi-step targets, prioritized replay
], ids=["float32", "bfloat16", "dueling-n3-envs2", "quantile-n3-prioritized"])
def test_training_loop_learns_catch_to_a_near_optimal_score(tmp_path, precision, n_step, prioritized, envs,
                                                            dueling, distributional, restore_precision):
    if precision == "bfloat16" and backend.default_precision() != "bfloat16":
        pytest.skip("this CPU has no bfloat16 instructions (or the backend is not TensorFlow): bfloat16 is "
                    "emulated, about 8 times slower than float32; test_agent pins its numerics")
    config = catch_config(tmp_path, precision=precision, n_step=n_step, prioritized=prioritized, envs=envs,
                          dueling=dueling, distributional=distributional)
    before, history, files = train_on_catch(config)
    assert before < 0, f"an untrained network already scores {before}"
    step, best = history[-1]
    assert best >= BAR, (f"greedy mean {best} after {step:,} steps, {max(mean for _, mean in history)} at best "
                         f"(before training {before}); checks: {history}")
    assert files.log.stat().st_size > 0 and files.weights.stat().st_size > 0


class RecordingMemory(ReplayMemory):
    """A replay memory that also keeps the terminal flag of every transition the loop stores."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stored_terminals = []

    def add(self, action, reward, next_frame, terminated, truncated):
        self.stored_terminals.append(bool(terminated))
        super().add(action, reward, next_frame, terminated, truncated)


class LifeLog(gymnasium.Wrapper):
    """Keeps what each step of the game reported: (terminated, life_lost)."""

    def __init__(self, env):
        super().__init__(env)
        self.steps = []

    def step(self, action):
        frame, reward, terminated, truncated, info = self.env.step(action)
        self.steps.append((terminated, info["life_lost"]))
        return frame, reward, terminated, truncated, info


@pytest.mark.parametrize("life_loss_signal", [True, False])
def test_the_loop_stores_a_lost_life_as_a_terminal_for_learning_unless_told_not_to(tmp_path, life_loss_signal):
    """Breakout played at random for 600 steps loses several lives: each step that lost one must
    reach the replay memory as a terminal (its target is not bootstrapped), and with
    ``--no-life-loss-signal`` only the game's own end may."""
    config = dqn_atari.Config(env_id="Breakout-v0", steps=600, pre_steps=600, memory_size=1_000,
                              memory_compression="none", seed=1, out=str(tmp_path),
                              life_loss_signal=life_loss_signal)
    env = LifeLog(make_env("Breakout-v0", seed=1))  # the game reports lost lives either way
    memory = RecordingMemory(config.memory_size, compression="none", seed=1)
    training.loop.run_training(config, env, training.build.make_agent(config, env.action_space.n), memory,
                          training.config.RunFiles.for_env(tmp_path, config.env_id), game="breakout")
    env.close()
    lives_lost = sum(life_lost for _, life_lost in env.steps)
    assert lives_lost >= 3
    assert memory.stored_terminals == [terminated or (life_loss_signal and life_lost)
                                       for terminated, life_lost in env.steps]
