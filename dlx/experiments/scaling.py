"""scaling: a toy scaling law for character-level language models on tiny Shakespeare, after
Kaplan et al. (2020) and Hoffmann et al. (2022). Three sweeps (``scaling.axis``), each >= 3 seeds
per point:

* ``scaling`` (model): validation loss against non-embedding parameters N at a fixed number of
  steps, widths d_model 8 ... 128 (two decades of N);
* ``scaling_data`` (data): the best validation loss (early stopping's) of one model against the
  first D training characters, nested subsets, one fixed validation set;
* ``scaling_compute`` (compute): IsoFLOP profiles: for each budget C = 6 N D, models of several
  sizes each trained for D = C / 6N tokens (its own cosine schedule ending at C), loss against N,
  and the compute-optimal N per budget.

The learning rate is set by a stated rule, lr = optimizer.lr * (lr_width / d_model)^lr_power
(wider models take smaller steps; the constants from a small per-width sweep, see the README),
and warmup is ``warmup_fraction`` of each run's steps. `dlx plot` on a sweep fits the laws on log
loss with intervals from resampling seeds (:mod:`dlx.experiments.fits`) and writes
``<sweep>/plots/scaling_fit.json`` beside the figures.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np

from dlx.errors import UsageError
from dlx.experiments import fits
from dlx.plots.style import figure, panels, save

AXES = ("model", "data", "compute")
# published exponents: L(N) and L(D) of Kaplan et al. (pure power laws), and of Hoffmann et
# al.'s E + A/N^alpha + B/D^beta (their approach 3); N_opt ~ C^a of each
KAPLAN = {"model": 0.076, "data": 0.095, "compute": 0.73}
CHINCHILLA = {"model": 0.34, "data": 0.28, "compute": 0.50}
GENERIC_RUN_PLOTS = False  # one loss figure (per-character acc, bpc and ppl are in metrics.csv)
KEYS = {"axis": str, "lr_width": (int, float), "lr_power": (int, float),
        "warmup_fraction": (int, float), "flops": (int, float, type(None)),
        "train_eval_windows": int, "bootstrap": int}


def validate(cfg) -> None:
    s = cfg.get("scaling")
    if not isinstance(s, dict):
        raise UsageError("scaling: missing the `scaling` settings (axis, lr_width, ...)")
    for key, kind in KEYS.items():
        if key not in s or isinstance(s[key], bool) or not isinstance(s[key], kind):
            raise UsageError(f"scaling.{key} is missing or of the wrong type, got {s.get(key)!r}")
    unknown = set(s) - set(KEYS)
    if unknown:
        raise UsageError(f"unknown key scaling.{sorted(unknown)[0]} (valid: {', '.join(KEYS)})")
    if s["axis"] not in AXES:
        raise UsageError(f"scaling.axis must be one of {', '.join(AXES)}, got {s['axis']!r}")
    if not (s["lr_width"] > 0 and math.isfinite(s["lr_power"])):
        raise UsageError(f"scaling.lr_width must be > 0 and lr_power finite, got "
                         f"{s['lr_width']!r}, {s['lr_power']!r}")
    if not 0 <= s["warmup_fraction"] < 1:
        raise UsageError(f"scaling.warmup_fraction must be in [0, 1), got {s['warmup_fraction']!r}")
    if s["train_eval_windows"] < 1 or s["bootstrap"] < 10:
        raise UsageError("scaling.train_eval_windows must be >= 1 and scaling.bootstrap >= 10")
    if s["axis"] == "compute":
        if s["flops"] is None or not s["flops"] > 0:
            raise UsageError(f"scaling.flops must be > 0 for scaling.axis=compute, got "
                             f"{s['flops']!r}")
    elif not cfg.get("max_steps"):
        raise UsageError("scaling: set max_steps (every size is trained for the same steps)")


def learning_rate(cfg) -> float:
    """lr = optimizer.lr * (lr_width / d_model)^lr_power."""
    s = cfg["scaling"]
    return float(cfg["optimizer"]["lr"] * (s["lr_width"] / cfg["model"]["d_model"]) ** s["lr_power"])


class SampledTrainLoss:
    """A backend whose ``train/loss`` evaluations read a fixed, evenly spaced sample of the
    training windows: the study needs the validation loss, and a forward pass over all of
    tiny Shakespeare at every evaluation would cost as much as the training. Everything else
    is the wrapped backend's."""

    def __init__(self, backend, n_windows: int):
        self._backend, self._train = backend, backend.data.X_train
        n = len(self._train)
        self._rows = np.unique(np.linspace(0, n - 1, min(n_windows, n)).astype(int))

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def evaluate(self, X, y, **how):  # how: chunk and losses of a sampled evaluation
        if X is self._train:
            X, y = X[self._rows], y[self._rows]
        return self._backend.evaluate(X, y, **how)


def training_chars(dataset: dict) -> int:
    """D: the training characters the run may read (n_train_tokens, or the whole training part)."""
    from dlx.data.text import encode, load_text

    if dataset.get("n_train_tokens") is not None:
        return int(dataset["n_train_tokens"])
    n = len(encode(load_text(dataset["name"]))[0])
    return n - int(round(n * dataset.get("val_fraction", 0.1)))


def run(cfg, rec, run_dir):
    from dlx.assemble import build_data
    from dlx.training import train
    from dlx.training.backend import make_backend

    cfg = copy.deepcopy(dict(cfg))
    s = cfg["scaling"]
    cfg["optimizer"]["lr"] = learning_rate(cfg)
    data = build_data(cfg)
    backend = make_backend(cfg, data)
    n = backend.sizes()["non_embedding_params"]
    tokens_per_step = min(cfg["batch_size"] or len(data.X_train), len(data.X_train)) \
        * data.spec.seq_len
    if s["axis"] == "compute":  # the budget fixes the tokens: D = C / 6N
        cfg["max_steps"] = max(1, round(s["flops"] / (6 * n * tokens_per_step)))
    if "warmup_steps" in cfg["schedule"]:
        cfg["schedule"]["warmup_steps"] = round(s["warmup_fraction"] * cfg["max_steps"])
    result = train(cfg, rec, cfg["progress"], run_dir,
                   backend=SampledTrainLoss(backend, s["train_eval_windows"]))
    tokens = result.steps * tokens_per_step
    result.extra.update(lr=cfg["optimizer"]["lr"], tokens_per_step=tokens_per_step,
                        tokens_seen=tokens, train_flops=6.0 * n * tokens,
                        train_chars=training_chars(cfg["dataset"]))
    return result


def report_numbers(run) -> dict:
    s = run.summary
    return {"non-embedding parameters N": s.get("non_embedding_params"),
            "training characters D": s.get("train_chars"), "learning rate": s.get("lr"),
            "training FLOPs (6 N tokens)": s.get("train_flops"),
            "final validation loss (nats/char)": s.get("final", {}).get("val/loss")}


def report_sweep_numbers(runs, plots: Path) -> dict:
    """The sweep's fitted laws, with their 95% seed-bootstrap intervals, as ``dlx report`` shows
    them: read from the ``scaling_fit.json`` that the sweep's figures were drawn with."""
    path = plots / "scaling_fit.json"
    if not path.is_file():
        return {}
    fit = json.loads(path.read_text())
    ci = lambda v, lo_hi, f=".3g": f"{v:{f}} [{lo_hi[0]:{f}}, {lo_hi[1]:{f}}]"  # noqa: E731
    ref = fit.get("reference_alpha", {})
    if fit["axis"] == "compute":
        iso = fit["isoflop"]
        out = {f"C = {b['C']:.2g} FLOPs: compute-optimal N (95% interval)":
               ci(b["N_opt"], b["N_opt_ci95"]) for b in iso["budgets"]}
        out["N_opt ∝ C^a: a (95% interval)"] = ci(iso["a"], iso["a_ci95"], ".2f")
        out["a of Kaplan / Chinchilla"] = f"{ref.get('kaplan')} / {ref.get('chinchilla')}"
        return out
    x = "N" if fit["axis"] == "model" else "D"
    power, sat = fit["power_law"], fit["saturating"]
    return {f"power law A·{x}^−α: α (95% interval)": ci(power["alpha"], power["ci95"]["alpha"]),
            "power law: R² (log loss)": f"{power['r2_log']:.3f}",
            f"E + A·{x}^−α: α (95% interval)": ci(sat["alpha"], sat["ci95"]["alpha"]),
            "E + A·x^−α: E (95% interval)": ci(sat["E"], sat["ci95"]["E"])
            + ("" if sat.get("E_identified") else " (not identified by these sizes)"),
            "α of Kaplan / Chinchilla": f"{ref.get('kaplan')} / {ref.get('chinchilla')}",
            "seeds per point": str(min(fit["points"]["n"]))}


def plot_run(run, out: Path, fmt: str) -> list[Path]:
    """The run's loss against the characters it has read: mini-batches and the validation set."""
    s, c = run.summary, run.config
    per_step = s.get("tokens_per_step") or 1
    wide = run.wide()
    fig, ax = figure(f"{c['experiment']}: d_model {c['model']['d_model']}, N = "
                     f"{s.get('non_embedding_params', 0):,}, D = {s.get('train_chars', 0):,} "
                     f"characters, seed {c['seed']}, lr {s.get('lr', 0):.2g}",
                     "characters read (steps x batch x block_size)",
                     "loss (nats per character)")
    batch = wide["batch/loss"].dropna()
    ax.plot(batch.index * per_step, batch, color="0.65", lw=0.7, label="mini-batch")
    for key, style, label in (("train/loss", "s--", "training windows (fixed sample)"),
                              ("val/loss", "o-", "validation set (fixed)")):
        values = wide[key].dropna()
        ax.plot(values.index * per_step, values, style, ms=5, label=label)
    ax.legend(fontsize=8)
    return [save(fig, out / f"learning_curve.{fmt}")]


# --- figures and fits of a sweep ----------------------------------------------------------------

def observations(runs, axis: str):
    """(x, loss, flops) per completed run: x = N, or D for the data axis; the data axis reads
    the best validation loss (early stopping's, as Kaplan et al.'s L(D)), the others the final."""
    done = [r for r in runs if r.summary.get("status") == "completed"]
    if axis == "data":
        x = [r.summary["train_chars"] for r in done]
        loss = [r.summary["best"]["val/loss"] for r in done]
    else:
        x = [r.summary["non_embedding_params"] for r in done]
        loss = [r.summary["final"]["val/loss"] for r in done]
    flops = [r.config["scaling"]["flops"] or r.summary["train_flops"] for r in done]
    return np.array(x, float), np.array(loss, float), np.array(flops, float)


def fit_laws(x, L, n: int) -> dict:
    """Both laws with seed-bootstrap intervals, the per-point mean ± sd, whether E is identified."""
    power, sat = fits.fit_power(x, L), fits.fit_saturating(x, L)
    power_draws = fits.resample_fits(fits.fit_power, x, L, n)
    sat_draws = fits.resample_fits(fits.fit_saturating, x, L, n)
    e_ci = fits.intervals(sat_draws)["E"]
    points = fits.summarize(x, L)
    return {"points": points,
            "power_law": {**power, "ci95": fits.intervals(power_draws)},
            "saturating": {**sat, "ci95": fits.intervals(sat_draws),
                           # identified: the floor's interval excludes 0 and the measured losses
                           "E_identified": bool(e_ci[0] > 0.01 * min(points["mean"])
                                                and e_ci[1] < min(points["mean"]))},
            "_draws": (power_draws, sat_draws)}


def _log_axes(ax, y: bool = True, plain_y: bool = True) -> None:
    """Log axes labelled at the decades in x, and plainly (2.0, 1.5, ...) in y, whose values
    span less than a decade: minor x labels would overlap."""
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    if y:
        ax.set_yscale("log")
    if y and not plain_y:
        ax.yaxis.set_minor_formatter(NullFormatter())
    elif y:
        ax.yaxis.set_major_formatter(FormatStrFormatter("%.2g"))
        ax.yaxis.set_minor_formatter(FormatStrFormatter("%.2g"))


def _band(ax, grid, curves, color):
    lo, hi = np.nanpercentile(np.array(curves), [2.5, 97.5], axis=0)
    ax.fill_between(grid, lo, hi, color=color, alpha=0.18, lw=0)


def plot_law(result: dict, axis: str, path: Path) -> Path:
    word = {"model": "model size", "data": "data set size"}[axis]
    xlabel = ("non-embedding parameters N (log scale)" if axis == "model"
              else "training characters D (nested subsets; log scale)")
    fig, ax = figure(f"tiny Shakespeare, character level: validation loss against {word}",
                     xlabel, "validation loss (nats per character, log scale)", size=(8, 5.2))
    pts, power, sat = result["points"], result["power_law"], result["saturating"]
    x, mean, sd = (np.array(pts[k]) for k in ("x", "mean", "sd"))
    ax.plot(result["x"], result["loss"], ".", color="0.6", ms=5, label="one seed")
    ax.errorbar(x, mean, yerr=sd, fmt="o", color="k", ms=6, capsize=4, zorder=3,
                label=f"mean ± sd over {min(pts['n'])} seeds")
    grid = np.geomspace(x.min() / 1.4, x.max() * 1.4, 200)
    power_draws, sat_draws = result["_draws"]
    ci = power["ci95"]["alpha"]
    ax.plot(grid, power["A"] * grid ** -power["alpha"], "--", color="tab:orange",
            label=f"A·x^−α: α = {power['alpha']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}], "
                  f"R² = {power['r2_log']:.3f}")
    _band(ax, grid, [d["A"] * grid ** -d["alpha"] for d in power_draws], "tab:orange")
    ci, eci = sat["ci95"]["alpha"], sat["ci95"]["E"]
    ax.plot(grid, sat["E"] + sat["A"] * grid ** -sat["alpha"], "-", color="tab:blue",
            label=f"E + A·x^−α: α = {sat['alpha']:.2f} [{ci[0]:.2f}, {ci[1]:.2f}], "
                  f"E = {sat['E']:.2f} [{eci[0]:.2f}, {eci[1]:.2f}], R² = {sat['r2_log']:.3f}")
    _band(ax, grid, [d["E"] + d["A"] * grid ** -d["alpha"] for d in sat_draws], "tab:blue")
    for name, ref, style in (("Kaplan", KAPLAN, ":"), ("Chinchilla", CHINCHILLA, "-.")):
        ax.plot(grid, mean[0] * (grid / x[0]) ** -ref[axis], style, color="0.35",
                lw=1, label=f"{name}'s slope α = {ref[axis]} (through the smallest mean)")
    _log_axes(ax)
    low, high = min(result["loss"]), max(result["loss"])
    ax.set_ylim(low / 1.25, high * 1.12)  # the data, not where the reference slopes run off to
    ax.legend(fontsize=7.5, loc="lower left")
    return save(fig, path)


def plot_isoflop(result: dict, path: Path) -> Path:
    fig, (left, right) = panels("tiny Shakespeare, character level: IsoFLOP profiles "
                                "(C = 6·N·D; each run's own cosine schedule ends at C)", 2,
                                size=(12, 4.8))
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    x, loss, flops = (np.array(result[k]) for k in ("x", "loss", "flops"))
    for i, b in enumerate(result["isoflop"]["budgets"]):
        c, color = b["C"], colors[i % len(colors)]
        pts = fits.summarize(x[flops == c], loss[flops == c])
        left.errorbar(pts["x"], pts["mean"], yerr=pts["sd"], fmt="o", color=color, ms=5,
                      capsize=3, label=f"C = {c:.2g} FLOPs (mean ± sd, {min(pts['n'])} seeds)")
        left.plot(pts["x"], pts["mean"], ":", color=color, lw=0.8)
        if math.isfinite(b["N_opt"]):  # the parabola over the sizes it was fitted to
            u = np.log(np.geomspace(*b["profile"]["window"], 100))
            a, bb, cc = b["profile"]["coef"]
            left.plot(np.exp(u), a * u ** 2 + bb * u + cc, "-", color=color, lw=1.5)
            left.plot(b["N_opt"], b["profile"]["L_opt"], "*", color=color, ms=14, mec="k")
    _log_axes(left, y=False)
    left.set_xlabel("non-embedding parameters N (log scale)")
    left.set_ylabel("final validation loss (nats per character)")
    left.legend(fontsize=7.5, title_fontsize=7.5,
                title="★ minimum of a parabola in log N\n(lowest mean and its neighbours)")
    budgets = [b for b in result["isoflop"]["budgets"] if math.isfinite(b["N_opt"])]
    C = np.array([b["C"] for b in budgets])
    opt = np.array([b["N_opt"] for b in budgets])
    ci = np.array([b["N_opt_ci95"] for b in budgets]).T
    right.errorbar(C, opt, yerr=[opt - ci[0], ci[1] - opt], fmt="o", color="k", capsize=4,
                   label="compute-optimal N (95% seed interval)")
    iso = result["isoflop"]
    if len(C) >= 2:
        grid = np.geomspace(C.min() / 1.5, C.max() * 1.5, 50)
        scale = np.exp(np.mean(np.log(opt)) - iso["a"] * np.mean(np.log(C)))
        right.plot(grid, scale * grid ** iso["a"], "-", color="tab:blue",
                   label=f"N_opt ∝ C^a: a = {iso['a']:.2f} [{iso['a_ci95'][0]:.2f}, "
                         f"{iso['a_ci95'][1]:.2f}]")
        for name, ref, style in (("Kaplan", KAPLAN, ":"), ("Chinchilla", CHINCHILLA, "-.")):
            right.plot(grid, opt[0] * (grid / C[0]) ** ref["compute"], style, color="0.35",
                       lw=1, label=f"{name}: a = {ref['compute']}")
    _log_axes(right, plain_y=False)
    right.set_xlabel("training compute C (FLOPs ≈ 6·N·tokens, log scale)")
    right.set_ylabel("compute-optimal N (parameters, log scale)")
    right.legend(fontsize=7.5)
    return save(fig, path)


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    fit_path = out / "scaling_fit.json"
    s = runs[0].config["scaling"]
    axis, n = s["axis"], s["bootstrap"]
    x, loss, flops = observations(runs, axis)
    result = {"axis": axis, "x": x.tolist(), "loss": loss.tolist(), "flops": flops.tolist(),
              "reference_alpha": {"kaplan": KAPLAN[axis], "chinchilla": CHINCHILLA[axis]}}
    if axis == "compute":
        result["isoflop"] = fits.isoflop(flops, x, loss, n)
        figure_path = plot_isoflop(result, out / f"scaling_compute.{fmt}")
    else:
        result.update(fit_laws(x, loss, n))
        figure_path = plot_law(result, axis, out / f"scaling_{axis}.{fmt}")
        del result["_draws"]
    fit_path.parent.mkdir(parents=True, exist_ok=True)
    fit_path.write_text(json.dumps(result, indent=2) + "\n")
    return [figure_path, fit_path]
