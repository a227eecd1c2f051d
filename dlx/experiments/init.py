"""init: zeros / N(0, 0.01^2) / N(0, 1) / Xavier / He on a deep tanh and a deep ReLU net —
activation scale and gradient scale per layer at initialization, and how each trains."""

from __future__ import annotations

from pathlib import Path

from dlx.experiments.layers import FLOOR, STAT_LABELS, at_step, read
from dlx.plots.style import panels, save


def init_label(config: dict) -> str:
    init = config.get("init", {})
    name = init.get("name", "?")
    if name == "normal":
        return f"N(0, {init.get('std', 0.01):g}²)"
    return {"zeros": "zeros", "xavier_normal": "Xavier (normal)",
            "he_normal": "He (normal)"}.get(name, name)


def report_numbers(run) -> dict:
    """Last over first hidden layer, at initialization ('all zero' where zeros make it 0/0)."""
    stats = read(run)
    if stats is None:
        return {}
    out = {}
    for stat, label, last in (("act_std", "activation std", -1), ("grad_z_norm", "‖∂L/∂z‖", -2)):
        values = stats[(stats["step"] == 0) & (stats["stat"] == stat)].sort_values("layer")
        values = values["value"].to_numpy()
        key = f"{label}: last / first hidden layer, at init"
        out[key] = "all zero" if values[0] == 0 else values[last] / values[0]
    return out


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    acts = sorted({r.config["model"]["activation"] for r in runs})
    written = []
    for stat in ("act_std", "grad_z_norm"):
        fig, axes = panels(f"at initialization: {STAT_LABELS[stat]} across depth", len(acts),
                           size=(6 * len(acts), 4.8))
        for ax, act in zip(axes if len(acts) > 1 else [axes], acts):
            for i, run in enumerate(r for r in runs if r.config["model"]["activation"] == act):
                stats = read(run)
                if stats is None:
                    continue
                layers, values = at_step(stats, 0, stat)
                ax.plot(layers, values, "-o", ms=4, color=f"C{i}", label=init_label(run.config))
            ax.set_yscale("log")
            ax.set_title(f"{act} network", fontsize=10)
            ax.set_xlabel("layer (1 = nearest the input)")
            ax.set_ylabel(STAT_LABELS[stat] + " (log scale)")
            ax.legend(fontsize=8, title=f"init (exact 0 drawn at {FLOOR:g})", title_fontsize=7)
        written.append(save(fig, out / f"init_{stat}.{fmt}"))

    fig, axes = panels("training from each initialization (validation loss)", len(acts),
                       size=(6 * len(acts), 4.8))
    for ax, act in zip(axes if len(acts) > 1 else [axes], acts):
        for i, run in enumerate(r for r in runs if r.config["model"]["activation"] == act):
            s = run.series("val", "loss")
            status = run.summary.get("status")
            ax.plot(s["step"], s["value"], "-o", ms=3, color=f"C{i}",
                    label=init_label(run.config) + ("" if status == "completed" else f" ({status})"))
        ax.set_yscale("log")
        ax.set_title(f"{act} network", fontsize=10)
        ax.set_xlabel("step (parameter updates)")
        ax.set_ylabel("validation loss (nats, log scale)")
        ax.legend(fontsize=8)
    written.append(save(fig, out / f"init_training.{fmt}"))
    return written
