"""The run log and evaluation log: what the trainer writes is what the visualizer reads, even after a crash."""
import subprocess
import sys
import warnings

import numpy as np
import pytest

from common import errors, runlog
from common.runlog import EpisodeRecord, EvalRecord, LogFormatError

HEADER = "step,episode,score,clipped_return,length,epsilon,wall_time,loss,mean_q"


def episode(number, step=None, loss=None, mean_q=None):
    return EpisodeRecord(
        step=step if step is not None else 100 * number, episode=number, score=-21.0 + number,
        clipped_return=-21.0 + number, length=100, epsilon=1.0 - 0.01 * number, wall_time=1.5 * number,
        loss=loss, mean_q=mean_q,
    )


def write_text(path, text):
    path.write_text(text)
    return path


def write_episodes(path, records):
    with runlog.RunLogWriter(path) as writer:
        for record in records:
            writer.append(record)
    return path


def test_column_names_are_the_contract():
    assert runlog.LOG_COLUMNS == (
        "step", "episode", "score", "clipped_return", "length", "epsilon", "wall_time", "loss", "mean_q")
    assert runlog.EVAL_COLUMNS == (
        "step", "episodes", "mean_score", "std_score", "min_score", "max_score", "human_normalized")


def test_log_format_error_is_a_user_error():
    assert issubclass(LogFormatError, errors.UserError)
    assert issubclass(runlog.EmptyLogError, LogFormatError)


def test_records_round_trip_exactly_including_missing_loss(tmp_path):
    records = [episode(1), episode(2, loss=0.1 / 3, mean_q=-0.123456789012345), episode(3, loss=1e-9, mean_q=7.0)]
    path = write_episodes(tmp_path / "Pong-v0_log.txt", records)
    assert runlog.read_log(path) == records
    assert path.read_text().splitlines()[0] == HEADER
    assert path.read_text().splitlines()[1] == "100,1,-20.0,-20.0,100,0.99,1.5,,"


def test_numpy_scalars_are_written_as_plain_numbers(tmp_path):
    record = EpisodeRecord(step=np.int64(5), episode=np.int32(1), score=np.float32(2.5), clipped_return=1.0,
                           length=np.int64(5), epsilon=np.float64(0.5), wall_time=0.25, loss=np.float32(0.5),
                           mean_q=None)
    path = write_episodes(tmp_path / "log.txt", [record])
    assert path.read_text().splitlines()[1] == "5,1,2.5,1.0,5,0.5,0.25,0.5,"


def test_a_float_in_an_integer_column_is_refused_when_written(tmp_path):
    with runlog.RunLogWriter(tmp_path / "log.txt") as writer, pytest.raises(TypeError):
        writer.append(EpisodeRecord(step=10.0, episode=1, score=0, clipped_return=0, length=10, epsilon=1,
                                    wall_time=0))


def test_writer_refuses_another_record_type(tmp_path):
    with runlog.RunLogWriter(tmp_path / "log.txt") as writer, pytest.raises(TypeError):
        writer.append(EvalRecord(step=1, episodes=1, mean_score=0, std_score=0, min_score=0, max_score=0))


def test_each_row_is_on_disk_as_soon_as_it_is_appended(tmp_path):
    path = tmp_path / "log.txt"
    with runlog.RunLogWriter(path) as writer:
        writer.append(episode(1))
        assert runlog.read_log(path) == [episode(1)]
        writer.append(episode(2))
        assert runlog.read_log(path) == [episode(1), episode(2)]


def test_a_row_that_cannot_be_written_is_one_user_error(tmp_path, monkeypatch):
    import errno
    import os

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with runlog.RunLogWriter(tmp_path / "log.txt") as writer:
        monkeypatch.setattr(runlog.os, "fsync", full_disk)
        with pytest.raises(errors.UserError, match=r"cannot write to .*log.txt: No space left on device"):
            writer.append(episode(1))


def test_reopening_appends_without_a_second_header(tmp_path):
    path = write_episodes(tmp_path / "log.txt", [episode(1)])
    write_episodes(path, [episode(2)])
    assert runlog.read_log(path) == [episode(1), episode(2)]
    assert path.read_text().count("step,") == 1


def test_an_existing_empty_file_gets_the_header(tmp_path):
    path = write_episodes(write_text(tmp_path / "log.txt", ""), [episode(1)])
    assert runlog.read_log(path) == [episode(1)]


def test_a_header_torn_while_being_written_is_rewritten(tmp_path):
    path = write_episodes(write_text(tmp_path / "log.txt", HEADER[:11]), [episode(1)])
    assert runlog.read_log(path) == [episode(1)]


def test_writer_refuses_a_file_with_another_header(tmp_path):
    path = write_text(tmp_path / "notes.txt", "name,age\nbob,3\n")
    with pytest.raises(LogFormatError, match="expected the header"):
        runlog.RunLogWriter(path)
    assert path.read_text() == "name,age\nbob,3\n"


def test_writer_refuses_an_evaluation_log(tmp_path):
    with runlog.EvalLogWriter(tmp_path / "Pong-v0_eval.txt"):
        pass
    with pytest.raises(LogFormatError):
        runlog.RunLogWriter(tmp_path / "Pong-v0_eval.txt")


def test_writer_cuts_off_a_torn_last_line_before_appending(tmp_path):
    path = write_episodes(tmp_path / "log.txt", [episode(1)])
    with open(path, "a") as file:
        file.write("200,2,-19.0,-1")
    with pytest.warns(UserWarning, match="torn last line"):
        write_episodes(path, [episode(2)])
    assert runlog.read_log(path) == [episode(1), episode(2)]


def test_reader_skips_a_torn_last_line_with_a_warning(tmp_path):
    path = write_episodes(tmp_path / "log.txt", [episode(1), episode(2)])
    with open(path, "a") as file:
        file.write("300,3,-18.0,-18.0,10")
    with pytest.warns(UserWarning, match="line 4: skipped a torn last line"):
        assert runlog.read_log(path) == [episode(1), episode(2)]


def test_a_complete_last_row_without_newline_is_kept(tmp_path):
    path = write_episodes(tmp_path / "log.txt", [episode(1), episode(2)])
    write_text(path, path.read_text().rstrip("\n"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert runlog.read_log(path) == [episode(1), episode(2)]


def test_reader_accepts_windows_line_endings(tmp_path):
    path = write_episodes(tmp_path / "log.txt", [episode(1), episode(2)])
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert runlog.read_log(path) == [episode(1), episode(2)]


@pytest.mark.parametrize("content, message", [
    ("", "the file is empty"),
    (HEADER + "\n", "header but no rows"),
    ("step,episode,score\n1,1,0\n", "line 1 is 'step,episode,score', expected the header"),
    (HEADER + "\n100,1,-20.0,-20.0,100,0.99,1.5,,\n200,2,oops,-20.0,100,0.98,3.0,,\n300,3,1,1,1,1,1,,\n",
     "line 3: column 'score': 'oops' is not a number"),
    (HEADER + "\n100,1,-20.0,-20.0,100,0.99\n200,2,-20.0,-20.0,100,0.98,3.0,,\n",
     "line 2: expected 9 comma-separated fields, found 6"),
    (HEADER + "\n100.5,1,-20.0,-20.0,100,0.99,1.5,,\n", "line 2: column 'step': '100.5' is not a whole number"),
    (HEADER + "\n100,1,-20.0,-20.0,100,0.99,1.5,,\n200,2,-20.0,-20.0,100\n",
     "line 3: expected 9 comma-separated fields, found 5"),
    (HEADER + "\n100,1,-20.0,-20.0,100,0.99,1.5,,\n\n", "line 3: expected 9"),
    (HEADER + "\n100,1,-20.0,-20.0,100,0.99,1.5,,\n0,2,-20.0,-20.0,100,0.99,1.5,,\n300,3,1,1,1,1,1,,\n",
     "line 3: column 'step': 0 is not a positive agent step"),
])
def test_reader_names_what_is_wrong_in_one_line(tmp_path, content, message):
    path = write_text(tmp_path / "log.txt", content)
    with pytest.raises(LogFormatError) as raised:
        runlog.read_log(path)
    assert message in str(raised.value)
    assert str(path) in str(raised.value)
    assert "\n" not in str(raised.value)


def test_header_only_and_empty_logs_raise_empty_log_error(tmp_path):
    for content in ("", HEADER + "\n"):
        with pytest.raises(runlog.EmptyLogError):
            runlog.read_log(write_text(tmp_path / "log.txt", content))


def test_missing_and_binary_files_are_user_errors(tmp_path):
    with pytest.raises(LogFormatError, match="no such file"):
        runlog.read_log(tmp_path / "absent_log.txt")
    weights = tmp_path / "Pong-v0_weights.h5"
    weights.write_bytes(b"\x89HDF\r\n\x1a\n\xff")
    with pytest.raises(LogFormatError, match="not a text log"):
        runlog.read_log(weights)
    with pytest.raises(LogFormatError, match="cannot read"):
        runlog.read_log(tmp_path)


def test_truncate_keeps_rows_up_to_the_step_and_reports_the_rest(tmp_path):
    records = [episode(number) for number in range(1, 6)]
    path = write_episodes(tmp_path / "log.txt", records)
    assert runlog.truncate_after_step(path, 300) == 2
    assert runlog.read_log(path) == records[:3]
    assert runlog.truncate_after_step(path, 300) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["log.txt"]


def test_truncate_drops_a_torn_line_and_appending_continues_cleanly(tmp_path):
    path = write_episodes(tmp_path / "log.txt", [episode(1), episode(2)])
    with open(path, "a") as file:
        file.write("300,3,-1")
    with pytest.warns(UserWarning, match="torn"):
        assert runlog.truncate_after_step(path, 150) == 1
    write_episodes(path, [episode(2, step=250)])
    assert runlog.read_log(path) == [episode(1), episode(2, step=250)]


def test_truncate_to_before_the_first_episode_leaves_the_header(tmp_path):
    path = write_episodes(tmp_path / "log.txt", [episode(1)])
    assert runlog.truncate_after_step(path, 0) == 1
    assert path.read_text() == HEADER + "\n"
    assert runlog.truncate_after_step(path, 0) == 0


@pytest.mark.parametrize("cut", [0, 1, 17, len(",".join(runlog.EVAL_COLUMNS))])
def test_a_header_cut_short_by_a_kill_truncates_to_no_rows_and_the_writer_goes_on(tmp_path, cut):
    path = tmp_path / "Pong-v0_eval.txt"
    path.write_text(",".join(runlog.EVAL_COLUMNS)[:cut])
    assert runlog.truncate_eval_after_step(path, 100_000) == 0
    record = EvalRecord(step=200_000, episodes=10, mean_score=-20.0, std_score=1.0, min_score=-21.0,
                        max_score=-19.0)
    with runlog.EvalLogWriter(path) as writer:
        writer.append(record)
    assert runlog.read_eval_log(path) == [record]


def test_truncate_of_a_missing_log_is_a_user_error(tmp_path):
    with pytest.raises(LogFormatError, match="no such file"):
        runlog.truncate_after_step(tmp_path / "absent_log.txt", 10)


def test_evaluation_log_round_trips_and_truncates(tmp_path):
    evaluations = [
        EvalRecord(step=10_000, episodes=10, mean_score=-20.5, std_score=0.5, min_score=-21.0, max_score=-20.0,
                   human_normalized=1.25),
        EvalRecord(step=20_000, episodes=10, mean_score=-15.0, std_score=2.0, min_score=-19.0, max_score=-12.0),
    ]
    path = tmp_path / "Pong-v0_eval.txt"
    with runlog.EvalLogWriter(path) as writer:
        for evaluation in evaluations:
            writer.append(evaluation)
    assert path.read_text().splitlines()[0] == ",".join(runlog.EVAL_COLUMNS)
    assert runlog.read_eval_log(path) == evaluations
    assert runlog.truncate_eval_after_step(path, 15_000) == 1
    assert runlog.read_eval_log(path) == evaluations[:1]


def test_a_run_log_is_not_read_as_an_evaluation_log(tmp_path):
    path = write_episodes(tmp_path / "Pong-v0_log.txt", [episode(1)])
    with pytest.raises(LogFormatError, match="expected the header 'step,episodes,mean_score"):
        runlog.read_eval_log(path)


def test_importing_runlog_loads_neither_keras_nor_tensorflow():
    code = ("import sys; from common import runlog; heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('keras', 'tensorflow', 'matplotlib')); print(heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=runlog.Path(runlog.__file__).parent.parent)
    assert result.stdout.strip() == "[]"
