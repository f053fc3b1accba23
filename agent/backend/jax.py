"""The JAX backend: jitted action values and the train step on the models' stateless calls."""
import jax
import numpy as np


def values(variables):
    return [v.value for v in variables]


def q_function(model):
    """``f(states) -> numpy action values``, jitted over the model's current variables."""
    from agent.network import action_values

    compiled = jax.jit(lambda tv, ntv, states: action_values(model.stateless_call(tv, ntv, states)[0]))
    return lambda states: np.asarray(compiled(values(model.trainable_variables),
                                              values(model.non_trainable_variables), states))


def train_step(online, target, optimizer, compute_loss):
    def loss_of(trainable, non_trainable, target_trainable, target_non_trainable, batch):
        s_tm1, a_tm1, r_t, discount_t, s_t, weights = batch
        q_tm1, _ = online.stateless_call(trainable, non_trainable, s_tm1, training=True)
        q_t_online, _ = online.stateless_call(trainable, non_trainable, s_t)
        q_t_target, _ = target.stateless_call(target_trainable, target_non_trainable, s_t)
        q_t_online = jax.lax.stop_gradient(q_t_online)
        loss, mean_q, td_errors = compute_loss(q_tm1, a_tm1, r_t, discount_t, q_t_online, q_t_target, weights)
        return loss, (mean_q, td_errors)

    @jax.jit
    def step(trainable, non_trainable, optimizer_vars, target_trainable, target_non_trainable, batch):
        (loss, (mean_q, td_errors)), gradients = jax.value_and_grad(loss_of, has_aux=True)(
            trainable, non_trainable, target_trainable, target_non_trainable, batch)
        trainable, optimizer_vars = optimizer.stateless_apply(optimizer_vars, gradients, trainable)
        return trainable, optimizer_vars, loss, mean_q, td_errors

    def run(*batch):
        trainable, optimizer_vars, loss, mean_q, td_errors = step(
            values(online.trainable_variables), values(online.non_trainable_variables),
            values(optimizer.variables), values(target.trainable_variables),
            values(target.non_trainable_variables), batch)
        for variable, value in zip(online.trainable_variables, trainable):
            variable.assign(value)
        for variable, value in zip(optimizer.variables, optimizer_vars):
            variable.assign(value)
        return float(loss), float(mean_q), np.asarray(td_errors)

    return run
