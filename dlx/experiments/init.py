"""init: zeros / N(0, 0.01^2) / N(0, 1) / Xavier / He on a deep tanh and a deep ReLU net —
activation scale and gradient scale per layer at initialization, and how each trains; each
setting over several seeds (error bars and bands: ±1 sd)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dlx.experiments.layers import FLOOR, STAT_LABELS, read
from dlx.plots.style import panels, save
from dlx.plots.sweep import curve_stats, draw_band, seeds_note, setting_stats


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


def at_init(runs, stat: str) -> pd.DataFrame:
    """``stat`` per layer at initialization, over seeds: one row per (activation, init, layer)
    with mean, sd (sample) and n of the members' values (exact zeros stay 0; drawn at FLOOR)."""
    rows = []
    for run in runs:
        stats = read(run)
        if stats is None:
            continue
        s = stats[(stats["step"] == 0) & (stats["stat"] == stat)]
        rows.append(pd.DataFrame({"activation": run.config["model"]["activation"],
                                  "init": init_label(run.config), "layer": s["layer"],
                                  "value": s["value"]}))
    table = pd.concat(rows, ignore_index=True)
    agg = table.groupby(["activation", "init", "layer"], sort=False)["value"].agg(
        ["mean", "std", "count"])
    return agg.rename(columns={"std": "sd", "count": "n"}).reset_index()


def final_val_losses(runs) -> pd.DataFrame:
    """Per (activation, init), over seeds: the final validation loss (diverged: left out)."""
    return setting_stats(
        runs, lambda r: (r.config["model"]["activation"], init_label(r.config)),
        {"final_val_loss": lambda r: (r.summary.get("final") or {}).get("val/loss")})


def plot_sweep(sweep_dir: Path, runs, labels, fmt: str, out: Path | None = None) -> list[Path]:
    out = sweep_dir / "plots" if out is None else out
    acts = list(dict.fromkeys(r.config["model"]["activation"] for r in runs))
    finals = final_val_losses(runs)
    note = seeds_note(finals["n"])
    written = []
    for stat in ("act_std", "grad_z_norm"):
        table = at_init(runs, stat)
        fig, axes = panels(f"at initialization: {STAT_LABELS[stat]} across depth ({note})",
                           len(acts), size=(6 * len(acts), 4.8))
        for ax, act in zip(axes if len(acts) > 1 else [axes], acts):
            of_act = table[table["activation"] == act]
            for i, init in enumerate(dict.fromkeys(of_act["init"])):
                t = of_act[of_act["init"] == init]
                mean = np.maximum(t["mean"].to_numpy(), FLOOR)
                sd = t["sd"].fillna(0).to_numpy()
                # error bars on a log axis: the lower end stays above 0
                yerr = [np.minimum(sd, 0.9 * mean), sd]
                ax.errorbar(t["layer"], mean, yerr=yerr, fmt="-o", ms=4, capsize=3,
                            color=f"C{i}", label=init)
            ax.set_yscale("log")
            ax.set_title(f"{act} network", fontsize=10)
            ax.set_xlabel("layer (1 = nearest the input)")
            ax.set_ylabel(STAT_LABELS[stat] + " (log scale)")
            ax.legend(fontsize=8, title=f"init (exact 0 drawn at {FLOOR:g}); bars ±1 sd",
                      title_fontsize=7)
        written.append(save(fig, out / f"init_{stat}.{fmt}"))

    fig, axes = panels(f"training from each initialization: validation loss (band: {note})",
                       len(acts), size=(6 * len(acts), 4.8))
    for ax, act in zip(axes if len(acts) > 1 else [axes], acts):
        for i, row in finals[[s[0] == act for s in finals["setting"]]].reset_index().iterrows():
            members = [r for r in runs if (r.config["model"]["activation"],
                                           init_label(r.config)) == row["setting"]]
            curve = curve_stats([r.series("val", "loss") for r in members])
            bad = [r.summary.get("status") for r in members if r.summary.get("status")
                   != "completed"]
            if row["final_val_loss_n"]:
                label = (f"{row['setting'][1]}: {row['final_val_loss_mean']:.3f} ± "
                         f"{row['final_val_loss_sd']:.3f}" + (f" ({len(bad)} {bad[0]})" if bad
                                                              else ""))
            else:
                label = f"{row['setting'][1]}: {bad[0]} on {len(bad)} of {len(members)} seeds"
            draw_band(ax, curve, color=f"C{i}", log=True, marker="o", ms=3, label=label)
        ax.set_yscale("log")
        ax.set_title(f"{act} network", fontsize=10)
        ax.set_xlabel("step (parameter updates)")
        ax.set_ylabel("validation loss (nats, log scale)")
        ax.legend(fontsize=8, title="init: final loss, mean ± sd", title_fontsize=7)
    written.append(save(fig, out / f"init_training.{fmt}"))
    return written
