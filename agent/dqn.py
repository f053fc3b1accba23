"""The Double DQN agent: acts epsilon-greedily, learns from replayed batches."""
import functools

import keras
import numpy as np

from agent import backend
from agent.learning import LOSSES, double_dqn_loss
from agent.network import build_q_network

OPTIMIZERS = ("adam", "rmsprop")


class DQNAgent:
    """Online and target Q-networks with the Double DQN update (Mnih et al. 2015; van Hasselt et al. 2016).

    Collaborators come in from outside (see ``build_agent``) so tests can hand in small ones.
    """

    def __init__(self, online, target, optimizer, gamma, loss="huber", seed=None):
        self.online = online
        self.target = target
        self.optimizer = optimizer
        self.gamma = gamma
        self.num_actions = online.output_shape[-1]
        self.rng = np.random.default_rng(seed)
        compute_loss = functools.partial(_loss_with_gamma, gamma=gamma, loss_fn=LOSSES[loss])
        self._train_step = backend.make_train_step(online, target, optimizer, compute_loss)
        self._q_values = backend.make_q_function(online)
        self.sync_target()

    def q_values(self, states):
        """float32[B,A] action values of states uint8[B,84,84,4] by the online network."""
        return self._q_values(states)

    def act(self, state, epsilon):
        """An action for one state uint8[84,84,4]: random with probability ``epsilon``, else greedy."""
        if self.rng.random() < epsilon:
            return int(self.rng.integers(self.num_actions))
        return int(np.argmax(self._q_values(state[None])[0]))

    def train_step(self, batch):
        """One gradient step on a replay batch; returns (loss, mean Q(s_tm1, a_tm1)) as floats."""
        return self._train_step(batch.s_tm1, batch.a_tm1.astype(np.int32),
                                batch.r_t.astype(np.float32), batch.discount_t.astype(np.float32),
                                batch.s_t)

    def sync_target(self):
        """Copies the online weights into the target network."""
        self.target.set_weights(self.online.get_weights())


def _loss_with_gamma(q_tm1, a_tm1, r_t, discount_t, q_t_online, q_t_target, *, gamma, loss_fn):
    return double_dqn_loss(q_tm1, a_tm1, r_t, discount_t, q_t_online, q_t_target, gamma, loss_fn)


def make_optimizer(name, learning_rate, clip_norm=None):
    """Adam (the modern default) or RMSprop as the Nature paper used; optional global-norm clipping."""
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, epsilon=1.5e-4, global_clipnorm=clip_norm)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate, rho=0.95, epsilon=0.01, global_clipnorm=clip_norm)
    raise ValueError(f"unknown optimizer {name!r}; choose from {OPTIMIZERS}")


def build_agent(num_actions, *, gamma=0.99, loss="huber", optimizer="adam", learning_rate=1e-4,
                clip_norm=None, seed=None):
    """A DQNAgent with two fresh Nature networks and a new optimizer."""
    online = build_q_network(num_actions, name="online")
    target = build_q_network(num_actions, name="target")
    return DQNAgent(online, target, make_optimizer(optimizer, learning_rate, clip_norm),
                    gamma, loss=loss, seed=seed)
