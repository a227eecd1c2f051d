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
