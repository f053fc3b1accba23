"""Quiet C++ libraries: what they print straight to file descriptor 2, hidden while they start."""
import contextlib
import os
import sys


@contextlib.contextmanager
def native_stderr_silenced():
    """Hides what C++ libraries print straight to file descriptor 2 (TensorFlow's oneDNN and CUDA
    probes, the ALE's banner), which no Python logging setting reaches. TF_CPP_MIN_LOG_LEVEL=0 shows it."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
