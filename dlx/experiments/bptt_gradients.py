"""bptt_gradients: vanishing and exploding gradients through time, and clipping.

Two parts per member (both fixed by the seed):

* **Probe at init.** For a vanilla tanh RNN and an LSTM of ``model.hidden`` units, W_hh (each
  H x H gate block of it) is set to rho Q, Q a random orthogonal matrix, so every eigenvalue has
  modulus rho, for each rho of ``bptt_gradients.rhos``. On ``steps`` random one-hot tokens, the
  loss is read at the last step only, L = sum_b w . h_T (w a random unit vector: every
  sequence's ||dL/dh_T|| = 1), and BPTT keeps dL/dh_t at every t (``keep_hidden_grads``). With
  D_t = diag(tanh'(z_t)),

      dL/dh_{t-1} = W_hh^T D_t dL/dh_t,   so   ||dL/dh_t|| <= rho^(T-t) ||dL/dh_T||

  (orthogonal Q: ||W_hh|| = rho; tanh' <= 1): log ||dL/dh_t|| falls at least log(rho) per step
  back for rho < 1; for rho > 1 the linearised product grows as rho^(T-t), but the state
  saturates (tanh' << 1) and holds the growth far below it. The LSTM's path back runs through
  c_{t-1} = ... + f_t c_t, one factor f ~ sigmoid(forget_bias) per step, not W_hh. ``slope`` is
  the least-squares slope of log ||dL/dh_t|| (geometric mean over the batch) against T - t.
* **Training.** The model of the config (a vanilla RNN, its W_hh rescaled to spectral radius
  ``train_rho`` at init) trains on copy memory, with or without ``clip_grad_norm``; the
  gradient norm before clipping is logged every step (``batch/grad_norm``) in both cases. A
  spike is a step whose batch loss exceeds ``spike_factor`` x the lowest batch loss before it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from dlx.errors import UsageError
from dlx.plots.style import panels, save

CELLS = {"rnn": "vanilla RNN (tanh)", "lstm": "LSTM"}
PROBE_FILE = "bptt_grads.csv"


def validate(cfg) -> None:
    """The experiment's own keys (``cfg`` holds the top-level keys, not the groups)."""
    if cfg["backend"] != "numpy":
        raise UsageError("experiment=bptt_gradients runs on backend=numpy (the probe reads the "
                         "NumPy layer's BPTT)")
    b = cfg.get("bptt_gradients") or {}
    rhos = b.get("rhos")
    if not isinstance(rhos, list) or not rhos or not all(
            isinstance(r, (int, float)) and not isinstance(r, bool) and r > 0 for r in rhos):
        raise UsageError(f"bptt_gradients.rhos must be a non-empty list of numbers > 0, got {rhos!r}")
    for key, low in (("steps", 2), ("batch", 1)):
        v = b.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise UsageError(f"bptt_gradients.{key} must be an integer >= {low}, got {v!r}")
    tr = b.get("train_rho")
    if tr is not None and (isinstance(tr, bool) or not isinstance(tr, (int, float)) or tr <= 0):
        raise UsageError(f"bptt_gradients.train_rho must be a number > 0 or null, got {tr!r}")
    f = b.get("spike_factor")
    if isinstance(f, bool) or not isinstance(f, (int, float)) or not f > 1:
        raise UsageError(f"bptt_gradients.spike_factor must be a number > 1, got {f!r}")


def orthogonal(rng: np.random.Generator, n: int) -> np.ndarray:
    """A Haar-random orthogonal (n, n) matrix: Q of QR with R's diagonal made positive."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def set_radius(cell, rho: float, rng: np.random.Generator) -> None:
    """Every H x H gate block of ``cell.weight_hh`` <- rho Q (Q orthogonal, one per block)."""
    H = cell.hidden_size
    for g in range(cell.gates):
        cell.weight_hh.data[g * H:(g + 1) * H] = rho * orthogonal(rng, H)


def hidden_grad_norms(cell: str, rho: float, *, hidden: int, vocab: int, steps: int,
                      batch: int, forget_bias: float, rng: np.random.Generator) -> np.ndarray:
    """||dL/dh_t|| for t = 0 .. T (T = steps), geometric mean over ``batch`` sequences, of a
    one-layer ``cell`` (rnn: tanh) at torch's init with W_hh = rho Q, in float64, for the loss
    L = sum_b w . h_T (only the last step; ||dL/dh_T|| = 1 per sequence). Returns (T+1,)."""
    from dlx.nn.recurrent import LSTM, RNN

    layer = (RNN if cell == "rnn" else LSTM)(vocab, hidden, dtype=np.float64, rng=rng)
    set_radius(layer.cells[0], rho, rng)
    if cell == "lstm":  # as model=rnn starts it: b_if = forget_bias, b_hf = 0
        layer.cells[0].bias_ih.data[hidden:2 * hidden] = forget_bias
        layer.cells[0].bias_hh.data[hidden:2 * hidden] = 0.0
    x = np.eye(vocab)[rng.integers(0, vocab, (batch, steps))]  # (B, T, V) one-hot
    layer.forward(x)
    w = rng.standard_normal(hidden)
    dout = np.zeros((batch, steps, hidden))
    dout[:, -1] = w / np.linalg.norm(w)
    layer.keep_hidden_grads = True
    layer.backward(dout)
    norms = np.linalg.norm(layer.hidden_grads[0], axis=2)  # (B, T+1)
    return np.exp(np.log(norms).mean(axis=0))


def slope(norms: np.ndarray) -> float:
    """Least-squares slope of log ||dL/dh_t|| against the distance T - t (per step back)."""
    lag = len(norms) - 1 - np.arange(len(norms))
    return float(np.polyfit(lag, np.log(norms), 1)[0])


def probe(cfg, vocab: int) -> pd.DataFrame:
    """Rows (cell, rho, t, grad_norm) for both cells and every rho, from the seed alone."""
    b, m = cfg["bptt_gradients"], cfg["model"]
    rows = []
    for j, cell in enumerate(CELLS):
        for k, rho in enumerate(b["rhos"]):
            rng = np.random.default_rng([cfg["seed"], 15, j, k])
            g = hidden_grad_norms(cell, float(rho), hidden=m["hidden"], vocab=vocab,
                                  steps=b["steps"], batch=b["batch"],
                                  forget_bias=float(m.get("forget_bias", 0.0)), rng=rng)
            rows += [(cell, float(rho), t, v) for t, v in enumerate(g)]
    return pd.DataFrame(rows, columns=["cell", "rho", "t", "grad_norm"])


def slopes(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """cell -> str(rho) -> slope of log ||dL/dh_t|| per step back."""
    return {cell: {f"{rho:g}": slope(g.sort_values("t")["grad_norm"].to_numpy())
                   for rho, g in table[table["cell"] == cell].groupby("rho")}
            for cell in CELLS}


def spikes(losses, factor: float) -> int:
    """Steps whose loss exceeds ``factor`` x the lowest loss before them (non-finite counts)."""
    low, count = math.inf, 0
    for v in losses:
        if not math.isfinite(v) or v > factor * low:
            count += 1
        if math.isfinite(v):
            low = min(low, v)
    return count


def run(cfg, rec, run_dir: Path):
    from dlx.assemble import build_data
    from dlx.optim.clip import grad_norm
    from dlx.training import NumpyBackend, train

    if cfg["model"]["name"] != "rnn" or cfg["dataset"]["name"] != "copy_memory":
        raise UsageError("experiment=bptt_gradients trains model=rnn on dataset=copy_memory, got "
                         f"model={cfg['model']['name']} dataset={cfg['dataset']['name']}")
    b = cfg["bptt_gradients"]
    data = build_data(cfg)
    table = probe(cfg, data.spec.vocab)
    table.to_csv(run_dir / PROBE_FILE, index=False, float_format="%.10g")

    class Backend(NumpyBackend):
        def update(self, lr: float) -> None:
            super().update(lr)
            if self.grad_norm is None:  # clipping off: the loop logs the norm only if set
                self.grad_norm = grad_norm(self.params)  # grads are untouched by the step

    backend = Backend(cfg, data)
    if b["train_rho"] is not None:
        for cell in backend.model.rnn.cells:
            set_radius(cell, float(b["train_rho"]), np.random.default_rng([cfg["seed"], 15, 99]))
    result = train(cfg, rec, cfg["progress"], run_dir, backend=backend)
    losses = [v for _, v in rec.series("batch/loss")]
    norms = [v for _, v in rec.series("batch/grad_norm")]
    result.extra["bptt_gradients"] = {
        "slopes": slopes(table), "steps": b["steps"], "hidden": cfg["model"]["hidden"],
        "forget_bias": float(cfg["model"].get("forget_bias", 0.0)),
        "cell": cfg["model"]["cell"], "train_rho": b["train_rho"],
        "clip_grad_norm": cfg.get("clip_grad_norm"), "spikes": spikes(losses, b["spike_factor"]),
        "spike_factor": b["spike_factor"], "final_loss": losses[-1] if losses else None,
        "max_grad_norm": max(norms) if norms else None}
    return result


def _info(run) -> dict:
    return run.summary.get("bptt_gradients") or {}


def report_numbers(run) -> dict:
    info = _info(run)
    out = {f"slope of log ||dL/dh_t|| per step back, {CELLS[c]}, rho {r}": s
           for c, per in (info.get("slopes") or {}).items() for r, s in per.items()}
    out["loss spikes in training"] = info.get("spikes")
    return out


def _probe_axes(axes, tables: list[pd.DataFrame], rhos) -> None:
    """One panel per cell: ||dL/dh_t|| against t, geometric mean over the tables (seeds) with a
    x/÷ geometric-sd band, one line per rho."""
    for ax, cell in zip(axes, CELLS):
        for k, rho in enumerate(rhos):
            logs = np.stack([np.log(t[(t["cell"] == cell) & (t["rho"] == rho)]
                                    .sort_values("t")["grad_norm"].to_numpy()) for t in tables])
            mean, sd = logs.mean(axis=0), logs.std(axis=0, ddof=1) if len(logs) > 1 else 0 * logs[0]
            ts = np.arange(logs.shape[1])
            ax.plot(ts, np.exp(mean), color=f"C{k}", label=f"ρ(W_hh) = {rho:g}")
            ax.fill_between(ts, np.exp(mean - sd), np.exp(mean + sd), color=f"C{k}", alpha=0.2,
                            lw=0)
        ax.set_yscale("log")
        ax.set_xlabel(f"time step t (loss at the last step, T = {len(ts) - 1})")
        ax.set_ylabel("‖∂L/∂h_t‖ (‖∂L/∂h_T‖ = 1)")
        ax.set_title(f"{CELLS[cell]} at init" + (", every gate block of W_hh at ρ" if cell == "lstm"
                                                  else ", W_hh = ρ · orthogonal"), fontsize=10)
        ax.legend(fontsize=8)


def _training_axes(ax_loss, ax_norm, groups: dict[str, list], note: str) -> None:
    """Batch loss and pre-clip gradient norm over training, one thin line per member, colour by
    clipping setting."""
    for k, (label, runs) in enumerate(groups.items()):
        for i, r in enumerate(runs):
            for ax, metric in ((ax_loss, "loss"), (ax_norm, "grad_norm")):
                s = r.series("batch", metric)
                ax.plot(s["step"], s["value"], color=f"C{k}", lw=0.7, alpha=0.8,
                        label=label if i == 0 else None)
    clips = sorted({_info(r)["clip_grad_norm"] for runs in groups.values() for r in runs
                    if _info(r).get("clip_grad_norm") is not None})
    for c in clips:  # above it, the step taken is lr x c / norm of the gradient's
        ax_norm.axhline(c, color="k", ls="--", lw=0.9, label=f"clipping threshold {c:g}")
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("mini-batch loss (nats per recalled symbol)")
    ax_loss.set_title(f"training loss{note}", fontsize=10)
    ax_norm.set_yscale("log")
    ax_norm.set_ylabel("global gradient norm before clipping")
    ax_norm.set_title("gradient norm ‖∇L‖ (pre-clip)", fontsize=10)
    for ax in (ax_loss, ax_norm):
        ax.set_xlabel("training step (updates)")
        ax.legend(fontsize=8)


def _clip_label(run) -> str:
    c = _info(run).get("clip_grad_norm")
    lr = (run.config.get("optimizer") or {}).get("lr")  # each arm's own (tuned) rate decides
    rate = f", lr {lr:g}" if isinstance(lr, (int, float)) else ""
    return ("no clipping" if c is None else f"clip_grad_norm = {c:g}") + rate


def _read_probe(run) -> pd.DataFrame:
    return pd.read_csv(run.path / PROBE_FILE)


def plot_run(run, out: Path, fmt: str) -> list[Path]:
    info = _info(run)
    if not info:
        return []
    table = _read_probe(run)
    fig, axes = panels(f"BPTT gradients, seed {run.config['seed']}: hidden {info['hidden']}, "
                       f"LSTM forget bias {info['forget_bias']:g}; training: {_clip_label(run)}",
                       4, size=(20, 4.6))
    _probe_axes(axes[:2], [table], sorted(table["rho"].unique()))
    _training_axes(axes[2], axes[3], {_clip_label(run): [run]}, " of this run")
    return [save(fig, out / f"bptt_gradients.{fmt}")]


def sweep_table(runs) -> pd.DataFrame:
    """Per (cell, rho): the slope's mean, sd, n over seeds (one member per seed), and per
    clipping setting the spike count's mean, sd, n."""
    by_seed = {}
    for r in runs:
        if _info(r):
            by_seed.setdefault(r.config["seed"], r)
    rows = []
    for cell in CELLS:
        rhos = sorted({float(k) for r in by_seed.values() for k in _info(r)["slopes"][cell]})
        for rho in rhos:
            v = np.array([_info(r)["slopes"][cell][f"{rho:g}"] for r in by_seed.values()])
            rows.append({"what": f"slope {cell}", "setting": rho, "mean": v.mean(),
                         "sd": v.std(ddof=1) if len(v) > 1 else np.nan, "n": len(v)})
    groups: dict[str, list] = {}
    for r in runs:
        if _info(r):
            groups.setdefault(_clip_label(r), []).append(_info(r)["spikes"])
    for label, v in groups.items():
        v = np.array(v, dtype=float)
        rows.append({"what": "spikes", "setting": label, "mean": v.mean(),
                     "sd": v.std(ddof=1) if len(v) > 1 else np.nan, "n": len(v)})
    return pd.DataFrame(rows)


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    runs = [r for r in runs if _info(r)]
    if not runs:
        raise ValueError("no member has recorded its gradients (bptt_gradients in summary.json)")
    by_seed: dict = {}
    for r in runs:
        by_seed.setdefault(r.config["seed"], r)
    tables = [_read_probe(r) for r in by_seed.values()]
    info = _info(runs[0])
    fig, axes = panels(f"BPTT: ‖∂L/∂h_t‖ at init (geometric mean ×/÷ sd over {len(tables)} "
                       f"seeds, hidden {info['hidden']}, LSTM forget bias {info['forget_bias']:g})",
                       2, size=(12.5, 4.8))
    _probe_axes(axes, tables, sorted(tables[0]["rho"].unique()))
    written = [save(fig, out / f"bptt_gradients_probe.{fmt}")]
    groups: dict[str, list] = {}
    for r in sorted(runs, key=lambda r: _info(r).get("clip_grad_norm") is not None):
        groups.setdefault(_clip_label(r), []).append(r)
    counts = {k: [_info(r)["spikes"] for r in v] for k, v in groups.items()}
    note = "; ".join(f"{k}: {np.mean(v):.1f} ± {np.std(v, ddof=1) if len(v) > 1 else 0:.1f} "
                     f"spikes (n = {len(v)})" for k, v in counts.items())
    fig, axes = panels(f"vanilla RNN on copy memory, W_hh at ρ = {info['train_rho']}: {note}", 2,
                       size=(12.5, 4.8))
    _training_axes(axes[0], axes[1], groups, " (one line per seed)")
    written.append(save(fig, out / f"bptt_gradients_training.{fmt}"))
    path = out / "bptt_gradients.csv"
    sweep_table(runs).to_csv(path, index=False)
    return written + [path]
