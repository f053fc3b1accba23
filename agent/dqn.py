"""The Double DQN agent: acts epsilon-greedily, learns from replayed batches."""
import functools
from typing import NamedTuple

import keras
import numpy as np

from agent import backend
from agent.learning import LOSSES, double_dqn_loss, quantile_double_dqn_loss
from agent.network import Head, build_q_network, head_of

# Each optimizer's default epsilon: Dopamine's 1.5e-4 for Adam; for RMSprop the Nature DQN's 0.01, which
# its code added to the second moment of a gradient summed over a batch of 32. Our loss is the batch's
# mean, whose gradient is 1/32 of that sum, so the same update needs 0.01 / 32**2 (as DQN Zoo sets it).
NATURE_BATCH_SIZE = 32
OPTIMIZER_EPSILON = {"adam": 1.5e-4, "rmsprop": 0.01 / NATURE_BATCH_SIZE**2}
OPTIMIZERS = tuple(OPTIMIZER_EPSILON)


class Learned(NamedTuple):
    """What one gradient step reports."""

    loss: float
    """The batch's (importance-weighted) mean TD loss."""
    mean_q: float
    """The mean Q(s_tm1, a_tm1) of the batch."""
    td_errors: np.ndarray
    """float32[B]: each transition's TD error, the new priorities of prioritized replay."""


class DQNAgent:
    """Online and target Q-networks with the Double DQN update (Mnih et al. 2015; van Hasselt et al. 2016).

    The agent acts with ``actor``, a copy of the online network taken just before each gradient
    step, so it acts with the weights as they were before the latest step. That lag of one step
    (``train_every`` agent steps) is what lets ``training.learner.Learner`` run the step in a second
    thread while the game goes on, with results identical to running it in the loop's thread.
    ``build_agent`` makes the actor float32 even when the networks train in bfloat16: for one
    state at a time float32 is the faster one on a CPU. It keeps the target's weights in the
    compute dtype: under mixed precision the online network's float32 weights are rounded to
    bfloat16 on every forward pass, so a target that holds them already rounded computes the same
    values bit for bit without rounding every weight in every gradient step.

    Collaborators come in from outside (see ``build_agent``) so tests can hand in small ones.
    """

    def __init__(self, online, target, optimizer, loss="huber", seed=None, actor=None):
        """``loss`` is the TD loss of a network with one value per action; a network with quantiles
        (``Head.quantiles``) learns with QR-DQN's quantile Huber loss instead."""
        self.online = online
        self.target = target
        self.actor = actor if actor is not None else keras.models.clone_model(online)
        self.optimizer = optimizer
        self.num_actions = online.output_shape[1]
        self.head = head_of(online)
        self.rng = np.random.default_rng(seed)
        compute_loss = (quantile_double_dqn_loss if self.head.quantiles
                        else functools.partial(double_dqn_loss, loss_fn=LOSSES[loss]))
        self._learn = backend.make_train_step(online, target, optimizer, compute_loss)
        self._actor_q_values = backend.make_q_function(self.actor)
        self._copy_to_target = backend.make_copy(online, target)
        self._copy_to_actor = backend.make_copy(online, self.actor)
        self._frozen = None  # (copy, q function) of a float32 copy, built by the first frozen_q_function()
        self.sync_target()
        self.sync_actor()

    def frozen_q_function(self):
        """``f(states uint8[B,84,84,4]) -> float32[B,A]``: a copy of the online network as it is now,
        in the actor's dtype (float32 in ``build_agent``'s agents), for evaluation and play. It
        computes the way the agent acts while training, and later gradient steps and actor syncs
        leave it alone."""
        if self._frozen is None:
            frozen = keras.models.clone_model(self.actor)
            self._frozen = backend.make_copy(self.online, frozen), backend.make_q_function(frozen)
        copy, q_function = self._frozen
        copy()
        return q_function

    def act(self, state, epsilon):
        """An action for one state uint8[84,84,4]: random with probability ``epsilon``, else the
        actor's greedy one."""
        return self.act_batch(state[None], epsilon)[0]

    def act_batch(self, states, epsilon):
        """Actions for states uint8[N,84,84,4] (one per game played side by side), each random
        with probability ``epsilon``, else the actor's greedy one; the greedy ones come from one
        forward pass. The random draws are taken state by state, in order."""
        actions = []
        for _ in range(len(states)):
            actions.append(int(self.rng.integers(self.num_actions)) if self.rng.random() < epsilon else None)
        greedy = [index for index, action in enumerate(actions) if action is None]
        if greedy:
            q_values = self._actor_q_values(states if len(greedy) == len(states) else states[greedy])
            for index, best in zip(greedy, np.argmax(q_values, axis=1)):
                actions[index] = int(best)
        return actions

    def train_step(self, batch):
        """The actor takes the current weights, then one gradient step on a replay batch; returns
        ``Learned`` (loss, mean Q(s_tm1, a_tm1), TD errors)."""
        self.sync_actor()
        return self.learn(batch)

    def sync_target(self):
        """Copies the online weights into the target network."""
        self._copy_to_target()

    def sync_actor(self):
        """Copies the online weights into the actor."""
        self._copy_to_actor()

    def learn(self, batch):
        """The gradient step alone: updates the online network and the optimizer, reads the target;
        returns ``Learned``."""
        return Learned(*self._learn(batch.s_tm1, batch.a_tm1.astype(np.int32), batch.r_t.astype(np.float32),
                                    batch.discount_t.astype(np.float32), batch.s_t,
                                    batch.weights.astype(np.float32)))


def make_optimizer(name, learning_rate, clip_norm=None, epsilon=None):
    """Adam (the modern default) or RMSprop as the Nature paper used; optional global-norm clipping.

    ``epsilon`` (added to the root of the second moment) defaults to ``OPTIMIZER_EPSILON[name]``.
    """
    if name not in OPTIMIZER_EPSILON:
        raise ValueError(f"unknown optimizer {name!r}; choose from {OPTIMIZERS}")
    epsilon = OPTIMIZER_EPSILON[name] if epsilon is None else epsilon
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, epsilon=epsilon, global_clipnorm=clip_norm)
    # DeepMind's RMSProp (Graves 2013), as in the Nature DQN's code: centered, the epsilon under the root.
    return keras.optimizers.RMSprop(learning_rate, rho=0.95, epsilon=epsilon, centered=True,
                                    global_clipnorm=clip_norm)


def build_agent(num_actions, *, head=Head(), loss="huber", optimizer="adam", learning_rate=1e-4,
                clip_norm=None, optimizer_epsilon=None, seed=None):
    """A DQNAgent with fresh Nature networks (online, target and a float32 actor) of ``head``'s
    kind and a new optimizer.

    The online network follows the global Keras dtype policy; the target holds its weights in that
    policy's compute dtype (bfloat16 under ``mixed_bfloat16``), as only forward passes read it.
    """
    online = build_q_network(num_actions, name="online", head=head)
    target = build_q_network(num_actions, name="target", dtype=keras.config.dtype_policy().compute_dtype, head=head)
    actor = build_q_network(num_actions, name="actor", dtype="float32", head=head)
    return DQNAgent(online, target, make_optimizer(optimizer, learning_rate, clip_norm, optimizer_epsilon),
                    loss=loss, seed=seed, actor=actor)
