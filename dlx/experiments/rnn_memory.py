"""rnn_memory: vanilla RNN vs LSTM vs GRU on copy memory (dlx.data.memory) as the delay T
grows — the fraction of recalled symbols right (chance 1/n_symbols) against T, each point a
mean ± sd over seeds, and the recall curve during training. ``experiment=rnn_adding`` is the
same comparison on the adding problem (its sequence length T; the validation MSE against T,
the memoryless baseline 1/6 drawn), with this module's hooks.

A member trains as usual (``max_steps`` updates, the loop's per-epoch loss and exact-sequence
accuracy) and, every ``rnn_memory.eval_every`` steps and at the end, logs ``val/recall``: the
fraction of the validation set's recalled symbols predicted right. The loop's ``val/acc`` asks
for all S symbols of a sequence at once (chance (1/n)^S); recall scores them one by one, the
number Hochreiter & Schmidhuber and Arjovsky et al. compare. On the adding problem the loop's
``val/loss`` is already the number compared (the MSE in the target's units); ``val/mse`` is the
same, logged every ``eval_every`` steps.
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
TASKS = ("copy_memory", "adding")


def validate(cfg) -> None:
    """The experiment's own keys (``cfg`` holds the top-level keys, not the groups)."""
    if cfg["backend"] != "numpy":
        raise UsageError(f"experiment={cfg['experiment']} runs on backend=numpy (it reads the "
                         "recall off the NumPy model; plain runs of model=rnn take backend=torch)")
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


def mse(model, X: np.ndarray, y: np.ndarray, chunk: int = 256) -> float:
    """Mean squared error of the predictions (in the target's units), in eval mode."""
    model.eval()
    total = 0.0
    for start in range(0, len(X), chunk):
        d = model.forward(X[start:start + chunk]).astype(np.float64) - y[start:start + chunk]
        total += float(np.square(d).sum())
    model.train()
    return total / y.size


def run(cfg, rec, run_dir: Path):
    from dlx.assemble import build_data
    from dlx.training import NumpyBackend, train

    d = cfg["dataset"]
    if d["name"] not in TASKS or cfg["model"]["name"] != "rnn":  # the groups: not in validate's
        raise UsageError(f"experiment={cfg['experiment']} trains model=rnn on dataset="
                         f"{' or '.join(TASKS)}, got model={cfg['model']['name']} "
                         f"dataset={d['name']}")
    data = build_data(cfg)
    backend = NumpyBackend(cfg, data)
    every = cfg["rnn_memory"]["eval_every"]
    per_epoch = -(-len(data.X_train) // min(cfg["batch_size"] or len(data.X_train),
                                            len(data.X_train)))
    adding = d["name"] == "adding"
    name, score = ("mse", mse) if adding else ("recall", recall)

    def log_score(step: int, backend) -> None:
        if step % every == 0:
            rec.log(step, -(-step // per_epoch), "val", name,
                    score(backend.model, data.X_val, data.y_val))

    result = train(cfg, rec, cfg["progress"], run_dir, hooks=[log_score], backend=backend)
    final = score(backend.model, data.X_val, data.y_val)
    # hooks run before an update, so the last step's model is measured here (never twice)
    rec.log(result.steps, -(-result.steps // per_epoch), "val", name, final)
    if adding:
        from dlx.data.memory import ADDING_BASELINE

        result.extra["rnn_memory"] = {
            "task": "adding", "cell": cfg["model"]["cell"], "length": d["length"],
            "baseline": ADDING_BASELINE, "val_mse": final,
            "train_mse": mse(backend.model, data.X_train, data.y_train)}
        return result
    result.extra["rnn_memory"] = {
        "cell": cfg["model"]["cell"], "delay": d["delay"], "length": d["length"],
        "n_symbols": d["n_symbols"], "chance": 1.0 / d["n_symbols"], "val_recall": final,
        "train_recall": recall(backend.model, data.X_train, data.y_train)}
    return result


def report_numbers(run) -> dict:
    info = run.summary.get("rnn_memory") or {}
    if info.get("task") == "adding":
        return {"MSE of the sum (validation)": info.get("val_mse"),
                "baseline (always 1)": info.get("baseline")}
    return {"recall of the copied symbols (validation)": info.get("val_recall"),
            "chance": info.get("chance")}


def _info(r) -> dict:
    return r.summary.get("rnn_memory") or {}


def _adding(runs) -> bool:
    return any(_info(r).get("task") == "adding" for r in runs)


def _forget_bias(r):
    """The LSTM's forget-gate bias at init (a number, or chrono); None for the other cells."""
    if _info(r).get("cell") != "lstm":
        return None
    value = ((r.config.get("model") or {}).get("forget_bias"))
    return value if value == "chrono" else float(value or 0.0)


def _arm(r) -> str:
    """A member's arm: its cell, and for the LSTM its forget-gate bias at init, which decides
    whether it remembers at all at long delays (#26)."""
    fb = _forget_bias(r)
    return _info(r)["cell"] if fb is None else f"lstm, forget bias {fb if fb == 'chrono' else f'{fb:g}'}"


def _arm_name(arm: str) -> str:
    cell, _, rest = arm.partition(", ")
    return CELLS[cell] + (f" ({rest})" if rest else "")


def _arm_order(arm: str) -> tuple:
    cell, _, rest = arm.partition(", forget bias ")
    bias = (1, 0.0) if rest == "chrono" else (0, float(rest)) if rest else (0, 0.0)
    return list(CELLS).index(cell), bias


def table(runs) -> pd.DataFrame:
    """Per (arm, T), arms in CELLS' order (an LSTM's by its forget-gate bias, chrono last) and T
    ascending: the final validation score, mean, sd and n over seeds — copy memory: ``delay``
    and ``recall``; adding: ``length`` and ``mse``. ``cell`` is the cell, ``forget_bias`` the
    LSTM's (empty for the others)."""
    runs = [r for r in runs if _info(r)]
    x, y = ("length", "mse") if _adding(runs) else ("delay", "recall")
    stats = setting_stats(runs, lambda r: (_arm(r), _info(r)[x]),
                          {y: lambda r: _info(r)[f"val_{y}"]})
    arms = [s[0] for s in stats["setting"]]
    stats.insert(0, "cell", [a.partition(",")[0] for a in arms])
    stats.insert(1, "forget_bias", [a.partition("forget bias ")[2] for a in arms])
    stats.insert(2, x, [int(s[1]) for s in stats["setting"]])
    stats.insert(3, "arm", arms)
    order = [_arm_order(a) for a in arms]
    return (stats.drop(columns="setting").assign(o=order)
            .sort_values(["o", x], ignore_index=True).drop(columns="o"))


def _curves(runs, arm: str, x: str, value: int, metric: str):
    """Steps, mean and sd over seeds of val/<metric> for one (arm, T)."""
    series = [r.series("val", metric).set_index("step")["value"] for r in runs
              if _info(r) and _arm(r) == arm and _info(r).get(x) == value]
    if not series:
        return None
    frame = pd.concat(series, axis=1).sort_index()
    return frame.index.to_numpy(), frame.mean(axis=1).to_numpy(), \
        frame.std(axis=1).fillna(0).to_numpy()


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    t = table(runs)
    if t.empty:
        raise ValueError("no member has recorded its score (rnn_memory in summary.json)")
    info = _info(next(r for r in runs if _info(r)))
    adding = _adding(runs)
    x, y = ("length", "mse") if adding else ("delay", "recall")
    ts = sorted(t[x].unique())
    if adding:
        title = (f"the adding problem: the sum of 2 marked values among T ({seeds_note(t['n'])};"
                 " dots: the seeds)")
        reference, ref_label = info["baseline"], "baseline: always predict 1 (MSE 1/6)"
    else:
        title = (f"copy memory: recall {info['length']} symbols of {info['n_symbols']} "
                 f"after a delay ({seeds_note(t['n'])})")
        reference, ref_label = info["chance"], f"chance (1/{info['n_symbols']})"
    fig, axes = panels(title, 2, size=(12.5, 4.6))
    drawn = list(dict.fromkeys(t["arm"]))
    for j, cell in enumerate(drawn):  # an arm: a cell (an LSTM with its forget-gate bias)
        name = _arm_name(cell)
        c = t[t["arm"] == cell]
        # side by side on the log axis, so error bars stay apart: 3% steps, centred on each T
        shift = 1 + (drawn.index(cell) - (len(drawn) - 1) / 2) * 0.03
        mean, sd = c[f"{y}_mean"].to_numpy(), c[f"{y}_sd"].fillna(0).to_numpy()
        # on the log axis the bar stops at a tenth of the mean (mean - sd may be < 0)
        yerr = [np.minimum(sd, 0.9 * mean), sd] if adding else sd
        axes[0].errorbar(c[x] * shift, mean, yerr=yerr, fmt="-o", capsize=3, label=name,
                         color=f"C{j}")
        if adding:  # the seeds themselves: a mean over a solved and an unsolved seed hides both
            seeds = [(_info(r)[x], _info(r)[f"val_{y}"]) for r in runs
                     if _info(r) and _arm(r) == cell]
            axes[0].scatter([v[0] * shift for v in seeds], [v[1] for v in seeds], s=12,
                            color=f"C{j}", alpha=0.45, zorder=3)
        curves = _curves(runs, cell, x, max(ts), y)
        if curves is not None and adding:  # each seed's curve: they part at different steps
            for k, r in enumerate(r for r in runs if _info(r) and _arm(r) == cell
                                  and _info(r).get(x) == max(ts)):
                series = r.series("val", y)
                axes[1].plot(series["step"], series["value"], color=f"C{j}", lw=1.2,
                             alpha=0.8, label=name if k == 0 else None)
        elif curves is not None:
            steps, mean, sd = curves
            axes[1].plot(steps, mean, label=name, color=f"C{j}")
            axes[1].fill_between(steps, mean - sd, mean + sd, alpha=0.2, color=f"C{j}")
    for ax in axes:
        ax.axhline(reference, color="k", ls="--", lw=0.9, label=ref_label)
        if adding:  # the MSE falls by decades once a cell finds the two values
            ax.set_yscale("log")
            ax.set_ylabel("MSE of the predicted sum (validation)")
        else:
            ax.set_ylim(0, 1.03)
            ax.set_ylabel("recalled symbols right (validation, fraction)")
    if adding:  # the empty middle: between the vanilla RNN's line and the gated cells'
        axes[0].legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.42, 0.8))
    else:
        axes[0].legend(fontsize=9, loc="center right")
    axes[1].legend(fontsize=9, loc="lower left" if adding else "upper left")
    axes[0].set_xscale("log")
    # a fixed margin in log space: one T alone would otherwise span only the 3% offsets,
    # the cells' dots looking like different T
    axes[0].set_xlim(min(ts) / 1.5, max(ts) * 1.5)
    axes[0].set_xticks(ts, [str(v) for v in ts])
    axes[0].xaxis.set_minor_locator(NullLocator())  # only the values measured are labelled
    axes[0].set_xlabel("sequence length T (steps; the markers fall one in each half)" if adding
                       else "delay T (blank steps between the symbols and the marker)")
    axes[0].set_title("after training", fontsize=10)
    axes[1].set_xlabel("training step (updates)")
    axes[1].set_title(f"during training, at the longest {'sequence' if adding else 'delay'} "
                      f"T = {max(ts)}" + (" (one line per seed)" if adding else ""), fontsize=10)
    stem = "rnn_adding" if adding else "rnn_memory"
    written = [save(fig, out / f"{stem}.{fmt}")]
    path = out / f"{stem}.csv"
    t.to_csv(path, index=False)
    return written + [path]
