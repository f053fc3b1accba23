"""dqn_sweep.py as a user runs it: a real 2 x 2 sweep of tiny runs on a local Ray instance, one of
whose trainers is killed with SIGKILL after its first checkpoint; the same command again; the
summary against the logs; and the one-line refusals of bad input, before any run starts.

The sweep trains Breakout-v0 and Asterix-v0 (short games when played at random: several episodes
in a tiny run), seed 1, at two learning rates. Each run is 900 agent steps of which 850 fill the
memory by random play, so the two learning rates of a game play the same episodes: the killed run,
resumed, must log exactly what its uninterrupted sibling logged.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.runlog import read_log
from training.checkpoints import CheckpointStore, read_manifest

REPO_ROOT = Path(__file__).resolve().parent.parent
SWEEP = REPO_ROOT / "dqn_sweep.py"
GAMES = ("Breakout-v0", "Asterix-v0")
RATES = ("1e-4", "5e-5")
TINY_RUN = ["--steps", "900", "-pre", "850", "--memory-size", "2000", "--batch-size", "8",
            "--checkpoint-every", "1"]
KILLED = ("Asterix-v0", "lr=5e-5")  # seed 1; its sibling lr=1e-4 plays the same episodes
SWEEP_TIMEOUT_S = 300  # one sweep command
# The killed sweep as a whole: its trial of KILLED may be the last to start, and on a loaded 2-core
# machine the others took over 300 s before it did (seen with a training run beside the suite).
KILLED_SWEEP_TIMEOUT_S = 900


def sweep_args(out):
    return ["--games", *GAMES, "--seeds", "1", "--set", f"lr={','.join(RATES)}", "--cpus-per-run", "1",
            "--max-failures", "2", "--out", str(out), "--", *TINY_RUN]


def run_sweep(*args, env=None, timeout=SWEEP_TIMEOUT_S):
    return subprocess.run([sys.executable, str(SWEEP), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def run_folder(out, game, setting):
    return Path(out) / game / setting / "seed-1"


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    """The sweep, run to its end while its KILLED run's trainer is killed once: (out, stdout, summary
    text as the sweep wrote it, the step of the checkpoint the killed run had)."""
    pytest.importorskip("ray", reason="Ray Tune is not installed: pip install -r requirements-sweep.txt")
    out = tmp_path_factory.mktemp("sweep")
    process = subprocess.Popen([sys.executable, str(SWEEP), *sweep_args(out)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + KILLED_SWEEP_TIMEOUT_S
    try:
        killed_at = kill_after_first_checkpoint(run_folder(out, *KILLED), process, deadline)
        stdout, _ = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stdout[-3000:]
    assert killed_at is not None, f"the killed run ended before its trainer could be killed:\n{stdout[-3000:]}"
    return out, stdout, (out / "summary.md").read_text(), killed_at


def kill_after_first_checkpoint(folder, sweep_process, deadline):
    """SIGKILLs the trainer training in ``folder`` once it has a complete checkpoint; returns that
    checkpoint's step, or None if the run finished first. The trainer's lock file holds its pid.
    Fails at ``deadline`` (a ``time.monotonic()`` value) if the sweep is still running then."""
    store = CheckpointStore(folder / f"{KILLED[0]}_checkpoints")
    while time.monotonic() < deadline and sweep_process.poll() is None:
        if (folder / "sweep_done.json").exists():
            return None
        newest = store.latest()
        lock = folder / f".{KILLED[0]}.lock"
        pid = lock.read_text().strip() if newest and lock.exists() else ""
        if pid.isdigit():
            os.kill(int(pid), signal.SIGKILL)
            return read_manifest(newest)["step"]
        time.sleep(0.02)
    if sweep_process.poll() is None:
        pytest.fail(f"the sweep was still running after {KILLED_SWEEP_TIMEOUT_S} s, and {folder} had no "
                    "checkpoint and running trainer to kill")
    return None


def test_every_combination_trains_to_the_end_in_its_own_folder(finished_sweep):
    out = finished_sweep[0]
    for game in GAMES:
        for rate in RATES:
            folder = run_folder(out, game, f"lr={rate}")
            config = json.loads((folder / f"{game}_config.json").read_text())
            assert (config["env_id"], config["seed"], config["learning_rate"], config["steps"]) == \
                (game, 1, float(rate), 900)
            assert (folder / f"{game}_weights.h5").is_file()
            assert json.loads((folder / "sweep_done.json").read_text())["training_args"][-1] == f"--lr={rate}"


def test_a_killed_trainer_is_retried_and_resumes_from_its_checkpoint(finished_sweep):
    out, _, _, killed_at = finished_sweep
    folder = run_folder(out, *KILLED)
    attempts = re.findall(r"^=== .*$", (folder / "sweep_trainer.out").read_text(), re.MULTILINE)
    assert len(attempts) == 2 and "--resume" not in attempts[0] and attempts[1].endswith("--resume")
    game = KILLED[0]
    assert f"resuming {game} from step-{killed_at:012d}" in (folder / "sweep_trainer.out").read_text()
    resumed = read_log(folder / f"{game}_log.txt")
    uninterrupted = read_log(run_folder(out, game, "lr=1e-4") / f"{game}_log.txt")
    assert played(resumed) == played(uninterrupted)
    assert [e.episode for e in resumed] == list(range(1, len(resumed) + 1))


def played(log):
    """What the game did in each episode, whatever the learning rate and the wall clock."""
    return [(episode.step, episode.episode, episode.score, episode.length) for episode in log]


def test_the_summary_holds_each_runs_figures_from_its_log(finished_sweep):
    out, stdout, summary, _ = finished_sweep
    assert summary in stdout
    rows = table_rows(summary)
    assert set(rows) == {(game, f"lr={rate}", "1") for game in GAMES for rate in RATES}
    for (game, setting, _), row in rows.items():
        episodes = read_log(run_folder(out, game, setting) / f"{game}_log.txt")
        last_100 = [e.score for e in episodes[-100:]]
        assert row == {"status": "done", "steps": f"{episodes[-1].step:,}", "episodes": str(len(episodes)),
                       "mean of last 100": f"{sum(last_100) / len(last_100):.2f}", "protocol": "-"}
    for game in GAMES:
        assert (out / "graphs" / f"{game}_score_per_step_avg50.png").stat().st_size > 0


def test_the_same_command_again_skips_the_finished_runs(finished_sweep):
    out = finished_sweep[0]
    outputs = sorted(out.glob("*/*/seed-1/sweep_trainer.out"))
    before = [path.stat().st_mtime_ns for path in outputs]
    result = run_sweep(*sweep_args(out))
    assert result.returncode == 0, result.stderr
    assert "all 4 runs are done; nothing to train" in result.stdout
    assert "Ray instance" not in result.stdout + result.stderr
    assert [path.stat().st_mtime_ns for path in outputs] == before


def test_summary_on_demand_finds_the_runs_under_out(finished_sweep):
    out, _, summary, _ = finished_sweep
    result = run_sweep("--summary", "--out", out)
    assert result.returncode == 0, result.stderr
    assert table_rows(result.stdout) == table_rows(summary)


def table_rows(text):
    """The summary's tables as {(game, setting, seed): {column: cell}}."""
    rows, game, header = {}, None, None
    for line in text.splitlines():
        if line.startswith("## "):
            game, header = line[3:], None
        elif line.startswith("| "):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if header is None:
                header = cells
            else:
                row = dict(zip(header, cells))
                rows[(game, row.pop("setting"), row.pop("seed"))] = row
    return rows


def test_dry_run_lists_every_combination_and_writes_nothing(tmp_path):
    out = tmp_path / "sweep"
    result = run_sweep("--games", *GAMES, "--seeds", 1, 2, 3, "--set", "lr=1e-4,6.25e-5", "--preset", "laptop",
                       "--out", out, "--dry-run")
    assert result.returncode == 0, result.stderr
    listed = re.findall(r"^  new +(\S+)$", result.stdout, re.MULTILINE)
    assert listed == [str(out / game / f"lr={rate}" / f"seed-{seed}")
                      for game in GAMES for rate in ("1e-4", "6.25e-5") for seed in (1, 2, 3)]
    assert "--preset laptop" in result.stdout and not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--games", "Pongg-v0", "--seeds", "1"],
     "dqn_atari.py refuses Pongg-v0 defaults seed 1: unknown game id 'Pongg-v0'"),
    (["--games", "Pong-v0", "--seeds", "1", "--set", "lrr=1e-4"], "--set lrr: unknown setting"),
    (["--games", "Pong-v0", "--seeds", "1", "--set", "lr=1e-4,-1"],
     "dqn_atari.py refuses Pong-v0 lr=-1 seed 1: argument --lr"),
    (["--games", "Pong-v0", "--seeds", "1", "--", "--out", "elsewhere"], "--out after --"),
    (["--games", "Pong-v0", "--seeds", "1", "--set", "pre=100", "--", "-pre", "50"],
     "-pre after --: --pre is swept by --set pre="),  # two spellings of one trainer option
])
def test_bad_input_is_one_line_and_exit_2_before_any_run(tmp_path, args, message):
    result = run_sweep("--out", tmp_path / "sweep", *args, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"dqn_sweep.py: error: {message}")
    assert not (tmp_path / "sweep").exists()


def test_without_ray_it_says_how_to_install_it(tmp_path):
    fake = tmp_path / "no-ray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake.parent), os.environ.get("PYTHONPATH", "")])}
    result = run_sweep("--games", "Pong-v0", "--seeds", "1", "--out", tmp_path / "sweep", env=env, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "requirements-sweep.txt" in result.stderr
    assert not (tmp_path / "sweep").exists()


def test_help_documents_every_option():
    import dqn_sweep

    help_text = run_sweep("-h", timeout=60).stdout
    for action in dqn_sweep.build_parser()._actions:
        assert action.help, action.option_strings
        assert all(flag in help_text for flag in action.option_strings)


# ---------------------------------------------------------------------------------------------
# A run folder's state, from folders made by hand (no trainer, no Ray)


def test_state_of_a_folder_follows_what_the_trainer_left(tmp_path):
    import dqn_sweep

    args = ["-env", "Pong-v0", "--seed", "1", "--steps", "100"]
    assert dqn_sweep.run_state(tmp_path / "absent", "Pong-v0", args) == "new"
    (tmp_path / "Pong-v0_log.txt").write_text("step,episode\n")  # an attempt killed before its first checkpoint
    (tmp_path / "Pong-v0_checkpoints" / ".step-000000000050.partial").mkdir(parents=True)
    (tmp_path / "Pong-v0_checkpoints" / "step-000000000060").mkdir()  # no manifest: not complete
    (tmp_path / "Pong-v0_checkpoints" / "step-000000000065").mkdir()
    (tmp_path / "Pong-v0_checkpoints" / "step-000000000065" / "MANIFEST.json").write_text("{}")  # damaged
    assert dqn_sweep.run_state(tmp_path, "Pong-v0", args) == "restart"
    aside = dqn_sweep.set_aside(tmp_path)
    assert sorted(path.name for path in aside.iterdir()) == ["Pong-v0_checkpoints", "Pong-v0_log.txt"]
    assert dqn_sweep.run_state(tmp_path, "Pong-v0", args) == "new"
    CheckpointStore(tmp_path / "Pong-v0_checkpoints").save(70, lambda folder: (folder / "a.h5").write_bytes(b"w"), {})
    assert dqn_sweep.run_state(tmp_path, "Pong-v0", args) == "resume"
    assert dqn_sweep.run_status(dqn_sweep.Run("Pong-v0", (), 1, tmp_path)) == "checkpoint 70"
    (tmp_path / "sweep_done.json").write_text(json.dumps({"training_args": args}))
    assert dqn_sweep.run_state(tmp_path, "Pong-v0", args) == "done"
    raised = [*args[:-1], "200"]  # the same run asked to go on: the trainer's --resume raises --steps
    assert dqn_sweep.run_state(tmp_path, "Pong-v0", raised) == "resume"


def test_a_run_outcome_has_the_mean_of_the_last_100_episodes_and_the_newest_protocol_score(tmp_path):
    import dqn_sweep
    from common.runlog import EpisodeRecord, RunLogWriter

    run = dqn_sweep.Run("ALE/Pong-v5", (("lr", "1e-4"),), 3, tmp_path)
    with RunLogWriter(tmp_path / "ALE_Pong-v5_log.txt") as log:
        for episode in range(1, 121):  # scores 1..120: the last 100 are 21..120
            log.append(EpisodeRecord(step=10 * episode, episode=episode, score=float(episode), clipped_return=0.0,
                                     length=10, epsilon=1.0, wall_time=float(episode)))
    for name, mean in (("ALE_Pong-v5_weights_eval.json", 1.0), ("ALE_Pong-v5_weights_eval-2.json", 2.5),
                       ("ALE_Pong-v5_weights_best_eval.json", 9.0)):
        (tmp_path / name).write_text(json.dumps({"mean_score": mean}))
    result = dqn_sweep.outcome(run)
    assert (result.status, result.steps, result.episodes, result.mean_score, result.protocol_score) == \
        ("no checkpoint", 1200, 120, 70.5, 2.5)
    assert "| lr=1e-4 |    3 | no checkpoint | 1,200 |      120 |            70.50 |     2.50 |" in \
        dqn_sweep.summary_text([result])


def test_an_address_where_no_ray_head_answers_is_one_line_and_exit_2(tmp_path):
    pytest.importorskip("ray", reason="Ray Tune is not installed: pip install -r requirements-sweep.txt")
    result = run_sweep("--games", "Pong-v0", "--seeds", "1", "--address", "127.0.0.1:1", "--out", tmp_path / "sweep",
                       timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("dqn_sweep.py: error: --address 127.0.0.1:1:")
    assert not (tmp_path / "sweep").exists()
