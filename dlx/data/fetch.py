"""Downloading one data file: fetched whole, checked against its SHA-256, then moved into place
(never a half-written file under the real name). MNIST's IDX files have mirrors and MD5s of
their own (:mod:`dlx.data.mnist`); single-file data sets (text, tables) use this."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.request
from pathlib import Path

from dlx.errors import Unavailable, UsageError

log = logging.getLogger("dlx.data")


def fetch_verified(name: str, url: str, sha256: str, target: Path) -> None:
    """Fetch ``url`` into ``target``, verified before it is kept; Unavailable if the download
    fails, UsageError if what arrived is not the file."""
    try:
        log.debug(f"downloading {url}")
        with urllib.request.urlopen(url, timeout=30) as response:
            data = response.read()
    except (OSError, ValueError) as e:
        raise Unavailable(f"{name}: {target} is missing and the download failed "
                          f"({getattr(e, 'reason', e)}); put {target.name} from {url} there, "
                          f"or set DLX_DATA_DIR") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise UsageError(f"{name}: the file downloaded from {url} has the wrong checksum")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, target)
    log.info(f"downloaded {url} ({len(data) / 1e6:.1f} MB, checksum verified)")
