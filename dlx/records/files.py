"""Every file of a run's (and a sweep's) record, named once; and the rule for file names made
from what a record holds."""

import errno
import os
import re
from contextlib import contextmanager
from pathlib import Path

SUMMARY = "summary.json"        # status, final and best metrics, timings, versions
METRICS = "metrics.csv"         # step,epoch,split,metric,value: byte-identical for one config+seed
CONFIG = "config.yaml"          # the resolved config: what ran
MODEL = "model.npz"             # the final weights
CHECKPOINT = "checkpoint.npz"   # what an interrupted run resumes from
TIMING = "timing.csv"           # wall-clock training time per epoch (kept out of metrics.csv)
LAYER_STATS = "layer_stats.csv"  # per-layer statistics (probe_every)
LOG = "run.log"                 # the log; a failed run's traceback
PLOTS = "plots"                 # the figures
MULTIRUN = "multirun.yaml"      # a sweep's record (Hydra's)
NOTES = "notes.md"              # the learner's notes (`dlx note`)
TAGS = "tags.txt"               # the learner's tags (`dlx tag`)
TUNING = "tuning.csv"           # a tuned sweep's trials and each arm's choice (dlx.tuning)


def file_name(stem: str) -> str:
    """A file name made from names a record holds (a metric, a split, a run's name): anything
    but letters, digits and ``._+=-`` becomes ``_``, and no leading dot, so that no name in a
    run directory (untrusted input) can put a file outside the folder it is written to
    (``../x``, ``/etc/x``)."""
    return re.sub(r"[^\w.+=-]", "_", stem, flags=re.ASCII).lstrip(".") or "_"


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Text from a record as a terminal may show it: control characters (an ESC that would
    clear the screen or forge a link, a carriage return that hides a line) as visible escapes
    (``\\x1b``); newlines and tabs kept."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


@contextmanager
def replacing(path: Path):
    """Yields a binary file to write ``path``'s new content to: a temporary file beside it that
    replaces ``path`` in one rename once written, and is deleted if writing fails (a full disk,
    an interrupt), so that a failure leaves neither a torn file nor a temporary one holding the
    space the run's final status needs."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes, in_place_if_full: bool = False) -> None:
    """``path`` holds ``data``, atomically (:func:`replacing`). ``in_place_if_full``: on a full
    disk, overwrite ``path`` itself instead: truncating frees its blocks, so a small file (a
    summary's final status) still fits where a second copy does not; the price is a torn file
    if the process dies within that one write."""
    try:
        with replacing(path) as f:
            f.write(data)
    except OSError as e:
        if not (in_place_if_full and e.errno == errno.ENOSPC and path.is_file()):
            raise
        with open(path, "wb") as f:
            f.write(data)
