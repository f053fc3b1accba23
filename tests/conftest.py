"""Test-wide settings: quiet TensorFlow, headless matplotlib, the repository on sys.path."""
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
# On a GPU, test workers and the training processes they start share one card: neither
# TensorFlow nor JAX may claim its whole memory up front (their defaults).
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import agent  # noqa: E402,F401  before any test file imports Keras: the options it sets for TensorFlow


@pytest.fixture(autouse=True)
def float32_policy_after_each_test():
    """A test that sets up a run leaves Keras's global policy as the run chose it (mixed bfloat16
    where the CPU has bfloat16 instructions); the next test in the process starts from float32."""
    yield
    keras = sys.modules.get("keras")
    if keras is not None:
        keras.mixed_precision.set_global_policy("float32")
