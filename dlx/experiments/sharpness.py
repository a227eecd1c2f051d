"""sharpness: full-batch gradient descent on an MLP at the edge of stability (Cohen et al. 2021).

On a quadratic with top Hessian eigenvalue L, GD with step eta converges iff L < 2/eta
(experiment=conditioning: a step just above 2/L diverges). A neural network's Hessian changes as
it trains: the top eigenvalue lambda_max(t), the *sharpness*, first rises (progressive
sharpening) until it reaches 2/eta, and then hovers there — GD does not diverge, the loss keeps
falling, but not monotonically ("edge of stability"). This experiment trains an MLP by GD on a
few thousand MNIST images (pixels centred, MSE on one-hot targets or cross-entropy) and every
``sharpness.every`` steps estimates lambda_max by Lanczos on finite-difference Hessian-vector
products over the full training set (:mod:`dlx.nn.hessian`). A sweep over eta and seeds draws
the sharpness against 2/eta.

Its record: ``batch/loss`` every step (the full-batch loss before the update), ``train/sharpness``
and ``train/sharpness_x_eta_over_2`` every ``every`` steps, the top-k eigenvalues at init and at
the end (``spectrum.csv``), and in summary.json ``sharpness``: when the sharpness crossed
2/eta, when the loss first rose after that (the edge-of-stability phase begins), and the median of
sharpness / (2/eta) over the estimates in that phase.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import numpy as np

from dlx.assemble import build_data, build_model_for, rngs
from dlx.errors import UsageError
from dlx.nn import MSE, SoftmaxCrossEntropy
from dlx.nn.hessian import flat_grad, lanczos, make_hvp, n_params
from dlx.training import TrainResult

# the groups this experiment does not take from the config (see dlx.experiments)
OWN_PIECES = {
    "optimizer": "full-batch gradient descent at the step optimizer.lr, whose sharpness it "
                 "tracks",
    "loss": "MSE on one-hot targets or cross-entropy (sharpness.loss)",
    "schedule": "a constant step (the edge of stability is about a fixed η)",
    "regularizer": "the data loss alone",
}


GENERIC_RUN_PLOTS = False
SMOOTH = ("tanh", "gelu", "sigmoid", "identity")  # finite-difference HVPs need no kinks
LOSSES = ("mse", "ce")


def validate(cfg) -> None:
    c = cfg.get("sharpness") or {}
    m, opt = cfg["model"], cfg["optimizer"]
    if m.get("name") != "mlp":
        raise UsageError(f"experiment sharpness trains model=mlp, got model={m.get('name')!r}")
    acts = m["activation"] if isinstance(m["activation"], list) else [m["activation"]]
    if any(a not in SMOOTH for a in acts):
        raise UsageError(f"sharpness needs a smooth activation ({', '.join(SMOOTH)}): finite "
                         f"differences across ReLU's kink are not a Hessian; got {m['activation']!r}")
    keeps = m["keep_prob"] if isinstance(m["keep_prob"], list) else [m["keep_prob"]]
    if any(k != 1.0 for k in keeps) or m.get("norm", "none") != "none":
        raise UsageError("sharpness needs a deterministic loss of the weights: model.keep_prob "
                         "must be 1.0 and model.norm none")
    if opt.get("name") != "sgd" or opt.get("momentum") or opt.get("weight_decay"):
        raise UsageError("sharpness is plain gradient descent: optimizer=sgd with momentum 0 and "
                         "weight_decay 0 (optimizer.lr is the step size eta)")
    if cfg.get("dtype") != "float64":
        raise UsageError(f"sharpness needs dtype=float64 (finite-difference Hessian-vector "
                         f"products are rounding noise in float32), got {cfg.get('dtype')!r}")
    if not (isinstance(cfg.get("max_steps"), int) and cfg["max_steps"] >= 1):
        raise UsageError(f"sharpness needs max_steps (GD steps) >= 1, got {cfg.get('max_steps')!r}")
    for key, low in (("every", 1), ("lanczos_iters", 2), ("top_k", 1)):
        if not (isinstance(c.get(key), int) and c[key] >= low):
            raise UsageError(f"sharpness.{key} must be an integer >= {low}, got {c.get(key)!r}")
    if c.get("loss") not in LOSSES:
        raise UsageError(f"sharpness.loss must be one of {', '.join(LOSSES)}, got {c.get('loss')!r}")


def eos_summary(steps, values, eta: float, losses) -> dict:
    """The edge-of-stability phase of a sharpness series (``values`` at ``steps``) and the
    per-step ``losses``.

    At init the sharpness may already exceed 2/eta: GD's first steps then throw the weights to
    a flatter region and it falls below 2/eta. Progressive sharpening brings it back up: it
    *crosses* 2/eta at the first estimate >= 2/eta after one below it. GD is then unstable
    along the top eigenvector, but that component starts tiny and grows like |1 - eta
    lambda|^t, so the sharpness overshoots for a while before the loss first rises; from that
    step on (``eos_from_step``) GD regulates its own curvature: the EoS phase, to the end.
    ``ratio_median`` = median of sharpness / (2/eta) over the estimates in it (None if it never
    started)."""
    ratio = np.asarray(values, dtype=float) * eta / 2
    steps, losses = np.asarray(steps), np.asarray(losses, dtype=float)
    below = np.flatnonzero(ratio < 1.0)
    above = np.flatnonzero(ratio >= 1.0)
    cross = above[above > below[0]] if len(below) else np.array([], dtype=int)
    out = {"two_over_eta": 2.0 / eta, "initial": float(values[0]),
           "min_after_init": float(np.min(values[1:])) if len(values) > 1 else None,
           "crossed_at_step": None, "eos_from_step": None, "ratio_median": None,
           "ratio_peak": None, "estimates": 0}
    if not len(cross):
        return out
    crossed = int(steps[cross[0]])
    out["crossed_at_step"] = crossed
    rises = np.flatnonzero(np.diff(losses[crossed:]) > 0)
    if not len(rises):
        return out
    start = crossed + int(rises[0])  # the loss rises from step start to start + 1
    phase = ratio[steps >= start]
    out["ratio_peak"] = float(ratio[cross[0]:].max())
    if len(phase):
        out.update(eos_from_step=start, ratio_median=float(np.median(phase)),
                   estimates=int(len(phase)))
        # non-monotone: the share of EoS-phase steps whose loss rose above the step before
        out["loss_rises_in_eos"] = float(np.mean(np.diff(losses[start:]) > 0))
    return out


def train_gd(model, loss_fn, X, Y, eta: float, steps: int, every: int, iters: int,
             rng: np.random.Generator, log=lambda *a: None, divergence: float = 100.0):
    """Full-batch GD, w <- w - eta * dL/dw, estimating lambda_max every ``every`` steps.

    ``log(step, key, value)`` receives ``loss`` every step (before the update) and ``sharpness``
    at steps 0, every, 2 every, ... and the last. Returns (losses, [(step, sharpness)], the
    step it diverged at or None)."""
    losses, sharp = [], []
    loss0 = None
    for t in range(steps + 1):
        if t % every == 0 or t == steps:
            lam = float(lanczos(make_hvp(model, loss_fn, X, Y), n_params(model), rng, iters)[0])
            sharp.append((t, lam))
            log(t, "sharpness", lam)
        loss, _ = flat_grad(model, loss_fn, X, Y)  # leaves each Parameter.grad filled
        losses.append(loss)
        log(t, "loss", loss)
        loss0 = loss if loss0 is None else loss0
        if not math.isfinite(loss) or loss > divergence * loss0:
            return losses, sharp, t
        if t == steps:
            break
        for p in model.parameters():
            p.data -= eta * p.grad
    return losses, sharp, None


def design(data):
    """Flattened images with the training pixels' mean removed (as Cohen et al. centre CIFAR),
    and their targets: one-hot rows for MSE, labels for cross-entropy."""
    mean = data.X_train.reshape(len(data.X_train), -1).mean(axis=0)
    flat = [x.reshape(len(x), -1) - mean for x in (data.X_train, data.X_val)]
    return flat, (data.y_train, data.y_val)


def run(cfg, rec, run_dir: Path) -> TrainResult:
    c, eta, steps = cfg["sharpness"], float(cfg["optimizer"]["lr"]), cfg["max_steps"]
    start = time.perf_counter()
    data = build_data(cfg)
    model = build_model_for(cfg, data)
    (X, X_val), (y, y_val) = design(data)
    mse = c["loss"] == "mse"
    loss_fn = MSE() if mse else SoftmaxCrossEntropy()
    target = (lambda labels: np.eye(10)[labels]) if mse else (lambda labels: labels)
    Y, Y_val = target(y), target(y_val)
    # the Lanczos start vectors: a stream of the seed of their own (changes nothing else)
    rng = np.random.default_rng(rngs(cfg["seed"])["batches"].integers(2**32))
    n = n_params(model)
    k = min(c["top_k"], n)

    def spectrum() -> np.ndarray:  # top-k Ritz values; 2k+lanczos_iters steps converge the top k
        return lanczos(make_hvp(model, loss_fn, X, Y), n, rng, c["lanczos_iters"] + 2 * k)[:k]

    def log(t, key, value):
        if key == "loss":
            rec.log(t, 0, "batch", "loss", value)
        else:
            rec.log(t, 0, "train", "sharpness", value)
            rec.log(t, 0, "train", "sharpness_x_eta_over_2", value * eta / 2)

    first = spectrum()
    losses, sharp, diverged = train_gd(model, loss_fn, X, Y, eta, steps, c["every"],
                                       c["lanczos_iters"], rng, log, cfg["divergence_factor"])
    last = spectrum() if diverged is None else np.full(k, np.nan)
    with open(run_dir / "spectrum.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["when", "rank", "eigenvalue"])
        w.writerows([("init", i + 1, repr(float(v))) for i, v in enumerate(first)]
                    + [("final", i + 1, repr(float(v))) for i, v in enumerate(last)])
    done = len(losses) - 1
    for split, xs, ys, labels in (("train", X, Y, y), ("val", X_val, Y_val, y_val)):
        out = model.forward(xs)
        rec.log(done, 0, split, "loss", loss_fn.forward(out, ys))
        rec.log(done, 0, split, "acc", float((out.argmax(axis=1) == labels).mean()))
    info = eos_summary([s for s, _ in sharp], [v for _, v in sharp], eta, losses)
    info.update(eta=eta, loss_final=float(losses[-1]), loss_initial=float(losses[0]),
                parameters=n, examples=len(X))
    seconds = time.perf_counter() - start
    return TrainResult(done, seconds, diverged,
                       None if diverged is None else "loss not finite or above the factor",
                       0, int(sum(p.data.nbytes for p in model.parameters())),
                       weights=model.state_dict(), extra={"sharpness": info})


def report_numbers(run) -> dict:
    info = run.summary.get("sharpness", {})
    return {"eta": info.get("eta"), "2/eta": info.get("two_over_eta"),
            "initial sharpness": info.get("initial"),
            "sharpness crossed 2/eta at step": info.get("crossed_at_step"),
            "EoS phase from step (first loss rise)": info.get("eos_from_step"),
            "median sharpness / (2/eta) in EoS": info.get("ratio_median"),
            "final loss": info.get("loss_final")}


# --- figures ----------------------------------------------------------------------------------

def _series(run, split, metric):
    s = run.series(split, metric)
    return s["step"].to_numpy(), s["value"].to_numpy()


def _draw(runs, colors, title, fmt, path: Path, table=None) -> Path:
    from dlx.plots.style import panels, save

    fig, (a_sharp, a_loss) = panels(title, 2, size=(13, 4.8))
    etas = sorted({r.config["optimizer"]["lr"] for r in runs})
    ymax = 0.0
    for eta in etas:
        color = colors[etas.index(eta) % len(colors)]
        members = [r for r in runs if r.config["optimizer"]["lr"] == eta]
        for i, r in enumerate(members):
            label = f"η = {eta:g} ({len(members)} seed{'s' * (len(members) > 1)})" if i == 0 \
                else None
            s, v = _series(r, "train", "sharpness")
            a_sharp.plot(s, v, color=color, lw=1.2, alpha=0.85, label=label)
            ymax = max(ymax, float(np.nanmax(v)) if len(v) else 0.0)
            s, v = _series(r, "batch", "loss")
            a_loss.plot(s, v, color=color, lw=0.9, alpha=0.85, label=label)
        note = ""
        if table is not None:
            row = table[table["eta"] == eta].iloc[0]
            if row["ratio_median_n"]:
                note = (f" (EoS median {row['ratio_median_mean']:.3f} ± "
                        f"{np.nan_to_num(row['ratio_median_sd']):.3f} × 2/η)")
        a_sharp.axhline(2 / eta, color=color, ls="--", lw=1.2, label=f"2/η = {2 / eta:.3g}{note}")
    a_sharp.set_ylim(0, 1.35 * max(ymax, 2 / min(etas)))
    a_sharp.set_xlabel("GD step")
    a_sharp.set_ylabel("sharpness λ_max of the loss Hessian")
    a_sharp.set_title("sharpness rises to 2/η (dashed) and hovers there", fontsize=10)
    a_loss.set_yscale("log")
    a_loss.set_xlabel("GD step")
    a_loss.set_ylabel("full-batch training loss (log scale)")
    a_loss.set_title("the loss keeps falling, not monotonically", fontsize=10)
    a_sharp.legend(fontsize=7.5, loc="upper right")  # above the EoS plateaus, right of init
    a_loss.legend(fontsize=8)
    return save(fig, path)


def _describe(cfg) -> str:
    m, d = cfg["model"], cfg["dataset"]
    widths = "-".join(str(h) for h in m["hidden"])
    return (f"{m['activation']} MLP 784-{widths}-10, {cfg['sharpness']['loss'].upper()}, "
            f"{d.get('subset')} {d['name'].upper()} images, full-batch GD")


COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def plot_run(run, out: Path, fmt: str) -> list[Path]:
    from dlx.plots.style import figure, save

    written = [_draw([run], COLORS, f"edge of stability: {_describe(run.config)}, "
                     f"seed {run.config['seed']}", fmt, out / f"sharpness.{fmt}")]
    path = run.path / "spectrum.csv"
    if path.is_file():
        import pandas as pd

        table = pd.read_csv(path)
        fig, ax = figure(f"top {table['rank'].max()} Hessian eigenvalues (Lanczos Ritz values) at "
                         f"init and after training, η = {run.config['optimizer']['lr']:g}\n"
                         f"{_describe(run.config)}, seed {run.config['seed']}",
                         "rank", "eigenvalue of the loss Hessian")
        for when, marker, label in (("init", "o", "at init"), ("final", "s", "after training")):
            t = table[table["when"] == when]
            ax.plot(t["rank"], t["eigenvalue"], marker + "-", label=label)
        ax.axhline(2 / run.config["optimizer"]["lr"], color="k", ls="--", lw=1, label="2/η")
        ax.legend()
        written.append(save(fig, out / f"spectrum.{fmt}"))
    return written


def by_eta(runs):
    """Per eta, over its seeds (mean, sd, n): the median sharpness / (2/eta) in the EoS phase,
    the step the sharpness crossed 2/eta, the step the phase began, the peak ratio, the final
    loss (a run without an EoS phase counts in n but not in the means)."""
    from dlx.plots.sweep import setting_stats

    def get(key):
        return lambda r: r.summary.get("sharpness", {}).get(key)

    stats = setting_stats(runs, lambda r: r.config["optimizer"]["lr"], {
        key: get(key) for key in ("ratio_median", "crossed_at_step", "eos_from_step",
                                  "ratio_peak", "loss_final")})
    return stats.rename(columns={"setting": "eta"}).sort_values("eta", ignore_index=True)


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    out.mkdir(parents=True, exist_ok=True)
    table = by_eta(runs)
    table.to_csv(out / "sharpness_by_eta.csv", index=False)
    return [_draw(runs, COLORS, f"edge of stability: {_describe(runs[0].config)}",
                  fmt, out / f"sharpness.{fmt}", table)]
