"""The Nature DQN convolutional network (Mnih et al. 2015, "Methods: model architecture")."""
import keras
from keras import layers

STATE_SHAPE = (84, 84, 4)


def build_q_network(num_actions, state_shape=STATE_SHAPE, name="q_network", dtype=None):
    """Maps states uint8[B,84,84,4] (channels last) to action values float32[B, num_actions].

    The uint8 frames are rescaled to [0, 1] inside the model, so the replay memory and the
    acting loop never hold float copies of the frames (4x the bytes). ``dtype`` overrides the
    global Keras dtype policy (``"float32"`` for a float32 copy of a mixed-precision network).
    """
    inputs = keras.Input(shape=state_shape, dtype="uint8", name="frames")
    x = layers.Rescaling(1.0 / 255.0, dtype=dtype)(inputs)
    x = layers.Conv2D(32, 8, strides=4, activation="relu", dtype=dtype)(x)
    x = layers.Conv2D(64, 4, strides=2, activation="relu", dtype=dtype)(x)
    x = layers.Conv2D(64, 3, strides=1, activation="relu", dtype=dtype)(x)
    x = layers.Flatten(dtype=dtype)(x)
    x = layers.Dense(512, activation="relu", dtype=dtype)(x)
    q_values = layers.Dense(int(num_actions), activation="linear", dtype="float32", name="q_values")(x)
    return keras.Model(inputs, q_values, name=name)
