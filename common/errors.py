"""The one exception type for mistakes a user can make.

The command-line tools catch :class:`UserError`, print its message as a single line on
stderr and exit with status 2; a :class:`SettingError` names settings the way the caller spells
them (the training command: its flags). Any other exception is a bug and is allowed to trace back.
:class:`OneLineErrorParser` does the same for a mistake on the command line itself.
"""
import argparse
import sys


class UserError(Exception):
    """A problem with the user's input (a game id, a file, a number), not with the code."""


class SettingError(UserError):
    """A UserError about settings, whose message names each by its configuration field in braces:
    ``SettingError("{memory_size} 10 is smaller than {batch_size} 32")``.

    ``str()`` gives the field names as they are (what a Python caller passed); the command line
    words them as its flags with ``worded(flag_name)``: ``--memory-size 10 is smaller than ...``.
    """

    def __init__(self, template):
        self.template = template
        super().__init__(self.worded())

    def worded(self, name=str):
        """The message with each ``{field}`` replaced by ``name(field)``."""
        return self.template.format_map(_Names(name))

    @staticmethod
    def literal(text):
        """``text`` (a path, another error's message) escaped for a template."""
        return str(text).replace("{", "{{").replace("}", "}}")


class _Names(dict):
    def __init__(self, name):
        super().__init__()
        self.name = name

    def __missing__(self, field):
        return self.name(field)


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
