"""Replay memory that stores every frame once and rebuilds frame stacks when it samples.

Layout (as in Dopamine's circular buffer): one ring slot per frame. `start_episode(frame)` puts
the first frame of an episode into a fresh slot flagged as an episode start; `add(...)` records
the transition taken from the newest frame (action, reward, terminated, truncated) in that
frame's slot and puts the next frame in the following slot. Positions are absolute frame numbers
(they only grow); a position's slot is `position % capacity`.

A position n is sampleable when
  - its slot holds a transition (the frame n + 1 follows it in the same episode), and
  - its stack n - history + 1 .. n needs no frame older than the oldest one still in the ring:
    either the whole stack is live, or an episode start inside it masks the older frames.
Frames of a stack that precede an episode start are zeros, exactly as the live state at reset.
Cutting happens only at episode starts: a terminal from a lost life ends no stack.

With `n_step` > 1 a sampled transition spans up to n agent steps (Sutton 1988; the multi-step
targets of Rainbow and Dopamine's `update_horizon`): r_t is the discounted sum of their rewards
and s_t the stack after the last of them. The horizon stops early at a terminal (no bootstrap)
and where the episode stops (a truncation, or an episode that ended unflagged); a transition whose
horizon still runs into steps not yet played is not sampleable.

With `priority_exponent` (alpha) set, sampling is prioritized (Schaul et al. 2016, the
proportional variant, as in Rainbow and Dopamine): a transition is drawn with probability
p ** alpha / sum(p ** alpha), where p is |TD error| + 1e-6 from the last time it was learned from
(`update_priorities`), and a new transition gets the largest p seen so far, so it is replayed at
least once soon. The batch carries importance-sampling weights (N P(i)) ** -beta, divided by the
batch's largest so they only scale updates down. New priorities take effect at the next
`sample()`, whenever they arrive before it: the transitions stored meanwhile get the same
priority whether the gradient step ran in the loop's thread or beside it, and priorities still
pending are saved with the memory, so a resumed run draws what an uninterrupted one would.
"""
import json
from typing import NamedTuple

import cv2
import numpy as np

from common.errors import SettingError, UserError
from memory.frame_stores import COMPRESSIONS, make_frame_store
from memory.sizing import ensure_fits, required_bytes
from memory.snapshot_file import check_layout, read_arrays, write_arrays_atomically
from memory.sum_tree import SumTree

SNAPSHOT_FORMAT = 1
PRIORITY_OFFSET = 1e-6
"""Added to |TD error| so that no transition's priority is zero (Schaul et al. 2016, section 3.3)."""
REDRAW_ROUNDS = 20
"""Proportional redraws of a batch's unsampleable picks before drawing exactly among the sampleable."""
_TRANSITION_ARRAYS = ("actions", "rewards", "terminated", "truncated", "episode_start", "has_transition")


class Batch(NamedTuple):
    """A sampled minibatch, named by time step as in the learning rule."""

    s_tm1: np.ndarray
    """uint8[B, H, W, history]: the stack before the action, oldest frame first."""
    a_tm1: np.ndarray
    """int32[B]: the action taken."""
    r_t: np.ndarray
    """float32[B]: the reward that followed, clipped to [-1, 1] (n-step: the discounted sum of
    the clipped rewards of the horizon)."""
    discount_t: np.ndarray
    """float32[B]: what multiplies the value of s_t in the target: gamma ** k after k steps,
    0.0 where the game (or a life) really ended within them."""
    s_t: np.ndarray
    """uint8[B, H, W, history]: the stack after the action (n-step: after the horizon's last one)."""
    weights: np.ndarray
    """float32[B]: importance-sampling weights of the loss terms (all 1 with uniform sampling)."""
    positions: np.ndarray
    """int64[B]: where the transitions are, for `ReplayMemory.update_priorities`."""


class ReplayMemory:
    """Experience replay over `capacity` frame slots (about one transition per slot): uniform, or
    prioritized with `priority_exponent` (see the module doc).

    `compression` picks the frame store: "none" keeps a raw uint8[capacity, H, W] ring
    (7,056 bytes per 84x84 frame); "zstd" or "lz4" compress each frame once when it is stored
    and decompress only the frames of sampled stacks, with identical batches.
    `n_step` agent steps make one sampled transition, discounted by `gamma` (see the module doc).
    Sampling uses a numpy Generator owned by the memory, seeded by `seed` and saved with it.
    """

    def __init__(self, capacity: int, *, history: int = 4, frame_shape=(84, 84),
                 compression: str = "none", n_step: int = 1, gamma: float = 0.99,
                 priority_exponent: float | None = None, seed=None):
        _check_settings(capacity, history, compression, n_step, priority_exponent)
        self.ensure_fits(capacity, compression, frame_shape=frame_shape)
        self._capacity = int(capacity)
        self._history = int(history)
        self._frame_shape = tuple(int(side) for side in frame_shape)
        self._compression = compression
        self._n_step = int(n_step)
        self._gamma = float(gamma)
        self._store = make_frame_store(self._capacity, self._frame_shape, compression)
        self._actions = np.zeros(capacity, dtype=np.int32)
        self._rewards = np.zeros(capacity, dtype=np.float32)
        self._terminated = np.zeros(capacity, dtype=bool)
        self._truncated = np.zeros(capacity, dtype=bool)
        self._episode_start = np.zeros(capacity, dtype=bool)
        self._has_transition = np.zeros(capacity, dtype=bool)
        self._frames_written = 0
        self._live_transitions = 0
        self._rng = np.random.default_rng(seed)
        self._priority_exponent = None if priority_exponent is None else float(priority_exponent)
        self._priorities = SumTree(capacity) if self.prioritized else None
        self._max_priority = 1.0
        self._pending = []  # (positions, priorities) given to update_priorities, not yet in the tree

    @staticmethod
    def required_bytes(capacity: int, compression: str = "none", *, frame_shape=(84, 84)) -> int:
        """Bytes a full memory holds (compressed stores: a pessimistic estimate)."""
        return required_bytes(capacity, compression, frame_shape)

    @staticmethod
    def ensure_fits(capacity: int, compression: str = "none", *, frame_shape=(84, 84),
                    available: int | None = None):
        """Raise memory.MemoryTooLargeError (a UserError) naming the bytes needed and available."""
        ensure_fits(capacity, compression, frame_shape, available)

    @staticmethod
    def min_capacity(n_step: int = 1, history: int = 4) -> int:
        """The fewest frames a memory can hold: one stack of ``history`` frames and its n-step horizon."""
        return history + n_step

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def compression(self) -> str:
        return self._compression

    @property
    def prioritized(self) -> bool:
        return self._priority_exponent is not None

    @property
    def nbytes(self) -> int:
        """Bytes held by the frame store and the per-slot arrays."""
        flags = sum(getattr(self, "_" + name).nbytes for name in _TRANSITION_ARRAYS)
        return self._store.nbytes + flags + (self._priorities.nbytes if self.prioritized else 0)

    def stats(self) -> dict:
        """For logs: bytes held, mean bytes per stored frame, trained dictionaries in use."""
        return {"nbytes": self.nbytes, **self._store.stats()}

    @property
    def frames_written(self) -> int:
        """Frames stored since the memory was created; the next frame goes to this position."""
        return self._frames_written

    def start_episode(self, frame: np.ndarray):
        """Store uint8[H, W], the first frame after a reset; stacks never reach back past it."""
        self._write_frame(frame, episode_start=True)

    def add(self, action: int, reward: float, next_frame: np.ndarray, terminated: bool, truncated: bool):
        """Record the transition from the newest frame and store next_frame (uint8[H, W]).

        terminated: the learning terminal (game over or a lost life), stored as discount 0;
        truncated: the episode stopped without a terminal (a time limit), so it still bootstraps.
        The episode goes on until the next start_episode, even after a terminal.
        """
        if self._frames_written == 0:
            raise RuntimeError("start_episode must store the first frame before add")
        slot = (self._frames_written - 1) % self._capacity
        self._actions[slot] = action
        self._rewards[slot] = np.clip(reward, -1.0, 1.0)
        self._terminated[slot] = terminated
        self._truncated[slot] = truncated
        self._has_transition[slot] = True
        self._live_transitions += 1
        if self.prioritized:
            self._priorities.set(slot, self._max_priority ** self._priority_exponent)
        self._write_frame(next_frame, episode_start=False)

    def __len__(self) -> int:
        """Number of transitions that can be sampled now."""
        oldest, written = self._oldest_position(), self._frames_written
        tail = np.arange(oldest, min(oldest + self._history - 1, written))  # stacks may be cut off
        head = np.arange(max(oldest, written - self._n_step), written)      # horizons may be open
        edge = np.union1d(tail, head)
        cut_off = self._has_transition[edge % self._capacity] & ~self._is_sampleable(edge)
        return self._live_transitions - int(np.count_nonzero(cut_off))

    def sample(self, batch_size: int, importance_exponent: float = 0.5) -> Batch:
        """A minibatch of `batch_size` transitions, drawn with replacement: uniformly, or by
        priority with importance-sampling weights of exponent `importance_exponent` (beta)."""
        if len(self) == 0:
            raise ValueError("the replay memory holds no complete transition to sample yet")
        if self.prioritized:
            self._apply_pending_priorities()
            positions = self._draw_by_priority(batch_size)
            weights = self._importance_weights(positions, importance_exponent)
        else:
            positions = self._draw_sampleable_positions(batch_size)
            weights = np.ones(batch_size, dtype=np.float32)
        horizon = self._horizons(positions)
        s_tm1, s_t = self._stacks_around(positions, horizon.steps)
        return Batch(s_tm1=s_tm1, a_tm1=self._actions[positions % self._capacity],
                     r_t=horizon.returns, discount_t=horizon.discounts, s_t=s_t,
                     weights=weights, positions=positions)

    def update_priorities(self, positions: np.ndarray, td_errors: np.ndarray):
        """New priorities |TD error| + 1e-6 for the transitions at `positions` (a sampled batch's),
        from the next `sample()` on, except for those overwritten by then. Does nothing with
        uniform sampling."""
        if not self.prioritized:
            return
        positions = np.array(positions, dtype=np.int64)
        priorities = np.abs(np.asarray(td_errors, dtype=np.float64)) + PRIORITY_OFFSET
        if positions.shape != priorities.shape:
            raise ValueError("expected one TD error per position")
        if not np.all(np.isfinite(priorities)):
            raise SettingError("the TD errors are no longer finite numbers: the network diverged "
                               "(a lower {learning_rate} or {clip_norm} may help)")
        self._pending.append((positions, priorities))

    def _apply_pending_priorities(self):
        if not self._pending:
            return
        positions, priorities = (np.concatenate(arrays) for arrays in zip(*self._pending))
        self._pending = []
        still_here = positions >= self._oldest_position()
        positions, priorities = positions[still_here], priorities[still_here]
        self._priorities.set(positions % self._capacity, priorities ** self._priority_exponent)
        self._max_priority = max(self._max_priority, float(priorities.max(initial=0.0)))

    def save(self, path, extra_meta=None):
        """Write every array, the cursor and the sampling RNG to `path` (.npz), atomically;
        `extra_meta` (JSON-able) is stored beside the memory's own settings."""
        arrays = {name: getattr(self, "_" + name) for name in _TRANSITION_ARRAYS}
        if self.prioritized:
            arrays["priorities"] = self._priorities.state()
            pending = list(zip(*self._pending)) or [[np.zeros(0, np.int64)], [np.zeros(0)]]
            arrays["pending_positions"], arrays["pending_priorities"] = (np.concatenate(a) for a in pending)
        arrays.update({"store_" + name: array for name, array in self._store.state().items()})
        arrays["meta"] = np.array(json.dumps({**(extra_meta or {}), **self._meta()}))
        write_arrays_atomically(path, arrays)

    def load(self, path) -> dict:
        """Replace this memory's contents with the snapshot at `path` written by save(); returns
        the snapshot's settings, `extra_meta` included."""
        arrays = read_arrays(path)
        meta = self._checked_meta(arrays, path)
        pending = []
        try:
            restored = {name: arrays[name] for name in _TRANSITION_ARRAYS}
            for name, array in restored.items():
                check_layout(getattr(self, "_" + name), array, name)
            if self.prioritized:
                self._priorities.restore(arrays["priorities"])
                if not np.array_equal(self._priorities.state() > 0, restored["has_transition"]):
                    raise ValueError("priorities do not match the stored transitions")
                pending = [(arrays["pending_positions"].astype(np.int64),
                            arrays["pending_priorities"].astype(np.float64))]
            self._store.restore({name[len("store_"):]: array for name, array in arrays.items()
                                 if name.startswith("store_")})
        except (KeyError, ValueError) as error:
            raise UserError(f"replay memory file {path} is damaged: {error}") from None
        for name, array in restored.items():
            setattr(self, "_" + name, array)
        self._frames_written = int(meta["frames_written"])
        self._max_priority = float(meta.get("max_priority", 1.0))
        self._pending = pending
        self._live_transitions = int(np.count_nonzero(self._has_transition))
        self._rng.bit_generator.state = meta["rng_state"]
        return meta

    def _write_frame(self, frame: np.ndarray, *, episode_start: bool):
        frame = np.asarray(frame)
        if frame.shape != self._frame_shape or frame.dtype != np.uint8:
            raise ValueError(f"expected a uint8{list(self._frame_shape)} frame, "
                             f"got {frame.dtype}{list(frame.shape)}")
        slot = self._frames_written % self._capacity
        if self._has_transition[slot]:
            self._live_transitions -= 1
            if self.prioritized:
                self._priorities.set(slot, 0.0)
        self._actions[slot] = 0
        self._rewards[slot] = 0.0
        self._terminated[slot] = False
        self._truncated[slot] = False
        self._has_transition[slot] = False
        self._episode_start[slot] = episode_start
        self._store.put(slot, frame)
        self._frames_written += 1

    def _oldest_position(self) -> int:
        return max(0, self._frames_written - self._capacity)

    def _stack_is_live(self, positions: np.ndarray) -> np.ndarray:
        """bool[N]: the stack ending at each position (int64[N]) needs only frames still in the ring."""
        oldest = self._oldest_position()
        cutting = positions[:, None] + np.arange(2 - self._history, 1)
        cut_inside = (self._episode_start[cutting % self._capacity] & (cutting >= oldest)).any(axis=1)
        return (positions - (self._history - 1) >= oldest) | cut_inside

    def _is_sampleable(self, positions: np.ndarray) -> np.ndarray:
        live = self._has_transition[positions % self._capacity] & self._stack_is_live(positions)
        return live if self._n_step == 1 else live & self._horizons(positions).closed

    def _horizons(self, positions: np.ndarray) -> "_Horizons":
        """The n-step horizon of each transition at `positions` (int64[B], each holding one).

        Step j (0 <= j < n) of the horizon is the transition at position + j; it is taken while
        it exists and no earlier step of the horizon ended the game, a life or the episode.
        """
        offsets = positions[:, None] + np.arange(self._n_step)
        slots = offsets % self._capacity
        exists = self._has_transition[slots] & (offsets < self._frames_written)
        ends = self._terminated[slots] | self._truncated[slots]
        ended_before = np.zeros_like(ends)
        ended_before[:, 1:] = np.logical_or.accumulate(ends[:, :-1] | ~exists[:, :-1], axis=1)
        taken = exists & ~ended_before
        steps = taken.sum(axis=1)
        last = np.take_along_axis(slots, steps[:, None] - 1, axis=1)[:, 0]
        ended = np.take_along_axis(ends, steps[:, None] - 1, axis=1)[:, 0]
        # A horizon shorter than n is closed when its last step ended, or when the step after it
        # is missing below the newest frame (an episode that stopped unflagged); at the newest
        # frame the next step may still come.
        closed = (steps == self._n_step) | ended | (positions + steps < self._frames_written - 1)
        powers = self._gamma ** np.arange(self._n_step + 1)
        returns = (self._rewards[slots] * taken) @ powers[:-1]
        discounts = np.where(self._terminated[last], 0.0, powers[steps])
        return _Horizons(steps, returns.astype(np.float32), discounts.astype(np.float32), closed)

    def _draw_sampleable_positions(self, count: int) -> np.ndarray:
        """int64[count] uniform over sampleable positions, by redrawing the few that are not."""
        low, high = self._oldest_position(), self._frames_written - 1
        positions = self._rng.integers(low, high, size=count)
        rejected = ~self._is_sampleable(positions)
        while rejected.any():
            redrawn = self._rng.integers(low, high, size=int(np.count_nonzero(rejected)))
            positions[rejected] = redrawn
            rejected[rejected] = ~self._is_sampleable(redrawn)
        return positions

    def _draw_by_priority(self, count: int) -> np.ndarray:
        """int64[count] positions drawn in proportion to their priorities, one from each of `count`
        equal parts of the total (stratified, as Schaul et al. and Dopamine draw); the few that are
        not sampleable yet (a cut stack, an open horizon) are redrawn from the whole."""
        total = self._priorities.total
        prefix_sums = (np.arange(count) + self._rng.random(count)) * (total / count)
        positions = self._positions_of(self._priorities.find(prefix_sums))
        rejected = ~self._is_sampleable(positions)
        for _ in range(REDRAW_ROUNDS):
            if not rejected.any():
                return positions
            redrawn = self._positions_of(self._priorities.find(
                self._rng.random(int(np.count_nonzero(rejected))) * total))
            positions[rejected] = redrawn
            rejected[rejected] = ~self._is_sampleable(redrawn)
        if rejected.any():  # the unsampleable hold nearly all the priority (a tiny memory): draw exactly
            candidates = np.arange(self._oldest_position(), self._frames_written - 1)
            candidates = candidates[self._is_sampleable(candidates)]
            weights = self._priorities.get(candidates % self._capacity)
            positions[rejected] = self._rng.choice(candidates, size=int(np.count_nonzero(rejected)),
                                                   p=weights / weights.sum())
        return positions

    def _importance_weights(self, positions: np.ndarray, exponent: float) -> np.ndarray:
        """float32[B]: (N P(i)) ** -exponent over the batch's largest (N cancels out)."""
        probabilities = self._priorities.get(positions % self._capacity) / self._priorities.total
        weights = probabilities ** -float(exponent)
        return (weights / weights.max()).astype(np.float32)

    def _positions_of(self, slots: np.ndarray) -> np.ndarray:
        """int64[B] the newest positions held by `slots` (int64[B])."""
        newest = self._frames_written - 1
        return newest - (newest - slots) % self._capacity

    def _stacks_around(self, positions: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(s_tm1, s_t), uint8[B, H, W, history] each, for the transitions at `positions` (int64[B])
        whose s_t comes `steps` (int64[B], 1 .. n) frames after s_tm1.

        Each distinct frame is fetched once (s_tm1 and s_t share all but one). OpenCV interleaves
        each sample's frames straight from the store into channels-last stacks, several times
        faster than numpy's transposing copy; gathering the frames into planes first would add
        megabytes of short-lived copies whose fresh pages cost more than the merges save.
        Both stacks share one allocation, which the allocator then reuses batch after batch.
        """
        history = self._history
        window = positions[:, None] + np.arange(1 - history, self._n_step + 1)
        keep = np.zeros(window.shape, dtype=bool)
        keep[:, :history + 1] = self._in_same_episode(window[:, :history + 1])
        keep[:, history + 1:] = np.arange(2, self._n_step + 1) <= steps[:, None]  # inside the horizon
        distinct, rows = np.unique(window[keep] % self._capacity, return_inverse=True)
        frames = self._store.frames_at(distinct) + [np.zeros(self._frame_shape, dtype=np.uint8)]
        frame_rows = np.full(window.shape, -1, dtype=np.int64)
        frame_rows[keep] = rows
        s_tm1, s_t = np.empty((2, len(positions), *self._frame_shape, self._history), dtype=np.uint8)
        for sample, (sample_rows, step) in enumerate(zip(frame_rows.tolist(), steps.tolist())):
            stack = [frames[row] for row in sample_rows]
            cv2.merge(stack[:history], dst=s_tm1[sample])
            cv2.merge(stack[step:step + history], dst=s_t[sample])
        return s_tm1, s_t

    def _in_same_episode(self, window: np.ndarray) -> np.ndarray:
        """bool[B, K]: False for the frames of each window (int64[B, K]) before its last episode start."""
        live_starts = self._episode_start[window % self._capacity] & (window >= self._oldest_position())
        start_here_or_later = np.logical_or.accumulate(live_starts[:, ::-1], axis=1)[:, ::-1]
        keep = np.ones(window.shape, dtype=bool)
        keep[:, :-1] = ~start_here_or_later[:, 1:]
        return keep

    def _meta(self) -> dict:
        return {
            "format": SNAPSHOT_FORMAT, "capacity": self._capacity, "history": self._history,
            "frame_shape": list(self._frame_shape), "compression": self._compression,
            "frames_written": self._frames_written, "rng_state": self._rng.bit_generator.state,
            "priority_exponent": self._priority_exponent, "max_priority": self._max_priority,
        }

    def _checked_meta(self, arrays: dict, path) -> dict:
        """The snapshot's settings, refused with a UserError when they differ from this memory's."""
        try:
            meta = json.loads(str(arrays["meta"]))
        except (KeyError, ValueError):
            raise UserError(f"{path} is not a replay memory file (no readable 'meta' entry)") from None
        expected = self._meta()
        for key in ("format", "capacity", "history", "frame_shape", "compression", "priority_exponent"):
            if meta.get(key) != expected[key]:
                raise UserError(f"replay memory file {path} has {key} {meta.get(key)!r}, "
                                f"but this run uses {expected[key]!r}")
        return meta


class _Horizons(NamedTuple):
    steps: np.ndarray
    """int64[B]: agent steps in each horizon, 1 .. n."""
    returns: np.ndarray
    """float32[B]: the discounted sum of their clipped rewards."""
    discounts: np.ndarray
    """float32[B]: gamma ** steps, or 0.0 where the last step was a terminal."""
    closed: np.ndarray
    """bool[B]: no step still to come can lengthen the horizon."""


def _check_settings(capacity, history, compression, n_step, priority_exponent):
    if priority_exponent is not None and not (isinstance(priority_exponent, (int, float))
                                              and 0 < priority_exponent <= 1):
        raise UserError(f"priority exponent must be in (0, 1], got {priority_exponent!r}")
    if not isinstance(n_step, (int, np.integer)) or n_step < 1:
        raise UserError(f"n-step horizon must be a positive integer, got {n_step!r}")
    if compression not in COMPRESSIONS:
        raise UserError(f"unknown memory compression {compression!r}; choose one of {', '.join(COMPRESSIONS)}")
    if not isinstance(history, int) or history < 1:
        raise UserError(f"frame history must be a positive integer, got {history!r}")
    fewest = ReplayMemory.min_capacity(n_step, history)
    if not isinstance(capacity, (int, np.integer)) or capacity < fewest:
        raise UserError(f"replay capacity must be an integer of at least {fewest} frames, got {capacity!r}")

