#!/usr/bin/env python3
"""Train a Keras Deep-Q-Network (Nature DQN + Double DQN) to play an Atari game from pixels.

    python3 dqn_atari.py -env Breakout-v0
    python3 dqn_atari.py -env Breakout-v0 --continue Breakout-v0_weights.h5 --start 0.1 --end 0.0 -pre 300000
    python3 dqn_atari.py -env Pong-v0 --play Pong-v0_weights.h5 -r

The entry point: it parses the options (``training.options``), dispatches to ``training.runs``
(train, resume) and ``evaluation.play`` (play, evaluate), and words the errors of the packages
below, which name settings by their Config fields, as this command's flags. From Python, the same
with the same checks: ``from dqn_atari import Config, train, evaluate, play, resume``
(``training.api``).
"""
import sys

from common.errors import UserError
from training.api import evaluate, play, resume, train
from training.build import PROG
from training.config import PRESETS, Config
from training.options import (EVAL_GAMES, build_parser, check_combination, config_from_args, explicit_fields,
                              flag_name, worded)

__all__ = ["Config", "PRESETS", "evaluate", "main", "play", "resume", "train"]


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    explicit = explicit_fields(argv)
    check_combination(parser, args, explicit)
    config = config_from_args(args, explicit)
    try:  # the heavy modules only once the command line is known to be good
        if args.play or args.eval:
            from evaluation.play import play as play_games

            games = args.games or (EVAL_GAMES if args.eval else 1)
            play_games(config, args.eval or args.play, games=games, protocol=bool(args.eval), record=args.record)
        elif args.resume:
            from training.runs import resume as resume_run

            resume_run(config, explicit)
        else:
            from training.runs import train as train_run

            train_run(config, name=flag_name)
        return 0
    except UserError as error:
        print(f"{PROG}: error: {worded(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
