"""ewa: the exponentially weighted average behind momentum and Adam, and Adam's bias
correction (notebook 7.4, 7.7) — one run, float64.

1. A noisy series x_t (a slow sine around 10 plus Gaussian noise), its EWA
   v_t = beta v_{t-1} + (1 - beta) x_t from v_0 = 0 and the bias-corrected v_t / (1 - beta^t).
   Unrolled, v_t = (1 - beta) sum_{k<=t} beta^(t-k) x_k, whose weights sum to 1 - beta^t: for a
   constant series v_t = (1 - beta^t) x, so the early EWA sits near 0 (ewa_series.csv).
2. Adam (dlx.optim.Adam) on the configured model and data with and without bias correction,
   the same seeds: per step, the RMS over all parameters of |p_t - p_{t-1}| / lr and the batch
   loss (adam_steps.csv). With correction the first steps are ~lr per coordinate; without it
   they are lr (1 - beta1^t) / sqrt(1 - beta2^t) for a steady gradient — 3.2 lr at t = 1, ~6.6
   lr near t = 12 for the default betas, back towards lr only after ~1/(1 - beta2) steps: the
   second moment's bias (towards 0, in the denominator) outweighs the first's. Mini-batch
   gradients are not steady — m averages gradients that change sign, |m| < sqrt(v) — so the
   measured uncorrected steps stay near their first-step size (~3 lr) and then shrink.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import numpy as np

from dlx.errors import UsageError
from dlx.plots.style import panels, save
from dlx.plots.sweep import curve_stats, draw_band

GENERIC_RUN_PLOTS = False  # no training curves of its own: its figures are all it has
SERIES, STEPS = "ewa_series.csv", "adam_steps.csv"


def validate(cfg) -> None:
    c = cfg.get("ewa") or {}
    for key in ("series_length", "steps"):
        if isinstance(c.get(key), bool) or not isinstance(c.get(key), int) or c[key] < 2:
            raise UsageError(f"ewa.{key} must be an integer >= 2, got {c.get(key)!r}")
    betas = c.get("betas")
    if not isinstance(betas, list) or not betas or not all(
            isinstance(b, (int, float)) and 0 < b < 1 for b in betas):
        raise UsageError(f"ewa.betas must be a list of numbers in (0, 1), got {betas!r}")
    seeds = c.get("seeds")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise UsageError(f"ewa.seeds must be a list of integers, got {seeds!r}")
    if cfg["optimizer"]["name"] != "adam":
        raise UsageError("experiment=ewa compares Adam with and without bias correction: "
                         "it needs optimizer=adam")


def ewa(x: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """The EWA v_t = beta v_{t-1} + (1 - beta) x_t (v_0 = 0) and v_t / (1 - beta^t), t = 1.."""
    v, out = 0.0, np.empty(len(x))
    for t, value in enumerate(x):
        v = beta * v + (1.0 - beta) * value
        out[t] = v
    return out, out / (1.0 - beta ** np.arange(1, len(x) + 1))


def steady_step(t: np.ndarray, b1: float, b2: float) -> np.ndarray:
    """|step| / lr of Adam without bias correction under a constant gradient (eps -> 0)."""
    return (1.0 - b1**t) / np.sqrt(1.0 - b2**t)


def adam_steps(cfg, seed: int, bias_correction: bool, steps: int) -> list[tuple]:
    """(step, RMS |delta p| / lr, batch loss) for ``steps`` Adam steps on cfg's model and data."""
    from dlx.assemble import build_data, build_model, rngs
    from dlx.nn import loss_for
    from dlx.optim import Adam

    cfg = {**cfg, "seed": seed, "dtype": "float64"}
    data = build_data(cfg)
    r = rngs(seed)
    model = build_model(cfg["model"], cfg["init"], data.spec, r["init"], np.float64)
    o = cfg["optimizer"]
    params = model.parameters()
    opt = Adam(params, lr=o["lr"], betas=tuple(o["betas"]), eps=o["eps"],
               bias_correction=bias_correction)
    loss_fn = loss_for(data.spec)
    X, y = data.X_train, data.y_train
    batch, rows = cfg["batch_size"] or len(X), []
    order = r["batches"]
    for step in range(1, steps + 1):
        idx = order.choice(len(X), size=min(batch, len(X)), replace=False)
        opt.zero_grad()
        loss = loss_fn.forward(model.forward(X[idx]), y[idx])
        model.backward(loss_fn.backward())
        before = [p.data.copy() for p in params]
        opt.step()
        sq = sum(float(np.sum((p.data - b) ** 2)) for p, b in zip(params, before))
        n = sum(p.data.size for p in params)
        rows.append((step, math.sqrt(sq / n) / o["lr"], loss))
    return rows


def run(cfg, rec, run_dir: Path):
    from dlx.assemble import rngs
    from dlx.training.loop import TrainResult

    c, start = cfg["ewa"], time.perf_counter()
    rng = rngs(cfg["seed"])["data"]
    t = np.arange(1, c["series_length"] + 1)
    x = 10.0 + np.sin(2 * np.pi * t / 100) + rng.normal(0, c["noise"], len(t))
    rows = []
    for beta in c["betas"]:
        v, corrected = ewa(x, beta)
        rows += [(beta, int(i), float(a), float(b), float(d)) for i, a, b, d in zip(t, x, v, corrected)]
        rec.log(0, 0, f"ewa_beta{beta:g}", "v1_over_x1", float(v[0] / x[0]))
    _write(run_dir / SERIES, ["beta", "t", "x", "ewa", "corrected"], rows)

    steps, info = [], {}
    for seed in c["seeds"]:
        for bc in (True, False):
            r = adam_steps(cfg, seed, bc, c["steps"])
            steps += [(int(bc), seed, *row) for row in r]
            key = "corrected" if bc else "uncorrected"
            info.setdefault(key, {"step1": [], "max_first_50": [], "final_loss": []})
            info[key]["step1"].append(r[0][1])
            info[key]["max_first_50"].append(max(row[1] for row in r[:50]))
            info[key]["final_loss"].append(float(np.mean([row[2] for row in r[-20:]])))
            rec.log(seed, 0, f"adam_{key}", "step1_over_lr", r[0][1])
            rec.log(seed, 0, f"adam_{key}", "final_loss", info[key]["final_loss"][-1])
    _write(run_dir / STEPS, ["bias_correction", "seed", "step", "rms_step_over_lr", "loss"], steps)
    b1, b2 = cfg["optimizer"]["betas"]
    info["steady_uncorrected_step1"] = float(steady_step(np.array(1.0), b1, b2))
    return TrainResult(2 * len(c["seeds"]) * c["steps"], time.perf_counter() - start, None, None,
                       0, 0, extra={"ewa": info})


def _write(path: Path, header, rows) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def report_numbers(run) -> dict:
    info = run.summary.get("ewa") or {}
    out = {}
    for key in ("corrected", "uncorrected"):
        if key in info:
            out[f"Adam {key}: first step / lr (mean over seeds)"] = float(np.mean(info[key]["step1"]))
            out[f"Adam {key}: largest of the first 50 steps / lr"] = float(
                np.mean(info[key]["max_first_50"]))
    return out


def plot_run(run, out: Path, fmt: str) -> list[Path]:
    import pandas as pd

    s = pd.read_csv(run.path / SERIES)
    betas = list(dict.fromkeys(s["beta"]))
    fig, axes = panels("an exponentially weighted average v_t = β v_(t−1) + (1 − β) x_t from "
                       "v_0 = 0, and its bias correction v_t / (1 − β^t)", len(betas),
                       size=(6.5 * len(betas), 4.6))
    for ax, beta in zip(np.atleast_1d(axes), betas):
        d = s[s["beta"] == beta]
        ax.plot(d["t"], d["x"], ".", ms=3, color="0.6", label="noisy series x_t")
        ax.plot(d["t"], d["ewa"], color="C0", label=f"EWA, β = {beta:g} (~{1 / (1 - beta):.0f} "
                "points)")
        ax.plot(d["t"], d["corrected"], color="C3", ls="--", label="bias-corrected EWA")
        ax.set_xlabel("t")
        ax.set_ylabel("value")
        ax.set_title(f"β = {beta:g}: the uncorrected EWA starts near 0", fontsize=10)
        ax.legend(fontsize=8)
    written = [save(fig, out / f"ewa.{fmt}")]

    a = pd.read_csv(run.path / STEPS)
    o = run.config["optimizer"]
    n = a["seed"].nunique()
    fig, axes = panels(f"Adam (lr {o['lr']:g}, betas {tuple(o['betas'])}) with and without bias "
                       f"correction, same model, data and seeds (mean ± sd, {n} seeds)", 2,
                       size=(13, 4.6))
    for i, (bc, label) in enumerate(((1, "bias-corrected (torch's Adam)"),
                                     (0, "bias_correction=false"))):
        d = a[a["bias_correction"] == bc]
        for ax, col in ((axes[0], "rms_step_over_lr"), (axes[1], "loss")):
            series = [g[["step", col]].rename(columns={col: "value"}) for _, g in d.groupby("seed")]
            draw_band(ax, curve_stats(series), color=f"C{i}", label=label, log=True)
    t = np.arange(1, a["step"].max() + 1)
    axes[0].plot(t, steady_step(t, *o["betas"]), "k:", lw=1,
                 label="(1 − β₁^t) / √(1 − β₂^t): uncorrected, constant gradient")
    axes[0].set_ylabel("RMS over parameters of |Δp| / lr (log scale)")
    axes[1].set_ylabel("batch loss (cross-entropy, nats; log scale)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("Adam step t (log scale)")
        ax.legend(fontsize=8)
    written.append(save(fig, out / f"bias_correction.{fmt}"))
    return written
