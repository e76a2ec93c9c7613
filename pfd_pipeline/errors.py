"""Errors the CLI turns into a one-paragraph message and a non-zero exit code."""


class PfdError(Exception):
    """Base of every error meant for the person running pfd."""


class RunFailed(PfdError):
    """The run failed; the message names the file, row, column and rule where it can."""


class Busy(PfdError):
    """Another `pfd run` holds the warehouse."""
