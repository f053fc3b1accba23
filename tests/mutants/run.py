"""Breaks one piece of the trainer at a time and checks that the tests named for it then fail.

    .venv/bin/python tests/mutants/run.py             # every mutant (about 15 minutes on 2 cores)
    .venv/bin/python tests/mutants/run.py NAME ...    # some of them; --list names them

A mutant is one text substitution, made in a copy of the working tree (the tree itself is never
touched); the copy then runs the mutant's tests with pytest. A mutant is killed when at least one
of them fails, and survives when all pass: then the suite cannot see that bug. Exit status: 0 when
every mutant chosen was killed, 1 when one survived, 2 when one could not be made (its text is not
in the code any more: update the table with the code).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

REPO_ROOT = Path(__file__).resolve().parents[2]
CATCH_FLOAT32 = "tests/test_learning.py::test_training_loop_learns_catch_to_a_near_optimal_score[float32]"
LIFE_LOSS = "tests/test_learning.py::test_the_loop_stores_a_lost_life_as_a_terminal_for_learning_unless_told_not_to"


class Mutant(NamedTuple):
    path: str
    original: str
    mutated: str
    tests: tuple
    why: str


MUTANTS = {
    "target-never-synced": Mutant(
        "training/loop.py", "                    agent.sync_target()\n", "                    pass\n",
        (CATCH_FLOAT32,), "the loop never copies the online network into the target network"),
    "wrong-actions-stored": Mutant(
        "training/loop.py", "stream.add(action, ", "stream.add((action + 1) % agent.num_actions, ",
        (CATCH_FLOAT32,), "the memory stores another action than the one played"),
    "discount-not-cut-at-terminal": Mutant(
        "memory/replay.py", "discounts = np.where(self._terminated[last], 0.0, powers[steps])",
        "discounts = powers[steps]", ("tests/test_memory.py",),
        "a transition that ended the game (or a life) still bootstraps from the next state"),
    "max-instead-of-double-dqn": Mutant(
        "agent/learning.py", "a_t = ops.argmax(q_t_online, axis=1)", "a_t = ops.argmax(q_t_target, axis=1)",
        ("tests/test_agent.py::test_double_dqn_target_uses_online_argmax_and_target_value",),
        "plain DQN's target: the target network both picks and values the next action"),
    "life-loss-not-terminal": Mutant(
        "training/loop.py", "learning_terminal = terminated or (config.life_loss_signal and info.get(\"life_lost\", False))",
        "learning_terminal = terminated", (LIFE_LOSS,),
        "the loop stores a lost life as an ordinary step"),
    "quantile-target-picks-by-the-target-network": Mutant(
        "agent/learning.py", "a_t = ops.argmax(ops.mean(q_t_online, axis=2), axis=1)",
        "a_t = ops.argmax(ops.mean(q_t_target, axis=2), axis=1)", ("tests/test_heads.py",),
        "QR-DQN without Double DQN: the target network's quantiles both pick and value a_t"),
    "quantile-loss-asymmetry-flipped": Mutant(
        "agent/learning.py", "below = ops.cast(u < 0.0, u.dtype)", "below = ops.cast(u > 0.0, u.dtype)",
        ("tests/test_heads.py",), "each quantile is pulled toward 1 - tau instead of tau"),
    "dueling-advantage-mean-not-subtracted": Mutant(
        "agent/network.py", "q = value + advantages - ops.mean(advantages, axis=1, keepdims=True)",
        "q = value + advantages", ("tests/test_heads.py",), "Q = V + A: the value stream is not identifiable"),
    "rewards-overwritten-in-frame-skip": Mutant(
        "preprocessing/wrappers.py", "total_reward += float(reward)", "total_reward = float(reward)",
        ("tests/test_preprocessing.py",), "the seed's bug: only the last repeated frame's reward counts"),
}


def make_mutant_tree(mutant, destination):
    """A copy of the working tree at ``destination`` (without .git, .venv and runs/) with the
    mutant's substitution made; raises LookupError when its text is not in the file exactly once."""
    ignored = shutil.ignore_patterns(".git", ".venv", "runs", "__pycache__", ".pytest_cache", "*_checkpoints")
    shutil.copytree(REPO_ROOT, destination, ignore=ignored)
    path = destination / mutant.path
    text = path.read_text()
    if text.count(mutant.original) != 1:
        raise LookupError(f"{mutant.path}: the text to mutate occurs {text.count(mutant.original)} times, not once")
    path.write_text(text.replace(mutant.original, mutant.mutated))


def run_mutant(name, mutant):
    """'killed', 'survived' or 'not made'; prints the tests' outcome."""
    with tempfile.TemporaryDirectory(prefix=f"mutant-{name}-") as folder:
        tree = Path(folder) / "tree"
        try:
            make_mutant_tree(mutant, tree)
        except LookupError as error:
            print(f"{name}: not made: {error}")
            return "not made"
        started = time.monotonic()
        command = [sys.executable, "-m", "pytest", "-n", "0", "-q", "-x", "-p", "no:cacheprovider",
                   "--no-header", *mutant.tests]
        result = subprocess.run(command, cwd=tree, capture_output=True, text=True,
                                env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    lines = result.stdout.strip().splitlines()
    failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    reasons = [line for line in lines if line.startswith("E   ")][:1]
    outcome = "killed" if result.returncode == 1 and failed else "survived" if result.returncode == 0 else "error"
    print(f"{name}: {outcome} in {time.monotonic() - started:.0f} s ({mutant.why})")
    for line in (failed + reasons) or lines[-1:]:
        print(f"    {line[:300]}")
    return outcome


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help="mutants to run (default: all)")
    parser.add_argument("--list", action="store_true", help="name the mutants and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, mutant in MUTANTS.items():
            print(f"{name}: {mutant.why} ({mutant.path})")
        return 0
    unknown = sorted(set(args.names) - set(MUTANTS))
    if unknown:
        parser.error(f"unknown mutant {unknown[0]!r}; --list names them")
    outcomes = [run_mutant(name, MUTANTS[name]) for name in args.names or MUTANTS]
    print(f"{outcomes.count('killed')} killed, {len(outcomes) - outcomes.count('killed')} not killed")
    return 2 if "not made" in outcomes else 0 if set(outcomes) == {"killed"} else 1


if __name__ == "__main__":
    sys.exit(main())
