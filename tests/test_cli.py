"""Smoke tests of the real command line on a real ROM, and every user error it must turn into exit 2."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import training.build
import training.checkpoints
import training.config
import training.loop
import training.options
import training.runs

REPO_ROOT = Path(__file__).resolve().parent.parent
FAST = ["--memory-size", "2000", "--memory-compression", "none", "--seed", "0", "--threads", "1"]


def run_cli(*args, cwd=None, timeout=300):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, str(REPO_ROOT / "dqn_atari.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def assert_user_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("dqn_atari.py: error:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One short Pong-v0 run: 1,100 steps, long enough for a random game of Pong to end."""
    out = tmp_path_factory.mktemp("run")
    result = run_cli("-env", "Pong-v0", "--steps", 1100, "-pre", 1000, "--save-every", 1, "--out", out,
                     "--eval-every", 1000, *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


def test_help_lists_every_option():
    result = run_cli("-h")
    assert result.returncode == 0
    for flag in ("-env", "-r", "--continue", "--start", "--end", "-pre", "--steps", "--epsilon-steps",
                 "--memory-size", "--batch-size", "--gamma", "--lr", "--target-update", "--train-every",
                 "--seed", "--out", "--play", "--save-every", "--memory-compression", "--optimizer-epsilon", "--envs"):
        assert f" {flag}" in result.stdout, flag


def test_training_writes_log_weights_and_config(trained_run):
    out, result = trained_run
    log_lines = (out / "Pong-v0_log.txt").read_text().splitlines()
    assert log_lines[0].startswith("step,episode,score")
    assert len(log_lines) >= 2, "a random game of Pong ends within 1,100 steps"
    first = dict(zip(log_lines[0].split(","), log_lines[1].split(",")))
    assert -21 <= float(first["score"]) <= -15 and float(first["epsilon"]) == 1.0
    assert (out / "Pong-v0_weights.h5").stat().st_size > 1_000_000
    config = json.loads((out / "Pong-v0_config.json").read_text())
    assert config["env_id"] == "Pong-v0" and config["steps"] == 1100 and config["seed"] == 0
    assert config["precision"] in ("float32", "bfloat16")  # what --precision auto chose here
    assert config["optimizer_epsilon"] == 1.5e-4  # Adam's default, written in
    assert "episode     1" in result.stdout


def test_continue_from_weights_then_play(trained_run):
    out, _ = trained_run
    weights = out / "Pong-v0_weights.h5"
    cont = out / "continued"
    result = run_cli("-env", "Pong-v0", "--continue", weights, "--start", 0.1, "--end", 0.0, "-pre", 200,
                     "--steps", 300, "--out", cont, *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((cont / "Pong-v0_config.json").read_text())["continue_from"] == str(weights)
    assert (cont / "Pong-v0_weights.h5").is_file()

    played = run_cli("-env", "Pong-v0", "--play", weights, "--seed", 1, "--threads", 1)
    assert played.returncode == 0, played.stderr[-3000:]
    assert played.stdout.splitlines()[0].startswith("game 1: score ")
    assert played.stdout.splitlines()[1].startswith("1 game: ")


def test_a_continued_run_fills_its_memory_exploring_at_its_start_epsilon():
    """Played greedily, a loaded Breakout agent that does not serve the ball fills the memory with one
    state until the game's time limit; at --start's epsilon it serves within a few hundred steps."""
    import dqn_atari

    continued = training.loop.epsilon_policy(dqn_atari.Config(
        continue_from="w.h5", epsilon_start=0.1, epsilon_end=0.0, pre_steps=100, epsilon_steps=1000))
    assert [continued(step) for step in (0, 99, 100)] == [0.1, 0.1, 0.1]
    assert continued(600) == pytest.approx(0.05) and continued(1100) == 0.0
    fresh = training.loop.epsilon_policy(dqn_atari.Config(epsilon_start=0.5, pre_steps=100))
    assert fresh(0) == fresh(99) == 1.0 and fresh(100) == 0.5


def test_a_run_with_both_heads_plays_as_its_weights_file_says_and_another_head_refuses_them(tmp_path):
    out = tmp_path / "heads"
    trained = run_cli("-env", "Pong-v0", "--dueling", "--distributional", "quantile", "--quantiles", 8,
                      "--steps", 300, "-pre", 200, "--out", out, *FAST)
    assert trained.returncode == 0, trained.stderr[-3000:]
    config = json.loads((out / "Pong-v0_config.json").read_text())
    assert (config["dueling"], config["distributional"], config["quantiles"]) == (True, "quantile", 8)
    weights = out / "Pong-v0_weights.h5"
    played = run_cli("-env", "Pong-v0", "--play", weights, "--seed", 1, "--threads", 1)  # no head flags needed
    assert played.returncode == 0, played.stderr[-3000:]
    assert played.stdout.splitlines()[0].startswith("game 1: score ")
    plain = tmp_path / "plain"
    assert_user_error(run_cli("-env", "Pong-v0", "--continue", weights, "--steps", 10, "--out", plain, *FAST),
                      "holds the weights of a dueling quantile (8) network, not of the plain network",
                      "train on them with --dueling --distributional quantile --quantiles 8")
    assert not plain.exists() or not list(plain.glob("Pong-v0_*"))


def test_eval_prints_the_protocol_summary_and_writes_json(trained_run):
    out, _ = trained_run
    result = run_cli("-env", "Pong-v0", "--eval", out / "Pong-v0_weights.h5", "--games", 2, "--seed", 3,
                     "--threads", 1)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [line[:7] for line in result.stdout.splitlines()[:2]] == ["game 1:", "game 2:"]
    assert "2 games: " in result.stdout and "human-normalised" in result.stdout
    summary = json.loads((out / "Pong-v0_weights_eval.json").read_text())
    assert len(summary["games"]) == 2 and summary["protocol"]["epsilon"] == 0.05


def test_eval_of_a_checkpoints_weights_warns_that_the_folder_is_pruned(trained_run, tmp_path):
    out, _ = trained_run
    [checkpoint] = (out / "Pong-v0_checkpoints").glob("step-*")
    shutil.copytree(checkpoint, tmp_path / checkpoint.name)
    weights = tmp_path / checkpoint.name / "online.h5"
    result = run_cli("-env", "Pong-v0", "--eval", weights, "--games", 1, "--seed", 3, "--threads", 1)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (f"dqn_atari.py: warning: {weights} is in a checkpoint folder, which its run deletes once it has newer "
            f"ones, and its evaluation summary with it: copy the weights out to keep both") in result.stderr
    assert (tmp_path / checkpoint.name / "online_eval.json").is_file()


def test_eval_every_appends_to_the_evaluation_log(trained_run):
    out, result = trained_run
    lines = (out / "Pong-v0_eval.txt").read_text().splitlines()
    assert lines[0].startswith("step,episodes,mean_score") and lines[1].startswith("1000,10,")
    assert "evaluation at step 1,000: 10 games" in result.stdout
    assert "best so far, saved to Pong-v0_weights_best.h5" in result.stdout
    assert (out / "Pong-v0_weights_best.h5").stat().st_size > 1_000_000


def test_unknown_game_id_is_one_line_and_exit_2(tmp_path):
    assert_user_error(run_cli("-env", "Pongg", "--out", tmp_path / "new"), "Pongg")
    assert not list(tmp_path.iterdir()), "refused before the --out folder is made"


def test_missing_corrupt_and_other_game_weights_are_refused(tmp_path, trained_run):
    out, _ = trained_run
    assert_user_error(run_cli("--continue", tmp_path / "nope.h5", "--out", tmp_path), "not found")
    corrupt = tmp_path / "corrupt_weights.h5"
    corrupt.write_bytes(b"\x89HDF\r\n garbage")
    assert_user_error(run_cli("--play", corrupt), "corrupt_weights.h5")
    assert corrupt.read_bytes() == b"\x89HDF\r\n garbage"
    assert_user_error(run_cli("-env", "Breakout-v0", "--play", out / "Pong-v0_weights.h5"),
                      "6 actions", "has 4")


def test_unwritable_out_folder_is_refused(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("keep me")
    assert_user_error(run_cli("--out", blocker / "sub", "--steps", 10), "--out")
    assert blocker.read_text() == "keep me"


def test_a_config_file_that_cannot_be_written_is_one_line(tmp_path):
    (tmp_path / "Pong-v0_config.json").mkdir()  # a folder where the file goes: the rename onto it fails
    assert_user_error(run_cli("--out", tmp_path, "--steps", 10, *FAST), "cannot write", "Pong-v0_config.json")
    assert (tmp_path / "Pong-v0_config.json").is_dir() and not (tmp_path / "Pong-v0_log.txt").exists()


@pytest.mark.parametrize("args, fragment", [
    (["--steps", "-5"], "--steps"),
    (["--steps", "0"], "--steps"),
    (["--memory-size", "ten"], "--memory-size"),
    (["--gamma", "1.5"], "--gamma"),
    (["--start", "-0.1"], "--start"),
    (["--lr", "5"], "--lr"),
    (["--optimizer-epsilon", "0"], "--optimizer-epsilon"),
    (["--batch-size", "100000"], "--batch-size"),
    (["--memory-size", "10000000000"], "memory"),
    (["--memory-size", "6", "--batch-size", "2", "--n-step", "3"], "--memory-size 6 is too small: a transition of --n-step 3 needs at least 7"),
    (["--optimizer-epsilon", "inf"], "--optimizer-epsilon"),
    (["--clip-norm", "nan"], "--clip-norm"),
    (["--seed", str(2**32)], "--seed"),
    (["--threads", "100000"], "--threads"),
    (["--envs", "0"], "--envs"),
    (["--envs", "4", "--memory-size", "2000"], "--envs 4"),
])
def test_bad_numbers_are_one_line_and_exit_2(tmp_path, args, fragment):
    result = run_cli(*args, "--out", tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert fragment in result.stderr


@pytest.mark.parametrize("args, fragment", [
    (["--play", "a.h5", "--eval", "b.h5"], "--play and --eval"),
    (["--eval", "a.h5", "--resume"], "drop --resume"),
    (["--play", "a.h5", "--continue", "b.h5"], "drop --continue"),
    (["--resume", "--continue", "b.h5"], "choose one"),
    (["--games", "3"], "--games applies to --play or --eval"),
    (["--record", "game.mp4"], "--record applies to --play or --eval"),
    (["--prioritized", "--envs", "2"], "--envs 1"),
    (["--eval", "a.h5"], "--steps applies to training, not to --eval"),
    (["--distributional", "quantile", "--loss", "mse"], "--loss applies to networks of one value per action"),
    (["--quantiles", "50"], "--quantiles applies to --distributional quantile only"),
    (["--importance-exponent", "0.5"], "--importance-exponent applies to --prioritized replay only"),  # its default
])
def test_flags_that_would_be_ignored_together_are_refused(tmp_path, args, fragment):
    assert_user_error(run_cli(*args, "--steps", 1, "--out", tmp_path / "new"), fragment)
    assert not list(tmp_path.iterdir())


def test_reward_visualizer_draws_the_log_the_trainer_wrote(trained_run, tmp_path):
    out, _ = trained_run
    result = subprocess.run([sys.executable, str(REPO_ROOT / "reward_visualizer.py"), "-f",
                             str(out / "Pong-v0_log.txt"), "-a", "50", "-o", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    pngs = sorted(Path(line) for line in result.stdout.splitlines())
    assert len(pngs) >= 3 and all(p.suffix == ".png" and p.stat().st_size > 10_000 for p in pngs)
    with open(pngs[0], "rb") as f:
        header = f.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")) == (1000, 500)


@pytest.mark.parametrize("argv, message", [
    (["--eval", "w.h5", "--out", "results"], "--out applies to training, not to --eval; the summary is written "
                                             "beside the weights"),
    (["--play", "w.h5", "--seed", "1", "--lr", "0.001", "--memory-size", "10"], "--memory-size applies to training"),
    (["--play", "w.h5", "--no-life-loss-signal"], "--no-life-loss-signal applies to training, not to --play"),
    (["--play", "w.h5", "--dueling"], "--dueling applies to training, not to --play"),
    (["--eval", "w.h5", "--precision", "bfloat16"], "--precision applies to training, not to --eval"),
])
def test_training_flags_with_play_or_eval_are_refused_not_ignored(argv, message, capsys):
    import dqn_atari

    with pytest.raises(SystemExit) as exited:
        dqn_atari.main(argv)
    assert exited.value.code == 2 and message in capsys.readouterr().err


def test_a_flag_given_at_its_default_value_still_counts_as_given():
    import dqn_atari

    argv = ["--resume", "--steps", str(dqn_atari.Config.steps), "--start", "1.0"]
    assert training.options.explicit_fields(argv) == {"resume", "steps", "epsilon_start"}


@pytest.mark.parametrize("name", ["Pong-v0_weights.h5", "Pong-v0_weights_best.h5", "Pong-v0_eval.txt"])
def test_a_new_run_does_not_overwrite_an_earlier_run_in_the_same_folder(tmp_path, name):
    earlier = tmp_path / name
    earlier.write_bytes(b"a file of an earlier run")
    assert_user_error(run_cli("--steps", 10, "--out", tmp_path, *FAST), f"already holds a run of Pong-v0 ({name})",
                      "--resume or --continue")
    assert earlier.read_bytes() == b"a file of an earlier run"
    assert [path.name for path in tmp_path.iterdir()] == [name]


def test_a_second_run_in_a_folder_where_one_is_training_is_refused(trained_run, tmp_path):
    """A run holds its folder's lock while it trains: a new run, --resume or --continue of the same
    game there is refused and writes nothing; another game may train beside it."""

    out, _ = trained_run
    before = {path: path.stat().st_mtime_ns for path in out.rglob("*")}
    with training.runs.run_lock(tmp_path, "Pong-v0"), training.runs.run_lock(out, "Pong-v0"):
        assert_user_error(run_cli("--steps", 10, "--out", tmp_path, *FAST),
                          f"another run of Pong-v0 is training in {tmp_path} (process {os.getpid()})")
        assert [path.name for path in tmp_path.iterdir()] == [".Pong-v0.lock"]
        assert_user_error(run_cli("--resume", "--steps", 1200, "--out", out), "another run of Pong-v0")
        assert_user_error(run_cli("--continue", out / "Pong-v0_weights.h5", "--steps", 10, "--out", out, *FAST),
                          "another run of Pong-v0")
        assert {path: path.stat().st_mtime_ns for path in out.rglob("*") if path.name != ".Pong-v0.lock"} == before
        breakout = run_cli("-env", "Breakout-v0", "--steps", 60, "-pre", 50, "--out", tmp_path, *FAST)
        assert breakout.returncode == 0, breakout.stderr[-2000:]
    assert not list(tmp_path.glob(".*.lock")) and not list(out.glob(".*.lock"))


def test_continue_in_the_folder_of_the_earlier_run_sets_its_files_aside_and_starts_a_new_log(tmp_path):
    first = run_cli("--steps", 1100, "-pre", 1000, "--out", tmp_path, *FAST)
    assert first.returncode == 0, first.stderr[-2000:]
    earlier = {name: (tmp_path / f"Pong-v0_{name}").read_bytes() for name in ("log.txt", "weights.h5", "config.json")}
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"not weights")
    assert_user_error(run_cli("--continue", corrupt, "--steps", 60, "--out", tmp_path, *FAST), "corrupt.h5")
    assert not list(tmp_path.glob("*.before-*")), "a refused run moves nothing"

    again = run_cli("--continue", tmp_path / "Pong-v0_weights.h5", "--steps", 1100, "-pre", 50,
                    "--out", tmp_path, *FAST)
    assert again.returncode == 0, again.stderr[-2000:]
    (aside,) = tmp_path.glob("Pong-v0_checkpoints.before-*")
    stamp = aside.name.split(".", 1)[1]
    assert [p.name for p in aside.iterdir()] == ["step-000000001100"]
    assert [p.name for p in (tmp_path / "Pong-v0_checkpoints").iterdir()] == ["step-000000001100"]
    for name, content in earlier.items():
        stem, suffix = name.split(".")
        assert (tmp_path / f"Pong-v0_{stem}.{stamp}.{suffix}").read_bytes() == content, name
    config = json.loads((tmp_path / "Pong-v0_config.json").read_text())
    assert config["continue_from"] == str(tmp_path / f"Pong-v0_weights.{stamp}.h5"), "it names where the weights are now"
    log = (tmp_path / "Pong-v0_log.txt").read_bytes()
    assert len(log.splitlines()) >= 2 and not log.startswith(earlier["log.txt"]), "a log of the new run alone"
    assert log.splitlines()[1].split(b",")[1] == b"1", "its episodes count from 1"




def earlier_run(folder, names):
    """Plain files named as a run names them, each holding its own name."""
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)
    from training.config import RunFiles

    return RunFiles.for_env(folder, "Pong-v0")


def set_aside(files, continue_from):
    import dqn_atari

    config = dqn_atari.Config(continue_from=str(continue_from))
    return training.runs.set_aside_earlier_run(files, config).continue_from


def test_set_aside_moves_what_exists_with_the_summaries_and_follows_the_weights(tmp_path, capsys):
    names = ["Pong-v0_log.txt", "Pong-v0_weights_best.h5", "Pong-v0_weights_best_eval.json",
             "Pong-v0_weights_eval.json", "Pong-v0_weights_eval-2.json", "Pong-v0_weights_eval.before-1.json",
             "Pong-v0_checkpoints/step-000000000100/online.h5", "Breakout-v0_log.txt"]
    files = earlier_run(tmp_path, names)
    elsewhere = tmp_path / "other" / "Pong-v0_weights.h5"
    assert set_aside(files, elsewhere) == str(elsewhere), "weights from another folder stay where they are"
    (aside,) = tmp_path.glob("Pong-v0_log.before-*.txt")
    stamp = aside.name[len("Pong-v0_log."):-len(".txt")]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([
        "Breakout-v0_log.txt", "Pong-v0_weights_eval.before-1.json",
        f"Pong-v0_log.{stamp}.txt", f"Pong-v0_weights_best.{stamp}.h5", f"Pong-v0_weights_best_eval.{stamp}.json",
        f"Pong-v0_weights_eval.{stamp}.json", f"Pong-v0_weights_eval-2.{stamp}.json", f"Pong-v0_checkpoints.{stamp}"])
    assert (tmp_path / f"Pong-v0_weights_best.{stamp}.h5").read_text() == "Pong-v0_weights_best.h5"
    assert f"Pong-v0_log.{stamp}.txt" in capsys.readouterr().out


@pytest.mark.parametrize("continued, expected", [
    ("Pong-v0_weights_best.h5", "Pong-v0_weights_best.{stamp}.h5"),
    ("Pong-v0_checkpoints/step-000000000100/online.h5", "Pong-v0_checkpoints.{stamp}/step-000000000100/online.h5"),
])
def test_set_aside_follows_weights_it_moves(tmp_path, continued, expected):
    files = earlier_run(tmp_path, ["Pong-v0_weights_best.h5", "Pong-v0_checkpoints/step-000000000100/online.h5"])
    moved = Path(set_aside(files, tmp_path / continued))
    stamp = next(tmp_path.glob("Pong-v0_weights_best.before-*.h5")).name.split(".")[1]
    assert moved == tmp_path / expected.format(stamp=stamp)
    assert moved.read_text() == continued


@pytest.mark.parametrize("failure, raised_as", [(PermissionError(13, "Permission denied"), "UserError"),
                                               (KeyboardInterrupt(), "KeyboardInterrupt")])  # Ctrl-C among them
def test_set_aside_is_all_or_nothing(tmp_path, monkeypatch, failure, raised_as):
    names = ["Pong-v0_log.txt", "Pong-v0_weights.h5", "Pong-v0_config.json", "Pong-v0_eval.txt"]
    files = earlier_run(tmp_path, names)
    real_rename, renames = Path.rename, []

    def rename_failing_the_third(self, target):
        renames.append(self)
        if len(renames) == 3:
            raise failure
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename_failing_the_third)
    with pytest.raises(BaseException) as raised:
        set_aside(files, tmp_path / "Pong-v0_weights.h5")
    assert type(raised.value).__name__ == raised_as
    assert raised_as != "UserError" or "nothing was moved" in str(raised.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    assert all((tmp_path / name).read_text() == name for name in names)


@pytest.mark.parametrize("platform, variables, expected", [
    ("linux", {}, False),
    ("linux", {"DISPLAY": ":0"}, True),
    ("linux", {"WAYLAND_DISPLAY": "wayland-0"}, True),
    ("darwin", {}, True),
    ("win32", {}, True),
])
def test_render_knows_where_a_window_can_open(monkeypatch, capsys, platform, variables, expected):

    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_AUDIODRIVER"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "platform", platform)
    assert training.build.window_available(suggest_record=True) is expected
    err = capsys.readouterr().err
    assert err == ("" if expected else "dqn_atari.py: no display found, so -r shows no window; "
                                       "--record FILE.mp4 writes a video instead\n")


def test_resume_refuses_a_setting_older_checkpoints_did_not_record():
    """A checkpoint written before a flag existed ran with that flag's default: asking for another
    value on --resume is refused like any other change (it would be silently dropped)."""
    import dataclasses

    import dqn_atari
    from common.errors import UserError

    old = {k: v for k, v in dataclasses.asdict(dqn_atari.Config(seed=1)).items()
           if k not in ("prioritized", "priority_exponent", "importance_exponent")}
    cli = dqn_atari.Config(prioritized=True)
    with pytest.raises(UserError) as refused:
        training.checkpoints.resumed_config({"config": old}, cli, {"env_id", "prioritized", "resume"}, "ckpt")
    assert ("made without --prioritized, but this command runs with --prioritized; only --checkpoint-every, "
            in training.options.worded(refused.value))
    assert "made with prioritized=False, but this command runs with prioritized=True; only checkpoint_every, " \
        in str(refused.value)  # what a Python caller reads
    resumed = training.checkpoints.resumed_config({"config": old}, dqn_atari.Config(steps=5), {"steps", "resume"}, "ckpt")
    assert resumed.prioritized is False and resumed.steps == 5 and resumed.seed == 1


@pytest.mark.parametrize("field, saved, asked, message", [
    ("learning_rate", 1e-4, 2.5e-4, "made with --lr 0.0001, but this command runs with --lr 0.00025;"),
    ("life_loss_signal", True, False, "made without --no-life-loss-signal, but this command runs with "
                                      "--no-life-loss-signal;"),
    ("idle_penalty", False, True, "made without --idle-penalty, but this command runs with --idle-penalty;"),
])
def test_a_resume_refusal_names_the_settings_as_the_command_line_gives_them(field, saved, asked, message):
    import dataclasses

    import dqn_atari
    from common.errors import UserError

    old = dataclasses.asdict(dataclasses.replace(dqn_atari.Config(seed=1), **{field: saved}))
    with pytest.raises(UserError) as refused:
        training.checkpoints.resumed_config({"config": old}, dataclasses.replace(dqn_atari.Config(), **{field: asked}),
                                            {"env_id", field, "resume"}, "ckpt")
    assert message in training.options.worded(refused.value)
    assert training.options.setting("save_memory", False) == "with --no-save-memory"


def test_a_run_records_its_optimizer_epsilon_and_an_older_rmsprop_run_resumes_with_the_one_it_had():
    import dataclasses

    import dqn_atari

    assert training.config.with_resolved_optimizer_epsilon(dqn_atari.Config()).optimizer_epsilon == 1.5e-4
    assert training.config.with_resolved_optimizer_epsilon(
        dqn_atari.Config(optimizer="rmsprop")).optimizer_epsilon == 0.01 / 32**2
    for optimizer, resumed_with in (("rmsprop", 0.01), ("adam", 1.5e-4)):
        older = dataclasses.asdict(dqn_atari.Config(seed=1, optimizer=optimizer))  # optimizer_epsilon None
        resumed = training.checkpoints.resumed_config({"config": older}, dqn_atari.Config(), {"resume"}, "ckpt")
        assert resumed.optimizer_epsilon == resumed_with


def test_the_memory_per_copy_floor_applies_to_several_copies_only():
    import dqn_atari
    from common.errors import UserError

    training.config.validate(dqn_atari.Config(memory_size=500))  # one game: any memory of a batch or more
    with pytest.raises(UserError) as refused:
        training.config.validate(dqn_atari.Config(memory_size=1500, envs=2))
    assert training.options.worded(refused.value) == ("--memory-size 1500 leaves 750 transitions to each of the --envs 2 "
                                               "copies: at least 1,000 each")
    assert str(refused.value).startswith("memory_size 1500 leaves 750 transitions to each of the envs 2 copies")


def test_the_games_are_closed_when_a_run_ends_and_when_it_is_refused(tmp_path, monkeypatch, capsys):
    import dqn_atari
    import evaluation
    import evaluation.play
    import preprocessing

    opened = []

    def closing_spy(make):
        def make_and_watch(*args, **kwargs):
            env = make(*args, **kwargs)
            close = env.close
            entry = {"id": args[0], "closed": False}
            opened.append(entry)

            def watched_close():
                entry["closed"] = True
                close()

            env.close = watched_close
            return env
        return make_and_watch

    monkeypatch.setattr(preprocessing, "make_env", closing_spy(preprocessing.make_env))
    monkeypatch.setattr(evaluation, "make_eval_env", closing_spy(evaluation.make_eval_env))  # --eval-every's
    monkeypatch.setattr(evaluation.play, "make_eval_env", closing_spy(evaluation.protocol.make_eval_env))  # --play's
    out = tmp_path / "run"
    assert dqn_atari.main(["-env", "Pong-v0", "--steps", "60", "-pre", "70", "--envs", "2", "--eval-every", "1000",
                           "--out", str(out), *FAST]) == 0
    assert "warning: --pre 70 >= --steps 60: this run will not learn" in capsys.readouterr().err
    assert len(opened) == 3 and all(entry["closed"] for entry in opened), opened
    corrupt = tmp_path / "Pong-v0_weights.h5"
    corrupt.write_bytes(b"not weights")
    assert dqn_atari.main(["-env", "Pong-v0", "--continue", str(corrupt), "--out", str(tmp_path / "continued"),
                           *FAST]) == 2
    assert len(opened) == 4 and opened[-1]["closed"], opened
    assert dqn_atari.main(["-env", "Pong-v0", "--play", str(corrupt), "--seed", "0"]) == 2
    assert len(opened) == 4, "a weights file that cannot be read is refused before a game opens"
    assert dqn_atari.main(["-env", "Breakout-v0", "--play", str(out / "Pong-v0_weights.h5"), "--seed", "0"]) == 2
    assert len(opened) == 5 and opened[-1] == {"id": "Breakout-v0", "closed": True}, opened


def test_a_pre_fill_that_would_be_wasted_is_warned_about():
    import dqn_atari

    assert training.config.pre_fill_warnings(dqn_atari.Config(steps=1_000_000, pre_steps=300_000)) == []
    (no_learning,) = training.config.pre_fill_warnings(dqn_atari.Config(steps=50_000, pre_steps=80_000),
                                                       dqn_atari.flag_name)
    assert no_learning == "--pre 80,000 >= --steps 50,000: this run will not learn, only fill its memory"
    (overwritten,) = training.config.pre_fill_warnings(dqn_atari.Config(pre_steps=300_000, memory_size=100_000))
    assert overwritten.startswith("pre_steps 300,000 > memory_size 100,000: the first 200,000 steps")


def test_a_preset_sets_its_recipe_and_a_flag_given_beside_it_wins():
    import dqn_atari

    def config(*argv):
        return training.options.config_from_args(training.options.build_parser().parse_args(argv), training.options.explicit_fields(argv))

    laptop = config("-env", "Breakout-v0", "--preset", "laptop")
    assert laptop.preset == "laptop" and laptop.env_id == "Breakout-v0"
    assert {field: getattr(laptop, field) for field in dqn_atari.PRESETS["laptop"]} == dqn_atari.PRESETS["laptop"]
    assert laptop.steps == 2_000_000 and laptop.memory_size == 100_000
    mine = config("--preset", "laptop", "--steps", "3000000", "--memory-size", str(dqn_atari.Config.memory_size))
    assert mine.steps == 3_000_000 and mine.memory_size == dqn_atari.Config.memory_size  # given at its default: still given
    assert mine.epsilon_steps == 250_000
    assert config().steps == dqn_atari.Config.steps and config().preset is None


def test_a_preset_is_refused_with_play_and_unknown_presets_are_one_line(tmp_path):
    assert_user_error(run_cli("--play", "w.h5", "--preset", "laptop"), "--preset applies to training, not to --play")
    result = run_cli("--preset", "desktop", "--out", tmp_path)
    assert result.returncode == 2 and "invalid choice: 'desktop'" in result.stderr and "Traceback" not in result.stderr
