"""From a raw Atari screen to the 84x84 frame the network sees, and the stack of the last four."""
import cv2
import numpy as np

FRAME_SIZE = 84


def preprocess(frame):
    """Grayscale and shrink one screen to the network's input: ``uint8[84,84]``.

    ``frame`` is an RGB screen ``uint8[210,160,3]`` or an already gray one ``uint8[210,160]``
    (any height and width work). ``make_env`` passes the gray screen the ALE computes itself
    (``obs_type="grayscale"``): it equals ``cv2.COLOR_RGB2GRAY`` of the RGB screen, pixel for
    pixel, and saves a 100 KB copy and a colour conversion on every raw frame.

    The resize is ``cv2.resize(..., interpolation=cv2.INTER_AREA)``, as Stable-Baselines3's
    ``WarpFrame``: each output pixel is the average of the input area it covers (2.5 rows by
    1.905 columns), so a one-pixel ball or bullet is dimmed but never dropped, unlike nearest or
    bilinear sampling, which read only a few input pixels. The whole screen is kept (no crop):
    the score and the field edges stay visible in every game.
    """
    if frame.ndim == 3:
        frame = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    if frame.ndim != 2:
        raise ValueError(f"expected uint8[H,W] or uint8[H,W,3], got shape {frame.shape}")
    return cv2.resize(frame, (FRAME_SIZE, FRAME_SIZE), interpolation=cv2.INTER_AREA)


class FrameStack:
    """The agent's state: the last ``history`` frames, ``uint8[84,84,history]``, newest last.

    Channels last, as the Keras network expects. At an episode start the earlier slots are
    zero, as in the replay memory, so a state never mixes two episodes. Every call returns a
    new array the caller may keep; the stack's own buffer is never handed out.
    """

    def __init__(self, history=4):
        self.history = history
        self._frames = np.zeros((FRAME_SIZE, FRAME_SIZE, history), dtype=np.uint8)

    def reset(self, frame):
        """Start a new episode from ``frame`` (``uint8[84,84]``); returns ``uint8[84,84,history]``."""
        self._frames[...] = 0
        self._frames[..., -1] = frame
        return self._frames.copy()

    def append(self, frame):
        """Push ``frame`` (``uint8[84,84]``) as the newest; returns ``uint8[84,84,history]``."""
        self._frames[..., :-1] = self._frames[..., 1:]
        self._frames[..., -1] = frame
        return self._frames.copy()
