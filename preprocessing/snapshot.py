"""Exact snapshots of a running environment, for checkpoints taken in the middle of an episode.

A snapshot holds the emulator's state with its random number generator (so sticky actions
repeat), the env's own RNG (used by no-op starts) and the few counters our wrappers keep
(declared by each wrapper as ``snapshot_fields``). Restoring it into an env made by
``make_env`` with the same id continues the game frame for frame.
"""
import pickle


def env_snapshot(env):
    """A picklable snapshot of ``env`` (made by ``make_env``) at this very step."""
    atari = env.unwrapped
    return {
        "emulator": pickle.dumps(atari.ale.cloneState(include_rng=True)),
        "np_random": atari.np_random.bit_generator.state,
        "wrappers": [_fields(wrapper) for wrapper in _wrappers(env)],
    }


def restore_env(env, snapshot):
    """Puts ``env`` back into the state ``env_snapshot`` recorded."""
    atari = env.unwrapped
    atari.ale.restoreState(pickle.loads(snapshot["emulator"]))
    atari.np_random.bit_generator.state = snapshot["np_random"]
    wrappers = _wrappers(env)
    if len(wrappers) != len(snapshot["wrappers"]):
        raise ValueError("the snapshot was taken from an environment built with other options")
    for wrapper, fields in zip(wrappers, snapshot["wrappers"]):
        for name, value in fields.items():
            setattr(wrapper, name, value)


def _wrappers(env):
    chain = []
    while env is not env.unwrapped:
        chain.append(env)
        env = env.env
    return chain


def _fields(wrapper):
    return {name: getattr(wrapper, name) for name in getattr(type(wrapper), "snapshot_fields", ())}
