"""Catch: a tiny image game that a working DQN learns in a couple of minutes.

A ball falls straight down one row per step from a random column; the agent moves a paddle
along the bottom row (left, stay, right). Catching a ball scores +1, missing it -1; an episode
is ``balls`` drops, so scores run from -balls (random play is near -0.6·balls) to +balls.
Observations are uint8[84,84] frames like the Atari pipeline's, so the full training loop,
replay memory and Nature network run on it unchanged.
"""
import gymnasium as gym
import numpy as np

GRID = 5
CELL = 84 // GRID


class CatchEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, balls=5):
        self.balls = balls
        self.observation_space = gym.spaces.Box(0, 255, (84, 84), np.uint8)
        self.action_space = gym.spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.dropped = 0
        self.paddle = GRID // 2
        self._new_ball()
        return self._frame(), {}

    def step(self, action):
        self.paddle = int(np.clip(self.paddle + int(action) - 1, 0, GRID - 1))
        self.ball_row += 1
        reward = 0.0
        if self.ball_row == GRID - 1:
            reward = 1.0 if self.ball_column == self.paddle else -1.0
            self.dropped += 1
            self._new_ball()
        terminated = self.dropped == self.balls
        return self._frame(), reward, terminated, False, {}

    def _new_ball(self):
        self.ball_row = 0
        self.ball_column = int(self.np_random.integers(GRID))

    def _frame(self):
        frame = np.zeros((84, 84), np.uint8)
        frame[self.ball_row * CELL:(self.ball_row + 1) * CELL,
              self.ball_column * CELL:(self.ball_column + 1) * CELL] = 255
        frame[(GRID - 1) * CELL:, self.paddle * CELL:(self.paddle + 1) * CELL] = 128
        return frame
