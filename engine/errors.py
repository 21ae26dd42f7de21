"""The one exception type for mistakes a user can fix (bad config, missing or corrupt file).

Command-line entry points catch it and print a single line instead of a traceback."""


class UserError(Exception):
    """A problem with the user's input: the message names what is wrong and how to fix it."""
