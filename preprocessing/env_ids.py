"""Turning what a user types (``Pong-v0``, ``ALE/Pong-v5``, ``Pong``) into a registered Atari id."""
import ale_py
import gymnasium as gym
from gymnasium.envs.registration import find_highest_version, get_env_id, parse_env_id

from common.errors import UserError

ATARI_ENTRY_POINT = "ale_py.env:AtariEnv"
MODERN_NAMESPACE = "ALE"


class EnvIdError(UserError):
    """A game id that Gymnasium does not know, or that is not an Atari game."""


def resolve_env_id(env_id):
    """The explicit registered id for ``env_id``; raises :class:`EnvIdError` for an unknown one.

    Explicit ids come back unchanged (``Pong-v0``, ``PongNoFrameskip-v4``, ``ALE/Pong-v5``).
    A name without a version gets its namespace's newest version, and a bare name the modern
    ``ALE/`` one where it has one: ``Pong`` -> ``ALE/Pong-v5``, ``ALE/Breakout`` ->
    ``ALE/Breakout-v5``, ``PongNoFrameskip`` -> ``PongNoFrameskip-v4``. The CLI prints the
    result when it differs from what the user typed.
    """
    gym.register_envs(ale_py)
    if not isinstance(env_id, str):
        raise EnvIdError(f"the game id must be text, got {env_id!r}")
    try:
        spec = gym.spec(_with_version(env_id))
    except gym.error.Error as error:
        raise EnvIdError(f"unknown game id {env_id!r}: {' '.join(str(error).split())}") from None
    if spec.entry_point != ATARI_ENTRY_POINT:
        raise EnvIdError(f"{env_id!r} is not an Atari game (try Pong-v0 or ALE/Pong-v5)")
    return spec.id


def _with_version(env_id):
    """``env_id`` with the newest version filled in where it names none, else unchanged."""
    try:
        namespace, name, version = parse_env_id(env_id)
    except gym.error.Error:
        return env_id
    if version is not None:
        return env_id
    for candidate in [namespace] if namespace else [MODERN_NAMESPACE, None]:
        newest = find_highest_version(candidate, name)
        if newest is not None:
            return get_env_id(candidate, name, newest)
    return env_id
