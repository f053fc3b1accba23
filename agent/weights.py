"""The weights file (``<env>_weights.h5``): the online network's weights plus what they belong to.

Keras 3 only writes ``*.weights.h5`` names and writes them in place, so a crash mid-save would
destroy the previous file. This small HDF5 layout keeps the seed's file name, is written
atomically, and records the game and action count so a file of another game is refused with a
clear message instead of a shape error deep inside Keras. It also records the network's head
(dueling or not, the number of quantiles), so that weights are only ever loaded into a network
that computes what they were trained for; files written before heads existed are plain ones.
"""
import h5py
import numpy as np

from agent.network import Head, head_of
from common.atomic_file import atomic_path
from common.errors import UserError

FORMAT = "dqn-atari-weights"
VERSION = 1


class WeightsError(UserError):
    """A weights file that is missing, unreadable, or made for another game or network."""


class HeadMismatchError(WeightsError):
    """Weights of one head (``recorded``) offered to a network of another (``expected``)."""

    def __init__(self, path, recorded, expected):
        super().__init__(f"{path} holds the weights of a {recorded.describe()} network, "
                         f"not of the {expected.describe()} network this command builds")
        self.path, self.recorded, self.expected = path, recorded, expected


def save_weights(path, model, *, game):
    """Atomically writes ``model``'s weights to ``path`` with the game's name and action count."""
    try:
        with atomic_path(path) as temp:
            with h5py.File(temp, "w") as f:
                head = head_of(model)
                f.attrs.update(format=FORMAT, version=VERSION, game=game, num_actions=int(model.output_shape[1]),
                               dueling=int(head.dueling), quantiles=int(head.quantiles))
                group = f.create_group("weights")
                for index, array in enumerate(model.get_weights()):  # bfloat16 ones widen exactly
                    group.create_dataset(f"{index:03d}", data=np.asarray(array, np.float32))
    except OSError as error:
        raise WeightsError(f"cannot write weights file {path}: {error.strerror or error}") from None


def load_weights(path, model, *, game=None):
    """Loads weights saved by ``save_weights`` into ``model``; raises WeightsError on any mismatch."""
    attrs, arrays = _read(path)
    if attrs.get("format") != FORMAT:
        raise WeightsError(f"{path} is not a dqn-atari weights file")
    num_actions = int(model.output_shape[1])
    if int(attrs["num_actions"]) != num_actions:
        raise WeightsError(f"{path} holds weights for {attrs['game']} with {attrs['num_actions']} "
                           f"actions, but this game has {num_actions}")
    if game is not None and attrs["game"] != game:
        raise WeightsError(f"{path} holds weights for {attrs['game']}, not for {game}")
    recorded, expected_head = _head(attrs), head_of(model)
    if recorded != expected_head:
        raise HeadMismatchError(path, recorded, expected_head)
    expected = [tuple(w.shape) for w in model.weights]
    if [a.shape for a in arrays] != expected:
        raise WeightsError(f"{path} holds weights of another network architecture")
    model.set_weights(arrays)
    return attrs


def read_game(path):
    """The game name recorded in a weights file."""
    return _read(path, with_arrays=False)[0]["game"]


def read_head(path):
    """The ``Head`` of the network whose weights a file holds."""
    return _head(_read(path, with_arrays=False)[0])


def _head(attrs):
    return Head(dueling=bool(attrs.get("dueling", 0)), quantiles=int(attrs.get("quantiles", 0)))


def _read(path, with_arrays=True):
    """(attrs, arrays); ``with_arrays=False`` checks the weights group is there but reads none of it."""
    try:
        with h5py.File(path, "r") as f:
            attrs = {key: _plain(value) for key, value in f.attrs.items()}
            group = f["weights"]
            arrays = [np.asarray(group[key]) for key in sorted(group)] if with_arrays else None
    except FileNotFoundError:
        raise WeightsError(f"weights file not found: {path}") from None
    except (OSError, KeyError) as error:
        raise WeightsError(f"cannot read weights file {path}: {_first_line(error)}") from None
    return attrs, arrays


def _plain(value):
    return value.decode() if isinstance(value, bytes) else value.item() if hasattr(value, "item") else value


def _first_line(error):
    return str(error).splitlines()[0] if str(error) else type(error).__name__
