"""One Gymnasium wrapper per concern, composed in order by ``make_env``.

Each wrapper reads only ``info["lives"]`` and the unwrapped env's ``get_action_meanings()``
from the ALE, so the logic can be tested on a small fake env. Each records its arguments, so
``env.spec`` describes the whole stack and ``gymnasium.make(env.spec)`` rebuilds it.
"""
import gymnasium as gym
import numpy as np
from gymnasium.utils import RecordConstructorArgs

from .frames import FRAME_SIZE, preprocess

MOVE_WORDS = ("UP", "DOWN", "LEFT", "RIGHT")


class ActionRepeat(gym.Wrapper, RecordConstructorArgs):
    """Repeat each action on ``frames_per_action`` raw frames, sum the rewards, max-pool the last two.

    The emulator under it must run with ``frameskip=1``, so one ``step()`` advances the
    frame counter by exactly ``frames_per_action`` (fewer only when the game ends). The reward is the sum of every raw frame's
    reward: a point scored on an early frame is never lost. The observation is the pixel-wise
    maximum of the last two raw frames (Mnih et al. 2015), which shows sprites the Atari draws
    only on every other frame. Gymnasium's ``MaxAndSkipObservation`` does the same repeat but,
    when an episode ends before the last repeat, returns frames left from the previous step,
    and it refuses a repeat of 1; hence this version. The inner env must return a new array
    per step, as the ALE does.
    """

    # The action last sent to the emulator: with sticky actions the ALE repeats it, and its saved
    # state does not hold it (see preprocessing.snapshot).
    snapshot_fields = ("_last_action",)

    def __init__(self, env, frames_per_action=4):
        RecordConstructorArgs.__init__(self, frames_per_action=frames_per_action)
        super().__init__(env)
        self.frames_per_action = frames_per_action
        self._last_action = 0

    def reset(self, **kwargs):
        self._last_action = 0  # the ALE's reset and the no-op starts under this wrapper leave NOOP
        return self.env.reset(**kwargs)

    def step(self, action):
        self._last_action = action
        total_reward, previous, frame = 0.0, None, None
        for _ in range(self.frames_per_action):
            previous = frame
            frame, reward, terminated, truncated, info = self.env.step(action)
            total_reward += float(reward)
            if terminated or truncated:
                break
        pooled = frame if previous is None else np.maximum(previous, frame)
        return pooled, total_reward, terminated, truncated, info


class NoopStarts(gym.Wrapper, RecordConstructorArgs):
    """Begin each episode with 1..``noop_max`` raw NOOP frames (Mnih et al. 2015).

    The count is drawn from the env's own RNG (seeded by ``reset(seed=...)``), so a seed fixes
    the start. No-ops are raw frames, as in Gymnasium's ``AtariPreprocessing`` and SB3.
    """

    def __init__(self, env, noop_max=30):
        RecordConstructorArgs.__init__(self, noop_max=noop_max)
        super().__init__(env)
        if env.unwrapped.get_action_meanings()[0] != "NOOP":
            raise ValueError("action 0 must be NOOP")
        self.noop_max = noop_max

    def reset(self, *, seed=None, options=None):
        frame, info = self.env.reset(seed=seed, options=options)
        for _ in range(self.np_random.integers(1, self.noop_max + 1)):
            frame, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                frame, info = self.env.reset()
        return frame, info


class FireReset(gym.Wrapper, RecordConstructorArgs):
    """Press FIRE for one step after reset, and with ``after_life_loss`` after each life lost.

    Breakout waits for FIRE before it serves. After a life lost the press runs inside the same
    ``step()`` call, its reward added, so that step advances the frame counter by two repeats
    instead of one; no frame is skipped inside the emulator. That is why it is off by default.
    Applied by ``make_env`` only to games whose action set has FIRE.
    """

    snapshot_fields = ("_lives",)

    def __init__(self, env, after_life_loss=False):
        RecordConstructorArgs.__init__(self, after_life_loss=after_life_loss)
        super().__init__(env)
        self.after_life_loss = after_life_loss
        self._fire = env.unwrapped.get_action_meanings().index("FIRE")
        self._lives = 0

    def reset(self, *, seed=None, options=None):
        self.env.reset(seed=seed, options=options)
        frame, _, terminated, truncated, info = self.env.step(self._fire)
        if terminated or truncated:
            frame, info = self.env.reset()
        self._lives = info["lives"]
        return frame, info

    def step(self, action):
        frame, reward, terminated, truncated, info = self.env.step(action)
        if self.after_life_loss and info["lives"] < self._lives and not (terminated or truncated):
            frame, fire_reward, terminated, truncated, info = self.env.step(self._fire)
            reward += fire_reward
        self._lives = info["lives"]
        return frame, reward, terminated, truncated, info


class LifeLossFlag(gym.Wrapper, RecordConstructorArgs):
    """Add ``info["life_lost"]``: a life was lost during this step. The episode goes on.

    The trainer stores the flag as a terminal for learning only; the episode, its score and
    its log row run to the real game over. With ``enabled=False`` the flag is always False.
    """

    snapshot_fields = ("_lives",)

    def __init__(self, env, enabled=True):
        RecordConstructorArgs.__init__(self, enabled=enabled)
        super().__init__(env)
        self.enabled = enabled
        self._lives = 0

    def reset(self, *, seed=None, options=None):
        frame, info = self.env.reset(seed=seed, options=options)
        self._lives = info["lives"]
        info["life_lost"] = False
        return frame, info

    def step(self, action):
        frame, reward, terminated, truncated, info = self.env.step(action)
        info["life_lost"] = self.enabled and info["lives"] < self._lives
        self._lives = info["lives"]
        return frame, reward, terminated, truncated, info


class IdlePenalty(gym.Wrapper, RecordConstructorArgs):
    """Add ``info["idle_penalty"]``: ``penalty`` on every ``idle_decisions``-th idle decision of a round.

    The HTW_AI_Gym seed punished an agent that did nothing for 30 decisions at the start of a
    round (reset or life lost), because it had learned to wait forever. A decision is idle when
    its action has no direction (NOOP, FIRE); the first move ends the idling for that round.
    The penalty is reported, never added to the reward, which stays the raw game score.
    ``penalty=0.0`` turns it off while keeping the key.
    """

    snapshot_fields = ("_idle_run", "_lives")

    def __init__(self, env, penalty=-1.0, idle_decisions=30):
        RecordConstructorArgs.__init__(self, penalty=penalty, idle_decisions=idle_decisions)
        super().__init__(env)
        meanings = env.unwrapped.get_action_meanings()
        self._moves = [any(word in meaning for word in MOVE_WORDS) for meaning in meanings]
        self.penalty, self.idle_decisions = penalty, idle_decisions
        self._idle_run, self._lives = 0, 0

    def reset(self, *, seed=None, options=None):
        frame, info = self.env.reset(seed=seed, options=options)
        self._idle_run, self._lives = 0, info["lives"]
        info["idle_penalty"] = 0.0
        return frame, info

    def step(self, action):
        frame, reward, terminated, truncated, info = self.env.step(action)
        moved = self._moves[action] or self._idle_run is None
        self._idle_run = None if moved else self._idle_run + 1
        due = not moved and self._idle_run % self.idle_decisions == 0
        info["idle_penalty"] = self.penalty if due else 0.0
        if info["lives"] < self._lives:
            self._idle_run = 0
        self._lives = info["lives"]
        return frame, reward, terminated, truncated, info


class PreprocessFrame(gym.ObservationWrapper, RecordConstructorArgs):
    """Observe ``preprocess(frame)``: ``uint8[84,84]`` from a ``uint8[210,160]`` (or RGB) screen."""

    def __init__(self, env):
        RecordConstructorArgs.__init__(self)
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0, 255, (FRAME_SIZE, FRAME_SIZE), np.uint8)

    def observation(self, observation):
        return preprocess(observation)
