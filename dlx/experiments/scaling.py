"""scaling: final loss against model size at a fixed training budget (and, as scaling_data,
against the number of training examples). `dlx plot` fits L(N) = E + A N^-alpha and the pure
power law A N^-alpha, draws them on log-log axes, and writes the fitted parameters with
bootstrap 95% intervals and R^2 to <sweep>/scaling_fit.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dlx.experiments import fits
from dlx.plots.style import figure, save


def size(run, axis: str) -> float:
    if axis == "data":
        d = run.config["dataset"]
        return float(round(d["n_samples"] * (1 - d.get("val_fraction", 0.2))))
    return float(run.summary.get("non_embedding_params") or 0)


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    fit_path = (sweep_dir if out is None else out) / "scaling_fit.json"  # beside the sweep
    out = sweep_dir / "plots" if out is None else out
    axis = runs[0].config.get("scaling_axis", "model")
    runs = [r for r in runs if r.summary.get("status") == "completed"]
    N = np.array([size(r, axis) for r in runs])
    L = np.array([r.summary["final"]["val/loss"] for r in runs])
    order = np.argsort(N)
    N, L = N[order], L[order]
    sat, power = fits.fit_saturating(N, L), fits.fit_power(N, L)
    result = {"axis": axis, "N": N.tolist(), "loss": L.tolist(),
              "saturating": {**sat, "ci95": fits.bootstrap(fits.fit_saturating, N, L)},
              "power_law": {**power, "ci95": fits.bootstrap(fits.fit_power, N, L)}}
    fit_path.parent.mkdir(parents=True, exist_ok=True)
    fit_path.write_text(json.dumps(result, indent=2) + "\n")

    xlabel = ("non-embedding parameters N (log scale)" if axis == "model"
              else "training examples D (log scale)")
    fig, ax = figure(f"scaling: final validation loss against {'model' if axis == 'model' else 'data'} "
                     "size", xlabel, "validation loss (nats per answer token, log scale)")
    ax.plot(N, L, "o", ms=8, color="k", label="runs", zorder=3)
    grid = np.geomspace(N.min() / 1.3, N.max() * 1.3, 200)
    ci = result["saturating"]["ci95"].get("alpha", [np.nan, np.nan])
    ax.plot(grid, sat["E"] + sat["A"] * grid ** -sat["alpha"], "-", color="tab:blue",
            label=f"E + A·N^−α: α = {sat['alpha']:.2f} [{ci[0]:.2f}, {ci[1]:.2f}], "
                  f"E = {sat['E']:.3g}, R² = {sat['r2_log']:.3f}")
    ax.plot(grid, power["A"] * grid ** -power["alpha"], "--", color="tab:orange",
            label=f"A·N^−α: α = {power['alpha']:.2f}, R² = {power['r2_log']:.3f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    return [save(fig, out / f"scaling_{axis}.{fmt}"),
            fit_path]
