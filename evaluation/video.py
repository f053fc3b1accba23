"""Films of a game: the native ``uint8[210,160,3]`` screen, score included, one frame per decision.

ffmpeg (through imageio-ffmpeg) encodes them, H.264 for ``.mp4`` and a palette per frame for
``.gif``, which keeps Atari colours exact and never holds the whole game in memory.
"""
import contextlib
from pathlib import Path

import numpy as np

from common import atomic_file
from common.errors import UserError

VIDEO_FPS = 15.0
VIDEO_SUFFIXES = (".mp4", ".gif")


def video_format(path):
    """``"mp4"`` or ``"gif"`` from ``path``'s suffix; raises UserError for any other."""
    suffix = Path(path).suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise UserError(f"cannot record {path}: the video file must end in {' or '.join(VIDEO_SUFFIXES)}")
    return suffix[1:]


class VideoRecorder:
    """Streams RGB frames into an ``.mp4`` (H.264) or ``.gif`` file; use as a context manager.

    ``add(frame)`` takes ``uint8[H,W,3]`` frames of one size (Atari: 210x160, even sides, as
    H.264 needs). The file is written under a temporary name beside ``path`` and renamed onto it
    when the context closes without an error, so a run that fails leaves no half video. The
    default ``fps`` of 15 plays one frame per decision (60 Hz / 4 frames) in real time.
    """

    def __init__(self, path, fps=VIDEO_FPS):
        self.path = Path(path)
        self.fps = fps
        self.format = video_format(path)
        if not self.path.parent.is_dir():
            raise UserError(f"cannot record {path}: no folder {self.path.parent}")
        if self.path.is_dir():
            raise UserError(f"cannot record {path}: it is a folder")
        self.frames_written = 0
        self._files = contextlib.ExitStack()
        self._encoder = None
        self._size = None

    def __enter__(self):
        try:
            self._temp = self._files.enter_context(atomic_file.atomic_path(self.path))
        except OSError as error:
            raise UserError(f"cannot record {self.path}: {error.strerror or error}") from None
        return self

    def __exit__(self, exc_type, exc, traceback):
        """Finishes the file: renamed onto ``path`` after a clean exit, removed after an error."""
        try:
            if self._encoder is not None:
                self._encoder.close()
            if exc_type is None and self.frames_written == 0:
                raise UserError(f"no frames to record in {self.path}")
            if exc_type is None:
                self._check_encoded()
        except BaseException as error:
            self._files.__exit__(type(error), error, error.__traceback__)
            raise
        try:
            self._files.__exit__(exc_type, exc, traceback)
        except OSError as error:  # the rename onto path (a full disk, a folder gone)
            if exc_type is not None:
                raise
            raise UserError(f"cannot record {self.path}: {error.strerror or error}") from None
        return False

    def add(self, frame):
        """Appends one frame, ``uint8[H,W,3]``, the same size as the first."""
        frame = np.ascontiguousarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected an RGB frame uint8[H,W,3], got {frame.dtype}{list(frame.shape)}")
        if self._encoder is None:
            self._size = frame.shape
            self._encoder = self._open_encoder(frame.shape[1], frame.shape[0])
        elif frame.shape != self._size:
            raise ValueError(f"frame size {frame.shape} differs from the first frame's {self._size}")
        try:
            self._encoder.send(frame)
        except OSError as error:  # ffmpeg ended early: a full disk, a file size limit
            raise UserError(f"cannot record {self.path}: the video encoder stopped after "
                            f"{self.frames_written} frames ({type(error).__name__})") from None
        self.frames_written += 1

    def _check_encoded(self):
        """Refuses a file the encoder did not finish: imageio-ffmpeg does not report ffmpeg's exit
        status, so a full disk would otherwise leave a cut-off video in place of a good one."""
        import imageio_ffmpeg

        try:
            frames, _ = imageio_ffmpeg.count_frames_and_secs(str(self._temp))
        except (RuntimeError, OSError):
            frames = 0
        if frames != self.frames_written:
            raise UserError(f"cannot record {self.path}: the encoded file holds {frames} of the "
                            f"{self.frames_written} frames (a full disk?)")

    def _open_encoder(self, width, height):
        import imageio_ffmpeg

        if self.format == "mp4":
            options = dict(codec="libx264", pix_fmt_out="yuv420p", output_params=["-f", "mp4", "-crf", "18"])
        else:
            one_palette_per_frame = ("split[frame][copy];[copy]palettegen=stats_mode=single:reserve_transparent=0"
                                     "[palette];[frame][palette]paletteuse=new=1:dither=none")
            options = dict(codec="gif", pix_fmt_out="pal8", output_params=["-f", "gif", "-vf", one_palette_per_frame])
        encoder = imageio_ffmpeg.write_frames(str(self._temp), (width, height), fps=self.fps, quality=None,
                                              macro_block_size=1, ffmpeg_log_level="error", **options)
        encoder.send(None)
        return encoder
