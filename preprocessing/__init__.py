"""Atari environments whose observations are the 84x84 gray frames the network learns from.

``make_env(env_id, seed)`` builds, from the inside out:

1. the ALE emulator with ``frameskip=1`` whatever the id (the old ``-v0`` ids skip 2..5 random
   frames by themselves, which our repeat would have multiplied) and the gray screen;
2. ``NoopStarts``, ``ActionRepeat``, ``FireReset``, ``LifeLossFlag``, ``IdlePenalty`` and
   ``PreprocessFrame`` from :mod:`preprocessing.wrappers`, one concern each.

What is on by default, and why:

- action repeat 4, rewards summed, last two raw frames max-pooled: Mnih et al. 2015 (Nature).
  The sum fixes the seed's bug where a point scored on a repeated frame was overwritten.
- no-op starts, 1..30 raw frames: Mnih et al. 2015; they vary the start of each episode.
- sticky actions: the id's own probability (0.25 for ``-v0`` and ``ALE/...-v5``, as Machado et
  al. 2018 recommend; 0.0 for ``...NoFrameskip-v4``). They keep a deterministic emulator from
  rewarding a memorised action sequence, which no-op starts alone do not prevent.
- FIRE after reset, in games with a FIRE action: without it Breakout waits for the agent at the
  start, and a greedy agent can wait forever (the seed's agent did). FIRE after each life lost
  is an option (``fire_after_life_loss``), off: it would make that one step 8 frames long, and
  an agent learns to serve by itself as DQN Zoo's and Dopamine's agents (no FIRE presses) do.
- life-loss flag ``info["life_lost"]``: on. Ending episodes on a life lost is standard in SB3
  and DQN Zoo zeroes the discount there; Machado et al. 2018 advise against it because it uses
  game knowledge. Here it is only a learning flag, so episodes and scores stay whole and
  comparable, while learning keeps the denser signal that speeds up Breakout.
- the seed's idle penalty: off. It is game knowledge too, and the FIRE press removes the
  stall it was invented for; the seed's runs can still be reproduced with it on.

Rewards stay the raw game score (logs report the real score); ``clip_reward`` clips as learning
does (the replay memory clips the rewards it stores the same way) for the log's clipped return.
"""
from .env_ids import EnvIdError, resolve_env_id
from .environment import make_env, rom_name
from .frames import FRAME_SIZE, FrameStack, preprocess
from .rewards import clip_reward
from .snapshot import env_snapshot, restore_env

__all__ = [
    "EnvIdError",
    "FRAME_SIZE",
    "FrameStack",
    "clip_reward",
    "env_snapshot",
    "make_env",
    "preprocess",
    "resolve_env_id",
    "restore_env",
    "rom_name",
]
