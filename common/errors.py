"""The one exception type for mistakes a user can make.

The command-line tools catch :class:`UserError`, print its message as a single line on
stderr and exit with status 2. Any other exception is a bug and is allowed to trace back.
:class:`OneLineErrorParser` does the same for a mistake on the command line itself.
"""
import argparse
import sys


class UserError(Exception):
    """A problem with the user's input (a game id, a file, a number), not with the code."""


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit status 2), like a UserError's."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see -h)\n")


def run_main(main, prog):
    """Calls ``main()``; a UserError it raises becomes one line on stderr and exit status 2."""
    try:
        main()
    except UserError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        sys.exit(2)
