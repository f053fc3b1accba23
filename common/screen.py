"""Whether a window can open here: macOS, Windows, or an X11 / Wayland session."""
import os
import sys


def window_possible():
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
