"""Exact snapshots of a running environment, for checkpoints taken in the middle of an episode.

A snapshot holds the emulator's state with its random number generator (so sticky actions
repeat), the env's own RNG (used by no-op starts) and the few counters our wrappers keep
(declared by each wrapper as ``snapshot_fields``). Restoring it into an env made by
``make_env`` with the same id continues the game frame for frame.

One piece is not in the ALE's saved state: the action it applied last, which a sticky action
repeats. ``restore_env`` plays the action last sent to the emulator (``ActionRepeat`` keeps it)
until the ALE has taken it, then restores the state. That is the applied action unless the
previous action stuck on every frame of the last step (probability 0.25 ** 4 with a new action).
"""
import pickle

# Frames of the last action played before restoring: each has a 0.75 chance (sticky actions
# at 0.25) to make it the ALE's applied action, so 40 leave a chance of 0.25 ** 40 it is not.
PRIME_FRAMES = 40


def env_snapshot(env):
    """A picklable snapshot of ``env`` (made by ``make_env``) at this very step."""
    atari = env.unwrapped
    return {
        "emulator": pickle.dumps(atari.ale.cloneState(include_rng=True)),
        "np_random": atari.np_random.bit_generator.state,
        "wrappers": [_fields(wrapper) for wrapper in _wrappers(env)],
    }


def restore_env(env, snapshot):
    """Puts ``env`` back into the state ``env_snapshot`` recorded; ``env`` need not have been reset."""
    env.reset()  # Gymnasium refuses a step before a reset; all the reset changes is overwritten below
    atari = env.unwrapped
    last_actions = [fields["_last_action"] for fields in snapshot["wrappers"] if "_last_action" in fields]
    if last_actions:  # the state restored below overwrites all these frames did but the applied action
        for _ in range(PRIME_FRAMES):
            atari.ale.act(atari._action_set[last_actions[0]])
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
