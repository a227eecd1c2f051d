"""char_lm: a character-level LSTM language model on tiny Shakespeare, against a transformer of
about the same parameter count trained for about the same CPU time.

One run is one seed of the whole comparison:

1. the LSTM (the run's own model): truncated BPTT over the text read as ``batch_size``
   contiguous streams (``dataset.stream``), the state carried from batch to batch; its
   metrics are the run's metrics.csv and its weights the run's model.npz (``dlx sample``);
2. the transformer (``char_lm.transformer``, model=transformer's options) on shuffled windows of
   the same length, ``char_lm.transformer_steps`` updates, into transformer_metrics.csv (the
   same format; no timings either);
3. every ``char_lm.eval_every`` steps, both models' validation loss, bits per character and
   perplexity, and the training time so far (CPU seconds of this single-threaded process,
   evaluations excluded, and wall seconds) in char_lm_timing.csv: the only file with timings;
4. throughput.csv: characters per CPU second of a forward + backward pass of each
   architecture at sequence lengths ``char_lm.throughput.seq_lens``;
5. samples.txt: text from both trained models at ``char_lm.samples.temperatures``.

Why CPU seconds: on a shared machine wall time measures the other jobs too; one thread's CPU
time is what the wall time would be on a quiet one.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import NullLocator

from dlx.errors import UsageError

TIMING = "char_lm_timing.csv"
TRANSFORMER_METRICS = "transformer_metrics.csv"
THROUGHPUT = "throughput.csv"
SAMPLES = "samples.txt"
THROUGHPUT_COLUMNS = ("model", "params", "seq_len", "batch", "tokens_per_step", "cpu_s_per_step",
                      "tokens_per_s")
NAMES = {"lstm": "LSTM", "transformer": "transformer"}


def validate(cfg) -> None:
    """The experiment's own keys (``cfg`` holds the top-level keys and the groups)."""
    if cfg["backend"] != "numpy":
        raise UsageError("experiment=char_lm runs on backend=numpy (plain runs of model=rnn "
                         "with dataset.stream=true take backend=torch)")
    node = cfg.get("char_lm") or {}
    for key in ("eval_every", "transformer_steps"):
        value = node.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UsageError(f"char_lm.{key} must be an integer >= 1, got {value!r}")
    lens = node.get("throughput", {}).get("seq_lens")
    if not lens or any(not isinstance(t, int) or t < 1 for t in lens):
        raise UsageError(f"char_lm.throughput.seq_lens must be integers >= 1, got {lens!r}")
    temps = node.get("samples", {}).get("temperatures") or []
    if any(not isinstance(t, (int, float)) or t <= 0 for t in temps):
        raise UsageError(f"char_lm.samples.temperatures must be > 0, got {temps!r}")


def transformer_config(cfg) -> dict:
    """The transformer's run: the LSTM's config with the transformer's model, init, lr and
    steps, on shuffled (not streamed) windows of the same length."""
    node = cfg["char_lm"]
    t = copy.deepcopy(cfg)
    t["model"] = {"name": "transformer", **node["transformer"]}
    t["init"] = {"name": "normal", "std": node["transformer_init_std"]}
    t["optimizer"]["lr"] = node["transformer_lr"]
    t["max_steps"] = node["transformer_steps"]
    t["dataset"]["stream"] = False
    return t


class Clock:
    """Training time of one model: CPU and wall seconds since start, every evaluation the
    backend makes excluded (its evaluate is wrapped)."""

    def __init__(self, backend):
        self.cpu0, self.wall0 = time.process_time(), time.perf_counter()
        self.eval_cpu = self.eval_wall = 0.0
        evaluate = backend.evaluate

        def timed(X, y, **how):  # how: chunk and losses of a sampled evaluation
            c, w = time.process_time(), time.perf_counter()
            try:
                return evaluate(X, y, **how)
            finally:
                self.eval_cpu += time.process_time() - c
                self.eval_wall += time.perf_counter() - w

        backend.evaluate = timed

    def seconds(self) -> tuple[float, float]:
        return (time.process_time() - self.cpu0 - self.eval_cpu,
                time.perf_counter() - self.wall0 - self.eval_wall)


def train_one(kind, cfg, rec, run_dir, timing, progress):
    """Train ``cfg``'s model, logging val scores every eval_every steps into ``rec`` (the
    loop logs them at epoch ends: those steps are left to it) and the time into ``timing``."""
    from dlx.assemble import build_data
    from dlx.nn.metrics import names
    from dlx.training import NumpyBackend, train
    from dlx.training.loop import Loop

    data = build_data(cfg)
    backend = NumpyBackend(cfg, data)
    spe = Loop(cfg, data, backend, rec, None).steps_per_epoch
    every, tokens = cfg["char_lm"]["eval_every"], cfg["batch_size"] * data.spec.seq_len
    clock = None

    def row(step: int) -> None:
        cpu, wall = clock.seconds()
        timing.append((kind, step, step * tokens, cpu, wall))

    def hook(step: int, backend) -> None:
        nonlocal clock
        if clock is None:
            clock = Clock(backend)  # before training; the loop's first evaluation follows
        if step % every and step % spe:
            return
        row(step)
        if step % spe:  # the loop evaluates at epoch ends (and step 0) itself
            epoch = step // spe + 1
            values = backend.evaluate(data.X_val, data.y_val)
            for metric, value in zip(("loss", *names(data.spec.task)), values):
                rec.log(step, epoch, "val", metric, value)

    result = train(cfg, rec, progress, run_dir, hooks=[hook], backend=backend)
    row(result.steps)
    return result, backend, data


def throughput(cfg, vocab: int) -> pd.DataFrame:
    """Characters per CPU second of forward + backward (loss included) for each architecture
    at each sequence length, batch ``char_lm.throughput.batch``, random tokens and weights."""
    from dlx.assemble import build_model
    from dlx.data.spec import DataSpec
    from dlx.nn import SequenceCrossEntropy

    node = cfg["char_lm"]["throughput"]
    B, rows = node["batch"], []
    rng = np.random.default_rng(0)
    for kind, c in (("lstm", cfg), ("transformer", transformer_config(cfg))):
        for T in node["seq_lens"]:
            spec = DataSpec.tokens(vocab, T, task="language_model")
            model = build_model(c["model"], c["init"], spec, np.random.default_rng(0),
                                np.dtype(cfg["dtype"]))
            x = rng.integers(0, vocab, (B, T))
            loss = SequenceCrossEntropy()

            def step(model=model, loss=loss, x=x):  # bound now: the loop rebinds them
                loss.forward(model.forward(x), x)
                model.backward(loss.backward())

            step()  # untimed: first-touch allocations
            start = time.process_time()
            for _ in range(node["steps"]):
                step()
            per_step = (time.process_time() - start) / node["steps"]
            rows.append((kind, sum(p.data.size for p in model.parameters()), T, B, B * T,
                         per_step, B * T / per_step))
    return pd.DataFrame(rows, columns=THROUGHPUT_COLUMNS)


def samples(models: dict, data, cfg) -> str:
    """Text from each trained model at each temperature (seeded: the same every run)."""
    from dlx.nn.generate import generate

    node = cfg["char_lm"]["samples"]
    index = {c: i for i, c in enumerate(data.classes)}
    prompt = np.array([index[c] for c in node["prompt"]])
    parts = []
    for kind, model in models.items():
        model.eval()
        if hasattr(model, "carry"):  # generation feeds windows from the start: no carried state
            model.carry = False
            model.reset_state()
        for temp in node["temperatures"]:
            ids = generate(model, prompt, node["length"], block_size=data.spec.seq_len,
                           temperature=float(temp), rng=np.random.default_rng(cfg["seed"]))
            parts.append(f"=== {NAMES[kind]}, temperature {temp:g} ===\n"
                         + "".join(data.classes[i] for i in ids) + "\n")
    return "\n".join(parts)


def run(cfg, rec, run_dir: Path):
    from dlx.records.metrics import MetricsWriter

    if cfg["dataset"]["name"] != "tinyshakespeare" or cfg["model"]["name"] != "rnn":
        raise UsageError("experiment=char_lm trains model=rnn on dataset=tinyshakespeare, got "
                         f"model={cfg['model']['name']} dataset={cfg['dataset']['name']}")
    if run_dir is None:
        raise UsageError("experiment=char_lm writes its tables into a run directory")
    timing: list[tuple] = []
    result, lstm, data = train_one("lstm", cfg, rec, run_dir, timing, cfg["progress"])
    trec = MetricsWriter(run_dir / TRANSFORMER_METRICS)
    try:  # its run_dir None: no second timing.csv in the run's directory
        _, tf, _ = train_one("transformer", transformer_config(cfg), trec, None, timing,
                             cfg["progress"])
    finally:
        trec.close()
    table = throughput(cfg, data.spec.vocab)
    text = samples({"lstm": lstm.model, "transformer": tf.model}, data, cfg)
    frame = pd.DataFrame(timing, columns=("model", "step", "tokens", "train_cpu_s", "train_wall_s"))
    frame.to_csv(run_dir / TIMING, index=False, float_format="%.4f")
    table.to_csv(run_dir / THROUGHPUT, index=False, float_format="%.6g")
    (run_dir / SAMPLES).write_text(text, encoding="utf-8")
    last = frame.groupby("model").last()
    final = {"lstm": rec.final, "transformer": trec.final}
    result.extra["char_lm"] = {
        kind: {"params": int(sum(p.data.size for p in b.params)),
               "steps": int(last.loc[kind, "step"]), "tokens": int(last.loc[kind, "tokens"]),
               "train_cpu_s": float(last.loc[kind, "train_cpu_s"]),
               "train_wall_s": float(last.loc[kind, "train_wall_s"]),
               **{f"val_{m}": final[kind].get(f"val/{m}") for m in ("loss", "bpc", "ppl", "acc")}}
        for kind, b in (("lstm", lstm), ("transformer", tf))}
    result.extra["char_lm"]["unigram_entropy_nats"] = unigram_entropy(data)
    return result


def unigram_entropy(data) -> float:
    """The entropy (nats) of the training characters' frequencies: the loss of the best model
    that ignores context."""
    counts = np.bincount(data.y_train.reshape(-1), minlength=data.spec.vocab).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def report_numbers(run) -> dict:
    info = run.summary.get("char_lm") or {}
    out = {}
    for kind in ("lstm", "transformer"):
        if kind in info:
            k = info[kind]
            out[f"{NAMES[kind]} val loss (nats/char)"] = k["val_loss"]
            out[f"{NAMES[kind]} bits per character"] = k["val_bpc"]
            out[f"{NAMES[kind]} training CPU s"] = k["train_cpu_s"]
    return out


# --- figures ---------------------------------------------------------------------------------

def curves(run) -> pd.DataFrame:
    """Per model and evaluation step: val loss, characters seen, training CPU/wall seconds."""
    timing = pd.read_csv(run.path / TIMING)
    parts = []
    for kind, file in (("lstm", "metrics.csv"), ("transformer", TRANSFORMER_METRICS)):
        m = pd.read_csv(run.path / file)
        m = m[(m["split"] == "val") & (m["metric"] == "loss")]
        m = m.drop_duplicates("step", keep="last")[["step", "value"]]
        t = timing[timing["model"] == kind]
        parts.append(t.merge(m, on="step").rename(columns={"value": "val_loss"}))
    return pd.concat(parts, ignore_index=True)


def _draw(axes, frames: list[pd.DataFrame], throughputs: list[pd.DataFrame], entropy: float):
    for j, kind in enumerate(("lstm", "transformer")):
        per_seed = [f[f["model"] == kind].set_index("step") for f in frames]
        steps = sorted(set.intersection(*(set(p.index) for p in per_seed)))
        loss = np.array([[p.loc[s, "val_loss"] for s in steps] for p in per_seed])
        cpu = np.array([[p.loc[s, "train_cpu_s"] for s in steps] for p in per_seed]).mean(axis=0)
        tokens = per_seed[0].loc[steps, "tokens"].to_numpy() / 1e6
        mean, sd = loss.mean(axis=0), loss.std(axis=0, ddof=1) if len(loss) > 1 else 0 * loss[0]
        label = NAMES[kind]
        for ax, x in ((axes[0], cpu), (axes[1], tokens)):
            ax.plot(x, mean, color=f"C{j}", label=label)
            ax.fill_between(x, mean - sd, mean + sd, color=f"C{j}", alpha=0.25)
        t = pd.concat([tp[tp["model"] == kind] for tp in throughputs])
        g = t.groupby("seq_len")["tokens_per_s"]
        axes[2].errorbar(g.mean().index, g.mean(), yerr=g.std().fillna(0), fmt="-o", capsize=3,
                         color=f"C{j}", label=NAMES[kind])
    for ax in axes[:2]:
        ax.axhline(entropy, color="k", ls="--", lw=0.9, label=f"unigram entropy ({entropy:.2f})")
        ax.set_ylabel("validation loss (nats per character)")
        ax.legend(fontsize=9)
        ax.set_ylim(top=min(ax.get_ylim()[1], 4.5))
    axes[0].set_xlabel("training time (CPU s, one thread, no evaluations)")
    axes[0].set_title("loss against training time", fontsize=10)
    axes[1].set_xlabel("characters seen in training (millions)")
    axes[1].set_title("loss against characters seen", fontsize=10)
    axes[2].set_xscale("log", base=2)
    lens = sorted(set().union(*(set(t["seq_len"]) for t in throughputs)))
    axes[2].set_xticks(lens, [str(t) for t in lens])
    axes[2].xaxis.set_minor_locator(NullLocator())
    axes[2].set_yscale("log")
    axes[2].set_xlabel("sequence length T (characters)")
    axes[2].set_ylabel("throughput (characters per CPU second, fwd + bwd)")
    axes[2].set_title("throughput against sequence length", fontsize=10)
    axes[2].legend(fontsize=9)


def _read(run):
    return curves(run), pd.read_csv(run.path / THROUGHPUT)


def _panels(title: str):
    """The two loss panels side by side over the throughput panel at full width: a figure
    that prints legibly at a page's width (three panels in a row, 16 in wide, printed at
    ~0.45 scale)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 7.6), dpi=110, layout="tight")
    grid = fig.add_gridspec(2, 2)
    axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]),
            fig.add_subplot(grid[1, :])]
    fig.suptitle(title, fontsize=11)
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, axes


def plot_run(run, out: Path, fmt: str) -> list[Path]:
    from dlx.plots.style import save

    frame, tp = _read(run)
    info = run.summary.get("char_lm") or {}
    fig, axes = _panels(f"tiny Shakespeare, character level: LSTM ({info['lstm']['params']:,} "
                        f"parameters) vs transformer ({info['transformer']['params']:,}), seed "
                        f"{run.config['seed']}")
    _draw(axes, [frame], [tp], info["unigram_entropy_nats"])
    return [save(fig, out / f"char_lm.{fmt}")]


def table(runs) -> pd.DataFrame:
    """Per model: final validation loss, bits per character, perplexity and training CPU
    seconds, mean, sd and n over seeds."""
    from dlx.plots.sweep import setting_stats

    rows = []
    for kind in ("lstm", "transformer"):
        have = [r for r in runs if kind in (r.summary.get("char_lm") or {})]
        stats = setting_stats(have, lambda r, kind=kind: kind, {
            m: (lambda r, m=m, kind=kind: r.summary["char_lm"][kind][m])
            for m in ("val_loss", "val_bpc", "val_ppl", "val_acc", "train_cpu_s", "tokens",
                      "params")})
        rows.append(stats.rename(columns={"setting": "model"}))
    return pd.concat(rows, ignore_index=True)


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    from dlx.plots.style import save
    from dlx.plots.sweep import seeds_note

    out = sweep_dir / "plots" if out is None else out
    runs = [r for r in runs if (r.summary.get("char_lm") or {}) and (r.path / TIMING).is_file()]
    if not runs:
        raise ValueError("no member has finished (char_lm in summary.json)")
    read = [_read(r) for r in runs]
    info = runs[0].summary["char_lm"]
    fig, axes = _panels(f"tiny Shakespeare, character level: LSTM ({info['lstm']['params']:,} "
                        f"parameters) vs transformer ({info['transformer']['params']:,}) "
                        f"({seeds_note([len(runs)])})")
    _draw(axes, [f for f, _ in read], [t for _, t in read], info["unigram_entropy_nats"])
    written = [save(fig, out / f"char_lm.{fmt}")]
    path = out / "char_lm.csv"
    table(runs).to_csv(path, index=False)
    return written + [path]
