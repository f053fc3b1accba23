"""Argument types for the command lines: each bad number becomes one line on stderr and exit code 2."""
import argparse
import math

MAX_SEED = 2**32 - 1  # NumPy's and the ALE's seeds are 32-bit
MAX_THREADS = 1024


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except for on/off flags and options that have none."""

    def _get_help_string(self, action):
        if action.nargs == 0 or action.default is None:
            return action.help
        return super()._get_help_string(action)


def _number(text, kind, convert):
    try:
        return convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None


def whole_number(text):
    value = _number(text, "a whole number", int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    if value > 10**10:
        raise argparse.ArgumentTypeError(f"{value} is absurdly large")
    return value


def seed(text):
    value = whole_number(text)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"{value} is larger than the largest seed, 2**32 - 1")
    return value


def thread_count(text):
    value = whole_number(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"{value} is absurdly many threads (at most {MAX_THREADS})")
    return value


def positive_number(text):
    value = whole_number(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def positive_float(text):
    value = _number(text, "a number", float)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{value} must be a finite number greater than 0")
    return value


def non_negative_float(text):
    """A finite number that may be 0 (a share of a GPU, where 0 is none)."""
    value = _number(text, "a number", float)
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{value} must be a finite number, 0 or more")
    return value


def probability(text):
    value = _number(text, "a number", float)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 1")
    return value


def priority_exponent(text):
    value = probability(text)
    if value == 0.0:
        raise argparse.ArgumentTypeError("0 would sample uniformly: leave out --prioritized instead")
    return value


def learning_rate(text):
    value = positive_float(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is absurdly large for a learning rate")
    return value
