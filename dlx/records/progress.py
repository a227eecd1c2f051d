"""Training progress: a rich bar on a terminal, plain periodic log lines otherwise.

Epoch lines always reach run.log; on the console they appear only in ``log`` mode, so a live
bar is not interleaved with them.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("dlx.train")

MODES = ("auto", "bar", "log", "none")


class Progress:
    def __init__(self, mode: str, total_steps: int, epochs: int, title: str):
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        self.mode, self.total_steps, self.epochs, self.title = mode, total_steps, epochs, title
        self._bar = None

    def __enter__(self) -> "Progress":
        if self.mode == "bar":
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"), TextColumn("epoch {task.fields[epoch]}"),
                BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                TimeElapsedColumn(), TimeRemainingColumn(),
                console=Console(stderr=True), transient=False)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.title, total=self.total_steps,
                                            epoch=f"0/{self.epochs}", loss="-")
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def step(self, step: int, epoch: int, loss: float) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=step, epoch=f"{epoch}/{self.epochs}",
                             loss=f"{loss:.4g}")

    def epoch_end(self, line: str) -> None:
        log.info(line, extra={"console": self.mode == "log"})
