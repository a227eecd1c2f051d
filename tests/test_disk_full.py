"""A full disk: the run ends `failed` with its final status written (not `lost`), no temporary
file left holding the space, one line of warning from the log instead of a traceback per message,
and a start that does not fit leaves no record behind (#25, item 6)."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import subprocess
import sys

import pytest

from dlx.records.files import replacing, write_bytes
from dlx.records.logs import FileHandler


def _full(errno_=errno.ENOSPC):
    return OSError(errno_, os.strerror(errno_))


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary_one(tmp_path):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(b"the last good checkpoint")
    with pytest.raises(OSError), replacing(path) as f:
        f.write(b"half of the new one")
        raise _full()
    assert path.read_bytes() == b"the last good checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]


def test_a_summary_is_rewritten_in_place_when_a_second_copy_does_not_fit(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    path.write_bytes(b'{"status": "running"}')

    def no_room(*_):
        raise _full()

    monkeypatch.setattr(os, "replace", no_room)  # the temporary copy cannot be put in place
    write_bytes(path, b'{"status": "failed"}', in_place_if_full=True)
    assert path.read_bytes() == b'{"status": "failed"}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]
    with pytest.raises(OSError):  # without the fallback, the failure is the caller's
        write_bytes(path, b"{}")
    monkeypatch.setattr(os, "replace", lambda *_: (_ for _ in ()).throw(_full(errno.EACCES)))
    with pytest.raises(PermissionError):  # only a full disk falls back
        write_bytes(path, b"{}", in_place_if_full=True)
    assert path.read_bytes() == b'{"status": "failed"}'


def test_the_log_file_fails_once_and_quietly(tmp_path, capsys):
    handler = FileHandler(tmp_path / "run.log")
    logger = logging.getLogger("dlx.test_disk_full")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("written")

        class Full:
            def write(self, _):
                raise _full()

            def flush(self):
                raise _full()

        handler.stream = Full()
        for i in range(50):
            logger.warning(f"message {i}")
    finally:
        logger.removeHandler(handler)
    err = capsys.readouterr().err
    assert "Logging error" not in err and "Traceback" not in err
    assert err.count("\n") == 1 and "cannot write" in err and "run.log" in err, err
    assert (tmp_path / "run.log").read_text().count("written") == 1


def _on_a_small_disk(tmp_path, size: str, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    """`dlx run ARGS` into a run directory on a tmpfs of ``size`` (a mount namespace of its own:
    nothing stays mounted); the record is copied out afterwards for the test to read."""
    out = tmp_path / f"record-{size}"
    out.mkdir()
    script = ('mount -t tmpfs -o size="$1" tmpfs "$2" || exit 99; shift 2; cd "$DISK"; '
              '"$@"; rc=$?; cp -a "$DISK/." "$OUT/" 2>/dev/null; exit $rc')
    disk = tmp_path / f"disk-{size}"
    disk.mkdir()
    env = {**os.environ, "DISK": str(disk), "OUT": str(out), "MPLBACKEND": "Agg"}
    env.pop("DLX_RUNS_DIR", None)
    result = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", size, str(disk),
         sys.executable, "-m", "dlx.cli", "run", *args, f"hydra.run.dir={disk}/r"],
        capture_output=True, text=True, env=env, timeout=300)
    if result.returncode == 99:
        pytest.skip(f"cannot mount a small tmpfs here: {result.stderr.strip()}")
    return result, {"dir": out / "r", "files": sorted(p.name for p in (out / "r").iterdir())
                    if (out / "r").is_dir() else []}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
def test_a_full_disk_fails_the_run_cleanly_wherever_it_fills(tmp_path):
    """From a disk too small for Hydra's own files to one that fills mid-training: every case is
    one clean outcome, never `running` or `lost` with a temporary file holding the space."""
    outcomes = set()
    for size in ("8k", "20k", "40k", "64k"):
        result, record = _on_a_small_disk(tmp_path, size, "epochs=400", "probe_every=5",
                                          "progress=log")
        said = f"{size}: {result.stderr}"
        assert result.returncode == 1, said
        assert "Traceback" not in result.stderr and "Logging error" not in result.stderr, said
        assert not [f for f in record["files"] if f.endswith(".tmp")], (size, record["files"])
        if "summary.json" not in record["files"]:  # it did not fit: no start at all
            lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
            assert len(lines) == 1 and lines[0].startswith("error: cannot start a run"), said
            assert "No space left on device" in lines[0], said
            assert not {"config.yaml", "metrics.csv"} & set(record["files"]), said
            outcomes.add("no start")
        else:  # the final status written, saying why, and no traceback for a full disk
            summary = json.loads((record["dir"] / "summary.json").read_text())
            assert summary["status"] == "failed", said
            assert summary["error"].startswith("No space left on device"), summary["error"]
            assert "failed: No space left on device" in result.stderr, said
            assert "traceback in" not in result.stderr, said
            assert result.stderr.count("cannot write") <= 1, said  # the log says it once
            outcomes.add("failed")
    assert outcomes == {"no start", "failed"}  # both kinds were reached
