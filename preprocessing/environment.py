"""``make_env``: a game id in, an environment of preprocessed 84x84 frames out."""
import warnings

import gymnasium as gym

from common.errors import UserError

from .env_ids import resolve_env_id
from .wrappers import (
    ActionRepeat,
    FireReset,
    IdlePenalty,
    LifeLossFlag,
    NoopStarts,
    PreprocessFrame,
)

IDLE_PENALTY = -1.0


def make_env(
    env_id,
    seed=None,
    *,
    frames_per_action=4,
    noop_max=30,
    fire_reset=True,
    fire_after_life_loss=False,
    life_loss_signal=True,
    idle_penalty=False,
    repeat_action_probability=None,
    render_mode=None,
):
    """A Gymnasium env for ``env_id`` whose observation is one frame, ``uint8[84,84]``.

    ``step(action)`` returns ``(frame uint8[84,84], reward float, terminated, truncated, info)``:
    ``action`` is repeated on ``frames_per_action`` raw frames of an emulator created with
    ``frameskip=1`` whatever the id, ``reward`` is the raw game score summed over them, and
    ``info`` has ``lives``, ``episode_frame_number``, ``life_lost`` and ``idle_penalty``.
    Every step advances ``episode_frame_number`` by ``frames_per_action``, except the step where
    the game ends (it stops at the game-over frame) and, with ``fire_after_life_loss``, a step
    that loses a life (it adds one FIRE step). ``env.spec.id`` is the resolved id (``Pong`` gives
    ``ALE/Pong-v5``); ``env.action_space.n`` is the number of actions.

    Options (see the package docstring for the defaults' reasons):
      frames_per_action: raw frames per decision.
      noop_max: up to this many raw NOOP frames start each episode; 0 turns them off.
      fire_reset: press FIRE after reset, in games with a FIRE action.
      fire_after_life_loss: with fire_reset, press FIRE after each life lost too; a step that
        loses a life then advances the frame counter by two repeats.
      life_loss_signal: report ``info["life_lost"]``; when off it is always False.
      idle_penalty: report -1.0 as ``info["idle_penalty"]`` after 30 idle decisions at the
        start of a round (the HTW_AI_Gym seed's rule); when off it is always 0.0.
      repeat_action_probability: sticky actions; None keeps the id's own (0.25 for ``-v0``
        and ``-v5``, 0.0 for ``-v4``).
      render_mode: None, ``"human"`` (a window) or ``"rgb_array"`` (``render()`` gives the
        native ``uint8[210,160,3]`` screen).

    With ``seed`` the env is reset once with it and its action space seeded, so everything
    that follows is reproducible; ``reset(seed=seed)`` later replays the same frames.
    """
    _check_options(frames_per_action, noop_max, repeat_action_probability)
    env = _make_emulator(resolve_env_id(env_id), repeat_action_probability, render_mode)
    if noop_max > 0:
        env = NoopStarts(env, noop_max)
    env = ActionRepeat(env, frames_per_action)
    if fire_reset and "FIRE" in env.unwrapped.get_action_meanings():
        env = FireReset(env, after_life_loss=fire_after_life_loss)
    env = LifeLossFlag(env, enabled=life_loss_signal)
    env = IdlePenalty(env, penalty=IDLE_PENALTY if idle_penalty else 0.0)
    env = PreprocessFrame(env)
    if seed is not None:
        env.action_space.seed(seed)
        env.reset(seed=seed)
    return env


def _make_emulator(env_id, repeat_action_probability, render_mode):
    """The bare ALE env: one raw gray frame per step, sticky actions as the id or the caller says."""
    options = dict(frameskip=1, obs_type="grayscale", render_mode=render_mode)
    if repeat_action_probability is not None:
        options["repeat_action_probability"] = repeat_action_probability
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return gym.make(env_id, **options)


def _check_options(frames_per_action, noop_max, repeat_action_probability):
    if not (isinstance(frames_per_action, int) and frames_per_action >= 1):
        raise UserError(f"frames per action must be a whole number >= 1, got {frames_per_action!r}")
    if not (isinstance(noop_max, int) and noop_max >= 0):
        raise UserError(f"the no-op maximum must be a whole number >= 0, got {noop_max!r}")
    if repeat_action_probability is not None and not 0.0 <= repeat_action_probability <= 1.0:
        raise UserError(
            f"the sticky-action probability must be in [0, 1], got {repeat_action_probability!r}"
        )


def rom_name(env):
    """The ALE ROM name (``pong``), the same for ``Pong-v0``, ``ALE/Pong-v5`` and ``PongNoFrameskip-v4``:
    what weight files record and reference scores are keyed by."""
    spec = env.unwrapped.spec
    return (spec.kwargs.get("game") if spec else None) or type(env.unwrapped).__name__
