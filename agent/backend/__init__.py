"""Everything that depends on the Keras backend, in one package: the dispatch here, each backend's
gradient machinery and compiler in its own module (``tensorflow``, ``jax``, ``torch``).

Keras 3 runs the same model on TensorFlow, JAX or PyTorch, but a custom training step needs each
backend's own gradient machinery (``GradientTape``, ``jax.grad``, ``Tensor.backward``) and compiler
(``tf.function``, ``jax.jit``). The learning rule itself (``agent.learning``) is backend-neutral.
"""
import importlib
import os

import keras


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
    passes of a train step, the weight and input gradients, the per-variable Adam updates): one
    thread per op, two ops at a time (measured in docs/performance.md).
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

    There bfloat16 shortens the train step and learned Pong as well as float32; a CPU without
    such instructions emulates bfloat16 more slowly than it computes float32; on a GPU its gain
    was too small to change the default before its learning is shown there (docs/performance.md).
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


def module():
    """The module of the backend Keras runs on: ``agent.backend.tensorflow``, ``.jax`` or ``.torch``."""
    return importlib.import_module(f"agent.backend.{name()}")


def make_q_function(model):
    """Returns a compiled ``f(states uint8[B,84,84,4]) -> float32[B,A]`` numpy function: the action
    values, which for a network of quantiles are their means (``network.action_values``)."""
    return module().q_function(model)


def make_copy(source, destination):
    """Returns ``copy()``, which assigns the weights of ``source`` to ``destination`` (same layers),
    rounded to the destination's dtype where it differs (a bfloat16 target of a float32 online)."""
    pairs = list(zip(source.weights, destination.weights, strict=True))
    if name() == "tensorflow":
        return module().copy(pairs)

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
    return module().train_step(online, target, optimizer, compute_loss)
