"""Errors that are the user's to fix: the CLI prints them as one message and exits 2."""

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad usage, configuration or data. The message says what, where, and how to fix it."""
