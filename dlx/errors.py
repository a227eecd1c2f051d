"""Errors that are the user's to fix: the CLI prints them as one `error:` line and exits 2."""


class UsageError(Exception):
    """Bad usage or bad input (an unknown option, an invalid value, a missing or corrupt file)."""


class Unavailable(UsageError):
    """Something the run needs from outside its config is missing: a data file that is not there
    and could not be downloaded, or an optional extra (torch) that is not installed.

    Validation reports it only after every check of the config itself, so that a mistake in the
    command is named as such even offline or without the extra. ``spec`` is what is known of the
    data without its files (MNIST's images are 1x28x28 whatever the files say), or None."""

    def __init__(self, message: str, spec=None):
        super().__init__(message)
        self.spec = spec


class Rejected(BaseException):
    """Carries a UsageError out of a Hydra callback or an OmegaConf resolver (which would turn
    an Exception into a warning, or wrap it in an interpolation error). ``code``: the exit code
    (2, bad usage; 1 for a run that could not start, e.g. on a full disk)."""

    def __init__(self, error: Exception, code: int = 2):
        super().__init__(error)
        self.code = code
