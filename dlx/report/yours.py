"""A from-scratch deliverable's section of the report: the learner's runs of the experiment
against dlx's reference under the same settings and seeds (:data:`dlx.plan.SCRATCH` names the
group the learner implements). Their curves overlaid (mean ± sd over seeds, the learner's dashed),
their final metrics, and for each pair of runs with the same seed the largest relative difference
of everything both logged, with the first logged value where they part: the same computation
differs by round-off only; a slip in the maths shows at the step it first acts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from dlx.records.store import Run, learner_groups, mark_learner

SAME = 1e-4  # largest relative difference of paired values still read as round-off (float32
#             over a few hundred steps stays below 1e-5; a wrong formula is off by far more)
SKIP = ("seed", "experiment", "progress", "name", "hydra", "runs_dir", "backend_threads")
KEYS = ["step", "epoch", "split", "metric"]


def is_mine(run: Run, group: str) -> bool:
    return group in learner_groups(run.summary)


def setting(run: Run, group: str) -> tuple[str, ...]:
    """What a run was asked apart from its seed and the group's own choice and options: runs
    with the same setting are comparable arms."""
    out = []
    for o in run.overrides:
        key, _, value = o.lstrip("+~").partition("=")
        if key.split(".")[0] not in SKIP and key != group and not key.startswith(f"{group}."):
            out.append(f"{key}={value}")
    return tuple(sorted(out))


def option(run: Run, group: str) -> str:
    node = run.config.get(group)
    return str(node.get("name")) if isinstance(node, dict) else "?"


@dataclass
class Arm:
    """The learner's runs of one option and setting, and the reference runs they are set against."""
    label: str
    setting: tuple[str, ...]
    mine: list[Run]
    ref: list[Run] = field(default_factory=list)
    ref_label: str = ""
    why_none: str = ""

    def pairs(self) -> list[tuple[Run, Run]]:
        by_seed = {r.config.get("seed"): r for r in self.ref}
        return [(m, by_seed[m.config.get("seed")]) for m in self.mine
                if m.config.get("seed") in by_seed]


def arms(records: list[list[Run]], group: str) -> list[Arm]:
    """The learner's arms found in ``records`` (the section's record first, then others of the
    experiment, newest first), each with its reference runs: the option its config names as
    ``reference``, else dlx's only option of the group among runs of the same setting."""
    runs = [r for rec in records for r in rec if r.summary.get("status") in ("completed", "diverged")]
    mine: dict[tuple, list[Run]] = {}
    for r in runs:
        if is_mine(r, group):
            mine.setdefault((option(r, group), setting(r, group)), []).append(r)
    out = []
    for (name, key), members in mine.items():
        first = members[0]
        seeds = {}
        for m in members:  # one run per seed: the newest record's (records come newest first)
            seeds.setdefault(m.config.get("seed"), m)
        arm = Arm(mark_learner([f"{group}={name}"], first.summary)[0], key, list(seeds.values()))
        wanted = (first.config.get(group) or {}).get("reference")
        refs = [r for r in runs if not is_mine(r, group) and setting(r, group) == key]
        names = list(dict.fromkeys(option(r, group) for r in refs))
        if wanted:
            names = [n for n in names if n == wanted]
        if not refs or not names:
            arm.why_none = (f"no run of dlx's {wanted or group} with the same settings"
                            f"{' (' + ', '.join(key) + ')' if key else ''} to set it against")
        elif len(names) > 1:
            arm.why_none = (f"dlx's runs here use {', '.join(names)}: say which one yours "
                            f"implements with `reference: <option>` in its config file")
        else:
            ref = {}
            for r in refs:
                if option(r, group) == names[0]:
                    ref.setdefault(r.config.get("seed"), r)
            arm.ref, arm.ref_label = list(ref.values()), f"{group}={names[0]} (dlx)"
        out.append(arm)
    return out


def parting(mine: Run, ref: Run) -> tuple[float, int, str | None]:
    """(largest relative difference, values compared, the first value beyond :data:`SAME`
    described) over everything both runs logged."""
    import numpy as np

    both = mine.metrics.merge(ref.metrics, on=KEYS, suffixes=("_mine", "_ref"))
    a, b = both["value_mine"].to_numpy(float), both["value_ref"].to_numpy(float)
    ok = np.isfinite(a) & np.isfinite(b)
    rel = np.abs(a - b) / np.maximum(np.abs(b), 1e-6)
    rel[~ok] = np.where(np.isfinite(a[~ok]) == np.isfinite(b[~ok]), 0.0, np.inf)
    if not len(rel):
        return math.nan, 0, None
    off = np.flatnonzero(rel > SAME)
    first = None
    if len(off):
        row = both.iloc[int(off[0])]
        first = (f"step {int(row['step'])}, {row['split']}/{row['metric']}: yours "
                 f"{row['value_mine']:.6g}, dlx's {row['value_ref']:.6g}")
    return float(rel.max()), len(rel), first


def verdict(arm: Arm) -> str:
    """One sentence for the learner: the same computation as dlx's, or where it parts."""
    label = arm.label + (f" at {', '.join(arm.setting)}" if arm.setting else "")
    if not arm.ref:
        return f"{label}: {arm.why_none}."
    pairs = arm.pairs()
    if not pairs:
        return (f"{label}: no seed in common with {arm.ref_label} "
                f"(yours {sorted(m.config.get('seed') for m in arm.mine)}); nothing to pair")
    results = [parting(m, r) for m, r in pairs]
    worst = max(d for d, _, _ in results)
    n = sum(k for _, k, _ in results)
    runs = f"{len(pairs)} run{'s' * (len(pairs) != 1)} paired by seed"
    if worst == 0:
        return (f"{label} computes what {arm.ref_label} does: all {n:,} logged values of "
                f"{runs} are identical, bit for bit.")
    if worst <= SAME:
        return (f"{label} computes what {arm.ref_label} does: every one of {n:,} logged "
                f"values of {runs} within {worst:.2g} (relative; round-off: the order of the "
                f"floating-point operations differs).")
    first = next(f for _, _, f in results if f)
    return (f"{label} differs from {arm.ref_label}: the largest relative difference over "
            f"{runs} is {worst:.2g}; they part at {first}. Same data, initial weights and "
            f"batches: the difference is the code's.")


def check_rows(arms_: list[Arm], group: str) -> list[list[str]]:
    """Per arm, what `dlx check` said of the code its runs recorded (the verdict kept in the
    workspace for those bytes): the command, the verdict, the stages."""
    from dlx.checks.store import entry

    rows = []
    for arm in arms_:
        source = arm.mine[0].summary.get("source") or {}
        target = (source.get("targets") or {}).get(group)
        found = entry(str(target), source.get("files") or {}) if target else None
        if found is None:
            rows.append([arm.label, f"dlx check {group}={option(arm.mine[0], group)}",
                         "not checked", "-"])
            continue
        said = ("passed" + (" (an accepted variant)" if found.get("variant") else "")
                if found.get("passed") else
                f"failed at {found.get('stage')}: {found.get('diagnosis')}")
        stages = "; ".join(f"{a} {b}" for a, b in found.get("stages") or [])
        rows.append([arm.label, str(found.get("command")), said, stages or "-"])
    return rows


def curve(run: Run):
    """The curve to overlay: validation loss where logged, else training loss."""
    for split in ("val", "train", "batch"):
        s = run.series(split, "loss")
        if not s.empty:
            return split, s
    return None, None


def overlay(arms_: list[Arm], out: Path) -> Path | None:
    """Loss against step, per setting: the reference solid, the learner's dashed, each a
    mean with a ±1 sd band over its seeds."""
    from dlx.plots.style import SPLIT_NAMES, log_scale_if_wide, panels, save
    from dlx.plots.sweep import curve_stats, draw_band, seeds_note

    shown = [a for a in arms_ if a.ref][:4]
    if not shown:
        return None
    fig, axes = panels("yours against dlx's reference: same data, initial weights, batches",
                       max(2, len(shown)), size=(5.5 * max(2, len(shown)), 4.4))
    for ax, arm in zip(axes, shown):
        split = None
        values = []
        for runs, label, style, color in ((arm.ref, arm.ref_label, "-", "tab:gray"),
                                          (arm.mine, arm.label, (0, (4, 3)), "tab:blue")):
            curves = [curve(r) for r in runs]
            series = [s for _, s in curves if s is not None]
            split = split or curves[0][0]
            if not series:
                continue
            stats = curve_stats(series)
            values += list(stats["mean"])
            draw_band(ax, stats, color=color, lw=1.8, ls=style,
                      label=f"{label}: {seeds_note([len(series)])}")
        ax.set_title(f"{arm.label.split(' (')[0]} against {arm.ref_label.split(' (')[0]}\n"
                     f"{', '.join(arm.setting) or 'the experiment’s settings'}", fontsize=9)
        ax.set_xlabel("step (optimizer updates)")
        ax.set_ylabel(f"{SPLIT_NAMES.get(split, split)} loss")
        log_scale_if_wide(ax, values, metric="loss")
        ax.legend(fontsize=7)
    for ax in axes[len(shown):]:
        ax.set_visible(False)
    return save(fig, out / "yours_vs_reference.png")


def finals(arm: Arm, keys: list[str], pooled) -> list[list[str]]:
    """Rows (code, setting, seeds, each final metric as ``pooled`` gives it: mean ± sd) of the
    arm's two sides (``pooled`` passed in: the report's package imports this module)."""
    rows = []
    for runs, label in ((arm.mine, arm.label), (arm.ref, arm.ref_label)):
        if runs:
            rows.append([label, ", ".join(arm.setting) or "-", str(len(runs)),
                         *[pooled([(r.summary.get("final") or {}).get(k) for r in runs])
                           for k in keys]])
    return rows
