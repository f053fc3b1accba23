"""Reward clipping as learning sees it; the environment itself returns the raw game score."""
import numpy as np


def clip_reward(reward):
    """``reward`` clipped to [-1, 1] as a float (Mnih et al. 2015): +1, -1 or 0 for a game's
    whole-point scores.

    Clipping keeps one learning rate workable across games whose scores differ by orders of
    magnitude. The replay memory clips the rewards it stores the same way; the log reports the
    raw score, the real measure, and beside it the clipped return computed with this function.
    """
    return float(np.clip(reward, -1.0, 1.0))
