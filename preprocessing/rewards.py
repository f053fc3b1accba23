"""Reward clipping for learning; the environment itself returns the raw game score."""
import numpy as np


def clip_reward(reward):
    """``reward`` clipped to [-1, 1] as a float (Mnih et al. 2015): +1, -1 or 0 for a game's
    whole-point scores.

    Clipping keeps one learning rate workable across games whose scores differ by orders of
    magnitude. Only learning uses it (the replay memory clips the same way on the way in); logs
    keep the raw score, the real measure, next to the clipped return.
    """
    return float(np.clip(reward, -1.0, 1.0))
