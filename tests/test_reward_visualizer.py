"""reward_visualizer.py: readable graphs from run logs, and one clear line for every bad input."""
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import matplotlib.colors
import matplotlib.pyplot as pyplot
import numpy as np
import pytest

import reward_visualizer
from common import runlog
from reward_visualizer import main, trailing_mean

FIXTURES = Path(__file__).parent / "fixtures"
PONG_LOG = FIXTURES / "Pong-v0_log.txt"
TORN_LOG = FIXTURES / "torn" / "Breakout-v0_log.txt"
HEADER = ",".join(runlog.LOG_COLUMNS)
GRAPHS = ("score_per_episode", "score_per_step", "score_per_greedy_share", "loss_and_mean_q")
PNG_SIZE = (1000, 500)


def png_size(path):
    """(width, height) from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def assert_graphs_written(stdout, folder, prefix, window, graphs=GRAPHS):
    expected = [folder / f"{prefix}_{graph}_avg{window}.png" for graph in graphs]
    assert stdout.splitlines() == [str(path) for path in expected]
    for path in expected:
        assert png_size(path) == PNG_SIZE
        assert path.stat().st_size > 10_000


def write_trainer_like_log(path, episodes=300, seed=0):
    """A Pong run as the trainer logs it: no loss before learning starts, epsilon annealed to 0.1."""
    rng = np.random.default_rng(seed)
    step = 0
    with runlog.RunLogWriter(path) as writer:
        for number in range(1, episodes + 1):
            length = int(rng.integers(760, 2200))
            step += length
            progress = step / (episodes * 1500)
            score = float(np.clip(round(-21 + 30 * progress ** 2 + rng.normal(0, 2)), -21, 21))
            learning = step > 50_000
            writer.append(runlog.EpisodeRecord(
                step=step, episode=number, score=score, clipped_return=score, length=length,
                epsilon=max(0.1, 1 - 0.9 * step / 250_000), wall_time=step / 400,
                loss=float(0.02 * rng.lognormal(0, 0.3)) if learning else None,
                mean_q=float(-0.3 + progress) if learning else None))
    return path


@pytest.fixture(autouse=True)
def no_figures_left_open():
    yield
    assert pyplot.get_fignums() == []


def test_trailing_mean_by_hand():
    np.testing.assert_allclose(trailing_mean([1, 2, 3, 4, 5], 2), [1, 1.5, 2.5, 3.5, 4.5])
    np.testing.assert_allclose(trailing_mean([-21, -19, -20, -16], 3), [-21, -20, -20, -55 / 3])
    np.testing.assert_allclose(trailing_mean([4, 8, 6], 1), [4, 8, 6])


def test_trailing_mean_with_a_window_longer_than_the_run_averages_what_there_is():
    np.testing.assert_allclose(trailing_mean([2, 4, 9], 50), [2, 3, 5])
    np.testing.assert_allclose(trailing_mean([2, 4, 9], 2**63), [2, 3, 5])  # past a C long
    assert trailing_mean([], 5).shape == (0,)


def test_trailing_mean_nan_spoils_only_the_windows_that_hold_it():
    means = trailing_mean([1, np.nan, 3, 5, 7], 2)
    assert np.isnan(means[1:3]).all()
    np.testing.assert_allclose(means[[0, 3, 4]], [1, 4, 6])


@pytest.mark.parametrize("path, game", [
    ("Pong-v0_log.txt", "Pong-v0"),
    ("runs/ALE_Pong-v5_log.txt", "ALE_Pong-v5"),
    ("old/breakout.csv", "breakout"),
    ("_log.txt", "_log"),
])
def test_game_name_comes_from_the_log_file_name(path, game):
    assert reward_visualizer.env_id_of_log(path) == game


def test_the_evaluation_log_is_looked_for_beside_the_run_log():
    assert reward_visualizer.eval_log_path(Path("runs/Pong-v0_log.txt")) == Path("runs/Pong-v0_eval.txt")
    aside = Path("runs/Pong-v0_log.before-20261126-121500.txt")  # as a run with --continue renames it
    assert reward_visualizer.eval_log_path(aside) == Path("runs/Pong-v0_eval.before-20261126-121500.txt")
    assert reward_visualizer.env_id_of_log(aside) == "Pong-v0"
    assert reward_visualizer.run_labels([aside, Path("runs/Pong-v0_log.txt")]) == [
        "Pong-v0.before-20261126-121500", "Pong-v0"]


def test_run_labels_tell_runs_apart():
    assert reward_visualizer.run_labels([Path("a/Pong-v0_log.txt"), Path("a/Breakout-v0_log.txt")]) == [
        "Pong-v0", "Breakout-v0"]
    assert reward_visualizer.run_labels([Path("a/Pong-v0_log.txt"), Path("b/Pong-v0_log.txt")]) == [
        "a/Pong-v0", "b/Pong-v0"]
    assert reward_visualizer.run_labels([PONG_LOG, PONG_LOG]) == ["Pong-v0 #1", "Pong-v0 #2"]


def test_cli_draws_the_fixture_log(tmp_path, capsys):
    assert main(["-f", str(PONG_LOG), "-a", "5", "-o", str(tmp_path / "graphs")]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert_graphs_written(captured.out, tmp_path / "graphs", "Pong-v0", 5)


def test_output_goes_beside_the_log_by_default(tmp_path, capsys):
    log = Path(shutil.copy(PONG_LOG, tmp_path))
    assert main(["-f", str(log), "-a", "10"]) == 0
    assert_graphs_written(capsys.readouterr().out, tmp_path, "Pong-v0", 10)


def test_cli_draws_a_log_written_by_the_run_log_writer(tmp_path, capsys):
    log = write_trainer_like_log(tmp_path / "Pong-v0_log.txt")
    assert main(["-f", str(log), "-a", "50"]) == 0
    assert_graphs_written(capsys.readouterr().out, tmp_path, "Pong-v0", 50)


def test_titles_name_the_game_and_window_and_axes_have_units():
    runs = reward_visualizer.load_runs([PONG_LOG])
    figures = reward_visualizer.draw_graphs(runs, 7)
    try:
        for _, figure in figures:
            title = figure.get_suptitle() or figure.axes[0].get_title()
            assert "Pong-v0" in title and "last 7 episodes" in title
            for axes in figure.axes:
                assert axes.get_xlabel() in ("episode", "agent steps (actions chosen)") or "1 − ε" in axes.get_xlabel()
                assert "(" in axes.get_ylabel()
                assert axes.get_legend() is not None
    finally:
        for _, figure in figures:
            pyplot.close(figure)


def test_greedy_share_axis_reads_left_to_right():
    runs = reward_visualizer.load_runs([PONG_LOG])
    figure = reward_visualizer.plot_score_per_greedy_share(runs, 5)
    try:
        axes = figure.axes[0]
        epsilon = reward_visualizer.column(runs[0].episodes, "epsilon")
        np.testing.assert_allclose(axes.lines[0].get_xdata(), 1 - epsilon)
        assert not axes.xaxis_inverted()
        assert "share of greedy actions" in axes.get_xlabel()
    finally:
        pyplot.close(figure)


def test_a_window_longer_than_the_run_still_draws_the_mean_of_everything(tmp_path, capsys):
    runs = reward_visualizer.load_runs([PONG_LOG])
    figure = reward_visualizer.plot_score_per_episode(runs, 1000)
    try:
        scores = reward_visualizer.column(runs[0].episodes, "score")
        assert figure.axes[0].lines[0].get_ydata()[-1] == pytest.approx(scores.mean())
    finally:
        pyplot.close(figure)
    assert main(["-f", str(PONG_LOG), "-a", "1000", "-o", str(tmp_path)]) == 0
    assert_graphs_written(capsys.readouterr().out, tmp_path, "Pong-v0", 1000)


def test_evaluations_beside_the_log_are_drawn_with_error_bars():
    runs = reward_visualizer.load_runs([PONG_LOG])
    figure = reward_visualizer.plot_score_per_step(runs, 5)
    try:
        (container,) = figure.axes[0].containers
        line, _, _ = container.lines
        np.testing.assert_allclose(line.get_xdata(), [10_000, 20_000, 30_000])
        np.testing.assert_allclose(line.get_ydata(), [-20.6, -17.2, -12.9])
        # One legend entry for every run's evaluations: the markers take their run's colour.
        assert line.get_color() == figure.axes[0].lines[0].get_color()
        assert [text.get_text() for text in figure.axes[0].get_legend().get_texts()] == [
            "Pong-v0", "single episodes", "evaluations (mean ± std)"]
    finally:
        pyplot.close(figure)


def test_an_overlay_of_many_runs_gives_each_its_own_colour_and_a_legend_beside_the_graph(tmp_path):
    logs = []
    for number in range(12):
        (tmp_path / f"run{number}").mkdir()
        logs.append(write_trainer_like_log(tmp_path / f"run{number}" / "Pong-v0_log.txt", episodes=60, seed=number))
    runs = reward_visualizer.load_runs(logs)
    figures = dict(reward_visualizer.draw_graphs(runs, 10))
    try:
        axes = figures["score_per_step"].axes[0]
        colors = [matplotlib.colors.to_hex(line.get_color()) for line in axes.lines]
        assert len(colors) == len(set(colors)) == 12
        legend = axes.get_legend()
        assert [text.get_text() for text in legend.get_texts()] == [f"run{n}/Pong-v0" for n in range(12)] + [
            "single episodes"]
        figures["score_per_step"].canvas.draw()
        legend_box, axes_box = legend.get_window_extent(), axes.get_window_extent()
        assert legend_box.x0 >= axes_box.x1  # beside the curves, not over them
        loss_axes, q_axes = figures["loss_and_mean_q"].axes
        assert loss_axes.get_legend() is None and len(q_axes.get_legend().get_texts()) == 13
    finally:
        for figure in figures.values():
            pyplot.close(figure)


def test_a_header_only_evaluation_log_is_not_an_error(tmp_path, capsys):
    log = Path(shutil.copy(PONG_LOG, tmp_path))
    (tmp_path / "Pong-v0_eval.txt").write_text(",".join(runlog.EVAL_COLUMNS) + "\n")
    assert reward_visualizer.load_runs([log])[0].evaluations == ()
    assert main(["-f", str(log), "-a", "5"]) == 0


def test_several_logs_overlay_with_one_colour_and_legend_entry_each(tmp_path, capsys):
    (tmp_path / "dqn").mkdir()
    (tmp_path / "ddqn").mkdir()
    first = write_trainer_like_log(tmp_path / "dqn" / "Pong-v0_log.txt", episodes=60, seed=1)
    second = write_trainer_like_log(tmp_path / "ddqn" / "Pong-v0_log.txt", episodes=80, seed=2)
    runs = reward_visualizer.load_runs([first, second])
    figure = reward_visualizer.plot_score_per_episode(runs, 10)
    try:
        axes = figure.axes[0]
        assert [line.get_label() for line in axes.lines] == ["dqn/Pong-v0", "ddqn/Pong-v0"]
        assert axes.lines[0].get_color() != axes.lines[1].get_color()
        assert [text.get_text() for text in axes.get_legend().get_texts()] == [
            "dqn/Pong-v0", "ddqn/Pong-v0", "single episodes"]
    finally:
        pyplot.close(figure)
    assert main(["-f", str(first), str(second), "-a", "10", "-o", str(tmp_path / "out")]) == 0
    assert_graphs_written(capsys.readouterr().out, tmp_path / "out", "dqn-Pong-v0+ddqn-Pong-v0", 10)


def test_a_torn_last_line_is_skipped_with_a_warning(tmp_path, capsys):
    assert main(["-f", str(TORN_LOG), "-a", "3", "-o", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith(f"reward_visualizer.py: warning: {TORN_LOG}: line 10: skipped a torn last line")
    assert len(captured.err.splitlines()) == 1
    assert_graphs_written(captured.out, tmp_path, "Breakout-v0", 3)


BAD_LOGS = {
    "empty": "",
    "header_only": HEADER + "\n",
    "wrong_header": "episode,reward\n1,-21\n",
    "bad_row": HEADER + "\n1000,1,-21.0,-21.0,1000,0.99,2.0,,\n2000,2,-21.0,-21.0,oops,0.98,4.0,,\n"
               "3000,3,-21.0,-21.0,1000,0.97,6.0,,\n",
}


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    (BAD_LOGS["empty"], "the file is empty"),
    (BAD_LOGS["header_only"], "header but no rows"),
    (BAD_LOGS["wrong_header"], "line 1 is 'episode,reward'"),
    (BAD_LOGS["bad_row"], "line 3: column 'length': 'oops' is not a whole number"),
])
def test_a_bad_log_gives_one_line_and_exit_2(tmp_path, capsys, content, message):
    log = tmp_path / "Pong-v0_log.txt"
    if content is not None:
        log.write_text(content)
    assert main(["-f", str(log), "-a", "5"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"reward_visualizer.py: error: {log}: ")
    assert message in captured.err
    assert len(captured.err.splitlines()) == 1
    assert list(tmp_path.glob("*.png")) == []


def test_a_broken_evaluation_log_beside_the_run_log_is_a_warning_and_the_graphs_are_drawn(tmp_path, capsys):
    log = Path(shutil.copy(PONG_LOG, tmp_path))
    (tmp_path / "Pong-v0_eval.txt").write_text("mean\n1\n")
    assert main(["-f", str(log), "-a", "5"]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("reward_visualizer.py: warning: ")
    assert "Pong-v0_eval.txt: line 1 is 'mean'" in captured.err and "without these evaluations" in captured.err
    assert len(captured.err.splitlines()) == 1
    assert_graphs_written(captured.out, tmp_path, "Pong-v0", 5)


def test_an_output_folder_that_is_a_file_gives_exit_2(tmp_path, capsys):
    blocker = tmp_path / "graphs"
    blocker.write_text("")
    assert main(["-f", str(PONG_LOG), "-o", str(blocker)]) == 2
    assert capsys.readouterr().err.startswith(f"reward_visualizer.py: error: {blocker}: cannot use as the output")


@pytest.mark.parametrize("flag, value", [("-a", "0"), ("-a", "-3"), ("-a", "ten"),
                                         ("--table", "0"), ("--table", "-100"), ("--table", "1e5")])
def test_a_bad_window_gives_exit_2(capsys, flag, value):
    with pytest.raises(SystemExit) as raised:
        main(["-f", str(PONG_LOG), flag, value])
    assert raised.value.code == 2
    err = capsys.readouterr().err
    name = {"-a": "-a/--average", "--table": "--table"}[flag]
    assert err.startswith(f"reward_visualizer.py: error: argument {name}") and len(err.splitlines()) == 1


def test_show_without_a_display_says_so_and_still_writes_the_graphs(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["-f", str(PONG_LOG), "-a", "5", "-o", str(tmp_path), "--show"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "reward_visualizer.py: no display found ($DISPLAY and $WAYLAND_DISPLAY are unset); " \
                           "wrote the PNGs only\n"
    assert_graphs_written(captured.out, tmp_path, "Pong-v0", 5)


def run_cli_in_fresh_python(*args):
    code = ("import sys, reward_visualizer; code = reward_visualizer.main(sys.argv[1:]); "
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'keras', 'tensorflow'}); "
            "print('heavy modules:', heavy); sys.exit(code)")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60,
                          cwd=Path(reward_visualizer.__file__).parent)


def test_real_process_draws_without_loading_keras_or_tensorflow(tmp_path):
    result = run_cli_in_fresh_python("-f", str(PONG_LOG), "-a", "5", "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "heavy modules: []"
    assert len(list(tmp_path.glob("*.png"))) == 4


def test_real_process_exits_2_without_a_traceback(tmp_path):
    result = run_cli_in_fresh_python("-f", str(tmp_path / "missing_log.txt"))
    assert result.returncode == 2
    assert result.stderr == f"reward_visualizer.py: error: {tmp_path / 'missing_log.txt'}: no such file\n"


def test_a_failed_write_leaves_the_earlier_graph_whole(tmp_path, capsys, monkeypatch):
    import errno

    import matplotlib.figure

    assert main(["-f", str(PONG_LOG), "-a", "5", "-o", str(tmp_path)]) == 0
    earlier = {path: path.read_bytes() for path in tmp_path.iterdir()}
    capsys.readouterr()

    def disk_full(figure, path, **kwargs):
        Path(path).write_bytes(b"\x89PNG half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", disk_full)
    assert main(["-f", str(PONG_LOG), "-a", "5", "-o", str(tmp_path)]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert {path: path.read_bytes() for path in tmp_path.iterdir()} == earlier


def test_a_window_far_longer_than_the_run_costs_no_memory(tmp_path, capsys):
    assert main(["-f", str(PONG_LOG), "-a", str(10**12), "-o", str(tmp_path)]) == 0
    assert_graphs_written(capsys.readouterr().out, tmp_path, "Pong-v0", 10**12)


def test_name_sets_the_file_names_and_many_runs_fall_back_to_a_digest(tmp_path, capsys):
    logs = []
    for number in range(6):
        (tmp_path / f"a-long-run-name-{number}").mkdir()
        logs.append(write_trainer_like_log(tmp_path / f"a-long-run-name-{number}" / "Pong-v0_log.txt",
                                           episodes=60, seed=number))
    assert main(["-f", *map(str, logs[:2]), "-a", "5", "-o", str(tmp_path / "named"), "-n", "mine"]) == 0
    assert_graphs_written(capsys.readouterr().out, tmp_path / "named", "mine", 5)
    assert main(["-f", *map(str, logs), "-a", "5", "-o", str(tmp_path / "many")]) == 0
    (prefix,) = {Path(line).name.split("_")[0] for line in capsys.readouterr().out.splitlines()}
    assert re.fullmatch(r"runs-[0-9a-f]{8}", prefix)
    assert main(["-f", *map(str, logs[1:]), "-a", "5", "-o", str(tmp_path / "many")]) == 0
    (other,) = {Path(line).name.split("_")[0] for line in capsys.readouterr().out.splitlines()}
    assert other.startswith("runs-") and other != prefix, "another overlay does not overwrite the first"
    assert len(list((tmp_path / "many").glob("*.png"))) == 2 * len(GRAPHS)


@pytest.mark.parametrize("name", ["../up", "a/b", ".hidden", ""])
def test_a_name_that_is_not_a_plain_file_name_gives_exit_2(capsys, name):
    with pytest.raises(SystemExit) as raised:
        main(["-f", str(PONG_LOG), "-n", name])
    assert raised.value.code == 2
    assert capsys.readouterr().err.startswith("reward_visualizer.py: error: argument -n/--name")


def test_a_log_whose_file_name_is_not_utf8_is_drawn_with_a_replacement_character(tmp_path, capsys):
    log = tmp_path / os.fsdecode(b"Pong\xff_log.txt")
    shutil.copy(PONG_LOG, log)
    (run,) = reward_visualizer.load_runs([log])
    assert run.game == run.label == "Pong\N{REPLACEMENT CHARACTER}"
    assert main(["-f", str(log), "-a", "5", "-o", str(tmp_path / "graphs")]) == 0
    assert_graphs_written(capsys.readouterr().out, tmp_path / "graphs", "Pong", 5)


def test_a_log_without_loss_yet_replaces_an_earlier_loss_graph_with_one_that_says_so(tmp_path, capsys):
    log = tmp_path / "Pong-v0_log.txt"
    write_trainer_like_log(log, episodes=300)
    assert main(["-f", str(log), "-a", "5"]) == 0
    capsys.readouterr()
    loss_graph = tmp_path / "Pong-v0_loss_and_mean_q_avg5.png"
    trained_bytes = loss_graph.read_bytes()
    log.unlink()
    write_trainer_like_log(log, episodes=20)  # a new run in the folder: no gradient step in its first 20 episodes
    assert main(["-f", str(log), "-a", "5"]) == 0
    assert_graphs_written(capsys.readouterr().out, tmp_path, "Pong-v0", 5)
    assert loss_graph.read_bytes() != trained_bytes
    runs = reward_visualizer.load_runs([log])
    figure = reward_visualizer.plot_loss_and_mean_q(runs, 5)
    try:
        texts = [text.get_text() for axes in figure.axes for text in axes.texts]
        assert len(texts) == 2 and all("no gradient step logged yet" in text for text in texts)
        assert all(axes.get_legend() is None and not axes.lines for axes in figure.axes)
    finally:
        pyplot.close(figure)


def episodes_ending_at(*steps_and_scores):
    return tuple(runlog.EpisodeRecord(step=step, episode=number, score=score, clipped_return=score, length=1,
                                      epsilon=0.1, wall_time=0.0)
                 for number, (step, score) in enumerate(steps_and_scores, start=1))


def test_window_means_by_hand():
    # Windows of 100 steps: (0, 100] holds the games ending at 50 and 100, (100, 200] the one at 150,
    # (200, 300] none (a long game), (300, 400] the one at 400.
    episodes = episodes_ending_at((50, -21.0), (100, -19.0), (150, -10.0), (400, 3.0))
    means = reward_visualizer.window_means(episodes, 100)
    np.testing.assert_array_equal(means[[0, 1, 3]], [-20.0, -10.0, 3.0])
    assert means.shape == (4,) and np.isnan(means[2])
    assert reward_visualizer.window_means((), 100).shape == (0,)


@pytest.mark.parametrize("steps, label", [(0, "0"), (250_000, "250k"), (1_000_000, "1M"), (1_750_000, "1.75M"),
                                          (2_500, "2,500"), (1_234, "1,234"), (10_000_000, "10M")])
def test_steps_label_writes_what_published_curves_write(steps, label):
    assert reward_visualizer.steps_label(steps) == label


def test_table_prints_the_means_per_window_of_each_run_and_marks_where_a_log_ends(tmp_path, capsys):
    short, long = tmp_path / "a" / "Pong-v0_log.txt", tmp_path / "b" / "Pong-v0_log.txt"
    for path, episodes in ((short, episodes_ending_at((900, -21.0), (1_500, -20.0))),
                           (long, episodes_ending_at((400, -21.0), (1_000, -19.0), (1_600, -17.0), (3_500, -5.0)))):
        path.parent.mkdir()
        with runlog.RunLogWriter(path) as writer:
            for record in episodes:
                writer.append(record)
    assert main(["-f", str(short), str(long), "-o", str(tmp_path), "--table", "1_000"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("| agent steps"):].splitlines()
    assert table == [
        "| agent steps | a/Pong-v0 | b/Pong-v0 |",
        "|---|---:|---:|",
        "| 0–1k | -21.0 | -20.0 |",
        "| 1k–2k | -20.0* | -17.0 |",
        "| 2k–3k |  |  |",
        "| 3k–4k |  | -5.0* |",
        "",
        "Mean score of the training episodes that ended in each window of 1,000 agent steps; "
        "* the log ends inside the window.",
        "- a/Pong-v0: log ends at step 1,500 (2 episodes)",
        "- b/Pong-v0: log ends at step 3,500 (4 episodes)",
    ]


def test_no_graphs_prints_the_table_alone_and_writes_no_file(tmp_path, capsys):
    log = tmp_path / "Pong-v0_log.txt"
    log.write_bytes(PONG_LOG.read_bytes())
    assert main(["-f", str(log), "--table", "20000", "--no-graphs"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| agent steps | Pong-v0 |\n") and ".png" not in out
    rows = runlog.read_log(PONG_LOG)
    assert f"| 0–20k | {np.mean([row.score for row in rows if row.step <= 20_000]):.1f} |" in out
    assert sorted(path.name for path in tmp_path.iterdir()) == ["Pong-v0_log.txt"]


@pytest.mark.parametrize("extra, message", [
    ((), "--no-graphs leaves nothing to do without --table STEPS"),
    (("--table", "20000", "--show"), "argument --show: not allowed with argument --no-graphs")])
def test_no_graphs_with_nothing_to_print_or_with_show_gives_exit_2(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as raised:
        main(["-f", str(PONG_LOG), "-o", str(tmp_path), "--no-graphs", *extra])
    assert raised.value.code == 2
    assert capsys.readouterr().err == f"reward_visualizer.py: error: {message} (see -h)\n"
    assert not list(tmp_path.iterdir())


def test_a_table_of_too_many_windows_is_one_line_not_a_run_out_of_memory(tmp_path, capsys):
    assert main(["-f", str(PONG_LOG), "-o", str(tmp_path), "--table", "4"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "reward_visualizer.py: error: --table 4 cuts logs that reach step 40,455 into more than 10,000 windows: "
        "give a larger window"]
    assert not list(tmp_path.iterdir())


def test_table_of_the_fixture_log_agrees_with_its_rows(tmp_path, capsys):
    assert main(["-f", str(PONG_LOG), "-o", str(tmp_path), "--table", "20000"]) == 0
    rows = runlog.read_log(PONG_LOG)
    first = [row.score for row in rows if row.step <= 20_000]
    second = [row.score for row in rows if 20_000 < row.step <= 40_000]
    out = capsys.readouterr().out
    assert f"| 0–20k | {np.mean(first):.1f} |" in out and f"| 20k–40k | {np.mean(second):.1f} |" in out
    assert "| 40k–60k |" in out and "log ends at step 40,455 (40 episodes)" in out
