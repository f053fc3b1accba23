"""The TensorFlow backend: compiled action values, weight copies and the train step."""
import keras
import numpy as np
import tensorflow as tf

from agent.backend.layers import plain_layers


def q_function(model):
    """``f(states) -> numpy action values``, one concrete ``tf.function`` (no per-call signature matching)."""
    from agent.network import action_values

    compiled = tf.function(lambda states: action_values(model(states, training=False))).get_concrete_function(
        tf.TensorSpec((None, *model.input_shape[1:]), model.input.dtype))
    return lambda states: compiled(tf.convert_to_tensor(states)).numpy()


def copy(pairs):
    """``copy()`` of each (weight, copied) pair, cast to the copy's dtype, as one ``tf.function``."""

    @tf.function
    def copy_all():
        for weight, copied in pairs:
            copied.value.assign(tf.cast(weight.value, copied.dtype))

    return copy_all


def train_step(online, target, optimizer, compute_loss):
    """The step as one ``tf.function``. Where every layer has a plain-op translation (the Nature
    network's do), the networks run as ``plain_forward``: the online network's weights are
    rounded to its compute dtype once per step for both of its forward passes, and the rescaled
    s_t is shared by the online and the target network when they compute in the same dtype.
    Keras's own calls would do each of those twice (TensorFlow reads a variable anew for every
    call); the values are the same bit for bit (tested), 1.7M weights and a batch of frames
    fewer to convert each step."""
    apply_gradients = (fused_adam(optimizer, online.trainable_variables) if can_fuse_adam(optimizer)
                       else lambda gradients: optimizer.apply(gradients, online.trainable_variables))
    online_forward, target_forward = plain_forward(online), plain_forward(target)

    @tf.function(reduce_retracing=True)
    def keras_step(s_tm1, a_tm1, r_t, discount_t, s_t, weights):
        q_t_online = online(s_t, training=False)
        q_t_target = target(s_t, training=False)
        with tf.GradientTape() as tape:
            q_tm1 = online(s_tm1, training=True)
            loss, mean_q, td_errors = compute_loss(q_tm1, a_tm1, r_t, discount_t, q_t_online, q_t_target,
                                                   weights)
        gradients = tape.gradient(loss, online.trainable_variables)
        apply_gradients(gradients)
        return loss, mean_q, td_errors

    @tf.function(reduce_retracing=True)
    def plain_step(s_tm1, a_tm1, r_t, discount_t, s_t, weights):
        x_t = online_forward.rescale(s_t)
        shared = target_forward.input_dtype == online_forward.input_dtype
        q_t_target = target_forward.layers(x_t if shared else target_forward.rescale(s_t),
                                           target_forward.weights())
        with tf.GradientTape() as tape:
            online_weights = online_forward.weights()
            q_t_online = tf.stop_gradient(online_forward.layers(x_t, online_weights))
            q_tm1 = online_forward.layers(online_forward.rescale(s_tm1), online_weights)
            loss, mean_q, td_errors = compute_loss(q_tm1, a_tm1, r_t, discount_t, q_t_online, q_t_target,
                                                   weights)
        gradients = tape.gradient(loss, online.trainable_variables)
        apply_gradients(gradients)
        return loss, mean_q, td_errors

    step = plain_step if online_forward and target_forward else keras_step

    def run(*batch):
        loss, mean_q, td_errors = step(*batch)
        return float(loss), float(mean_q), td_errors.numpy()

    return run


def can_fuse_adam(optimizer):
    """Whether ``fused_adam`` computes exactly what this Keras optimizer's ``apply`` would."""
    plain = (type(optimizer) is keras.optimizers.Adam and not optimizer.amsgrad and not optimizer.use_ema
             and not optimizer.weight_decay and optimizer.clipnorm is None and optimizer.clipvalue is None
             and not callable(getattr(optimizer, "_learning_rate", None)))
    return plain and hasattr(optimizer, "_momentums") and hasattr(optimizer, "_velocities")


def fused_adam(optimizer, variables):
    """Keras Adam's update through TensorFlow's fused ``ResourceApplyAdam`` kernel.

    Same rule and state (the optimizer's own moment variables and step counter, so checkpoints
    and ``optimizer.apply`` stay interchangeable), one kernel per variable instead of about ten
    element-wise ops.
    """
    # Keras builds one moment pair per variable, in the order ``optimizer.build`` was given.
    slots = list(zip(variables, optimizer._momentums, optimizer._velocities))

    def apply(gradients):
        if optimizer.global_clipnorm is not None:
            gradients, _ = tf.clip_by_global_norm(gradients, optimizer.global_clipnorm)
        step = tf.cast(optimizer.iterations + 1, tf.float32)
        beta_1, beta_2 = tf.constant(optimizer.beta_1, tf.float32), tf.constant(optimizer.beta_2, tf.float32)
        constants = dict(beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
                         lr=tf.cast(optimizer.learning_rate, tf.float32), beta1=beta_1, beta2=beta_2,
                         epsilon=tf.constant(optimizer.epsilon, tf.float32))
        for gradient, (variable, momentum, velocity) in zip(gradients, slots):
            tf.raw_ops.ResourceApplyAdam(var=variable.value.handle, m=momentum.value.handle,
                                         v=velocity.value.handle, grad=tf.cast(gradient, tf.float32),
                                         **constants)
        optimizer.iterations.assign_add(1)

    return apply


class PlainForward:
    """A model's forward pass in three parts, as the Keras layers compute it (same ops, same dtypes):
    ``rescale(states)`` (the first layer), ``weights()`` (the variables rounded to each layer's
    compute dtype) and ``layers(x, weights)`` (every layer after the first)."""

    def __init__(self, plan):
        self._rescaling, self._plan = plan[0][1], plan[1:]
        self.input_dtype = self._rescaling.compute_dtype
        self._variables = [(layer, variable) for kind, layer in self._plan if kind in ("conv", "dense")
                           for variable in (layer.kernel, layer.bias)]

    def rescale(self, states):
        layer, dtype = self._rescaling, self._rescaling.compute_dtype
        return tf.cast(states, dtype) * tf.cast(layer.scale, dtype) + tf.cast(layer.offset, dtype)

    def weights(self):
        return [tf.cast(variable.value, layer.compute_dtype) for layer, variable in self._variables]

    def layers(self, x, weights):
        from keras import ops

        weights = iter(weights)
        for kind, layer in self._plan:
            x = ops.cast(x, layer.compute_dtype)
            if kind == "conv":
                kernel, bias = next(weights), next(weights)
                x = ops.conv(x, kernel, strides=list(layer.strides), padding=layer.padding,
                             dilation_rate=layer.dilation_rate, data_format=layer.data_format)
                x = layer.activation(ops.add(x, ops.reshape(bias, (1, 1, 1, layer.filters))))
            elif kind == "flatten":
                x = ops.reshape(x, (-1, int(np.prod(x.shape[1:]))))
            else:
                kernel, bias = next(weights), next(weights)
                x = layer.activation(ops.add(ops.matmul(x, kernel), bias))
        return x


def plain_forward(model):
    """A ``PlainForward`` of ``model``, or None where ``plain_layers`` has no plan for it."""
    plan = plain_layers(model)
    if not plan or plan[0][0] != "rescale" or any(kind == "rescale" for kind, _ in plan[1:]):
        return None
    return PlainForward(plan)
