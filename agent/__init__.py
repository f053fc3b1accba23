"""The Keras Double-DQN agent: network and its heads, learning rules, epsilon schedule and weight files."""
import os
import platform

# TensorFlow turns its oneDNN kernels on by itself only on x86 CPUs with AVX-512 or AMX; on the
# others (AVX2 only, such as AMD Zen 3) its default kernels train more slowly (docs/performance.md).
# Set before Keras imports TensorFlow; a TF_ENABLE_ONEDNN_OPTS that the user set wins.
if platform.machine() in ("x86_64", "AMD64"):
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from agent.dqn import OPTIMIZERS, DQNAgent, build_agent, make_optimizer
from agent.learning import LOSSES, double_dqn_loss, quantile_double_dqn_loss, quantile_huber_loss
from agent.network import STATE_SHAPE, Head, build_q_network, head_of
from agent.schedule import LinearSchedule
from agent.weights import HeadMismatchError, WeightsError, load_weights, read_head, save_weights

__all__ = [
    "DQNAgent", "Head", "HeadMismatchError", "LOSSES", "LinearSchedule", "OPTIMIZERS", "STATE_SHAPE",
    "WeightsError", "build_agent", "build_q_network", "double_dqn_loss", "head_of", "load_weights",
    "make_optimizer", "quantile_double_dqn_loss", "quantile_huber_loss", "read_head", "save_weights",
]
