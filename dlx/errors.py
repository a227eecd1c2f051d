"""Errors that are the user's to fix: the CLI prints them as one `error:` line and exits 2."""


class UsageError(Exception):
    """Bad usage or bad input (an unknown option, an invalid value, a missing or corrupt file)."""
