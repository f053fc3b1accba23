"""Replay memory benchmark on real frames of random play: resident memory, add and sample time.

    python -m bench.replay_memory --game Breakout --compression zstd
    python -m bench.replay_memory --game Pong --compression none --transitions 200000

Plays `--play-steps` real steps of the game with random actions (frames from
`preprocessing.make_env`, learning terminals include lost lives), then stores `--transitions`
frames by cycling through that recording, plus 10% more so the ring has wrapped as in a long
run. Cycling keeps the frames real (compression ratios depend on the game's screens) while
sparing the minutes a million emulator steps would take. Prints one `name: value` line each.

Resident memory is VmRSS from /proc/self/status: `rss_memory_gb` is the growth caused by
the memory, `rss_process_gb` the whole process once the recording is freed. For a capacity
below 1,000,000, `rss_gb_at_1M` scales the memory's growth linearly and says so.
"""
import gc
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.arguments import positive_number, whole_number  # noqa: E402  (the training command's number checks)
from common.errors import OneLineErrorParser, run_main  # noqa: E402
from memory import COMPRESSIONS, ReplayMemory  # noqa: E402
from preprocessing import make_env  # noqa: E402

GAMES = ("Pong", "Breakout", "Seaquest", "SpaceInvaders")
ONE_MILLION = 1_000_000
WRAP_FRACTION = 0.1


def parse_args(argv=None):
    parser = OneLineErrorParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--game", default="Breakout",
                        help=f"game name ({', '.join(GAMES)}) or any id make_env accepts")
    parser.add_argument("--compression", choices=COMPRESSIONS, default="zstd")
    parser.add_argument("--transitions", type=positive_number, default=ONE_MILLION,
                        help="memory capacity (frames); 1.1x as many frames are stored")
    parser.add_argument("--play-steps", type=positive_number, default=50_000,
                        help="real random-play steps recorded and cycled through")
    parser.add_argument("--batch-size", type=positive_number, default=32)
    parser.add_argument("--samples", type=positive_number, default=1000, help="sample() calls timed")
    parser.add_argument("--seed", type=whole_number, default=0)
    parser.add_argument("--prioritized", action="store_true",
                        help="prioritized replay (priority exponent 0.5); each timed sample() is followed "
                             "by an update of its priorities, timed with it")
    return parser.parse_args(argv)


def resident_bytes() -> int:
    """VmRSS of this process, in bytes."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def record_random_play(game: str, steps: int, seed: int) -> dict[str, np.ndarray]:
    """Frames of `steps` random steps (plus one per reset) and the transitions between them.

    Returns frames uint8[N,84,84], starts bool[N] (frame begins an episode), and for every frame
    the transition taken from it: actions int64[N], rewards float32[N], terminated bool[N]
    (game over or a life lost), truncated bool[N]; meaningless where the next frame is a start.
    """
    env = make_env(game if "-" in game or "/" in game else f"{game}-v0", seed)
    rng = np.random.default_rng(seed)
    frames = np.empty((steps + 1, 84, 84), dtype=np.uint8)
    starts = np.zeros(steps + 1, dtype=bool)
    actions = np.zeros(steps + 1, dtype=np.int64)
    rewards = np.zeros(steps + 1, dtype=np.float32)
    terminated = np.zeros(steps + 1, dtype=bool)
    truncated = np.zeros(steps + 1, dtype=bool)
    frames[0], _ = env.reset(seed=seed)
    starts[0] = True
    started = time.perf_counter()
    for step in range(steps):
        actions[step] = rng.integers(env.action_space.n)
        frame, rewards[step], game_over, truncated[step], info = env.step(actions[step])
        terminated[step] = game_over or info["life_lost"]
        if game_over or truncated[step]:
            frame, _ = env.reset()
            starts[step + 1] = True
        frames[step + 1] = frame
    seconds = time.perf_counter() - started
    env.close()
    return {"frames": frames, "starts": starts, "actions": actions, "rewards": rewards,
            "terminated": terminated, "truncated": truncated, "play_seconds": seconds}


def fill(memory: ReplayMemory, recording: dict, add_seconds: np.ndarray) -> np.ndarray:
    """Store len(add_seconds) frames cycling through the recording; returns the seconds of each
    add() call (start_episode calls are not timed), written into the preallocated `add_seconds`
    so that timing the fill does not add to the resident memory being measured."""
    frames, starts = recording["frames"], recording["starts"]
    actions, rewards = recording["actions"], recording["rewards"]
    terminated, truncated = recording["terminated"], recording["truncated"]
    adds = 0
    clock = time.perf_counter
    for index in range(len(add_seconds)):
        k = index % len(frames)
        if starts[k] or index == 0:
            memory.start_episode(frames[k])
            continue
        previous = k - 1
        begun = clock()
        memory.add(int(actions[previous]), float(rewards[previous]), frames[k],
                   bool(terminated[previous]), bool(truncated[previous]))
        add_seconds[adds] = clock() - begun
        adds += 1
    return add_seconds[:adds]


def time_sampling(memory: ReplayMemory, batch_size: int, calls: int) -> np.ndarray:
    """Seconds of each sample() (with prioritized replay: and the update of its priorities)."""
    memory.sample(batch_size)
    td_errors = np.random.default_rng(0).exponential(size=(calls, batch_size))
    seconds = np.empty(calls)
    for call in range(calls):
        begun = time.perf_counter()
        batch = memory.sample(batch_size)
        memory.update_priorities(batch.positions, td_errors[call])
        seconds[call] = time.perf_counter() - begun
    return seconds


def main(argv=None):
    args = parse_args(argv)
    recording = record_random_play(args.game, args.play_steps, args.seed)
    recorded = len(recording["frames"])
    stored = int(args.transitions * (1 + WRAP_FRACTION))
    add_seconds = np.full(stored, np.nan)
    gc.collect()
    before = resident_bytes()
    memory = ReplayMemory(args.transitions, compression=args.compression, seed=args.seed,
                          priority_exponent=0.5 if args.prioritized else None)
    started = time.perf_counter()
    add_seconds = fill(memory, recording, add_seconds)
    fill_seconds = time.perf_counter() - started
    sample_seconds = time_sampling(memory, args.batch_size, args.samples)
    grown = resident_bytes() - before
    env_step_us = 1e6 * recording["play_seconds"] / args.play_steps
    add_us_median, add_us_mean = np.median(add_seconds) * 1e6, add_seconds.mean() * 1e6
    del recording, add_seconds
    gc.collect()
    process = resident_bytes()
    at_million, how = rss_at_one_million(process, grown, args.transitions)
    stats = memory.stats()
    print_lines({
        "game": args.game,
        "compression": args.compression,
        "prioritized": args.prioritized,
        "capacity": args.transitions,
        "frames_stored": f"{stored} (cycling the {recorded} frames of {args.play_steps} real random steps)",
        "sampleable_transitions": len(memory),
        "env_step_us": f"{env_step_us:.0f}",
        "bytes_per_transition": f"{memory.nbytes / args.transitions:.1f}",
        "stored_frame_bytes": f"{stats['stored_frame_bytes']:.1f}",
        "compression_ratio": f"{7056 / stats['stored_frame_bytes']:.1f}",
        "dictionaries": stats["dictionaries"],
        "rss_bytes_per_transition": f"{grown / args.transitions:.1f}",
        "rss_memory_gb": f"{grown / 1e9:.3f}",
        "rss_process_gb": f"{process / 1e9:.3f}",
        "rss_gb_at_1M": f"{at_million / 1e9:.3f} ({how})",
        "add_us": f"{add_us_median:.1f}",
        "add_us_mean": f"{add_us_mean:.1f}",
        "fill_s": f"{fill_seconds:.1f}",
        "sample_ms": f"{np.median(sample_seconds) * 1e3:.3f}",
        "sample_ms_p90": f"{np.percentile(sample_seconds, 90) * 1e3:.3f}",
    })


def rss_at_one_million(process: int, grown: int, capacity: int) -> tuple[float, str]:
    """Process RSS with a 1,000,000-frame memory: measured, or the rest plus the memory scaled."""
    if capacity == ONE_MILLION:
        return process, "measured"
    return process - grown + grown * ONE_MILLION / capacity, \
        f"extrapolated from a measured fill of {capacity:,} transitions"


def print_lines(lines: dict):
    for name, value in lines.items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    run_main(main, Path(__file__).name)
