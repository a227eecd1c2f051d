"""cv_lambda: choosing the L2 strength lambda by k-fold cross-validation (the series' 8.5).

One run does the whole procedure, so that the test set is looked at exactly once:

1. for every lambda of ``cv_lambda.grid`` and every fold i of ``cv_lambda.folds``, train on the
   other folds and score fold i (``dataset.folds=k dataset.fold=i``: the folds are fixed by the
   data set's seed, the preprocessing is refitted on the training folds, no test split);
2. the CV curve: the validation metric's mean and sd over the folds at each lambda (cv.csv);
   the chosen lambda is the argmin of the mean, and the one-standard-error rule's (Hastie,
   Tibshirani & Friedman, ESL 7.10) the largest lambda whose mean is within one standard error
   (sd / sqrt(k)) of the minimum: the simplest model the data cannot tell from the best;
3. one refit on every fold (``dataset.fold=null``) at the lambda ``cv_lambda.refit`` names, whose
   training is this run's metrics.csv, and the test split scored once, at its end.
"""

from __future__ import annotations

import copy
import math
import tempfile
from pathlib import Path

import numpy as np

from dlx.errors import UsageError

CV_CSV = "cv.csv"
RULES = ("min", "one_se")


def _settings(cfg) -> dict:
    node = cfg.get("cv_lambda")
    if not isinstance(node, dict):
        raise UsageError("experiment=cv_lambda needs its cv_lambda: node (grid, folds, metric, refit)")
    return node


def validate(cfg) -> None:
    from dlx.data import FOLD_DATASETS
    from dlx.nn.metrics import names

    node = _settings(cfg)
    grid = node.get("grid")
    if not (isinstance(grid, list) and len(grid) >= 3
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                    and math.isfinite(v) for v in grid)
            and all(a < b for a, b in zip(grid, grid[1:]))):
        raise UsageError(f"cv_lambda.grid must be an increasing list of at least 3 numbers > 0, "
                         f"got {grid!r}")
    folds = node.get("folds")
    if not isinstance(folds, int) or isinstance(folds, bool) or folds < 2:
        raise UsageError(f"cv_lambda.folds must be an integer >= 2, got {folds!r}")
    if node.get("refit") not in RULES:
        raise UsageError(f"cv_lambda.refit must be one of {', '.join(RULES)}, got "
                         f"{node.get('refit')!r}")
    if "lam" not in cfg["regularizer"]:
        raise UsageError(f"experiment=cv_lambda chooses regularizer.lam: regularizer="
                         f"{cfg['regularizer']['name']} has none (use l2, l1 or elastic_net)")
    if cfg["dataset"]["name"] not in FOLD_DATASETS:
        raise UsageError(f"experiment=cv_lambda cross-validates; dataset "
                         f"{cfg['dataset']['name']!r} has no folds (use one of "
                         f"{', '.join(FOLD_DATASETS)})")
    if cfg["dataset"].get("folds") is not None:
        raise UsageError("experiment=cv_lambda sets dataset.folds and dataset.fold itself "
                         "(set cv_lambda.folds)")
    if cfg["early_stopping"]["patience"] is not None:
        raise UsageError("experiment=cv_lambda: the refit on every fold has no validation split "
                         "to stop on (early_stopping.patience must be null)")
    from dlx.assemble import check_dataset

    task = check_dataset(cfg["dataset"]).task
    metric = node.get("metric")
    if metric not in ("loss", *names(task)):
        raise UsageError(f"cv_lambda.metric must be one of {', '.join(('loss', *names(task)))} "
                         f"for {task} data, got {metric!r}")


def member(cfg, lam: float, fold: int | None) -> dict:
    """The config of one training: regularizer.lam = lam, validated on fold ``fold`` of
    ``cv_lambda.folds`` (None: the refit on every fold)."""
    sub = copy.deepcopy(cfg)
    sub["regularizer"]["lam"] = float(lam)
    sub["dataset"].update(folds=_settings(cfg)["folds"], fold=fold)
    return sub


def choose(table: list[dict], metric: str, folds: int) -> dict:
    """The CV curve (mean, sd and standard error over the folds at each lambda, lambda sorted)
    and the two choices: ``min`` (best mean) and ``one_se`` (the largest lambda whose mean is
    within one standard error of the best, in the metric's good direction)."""
    from dlx.records.metrics import better

    sign = 1.0 if better(metric) is min else -1.0  # choose on sign * metric, lower is better
    lams = sorted({r["lam"] for r in table})
    curve = []
    for lam in lams:
        v = np.array([r[f"val/{metric}"] for r in table if r["lam"] == lam])
        sd = float(v.std(ddof=1))
        curve.append({"lam": lam, "mean": float(v.mean()), "sd": sd, "se": sd / math.sqrt(folds),
                      "train_mean": float(np.mean([r[f"train/{metric}"] for r in table
                                                   if r["lam"] == lam]))})
    best = min(range(len(curve)), key=lambda j: sign * curve[j]["mean"])
    bound = sign * curve[best]["mean"] + curve[best]["se"]
    one_se = max(j for j in range(len(curve)) if sign * curve[j]["mean"] <= bound)
    return {"curve": curve, "metric": f"val/{metric}", "folds": folds,
            "min": curve[best]["lam"], "one_se": curve[one_se]["lam"],
            "min_index": best, "one_se_index": one_se}


def run(cfg, rec, run_dir):
    from dlx.records.metrics import MetricsWriter
    from dlx.training import train

    node = _settings(cfg)
    grid, folds, metric = node["grid"], node["folds"], node["metric"]
    table = []
    with tempfile.TemporaryDirectory() as tmp:  # the members' own records are not kept
        for j, lam in enumerate(grid):
            for i in range(folds):
                writer = MetricsWriter(Path(tmp) / f"{j}_{i}.csv")
                try:
                    result = train(member(cfg, lam, i), writer, "none")
                finally:
                    writer.close()
                row = {"lam": float(lam), "fold": i,
                       "diverged": result.diverged_at_step is not None}
                row.update({k: writer.final[k] for k in writer.final
                            if k.split("/")[0] in ("train", "val")})
                table.append(row)
    choice = choose(table, metric, folds)
    _write_table(run_dir, table, choice)
    lam = choice[node["refit"]]
    result = train(member(cfg, lam, None), rec, cfg["progress"], run_dir)
    result.extra["cv_lambda"] = {k: v for k, v in choice.items() if k != "curve"} | {
        "refit_rule": node["refit"], "refit_lam": lam, "grid": list(map(float, grid)),
        "curve": choice["curve"]}
    return result


def _write_table(run_dir, table, choice) -> None:
    import pandas as pd

    if run_dir is None:
        return
    frame = pd.DataFrame(table)
    frame.to_csv(Path(run_dir) / CV_CSV, index=False, float_format="%.8g")


def report_numbers(run) -> dict:
    cv = run.summary.get("cv_lambda")
    if not cv:
        return {}
    curve = {c["lam"]: c for c in cv["curve"]}
    metric = cv["metric"].split("/")[1]
    best = curve[cv["min"]]
    return {f"λ chosen by {cv['folds']}-fold CV (argmin)": cv["min"],
            f"CV {cv['metric']} there (mean ± sd over folds)": f"{best['mean']:.4g} ± {best['sd']:.2g}",
            "λ by the one-standard-error rule": cv["one_se"],
            f"refit at λ = {cv['refit_lam']:g}: test/{metric} (once)":
                run.summary.get("final", {}).get(f"test/{metric}")}


# --- figures ----------------------------------------------------------------------------------

def plot_run(run, out: Path, fmt: str) -> list[Path]:
    """The CV curve (mean ± sd over folds, each fold, the training folds' fit, both choices and
    the refit's single test score) and each fold's curve relative to its own mean."""
    import pandas as pd

    from dlx.plots.style import panels, save

    cv = run.summary.get("cv_lambda")
    if not cv or not (run.path / CV_CSV).is_file():
        return []
    table = pd.read_csv(run.path / CV_CSV)
    key = cv["metric"]
    metric = key.split("/")[1]
    unit = run.config["dataset"]["name"] == "california_housing" and metric in ("rmse", "mae")
    scale, units = (1e3, " (thousand $)") if unit else (1.0, "")
    curve = pd.DataFrame(cv["curve"])
    k = cv["folds"]
    fig, (ax1, ax2) = panels(f"choosing the L2 strength λ by {k}-fold cross-validation "
                             f"({run.config['model']['name']} on {run.config['dataset']['name']})",
                             2, size=(14, 6.4))
    for i, rows in table.groupby("fold"):
        ax1.plot(rows["lam"], rows[key] / scale, color="tab:blue", alpha=0.25, lw=0.8,
                 label="each validation fold" if i == 0 else None)
    ax1.errorbar(curve["lam"], curve["mean"] / scale, yerr=curve["sd"] / scale, fmt="-o", ms=4,
                 capsize=3, color="tab:blue", label=f"validation: mean ± sd over {k} folds")
    ax1.plot(curve["lam"], curve["train_mean"] / scale, "-s", ms=3, color="tab:gray",
             label="training folds (mean): the fit")
    best = curve.iloc[cv["min_index"]]
    ax1.axhline((best["mean"] + best["se"]) / scale, color="tab:orange", ls=":", lw=1,
                label="best mean + 1 standard error (sd/√k)")
    ax1.axvline(cv["min"], color="tab:green", ls="--", lw=1, label=f"argmin: λ = {cv['min']:g}")
    ax1.axvline(cv["one_se"], color="tab:orange", ls="--", lw=1,
                label=f"one-standard-error rule: λ = {cv['one_se']:g}")
    test = run.summary.get("final", {}).get(f"test/{metric}")
    if test is not None:
        ax1.plot([cv["refit_lam"]], [test / scale], "*", ms=14, color="tab:red",
                 label=f"test {metric} of the refit on all folds, once: {test / scale:.4g}{units}")
    ax1.set_xscale("log")
    ax1.set_xlabel("L2 strength λ (log scale)")
    ax1.set_ylabel(f"{metric}{units}")
    # below the axes: seven entries anywhere inside would cover the curves they name
    ax1.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    for i, rows in table.groupby("fold"):
        v = rows.sort_values("lam")
        ax2.plot(v["lam"], (v[key] - v[key].mean()) / scale, "-o", ms=3, alpha=0.8,
                 label=f"fold {i}")
    ax2.axhline(0, color="black", lw=0.8)
    ax2.set_xscale("log")
    ax2.set_xlabel("L2 strength λ (log scale)")
    ax2.set_ylabel(f"validation {metric} − the fold's mean over λ{units}")
    ax2.set_title("each fold against its own mean: λs compared within a fold (paired)",
                  fontsize=9)
    ax2.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=min(k, 5))
    return [save(fig, out / f"cv_curve.{fmt}")]
