"""batchnorm: batch normalization (Ioffe & Szegedy 2015) on a deep MLP, with and without BN,
over weight-init scales std = 1e-4 ... 1 (cs231n's BatchNormalization notebook); the batch-size
half (BN against LayerNorm at batch 5 / 10 / 50) is :mod:`dlx.experiments.batchnorm_batch`.

Each run trains as usual and, every ``steps_per_epoch // batchnorm.per_epoch`` updates (and at
step 0 and at the end), records on a fixed probe batch X_p of the first ``probe_size``
validation images:

* ``unit_percentiles.csv`` — the 15th, 50th and 85th percentiles over X_p of z_u, the input of
  unit u (``batchnorm.unit``) of the last hidden nonlinearity: z_u = W_u . h (+ b_u) without BN,
  z_u = gamma_u (W_u . h - mu_u) / sqrt(var_u + eps) + beta_u with it — Ioffe & Szegedy's
  Fig. 1(b, c). mu_u and var_u are X_p's own batch statistics (training mode, the
  normalization the nonlinearity sees while training), not the running averages, whose
  warm-up from (0, 1) would otherwise show up as a "shift";
* ``train_eval.csv`` — the network's outputs f_train (training mode: X_p in consecutive
  chunks of the run's batch size, each normalized by its own statistics, as in training) and
  f_eval (eval mode: the running averages; what a deployed network computes): loss and accuracy
  in both modes and max_i,k |f_train(x_i)_k - f_eval(x_i)_k| over the probe logits.

Neither recording changes the training: BN's running averages are put back after a
training-mode pass, and the next update's forward pass rebuilds the layers' caches. At the end
the whole validation set is scored both ways (summary.json ``batchnorm``).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np

from dlx.errors import UsageError
from dlx.plots.style import STEP_LABEL, panels, save
from dlx.plots.sweep import curve_stats, draw_band, n_seeds, seeds_note, setting_stats

PERCENTILES = (15, 50, 85)
UNIT_FILE, MODES_FILE = "unit_percentiles.csv", "train_eval.csv"
UNIT_COLUMNS = ("step", "p15", "p50", "p85")
MODES_COLUMNS = ("step", "eval_loss", "eval_acc", "train_loss", "train_acc", "max_abs_diff")
NAMES = {"none": "no normalization", "batchnorm": "BatchNorm", "layernorm": "LayerNorm"}
COLORS = {"none": "tab:gray", "batchnorm": "tab:blue", "layernorm": "tab:orange"}
FOCUS = (0.02, 0.1)  # the scales the curves are drawn at: cs231n's 2e-2, and about He's
HE_STD = float(np.sqrt(2 / 100))  # He's std for a hidden layer of fan-in 100


def validate(cfg) -> None:
    c = cfg.get("batchnorm") or {}
    for key, low in (("unit", 0), ("probe_size", 2), ("per_epoch", 1)):
        v = c.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise UsageError(f"batchnorm.{key} must be an integer >= {low}, got {v!r}")
    m = cfg["model"]
    if m.get("name") != "mlp":
        raise UsageError(f"experiment={cfg['experiment']} follows a unit of an MLP's last hidden "
                         f"layer: it needs model=mlp, got model={m.get('name')}")
    keeps = m.get("keep_prob")
    if m.get("residual") or any(k != 1.0 for k in (keeps if isinstance(keeps, list) else [keeps])):
        raise UsageError(f"experiment={cfg['experiment']} needs a plain MLP (model.residual=false, "
                         "model.keep_prob=1.0): train and eval mode must differ by the norm only")
    hidden = m.get("hidden") or []
    if hidden and c["unit"] >= hidden[-1]:
        raise UsageError(f"batchnorm.unit must be < the last hidden width {hidden[-1]}, got "
                         f"{c['unit']}")
    if cfg.get("backend") != "numpy":
        raise UsageError(f"experiment={cfg['experiment']} records inside the NumPy model: it needs "
                         f"backend=numpy, got backend={cfg.get('backend')}")


# --- the recordings ---------------------------------------------------------------------------

@contextmanager
def running_stats_kept(model):
    """Run a block in which the model's buffers (BN's running mean and variance) may move, and
    put them back afterwards: a training-mode pass outside training must not update them."""
    saved = [b.data.copy() for b in model.buffers()]
    try:
        yield
    finally:
        for b, data in zip(model.buffers(), saved):
            b.data[...] = data
        model.train()


def last_preactivation(model, x: np.ndarray) -> np.ndarray:
    """(N, H) input of the last hidden nonlinearity: every layer of the MLP's Sequential but the
    last two (that nonlinearity and the output Linear) — after the norm, where there is one."""
    for layer in model.layers[:-2]:
        x = layer.forward(x)
    return x


def unit_input(model, X: np.ndarray, unit: int) -> np.ndarray:
    """(N,) z_unit over X in training mode (BN: X's own batch statistics), running stats kept."""
    with running_stats_kept(model):
        model.train()
        return np.asarray(last_preactivation(model, X)[:, unit], dtype=np.float64)


def logits_in(model, X: np.ndarray, training: bool, batch: int) -> np.ndarray:
    """(N, K) logits of X: in eval mode in one pass (each row depends on its own example only),
    or in training mode over consecutive chunks of ``batch`` rows, each normalized by its own
    batch statistics as in training. Running statistics are kept either way."""
    with running_stats_kept(model):
        model.train(training)
        if not training:
            return model.forward(X)
        return np.concatenate([model.forward(X[i:i + batch]) for i in range(0, len(X), batch)])


def train_eval_gap(model, loss_fn, X: np.ndarray, y: np.ndarray, batch: int) -> dict:
    """Loss and accuracy of X in eval and in training mode (chunks of ``batch``), and the
    largest |difference| between the two modes' logits."""
    from dlx.nn import accuracy

    out = {}
    logits = {}
    for mode, training in (("eval", False), ("train", True)):
        logits[mode] = logits_in(model, X, training, batch)
        out[f"{mode}_loss"] = float(loss_fn.forward(logits[mode], y))
        out[f"{mode}_acc"] = float(accuracy(logits[mode], y))
    out["max_abs_diff"] = float(np.max(np.abs(logits["train"].astype(np.float64)
                                              - logits["eval"])))
    return out


class Recorder:
    """The experiment's hook (``hook(step, backend)``, before training and before every update):
    every ``every`` steps a row of unit_percentiles.csv and of train_eval.csv on the probe batch.

    Args:
        X, y: the probe batch (fixed for the whole run).
        unit: the unit of the last hidden layer whose input is followed.
        batch: the training batch size (the chunks of a training-mode pass).
        every: record at steps that are multiples of it.
        run_dir: where the two CSVs go.
    """

    def __init__(self, X, y, unit: int, batch: int, every: int, run_dir: Path):
        self.X, self.y, self.unit, self.batch, self.every = X, y, unit, batch, every
        self.files = {}
        for name, columns in ((UNIT_FILE, UNIT_COLUMNS), (MODES_FILE, MODES_COLUMNS)):
            self.files[name] = open(run_dir / name, "w", buffering=1)
            self.files[name].write(",".join(columns) + "\n")
        self.last = None

    def __call__(self, step: int, backend, force: bool = False) -> None:
        if (step % self.every and not force) or step == self.last:
            return
        self.last = step
        z = unit_input(backend.model, self.X, self.unit)
        self.files[UNIT_FILE].write(",".join(map(repr, [step, *map(float, np.percentile(
            z, PERCENTILES))])) + "\n")
        gap = train_eval_gap(backend.model, backend.loss_fn, self.X, self.y, self.batch)
        self.files[MODES_FILE].write(",".join(repr(v) for v in [step, *(
            gap[k] for k in MODES_COLUMNS[1:])]) + "\n")

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def run(cfg, rec, run_dir: Path):
    from dlx.assemble import build_data
    from dlx.training import NumpyBackend, train

    data = build_data(cfg)
    backend = NumpyBackend(cfg, data)
    c, n = cfg["batchnorm"], len(data.X_train)
    batch = min(cfg["batch_size"] or n, n)
    per_epoch = -(-n // batch)
    p = c["probe_size"]
    recorder = Recorder(data.X_val[:p], data.y_val[:p], c["unit"], batch,
                        max(1, per_epoch // c["per_epoch"]), run_dir)
    try:
        result = train(cfg, rec, cfg["progress"], run_dir, hooks=[recorder], backend=backend)
        with np.errstate(all="ignore"):
            recorder(result.steps, backend, force=True)  # the trained network, too
            gap = train_eval_gap(backend.model, backend.loss_fn, data.X_val, data.y_val, batch)
    finally:
        recorder.close()
    result.extra["batchnorm"] = {
        "val_acc_eval": gap["eval_acc"], "val_acc_batch_stats": gap["train_acc"],
        "val_loss_eval": gap["eval_loss"], "val_loss_batch_stats": gap["train_loss"],
        "val_max_abs_logit_diff": gap["max_abs_diff"], "batch_size": batch}
    return result


# --- reading runs back ------------------------------------------------------------------------

def read_table(run, name: str):
    import pandas as pd

    path = run.path / name
    return pd.read_csv(path) if path.is_file() else None


def norm_of(run) -> str:
    return run.config["model"]["norm"]


def std_of(run) -> float:
    return float(run.config["init"]["std"])


def best_val_acc(run) -> float | None:
    return run.summary.get("best", {}).get("val/acc")


def final_train_loss(run) -> float | None:
    return run.summary.get("final", {}).get("train/loss")


def report_numbers(run) -> dict:
    info = run.summary.get("batchnorm") or {}
    numbers = {"best validation accuracy": best_val_acc(run),
               "final training loss": final_train_loss(run)}
    if info:
        numbers["validation accuracy, eval mode (running statistics)"] = info["val_acc_eval"]
        numbers[f"... with batch statistics (batches of {info['batch_size']})"] = \
            info["val_acc_batch_stats"]
    return numbers


def scale_table(runs):
    """Per (norm, init std), in order of norm then std: mean, sd, n over seeds of the best
    validation accuracy and the final training loss."""
    stats = setting_stats(runs, lambda r: (norm_of(r), std_of(r)),
                          {"best_val_acc": best_val_acc, "final_train_loss": final_train_loss})
    stats.insert(0, "norm", [s[0] for s in stats["setting"]])
    stats.insert(1, "std", [s[1] for s in stats["setting"]])
    return stats.drop(columns="setting").sort_values(["norm", "std"], ignore_index=True)


def paired_gain(runs, std: float) -> dict[int, float]:
    """seed -> BN's best validation accuracy minus the un-normalized net's, at one init std."""
    acc = {(norm_of(r), r.config["seed"]): best_val_acc(r) for r in runs if std_of(r) == std}
    return {seed: acc[("batchnorm", seed)] - acc[("none", seed)]
            for (norm, seed) in acc if norm == "none" and ("batchnorm", seed) in acc}


def focus_stds(runs) -> list[float]:
    """The swept stds nearest (in log) to each of FOCUS, without repeats."""
    stds = sorted({std_of(r) for r in runs})
    return list(dict.fromkeys(min(stds, key=lambda s: abs(np.log(s / f))) for f in FOCUS))


def _band_xy(ax, x, mean, sd, color, label, marker="o"):
    sd = np.nan_to_num(np.asarray(sd, dtype=float))
    ax.plot(x, mean, "-" + marker, ms=4, color=color, label=label)
    ax.fill_between(x, mean - sd, mean + sd, color=color, alpha=0.2, lw=0)


def _curves(runs, read, column: str, x: str = "step"):
    """curve_stats of one column of a per-run table over runs (None where none has it)."""
    tables = [t for t in (read(r) for r in runs) if t is not None]
    if not tables:
        return None
    return curve_stats([t.rename(columns={column: "value"})[[x, "value"]] for t in tables], x)


def _batch_loss(run, span: int = 10):
    s = run.series("batch", "loss")[["step", "value"]].copy()
    s["value"] = s["value"].rolling(span, min_periods=1).mean()
    return s


def _select(runs, norm: str, std: float | None = None, batch: int | None = None):
    return [r for r in runs if norm_of(r) == norm and (std is None or std_of(r) == std)
            and (batch is None or r.config["batch_size"] == batch)]


def _shape_note(run) -> str:
    m = run.config["model"]
    depth, width = len(m["hidden"]), m["hidden"][0]
    return (f"{depth}×{width} ReLU MLP, {run.config['dataset'].get('subset')} MNIST images, "
            f"{run.config['optimizer']['name']}, batch {run.config['batch_size']}, "
            f"{run.config['epochs']} epochs")


# --- figures ----------------------------------------------------------------------------------

def plot_run(run, out: Path, fmt: str) -> list[Path]:
    units, modes = read_table(run, UNIT_FILE), read_table(run, MODES_FILE)
    if units is None or modes is None or len(units) < 2:
        return []
    fig, axes = panels(f"{NAMES[norm_of(run)]}, init N(0, {std_of(run):g}²), seed "
                       f"{run.config['seed']}: unit {run.config['batchnorm']['unit']} of the last "
                       "hidden layer, and training vs eval mode", 2, size=(12, 4.4))
    for q, style in zip(PERCENTILES, (":", "-", "--")):
        axes[0].plot(units["step"], units[f"p{q}"], style, color="k", label=f"{q}th percentile")
    axes[0].set_ylabel("input of the nonlinearity z_u")
    for mode, style in (("eval", "-"), ("train", "--")):
        axes[1].plot(modes["step"], modes[f"{mode}_acc"], style,
                     label=f"{mode} mode" + (" (running statistics)" if mode == "eval" else
                                             " (batch statistics)"))
    axes[1].set_ylabel("probe-batch accuracy (fraction correct)")
    for ax in axes:
        ax.set_xlabel(STEP_LABEL)
        ax.legend(fontsize=8)
    return [save(fig, out / f"batchnorm_unit.{fmt}")]


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    norms = [n for n in NAMES if any(norm_of(r) == n for r in runs)]
    written = []
    if len({std_of(r) for r in runs}) > 1:
        written.append(_init_scale_figure(runs, norms, out, fmt))
    focus = focus_stds(runs)
    written.append(_convergence_figure(runs, norms, focus, out, fmt))
    written.append(_shift_figure(runs, norms, focus, out, fmt))
    written.append(_modes_figure(runs, norms, focus, out, fmt))
    return written


def _init_scale_figure(runs, norms, out, fmt) -> Path:
    table = scale_table(runs)
    fig, axes = panels(f"sensitivity to the weight-init scale: {_shape_note(runs[0])}, "
                       f"weights N(0, std²) ({seeds_note(table['n'])})", 2, size=(13, 4.8))
    for norm in norms:
        t = table[table["norm"] == norm]
        _band_xy(axes[0], t["std"], t["best_val_acc_mean"], t["best_val_acc_sd"], COLORS[norm],
                 NAMES[norm])
        _band_xy(axes[1], t["std"], t["final_train_loss_mean"], t["final_train_loss_sd"],
                 COLORS[norm], NAMES[norm])
        lost = t[t["final_train_loss_n"] < t["n"]]  # a non-finite loss somewhere: say where
        for std in lost["std"]:
            axes[1].annotate("diverged", (std, 1), xycoords=("data", "axes fraction"),
                             ha="center", va="top", fontsize=7, color=COLORS[norm])
    axes[0].axhline(0.1, color="k", lw=0.7, ls=":", label="chance (10 classes)")
    axes[0].set_ylabel("best validation accuracy (fraction correct)")
    axes[1].set_ylabel("final training loss (nats, log scale)")
    axes[1].set_yscale("log")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("weight-init std (log scale)")
        ax.axvline(HE_STD, color="tab:green", lw=0.8, ls="--", label="He's std for fan-in 100")
        ax.legend(fontsize=8)
    return save(fig, out / f"batchnorm_init_scale.{fmt}")


def grid(title: str, nrows: int, ncols: int, size):
    """A titled figure with an (nrows, ncols) array of axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=110, layout="tight")
    fig.suptitle(title, fontsize=10)
    return fig, np.array(fig.subplots(nrows, ncols, squeeze=False))


def _seeds_of(runs, norms, focus) -> str:
    """'mean ± 1 sd over 3 seeds', or '1 seed, no spread': what the bands of a figure are."""
    return seeds_note([len(_select(runs, norm, std)) for norm in norms for std in focus
                       if _select(runs, norm, std)] or [1])


def _convergence_figure(runs, norms, focus, out, fmt) -> Path:
    fig, axes = grid(f"convergence with and without normalization: {_shape_note(runs[0])} "
                      f"({_seeds_of(runs, norms, focus)})", len(focus), 2, (12, 4.2 * len(focus)))
    for row, std in zip(axes, focus):
        for norm in norms:
            members = _select(runs, norm, std)
            if not members:
                continue
            label = f"{NAMES[norm]} ({n_seeds(len(members))})"
            draw_band(row[0], curve_stats([_batch_loss(r) for r in members]),
                      color=COLORS[norm], label=label, log=True)
            draw_band(row[1], curve_stats([r.series("val", "acc") for r in members]),
                      color=COLORS[norm], label=label, marker="o", ms=3)
        row[0].set_yscale("log")
        row[0].set_ylabel("mini-batch loss, 10-step mean\n(nats, log scale)")
        row[1].set_ylabel("validation accuracy (fraction correct)")
        for ax in row:
            ax.set_title(f"init N(0, {std:g}²)", fontsize=10)
            ax.set_xlabel(STEP_LABEL)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
    return save(fig, out / f"batchnorm_convergence.{fmt}")


def _shift_figure(runs, norms, focus, out, fmt) -> Path:
    unit = runs[0].config["batchnorm"]["unit"]
    fig, axes = grid(f"internal covariate shift (Ioffe & Szegedy 2015, Fig. 1b, c): the 15th / "
                      f"50th / 85th percentiles of unit {unit}'s input to the last hidden ReLU\n"
                      f"over {runs[0].config['batchnorm']['probe_size']} fixed validation images; "
                      f"{_shape_note(runs[0])}\n(mean ± 1 sd over seeds: each seed's "
                      f"unit {unit} is another unit)", len(focus), len(norms),
                      (5.5 * len(norms), 4.0 * len(focus)))
    for row, std in zip(axes, focus):
        for ax, norm in zip(row, norms):
            members = _select(runs, norm, std)
            for q, style in zip(PERCENTILES, (":", "-", "--")):
                stats = _curves(members, lambda r: read_table(r, UNIT_FILE), f"p{q}")
                if stats is not None:
                    draw_band(ax, stats, color=COLORS[norm], ls=style, label=f"{q}th percentile")
            ax.set_title(f"{NAMES[norm]}, init N(0, {std:g}²) ({n_seeds(len(members))})",
                         fontsize=10)
            ax.set_xlabel(STEP_LABEL)
            ax.set_ylabel("z_u (input of the ReLU" + (", after BN)" if norm == "batchnorm"
                                                      else ")"))
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
    return save(fig, out / f"batchnorm_covariate_shift.{fmt}")


def _modes(run):
    """train_eval.csv with ``acc_gap`` = training-mode minus eval-mode accuracy (None if absent)."""
    t = read_table(run, MODES_FILE)
    return None if t is None else t.assign(acc_gap=t["train_acc"] - t["eval_acc"])


def _modes_figure(runs, norms, focus, out, fmt) -> Path:
    fig, axes = panels(f"training mode (statistics of each batch of {runs[0].config['batch_size']}) "
                       f"against eval mode (running statistics) on "
                       f"{runs[0].config['batchnorm']['probe_size']} fixed validation images "
                       f"({_seeds_of(runs, norms, focus)})", 2, size=(13, 4.6))
    floor = 1e-12  # identical modes (no BN) give 0: drawn at the floor of the log axis
    for norm in norms:
        for std, ls in zip(focus, ("-", "--")):
            members = _select(runs, norm, std)
            diff = _curves(members, _modes, "max_abs_diff")
            if diff is None:
                continue
            diff["mean"] = np.maximum(diff["mean"], floor)
            label = f"{NAMES[norm]}, init N(0, {std:g}²)" + (
                " (float32 round-off only)" if norm == "none" else "")
            draw_band(axes[0], diff, color=COLORS[norm], ls=ls, label=label, log=True)
            gap = _curves(members, _modes, "acc_gap")
            draw_band(axes[1], gap, color=COLORS[norm], ls=ls, label=label)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("max |logit, training mode − eval mode|\n(log scale; 1e-12 = identical)")
    axes[1].axhline(0, color="k", lw=0.7)
    axes[1].set_ylabel("accuracy in training mode − in eval mode\n(fraction correct)")
    for ax in axes:
        ax.set_xlabel(STEP_LABEL)
        ax.legend(fontsize=8)
    return save(fig, out / f"batchnorm_train_vs_eval.{fmt}")
