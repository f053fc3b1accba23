"""Which layers of a model the backends may compute as plain ops instead of Keras's calls."""
import keras
import numpy as np


def plain_layers(model):
    """The model's layers after its input as (kind, layer) pairs, kind one of "rescale", "conv",
    "flatten", "dense": the layers ``plain_forward`` and ``_torch_forward`` write as plain
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
