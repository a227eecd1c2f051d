"""`dlx compare`: final and best metrics of runs and sweep members side by side, the config
values that differ between them, and mean ± std over the members of a group (e.g. seeds):
``--group-by KEY[,KEY...]``, or ``--group-by setting`` for one row per setting of a sweep
repeated over seeds."""

from __future__ import annotations

import math
from pathlib import Path

from dlx.errors import UsageError
from dlx.records.store import Run, check_dir, is_sweep, sweep_members
from dlx.records.tuning import tuned_keys

HEADLINE = ("val/loss", "val/acc", "test/acc", "train/loss", "val/rmse", "test/rmse")  # rmse: regression


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v if not isinstance(v, list) else str(v)
    return out


IGNORED = {"progress", "runs_dir"}  # how a run was shown or stored, not what it was


def _notes(member: Path, sweep: Path | None) -> tuple[str, str]:
    """(the table's cell, the CSV's cell) of a run's notes: its latest note's first line, whole,
    and all its notes in full; a sweep member's also carry the sweep's own notes (``dlx note
    SWEEP``: what was learned from the comparison), after ``sweep:``."""
    from dlx.records.notes import excerpt, full_text

    cells = [(excerpt(member), full_text(member))]
    if sweep is not None:
        short, full = excerpt(sweep), full_text(sweep)
        cells.append((short and f"sweep: {short}", full and f"sweep: {full}"))
    short = "; ".join(c[0] for c in cells if c[0]) or "–"
    return short, "\n\n".join(c[1] for c in cells if c[1])


def collect(paths: list[Path], notes: bool = False) -> list[dict]:
    """One row per run (sweep members expanded): id, status, config.*, final.* and best.*;
    with ``notes``, each run's notes (with its sweep's, see :func:`_notes`) as ``notes`` (the
    latest's first line) and ``_notes_full`` (all of them)."""
    rows, tuned = [], {}
    for path in paths:
        path = check_dir(path)
        members = sweep_members(path) if is_sweep(path) else [path]
        sweep = path if is_sweep(path) else (path.parent if is_sweep(path.parent) else None)
        for member in members:
            run = Run(member)
            try:
                summary, config = run.summary, run.config
            except UsageError as e:
                raise UsageError(f"cannot compare {member}: {e}") from None
            row = {"id": f"{path.name}/{member.name}" if member != path else path.name,
                   "status": summary.get("status", "?")}
            row.update({f"config.{k}": v for k, v in _flatten(config).items()
                        if k.split(".")[0] not in IGNORED})
            if sweep is not None:  # a tuned sweep: the setting each arm chose, always shown
                row["_tuned"] = tuned[sweep] if sweep in tuned else \
                    tuned.setdefault(sweep, tuned_keys(sweep))
            row.update({f"final.{k}": v for k, v in (summary.get("final") or {}).items()})
            row.update({f"best.{k}": v for k, v in (summary.get("best") or {}).items()})
            if notes:
                row["notes"], row["_notes_full"] = _notes(member, sweep)
            rows.append(row)
    if not rows:
        raise UsageError("nothing to compare: the paths hold no runs")
    return rows


def start_notes(paths: list[Path]) -> list[str]:
    """Runs of the same seed that did not start from the same point: their initial weights or
    their first mini-batch differ (summary.json ``start``, fingerprints of both). A learner's
    implementation is compared with dlx's only from the same start; a different init, data set
    or model shape says so here instead of hiding in the metrics."""
    from dlx.learner import GROUPS

    by_seed: dict = {}
    for path in paths:
        path = check_dir(path)
        for member in (sweep_members(path) if is_sweep(path) else [path]):
            run = Run(member)
            try:
                summary = run.summary
                overrides = run.overrides
            except UsageError:
                continue
            start = summary.get("start")
            if isinstance(start, dict) and start:
                name = f"{path.name}/{member.name}" if member != path else path.name
                # runs that differ in what a learner replaces (optimizer, model, ...) must start
                # alike; runs that differ in data or epochs on purpose are not set side by side
                setting = tuple(sorted(o for o in overrides if o.lstrip("+~").partition("=")[0]
                                       .partition(".")[0] not in ("seed", "progress", *GROUPS)))
                by_seed.setdefault((summary.get("seed"), setting), []).append((name, start))
    out = []
    for (seed, _), runs in by_seed.items():
        for key, what in (("params_sha256", "initial weights"),
                          ("first_batch_sha256", "first mini-batch")):
            groups: dict = {}
            for name, start in runs:
                if start.get(key):
                    groups.setdefault(start[key], []).append(name)
            if len(groups) > 1:
                parts = " | ".join(", ".join(names) for names in groups.values())
                out.append(f"seed {seed}: these runs did not start from the same {what} "
                           f"(the same within each group: {parts})")
    return out


def columns(rows: list[dict], show_all: bool) -> list[str]:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    config = [k for k in keys if k.startswith("config.")]
    if not show_all:
        chosen = {f"config.{k}" for r in rows for k in r.get("_tuned", ())}
        config = [k for k in config if len({str(r.get(k)) for r in rows}) > 1 or k in chosen]
        # a group option that differs (optimizer.name) implies its own options: show those only
        # where they vary between runs of the same option
        names = {k.rsplit(".", 1)[0] for k in config if k.endswith(".name")}

        def varies_within(k: str) -> bool:
            group = k.rsplit(".", 1)[0]
            by_option: dict[str, set] = {}
            for r in rows:
                by_option.setdefault(str(r.get(f"{group}.name")), set()).add(str(r.get(k)))
            return any(len(v) > 1 for v in by_option.values())

        config = [k for k in config if k.endswith((".name", ".lr"))
                  or k.rsplit(".", 1)[0] not in names or varies_within(k)]
    metrics = [k for k in keys if k.startswith(("final.", "best."))]
    if not show_all:
        metrics = [k for k in metrics if k.split(".", 1)[1] in HEADLINE]
    return ["id", "status", *config, *metrics, *(["notes"] if "notes" in keys else [])]


def resolve_key(rows: list[dict], key: str) -> str:
    """A user's key (``optimizer``, ``optimizer.lr``, ``val/loss``) as a column name."""
    keys = set().union(*rows)
    for candidate in (key, f"config.{key}", f"config.{key}.name", f"final.{key}"):
        if candidate in keys:
            return candidate
    valid = sorted(k.removeprefix("config.") for k in keys if k.startswith("config."))[:12]
    raise UsageError(f"unknown key {key!r} (e.g. {', '.join(valid)}, or a metric like val/loss)")


SETTING = "setting"  # --group-by setting: every config key that differs, except the seed


def group_keys(rows: list[dict], spec: str) -> list[str]:
    """The columns ``--group-by`` names: a comma-separated list of keys (``init,model.activation``),
    or ``setting`` for every config value that differs between the rows apart from the seed
    (a sweep repeated over seeds: one row per setting)."""
    if spec == SETTING and not any(f"config.{SETTING}" in r for r in rows):
        keys = [k for k in columns(rows, show_all=False)
                if k.startswith("config.") and k != "config.seed"]
        if not keys:
            raise UsageError("nothing but the seed differs between these runs: "
                             "--group-by setting has one group; give a key instead")
        return keys
    return [resolve_key(rows, k.strip()) for k in spec.split(",") if k.strip()]


def mean_sd(xs: list[float]) -> str:
    """``mean ± sd`` (sample sd, n - 1) of finite values, the value alone for one, – for none."""
    xs = [x for x in xs if isinstance(x, (int, float)) and not isinstance(x, bool)
          and math.isfinite(x)]
    if not xs:
        return "–"
    mean = sum(xs) / len(xs)
    if len(xs) == 1:
        return f"{mean:.4g}"
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
    return f"{mean:.4g} ± {std:.2g}"


def group(rows: list[dict], keys: str | list[str], cols: list[str]
          ) -> tuple[list[str], list[list[str]]]:
    """mean ± std (and n) of every numeric metric column, per value of ``keys`` (one key or
    several), in the order the values first appear."""
    keys = [keys] if isinstance(keys, str) else keys
    settings = list(dict.fromkeys(tuple(str(r.get(k)) for k in keys) for r in rows))
    metrics = [c for c in cols if c.startswith(("final.", "best."))]
    head = [*(k.removeprefix("config.") for k in keys), "n", *metrics]
    out = []
    for setting in settings:
        members = [r for r in rows if tuple(str(r.get(k)) for k in keys) == setting]
        out.append([*setting, str(len(members)), *(mean_sd([r.get(m) for r in members])
                                                   for m in metrics)])
    return head, out


def fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def table(paths: list[Path], show_all: bool = False, sort: str | None = None,
          group_by: str | None = None, notes: bool = False, full_notes: bool = False
          ) -> tuple[list[str], list[list[str]]]:
    """The head and rows of `dlx compare`; with ``full_notes`` (the CSV), the notes column holds
    every note in full instead of the latest's first line."""
    rows = collect(paths, notes)
    if full_notes:
        for r in rows:
            r["notes"] = r.get("_notes_full", "")
    cols = columns(rows, show_all)
    if sort:
        descending = sort.startswith("-")
        key = resolve_key(rows, sort.lstrip("-"))
        rows.sort(key=lambda r: (r.get(key) is None, r.get(key) if isinstance(r.get(key), (int, float))
                                 else str(r.get(key))), reverse=descending)
    if group_by:
        return group(rows, group_keys(rows, group_by), cols)
    head = [c.removeprefix("config.") for c in cols]
    return head, [[fmt(r.get(c)) for c in cols] for r in rows]


def to_markdown(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    cell = lambda v: v.replace("|", "\\|")  # noqa: E731 -- a | in a note would end the cell
    return "\n".join(lines + ["| " + " | ".join(map(cell, r)) + " |" for r in rows])
