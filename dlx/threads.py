"""The ``threads`` key: how many threads a run's BLAS, OpenMP and torch pools may use.

A matrix product split over a different number of threads adds its partial sums in a different
order, so OpenBLAS gives results that differ in the last bits with 1 and 2 threads, and a run's
metrics with them. Launchers choose differently (Hydra's basic launcher leaves the libraries at
their default, one thread per core; joblib's loky workers set ``OPENBLAS_NUM_THREADS=1``), so
without a fixed count the same config and seed gave different metrics.csv under different
launchers. A run therefore sets its thread count itself, at its start, with threadpoolctl
(every BLAS and OpenMP library loaded in the process) and, when torch is loaded, with
``torch.set_num_threads``; summary.json records what was asked and what the libraries report.

The default, 1, was chosen by measurement (``dlx bench --threads``, table in the README): on 2
cores an MNIST-MLP epoch with one thread takes 1.3x as long as with two on an idle machine, but
next to one competing CPU-bound process it keeps its speed (1.04x) while two threads, waiting on
each other, take 3-3.5x their quiet time. ``threads: null`` leaves the libraries at their own
default (results then depend on the launcher and the machine).

Nothing here imports numpy or threadpoolctl at module level (``dlx --help`` stays light).
"""

from __future__ import annotations

import os
import sys
from typing import Any, Mapping

from dlx.errors import UsageError

DEFAULT = 1
ENV_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
LIBRARY_KEYS = ("user_api", "internal_api", "prefix", "version", "num_threads")

_limiter = None        # the threadpool_limits in force, so the next run can undo it first
_torch_default = None  # torch's own intra-op thread count, before any run changed it


def check(value: Any) -> None:
    """Raise UsageError unless ``value`` is a valid ``threads`` setting."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return
    raise UsageError("threads must be a positive integer (1 = one thread per BLAS/OpenMP pool) "
                     f"or null (the libraries' own default), got {value!r}")


def apply(cfg: Mapping[str, Any]) -> dict:
    """Set the thread pools for the run configured by ``cfg`` (its ``threads`` and ``backend``)
    and return the record for summary.json's ``threads``. Calling it again (the next member of
    a sweep in the same process) first undoes the previous call."""
    global _limiter, _torch_default
    requested = cfg.get("threads", DEFAULT)
    check(requested)
    if cfg.get("backend") == "torch":
        try:
            import torch  # noqa: F401 - load its OpenMP runtime now, so that it is limited too
        except ImportError:
            pass  # backend=torch reports the missing torch itself
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    if not hasattr(torch, "set_num_threads"):
        torch = None
    if torch is not None and _torch_default is None:
        _torch_default = torch.get_num_threads()  # before anything limits its OpenMP runtime
    release()  # the previous run's limits, if any
    if requested is not None:
        _limiter = threadpool_limits(limits=requested)  # every BLAS and OpenMP library loaded
    if torch is not None:
        torch.set_num_threads(requested if requested is not None else _torch_default)
    return record(requested)


def release() -> None:
    """Undo :func:`apply`: the libraries' own thread counts again (a run in a notebook or a
    test leaves the process as it found it)."""
    global _limiter
    if _limiter is not None:
        _limiter.restore_original_limits()
        _limiter = None
    torch = sys.modules.get("torch")
    if _torch_default is not None and hasattr(torch, "set_num_threads"):
        torch.set_num_threads(_torch_default)


def record(requested: Any) -> dict:
    """What ``threads`` asked for and what is in force: the environment variables that the
    libraries (and launchers such as joblib's loky) read, threadpoolctl's report per library,
    and torch's intra-op thread count when torch is loaded."""
    out = {"requested": requested, **{v: os.environ[v] for v in ENV_VARS if v in os.environ},
           "libraries": libraries()}
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):
        out["torch"] = torch.get_num_threads()
    return out


def libraries() -> list[dict]:
    """threadpoolctl's report on the BLAS and OpenMP libraries loaded, without file paths."""
    from threadpoolctl import threadpool_info

    libs = [{k: lib.get(k) for k in LIBRARY_KEYS} for lib in threadpool_info()]
    return sorted(libs, key=lambda lib: [str(lib[k]) for k in LIBRARY_KEYS])  # stable order
