"""One replay memory per game copy, sampled as one memory (``--envs N``).

Frame stacks are rebuilt from consecutive frames of one game, so the games played side by side
cannot share one ring: each writes its own ``ReplayMemory`` stream of ``capacity // N`` frames,
and a batch is drawn uniformly over all their transitions (how many from each stream follows
the streams' sizes, drawn with the streams' own generator). Prioritized sampling needs one sum
tree over every transition and is not offered with more than one stream.
"""
from pathlib import Path

import numpy as np

from common.errors import SettingError
from memory.replay import Batch, ReplayMemory


def snapshot_paths(path, count: int) -> list[Path]:
    """Where ``ReplayStreams.save(path)`` writes its streams: ``memory-0.npz``, ``memory-1.npz``, ..."""
    path = Path(path)
    return [path.with_name(f"{path.stem}-{index}{path.suffix}") for index in range(count)]


class ReplayStreams:
    """``count`` ``ReplayMemory`` streams of ``capacity // count`` frames each (other keyword
    arguments as ``ReplayMemory``'s); uniform sampling only."""

    prioritized = False

    def __init__(self, capacity: int, count: int, *, seed=None, priority_exponent=None, **settings):
        if priority_exponent is not None:
            raise SettingError("prioritized replay keeps one memory per run: use it with {envs} 1")
        if count < 2:
            raise ValueError("ReplayStreams needs two streams or more; use ReplayMemory for one")
        ReplayMemory.ensure_fits(capacity, settings.get("compression", "none"),
                                 frame_shape=settings.get("frame_shape", (84, 84)))
        seeds = np.random.SeedSequence(seed).spawn(count + 1)
        self.streams = [ReplayMemory(capacity // count, seed=stream_seed, **settings)
                        for stream_seed in seeds[:count]]
        self._rng = np.random.default_rng(seeds[count])

    @property
    def capacity(self) -> int:
        return sum(stream.capacity for stream in self.streams)

    @property
    def compression(self) -> str:
        return self.streams[0].compression

    @property
    def nbytes(self) -> int:
        return sum(stream.nbytes for stream in self.streams)

    def __len__(self) -> int:
        return sum(len(stream) for stream in self.streams)

    def sample(self, batch_size: int, importance_exponent: float = 0.5) -> Batch:
        """``batch_size`` transitions drawn with replacement, each equally likely."""
        sizes = np.array([len(stream) for stream in self.streams], dtype=np.float64)
        if sizes.sum() == 0:
            raise ValueError("the replay memory holds no complete transition to sample yet")
        counts = self._rng.multinomial(batch_size, sizes / sizes.sum())
        parts = [stream.sample(int(count)) for stream, count in zip(self.streams, counts) if count]
        return Batch(*(np.concatenate(arrays) for arrays in zip(*parts)))

    def update_priorities(self, positions, td_errors):
        """Uniform sampling keeps no priorities."""

    def save(self, path):
        """Each stream to its own file beside ``path`` (see ``snapshot_paths``), with this object's
        generator in the first."""
        for index, (stream, stream_path) in enumerate(zip(self.streams, snapshot_paths(path, len(self.streams)))):
            stream.save(stream_path, extra_meta={"streams": len(self.streams),
                                                 **({"stream_rng": self._rng.bit_generator.state} if index == 0 else {})})

    def load(self, path):
        """The streams saved by ``save(path)``; UserError when one is missing or another run's."""
        for index, (stream, stream_path) in enumerate(zip(self.streams, snapshot_paths(path, len(self.streams)))):
            meta = stream.load(stream_path)
            if meta.get("streams") != len(self.streams):
                raise SettingError(f"replay memory file {SettingError.literal(stream_path)} belongs to a run with "
                                   f"{{envs}} {meta.get('streams', 1)}, not {len(self.streams)}")
            if index == 0:
                self._rng.bit_generator.state = meta["stream_rng"]
