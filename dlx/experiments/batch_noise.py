"""batch_noise: how noisy a mini-batch gradient is, and what that means for training.

* At initialization, for batch sizes B = 1 ... 1024 (``batch_noise.sizes``), the mean squared
  distance of the mini-batch gradient g_B from the full gradient G (over a fixed population of
  training examples, batches drawn with replacement): E||g_B - G||^2 = tr(Sigma)/B, a slope of
  -1 on log-log axes (Sigma: the per-example gradient covariance).
* During training, on a step grid common to every batch size (0 and ``per_octave`` points per
  doubling of the step), the simple gradient noise scale B_simple = tr(Sigma) / |G|^2
  (McCandlish et al. 2018, "An empirical model of large-batch training"), estimated as in their
  appendix A.1 from squared gradient norms at two batch sizes b < B (:func:`noise_scale`), over
  ``batches`` big batches of ``big_batch`` examples, each the mean of ``big_batch /
  small_batch`` small ones; the interval is a bootstrap over the big batches. The loss over the
  population is logged at the same steps, for the loss-at-equal-steps panel.
* The sweep (batch sizes x 3 seeds) gives the loss curves at equal epochs and at equal steps
  and B_simple by batch size, each as mean +- sd over the seeds.
Tables: ``noise_vs_batch.csv``, ``noise_scale.csv`` (per run); ``noise_scale_by_batch.csv``
(per sweep).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from dlx.assemble import rngs
from dlx.errors import UsageError
from dlx.plots.style import panels, save, y_label
from dlx.training import train

COLUMNS = ["step", "loss", "grad_norm2", "trace_sigma", "b_simple", "b_simple_lo", "b_simple_hi"]


def validate(cfg) -> None:
    c = cfg.get("batch_noise") or {}
    sizes = c.get("sizes")
    if not (isinstance(sizes, list) and len(sizes) >= 2 and all(isinstance(b, int) and b >= 1
                                                                  for b in sizes)):
        raise UsageError(f"batch_noise.sizes must list >= 2 batch sizes >= 1, got {sizes!r}")
    for key in ("draws", "population", "per_octave", "small_batch", "big_batch", "batches",
                "bootstrap"):
        if not (isinstance(c.get(key), int) and c[key] >= 1):
            raise UsageError(f"batch_noise.{key} must be an integer >= 1, got {c.get(key)!r}")
    if c["batches"] < 2:
        raise UsageError(f"batch_noise.batches must be >= 2 (the interval resamples them), got "
                         f"{c['batches']}")
    if c["big_batch"] % c["small_batch"] or c["big_batch"] == c["small_batch"]:
        raise UsageError(f"batch_noise.big_batch must be a multiple > 1 of small_batch, got "
                         f"{c['big_batch']} and {c['small_batch']}")


def step_grid(per_octave: int, last: int) -> list[int]:
    """0, then round(2^(k / per_octave)) for k = 0, 1, ... up to ``last``, without repeats:
    the same steps for every batch size, evenly spaced on a log axis."""
    k_max = int(np.ceil(np.log2(max(last, 1)) * per_octave))
    steps = {int(round(2 ** (k / per_octave))) for k in range(k_max + 1)}
    return [0] + sorted(s for s in steps if s <= last)


def noise_scale(small_sq: np.ndarray, big_sq: np.ndarray, b: int, B: int) -> tuple:
    """|G|^2 and tr(Sigma) from mean squared gradient norms at two batch sizes b < B.

    With batches drawn with replacement, E|g_b|^2 = |G|^2 + tr(Sigma) / b, so (McCandlish et
    al. 2018, A.1) both are unbiased:
        |G|^2     = (B E|g_B|^2 - b E|g_b|^2) / (B - b)
        tr(Sigma) = (E|g_b|^2 - E|g_B|^2) / (1/b - 1/B)
    and B_simple = tr(Sigma) / |G|^2 (a ratio of unbiased estimates).

    Args:
        small_sq: |g_b|^2 of each small batch (any shape; averaged over its last axis).
        big_sq: |g_B|^2 of each big batch (averaged over its last axis).
        b, B: the two batch sizes.
    """
    s, g = np.mean(small_sq, axis=-1), np.mean(big_sq, axis=-1)
    norm2 = (B * g - b * s) / (B - b)
    trace = (s - g) / (1 / b - 1 / B)
    return norm2, trace


def estimate(small: np.ndarray, big: np.ndarray, b: int, B: int, rng: np.random.Generator,
             resamples: int = 1000) -> dict:
    """B_simple (:func:`noise_scale`) with a percentile-bootstrap 95% interval.

    Args:
        small: (K, B/b) |g_b|^2 of the small batches making up each of K big batches.
        big: (K,) |g_B|^2 of the big batches.
        b, B: the small and big batch sizes.
        rng: draws the resamples: K big batches (each with its small ones) with replacement.
        resamples: bootstrap resamples.
    """
    norm2, trace = noise_scale(small.ravel(), big, b, B)
    pick = rng.integers(0, len(big), (resamples, len(big)))
    boot_n2, boot_tr = noise_scale(small[pick].reshape(resamples, -1), big[pick], b, B)
    lo, hi = np.percentile(boot_tr / boot_n2, [2.5, 97.5])
    return {"grad_norm2": float(norm2), "trace_sigma": float(trace),
            "b_simple": float(trace / norm2), "b_simple_lo": float(lo), "b_simple_hi": float(hi)}


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
    """Measures gradient noise on a fixed population of training examples; its own random
    generator, so the run's batches (and metrics.csv) are as without it."""

    def __init__(self, cfg, backend, X, y, run_dir: Path | None = None):
        c = cfg["batch_noise"]
        self.c, self.backend = c, backend
        self.X, self.y = X[: c["population"]], y[: c["population"]]
        self.rng = np.random.default_rng(rngs(cfg["seed"])["batches"].integers(2**32) + 1)
        self.grid, self.run_dir, self.file = set(), run_dir, None
        if run_dir is not None:
            self.file = open(run_dir / "noise_scale.csv", "w", buffering=1)
            self.file.write(",".join(COLUMNS) + "\n")

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
        if self.run_dir is not None:
            with open(self.run_dir / "noise_vs_batch.csv", "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=["batch_size", "mean_sq_dev"])
                w.writeheader()
                w.writerows(rows)
        return rows

    def norms(self, backend) -> tuple[np.ndarray, np.ndarray]:
        """|g_b|^2 of ``batches`` x (B / b) small batches and |g_B|^2 of the ``batches`` big
        batches they make up (a big batch's gradient is the mean of its small ones')."""
        b, B, K = self.c["small_batch"], self.c["big_batch"], self.c["batches"]
        small, big = np.empty((K, B // b)), np.empty(K)
        for k in range(K):
            total = 0.0
            for j in range(B // b):
                idx = self.rng.integers(0, len(self.X), b)
                g = flat_grad(backend, self.X[idx], self.y[idx])
                small[k, j] = np.dot(g, g)
                total = total + g
            mean = total / (B // b)
            big[k] = np.dot(mean, mean)
        return small, big

    def probe(self, backend) -> dict:
        small, big = self.norms(backend)
        return estimate(small, big, self.c["small_batch"], self.c["big_batch"], self.rng,
                        self.c["bootstrap"])

    def population_loss(self, backend) -> float:
        return float(backend.loss_fn.forward(backend.model.forward(self.X), self.y))

    def __call__(self, step: int, backend) -> None:
        if step not in self.grid:
            return
        row = {"step": step, "loss": self.population_loss(backend), **self.probe(backend)}
        self.file.write(",".join(repr(row[k]) for k in COLUMNS) + "\n")

    def close(self) -> None:
        if self.file is not None:
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
    per_epoch = -(-len(data.X_train) // cfg["batch_size"])
    meter.grid = set(step_grid(cfg["batch_noise"]["per_octave"], cfg["epochs"] * per_epoch - 1))
    try:
        result = train(cfg, rec, cfg["progress"], run_dir, hooks=[meter], backend=backend)
        final = meter.probe(backend)  # at the trained weights
    finally:
        meter.close()
    table = np.loadtxt(run_dir / "noise_scale.csv", delimiter=",", skiprows=1, ndmin=2)
    first = dict(zip(COLUMNS, table[0]))
    result.extra["batch_noise"] = {
        "variance_slope": slope, "trace_sigma_at_init": float(np.median(sizes * dev)),
        "b_simple_at_init": [first["b_simple"], first["b_simple_lo"], first["b_simple_hi"]],
        "b_simple_final": [final["b_simple"], final["b_simple_lo"], final["b_simple_hi"]],
        "final_step": result.steps}
    return result


def report_numbers(run) -> dict:
    info = run.summary.get("batch_noise") or {}
    return {f"B_simple {when} (95% bootstrap interval)": f"{v[0]:.0f} [{v[1]:.0f}, {v[2]:.0f}]"
            for when, v in (("at init", info.get("b_simple_at_init")),
                            ("at the end", info.get("b_simple_final"))) if v}


def by_batch_size(runs) -> dict[int, list]:
    groups: dict[int, list] = {}
    for run in sorted(runs, key=lambda r: (r.config["batch_size"], r.config["seed"])):
        groups.setdefault(run.config["batch_size"], []).append(run)
    return groups


def mean_sd(tables: list, column: str):
    """Mean and sd (ddof 1; 0 for one seed) over seeds at the steps every seed measured."""
    t = __import__("pandas").concat([s.set_index("step")[column] for s in tables], axis=1,
                                    join="inner")
    return t.index.to_numpy(), t.mean(axis=1).to_numpy(), t.std(axis=1).fillna(0).to_numpy()


def _band(ax, x, mean, sd, colour, label):
    """Measured points as markers (joined only between neighbouring measured steps), ±1 sd."""
    ax.plot(x, mean, "-o", ms=4, lw=1, color=colour, label=label)
    ax.fill_between(x, mean - sd, mean + sd, color=colour, alpha=0.2, lw=0)


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    import pandas as pd

    out = sweep_dir / "plots" if out is None else out
    groups = by_batch_size(runs)
    n_seeds = min(len(g) for g in groups.values())
    band = f"mean ± sd over {n_seeds} seeds" if n_seeds > 1 else "one seed"
    written = []
    first = next(iter(groups.values()))[0]
    table = pd.read_csv(first.path / "noise_vs_batch.csv")
    slope = first.summary.get("batch_noise", {}).get("variance_slope", float("nan"))
    fig, axes = panels("gradient noise: spread of mini-batch gradients at init, and the noise "
                       f"scale B_simple during training ({band})", 2)
    ax = axes[0]
    ax.plot(table["batch_size"], table["mean_sq_dev"], "o", ms=7,
            label=f"measured at init (seed {first.config['seed']})")
    b, v = table["batch_size"].to_numpy(), table["mean_sq_dev"].to_numpy()
    trace = float(np.median(b * v))
    ax.plot(b, trace / b, "--", color="gray", label=f"tr(Σ)/B (slope −1); fitted slope {slope:.2f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("batch size B (log scale)")
    ax.set_ylabel("E‖g_B − G‖² (squared gradient units, log scale)")
    ax.set_title("mini-batch gradient scatter around the full gradient", fontsize=10)
    ax.legend(fontsize=8)
    rows = []
    for i, (size, members) in enumerate(groups.items()):
        tables = [pd.read_csv(r.path / "noise_scale.csv") for r in members]
        x, m, s = mean_sd([t[t["step"] > 0] for t in tables], "b_simple")
        final = np.array([r.summary["batch_noise"]["b_simple_final"][0] for r in members])
        sd = final.std(ddof=1) if len(final) > 1 else 0.0
        rows.append({"batch_size": size, "seeds": len(members), "b_simple_init_mean":
                     float(np.mean([t["b_simple"].iloc[0] for t in tables])),
                     "b_simple_final_mean": float(final.mean()), "b_simple_final_sd": float(sd)})
        _band(axes[1], x, m, s, f"C{i}", f"trained with batch {size}: at the end "
                                         f"{final.mean():.0f} ± {sd:.0f}")
    axes[1].set_xscale("log")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("step (parameter updates, log scale, from step 1)")
    axes[1].set_ylabel("B_simple = tr(Σ)/|G|² (examples, log scale)")
    axes[1].set_title("noise scale (McCandlish et al. 2018, A.1 estimator)", fontsize=10)
    axes[1].legend(fontsize=8)
    written.append(save(fig, out / f"gradient_noise.{fmt}"))
    pd.DataFrame(rows).to_csv(out / "noise_scale_by_batch.csv", index=False)

    fig, axes = panels(f"loss by batch size at equal epochs and at equal steps ({band})", 2)
    for i, (size, members) in enumerate(groups.items()):
        label = f"batch {size}"
        x, m, s = mean_sd([r.series("train", "loss") for r in members], "value")
        epochs = members[0].series("train", "loss").set_index("step").loc[x, "epoch"]
        _band(axes[0], epochs.to_numpy(), m, s, f"C{i}", label)
        tables = [pd.read_csv(r.path / "noise_scale.csv") for r in members]
        x, m, s = mean_sd([t[t["step"] > 0] for t in tables], "loss")
        _band(axes[1], x, m, s, f"C{i}", label)
    axes[0].set_xlabel("epoch (equal examples seen)")
    axes[0].set_ylabel("train " + y_label("loss") + " (log scale)")
    axes[1].set_xlabel("step (equal updates, log scale, from step 1)")
    axes[1].set_ylabel(f"loss on {first.config['batch_noise']['population']} train examples "
                       "(nats, log scale)")
    axes[1].set_xscale("log")
    for ax in axes:
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    written.append(save(fig, out / f"loss_by_batch_size.{fmt}"))
    return written
