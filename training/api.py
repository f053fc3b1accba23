"""The Python API: train, resume, evaluate and play from Python with the command line's Config
and checks; a setting the command line refuses raises the UserError it would print.

    from dqn_atari import Config, train, evaluate
    summary = train(Config(env_id="Breakout-v0", preset="laptop", out="runs/breakout"))
    print(summary.mean_recent_score, evaluate(summary.files.weights, "Breakout-v0").mean)
"""
import dataclasses

from training.config import Config
from training.options import (EVAL_GAMES, RaisingParser, argv_of, build_parser, check_combination,
                              config_from_args, explicit_fields)


def train(config=None, **settings):
    """Trains as this command would with ``config`` (a Config; ``settings`` replace its fields, as
    ``train(env_id="Breakout-v0", preset="laptop")``); returns the run's RunSummary (steps,
    episodes, mean of the last 100 scores, files). A setting the command line would refuse raises
    the UserError it prints."""
    from training.runs import train as train_run

    config, _ = _checked(config, settings)
    return train_run(config)


def resume(out, env_id=Config.env_id, **settings):
    """Goes on with the run of ``env_id`` in ``out`` from its newest checkpoint, as ``--resume``
    does; ``settings`` may change what a resume may change (``steps``, ...). Returns its RunSummary."""
    from training.runs import resume as resume_run

    config, given = _checked(Config(env_id=env_id, out=str(out), **settings), {}, resume=True)
    return resume_run(config, given)


def evaluate(weights, env_id=Config.env_id, *, games=EVAL_GAMES, seed=None, record=None):
    """The published protocol, as ``--eval``: returns the EvalSummary (mean, std, min, max,
    human-normalised) and writes its JSON beside ``weights``."""
    return _play(weights, env_id, games=games, seed=seed, record=record, protocol=True)


def play(weights, env_id=Config.env_id, *, games=1, seed=None, render=False, record=None):
    """Games at epsilon 0.01, as ``--play``; returns their EvalSummary."""
    return _play(weights, env_id, games=games, seed=seed, record=record, protocol=False, render=render)


def _checked(config, settings, *, resume=False):
    """``config`` with ``settings``, put through the command line's checks: (Config, given fields)."""
    config = dataclasses.replace(config or Config(), **settings)
    argv = ["--resume"] * resume + argv_of(config)
    parser = build_parser(RaisingParser)
    args = parser.parse_args(argv)
    given = explicit_fields(argv)
    check_combination(parser, args, given)
    return config_from_args(args, given), given


def _play(weights, env_id, *, games, seed, record, protocol, render=False):
    from evaluation.play import play as play_games

    argv = ["--eval" if protocol else "--play", str(weights), "--games", str(games)]
    argv += argv_of(Config(env_id=env_id, seed=seed, render=render)) + (["--record", str(record)] if record else [])
    parser = build_parser(RaisingParser)
    args = parser.parse_args(argv)
    check_combination(parser, args, explicit_fields(argv))
    return play_games(config_from_args(args), str(weights), games=games, protocol=protocol, record=record)
