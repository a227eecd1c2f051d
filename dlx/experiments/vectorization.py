"""vectorization (the series' topic 6): the same computation written with Python loops and
vectorized, checked equal and timed — one run, float64.

Each case has up to three versions, as cs231n's kNN assignment writes its distances:

* ``loops``: one multiply-add (or one pair) per Python iteration;
* ``one loop``: one example per iteration, the inner work a NumPy vector operation;
* ``vectorized``: no Python loop, one matmul or broadcast.

The cases: pairwise Euclidean distances (cs231n's kNN: two loops, one loop, none via
||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b), a linear layer's forward y = x W + b and its weight
gradient dW = x^T dout, softmax cross-entropy's loss and gradient, and a convolution
(:func:`dlx.nn.conv.conv2d_naive` against im2col). metrics.csv records how far each version is
from the vectorized one (max |difference|: deterministic); the times go to vectorization.csv,
never into metrics.csv: per version the minimum, median and maximum of ``repeats`` calls. The
minimum is the headline (other processes and the cache only ever add time, so the fastest call
is the closest to the computation's own cost; a median moved 3.6x with the machine's load,
#26) and the range beside it says how steady the machine was.
"""

from __future__ import annotations

import csv
import statistics
import time
from pathlib import Path

import numpy as np

from dlx.errors import UsageError
from dlx.plots.style import figure, save

# the groups this experiment does not take from the config (see dlx.experiments)
OWN_PIECES = dict.fromkeys(
    ("model", "optimizer", "loss", "schedule", "init", "regularizer"),
    "fixed computations (distances, a linear layer, softmax), each "
    "written with loops and vectorized, checked equal and timed")


GENERIC_RUN_PLOTS = False
TIMES = "vectorization.csv"
VERSIONS = ("loops", "one loop", "vectorized")


def validate(cfg) -> None:
    v = cfg.get("vectorization") or {}
    if not (isinstance(v.get("repeats"), int) and v["repeats"] >= 1):
        raise UsageError(f"vectorization.repeats must be an integer >= 1, got {v.get('repeats')!r}")
    if not (isinstance(v.get("scale"), (int, float)) and 0 < v["scale"] <= 4):
        raise UsageError(f"vectorization.scale must be in (0, 4], got {v.get('scale')!r}")


# --- distances: (M, D) test points against (N, D) training points -> (M, N) ------------------

def dist_two_loops(A, B):
    out = np.empty((len(A), len(B)))
    for i in range(len(A)):
        for j in range(len(B)):
            out[i, j] = np.sqrt(np.sum((A[i] - B[j]) ** 2))
    return out


def dist_one_loop(A, B):
    out = np.empty((len(A), len(B)))
    for i in range(len(A)):
        out[i] = np.sqrt(np.sum((B - A[i]) ** 2, axis=1))  # (N, D) broadcast against (D,)
    return out


def dist_no_loops(A, B):
    sq = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T  # (M, N)
    return np.sqrt(np.maximum(sq, 0.0))  # rounding can leave -1e-13 where a == b


# --- a linear layer: y = x W + b and dW = x^T dout ---------------------------------------------

def linear_loops(x, W, b):
    n, d = x.shape
    y = np.empty((n, W.shape[1]))
    for i in range(n):
        for j in range(W.shape[1]):
            s = b[j]
            for k in range(d):
                s += x[i, k] * W[k, j]
            y[i, j] = s
    return y


def linear_one_loop(x, W, b):
    return np.stack([x[i] @ W + b for i in range(len(x))])


def linear_vectorized(x, W, b):
    return x @ W + b


def dW_loops(x, dout):
    dW = np.zeros((x.shape[1], dout.shape[1]))
    for k in range(x.shape[1]):
        for j in range(dout.shape[1]):
            for i in range(len(x)):
                dW[k, j] += x[i, k] * dout[i, j]
    return dW


def dW_one_loop(x, dout):
    dW = np.zeros((x.shape[1], dout.shape[1]))
    for i in range(len(x)):
        dW += np.outer(x[i], dout[i])  # one example's contribution
    return dW


def dW_vectorized(x, dout):
    return x.T @ dout


# --- softmax cross-entropy: mean loss and d loss / d logits ------------------------------------

def softmax_ce_one_loop(z, y):
    loss, dz = 0.0, np.empty_like(z)
    for i in range(len(z)):
        e = np.exp(z[i] - z[i].max())
        p = e / e.sum()
        loss -= np.log(p[y[i]])
        dz[i] = p
        dz[i, y[i]] -= 1.0
    return loss / len(z), dz / len(z)


def softmax_ce_vectorized(z, y):
    s = z - z.max(axis=1, keepdims=True)
    logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))  # (N, C) log-softmax
    p = np.exp(logp)
    p[np.arange(len(z)), y] -= 1.0
    return -logp[np.arange(len(z)), y].mean(), p / len(z)


def _cases(rng, scale: float):
    """name -> (description, {version: zero-argument function}); every version returns the
    same array(s)."""
    from dlx.nn.conv import Conv2d, conv2d_naive

    def n(v):
        return max(int(v * scale), 1)

    A, B = rng.standard_normal((n(50), 784)), rng.standard_normal((n(500), 784))
    x, W, b = rng.standard_normal((n(16), 784)), rng.standard_normal((784, 32)), rng.standard_normal(32)
    dout = rng.standard_normal((n(16), 32))
    z, y = rng.standard_normal((n(512), 10)) * 3, rng.integers(0, 10, n(512))
    img = rng.standard_normal((n(4), 3, 28, 28))
    conv = Conv2d(3, 8, 5, padding=2, dtype=np.float64)
    conv.W.data[...] = rng.standard_normal(conv.W.data.shape)
    conv.b.data[...] = rng.standard_normal(8)
    return {
        "distances": (f"pairwise distances, {len(A)} x {len(B)} points of 784 numbers",
                      {"loops": lambda: dist_two_loops(A, B), "one loop": lambda: dist_one_loop(A, B),
                       "vectorized": lambda: dist_no_loops(A, B)}),
        "linear_forward": (f"linear layer forward, batch {len(x)}, 784 -> 32",
                           {"loops": lambda: linear_loops(x, W, b),
                            "one loop": lambda: linear_one_loop(x, W, b),
                            "vectorized": lambda: linear_vectorized(x, W, b)}),
        "linear_dW": (f"linear layer dW = x^T dout, batch {len(x)}, 784 x 32",
                      {"loops": lambda: dW_loops(x, dout), "one loop": lambda: dW_one_loop(x, dout),
                       "vectorized": lambda: dW_vectorized(x, dout)}),
        "softmax_ce": (f"softmax cross-entropy, loss and gradient, {len(z)} x 10",
                       {"one loop": lambda: softmax_ce_one_loop(z, y),
                        "vectorized": lambda: softmax_ce_vectorized(z, y)}),
        "conv2d": (f"convolution forward, {len(img)} images 3x28x28, 8 maps 5x5",
                   {"loops": lambda: conv2d_naive(img, conv.W.data, conv.b.data, 1, 2),
                    "vectorized": lambda: conv.forward(img)}),
    }


def _flat(result) -> np.ndarray:
    parts = result if isinstance(result, tuple) else (result,)
    return np.concatenate([np.ravel(np.asarray(p, dtype=np.float64)) for p in parts])


def _seconds(fn, repeats: int) -> tuple[float, float, float]:
    """(min, median, max) seconds of ``repeats`` calls of ``fn``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times), max(times)


def run(cfg, rec, run_dir: Path):
    from dlx.assemble import rngs
    from dlx.training.loop import TrainResult

    c, start = cfg["vectorization"], time.perf_counter()
    cases = _cases(rngs(cfg["seed"])["data"], float(c["scale"]))
    rows, info = [], {}
    for step, (name, (description, versions)) in enumerate(cases.items()):
        reference = _flat(versions["vectorized"]())
        times, spread = {}, {}
        for version, fn in versions.items():
            diff = float(np.max(np.abs(_flat(fn()) - reference)))
            rec.log(step, 0, name, f"max_abs_diff_{version.replace(' ', '_')}", diff)
            fastest, median, slowest = _seconds(fn, c["repeats"])
            times[version], spread[version] = fastest, [fastest, slowest]
            rows.append((name, description, version, fastest, median, slowest, diff))
        info[name] = {"description": description, "seconds": times, "range": spread,
                      "speedup": {v: times[v] / times["vectorized"] for v in times}}
    with open(run_dir / TIMES, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["case", "description", "version", "min_seconds", "median_seconds",
                    "max_seconds", "max_abs_diff"])
        w.writerows(rows)
    return TrainResult(len(cases), time.perf_counter() - start, None, None, 0, 0,
                       extra={"vectorization": info})


def report_numbers(run) -> dict:
    info = run.summary.get("vectorization") or {}
    return {f"{name}: {version} / vectorized time": s
            for name, case in info.items() for version, s in case["speedup"].items()
            if version != "vectorized"}


def plot_run(run, out: Path, fmt: str) -> list[Path]:
    import pandas as pd

    t = pd.read_csv(run.path / TIMES)
    cases = list(dict.fromkeys(t["case"]))
    k = run.config["vectorization"]["repeats"]
    fig, ax = figure("the same computation with Python loops and vectorized (fastest of "
                     f"{k} calls, the line up to the slowest; float64, one thread)",
                     "", "time per call (s, log scale)", size=(11, 5))
    if "min_seconds" not in t:  # a record from before min-of-k: its medians
        t = t.assign(min_seconds=t["median_seconds"], max_seconds=t["median_seconds"])
    width = 0.27
    colors = {"loops": "C3", "one loop": "C1", "vectorized": "C2"}
    for k, version in enumerate(VERSIONS):
        d = t[t["version"] == version].set_index("case")
        xs = [i + (k - 1) * width for i, c in enumerate(cases) if c in d.index]
        ys = [d.loc[c, "min_seconds"] for c in cases if c in d.index]
        tops = [d.loc[c, "max_seconds"] for c in cases if c in d.index]
        ax.bar(xs, ys, width, color=colors[version], label=version)
        ax.errorbar(xs, ys, yerr=[[0] * len(ys), [h - y for y, h in zip(ys, tops)]], fmt="none",
                    ecolor="k", elinewidth=0.8, capsize=2)
        if version != "vectorized":
            for x_, c, top in zip(xs, [c for c in cases if c in d.index], tops):
                fast = t[(t["case"] == c) & (t["version"] == "vectorized")]["min_seconds"].iloc[0]
                ax.annotate(f"{d.loc[c, 'min_seconds'] / fast:,.0f}x", (x_, top),
                            ha="center", va="bottom", fontsize=8)
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    ax.set_ylim(low, high * 30)  # room above the tallest bar for the legend
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels([t[t["case"] == c]["description"].iloc[0].replace(", ", ",\n", 1)
                        for c in cases], fontsize=8)
    ax.legend(title="version (bar label: times slower than vectorized)", fontsize=8, ncol=3,
              loc="upper center")
    return [save(fig, out / f"vectorization.{fmt}")]
