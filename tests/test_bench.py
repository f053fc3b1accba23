"""The benchmark scripts still run on the real loop and print their `name: value` figures (tiny sizes:
the figures themselves are measured with `bench/` by hand and recorded in the README)."""
import math
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_bench(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=REPO_ROOT,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    return figures


def number(text):
    return float(text.split()[0])


def test_train_speed_runs_the_training_loop_and_prints_its_figures():
    figures = run_bench("bench/train_speed.py", "--warmup", 600, "--steps", 40, "--threads", 1,
                        "--train-every", 2, "--n-step", 3, "--prioritized", "--dueling",
                        "--distributional", "quantile", "--quantiles", 8)
    assert figures["env"] == "Pong-v0" and figures["train_every"] == "2" and figures["n_step"] == "3"
    assert figures["prioritized"] == "True" and figures["head"] == "dueling quantile (8)"
    assert figures["timed_steps"] == "39"
    for name in ("sps", "train_step_ms", "act_ms", "env_step_ms"):
        assert math.isfinite(number(figures[name])) and number(figures[name]) > 0, name
    for name in ("backend", "device", "precision", "threads", "learner"):
        assert figures[name], name


def test_train_speed_counts_the_steps_of_every_game_copy():
    figures = run_bench("bench/train_speed.py", "--warmup", 600, "--steps", 41, "--threads", 1, "--envs", 3)
    assert figures["envs"] == "3" and figures["timed_steps"] == "40"
    for name in ("sps", "train_step_ms", "act_ms", "env_step_ms"):
        assert math.isfinite(number(figures[name])) and number(figures[name]) > 0, name


def test_replay_memory_bench_fills_samples_and_prints_its_figures():
    figures = run_bench("-m", "bench.replay_memory", "--game", "Pong", "--transitions", 3000,
                        "--play-steps", 500, "--samples", 20, "--prioritized")
    assert figures["prioritized"] == "True"
    assert 1.0 < number(figures["compression_ratio"]) < 1000
    for name in ("bytes_per_transition", "add_us", "sample_ms", "rss_gb_at_1M"):
        assert math.isfinite(number(figures[name])) and number(figures[name]) > 0, name


def test_benchmarks_refuse_sizes_they_cannot_time_in_one_line():
    for args in (["bench/train_speed.py", "--steps", 1], ["bench/train_speed.py", "--steps", 0],
                 ["bench/train_speed.py", "--env", "Pongg"],
                 ["-m", "bench.replay_memory", "--play-steps", 0], ["-m", "bench.replay_memory", "--transitions", 1, "--play-steps", 10],
                 ["-m", "bench.replay_memory", "--game", "Pongg"]):
        result = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=REPO_ROOT,
                                timeout=120)
        assert result.returncode == 2 and "Traceback" not in result.stderr, (args, result.stderr[-2000:])
        # one line, after the emulator's start-up banner where a game was made
        assert ".py: error: " in result.stderr.strip().splitlines()[-1], (args, result.stderr)
        assert "usage:" not in result.stderr, (args, result.stderr)
