"""The evaluation protocol on real ROMs, the human-normalised score, and the videos it records."""
import dataclasses
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import ale_py.roms
import gymnasium as gym
import imageio.v3 as iio
import numpy as np
import pytest

import evaluation
from common import runlog
from common.errors import UserError
from evaluation import Episode, EvalSummary, VideoRecorder, evaluate, make_eval_env
from preprocessing import make_env

FIRE_FRAMES = 4  # make_env presses FIRE for one action repeat after reset in games that have it


class StepLog(gym.Wrapper):
    """Records every action the evaluation sends, and the frame number and lives after each call."""

    def __init__(self, env):
        super().__init__(env)
        self.actions, self.frame_numbers, self.lives, self.resets = [], [], [], 0

    def reset(self, **kwargs):
        frame, info = self.env.reset(**kwargs)
        self.resets += 1
        self.frame_numbers.append(info["episode_frame_number"])
        return frame, info

    def step(self, action):
        frame, reward, terminated, truncated, info = self.env.step(action)
        self.actions.append(action)
        self.frame_numbers.append(info["episode_frame_number"])
        self.lives.append(info["lives"])
        return frame, reward, terminated, truncated, info


class CountingPolicy:
    """Always NOOP; counts its calls, in total and per game."""

    def __init__(self):
        self.calls = 0
        self.calls_per_game = []

    def __call__(self, state):
        assert state.shape == (84, 84, 4) and state.dtype == np.uint8
        self.calls += 1
        return 0

    def game_over(self, number, episode):
        self.calls_per_game.append(self.calls - sum(self.calls_per_game))


def start_frames(env_id, seed, games=8, noop_max=None):
    """The raw frame each game's first decision starts from, by evaluating a greedy NOOP player."""
    env = make_eval_env(env_id) if noop_max is None else make_env(env_id, noop_max=noop_max)
    policy = CountingPolicy()
    summary = evaluate(env, policy, episodes=games, epsilon=0.0, max_frames=400, seed=seed,
                       on_episode=policy.game_over)
    return [frames - 4 * decisions for frames, decisions in zip(summary.frames, policy.calls_per_game)]


# ---------------------------------------------------------------------------------------------
# The protocol on a real ROM


def test_no_op_starts_vary_each_game_and_replay_with_the_same_seed():
    starts = start_frames("PongNoFrameskip-v4", seed=7)
    assert all(1 + FIRE_FRAMES <= start <= evaluation.NOOP_MAX + FIRE_FRAMES for start in starts)
    assert len(set(starts)) >= 4
    assert start_frames("PongNoFrameskip-v4", seed=7) == starts
    assert start_frames("PongNoFrameskip-v4", seed=8) != starts


def test_without_no_ops_every_game_starts_alike():
    assert set(start_frames("PongNoFrameskip-v4", seed=7, noop_max=0)) == {FIRE_FRAMES}


def test_a_seeded_evaluation_replays_exactly():
    first = evaluate(make_eval_env("Breakout-v0"), lambda state: 1, episodes=3, max_frames=1500, seed=3)
    again = evaluate(make_eval_env("Breakout-v0"), lambda state: 1, episodes=3, max_frames=1500, seed=3)
    assert first.to_dict() == again.to_dict()


def test_the_frame_cap_stops_a_game_within_max_frames():
    env = make_eval_env("PongNoFrameskip-v4")
    summary = evaluate(env, lambda state: 0, episodes=3, max_frames=400, seed=0)
    longest_step = 2 * 4  # a lost life followed by FIRE
    assert all(400 - longest_step < frames <= 400 for frames in summary.frames)
    assert all(episode.truncated for episode in summary.games)
    assert "3 stopped by the time cap" in summary.describe()


def test_the_frame_cap_holds_on_a_step_that_loses_a_life_and_presses_fire():
    env = StepLog(make_eval_env("Breakout-v0", fire_after_life_loss=True))
    evaluate(env, lambda state: 0, episodes=1, max_frames=None, seed=4)
    advances = np.diff(env.frame_numbers)
    lost_life_at = env.frame_numbers[int(np.argmax(advances == 8))]
    assert 8 in advances
    cap = lost_life_at + 4  # room for one action repeat, not for the FIRE step that follows
    summary = evaluate(make_eval_env("Breakout-v0", fire_after_life_loss=True), lambda state: 0,
                       episodes=1, max_frames=cap, seed=4)
    assert cap - 8 < summary.frames[0] <= cap and summary.games[0].truncated


def test_a_game_ends_at_game_over_not_at_a_lost_life():
    env = StepLog(make_eval_env("Breakout-v0"))
    summary = evaluate(env, lambda state: 0, episodes=2, seed=1)
    assert env.resets == 2 and env.lives[0] == 5 and env.lives[-1] == 0
    assert not any(episode.truncated for episode in summary.games)
    assert env.unwrapped.ale.game_over()


def test_the_default_epsilon_is_005_and_explores_uniformly_from_its_own_generator():
    env = StepLog(make_eval_env("PongNoFrameskip-v4"))
    policy = CountingPolicy()
    evaluate(env, policy, episodes=2, max_frames=4000, seed=11)
    decisions = len(env.actions)
    explored = decisions - policy.calls
    assert decisions > 1500
    assert 0.035 < explored / decisions < 0.065
    random_actions = [action for action in env.actions if action != 0]
    assert set(random_actions) == set(range(1, env.action_space.n))


@pytest.mark.parametrize("epsilon, expected_calls", [(0.0, "every decision"), (1.0, "none")])
def test_epsilon_zero_always_asks_the_policy_and_one_never(epsilon, expected_calls):
    env = StepLog(make_eval_env("PongNoFrameskip-v4"))
    policy = CountingPolicy()
    evaluate(env, policy, episodes=1, epsilon=epsilon, max_frames=800, seed=2)
    assert policy.calls == (len(env.actions) if expected_calls == "every decision" else 0)


@pytest.mark.parametrize("options, message", [
    (dict(episodes=0), "games"), (dict(epsilon=1.5), "epsilon"), (dict(max_frames=0), "frame cap")])
def test_bad_protocol_numbers_are_user_errors(options, message):
    with pytest.raises(UserError, match=message):
        evaluate(make_eval_env("Pong-v0"), lambda state: 0, **options)


def test_an_untrained_keras_agent_plays_greedily_without_touching_its_own_rng():
    from agent import build_agent

    env = make_eval_env("Breakout-v0")
    agent = build_agent(env.action_space.n, seed=0)
    rng_state = agent.rng.bit_generator.state
    summary = evaluate(env, evaluation.greedy_policy(agent), episodes=1, max_frames=300, seed=0)
    assert summary.episodes == 1 and summary.frames[0] <= 300
    assert agent.rng.bit_generator.state == rng_state


# ---------------------------------------------------------------------------------------------
# Human-normalised score and summaries


@pytest.mark.parametrize("game, score, expected", [
    ("pong", 21.0, (21.0 + 20.7) / (9.3 + 20.7)),        # 41.7 / 30.0 = 1.39
    ("pong", -20.7, 0.0),
    ("breakout", 401.2, (401.2 - 1.7) / (31.8 - 1.7)),   # 399.5 / 30.1 = 13.2724...
    ("breakout", 31.8, 1.0),
    ("skiing", -10717.5, 0.5),                           # halfway between -17098.1 and -4336.9
])
def test_human_normalised_score_matches_hand_computed_values(game, score, expected):
    assert evaluation.human_normalized(game, score) == pytest.approx(expected, abs=1e-12)


def test_pong_and_breakout_values_by_hand():
    assert evaluation.human_normalized("pong", 21.0) == pytest.approx(1.39)
    assert evaluation.human_normalized("breakout", 401.2) == pytest.approx(13.27242524916944)


def test_a_game_without_reference_scores_has_no_normalised_score():
    assert evaluation.human_normalized("adventure", 1.0) is None
    assert evaluation.reference_source("adventure") is None


def test_reference_table_covers_the_atari_57_under_their_ale_rom_names():
    roms = set(ale_py.roms.get_all_rom_ids())
    assert len(evaluation.REFERENCE_SCORES) == 57 and set(evaluation.REFERENCE_SCORES) <= roms
    nature = [game for game in evaluation.REFERENCE_SCORES
              if evaluation.reference_source(game) == evaluation.NATURE_2015]
    assert len(nature) == 49
    assert all(random < human for random, human in evaluation.REFERENCE_SCORES.values())
    with pytest.raises(TypeError):
        evaluation.REFERENCE_SCORES["pong"] = (0.0, 1.0)


def pong_summary(scores=(20.0, 21.0, 19.0), truncated=(False, False, False)):
    games = tuple(Episode(score, 7000, capped) for score, capped in zip(scores, truncated))
    return EvalSummary("pong", "Pong-v0", games, epsilon=0.05, max_frames=18_000, noop_max=30, seed=4)


def test_summary_statistics_record_and_one_line_description():
    summary = pong_summary()
    assert (summary.mean, summary.min, summary.max) == (20.0, 19.0, 21.0)
    assert summary.std == pytest.approx(math.sqrt(2 / 3))
    assert summary.human_normalized == pytest.approx(40.7 / 30.0)
    record = summary.as_record(250_000)
    assert record == runlog.EvalRecord(250_000, 3, 20.0, summary.std, 19.0, 21.0, pytest.approx(40.7 / 30))
    assert summary.describe() == "3 games: 20.0 ± 0.8 (min 19, max 21), human-normalised 1.36 (136% of human)"


def test_description_without_reference_scores():
    summary = dataclasses.replace(pong_summary(scores=(1.5,)), game="adventure")
    assert summary.describe() == "1 game: 1.5 ± 0.0 (min 1.5, max 1.5), no human reference for adventure"


def test_json_summary_is_written_beside_the_weights(tmp_path):
    weights = tmp_path / "Pong-v0_weights.h5"
    path = evaluation.summary_path(weights)
    assert path == tmp_path / "Pong-v0_weights_eval.json"
    evaluation.write_summary(path, pong_summary(truncated=(False, True, False)), weights=weights)
    data = json.loads(path.read_text())
    assert data["weights"] == str(weights)
    assert data["mean_score"] == 20.0 and data["episodes"] == 3
    assert data["human_normalized"] == pytest.approx(40.7 / 30.0)
    assert data["reference"] == {"random": -20.7, "human": 9.3, "source": evaluation.NATURE_2015}
    assert data["protocol"] == {"epsilon": 0.05, "max_frames": 18_000, "noop_max": 30, "seed": 4}
    assert data["games"][1] == {"score": 21.0, "frames": 7000, "truncated": True}
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert evaluation.summary_path(weights) == tmp_path / "Pong-v0_weights_eval-2.json", "never replaces one"


def test_a_new_summary_takes_the_number_after_the_highest_and_never_replaces_one(tmp_path):
    weights = tmp_path / "Pong-v0_weights.h5"
    (tmp_path / "Pong-v0_weights_eval-2.json").write_text("an earlier evaluation")
    (tmp_path / "Pong-v0_weights_best_eval-7.json").write_text("another weights file's")
    assert evaluation.write_new_summary(weights, pong_summary()) == tmp_path / "Pong-v0_weights_eval-3.json"
    assert evaluation.write_new_summary(weights, pong_summary()) == tmp_path / "Pong-v0_weights_eval-4.json"
    assert (tmp_path / "Pong-v0_weights_eval-2.json").read_text() == "an earlier evaluation"
    assert json.loads((tmp_path / "Pong-v0_weights_eval-4.json").read_text())["weights"] == str(weights)
    with pytest.raises(FileExistsError):
        evaluation.write_summary(tmp_path / "Pong-v0_weights_eval-2.json", pong_summary(), replace=False)
    assert (tmp_path / "Pong-v0_weights_eval-2.json").read_text() == "an earlier evaluation"
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file left behind"


def test_a_name_held_by_a_file_the_search_does_not_see_is_stepped_over(tmp_path, monkeypatch):
    """As on a case-insensitive disk, where ``Pong-v0_weights_EVAL.json`` holds the first name."""
    weights = tmp_path / "Pong-v0_weights.h5"
    held = tmp_path / "Pong-v0_weights_eval.json"
    held.write_text("an earlier evaluation")
    asked = []

    def the_held_name(_):
        asked.append(held)
        assert len(asked) < 10, "it keeps asking for the name it cannot take"
        return held

    monkeypatch.setattr(evaluation.protocol, "summary_path", the_held_name)
    assert evaluation.write_new_summary(weights, pong_summary()) == tmp_path / "Pong-v0_weights_eval-2.json"
    assert held.read_text() == "an earlier evaluation"


def test_a_summary_into_a_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="cannot write the evaluation summary"):
        evaluation.write_summary(tmp_path / "nowhere" / "x.json", pong_summary())


def test_evaluations_append_to_the_log_the_visualizer_reads(tmp_path):
    log = tmp_path / "Pong-v0_eval.txt"
    evaluation.log_evaluation(log, pong_summary(), step=10_000)
    evaluation.log_evaluation(log, pong_summary(scores=(-21.0, -20.0)), step=20_000)
    records = runlog.read_eval_log(log)
    assert [record.step for record in records] == [10_000, 20_000]
    assert records[1].mean_score == -20.5 and records[1].episodes == 2
    assert records[0].human_normalized == pytest.approx(40.7 / 30)  # the unit of the JSON summary


def test_a_real_evaluation_summary_is_consistent_with_its_games():
    env = make_eval_env("ALE/Breakout-v5")
    summary = evaluate(env, lambda state: 1, episodes=3, max_frames=2000, seed=5)
    assert summary.game == "breakout" and summary.env_id == "ALE/Breakout-v5"
    assert summary.noop_max == evaluation.NOOP_MAX and summary.epsilon == evaluation.EPSILON
    assert summary.mean == pytest.approx(np.mean([episode.score for episode in summary.games]))
    assert summary.human_normalized == pytest.approx((summary.mean - 1.7) / 30.1)


# ---------------------------------------------------------------------------------------------
# Video


def record_first_game(path, env_id="PongNoFrameskip-v4", max_frames=240):
    """Records game 1 of a 2-game evaluation; returns (recorder, decisions in game 1, env)."""
    env = make_eval_env(env_id)
    policy = CountingPolicy()
    with VideoRecorder(path) as recorder:
        evaluate(env, policy, episodes=2, epsilon=0.0, max_frames=max_frames, seed=1,
                 recorder=recorder, on_episode=policy.game_over)
    return recorder, policy.calls_per_game[0], env


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_a_recorded_game_decodes_to_one_native_frame_per_decision(tmp_path, suffix):
    path = tmp_path / f"pong{suffix}"
    recorder, decisions, _ = record_first_game(path)
    frames = iio.imread(path, index=None, **({"plugin": "FFMPEG"} if suffix == ".mp4" else {}))
    assert frames.shape == (decisions + 1, 210, 160, 3)
    assert recorder.frames_written == decisions + 1
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_gif_keeps_the_atari_colours_exactly(tmp_path):
    path = tmp_path / "breakout.gif"
    env = make_eval_env("Breakout-v0")
    with VideoRecorder(path) as recorder:
        evaluate(env, lambda state: 3, episodes=1, max_frames=200, seed=2, recorder=recorder)
    last = iio.imread(path, index=recorder.frames_written - 1)[..., :3]
    np.testing.assert_array_equal(last, evaluation.native_screen(env))


def test_an_mp4_shows_the_game_at_15_fps_close_to_its_colours(tmp_path):
    path = tmp_path / "breakout.mp4"
    env = make_eval_env("Breakout-v0")
    with VideoRecorder(path) as recorder:
        evaluate(env, lambda state: 3, episodes=1, max_frames=200, seed=2, recorder=recorder)
    assert iio.immeta(path, plugin="FFMPEG")["fps"] == 15.0
    last = iio.imread(path, index=recorder.frames_written - 1, plugin="FFMPEG")
    assert np.abs(last.astype(int) - evaluation.native_screen(env)).mean() < 4


@pytest.mark.parametrize("name", ["game.avi", "game", "game.mp4.txt"])
def test_an_unknown_video_suffix_is_a_user_error(tmp_path, name):
    with pytest.raises(UserError, match=r"must end in \.mp4 or \.gif"):
        VideoRecorder(tmp_path / name)


def test_a_video_into_a_missing_or_unwritable_folder_or_onto_a_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no folder"):
        VideoRecorder(tmp_path / "nowhere" / "game.mp4")
    (tmp_path / "taken.mp4").mkdir()
    with pytest.raises(UserError, match="taken.mp4: it is a folder"):
        VideoRecorder(tmp_path / "taken.mp4")
    with pytest.raises(UserError, match="cannot record /proc/game.mp4: "):  # no file can be made there, even by root
        with VideoRecorder("/proc/game.mp4"):
            pass


def test_a_failed_recording_leaves_no_file_behind(tmp_path):
    path = tmp_path / "game.mp4"
    with pytest.raises(RuntimeError, match="interrupted"):
        with VideoRecorder(path) as recorder:
            recorder.add(np.zeros((210, 160, 3), np.uint8))
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


CUT_OFF_RECORDING = """
import sys
import numpy as np
from common.errors import UserError
from evaluation import VideoRecorder
try:
    with VideoRecorder(sys.argv[1]) as recorder:
        for frame in np.random.default_rng(0).integers(0, 256, (int(sys.argv[2]), 210, 160, 3), dtype=np.uint8):
            recorder.add(frame)  # noise: it hardly compresses, so the file outgrows the limit
except UserError as error:
    print(error)
"""


# 120 frames: ffmpeg is stopped while frames still arrive; 12 GIF frames: only the finished file is short
@pytest.mark.parametrize("suffix, frames", [(".mp4", 120), (".gif", 120), (".gif", 12)])
def test_a_video_the_encoder_could_not_finish_is_refused_and_the_earlier_one_kept(tmp_path, suffix, frames):
    path = tmp_path / f"game{suffix}"
    path.write_bytes(b"an earlier good video")
    # ulimit -f (KiB): the encoder is stopped part way, as by a full disk
    result = subprocess.run(["bash", "-c", 'ulimit -f 400 && exec "$0" -c "$1" "$2" "$3"', sys.executable,
                             CUT_OFF_RECORDING, str(path), str(frames)], capture_output=True, text=True, timeout=120,
                            cwd=Path(evaluation.__file__).parent.parent)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"cannot record {path}: "), result.stdout + result.stderr[-2000:]
    assert path.read_bytes() == b"an earlier good video"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_frames_of_another_size_or_type_are_refused(tmp_path):
    with pytest.raises(ValueError, match="differs"):
        with VideoRecorder(tmp_path / "game.gif") as recorder:
            recorder.add(np.zeros((210, 160, 3), np.uint8))
            recorder.add(np.zeros((84, 84, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        with VideoRecorder(tmp_path / "game.gif") as recorder:
            recorder.add(np.zeros((210, 160), np.uint8))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# The game window, for real, on a virtual X display

# The window is looked for until it shows or 10 s have passed: the emulator's X requests reach the
# server when its client flushes them, which on a loaded machine may be after the game's last frame.
WINDOW_SCRIPT = """
import subprocess, time, evaluation
env = evaluation.make_eval_env("Pong-v0", render_mode="human")
summary = evaluation.evaluate(env, lambda state: 0, episodes=1, max_frames=120, seed=0)
print(summary.describe())
deadline = time.monotonic() + 10
while True:
    tree = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True, check=True).stdout
    if "The Arcade Learning Environment" in tree or time.monotonic() > deadline:
        break
    time.sleep(0.2)
print(tree)
"""


@pytest.fixture
def virtual_display():
    """A fresh Xvfb server's display name (``:N``); skipped where Xvfb or xwininfo is not installed."""
    if shutil.which("Xvfb") is None or shutil.which("xwininfo") is None:
        pytest.skip("needs Xvfb and xwininfo (Debian: apt-get install xvfb x11-utils)")
    server = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "640x480x24", "-nolisten", "tcp"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        yield ":" + server.stdout.readline().strip()
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_human_render_mode_opens_the_game_window_on_a_display(virtual_display):
    environment = {**os.environ, "DISPLAY": virtual_display, "SDL_AUDIODRIVER": "dummy"}
    result = subprocess.run([sys.executable, "-c", WINDOW_SCRIPT], cwd=Path(evaluation.__file__).parent.parent,
                            env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "1 game:" in result.stdout
    window = re.search(r'"The Arcade Learning Environment".*?\s(\d+)x(\d+)\+', result.stdout)
    assert window, result.stdout
    assert int(window[1]) >= 160 and int(window[2]) >= 210 * 3 // 4


# ---------------------------------------------------------------------------------------------
# Evaluations during training


def test_training_evaluations_keep_the_weights_of_the_best_one(tmp_path, monkeypatch):
    from agent import build_agent, load_weights
    from training.config import RunFiles
    from training.periodic_evaluation import PeriodicEvaluation

    files = RunFiles.for_env(tmp_path, "Pong-v0")
    config = type("Config", (), {"eval_every": 100, "seed": 0})
    means = iter([-20.0, -5.0, -12.0, 3.0])
    monkeypatch.setattr(evaluation, "evaluate", lambda *args, **kwargs: pong_summary(scores=(next(means),)))
    agent, probe = build_agent(6), build_agent(6).online

    def evaluate_marked(periodic, step, marker):
        """Marks the agent's weights, evaluates, and returns the mark of the weights kept as best."""
        agent.online.layers[-1].bias.assign(np.full(6, marker, np.float32))
        assert periodic.due(step)
        periodic.run(step, agent)
        load_weights(files.best_weights, probe, game="pong")
        return float(probe.layers[-1].bias.numpy()[0])

    periodic = PeriodicEvaluation(config, files, env=None, game="pong")
    assert not periodic.due(50)  # not a multiple of --eval-every
    assert evaluate_marked(periodic, 100, 1.0) == 1.0  # the first evaluation is the best so far
    assert evaluate_marked(periodic, 200, 2.0) == 2.0  # -5 beats -20
    assert evaluate_marked(periodic, 300, 3.0) == 2.0  # -12 does not: the file keeps step 200's
    assert [record.mean_score for record in runlog.read_eval_log(files.evaluations)] == [-20.0, -5.0, -12.0]
    resumed = PeriodicEvaluation(config, files, env=None, game="pong")  # competes with the log's past
    assert evaluate_marked(resumed, 400, 4.0) == 4.0  # 3 beats -5


def test_the_best_weights_are_saved_before_their_row_and_a_failed_save_is_not_called_saved(tmp_path, monkeypatch,
                                                                                              capsys):
    import training.periodic_evaluation
    from agent import build_agent
    from training.config import RunFiles
    from training.periodic_evaluation import PeriodicEvaluation

    files = RunFiles.for_env(tmp_path, "Pong-v0")
    config = type("Config", (), {"eval_every": 100, "seed": 0})
    monkeypatch.setattr(evaluation, "evaluate", lambda *args, **kwargs: pong_summary(scores=(-20.0,)))
    rows_when_saved = []

    def save_weights(path, model, game):
        rows_when_saved.append(files.evaluations.exists())
        raise UserError(f"cannot write {path}: No space left on device")

    monkeypatch.setattr(training.periodic_evaluation, "save_online_weights", save_weights)
    PeriodicEvaluation(config, files, env=None, game="pong").run(100, build_agent(6))
    captured = capsys.readouterr()
    assert rows_when_saved == [False]
    assert "warning: cannot write" in captured.err and "saved to" not in captured.out
    assert [record.step for record in runlog.read_eval_log(files.evaluations)] == [100]


def test_a_stop_request_ends_a_training_evaluation_between_games_and_logs_nothing(tmp_path, monkeypatch):
    from agent import build_agent
    from training.config import RunFiles
    from training.periodic_evaluation import PeriodicEvaluation

    files = RunFiles.for_env(tmp_path, "Pong-v0")
    played = []

    def ten_games(*args, on_episode, **kwargs):
        for number in range(1, evaluation.TRAINING_EVAL_EPISODES + 1):
            played.append(number)
            on_episode(number, None)
        return pong_summary(scores=(-20.0,))

    monkeypatch.setattr(evaluation, "evaluate", ten_games)
    periodic = PeriodicEvaluation(type("Config", (), {"eval_every": 100, "seed": 0}), files, env=None, game="pong")
    agent = build_agent(6)
    assert periodic.run(100, agent, stop=lambda: len(played) >= 3) is False
    assert played == [1, 2, 3] and not files.evaluations.exists() and not files.best_weights.exists()
    played.clear()
    assert periodic.run(100, agent, stop=lambda: played[-1] == 10) is True
    assert played == list(range(1, 11)), "a stop after the last game lets the evaluation count"
    assert [record.step for record in runlog.read_eval_log(files.evaluations)] == [100]
