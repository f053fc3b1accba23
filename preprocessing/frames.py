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


# The empty slots of a stack at an episode start; shared, never written (the stack only replaces frames).
_BLANK = np.zeros((FRAME_SIZE, FRAME_SIZE), np.uint8)
_BLANK.flags.writeable = False


class FrameStack:
    """The agent's state: the last ``history`` frames, ``uint8[84,84,history]``, newest last.

    Channels last, as the Keras network expects. At an episode start the earlier slots are
    zero, as in the replay memory, so a state never mixes two episodes. Every call returns a
    new array the caller may keep; the stack's own frames are never handed out.

    The frames are kept as separate 84x84 arrays and interleaved into a new state by
    ``cv2.merge``: about 3 µs a step, against 50-85 µs for shifting the channels of one
    channels-last array in place (a strided copy), which the acting loop paid on every step.
    """

    def __init__(self, history=4):
        self.history = history
        self._frames = [_BLANK] * history

    def reset(self, frame):
        """Start a new episode from ``frame`` (``uint8[84,84]``); returns ``uint8[84,84,history]``."""
        self._frames = [_BLANK] * (self.history - 1) + [np.array(frame, np.uint8)]
        return self._state()

    def append(self, frame):
        """Push ``frame`` (``uint8[84,84]``) as the newest; returns ``uint8[84,84,history]``."""
        self._frames = self._frames[1:] + [np.array(frame, np.uint8)]
        return self._state()

    @property
    def state(self):
        """The current ``uint8[84,84,history]``, as the last ``reset`` or ``append`` returned it."""
        return self._state()

    def _state(self):
        # cv2.merge returns a 2-D array for a single channel.
        return cv2.merge(self._frames).reshape(FRAME_SIZE, FRAME_SIZE, self.history)

    def __setstate__(self, state):
        # Checkpoints written before the frames were kept apart hold one uint8[84,84,history] array.
        frames = state["_frames"]
        if isinstance(frames, np.ndarray):
            state = {**state, "_frames": [frames[..., i].copy() for i in range(frames.shape[-1])]}
        self.__dict__.update(state)
