"""Printing a report to PDF with a headless Chromium, and counting the pages printed.

The report is plain HTML with CSS for print; any browser's print gives the PDF. This drives
Chromium's own ``--print-to-pdf`` (Debian: ``apt-get install chromium``) so that the PDF and its
page count can be made and checked from the command line and in tests."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from dlx.errors import UsageError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# a profile of its own, no network beyond the file, no first-run or update machinery
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--hide-scrollbars", "--mute-audio"]
# a page object, not the /Pages tree nodes
_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")


def browser() -> str | None:
    """The first Chromium-like browser on PATH, or None."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the browser headless with a throw-away profile; UsageError if there is none."""
    exe = browser()
    if exe is None:
        raise UsageError("no Chromium to print with (install it: apt-get install chromium; "
                         "or open report.html in a browser and print)")
    with tempfile.TemporaryDirectory(prefix="dlx-chromium-") as profile:
        try:
            return subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", *args],
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise UsageError(f"{exe} did not finish printing within {timeout:g} s") from None


def print_pdf(html: Path, pdf: Path, timeout: float = 120) -> int:
    """Print ``html`` to ``pdf`` (A4, as the report's CSS asks; no browser header or footer);
    return the number of pages."""
    pdf.unlink(missing_ok=True)
    result = chromium(["--no-pdf-header-footer", "--virtual-time-budget=10000",
                       f"--print-to-pdf={pdf}", html.resolve().as_uri()], timeout)
    if not pdf.is_file() or pdf.stat().st_size == 0:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(f"chromium did not write {pdf} (exit {result.returncode}: {tail})")
    return pages(pdf)


def pages(pdf: Path) -> int:
    """Pages of a PDF: its ``/Type /Page`` objects (Chromium writes no compressed object
    streams, so each page object is plain text in the file)."""
    return len(_PAGE.findall(pdf.read_bytes()))
