"""`dlx bench --launchers`: a sweep's wall time under Hydra's basic launcher (members one after
another in this process) and the joblib launcher (members in parallel worker processes).

Each repetition runs ``dlx run -m OVERRIDES hydra/launcher=L`` in a subprocess, the launchers
interleaved (basic, joblib, basic, ...) so that a slow moment of a shared machine hits both;
medians are reported and the ratio of the medians. It also checks that every member's
metrics.csv is byte-identical between the launchers, and says what the machine allows:

* **parallel efficiency** ``k``: ``j`` processes of pure-Python CPU work at once take ``k`` times
  as long as the same work done one after another (``1/j`` on ideal cores).
* **bound**: the basic sweep's record splits its wall time ``T`` into per-member time ``m`` (first
  member's start to last member's end, over ``n``) and a serial rest ``S = T - n m`` (start-up,
  Hydra composing every member to validate the batch, exit). A parallel launcher with ``j``
  workers and no overhead of its own still needs ``S + ceil(n / j) * j * k * m``: members run in
  rounds of ``j``, each round as slow as the machine makes ``j`` concurrent jobs.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAUNCHERS = ("basic", "joblib")
DEFAULT_SWEEP = ("experiment=optimizers",)

# ~1 s of pure-Python work in a fresh interpreter (no imports: start-up is not the point)
_SPIN = "s = 0\nfor i in range(15_000_000):\n    s += i * i\n"


def machine_efficiency(jobs: int, repeats: int = 3) -> float:
    """``k``: wall time of ``jobs`` concurrent CPU-bound processes / ``jobs`` x one alone."""
    def wall(n: int) -> float:
        t0 = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", _SPIN]) for _ in range(n)]
        for p in procs:
            p.wait()
        return time.perf_counter() - t0

    ratios = []
    for _ in range(repeats):
        alone = wall(1)
        ratios.append(wall(jobs) / (jobs * alone))
    return statistics.median(ratios)


def member_timeline(sweep: Path) -> tuple[int, float, float]:
    """(n members, first member's start, last member's end) from the files of a sweep record:
    a member starts when Hydra writes its .hydra/ files and ends with its last written file."""
    members = sorted((p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()),
                     key=lambda p: int(p.name))
    if not members:
        raise ValueError(f"{sweep}: no sweep members")
    times = [[f.stat().st_mtime for f in m.rglob("*") if f.is_file()] for m in members]
    return len(members), min(times[0]), max(max(t) for t in times)


def parallel_bound(total: float, n: int, span: float, jobs: int, k: float) -> dict:
    """What no parallel launcher can beat on this machine, from a serial sweep of ``n`` members
    whose members took ``span`` of its ``total`` wall time (module docstring)."""
    m = span / n
    serial = total - span
    rounds = math.ceil(n / jobs)
    best = serial + rounds * jobs * k * m
    return {"members": n, "per_member_s": m, "serial_s": serial, "rounds": rounds,
            "best_parallel_s": best, "best_ratio": best / total,
            "best_ratio_without_serial": rounds * jobs * k / n}


def _sweep(overrides: list[str], launcher: str, runs: Path) -> tuple[float, float, Path]:
    """Run one sweep; (wall seconds, start time, sweep directory)."""
    env = {**os.environ, "DLX_RUNS_DIR": str(runs)}
    env.pop("HYDRA_FULL_ERROR", None)
    start = time.time()
    t0 = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "dlx.cli", "run", "-m", *overrides,
                             f"hydra/launcher={launcher}", "progress=none"],
                            capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"`dlx run -m {' '.join(overrides)} hydra/launcher={launcher}` "
                           f"exited {result.returncode}: {last}")
    return wall, start, Path(result.stdout.strip().splitlines()[-1])


def _identical(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir() if p.name.isdigit())
    return names == sorted(p.name for p in b.iterdir() if p.name.isdigit()) and all(
        (a / m / "metrics.csv").read_bytes() == (b / m / "metrics.csv").read_bytes()
        for m in names)


def run(overrides: list[str], repeats: int = 3) -> dict:
    walls: dict[str, list[float]] = {launcher: [] for launcher in LAUNCHERS}
    identical = True
    spans = []
    with tempfile.TemporaryDirectory(prefix="dlx-bench-") as tmp:
        for r in range(repeats):
            dirs = {}
            for launcher in LAUNCHERS:  # interleaved
                wall, start, sweep = _sweep(overrides, launcher, Path(tmp) / f"{r}-{launcher}")
                walls[launcher].append(wall)
                dirs[launcher] = sweep
                if launcher == "basic":
                    n, first, last = member_timeline(sweep)
                    spans.append((wall, last - first, n))
            identical &= _identical(dirs["basic"], dirs["joblib"])
    from joblib import cpu_count  # what the launcher's default n_jobs=-1 means: one per core

    jobs = cpu_count()
    k = machine_efficiency(jobs)
    total, span = (statistics.median(x[i] for x in spans) for i in (0, 1))
    n = spans[0][2]
    medians = {launcher: statistics.median(v) for launcher, v in walls.items()}
    return {
        "sweep": ["dlx", "run", "-m", *overrides], "repeats": repeats, "order": "interleaved",
        "cpus": jobs, "wall_s": walls, "median_s": medians,
        "joblib_over_basic": medians["joblib"] / medians["basic"],
        "metrics_identical": identical, "machine_efficiency": k,
        "bound": parallel_bound(total, n, span, jobs, k),
    }


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"{' '.join(report['sweep'])}: {report['repeats']} interleaved repeats per launcher")
    table = Table()
    for col in ("launcher", "median s", "min", "max"):
        table.add_column(col, justify="left" if col == "launcher" else "right")
    for launcher, values in report["wall_s"].items():
        table.add_row(launcher, f"{report['median_s'][launcher]:.2f}", f"{min(values):.2f}",
                      f"{max(values):.2f}")
    console.print(table)
    b = report["bound"]
    console.print(f"joblib / basic wall time (ratio of medians): "
                  f"[bold]{report['joblib_over_basic']:.2f}[/]")
    console.print(f"member metrics byte-identical: {'yes' if report['metrics_identical'] else 'NO'}")
    console.print(f"this machine: {report['cpus']} concurrent CPU-bound processes take "
                  f"{report['machine_efficiency']:.2f} x their serial time (ideal "
                  f"{1 / report['cpus']:.2f})")
    console.print(f"bound: {b['members']} members of {b['per_member_s']:.2f} s in {b['rounds']} "
                  f"rounds + {b['serial_s']:.2f} s serial -> no parallel launcher beats "
                  f"{b['best_parallel_s']:.2f} s = {b['best_ratio']:.2f} x basic here "
                  f"({b['best_ratio_without_serial']:.2f} x even with no serial part)")
