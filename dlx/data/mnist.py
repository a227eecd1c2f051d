"""MNIST and Fashion-MNIST from IDX files: found, verified, downloaded if missing, cached.

Files live in ``$DLX_DATA_DIR/<name>/`` (default ``~/.cache/dlx/<name>/``), gzipped or raw. Each
is verified against a known checksum: the SHA-256 of its uncompressed content, or the MD5 of the
original .gz file. Missing files are downloaded from the public mirrors, one after another,
verified before they are kept. Parsed arrays are cached as .npy (no pickle) under
``~/.cache/dlx/parsed/`` keyed by the checksums, so a second load takes a fraction of a second.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import sys
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

from dlx.data.idx import IDXError, parse_idx
from dlx.errors import Unavailable, UsageError

log = logging.getLogger("dlx.data")

# What the verified files of both data sets hold (their checksums fix it): known without them.
N_TRAIN, IMAGE = 60_000, (28, 28)

FILES = {  # split/kind -> file name (without .gz)
    "train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte",
}

# Known checksums: sha256 of the uncompressed file and/or md5 of the original .gz.
CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte": {
            "sha256": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "md5_gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873"},
        "train-labels-idx1-ubyte": {
            "sha256": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "md5_gz": "d53e105ee54ea40749a09fcbcd1e9432"},
        "t10k-images-idx3-ubyte": {
            "sha256": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "md5_gz": "9fb629c4189551a2d022fa330f9573f3"},
        "t10k-labels-idx1-ubyte": {
            "sha256": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            "md5_gz": "ec29112dd5afa0611ce80d1b7f02629c"},
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte": {"md5_gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d"},
        "train-labels-idx1-ubyte": {"md5_gz": "25c81989df183df01b3e8a0aad5dffbe"},
        "t10k-images-idx3-ubyte": {"md5_gz": "bef4ecab320f06d8554ea6380940ec79"},
        "t10k-labels-idx1-ubyte": {"md5_gz": "bb300cfdad3c16e7a12a480ee83cd310"},
    },
}
MIRRORS = {
    "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/",
              "http://yann.lecun.com/exdb/mnist/"],
    "fashion_mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                      "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"],
}
CLASSES = {"mnist": [str(d) for d in range(10)],
           "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                             "Shirt", "Sneaker", "Bag", "Ankle boot"]}


def data_dir() -> Path:
    return Path(os.environ.get("DLX_DATA_DIR") or Path.home() / ".cache" / "dlx").expanduser()


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dlx" / "parsed"


def _fetch_missing(name: str) -> None:
    """Download every file of ``name`` that is neither there gzipped nor raw; one error naming
    all the files still missing if that fails."""
    folder = data_dir() / name
    missing = [f for f in FILES.values()
               if not (folder / f"{f}.gz").is_file() and not (folder / f).is_file()]
    errors: list[str] = []
    still = []
    for file in missing:
        try:
            _download(name, file, folder / f"{file}.gz")
        except OSError as e:  # every mirror failed: offline, most likely; do not try the rest
            errors = [str(e)]
            still = missing[missing.index(file):]
            break
    if still:
        raise Unavailable(_missing_message(name, still, errors))


def _download(name: str, file: str, target: Path) -> Path:
    """Fetch ``file``.gz from the mirrors into ``target`` (verified); OSError if none works."""
    errors = []
    for mirror in MIRRORS[name]:
        url = f"{mirror}{file}.gz"
        try:
            log.debug(f"downloading {url}")
            with urllib.request.urlopen(url, timeout=30) as response:
                data = _read_with_progress(response, f"{file}.gz")
        except (OSError, ValueError) as e:
            errors.append(f"{mirror}: {getattr(e, 'reason', e)}")
            continue
        if not _matches(name, file, data):
            errors.append(f"{mirror}: checksum mismatch")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
            tmp.write(data)
        os.replace(tmp.name, target)
        log.info(f"downloaded {url} ({len(data) / 1e6:.1f} MB, checksum verified)")
        return target
    raise OSError("; ".join(errors))


def _matches(name: str, file: str, gz_bytes: bytes) -> bool:
    known = CHECKSUMS[name][file]
    if hashlib.md5(gz_bytes).hexdigest() == known.get("md5_gz"):
        return True
    try:
        return hashlib.sha256(_gunzip(gz_bytes, file)).hexdigest() == known.get("sha256")
    except UsageError:
        return False


def _read_with_progress(response, label: str) -> bytes:
    total = int(response.headers.get("Content-Length") or 0)
    chunks, done = [], 0
    bar = None
    if sys.stderr.isatty() and total:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        task = bar.add_task(f"download {label}", total=total)
    try:
        while chunk := response.read(1 << 16):
            chunks.append(chunk)
            done += len(chunk)
            if bar is not None:
                bar.update(task, completed=done)
    finally:
        if bar is not None:
            bar.stop()
    return b"".join(chunks)


def _gunzip(data: bytes, file: str) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError) as e:
        raise UsageError(f"{file}.gz: corrupt gzip data ({e})") from None


def _missing_message(name: str, files: list[str], errors: list[str]) -> str:
    where = data_dir() / name
    why = f"; download failed ({errors[0]})" if errors else ""
    return (f"{name} files missing: put {', '.join(f + '.gz' for f in files)} (gzip or raw) "
            f"in {where}, or set DLX_DATA_DIR{why}")


def _read_verified(name: str, file: str) -> tuple[bytes, str]:
    """The uncompressed bytes of ``file`` and the checksum that verified it."""
    folder = data_dir() / name
    gz, raw = folder / f"{file}.gz", folder / file
    known = CHECKSUMS[name][file]
    if gz.is_file():
        blob = gz.read_bytes()
        md5 = hashlib.md5(blob).hexdigest()
        data = _gunzip(blob, file)
        sha = hashlib.sha256(data).hexdigest()
        if md5 != known.get("md5_gz") and sha != known.get("sha256"):
            raise UsageError(f"{gz}: checksum mismatch (corrupt or not the {name} file); "
                             f"delete it to download it again")
        return data, sha if sha == known.get("sha256") else md5
    data = raw.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if "sha256" not in known:
        raise UsageError(f"{raw}: an uncompressed {name} file cannot be verified; "
                         f"keep the original {file}.gz instead")
    if sha != known["sha256"]:
        raise UsageError(f"{raw}: checksum mismatch (corrupt or not the {name} file)")
    return data, sha


_LOADED: dict[tuple, dict[str, np.ndarray]] = {}  # the last data set loaded, by _stamp


def _stamp(name: str) -> tuple:
    """The source files as they are now (path, mtime, size): a loaded copy is reused only while
    they are unchanged."""
    folder = data_dir() / name
    files = sorted(p for p in folder.glob("*") if p.is_file()) if folder.is_dir() else []
    return (name, str(folder), *((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files))


def load(name: str) -> dict[str, np.ndarray]:
    """The four arrays of ``name`` (uint8 images (N, 28, 28), uint8 labels), verified."""
    if name not in CHECKSUMS:
        raise UsageError(f"unknown IDX data set {name!r} (valid: {', '.join(CHECKSUMS)})")
    key = _stamp(name)
    if key in _LOADED:  # validation and training in one process read the same files once
        return _LOADED[key]
    cached = _load_cache(name)
    if cached is not None:
        _LOADED.clear()
        _LOADED[key] = cached
        return cached
    _fetch_missing(name)
    arrays, sums = {}, {}
    for key, file in FILES.items():
        data, sums[key] = _read_verified(name, file)
        try:
            arrays[key] = parse_idx(data, file)
        except IDXError as e:
            raise UsageError(str(e)) from None
    _check_shapes(arrays)
    _save_cache(name, arrays, sums)
    _LOADED.clear()
    _LOADED[_stamp(name)] = arrays
    return arrays


def _check_shapes(arrays: dict[str, np.ndarray]) -> None:
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise UsageError(f"{split} images {images.shape} and labels {labels.shape} do not "
                             f"match (expected (N, rows, cols) and (N,))")
        if labels.max(initial=0) > 9:
            raise UsageError(f"{split} labels: values up to {labels.max()}, expected 0-9")


def _cache_path(name: str) -> Path:
    return cache_dir() / name


def _load_cache(name: str) -> dict[str, np.ndarray] | None:
    folder = _cache_path(name)
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("source") != str(data_dir() / name):
            return None
        arrays = {k: np.load(folder / f"{k}.npy", allow_pickle=False) for k in FILES}
    except (OSError, ValueError):
        return None
    if any(arrays[k].dtype != np.uint8 for k in FILES):
        return None
    # the cache is trusted only while its source files are the ones it was made from
    for key, file in FILES.items():
        src = [p for p in (data_dir() / name / f"{file}.gz", data_dir() / name / file) if p.is_file()]
        if not src or meta.get("mtimes", {}).get(key) != [src[0].name, src[0].stat().st_mtime_ns,
                                                           src[0].stat().st_size]:
            return None
    return arrays


def _save_cache(name: str, arrays: dict[str, np.ndarray], sums: dict[str, str]) -> None:
    folder = _cache_path(name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        mtimes = {}
        for key, file in FILES.items():
            src = next(p for p in (data_dir() / name / f"{file}.gz", data_dir() / name / file)
                       if p.is_file())
            mtimes[key] = [src.name, src.stat().st_mtime_ns, src.stat().st_size]
            tmp = folder / f".{key}.tmp.npy"
            np.save(tmp, arrays[key], allow_pickle=False)
            os.replace(tmp, folder / f"{key}.npy")
        meta = {"source": str(data_dir() / name), "checksums": sums, "mtimes": mtimes}
        (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    except OSError as e:  # a read-only cache is slower, not wrong
        log.warning(f"could not cache parsed {name} arrays in {folder}: {e}")
