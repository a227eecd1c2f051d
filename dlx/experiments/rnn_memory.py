"""rnn_memory: vanilla RNN vs LSTM vs GRU on copy memory (dlx.data.memory) as the delay T
grows — the fraction of recalled symbols right (chance 1/n_symbols) against T, each point a
mean ± sd over seeds, and the recall curve during training.

A member trains as usual (``max_steps`` updates, the loop's per-epoch loss and exact-sequence
accuracy) and, every ``rnn_memory.eval_every`` steps and at the end, logs ``val/recall``: the
fraction of the validation set's recalled symbols predicted right. The loop's ``val/acc`` asks
for all S symbols of a sequence at once (chance (1/n)^S); recall scores them one by one, the
number Hochreiter & Schmidhuber and Arjovsky et al. compare.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import NullLocator

from dlx.errors import UsageError
from dlx.plots.style import panels, save
from dlx.plots.sweep import seeds_note, setting_stats

CELLS = {"rnn": "vanilla RNN (tanh)", "lstm": "LSTM", "gru": "GRU"}


def validate(cfg) -> None:
    """The experiment's own keys (``cfg`` holds the top-level keys, not the groups)."""
    if cfg["backend"] != "numpy":
        raise UsageError("experiment=rnn_memory runs on backend=numpy (it reads the recall off "
                         "the NumPy model; plain runs of model=rnn take backend=torch)")
    every = cfg.get("rnn_memory", {}).get("eval_every")
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise UsageError(f"rnn_memory.eval_every must be an integer >= 1, got {every!r}")


def recall(model, X: np.ndarray, Y: np.ndarray, chunk: int = 256) -> float:
    """Fraction of the recalled symbols (targets not IGNORE) predicted right, in eval mode."""
    from dlx.data.memory import recall_accuracy

    model.eval()
    right = total = 0.0
    for start in range(0, len(X), chunk):
        y = Y[start:start + chunk]
        n = float((y != -100).sum())
        right += recall_accuracy(model.forward(X[start:start + chunk]), y) * n
        total += n
    model.train()
    return right / total


def run(cfg, rec, run_dir: Path):
    from dlx.assemble import build_data
    from dlx.training import NumpyBackend, train

    d = cfg["dataset"]
    if d["name"] != "copy_memory" or cfg["model"]["name"] != "rnn":  # the groups: not in validate's
        raise UsageError("experiment=rnn_memory trains model=rnn on dataset=copy_memory, got "
                         f"model={cfg['model']['name']} dataset={d['name']}")
    data = build_data(cfg)
    backend = NumpyBackend(cfg, data)
    every = cfg["rnn_memory"]["eval_every"]
    per_epoch = -(-len(data.X_train) // min(cfg["batch_size"] or len(data.X_train),
                                            len(data.X_train)))

    def log_recall(step: int, backend) -> None:
        if step % every == 0:
            rec.log(step, -(-step // per_epoch), "val", "recall",
                    recall(backend.model, data.X_val, data.y_val))

    result = train(cfg, rec, cfg["progress"], run_dir, hooks=[log_recall], backend=backend)
    final = recall(backend.model, data.X_val, data.y_val)
    # hooks run before an update, so the last step's model is measured here (never twice)
    rec.log(result.steps, -(-result.steps // per_epoch), "val", "recall", final)
    result.extra["rnn_memory"] = {
        "cell": cfg["model"]["cell"], "delay": d["delay"], "length": d["length"],
        "n_symbols": d["n_symbols"], "chance": 1.0 / d["n_symbols"], "val_recall": final,
        "train_recall": recall(backend.model, data.X_train, data.y_train)}
    return result


def report_numbers(run) -> dict:
    info = run.summary.get("rnn_memory") or {}
    return {"recall of the copied symbols (validation)": info.get("val_recall"),
            "chance": info.get("chance")}


def _info(r) -> dict:
    return r.summary.get("rnn_memory") or {}


def table(runs) -> pd.DataFrame:
    """Per (cell, delay), cells in CELLS' order and delays ascending: final validation recall,
    mean, sd and n over seeds."""
    runs = [r for r in runs if _info(r)]
    stats = setting_stats(runs, lambda r: (_info(r)["cell"], _info(r)["delay"]),
                          {"recall": lambda r: _info(r)["val_recall"]})
    stats.insert(0, "cell", [s[0] for s in stats["setting"]])
    stats.insert(1, "delay", [int(s[1]) for s in stats["setting"]])
    order = {c: i for i, c in enumerate(CELLS)}
    return (stats.drop(columns="setting").assign(o=stats["cell"].map(order))
            .sort_values(["o", "delay"], ignore_index=True).drop(columns="o"))


def _curves(runs, cell: str, delay: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Steps, mean and sd over seeds of val/recall for one (cell, delay)."""
    series = [r.series("val", "recall").set_index("step")["value"] for r in runs
              if _info(r).get("cell") == cell and _info(r).get("delay") == delay]
    if not series:
        return None
    frame = pd.concat(series, axis=1).sort_index()
    return frame.index.to_numpy(), frame.mean(axis=1).to_numpy(), \
        frame.std(axis=1).fillna(0).to_numpy()


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    t = table(runs)
    if t.empty:
        raise ValueError("no member has recorded its recall (rnn_memory in summary.json)")
    info = _info(next(r for r in runs if _info(r)))
    chance = info["chance"]
    delays = sorted(t["delay"].unique())
    fig, axes = panels(f"copy memory: recall {info['length']} symbols of {info['n_symbols']} "
                       f"after a delay ({seeds_note(t['n'])})", 2, size=(12.5, 4.6))
    for j, (cell, name) in enumerate(CELLS.items()):
        c = t[t["cell"] == cell]
        if c.empty:
            continue
        shift = 1 + (j - 1) * 0.03  # side by side on the log axis, so error bars stay apart
        axes[0].errorbar(c["delay"] * shift, c["recall_mean"], yerr=c["recall_sd"].fillna(0),
                         fmt="-o", capsize=3, label=name, color=f"C{j}")
        curves = _curves(runs, cell, max(delays))
        if curves is not None:
            steps, mean, sd = curves
            axes[1].plot(steps, mean, label=name, color=f"C{j}")
            axes[1].fill_between(steps, mean - sd, mean + sd, alpha=0.2, color=f"C{j}")
    for ax in axes:
        ax.axhline(chance, color="k", ls="--", lw=0.9, label=f"chance (1/{info['n_symbols']})")
        ax.set_ylim(0, 1.03)
        ax.set_ylabel("recalled symbols right (validation, fraction)")
    axes[0].legend(fontsize=9, loc="center right")  # the lower left holds the long delays' points
    axes[1].legend(fontsize=9, loc="upper left")
    axes[0].set_xscale("log")
    axes[0].set_xticks(delays, [str(d) for d in delays])
    axes[0].xaxis.set_minor_locator(NullLocator())  # only the delays measured are labelled
    axes[0].set_xlabel("delay T (blank steps between the symbols and the marker)")
    axes[0].set_title("after training", fontsize=10)
    axes[1].set_xlabel("training step (updates)")
    axes[1].set_title(f"during training, at the longest delay T = {max(delays)}", fontsize=10)
    written = [save(fig, out / f"rnn_memory.{fmt}")]
    path = out / "rnn_memory.csv"
    t.to_csv(path, index=False)
    return written + [path]
