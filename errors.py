"""The one exception type for mistakes a user can make.

The command-line tools catch :class:`UserError`, print its message as a single line on
stderr and exit with status 2. Any other exception is a bug and is allowed to trace back.
"""


class UserError(Exception):
    """A problem with the user's input (a game id, a file, a number), not with the code."""
