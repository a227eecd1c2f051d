"""batch_noise: how noisy a mini-batch gradient is, and what that means for training.

* At initialization, for batch sizes B = 1 ... 1024 (``batch_noise.sizes``), the mean squared
  distance of the mini-batch gradient g_B from the full gradient G (over a fixed population of
  training examples, batches drawn with replacement): E||g_B - G||^2 = tr(Sigma)/B, a slope of
  -1 on log-log axes (Sigma: the per-example gradient covariance).
* During training, every ``batch_noise.every`` steps, the simple gradient noise scale
  B_simple = tr(Sigma) / |G|^2 (McCandlish et al. 2018, "An empirical model of large-batch
  training"): the batch size beyond which larger batches stop paying off.
* The sweep over batch_size gives the loss curves at equal epochs and at equal steps.
Tables: ``noise_vs_batch.csv``, ``noise_scale.csv``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from dlx.assemble import rngs
from dlx.errors import UsageError
from dlx.plots.style import panels, save, y_label
from dlx.training import train


def validate(cfg) -> None:
    c = cfg.get("batch_noise") or {}
    sizes = c.get("sizes")
    if not (isinstance(sizes, list) and len(sizes) >= 2 and all(isinstance(b, int) and b >= 1
                                                                  for b in sizes)):
        raise UsageError(f"batch_noise.sizes must list >= 2 batch sizes >= 1, got {sizes!r}")
    for key in ("draws", "population", "every", "noise_batch"):
        if not (isinstance(c.get(key), int) and c[key] >= 1):
            raise UsageError(f"batch_noise.{key} must be an integer >= 1, got {c.get(key)!r}")


def flat_grad(backend, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The gradient of the mean loss over (X, y) w.r.t. all parameters, as one float64 vector."""
    model = backend.model
    model.zero_grad()
    backend.loss_fn.forward(model.forward(X), y)
    model.backward(backend.loss_fn.backward())
    g = np.concatenate([p.grad.ravel() for p in backend.params]).astype(np.float64)
    model.zero_grad()
    return g


class NoiseMeter:
    def __init__(self, cfg, backend, X, y, run_dir: Path):
        c = cfg["batch_noise"]
        self.c, self.backend = c, backend
        self.X, self.y = X[: c["population"]], y[: c["population"]]
        self.rng = np.random.default_rng(rngs(cfg["seed"])["batches"].integers(2**32) + 1)
        self.file = open(run_dir / "noise_scale.csv", "w", buffering=1)
        self.file.write("step,trace_sigma,grad_norm2,b_simple\n")
        self.run_dir = run_dir

    def spread(self, G: np.ndarray, B: int) -> float:
        """Mean ||g_B - G||^2 over ``draws`` batches of B drawn with replacement."""
        n = len(self.X)
        total = 0.0
        for _ in range(self.c["draws"]):
            idx = self.rng.integers(0, n, B)
            total += float(np.sum((flat_grad(self.backend, self.X[idx], self.y[idx]) - G) ** 2))
        return total / self.c["draws"]

    def variance_vs_batch(self) -> list[dict]:
        G = flat_grad(self.backend, self.X, self.y)
        rows = [{"batch_size": B, "mean_sq_dev": self.spread(G, B)} for B in self.c["sizes"]]
        with open(self.run_dir / "noise_vs_batch.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["batch_size", "mean_sq_dev"])
            w.writeheader()
            w.writerows(rows)
        return rows

    def __call__(self, step: int, backend) -> None:
        if step % self.c["every"]:
            return
        G = flat_grad(backend, self.X, self.y)
        B = self.c["noise_batch"]
        trace = B * self.spread(G, B)  # E||g_B - G||^2 = tr(Sigma) / B
        g2 = float(G @ G)
        self.file.write(f"{step},{trace!r},{g2!r},{trace / g2!r}\n")

    def close(self) -> None:
        self.file.close()


def run(cfg, rec, run_dir: Path):
    from dlx.assemble import build_data
    from dlx.training import NumpyBackend

    data = build_data(cfg)
    backend = NumpyBackend(cfg, data)
    meter = NoiseMeter(cfg, backend, data.X_train, data.y_train, run_dir)
    rows = meter.variance_vs_batch()  # at initialization: the same for every member
    sizes = np.array([r["batch_size"] for r in rows], dtype=float)
    dev = np.array([r["mean_sq_dev"] for r in rows])
    slope = float(np.polyfit(np.log10(sizes), np.log10(dev), 1)[0])
    try:
        result = train(cfg, rec, cfg["progress"], run_dir, hooks=[meter],
                       backend=backend)
    finally:
        meter.close()
    b_simple = np.loadtxt(run_dir / "noise_scale.csv", delimiter=",", skiprows=1, ndmin=2)[:, 3]
    result.extra["batch_noise"] = {"variance_slope": slope, "trace_sigma_at_init":
                                   float(np.median(sizes * dev)),
                                   "b_simple_first": float(b_simple[0]),
                                   "b_simple_last": float(b_simple[-1])}
    return result


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    import pandas as pd

    out = sweep_dir / "plots" if out is None else out
    runs = sorted(runs, key=lambda r: r.config.get("batch_size") or 10**9)
    written = []
    first = runs[0]
    table = pd.read_csv(first.path / "noise_vs_batch.csv")
    slope = first.summary.get("batch_noise", {}).get("variance_slope", float("nan"))
    fig, axes = panels("gradient noise", 2)
    ax = axes[0]
    ax.plot(table["batch_size"], table["mean_sq_dev"], "o", ms=7, label="measured (at init)")
    b, v = table["batch_size"].to_numpy(), table["mean_sq_dev"].to_numpy()
    trace = float(np.median(b * v))
    ax.plot(b, trace / b, "--", color="gray", label=f"tr(Σ)/B (slope −1); fitted slope {slope:.2f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("batch size B (log scale)")
    ax.set_ylabel("E‖g_B − G‖² (log scale)")
    ax.set_title("mini-batch gradient scatter around the full gradient", fontsize=10)
    ax.legend(fontsize=8)
    for i, run in enumerate(runs):
        s = pd.read_csv(run.path / "noise_scale.csv")
        axes[1].plot(s["step"], s["b_simple"], "-o", ms=3, color=f"C{i}",
                     label=f"trained with batch {run.config.get('batch_size')}")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("step (parameter updates)")
    axes[1].set_ylabel("B_simple = tr(Σ)/|G|² (log scale)")
    axes[1].set_title("the gradient noise scale during training (McCandlish et al. 2018)",
                      fontsize=10)
    axes[1].legend(fontsize=8)
    written.append(save(fig, out / f"gradient_noise.{fmt}"))

    fig, axes = panels("loss by batch size: at equal epochs and at equal steps", 2)
    for i, run in enumerate(runs):
        s = run.series("train", "loss")
        label = f"batch {run.config.get('batch_size')}"
        axes[0].plot(s["epoch"], s["value"], "-o", ms=3, color=f"C{i}", label=label)
        axes[1].plot(s["step"].clip(lower=1), s["value"], "-o", ms=3, color=f"C{i}", label=label)
    axes[0].set_xlabel("epoch (equal examples seen)")
    axes[1].set_xlabel("step (equal updates, log scale)")
    axes[1].set_xscale("log")
    for ax in axes:
        ax.set_ylabel("train " + y_label("loss") + " (log scale)")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    written.append(save(fig, out / f"loss_by_batch_size.{fmt}"))
    return written
