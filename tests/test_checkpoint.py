"""Crash-safe checkpoints and exact resume, down to killing a real training process mid-save."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from common.errors import UserError
from training.checkpoints import MANIFEST, PAUSE_BEFORE_MANIFEST, CheckpointError, CheckpointStore, read_manifest

REPO_ROOT = Path(__file__).resolve().parent.parent
RUN = ["-env", "Pong-v0", "--memory-size", "5000", "--target-update", "300", "--seed", "0", "--lr", "0.003",
       "--threads", "1", "--epsilon-steps", "2000"]


def cli(*args, env_extra=None, **popen):
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env_extra or {}))
    return [sys.executable, str(REPO_ROOT / "dqn_atari.py"), *map(str, args)], env


def run_cli(*args, env_extra=None):
    command, env = cli(*args, env_extra=env_extra)
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def log_without_wall_time(path):
    rows = [line.split(",") for line in Path(path).read_text().splitlines()]
    wall = rows[0].index("wall_time")
    return [row[:wall] + row[wall + 1:] for row in rows]


def weights(path):
    with h5py.File(path) as f:
        return [np.asarray(f["weights"][key]) for key in sorted(f["weights"])]


def checkpoint_steps(out):
    return [int(p.name.split("-")[1]) for p in CheckpointStore(out / "Pong-v0_checkpoints").complete()]


# ---------------------------------------------------------------------------------------------
# The store


def fake_files(folder, payload=b"x" * 100):
    (folder / "a.bin").write_bytes(payload)


def test_store_keeps_the_newest_complete_checkpoints_and_ignores_partial_ones(tmp_path):
    store = CheckpointStore(tmp_path, keep=2)
    for step in (10, 20, 30):
        store.save(step, fake_files, {"env_id": "Pong-v0"})
    assert [p.name for p in store.complete()] == ["step-000000000020", "step-000000000030"]
    leftover = tmp_path / ".step-000000000040.partial"
    leftover.mkdir()
    (leftover / "a.bin").write_bytes(b"half")
    assert store.latest().name == "step-000000000030"
    store.remove_partial()
    assert not leftover.exists()
    assert read_manifest(store.latest())["env_id"] == "Pong-v0"


def test_a_checkpoint_with_a_truncated_file_is_not_complete(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save(1, fake_files, {})
    newest = store.save(2, fake_files, {})
    (newest / "a.bin").write_bytes(b"x" * 10)
    assert store.latest().name == "step-000000000001"
    with pytest.raises(CheckpointError, match="wrong size"):
        read_manifest(newest)


@pytest.mark.parametrize("manifest", ["[]", "null", '"step"', '{"format": "dqn-atari-checkpoint", "files": []}',
                                      '{"format": "dqn-atari-checkpoint", "files": {}, "config": [1]}'])
def test_a_manifest_of_another_shape_is_damaged_not_a_crash(tmp_path, manifest):
    store = CheckpointStore(tmp_path)
    store.save(1, fake_files, {})
    newest = store.save(2, fake_files, {})
    (newest / MANIFEST).write_text(manifest)
    assert store.latest().name == "step-000000000001"
    with pytest.raises(CheckpointError, match="incomplete or damaged"):
        read_manifest(newest)


def test_a_failed_save_leaves_earlier_checkpoints_untouched(tmp_path):
    store = CheckpointStore(tmp_path)
    good = store.save(5, fake_files, {})

    def exploding(folder):
        (folder / "a.bin").write_bytes(b"partial")
        raise OSError("disk full")

    with pytest.raises(CheckpointError, match="disk full"):
        store.save(6, exploding, {})
    assert store.latest() == good and json.loads((good / MANIFEST).read_text())["step"] == 5
    assert not list(tmp_path.glob(".step-*"))

    def refused(folder):  # what saving weights raises for an OSError of its own
        (folder / "a.bin").write_bytes(b"partial")
        raise UserError("cannot write weights")

    with pytest.raises(UserError, match="cannot write weights"):
        store.save(7, refused, {})
    assert store.latest() == good and not list(tmp_path.glob(".step-*"))


# ---------------------------------------------------------------------------------------------
# The loop


def test_a_periodic_checkpoint_waits_for_the_gradient_step_in_flight(tmp_path, monkeypatch):
    """With several game copies a later copy can start a gradient step after an earlier copy ended
    the episode that makes a checkpoint due; the checkpoint must not read the networks mid-step.
    Copy 0 plays 3-ball games (12 steps), copy 1 5-ball games (20), a step learns every agent step:
    copy 0's games end on rounds where copy 1 then starts a step."""
    from catch_env import CatchEnv

    import dqn_atari
    import training.build
    import training.config
    import training.loop
    import training.state

    config = dqn_atari.Config(
        env_id="Catch", steps=120, pre_steps=10, epsilon_steps=100, memory_size=500,
        memory_compression="none", train_every=1, checkpoint_every=1, save_every=1000, seed=0,
        precision="float32", threads=1, out=str(tmp_path), envs=2)
    training.build.setup_backend(config)
    agent, memory = training.build.make_agent(config, num_actions=3), training.build.make_memory(config)
    drawn, learned = [], []
    sample, learn = memory.sample, agent.learn

    def counted_sample(*args):
        drawn.append(1)
        return sample(*args)

    def slow_learn(batch):  # a step long enough that a checkpoint that does not wait meets it
        time.sleep(0.01)
        try:
            return learn(batch)
        finally:
            learned.append(1)

    monkeypatch.setattr(memory, "sample", counted_sample)
    monkeypatch.setattr(agent, "learn", slow_learn)
    written = []
    monkeypatch.setattr(training.loop, "write_checkpoint", lambda store, config, agent, memory, envs, progress, game:
                        written.append((progress.step, len(drawn) - len(learned))))
    training.loop.run_training(config, [CatchEnv(3), CatchEnv(5)], agent, memory,
                          training.config.RunFiles.for_env(tmp_path, "Catch"), game="catch", checkpoints=object())
    assert len(written) >= 6 and written[-1][0] == 120 and len(learned) > 50
    assert all(pending == 0 for _, pending in written), f"(step, gradient steps in flight): {written}"


def test_an_evaluation_cut_short_by_a_stop_is_played_again_first_when_the_run_goes_on(tmp_path, monkeypatch):
    from catch_env import CatchEnv

    import dqn_atari
    import training.build
    import training.config
    import training.loop
    import training.state

    config = dqn_atari.Config(
        env_id="Catch", steps=60, pre_steps=10, epsilon_steps=50, memory_size=500, memory_compression="none",
        save_every=1000, seed=0, precision="float32", threads=1, out=str(tmp_path))
    training.build.setup_backend(config)
    agent, memory, env = training.build.make_agent(config, num_actions=3), training.build.make_memory(config), CatchEnv(3)
    files = training.config.RunFiles.for_env(tmp_path, "Catch")
    stops = []

    class RecordedStop(training.loop.StopRequest):
        def __enter__(self):
            stops.append(self)
            return super().__enter__()

    class Evaluations:
        calls = []

        def due(self, step):
            return step % 20 == 0

        def run(self, step, agent, stop, tensorboard=None):
            if (step, False) not in self.calls and step == 40:
                stops[-1].requested = True  # Ctrl-C during the evaluation of step 40
            self.calls.append((step, not stop()))
            return not stop()

    monkeypatch.setattr(training.loop, "StopRequest", RecordedStop)
    progress = training.state.Progress.start(config, [env], [memory])
    training.loop.run_training(config, env, agent, memory, files, game="catch", progress=progress,
                          evaluation=Evaluations())
    assert (progress.step, progress.pending_evaluation) == (40, 40)
    training.loop.run_training(config, env, agent, memory, files, game="catch", progress=progress,
                          evaluation=Evaluations())
    assert Evaluations.calls == [(20, True), (40, False), (40, True), (60, True)]
    assert (progress.step, progress.pending_evaluation) == (60, None)


# ---------------------------------------------------------------------------------------------
# The real command line


def completed_run(tmp_path_factory, name, *args):
    out = tmp_path_factory.mktemp(name)
    result = run_cli(*RUN, *args, "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """1,600 steps of Pong in one go (the learner in its own thread, the default)."""
    return completed_run(tmp_path_factory, "straight", "-pre", 600, "--steps", 1600)


def assert_same_run(a, b):
    assert log_without_wall_time(a / "Pong-v0_log.txt") == log_without_wall_time(b / "Pong-v0_log.txt")
    for x, y in zip(weights(a / "Pong-v0_weights.h5"), weights(b / "Pong-v0_weights.h5"), strict=True):
        assert np.array_equal(x, y)


def test_the_learner_thread_changes_nothing_but_the_speed(straight, tmp_path):
    main = run_cli(*RUN, "-pre", 600, "--steps", 1600, "--out", tmp_path, "--learner", "main")
    assert main.returncode == 0, main.stderr[-2000:]
    assert_same_run(straight, tmp_path)
    assert len(log_without_wall_time(tmp_path / "Pong-v0_log.txt")) >= 2


def test_resume_after_half_the_steps_gives_the_same_weights_and_log(straight, tmp_path):
    split = tmp_path / "split"
    first = run_cli(*RUN, "-pre", 600, "--steps", 800, "--out", split)
    assert first.returncode == 0, first.stderr[-2000:]
    second = run_cli(*RUN, "-pre", 600, "--steps", 1600, "--out", split, "--resume")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resuming Pong-v0 from step-000000000800: step 800" in second.stdout
    assert_same_run(straight, split)


def test_kill_9_during_a_checkpoint_write_then_resume_from_the_previous_one(tmp_path):
    command, env = cli(*RUN, "-pre", 5000, "--steps", 5000, "--checkpoint-every", 1, "--out", tmp_path,
                       env_extra={PAUSE_BEFORE_MANIFEST: "2"})
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pending = 0
    deadline = time.monotonic() + 120
    while pending < 2 and time.monotonic() < deadline:
        line = process.stderr.readline()
        pending += "manifest pending" in line
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert pending == 2, "the run should have reached its second checkpoint"

    folder = tmp_path / "Pong-v0_checkpoints"
    assert list(folder.glob(".step-*.partial")), "the kill hit the second save before its manifest"
    (first_step,) = checkpoint_steps(tmp_path)
    log_rows = log_without_wall_time(tmp_path / "Pong-v0_log.txt")
    assert len(log_rows) == 3, "header, episode 1, episode 2 (logged before its checkpoint)"

    resumed = run_cli(*RUN, "-pre", 5000, "--steps", first_step + 10, "--out", tmp_path, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"step {first_step:,}, episode 1; dropped 1 log rows" in resumed.stdout
    assert not list(folder.glob(".step-*.partial"))
    assert log_without_wall_time(tmp_path / "Pong-v0_log.txt") == log_rows[:2]
    assert checkpoint_steps(tmp_path) == [first_step, first_step + 10]


def test_sigterm_writes_a_checkpoint_and_exits_cleanly(tmp_path):
    command, env = cli(*RUN, "-pre", 100, "--steps", 100_000, "--out", tmp_path)
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().startswith("training Pong-v0")
    time.sleep(8)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-2000:]
    assert "continue with --resume" in out
    (step,) = checkpoint_steps(tmp_path)
    assert 0 < step < 100_000
    assert read_manifest(CheckpointStore(tmp_path / "Pong-v0_checkpoints").latest())["step"] == step


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    return completed_run(tmp_path_factory, "finished", "-pre", 100, "--steps", 150)


def assert_refused(result, fragment):
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert fragment in result.stderr


def test_resume_refuses_other_games_configurations_and_missing_checkpoints(finished_run, tmp_path):
    assert_refused(run_cli("--resume", "--out", tmp_path / "typo"), "no complete checkpoint of Pong-v0")
    assert not (tmp_path / "typo").exists()
    assert_refused(run_cli(*RUN, "--resume", "--out", finished_run, "--lr", "0.001"),
                   "made with --lr 0.003, but this command runs with --lr 0.001")
    assert_refused(run_cli("-env", "Breakout-v0", "--resume", "--out", finished_run),
                   "no complete checkpoint of Breakout-v0")
    assert_refused(run_cli(*RUN, "--steps", 10, "--out", finished_run), "--resume")


def test_a_damaged_checkpoint_is_refused_and_left_as_it_is(finished_run):
    newest = CheckpointStore(finished_run / "Pong-v0_checkpoints").latest()
    progress = newest / "progress.pkl"
    damaged = bytes(len(progress.read_bytes()))
    progress.write_bytes(damaged)
    log_before = (finished_run / "Pong-v0_log.txt").read_bytes()
    assert_refused(run_cli(*RUN, "--resume", "--steps", 300, "--out", finished_run), "cannot be restored")
    assert progress.read_bytes() == damaged
    assert (finished_run / "Pong-v0_log.txt").read_bytes() == log_before


def test_saving_a_step_that_is_already_complete_keeps_the_saved_one(tmp_path):
    store = CheckpointStore(tmp_path)
    first = store.save(5, fake_files, {})

    def must_not_run(folder):
        raise AssertionError("the same step was written twice")

    assert store.save(5, must_not_run, {}) == first and read_manifest(first)["step"] == 5


def test_a_deletion_cut_short_by_a_crash_is_finished_by_a_later_save(tmp_path):
    store = CheckpointStore(tmp_path, keep=2)
    for step in (1, 2):
        store.save(step, fake_files, {})
    half_deleted = tmp_path / "step-000000000001"
    (half_deleted / MANIFEST).unlink()  # a crash inside its rmtree: no longer complete, never a .partial
    store.save(3, fake_files, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000000000002", "step-000000000003"]


def test_an_unwritable_checkpoint_folder_is_one_clear_error(tmp_path):
    blocker = tmp_path / "Pong-v0_checkpoints"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(CheckpointError, match="cannot write a checkpoint"):
        CheckpointStore(blocker).save(1, fake_files, {})
    assert blocker.read_text() == "a file where the folder should be"


def test_a_checkpoint_without_its_memory_refills_it_before_learning_again(tmp_path):
    import pickle

    first = run_cli(*RUN, "-pre", 100, "--steps", 150, "--no-save-memory", "--out", tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    store = CheckpointStore(tmp_path / "Pong-v0_checkpoints")
    assert not (store.latest() / "memory.npz").exists()
    resumed = run_cli(*RUN, "-pre", 100, "--steps", 200, "--out", tmp_path, "--resume", "--save-memory")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    progress = pickle.loads((store.latest() / "progress.pkl").read_bytes())
    assert progress["step"] == 200 and progress["learning_starts"] == 150 + 100
    assert (store.latest() / "memory.npz").exists(), "--save-memory on --resume puts the memory back in"
