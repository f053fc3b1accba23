"""The Double DQN learning rule and its quantile form (QR-DQN), written once in ``keras.ops`` for
every backend."""
import keras
from keras import ops

LOSSES = {
    "huber": keras.losses.huber,
    "logcosh": keras.losses.log_cosh,
    "mse": keras.losses.mean_squared_error,
}


def double_dqn_loss(q_tm1, a_tm1, r_t, discount_t, q_t_online, q_t_target, weights, loss_fn):
    """(weighted mean TD loss, mean Q(s_tm1, a_tm1), TD errors) of a batch (van Hasselt et al. 2016).

    q_tm1: float32[B,A] online values of s_tm1 (the only input gradients flow through).
    a_tm1: int32[B]; r_t: float32[B] clipped rewards (n-step: their discounted sum);
    discount_t: float32[B] the discount of s_t's value, gamma ** n, 0 where the game really ended
    (a time-limit truncation bootstraps), as rlax's ``double_q_learning`` takes it.
    q_t_online: float32[B,A] picks a_t = argmax; q_t_target: float32[B,A] values it.
    weights: float32[B] importance-sampling weights of the per-sample losses (1 when uniform).
    The TD errors (float32[B], target - Q(s_tm1, a_tm1)) are prioritized replay's priorities.
    """
    a_t = ops.argmax(q_t_online, axis=1)
    v_t = ops.take_along_axis(q_t_target, ops.expand_dims(a_t, 1), axis=1)[:, 0]
    target = ops.stop_gradient(r_t + discount_t * v_t)
    qa_tm1 = ops.take_along_axis(q_tm1, ops.expand_dims(ops.cast(a_tm1, "int32"), 1), axis=1)[:, 0]
    per_sample = loss_fn(ops.expand_dims(target, 1), ops.expand_dims(qa_tm1, 1))
    td_errors = ops.stop_gradient(target - qa_tm1)
    return ops.mean(weights * per_sample), ops.mean(qa_tm1), td_errors


def quantile_huber_loss(u, taus, kappa=1.0):
    """float[B, N]: the quantile Huber loss of Dabney et al. 2018 (eq. 10) per sample.

    u: float32[B, N, N'] the pairwise TD errors target_j - theta_i (i: predicted quantile, j:
    target sample); taus: float32[N] the quantile midpoints (2i + 1) / 2N of the predictions.
    Summed over the predicted quantiles i, averaged over the target samples j, as in the paper.
    """
    abs_u = ops.abs(u)
    huber = ops.where(abs_u <= kappa, 0.5 * ops.square(u), kappa * (abs_u - 0.5 * kappa))
    below = ops.cast(u < 0.0, u.dtype)
    rho = ops.abs(ops.reshape(taus, (1, -1, 1)) - below) * huber / kappa
    return ops.sum(ops.mean(rho, axis=2), axis=1)


def quantile_double_dqn_loss(q_tm1, a_tm1, r_t, discount_t, q_t_online, q_t_target, weights, kappa=1.0):
    """QR-DQN's loss with the Double DQN action (Dabney et al. 2018; van Hasselt et al. 2016).

    q_tm1, q_t_online, q_t_target: float32[B,A,N] the N quantiles of each action's return;
    the other arguments as in ``double_dqn_loss``. a_t is chosen by the mean of the online
    network's quantiles at s_t and valued by the target network's quantiles of a_t. Returns
    (weighted mean loss, mean Q(s_tm1, a_tm1), per-sample losses float32[B]): the per-sample
    quantile Huber losses are prioritized replay's priorities, the role the TD error has in
    the scalar case.
    """
    num_quantiles = q_tm1.shape[-1]
    a_t = ops.argmax(ops.mean(q_t_online, axis=2), axis=1)
    theta_t = _quantiles_of(q_t_target, a_t)
    target = ops.stop_gradient(ops.expand_dims(r_t, 1) + ops.expand_dims(discount_t, 1) * theta_t)  # [B,N]
    theta_tm1 = _quantiles_of(q_tm1, a_tm1)  # [B,N]
    u = ops.expand_dims(target, 1) - ops.expand_dims(theta_tm1, 2)  # [B,N,N']: target_j - theta_i
    taus = (2.0 * ops.arange(num_quantiles, dtype="float32") + 1.0) / (2.0 * num_quantiles)
    per_sample = quantile_huber_loss(u, taus, kappa)
    return ops.mean(weights * per_sample), ops.mean(theta_tm1), ops.stop_gradient(per_sample)


def _quantiles_of(quantiles, actions):
    """float32[B,N]: the quantiles of ``actions`` (int[B]) in ``quantiles`` float32[B,A,N].

    A one-hot sum, exact (one term is not zero), rather than ``take_along_axis``: on TensorFlow
    that gathers with int64 indices, which oneDNN runs only with AVX-512 (elsewhere it logs an
    error line and falls back)."""
    chosen = ops.one_hot(ops.cast(actions, "int32"), quantiles.shape[1], dtype=quantiles.dtype)
    return ops.sum(quantiles * ops.expand_dims(chosen, 2), axis=1)
