"""Character-level text: tiny Shakespeare, found, verified, downloaded if missing, cached.

The file lives in ``$DLX_DATA_DIR/<name>/input.txt`` (default ``~/.cache/dlx/<name>/``), as the
MNIST files do (:mod:`dlx.data.mnist`); it is checked against its SHA-256 every time it is read
(a megabyte: milliseconds) and downloaded from its public source when missing.

A data set of it (:func:`char_dataset`) is next-character prediction: the vocabulary is every
character of the whole text (65 for tiny Shakespeare), the text is split contiguously (the last
``val_fraction`` is validation, as nanoGPT does), and each example is a window of
``block_size`` characters whose targets are the same window shifted by one, so every position
predicts the next character. ``n_train_tokens`` keeps the first D characters of the training
part only, so a smaller D is a prefix (a subset) of a larger one, while the validation windows
stay the same for every D.

``stream=True`` is the layout for truncated backpropagation through time: the windows are
disjoint and in the text's order (stride = block_size), and the trainer
(:func:`stream_order`) cuts them into B contiguous streams, batch i holding window i of every
stream, so a recurrent model can start each batch from the state the previous batch ended in.
The data set is scored per character (task ``language_model``: accuracy, bits per character,
perplexity), never by whole windows.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from dlx.data.fetch import fetch_verified
from dlx.data.spec import DataSpec
from dlx.errors import UsageError

log = logging.getLogger("dlx.data")

SOURCES = {
    "tinyshakespeare": {
        "url": "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
               "tinyshakespeare/input.txt",
        "sha256": "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        "file": "input.txt",
    },
}
TEXT_DATASETS = tuple(SOURCES)


def data_dir() -> Path:
    from dlx.data.mnist import data_dir as root  # one DLX_DATA_DIR rule for every file

    return root()


def path(name: str) -> Path:
    return data_dir() / name / SOURCES[name]["file"]


def _download(name: str, target: Path) -> None:
    """Fetch the file into ``target``, verified before it is kept; UsageError if that fails."""
    fetch_verified(name, SOURCES[name]["url"], SOURCES[name]["sha256"], target)


_LOADED: dict[tuple, str] = {}  # the last text read, by (path, mtime, size)


def load_text(name: str) -> str:
    """The verified text of ``name`` (downloaded first if missing)."""
    if name not in SOURCES:
        raise UsageError(f"unknown text data set {name!r} (valid: {', '.join(SOURCES)})")
    file = path(name)
    if not file.is_file():
        _download(name, file)
    stat = file.stat()
    key = (str(file), stat.st_mtime_ns, stat.st_size)
    if key in _LOADED:  # validation and training in one process read the file once
        return _LOADED[key]
    data = file.read_bytes()
    if hashlib.sha256(data).hexdigest() != SOURCES[name]["sha256"]:
        raise UsageError(f"{file}: checksum mismatch (corrupt or not the {name} file); "
                         f"delete it to download it again")
    _LOADED.clear()
    _LOADED[key] = data.decode("utf-8")
    return _LOADED[key]


def encode(text: str) -> tuple[np.ndarray, list[str]]:
    """Token ids (int64) of every character and the vocabulary (sorted characters)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    symbols, ids = np.unique(codes, return_inverse=True)
    return ids.astype(np.int64), [chr(c) for c in symbols]


def windows(ids: np.ndarray, block_size: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ids[s : s+T] and targets ids[s+1 : s+T+1] for s = 0, stride, 2*stride, ...: the
    windows that fit, as (n, T) int64 arrays (copies: the trainer indexes rows of them)."""
    n = (len(ids) - 1 - block_size) // stride + 1
    if n < 1:
        return np.empty((0, block_size), np.int64), np.empty((0, block_size), np.int64)
    index = (np.arange(n) * stride)[:, None] + np.arange(block_size)
    return ids[index], ids[index + 1]


def stream_order(n: int, streams: int) -> np.ndarray:
    """Row order of ``n`` consecutive windows cut into ``streams`` contiguous streams of
    n // streams windows each (the remainder dropped), batch i = rows [i*B, (i+1)*B) of the
    order = window i of every stream: stream j reads windows j*m, j*m + 1, ... (m = n // B)."""
    m = n // streams
    if m < 1:
        raise ValueError(f"{n} windows cannot make {streams} streams (batch_size)")
    return np.arange(m * streams).reshape(streams, m).T.reshape(-1)  # (m*B,): [i*B + j] = j*m + i


def char_dataset(*, name: str, block_size: int = 64, val_fraction: float = 0.1,
                 n_train_tokens: int | None = None, stride: int | None = None,
                 val_tokens: int | None = None, stream: bool = False) -> tuple:
    """Next-character prediction on ``name``: (X_train, Y_train, X_val, Y_val, spec, vocabulary),
    the arrays (n, T) int64 (:func:`dlx.assemble.build_dataset` makes them a Dataset).

    Args:
        block_size: characters per example (T); targets are the next character at each.
        val_fraction: the last fraction of the text is validation (contiguous split).
        n_train_tokens: keep the first D characters of the training part (None = all): nested
            subsets for a data-scaling curve.
        stride: distance between the starts of training windows (None = block_size: disjoint
            windows; block_size // 2 doubles the examples, overlapping by half).
        val_tokens: keep the first this many characters of the validation part (None = all):
            one fixed, cheaper validation set, the same for every ``n_train_tokens``.
        stream: the windows are B contiguous streams for truncated BPTT with carried state
            (the trainer reads them in :func:`stream_order`); needs stride null or block_size.
    """
    if stream not in (True, False):
        raise ValueError(f"stream must be true or false, got {stream!r}")
    if stream and stride not in (None, block_size):
        raise ValueError(f"stream=true reads disjoint windows: stride must be null or "
                         f"block_size ({block_size}), got {stride}")
    ids, vocab = encode(load_text(name))
    stride = block_size if stride is None else stride
    if block_size < 1 or stride < 1:
        raise ValueError(f"block_size and stride must be >= 1, got {block_size}, {stride}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n_train = len(ids) - int(round(len(ids) * val_fraction))
    train, val = ids[:n_train], ids[n_train:]
    if n_train_tokens is not None:
        if not block_size + 1 <= n_train_tokens <= n_train:
            raise ValueError(f"n_train_tokens must be in [{block_size + 1}, {n_train}] "
                             f"(block_size + 1 ... the training characters) or null, "
                             f"got {n_train_tokens}")
        train = train[:n_train_tokens]
    if val_tokens is not None:
        if not block_size + 1 <= val_tokens <= len(val):
            raise ValueError(f"val_tokens must be in [{block_size + 1}, {len(val)}] or null, "
                             f"got {val_tokens}")
        val = val[:val_tokens]
    X_train, Y_train = windows(train, block_size, stride)
    X_val, Y_val = windows(val, block_size, block_size)
    if len(X_train) == 0 or len(X_val) == 0:
        raise ValueError(f"block_size {block_size} leaves no training or validation window")
    spec = DataSpec.tokens(len(vocab), block_size, task="language_model")
    return X_train, Y_train, X_val, Y_val, spec, vocab
