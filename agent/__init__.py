"""The Keras Double-DQN agent: network, learning rule, epsilon schedule and weight files."""
from agent.dqn import OPTIMIZERS, DQNAgent, build_agent, make_optimizer
from agent.learning import LOSSES, double_dqn_loss
from agent.network import STATE_SHAPE, build_q_network
from agent.schedule import LinearSchedule
from agent.weights import WeightsError, load_weights, save_weights

__all__ = [
    "DQNAgent", "LOSSES", "LinearSchedule", "OPTIMIZERS", "STATE_SHAPE", "WeightsError",
    "build_agent", "build_q_network", "double_dqn_loss", "load_weights", "make_optimizer",
    "save_weights",
]
