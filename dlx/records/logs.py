"""Logging pieces used by conf/hydra/*_logging/dlx.yaml."""

from __future__ import annotations

import logging
import sys


class ConsoleHandler(logging.StreamHandler):
    """Writes to the *current* ``sys.stderr`` (so a live progress bar can redirect it), and
    skips records logged with ``extra={"console": False}`` (file-only lines)."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(lambda record: getattr(record, "console", True))

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class FileHandler(logging.FileHandler):
    """run.log. A write that fails (a full disk) is said once on the console, not as one
    "--- Logging error ---" traceback per message; this process writes no more to the file."""

    failed = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        if not self.failed:
            self.failed = True
            e = sys.exc_info()[1]
            sys.stderr.write(f"warning: cannot write {self.baseFilename}: "
                             f"{getattr(e, 'strerror', None) or e}; the log goes on on the "
                             f"console only\n")
