"""The Nature DQN convolutional network (Mnih et al. 2015, "Methods: model architecture"), with
the optional dueling head (Wang et al. 2016) and quantile outputs (QR-DQN, Dabney et al. 2018)."""
from typing import NamedTuple

import keras
from keras import layers, ops

STATE_SHAPE = (84, 84, 4)


class Head(NamedTuple):
    """What a network's last layers compute: a dueling head or a single stream, and N quantiles
    of each action's return (QR-DQN) or its expected value alone (``quantiles`` 0)."""

    dueling: bool = False
    quantiles: int = 0

    def describe(self):
        """In words, for messages: "plain", "dueling", "quantile (200)", "dueling quantile (200)"."""
        kinds = ["dueling"] * self.dueling + [f"quantile ({self.quantiles})"] * bool(self.quantiles)
        return " ".join(kinds) or "plain"


def build_q_network(num_actions, state_shape=STATE_SHAPE, name="q_network", dtype=None, head=Head()):
    """Maps states uint8[B,84,84,4] (channels last) to action values float32[B, num_actions], or
    with ``head.quantiles`` N to their quantiles float32[B, num_actions, N].

    The uint8 frames are rescaled to [0, 1] inside the model, so the replay memory and the
    acting loop never hold float copies of the frames (4x the bytes). ``dtype`` overrides the
    global Keras dtype policy (``"float32"`` for a float32 copy of a mixed-precision network);
    the outputs are float32 whatever it is.
    """
    inputs = keras.Input(shape=state_shape, dtype="uint8", name="frames")
    x = layers.Rescaling(1.0 / 255.0, dtype=dtype)(inputs)
    x = layers.Conv2D(32, 8, strides=4, activation="relu", dtype=dtype)(x)
    x = layers.Conv2D(64, 4, strides=2, activation="relu", dtype=dtype)(x)
    x = layers.Conv2D(64, 3, strides=1, activation="relu", dtype=dtype)(x)
    x = layers.Flatten(dtype=dtype)(x)
    per_action = max(head.quantiles, 1)
    if head.dueling:
        value = layers.Dense(512, activation="relu", dtype=dtype, name="value_hidden")(x)
        value = layers.Dense(per_action, dtype="float32", name="value")(value)
        advantages = layers.Dense(512, activation="relu", dtype=dtype, name="advantage_hidden")(x)
        advantages = layers.Dense(int(num_actions) * per_action, dtype="float32", name="advantages")(advantages)
        outputs = DuelingCombine(int(num_actions), head.quantiles, dtype="float32", name="q_values")([value, advantages])
    else:
        x = layers.Dense(512, activation="relu", dtype=dtype)(x)
        outputs = layers.Dense(int(num_actions) * per_action, activation="linear", dtype="float32", name="q_values")(x)
        if head.quantiles:
            outputs = layers.Reshape((int(num_actions), head.quantiles), dtype="float32", name="quantiles")(outputs)
    return keras.Model(inputs, outputs, name=name)


class DuelingCombine(layers.Layer):
    """Q = V + A - mean_a(A) (Wang et al. 2016, eq. 9), per quantile when there are quantiles.

    Inputs: the value stream float32[B, K] and the advantage stream float32[B, A*K], K being the
    number of quantiles (1 without); output float32[B, A] (K = 1) or float32[B, A, K].
    """

    def __init__(self, num_actions, quantiles=0, **kwargs):
        super().__init__(**kwargs)
        self.num_actions, self.quantiles = num_actions, quantiles

    def call(self, inputs):
        value, advantages = inputs
        per_action = max(self.quantiles, 1)
        value = ops.reshape(value, (-1, 1, per_action))
        advantages = ops.reshape(advantages, (-1, self.num_actions, per_action))
        q = value + advantages - ops.mean(advantages, axis=1, keepdims=True)
        return q if self.quantiles else q[:, :, 0]

    def compute_output_shape(self, input_shapes):
        batch = input_shapes[0][0]
        return (batch, self.num_actions, self.quantiles) if self.quantiles else (batch, self.num_actions)

    def get_config(self):
        return {**super().get_config(), "num_actions": self.num_actions, "quantiles": self.quantiles}


def head_of(model):
    """The ``Head`` a network built by ``build_q_network`` has."""
    shape = model.output_shape
    return Head(dueling=any(layer.name == "value" for layer in model.layers),
                quantiles=shape[2] if len(shape) == 3 else 0)


def action_values(outputs):
    """float32[B, A]: the expected returns a network's outputs stand for (quantiles: their mean)."""
    return ops.mean(outputs, axis=-1) if len(outputs.shape) == 3 else outputs
