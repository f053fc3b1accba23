"""Everything that depends on the Keras backend, in one place.

Keras 3 runs the same model on TensorFlow, JAX or PyTorch, but a custom training step needs each
backend's own gradient machinery (``GradientTape``, ``jax.grad``, ``Tensor.backward``) and compiler
(``tf.function``, ``jax.jit``). The learning rule itself (``agent.learning``) is backend-neutral.
"""
import os

import keras
import numpy as np


def name():
    return keras.backend.backend()


def probe_devices():
    """Lets the backend look for accelerators now (TensorFlow prints its CUDA probing here)."""
    if name() == "tensorflow":
        import tensorflow as tf

        tf.config.list_physical_devices()


def configure_threads(num_threads):
    """Sizes the backend's CPU thread pools for ``num_threads`` cores (0: all); call before the first op.

    The Nature network's ops are small (batch 32, or 1 when acting), so on TensorFlow splitting
    one op over threads pays less than running independent ops side by side (the three forward
    passes of a train step, the weight and input gradients, the per-variable Adam updates).
    On two cores, one thread per op and two ops at a time took the bfloat16 train step from
    12-13 ms (two threads per op) to 10 ms, left float32 about even (~17 ms) and a greedy action
    0.95 -> 0.68 ms (README, "Training speed").
    """
    cores = num_threads if num_threads > 0 else os.cpu_count() or 1
    if name() == "tensorflow":
        import tensorflow as tf

        side_by_side = min(2, cores)
        try:
            tf.config.threading.set_inter_op_parallelism_threads(side_by_side)
            tf.config.threading.set_intra_op_parallelism_threads(max(1, cores // side_by_side))
        except RuntimeError:
            pass  # TensorFlow already ran in this process (tests): its pools are fixed by then
    elif name() == "torch" and num_threads > 0:
        import torch

        torch.set_num_threads(num_threads)


# /proc/cpuinfo flags of the instructions oneDNN runs bfloat16 convolutions and matrix products on.
BFLOAT16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


def default_precision():
    """What ``--precision auto`` picks: ``"bfloat16"`` where TensorFlow runs the network on a CPU
    with bfloat16 instructions (AMX tiles or AVX-512 BF16), ``"float32"`` everywhere else.

    bfloat16 cut the train step on two cores from about 17 to 9-10 ms on an Intel Xeon with AMX,
    and from about 24 to 17 ms on an AMD EPYC with AVX-512 BF16, and learned Pong as well as
    float32 (README). A CPU without such instructions emulates bfloat16 more slowly than it
    computes float32. On an H200 with JAX bfloat16 was only 8% faster (README), not enough to
    change the default before its learning is shown there.
    """
    if name() != "tensorflow" or not cpu_flags() & BFLOAT16_CPU_FLAGS:
        return "float32"
    import tensorflow as tf

    return "float32" if tf.config.list_physical_devices("GPU") else "bfloat16"


def cpu_flags():
    """The instruction-set flags of the first CPU in ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def describe_device():
    """Where the backend runs the network, e.g. ``"GPU (NVIDIA H100 80GB HBM3)"`` or ``"CPU"``."""
    if name() == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return f"GPU ({tf.config.experimental.get_device_details(gpus[0]).get('device_name', gpus[0].name)})"
    elif name() == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            return f"{device.platform.upper()} ({device.device_kind})"
    elif name() == "torch":
        import torch

        if torch.cuda.is_available():
            return f"GPU ({torch.cuda.get_device_name()})"
    return "CPU"


def describe_threads():
    """The thread pools in use, for benchmark reports."""
    if name() == "tensorflow":
        import tensorflow as tf

        return (f"{tf.config.threading.get_intra_op_parallelism_threads()} per op, "
                f"{tf.config.threading.get_inter_op_parallelism_threads()} ops at a time")
    if name() == "torch":
        import torch

        return f"{torch.get_num_threads()} per op"
    return "backend default"


def make_q_function(model):
    """Returns a compiled ``f(states uint8[B,84,84,4]) -> float32[B,A]`` numpy function: the action
    values, which for a network of quantiles are their means (``network.action_values``)."""
    from agent.network import action_values

    if name() == "tensorflow":
        import tensorflow as tf

        # A concrete function skips tf.function's per-call signature matching: about 0.3 ms of
        # the 1.3 ms a one-state forward pass costs on a 2-core CPU.
        compiled = tf.function(lambda states: action_values(model(states, training=False))).get_concrete_function(
            tf.TensorSpec((None, *model.input_shape[1:]), model.input.dtype))
        return lambda states: compiled(tf.convert_to_tensor(states)).numpy()
    if name() == "jax":
        import jax

        compiled = jax.jit(lambda tv, ntv, states: action_values(model.stateless_call(tv, ntv, states)[0]))
        return lambda states: np.asarray(compiled(_values(model.trainable_variables),
                                                  _values(model.non_trainable_variables), states))
    import torch

    forward = _torch_forward(model)

    def q_function(states):
        with torch.no_grad():
            return action_values(forward(states)).float().cpu().numpy()

    return q_function


def make_copy(source, destination):
    """Returns ``copy()``, which assigns the weights of ``source`` to ``destination`` (same layers),
    rounded to the destination's dtype where it differs (a bfloat16 target of a float32 online)."""
    pairs = list(zip(source.weights, destination.weights, strict=True))
    if name() == "tensorflow":
        import tensorflow as tf

        @tf.function
        def copy():
            for weight, copied in pairs:
                copied.value.assign(tf.cast(weight.value, copied.dtype))

        return copy

    def copy():
        for weight, copied in pairs:
            copied.assign(weight.value)

    return copy


def make_train_step(online, target, optimizer, compute_loss):
    """Returns ``step(s_tm1, a_tm1, r_t, discount_t, s_t, weights) -> (loss, mean_q, td_errors)``:
    two Python floats and a float32[B] numpy array.

    ``compute_loss(q_tm1, a_tm1, r_t, discount_t, q_t_online, q_t_target, weights)
    -> (loss, mean_q, td_errors)``.
    The step updates ``online`` with ``optimizer``; ``target`` is only read.
    """
    optimizer.build(online.trainable_variables)
    builders = {"tensorflow": _tensorflow_step, "jax": _jax_step, "torch": _torch_step}
    return builders[name()](online, target, optimizer, compute_loss)


def _values(variables):
    return [v.value for v in variables]


def _tensorflow_step(online, target, optimizer, compute_loss):
    """The step as one ``tf.function``. Where every layer has a plain-op translation (the Nature
    network's do), the networks run as ``_tensorflow_forward``: the online network's weights are
    rounded to its compute dtype once per step for both of its forward passes, and the rescaled
    s_t is shared by the online and the target network when they compute in the same dtype.
    Keras's own calls would do each of those twice (TensorFlow reads a variable anew for every
    call); the values are the same bit for bit (tested), 1.7M weights and a batch of frames
    fewer to convert each step."""
    import tensorflow as tf

    apply_gradients = (_fused_adam(optimizer, online.trainable_variables) if _can_fuse_adam(optimizer)
                       else lambda gradients: optimizer.apply(gradients, online.trainable_variables))
    online_forward, target_forward = _tensorflow_forward(online), _tensorflow_forward(target)

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


def _can_fuse_adam(optimizer):
    """Whether ``_fused_adam`` computes exactly what this Keras optimizer's ``apply`` would."""
    plain = (type(optimizer) is keras.optimizers.Adam and not optimizer.amsgrad and not optimizer.use_ema
             and not optimizer.weight_decay and optimizer.clipnorm is None and optimizer.clipvalue is None
             and not callable(getattr(optimizer, "_learning_rate", None)))
    return plain and hasattr(optimizer, "_momentums") and hasattr(optimizer, "_velocities")


def _fused_adam(optimizer, variables):
    """Keras Adam's update through TensorFlow's fused ``ResourceApplyAdam`` kernel.

    Same rule and state (the optimizer's own moment variables and step counter, so checkpoints
    and ``optimizer.apply`` stay interchangeable), one kernel per variable instead of about ten
    element-wise ops: 4.6 -> 1.9 ms per step for the Nature network on two CPU cores.
    """
    import tensorflow as tf

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


def _jax_step(online, target, optimizer, compute_loss):
    import jax

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
            _values(online.trainable_variables), _values(online.non_trainable_variables),
            _values(optimizer.variables), _values(target.trainable_variables),
            _values(target.non_trainable_variables), batch)
        for variable, value in zip(online.trainable_variables, trainable):
            variable.assign(value)
        for variable, value in zip(optimizer.variables, optimizer_vars):
            variable.assign(value)
        return float(loss), float(mean_q), np.asarray(td_errors)

    return run


def _torch_step(online, target, optimizer, compute_loss):
    import torch

    online_forward, target_forward = _torch_forward(online), _torch_forward(target)

    def run(s_tm1, a_tm1, r_t, discount_t, s_t, weights):
        a_tm1, r_t, discount_t, weights = (keras.ops.convert_to_tensor(x) for x in (a_tm1, r_t, discount_t, weights))
        with torch.no_grad():
            q_t_online = online_forward(s_t)
            q_t_target = target_forward(s_t)
        q_tm1 = online_forward(s_tm1, training=True)
        loss, mean_q, td_errors = compute_loss(q_tm1, a_tm1, r_t, discount_t, q_t_online, q_t_target, weights)
        for variable in online.trainable_variables:
            variable.value.grad = None
        loss.backward()
        gradients = [v.value.grad for v in online.trainable_variables]
        with torch.no_grad():
            optimizer.apply(gradients, online.trainable_variables)
        return float(loss.detach()), float(mean_q.detach()), td_errors.detach().cpu().numpy()

    return run


def _plain_layers(model):
    """The model's layers after its input as (kind, layer) pairs, kind one of "rescale", "conv",
    "flatten", "dense": the layers ``_tensorflow_forward`` and ``_torch_forward`` write as plain
    ops. None where a layer is of another kind or setting (those then call the Keras model)."""
    activations = (keras.activations.relu, keras.activations.linear)
    plan = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        plain = (getattr(layer, "activation", None) in activations and not getattr(layer, "lora_enabled", False)
                 and getattr(layer, "quantization_mode", None) is None)
        if isinstance(layer, keras.layers.Rescaling) and np.ndim(layer.scale) == np.ndim(layer.offset) == 0:
            plan.append(("rescale", layer))
        elif (isinstance(layer, keras.layers.Conv2D) and layer.data_format == "channels_last"
              and layer.padding == "valid" and layer.dilation_rate == (1, 1) and layer.groups == 1
              and layer.use_bias and plain):
            plan.append(("conv", layer))
        elif isinstance(layer, keras.layers.Flatten) and layer.data_format == "channels_last":
            plan.append(("flatten", layer))
        elif isinstance(layer, keras.layers.Dense) and layer.use_bias and plain:
            plan.append(("dense", layer))
        else:
            return None
    return plan


class _TensorflowForward:
    """A model's forward pass in three parts, as the Keras layers compute it (same ops, same dtypes):
    ``rescale(states)`` (the first layer), ``weights()`` (the variables rounded to each layer's
    compute dtype) and ``layers(x, weights)`` (every layer after the first)."""

    def __init__(self, plan):
        self._rescaling, self._plan = plan[0][1], plan[1:]
        self.input_dtype = self._rescaling.compute_dtype
        self._variables = [(layer, variable) for kind, layer in self._plan if kind in ("conv", "dense")
                           for variable in (layer.kernel, layer.bias)]

    def rescale(self, states):
        import tensorflow as tf

        layer, dtype = self._rescaling, self._rescaling.compute_dtype
        return tf.cast(states, dtype) * tf.cast(layer.scale, dtype) + tf.cast(layer.offset, dtype)

    def weights(self):
        import tensorflow as tf

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


def _tensorflow_forward(model):
    """A ``_TensorflowForward`` of ``model``, or None where ``_plain_layers`` has no plan for it."""
    plan = _plain_layers(model)
    if not plan or plan[0][0] != "rescale" or any(kind == "rescale" for kind, _ in plan[1:]):
        return None
    return _TensorflowForward(plan)


def _torch_forward(model):
    """``f(states, training=False) -> q_values``, the model's forward pass as plain PyTorch ops on its
    live variables (none of the translated layers acts differently in training); the model's own
    call where a layer has no translation below.

    Keras's per-layer call machinery is most of a forward pass on PyTorch: 2.2 ms for one state on
    a CPU core against 0.7 ms for the same ops alone, and 6 ms on an H200 beside a learner thread
    (README, "Training speed"). Layers compute in their own dtype policy, as Keras does.
    """
    import torch
    import torch.nn.functional as F

    plan = _plain_layers(model)
    if plan is None:
        return lambda states, training=False: model(states, training=training)
    activations = {keras.activations.relu: F.relu, keras.activations.linear: lambda x: x}
    ops, channels_first = [], False
    for kind, layer in plan:
        dtype = getattr(torch, layer.compute_dtype)
        activation = activations.get(getattr(layer, "activation", None))
        if kind == "rescale":
            ops.append(lambda x, d=dtype, a=float(layer.scale), b=float(layer.offset): x.to(d) * a + b)
        elif kind == "conv":
            if not channels_first:
                ops.append(lambda x: x.permute(0, 3, 1, 2))
                channels_first = True
            ops.append(lambda x, d=dtype, k=layer.kernel, b=layer.bias, s=layer.strides, f=activation:
                       f(F.conv2d(x.to(d), k.value.to(d).permute(3, 2, 0, 1), b.value.to(d), stride=s)))
        elif kind == "flatten":
            if channels_first:
                ops.append(lambda x: x.permute(0, 2, 3, 1))
                channels_first = False
            ops.append(lambda x: x.flatten(1))
        else:
            ops.append(lambda x, d=dtype, k=layer.kernel, b=layer.bias, f=activation:
                       f(torch.addmm(b.value.to(d), x.to(d), k.value.to(d))))
    if channels_first:
        ops.append(lambda x: x.permute(0, 2, 3, 1))
    device = model.weights[0].value.device

    def forward(states, training=False):
        x = torch.as_tensor(states, device=device)
        for op in ops:
            x = op(x)
        return x

    return forward
