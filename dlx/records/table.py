"""`dlx list` and `dlx show`: runs and sweeps as rich tables."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dlx.errors import UsageError
from dlx.records.store import (
    check_dir,
    differing,
    is_run,
    is_sweep,
    load_run,
    read_overrides,
    read_summary,
    sweep_members,
)

HEADLINE = ("val/acc", "val/loss", "train/loss")
STATUS_STYLE = {"completed": "green", "diverged": "yellow", "failed": "red",
                "interrupted": "magenta", "running": "cyan"}


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _status(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


def _final(summary: dict) -> list[str]:
    final = summary.get("final") or {}
    return [_fmt(final.get(k)) for k in HEADLINE]


def _duration(summary: dict) -> str:
    s = summary.get("wall_time_s")
    return "-" if s is None else f"{s:.3g} s" if s < 120 else f"{s / 60:.1f} min"


def _console() -> Console:
    # Piped into a file or grep, a table wrapped at 80 columns is unreadable: go wide.
    return Console() if sys.stdout.isatty() else Console(width=200)


def _safe_summary(path: Path) -> dict:
    try:
        return read_summary(path)
    except UsageError:
        return {"status": "unreadable"}


def print_runs(root: Path) -> None:
    table = Table(title=f"runs under {root}", title_justify="left")
    table.add_column("id", no_wrap=True)
    for col in ("experiment", "status", "differs"):
        table.add_column(col, overflow="fold")
    for col in (*HEADLINE, "time"):
        table.add_column(col, justify="right")
    entries = sorted(p for p in root.iterdir() if p.is_dir() and (is_run(p) or is_sweep(p)))
    for path in entries:
        if is_sweep(path):
            members = sweep_members(path)
            summaries = [_safe_summary(m) for m in members]
            counts: dict[str, int] = {}
            for s in summaries:
                counts[s["status"]] = counts.get(s["status"], 0) + 1
            status = ", ".join(f"{n} {_status(k)}" for k, n in sorted(counts.items())) or "empty"
            name = next((s.get("experiment") for s in summaries if s.get("experiment")), "-")
            table.add_row(f"[bold]{path.name}[/]", name, status,
                          f"sweep of {len(members)}", *[""] * (len(HEADLINE) + 1))
            diffs = differing([read_overrides(m) for m in members])
            for member, summary, diff in zip(members, summaries, diffs):
                table.add_row(f"  └ {member.name}", summary.get("experiment", "-"),
                              _status(summary["status"]), ", ".join(diff) or "-",
                              *_final(summary), _duration(summary))
        else:
            summary = _safe_summary(path)
            table.add_row(path.name, summary.get("experiment", "-"), _status(summary["status"]),
                          ", ".join(summary.get("overrides") or []) or "-", *_final(summary),
                          _duration(summary))
    console = _console()
    if not entries:
        console.print(f"no runs under {root} yet: `dlx run` makes one")
        return
    console.print(table)


def print_run(path: Path) -> None:
    path = check_dir(path)
    run = load_run(path)
    s, cfg = run.summary, run.config
    console = _console()
    console.print(f"[bold]{path.name}[/]  {_status(s['status'])}  ({path})")
    opt = cfg.get("optimizer", {})
    highlights = [
        ("experiment", s.get("experiment")),
        ("overrides", " ".join(s.get("overrides") or []) or "-"),
        ("model", cfg.get("model", {}).get("name")),
        ("optimizer", ", ".join(f"{k}={v}" for k, v in opt.items())),
        ("schedule", cfg.get("schedule", {}).get("name")),
        ("regularizer", ", ".join(f"{k}={v}" for k, v in cfg.get("regularizer", {}).items())),
        ("dataset", ", ".join(f"{k}={v}" for k, v in cfg.get("dataset", {}).items())),
        ("init", cfg.get("init", {}).get("name")),
        ("training", f"epochs={cfg.get('epochs')} batch_size={cfg.get('batch_size')} "
                     f"dtype={cfg.get('dtype')} seed={cfg.get('seed')}"),
        ("time", f"{_duration(s)}, {s.get('steps', 0)} steps"
                 + (f", {s['steps_per_s']:.0f} steps/s" if s.get("steps_per_s") else "")),
    ]
    if s.get("diverged_at_step") is not None:
        highlights.append(("diverged", f"at step {s['diverged_at_step']}"))
    if s.get("error"):
        highlights.append(("error", s["error"]))
    info = Table(show_header=False, box=None, pad_edge=False)
    info.add_column(style="bold")
    info.add_column(overflow="fold")
    for k, v in highlights:
        info.add_row(k, _fmt(v))
    console.print(info)

    metrics = Table(title="metrics", title_justify="left")
    for col in ("metric", "final", "best"):
        metrics.add_column(col)
    final, best = s.get("final") or {}, s.get("best") or {}
    for key in final:
        metrics.add_row(key, _fmt(final[key]), _fmt(best.get(key)))
    console.print(metrics)
    files = sorted(str(p.relative_to(path)) for p in path.rglob("*")
                   if p.is_file() and ".hydra" not in p.parts)
    console.print("[bold]files[/] " + "  ".join(files))
