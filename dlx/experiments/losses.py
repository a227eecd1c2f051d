"""losses: why classification is trained on cross-entropy, what entropy, cross-entropy and KL
are, and what label smoothing does — one run, four parts, all in float64.

1. The gradient at a sigmoid output p = s(z) with target y. Cross-entropy
   L = -y log p - (1 - y) log(1 - p) gives dL/dz = p - y: bounded away from 0 while the output
   is wrong. Squared error L = (p - y)^2 / 2 gives dL/dz = (p - y) p (1 - p): the sigmoid's own
   derivative p (1 - p) -> 0 at a confident output, right or wrong, so a confidently wrong
   model barely moves (gradients.csv, against z).
2. Logistic regression trained by full-batch GD from a confidently wrong start (every training
   logit at -wrong_logit times its right sign), with each loss, over seeds (training.csv); with
   the learner's loss (``loss=my_bce``: forward((N, 1) logits, y) -> mean, backward() -> dL/dz)
   a third arm, "yours", from the same start: a correct BCE retraces cross-entropy's curve.
3. For random distributions p, q: H(p) = -sum p log p, H(p, q) = -sum p log q and
   KL(p || q) = sum p log(p / q); the identity H(p, q) = H(p) + KL(p || q), KL >= 0 and
   KL(p || p) = 0, checked numerically (summary.json), and H(p, q_t), KL along
   q_t = (1 - t) uniform + t p (divergence.csv).
4. Softmax regression with label smoothing eps against none: the logit gap (largest minus
   the rest's mean) and the expected calibration error on the validation split over training
   (smoothing.csv). With eps > 0 the optimum is a finite gap, log((1 - eps + eps/C) / (eps/C));
   without, the loss keeps rewarding larger logits on separable data.
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

# the groups this experiment does not take from the config (see dlx.experiments)
OWN_PIECES = dict.fromkeys(
    ("model", "optimizer", "schedule", "init", "regularizer"),
    "its own logistic regression, trained by full-batch GD with "
    "cross-entropy and with squared error (and your loss, with loss=yours), and distributions "
    "it draws")


GENERIC_RUN_PLOTS = False  # no training curves of its own: its figures are all it has
GRADIENTS, TRAINING, DIVERGENCE, SMOOTHING = ("gradients.csv", "training.csv", "divergence.csv",
                                              "smoothing.csv")


def validate(cfg) -> None:
    c = cfg.get("losses") or {}
    for key in ("steps", "smoothing_classes", "smoothing_steps", "bins"):
        if isinstance(c.get(key), bool) or not isinstance(c.get(key), int) or c[key] < 1:
            raise UsageError(f"losses.{key} must be an integer >= 1, got {c.get(key)!r}")
    for key in ("wrong_logit", "lr", "smoothing_lr", "smoothing_spread"):
        v = c.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise UsageError(f"losses.{key} must be a number > 0, got {v!r}")
    eps = c.get("smoothing")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1:
        raise UsageError(f"losses.smoothing must be in (0, 1), got {eps!r}")
    seeds = c.get("seeds")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise UsageError(f"losses.seeds must be a list of integers, got {seeds!r}")
    if c["smoothing_classes"] < 2:
        raise UsageError("losses.smoothing_classes must be >= 2")


# --- 1. the gradient at a sigmoid output ------------------------------------------------------

def sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0, e) / (1.0 + e)


def logit_gradients(z: np.ndarray, y: float) -> tuple[np.ndarray, np.ndarray]:
    """dL/dz of cross-entropy and of squared error (p - y)^2 / 2 at p = sigmoid(z)."""
    p = sigmoid(z)
    return p - y, (p - y) * p * (1.0 - p)


# --- 2. logistic regression with each loss ------------------------------------------------------

def wrong_start(X: np.ndarray, y: np.ndarray, logit: float) -> tuple[np.ndarray, float]:
    """Weights (D,), bias whose logits are confidently wrong: the least-squares fit of
    z_i = -logit * (2 y_i - 1)."""
    A = np.hstack([X, np.ones((len(X), 1))])
    coef = np.linalg.lstsq(A, -logit * (2.0 * y - 1.0), rcond=None)[0]
    return coef[:-1], float(coef[-1])


def train_logreg(X, y, w, b, loss, lr: float, steps: int):
    """Full-batch GD on sigmoid(X w + b) with ``loss`` ('ce', 'mse' for (p - y)^2 / 2 averaged,
    or the learner's loss object, called with (N, 1) logits and the integer labels):
    (step, cross-entropy, accuracy, mean |dL/dz|) at every step."""
    from dlx.nn import BCEWithLogits
    from dlx.nn.activations import Sigmoid
    from dlx.nn.losses import MSE

    w, n, rows = w.copy(), len(X), []
    ce = BCEWithLogits()
    for step in range(steps + 1):
        z = X @ w + b  # (N,)
        ce_value = ce.forward(z[:, None], y)
        if not isinstance(loss, str):  # the learner's: dL/dz as its backward gives it
            loss.forward(z[:, None], y.astype(np.int64))
            dz = np.asarray(loss.backward(), dtype=np.float64)[:, 0]
        elif loss == "ce":
            dz = ce.backward()[:, 0]
        else:  # MSE on the probability, through the sigmoid's backward: the chain rule, by modules
            act, mse = Sigmoid(), MSE()
            mse.forward(act.forward(z), y)
            dz = act.backward(mse.backward()) / 2.0  # MSE is mean (p - y)^2: halve it
        rows.append((step, ce_value, float(np.mean((z > 0) == (y == 1))),
                     float(np.mean(np.abs(dz)) * n)))
        if step < steps:
            w -= lr * (X.T @ dz)
            b -= lr * float(dz.sum())
    return rows


def steps_to(rows, acc: float) -> int | None:
    return next((r[0] for r in rows if r[2] >= acc), None)


# --- 3. entropy, cross-entropy, KL --------------------------------------------------------------

def entropy(p):
    return float(-np.sum(p * np.log(p)))


def cross_entropy(p, q):
    return float(-np.sum(p * np.log(q)))


def kl(p, q):
    return float(np.sum(p * np.log(p / q)))


def identities(rng, n: int = 1000, k: int = 10) -> dict:
    """Worst cases over n random pairs (Dirichlet(1), k outcomes)."""
    gaps, kls, self_kl = [], [], []
    for _ in range(n):
        p, q = rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k))
        gaps.append(abs(cross_entropy(p, q) - entropy(p) - kl(p, q)))
        kls.append(kl(p, q))
        self_kl.append(abs(kl(p, p)))
    return {"pairs": n, "outcomes": k, "max_abs_H(p,q)-H(p)-KL": max(gaps),
            "min_KL": min(kls), "max_abs_KL(p,p)": max(self_kl)}


# --- 4. label smoothing -------------------------------------------------------------------------

def logit_gap(z: np.ndarray) -> float:
    """Mean over examples of the largest logit minus the mean of the others."""
    top = z.max(axis=1)
    rest = (z.sum(axis=1) - top) / (z.shape[1] - 1)
    return float(np.mean(top - rest))


def calibration_error(z: np.ndarray, y: np.ndarray, bins: int) -> float:
    """Expected calibration error: sum over confidence bins of |accuracy - mean confidence|
    weighted by the bin's share of the examples (Guo et al. 2017)."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    conf, right = p.max(axis=1), p.argmax(axis=1) == y
    which = np.minimum((conf * bins).astype(int), bins - 1)
    return float(sum(abs(right[which == b].mean() - conf[which == b].mean()) * np.mean(which == b)
                     for b in range(bins) if np.any(which == b)))


def train_softmax(data, eps: float, lr: float, steps: int, bins: int, rng):
    """Full-batch GD of softmax regression with SoftmaxCrossEntropy(label_smoothing=eps):
    rows (step, logit gap on validation, ECE on validation, validation accuracy)."""
    from dlx.nn import SoftmaxCrossEntropy

    X, y, Xv, yv = data.X_train, data.y_train, data.X_val, data.y_val
    c = int(y.max()) + 1
    W, b = rng.normal(0, 0.01, (X.shape[1], c)), np.zeros(c)
    loss_fn, rows = SoftmaxCrossEntropy(label_smoothing=eps), []
    for step in range(steps + 1):
        if step % 10 == 0 or step == steps:
            zv = Xv @ W + b
            rows.append((step, logit_gap(zv), calibration_error(zv, yv, bins),
                         float(np.mean(zv.argmax(axis=1) == yv))))
        loss_fn.forward(X @ W + b, y)
        dz = loss_fn.backward()  # (N, C)
        W -= lr * (X.T @ dz)
        b -= lr * dz.sum(axis=0)
    return rows


def optimum_gap(eps: float, c: int) -> float:
    """The logit gap that minimizes the smoothed loss: log((1 - eps + eps/C) / (eps/C))."""
    return math.log((1 - eps + eps / c) / (eps / c))


def _write(path: Path, header, rows) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def run(cfg, rec, run_dir: Path):
    from dlx import learner
    from dlx.assemble import build_dataset, build_loss, rngs
    from dlx.training.loop import TrainResult

    c, start = cfg["losses"], time.perf_counter()
    z = np.linspace(-12, 12, 481)
    g_ce, g_mse = logit_gradients(z, 1.0)
    _write(run_dir / GRADIENTS, ["z", "p", "ce", "mse"],
           [(float(a), float(p), float(b), float(m)) for a, p, b, m in zip(z, sigmoid(z), g_ce, g_mse)])
    at = float(-c["wrong_logit"])
    info = {"gradient_at_wrong_logit": {"z": at, "ce": float(logit_gradients(np.array(at), 1.0)[0]),
                                        "mse": float(logit_gradients(np.array(at), 1.0)[1])}}

    arms = {"ce": "ce", "mse": "mse"}
    if learner.is_learner(cfg.get("loss")):  # the learner's loss beside the two
        arms["yours"] = build_loss(cfg["loss"], None)
        info["yours"] = learner.label_target(cfg["loss"][learner.TARGET])
    training, reach = [], {arm: [] for arm in arms}
    node = {**cfg["dataset"], "n_classes": 2}
    for seed in c["seeds"]:
        data = build_dataset(node, rngs(seed)["data"], np.float64)
        w, b = wrong_start(data.X_train, data.y_train, c["wrong_logit"])
        for loss, fn in arms.items():
            rows = train_logreg(data.X_train, data.y_train.astype(np.float64), w, b, fn,
                                c["lr"], c["steps"])
            training += [(loss, seed, *r) for r in rows]
            reach[loss].append(steps_to(rows, 0.9))
            rec.log(seed, 0, f"logreg_{loss}", "final_acc", rows[-1][2])
            rec.log(seed, 0, f"logreg_{loss}", "final_ce", rows[-1][1])
    _write(run_dir / TRAINING, ["loss", "seed", "step", "ce", "acc", "mean_abs_dz"], training)
    info["steps_to_90pct"] = reach

    info["identities"] = identities(rngs(cfg["seed"])["data"])
    p = rngs(cfg["seed"] + 1)["data"].dirichlet(np.ones(10))
    _write(run_dir / DIVERGENCE, ["t", "H_p", "H_pq", "KL"],
           [(float(t), entropy(p), cross_entropy(p, q), kl(p, q)) for t in np.linspace(0, 1, 51)
            for q in [(1 - t) * np.full(10, 0.1) + t * p]])

    smoothing, ends = [], {}
    k, eps = c["smoothing_classes"], float(c["smoothing"])
    node = {**cfg["dataset"], "n_classes": k, "spread": c["smoothing_spread"]}
    for seed in c["seeds"]:
        data = build_dataset(node, rngs(seed)["data"], np.float64)
        for e in (0.0, eps):
            rows = train_softmax(data, e, c["smoothing_lr"], c["smoothing_steps"], c["bins"],
                                 rngs(seed)["init"])
            smoothing += [(e, seed, *r) for r in rows]
            ends.setdefault(str(e), []).append({"gap": rows[-1][1], "ece": rows[-1][2],
                                                "val_acc": rows[-1][3]})
            rec.log(seed, 0, f"smoothing_{e:g}", "logit_gap", rows[-1][1])
            rec.log(seed, 0, f"smoothing_{e:g}", "ece", rows[-1][2])
            rec.log(seed, 0, f"smoothing_{e:g}", "val_acc", rows[-1][3])
    _write(run_dir / SMOOTHING, ["eps", "seed", "step", "logit_gap", "ece", "val_acc"], smoothing)
    info["smoothing"] = {"eps": eps, "classes": k, "optimum_gap": optimum_gap(eps, k), "end": ends}
    steps = len(c["seeds"]) * (len(arms) * c["steps"] + 2 * c["smoothing_steps"])
    return TrainResult(steps, time.perf_counter() - start, None, None, 0, 0,
                       extra={"losses": info})


# --- reading back -------------------------------------------------------------------------------

def _read(run, name):
    import pandas as pd

    return pd.read_csv(run.path / name)


def _mean_sd(values) -> tuple[float, float]:
    v = np.array([np.nan if x is None else x for x in values], float)
    return float(np.nanmean(v)), float(np.nanstd(v, ddof=1)) if np.isfinite(v).sum() > 1 else 0.0


def report_numbers(run) -> dict:
    info = run.summary.get("losses") or {}
    if not info:
        return {}
    out = {f"steps to 90% accuracy, {k} (mean over seeds)": _mean_sd(v)[0]
           for k, v in info["steps_to_90pct"].items()}
    for e, ends in info["smoothing"]["end"].items():
        out[f"logit gap at the end, eps {e}"] = _mean_sd([x["gap"] for x in ends])[0]
        out[f"calibration error at the end, eps {e}"] = _mean_sd([x["ece"] for x in ends])[0]
    out["max |H(p,q) - H(p) - KL(p||q)|"] = info["identities"]["max_abs_H(p,q)-H(p)-KL"]
    return out


def plot_run(run, out: Path, fmt: str) -> list[Path]:
    info = run.summary.get("losses") or {}
    c = run.config["losses"]
    written = []
    g = _read(run, GRADIENTS)
    t = _read(run, TRAINING)
    fig, axes = panels("cross-entropy vs squared error on a sigmoid output (target y = 1)", 3,
                       size=(17, 4.6))
    axes[0].plot(g["z"], np.abs(g["ce"]), label="cross-entropy: |p − y|")
    axes[0].plot(g["z"], np.abs(g["mse"]), label="squared error ½(p − y)²: |(p − y) p (1 − p)|")
    axes[0].axvline(-c["wrong_logit"], color="k", lw=0.7, ls=":", label=f"the start, z = "
                    f"{-c['wrong_logit']:g}")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("logit z (y = 1: z < 0 is wrong)")
    axes[0].set_ylabel("|∂L/∂z| (log scale)")
    axes[0].set_title("the gradient at the logit", fontsize=10)
    n = t["seed"].nunique()
    for ax, col, label in ((axes[1], "ce", "training cross-entropy (nats, log scale)"),
                           (axes[2], "acc", "training accuracy (fraction correct)")):
        for i, loss in enumerate(a for a in ("ce", "mse", "yours") if (t["loss"] == a).any()):
            series = [s[["step", col]].rename(columns={col: "value"})
                      for _, s in t[t["loss"] == loss].groupby("seed")]
            draw_band(ax, curve_stats(series), color=f"C{i}", log=col == "ce",
                      label={"ce": "trained on cross-entropy", "mse": "trained on squared error",
                             "yours": f"trained on your loss ({info.get('yours')})"}[loss],
                      **({"ls": "--"} if loss == "yours" else {}))
        ax.set_xlabel("full-batch GD step")
        ax.set_ylabel(label)
        ax.set_title(f"logistic regression from logits at −{c['wrong_logit']:g} × the right sign "
                     f"(mean ± sd, {n} seeds)", fontsize=9)
        ax.legend(fontsize=8)
    axes[0].legend(fontsize=8)
    axes[1].set_yscale("log")
    axes[2].set_ylim(-0.02, 1.02)
    written.append(save(fig, out / f"ce_vs_mse.{fmt}"))

    d = _read(run, DIVERGENCE)
    s = _read(run, SMOOTHING)
    sm = info.get("smoothing", {})
    fig, axes = panels("entropy, cross-entropy and KL; label smoothing on softmax regression", 3,
                       size=(17, 4.6))
    axes[0].plot(d["t"], d["H_pq"], label="cross-entropy H(p, q_t)")
    axes[0].plot(d["t"], d["H_p"], "--", label="entropy H(p)")
    axes[0].plot(d["t"], d["KL"], label="KL(p ‖ q_t) = H(p, q_t) − H(p)")
    axes[0].set_xlabel("t, with q_t = (1 − t) uniform + t p (10 outcomes)")
    axes[0].set_ylabel("nats")
    ident = info.get("identities", {})
    axes[0].set_title(f"max |H(p,q) − H(p) − KL| = {ident.get('max_abs_H(p,q)-H(p)-KL', 0):.1e} "
                      f"over {ident.get('pairs')} pairs", fontsize=9)
    axes[0].legend(fontsize=8)
    for i, (e, rows) in enumerate(s.groupby("eps")):
        label = "no smoothing" if e == 0 else f"label smoothing ε = {e:g}"
        for ax, col in ((axes[1], "logit_gap"), (axes[2], "ece")):
            series = [r[["step", col]].rename(columns={col: "value"}) for _, r in rows.groupby("seed")]
            draw_band(ax, curve_stats(series), color=f"C{i}", label=label)
    if sm:
        axes[1].axhline(sm["optimum_gap"], color="C1", ls=":", lw=1,
                        label=f"smoothed optimum log((1−ε+ε/C)/(ε/C)) = {sm['optimum_gap']:.2f}")
    axes[1].set_ylabel("logit gap: top − mean of the others (validation)")
    axes[2].set_ylabel("expected calibration error (validation, 10 bins)")
    n = s["seed"].nunique()
    axes[1].set_title(f"{sm.get('classes')}-class blobs, softmax regression (mean ± sd, {n} "
                      "seeds): smoothing bounds the logits", fontsize=9)
    axes[2].set_title("calibration: plain CE on a linear model is already calibrated;\n"
                      "smoothing caps the confidence below the accuracy (under-confident)",
                      fontsize=9)
    for ax in axes[1:]:
        ax.set_xlabel("full-batch GD step")
        ax.legend(fontsize=8)
    written.append(save(fig, out / f"entropy_and_smoothing.{fmt}"))
    return written
