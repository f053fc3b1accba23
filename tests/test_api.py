"""The Python API (``from dqn_atari import train, evaluate, ...``): a real run of Pong-v0 from
Python, the figures it returns checked against the files it wrote, and bad settings refused with
the command line's own messages."""
import json

import pytest

from common import runlog
from common.errors import UserError
from dqn_atari import Config, evaluate, play, resume, train
from training.options import worded

SMALL = dict(env_id="Pong-v0", memory_size=2000, memory_compression="none", seed=0, threads=1)


def test_train_resume_and_evaluate_from_python_return_what_the_files_hold(tmp_path, capsys):
    summary = train(Config(steps=900, pre_steps=200, out=str(tmp_path), **SMALL), save_every=1)
    records = runlog.read_log(summary.files.log)
    assert summary.finished and summary.steps == 900 and summary.config.seed == 0
    assert summary.episodes == len(records) >= 1
    assert summary.mean_recent_score == pytest.approx(sum(r.score for r in records) / len(records))
    assert json.loads(summary.files.config.read_text())["steps"] == 900

    resumed = resume(tmp_path, "Pong-v0", steps=1_000)  # from the final checkpoint: 100 steps more
    assert resumed.finished and resumed.steps == 1_000 and resumed.episodes >= summary.episodes

    judged = evaluate(summary.files.weights, "Pong-v0", games=1, seed=0)
    saved = json.loads(summary.files.weights.with_name("Pong-v0_weights_eval.json").read_text())
    assert judged.episodes == 1 and saved["mean_score"] == judged.mean and -21 <= judged.mean <= 21
    played = play(summary.files.weights, "Pong-v0", seed=0)
    assert played.episodes == 1 and played.epsilon == 0.01 and played.max_frames is None
    assert "game 1: score" in capsys.readouterr().out


@pytest.mark.parametrize("settings, message", [
    (dict(steps=-5), "argument --steps: -5 is negative"),
    (dict(env_id="Pongg-v0"), "Pongg-v0"),
    (dict(memory_size=10, batch_size=32), "--memory-size 10 is smaller than --batch-size 32"),
    (dict(prioritized=True, envs=2), "--prioritized keeps one replay memory for the whole run: use it with --envs 1"),
])
def test_a_setting_the_command_line_refuses_raises_its_user_error(tmp_path, settings, message):
    with pytest.raises(UserError) as refused:
        train(Config(out=str(tmp_path / "run")), **settings)
    assert message in worded(refused.value)
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_evaluating_missing_weights_raises_the_user_error(tmp_path):
    with pytest.raises(UserError, match="weights file not found"):
        evaluate(tmp_path / "none.h5", "Pong-v0")
