"""``--tensorboard DIR``: the events a run writes, read back, and a resumed run's, each step once."""
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from common.errors import SettingError
from common.runlog import EpisodeRecord, EvalRecord, read_eval_log, read_log
from training.tensorboard import TensorBoardLog, cut_after_step, event_files, read_scalars

REPO_ROOT = Path(__file__).resolve().parent.parent
# Breakout, not Pong: a random game of Breakout ends within about 220 steps, Pong's last 900.
TINY = ["-env", "Breakout-v0", "-pre", "100", "--memory-size", "1000", "--memory-compression", "none",
        "--batch-size", "8", "--seed", "0", "--threads", "1"]
EPISODE_TAGS = {"charts/episodic_return": "score", "charts/clipped_return": "clipped_return",
                "charts/episodic_length": "length", "charts/epsilon": "epsilon"}
LEARNING_TAGS = {"losses/td_loss": "loss", "losses/q_values": "mean_q"}
EVAL_TAGS = {"eval/mean_score": "mean_score", "eval/std_score": "std_score", "eval/human_normalized": "human_normalized"}


def episode(step, loss=None):
    return EpisodeRecord(step=step, episode=step // 10, score=-step, clipped_return=-1.0, length=10, epsilon=0.5,
                         wall_time=1.0, loss=loss, mean_q=None if loss is None else 2 * loss)


def evaluation_at(step, human_normalized):
    record = EvalRecord(step=step, episodes=10, mean_score=1.5, std_score=0.5, min_score=1.0, max_score=2.0,
                        human_normalized=human_normalized)
    return types.SimpleNamespace(as_record=lambda at: record)


def steps_of(points):
    return [step for step, _ in points]


def test_without_a_folder_nothing_is_written_and_tensorboardx_is_not_imported(tmp_path):
    script = ("import sys, training.loop, training.tensorboard as t\n"
              "from common.runlog import EpisodeRecord\n"
              "with t.TensorBoardLog(None) as log:\n"
              "    log.episode(EpisodeRecord(1, 1, 0.0, 0.0, 1, 1.0, 0.1)); log.learning(1, 0.1, 0.2, 30.0); log.flush()\n"
              "assert 'tensorboardX' not in sys.modules\nprint('ok')\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)), timeout=60)
    assert result.stdout == "ok\n", result.stderr[-2000:]
    assert not list(tmp_path.iterdir())


def test_the_points_read_back_under_cleanrls_tags_at_their_steps(tmp_path):
    with TensorBoardLog(tmp_path / "tb") as log:
        log.episode(episode(10))  # before learning starts: no loss, no mean Q
        log.episode(episode(20, loss=0.25))
        log.evaluation(20, evaluation_at(20, human_normalized=0.125))
        log.evaluation(30, evaluation_at(30, human_normalized=None))  # a game without reference scores
    scalars = read_scalars(tmp_path / "tb")
    assert scalars["charts/episodic_return"] == [(10, -10.0), (20, -20.0)]
    assert scalars["charts/episodic_length"] == [(10, 10.0), (20, 10.0)]
    assert scalars["charts/epsilon"] == [(10, 0.5), (20, 0.5)]
    assert scalars["losses/td_loss"] == [(20, 0.25)] and scalars["losses/q_values"] == [(20, 0.5)]
    assert steps_of(scalars["charts/SPS"]) == [10, 20] and all(sps > 0 for _, sps in scalars["charts/SPS"])
    assert scalars["eval/mean_score"] == [(20, 1.5), (30, 1.5)] and scalars["eval/std_score"] == [(20, 0.5), (30, 0.5)]
    assert scalars["eval/human_normalized"] == [(20, 0.125)]


def test_tensorboard_itself_reads_a_resumed_runs_files_each_step_once(tmp_path):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    with TensorBoardLog(tmp_path) as log:
        for step in (10, 20, 30):
            log.episode(episode(step, loss=0.5))
    with TensorBoardLog(tmp_path, first_step=20, resumed=True) as log:
        log.episode(episode(30, loss=0.25))
    events = accumulator.EventAccumulator(str(tmp_path))
    events.Reload()
    assert [(point.step, point.value) for point in events.Scalars("losses/td_loss")] == [(10, 0.5), (20, 0.5), (30, 0.25)]


def test_a_resumed_sitting_cuts_the_folder_after_its_step_and_keeps_a_torn_files_whole_records(tmp_path):
    other_run = tmp_path / "other"  # a subfolder is another run: left alone
    with TensorBoardLog(other_run) as log:
        log.episode(episode(90))
    with TensorBoardLog(tmp_path) as log:
        for step in range(10, 101, 10):
            log.episode(episode(step, loss=0.1))
    [first] = event_files(tmp_path)
    first.write_bytes(first.read_bytes() + b"\x2a\x00\x00")  # a record torn by a kill
    with TensorBoardLog(tmp_path, first_step=50, resumed=True) as log:
        for step in range(60, 111, 10):
            log.episode(episode(step, loss=0.1))
    assert len(event_files(tmp_path)) == 2
    for tag in (*EPISODE_TAGS, *LEARNING_TAGS, "charts/SPS"):
        assert steps_of(read_scalars(tmp_path)[tag]) == list(range(10, 111, 10)), tag
    assert steps_of(read_scalars(other_run)["charts/episodic_return"]) == [90]
    assert cut_after_step(tmp_path, 200) == 0  # nothing after the last step, no torn record: untouched


def test_a_resumed_sitting_refuses_a_folder_that_holds_another_runs_events_and_touches_none(tmp_path):
    with TensorBoardLog(tmp_path / "ours") as ours:
        for step in (10, 20, 30):
            ours.episode(episode(step, loss=0.5))
    with TensorBoardLog(tmp_path / "theirs") as theirs:
        theirs.episode(episode(40))
    # Another process's name (this one's, written in the same second, would be the same as ours).
    [their_file] = [path.rename(path.with_name("events.out.tfevents.1764000000.elsewhere.4242"))
                    for path in event_files(tmp_path / "theirs")]
    shutil.copy(event_files(tmp_path / "ours")[0], tmp_path / "theirs")  # our file beside theirs
    before = {path: path.read_bytes() for path in event_files(tmp_path / "theirs")}
    with pytest.raises(SettingError) as refused:
        TensorBoardLog(tmp_path / "theirs", first_step=20, resumed=True, own_files=ours.files)
    assert refused.value.worded(lambda field: f"--{field}") == (
        f"--tensorboard {tmp_path / 'theirs'} holds TensorBoard events of another run ({their_file.name}): "
        f"give this run's folder, or an empty one")
    assert {path: path.read_bytes() for path in event_files(tmp_path / "theirs")} == before
    with TensorBoardLog(tmp_path / "ours", first_step=20, resumed=True, own_files=ours.files) as resumed:
        resumed.episode(episode(30, loss=0.25))
    assert resumed.files == [*ours.files, resumed.path.name]
    assert read_scalars(tmp_path / "ours")["losses/td_loss"] == [(10, 0.5), (20, 0.5), (30, 0.25)]


def test_a_new_run_refuses_a_folder_that_holds_events(tmp_path):
    TensorBoardLog(tmp_path).close()
    with pytest.raises(SettingError) as refused:
        TensorBoardLog(tmp_path)
    assert refused.value.worded(lambda field: f"--{field}").startswith(f"--tensorboard {tmp_path} already holds")
    TensorBoardLog(tmp_path / "next").close()  # a folder for the next run beside it


def test_the_command_line_refuses_it_in_one_line(tmp_path, capsys):
    import dqn_atari

    TensorBoardLog(tmp_path / "tb").close()
    assert dqn_atari.main([*TINY, "--steps", "10", "--out", str(tmp_path / "out"),
                           "--tensorboard", str(tmp_path / "tb")]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (f"dqn_atari.py: error: --tensorboard {tmp_path / 'tb'} already holds TensorBoard "
                                       f"events: choose an empty folder for each run (their parent shows them side "
                                       f"by side), or move those files away")
    assert not (tmp_path / "out" / "Breakout-v0_log.txt").exists()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """600 steps of Breakout with a checkpoint after every episode and an evaluation (of one game)
    every 300 steps: a few episodes, learning from step 100."""
    import dqn_atari
    import evaluation

    folder = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluation, "TRAINING_EVAL_EPISODES", 1)
        assert dqn_atari.main([*TINY, "--steps", "600", "--eval-every", "300", "--checkpoint-every", "1",
                               "--keep-checkpoints", "20", "--out", str(folder / "out"),
                               "--tensorboard", str(folder / "tb")]) == 0
    return folder


def assert_events_match_the_logs(out, tb):
    """Each of the run log's rows and evaluation log's rows once, with its values, and nothing else."""
    scalars = read_scalars(tb)
    episodes = read_log(out / "Breakout-v0_log.txt")
    for tag, column in EPISODE_TAGS.items():
        assert scalars[tag] == [(row.step, pytest.approx(getattr(row, column))) for row in episodes], tag
    learned = [row for row in episodes if row.loss is not None]
    for tag, column in LEARNING_TAGS.items():
        assert scalars[tag] == [(row.step, pytest.approx(getattr(row, column), rel=1e-6)) for row in learned], tag
    assert steps_of(scalars["charts/SPS"]) == [row.step for row in episodes]
    evaluations = read_eval_log(out / "Breakout-v0_eval.txt")
    for tag, column in EVAL_TAGS.items():
        assert scalars[tag] == [(row.step, pytest.approx(getattr(row, column))) for row in evaluations], tag
    return episodes, evaluations


def test_a_run_writes_each_episode_and_evaluation_at_its_agent_step(run):
    episodes, evaluations = assert_events_match_the_logs(run / "out", run / "tb")
    assert len(episodes) >= 2 and any(row.loss is not None for row in episodes)
    assert [row.step for row in evaluations] == [300, 600]
    assert len(event_files(run / "tb")) == 1


def test_a_run_resumed_from_an_earlier_checkpoint_writes_each_step_once(run, tmp_path):
    """As after a kill past the first checkpoint: the events after it are cut, then written again."""
    import dqn_atari
    import evaluation

    out, tb = tmp_path / "out", tmp_path / "tb"
    shutil.copytree(run / "out", out)
    shutil.copytree(run / "tb", tb)
    first, *later = sorted((out / "Breakout-v0_checkpoints").glob("step-*"))
    assert later and int(first.name[5:]) < 300, "the checkpoint resumed from precedes an evaluation"
    for checkpoint in later:
        shutil.rmtree(checkpoint)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluation, "TRAINING_EVAL_EPISODES", 1)
        assert dqn_atari.main(["--resume", "-env", "Breakout-v0", "--out", str(out), "--tensorboard", str(tb)]) == 0
    assert len(event_files(tb)) == 2
    episodes, evaluations = assert_events_match_the_logs(out, tb)
    assert [row.step for row in episodes] == [row.step for row in read_log(run / "out" / "Breakout-v0_log.txt")]
    assert [row.step for row in evaluations] == [300, 600]


def test_a_resume_into_another_runs_folder_is_refused_before_it_cuts_anything(run, tmp_path, capsys):
    """``--tensorboard`` may change on --resume, but not to a folder of another run's events."""
    import dqn_atari

    out, theirs = tmp_path / "out", tmp_path / "theirs"
    shutil.copytree(run / "out", out)
    first, *later = sorted((out / "Breakout-v0_checkpoints").glob("step-*"))
    for checkpoint in later:
        shutil.rmtree(checkpoint)  # the log holds rows after the checkpoint that a resume would cut
    with TensorBoardLog(theirs) as log:
        log.episode(episode(5))
    [their_file] = [path.rename(path.with_name("events.out.tfevents.1764000000.elsewhere.4242"))
                    for path in event_files(theirs)]
    before = {path: path.read_bytes() for path in [*event_files(theirs), out / "Breakout-v0_log.txt",
                                                   out / "Breakout-v0_eval.txt"]}
    assert dqn_atari.main(["--resume", "-env", "Breakout-v0", "--out", str(out), "--tensorboard", str(theirs)]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"dqn_atari.py: error: --tensorboard {theirs} holds TensorBoard events of another run ({their_file.name}): "
        f"give this run's folder, or an empty one")
    assert {path: path.read_bytes() for path in before} == before


def test_a_refused_continue_leaves_the_earlier_run_where_it_was(run, tmp_path, capsys):
    import dqn_atari

    out = tmp_path / "out"
    shutil.copytree(run / "out", out)
    before = sorted(path.name for path in out.iterdir())
    not_a_folder = tmp_path / "tb"
    not_a_folder.write_text("a file where the folder should be\n")
    assert dqn_atari.main([*TINY, "--steps", "10", "--out", str(out), "--continue", str(out / "Breakout-v0_weights.h5"),
                           "--tensorboard", str(not_a_folder)]) == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith(f"dqn_atari.py: error: cannot write to --tensorboard "
                                                               f"folder {not_a_folder}: ")
    assert sorted(path.name for path in out.iterdir()) == before


JAX_RUN = """
import sys
import dqn_atari
sys.exit(dqn_atari.main(sys.argv[1:]))
"""


def test_the_jax_backend_writes_the_same_tags(tmp_path):
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-c", JAX_RUN, *TINY, "--steps", "400", "--out", str(tmp_path / "out"),
                             "--tensorboard", str(tmp_path / "tb")], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    scalars = read_scalars(tmp_path / "tb")
    episodes = read_log(tmp_path / "out" / "Breakout-v0_log.txt")
    assert any(row.loss is not None for row in episodes)
    assert scalars["charts/episodic_return"] == [(row.step, row.score) for row in episodes]
    assert steps_of(scalars["losses/td_loss"]) == [row.step for row in episodes if row.loss is not None]
