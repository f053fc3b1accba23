"""Exact resume of the richer runs (prioritized replay with both heads, two game copies), beside
tests/test_checkpoint.py: they are the suite's longest runs, so a file of their own lets another
pytest-xdist worker take them."""
import json

from test_checkpoint import RUN, assert_same_run, completed_run, log_without_wall_time, run_cli


def test_prioritized_replay_with_both_heads_resumes_exactly_whichever_thread_learns(tmp_path_factory):
    """Priorities, their maximum and the importance-exponent schedule survive a checkpoint, and the
    learner thread draws the same batches as the loop's thread (priorities arrive at the same point).
    The run has the dueling and the quantile head, whose priorities are per-sample quantile losses."""
    heads = ["--dueling", "--distributional", "quantile", "--quantiles", 8]
    straight = completed_run(tmp_path_factory, "prioritized", "-pre", 600, "--steps", 1600, "--prioritized", *heads)
    split = tmp_path_factory.mktemp("prioritized-split")
    first = run_cli(*RUN, "-pre", 600, "--steps", 800, "--prioritized", *heads, "--out", split)
    assert first.returncode == 0, first.stderr[-2000:]
    second = run_cli(*RUN, "-pre", 600, "--steps", 1600, "--out", split, "--resume", "--learner", "main")
    assert second.returncode == 0, second.stderr[-2000:]
    config = json.loads((split / "Pong-v0_config.json").read_text())
    assert (config["prioritized"], config["dueling"], config["distributional"], config["quantiles"]) == (
        True, True, "quantile", 8)
    assert_same_run(straight, split)
    refused = run_cli(*RUN, "--steps", 2000, "--out", split, "--resume", "--distributional", "none")
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "made with --distributional 'quantile', but this command runs with --distributional 'none'" in refused.stderr


def test_two_game_copies_resume_exactly_whichever_thread_learns(tmp_path_factory):
    """With --envs 2 every game copy's emulator, frame stack, memory stream and open episode
    survive a checkpoint; each copy's episodes are logged as they end."""
    straight = completed_run(tmp_path_factory, "envs", "-pre", 600, "--steps", 2400, "--envs", 2)
    split = tmp_path_factory.mktemp("envs-split")
    first = run_cli(*RUN, "-pre", 600, "--steps", 1200, "--envs", 2, "--out", split)
    assert first.returncode == 0, first.stderr[-2000:]
    assert sorted(p.name for p in next((split / "Pong-v0_checkpoints").iterdir()).glob("memory*")) == [
        "memory-0.npz", "memory-1.npz"]
    second = run_cli(*RUN, "-pre", 600, "--steps", 2400, "--out", split, "--resume", "--learner", "main")
    assert second.returncode == 0, second.stderr[-2000:]
    assert json.loads((split / "Pong-v0_config.json").read_text())["envs"] == 2
    assert_same_run(straight, split)
    rows = log_without_wall_time(straight / "Pong-v0_log.txt")[1:]
    assert len(rows) >= 2, "each copy plays 1,200 steps: a random game of Pong ends within them"
    refused = run_cli(*RUN, "--steps", 3000, "--out", split, "--resume", "--envs", 3)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "made with --envs 2, but this command runs with --envs 3" in refused.stderr, refused.stderr[-2000:]
