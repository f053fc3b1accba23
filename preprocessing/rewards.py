"""Reward clipping for learning; the environment itself returns the raw game score."""
import numpy as np


def clip_reward(reward):
    """The sign of ``reward`` as a float in {-1.0, 0.0, 1.0} (Mnih et al. 2015).

    Clipping keeps one learning rate workable across games whose scores differ by orders of
    magnitude. Only the learning target uses it; logs keep the raw score, the real measure.
    """
    return float(np.sign(reward))
