"""The Keras Double-DQN agent: network and its heads, learning rules, epsilon schedule and weight files."""
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
