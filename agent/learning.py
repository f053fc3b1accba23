"""The Double DQN learning rule, written once in ``keras.ops`` for every backend."""
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
