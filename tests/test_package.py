"""The installed commands (``pip install -e .``, which requirements-dev.txt does) behave exactly as
the scripts: the same help, the same one-line refusal and exit code."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
COMMANDS = {"dqn-atari": "dqn_atari.py", "reward-visualizer": "reward_visualizer.py", "dqn-sweep": "dqn_sweep.py"}


def run(argv, cwd):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", COLUMNS="100")
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


@pytest.mark.parametrize("command, script", COMMANDS.items())
def test_each_command_is_installed_and_prints_the_scripts_help(tmp_path, command, script):
    path = shutil.which(command, path=str(BIN))
    if path is None:
        pytest.skip(f"{command} is not installed beside {sys.executable}: pip install -e . installs it")
    installed = run([path, "-h"], cwd=tmp_path)  # from another folder: nothing found by accident
    scripted = run([sys.executable, str(REPO_ROOT / script), "-h"], cwd=tmp_path)
    assert installed.returncode == scripted.returncode == 0, installed.stderr[-2000:]
    assert installed.stdout.replace(command, script) == scripted.stdout


def test_the_installed_commands_refuse_bad_input_as_the_scripts_do(tmp_path):
    path = shutil.which("dqn-atari", path=str(BIN))
    if path is None:
        pytest.skip(f"dqn-atari is not installed beside {sys.executable}: pip install -e . installs it")
    refused = run([path, "-env", "Pongg-v0"], cwd=tmp_path)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert refused.stderr.startswith("dqn_atari.py: error: ") and "Pongg-v0" in refused.stderr
    (tmp_path / "bad_log.txt").write_text("not,a,run,log\n1,2\n")
    shown = run([shutil.which("reward-visualizer", path=str(BIN)), "-f", "bad_log.txt"], cwd=tmp_path)
    assert shown.returncode == 2 and len(shown.stderr.strip().splitlines()) == 1, shown.stderr
