"""`dlx bench --launchers`: a sweep's wall time under Hydra's basic launcher (members one after
another in this process) and the joblib launcher (members in parallel worker processes).

Each repetition runs ``dlx run -m OVERRIDES hydra/launcher=L`` in a subprocess, the launchers
interleaved (basic, joblib, basic, ...) so that a slow moment of a shared machine hits both;
medians are reported and the ratio of the medians. It also checks that every member's
metrics.csv is byte-identical between the launchers, and says what the machine allows:

* **parallel efficiency** ``k``: ``j`` processes of pure-Python CPU work at once take ``k`` times
  as long as the same work done one after another (``1/j`` on ideal cores).
* **ideal**: the basic sweep's record splits its wall time ``T`` into per-member time ``m`` (first
  member's start to last member's end, over ``n``) and a serial rest ``S = T - n m`` (start-up,
  Hydra composing every member to validate the batch, exit). A parallel launcher with ``j``
  workers and no overhead of its own would take ``S + ceil(n / j) * j * k * m``: members run in
  rounds of ``j``, each round as slow as the machine makes ``j`` concurrent jobs. Reported for
  independent cores (``k = 1/j``: what no launcher beats unless members run faster in a worker
  than in the basic launcher's process) and for the measured ``k`` (an estimate: ``k`` is
  noisy on a shared machine).
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

from dlx.records.store import METRICS, sweep_members

LAUNCHERS = ("basic", "joblib")
DEFAULT_SWEEP = ("experiment=optimizers",)

# ~1 s of pure-Python work in a fresh interpreter (no imports: start-up is not the point)
_SPIN = "s = 0\nfor i in range(15_000_000):\n    s += i * i\n"


class SweepFailed(RuntimeError):
    """A benchmarked sweep did not complete; ``code`` is its exit code (2 bad usage, 1 a member
    failed, 130 interrupted)."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def machine_efficiency(jobs: int) -> float:
    """``k``: wall time of ``jobs`` concurrent CPU-bound processes / ``jobs`` x one alone."""
    def wall(n: int) -> float:
        t0 = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", _SPIN]) for _ in range(n)]
        for p in procs:
            p.wait()
        return time.perf_counter() - t0

    alone = wall(1)
    return wall(jobs) / (jobs * alone)


def member_timeline(sweep: Path) -> tuple[int, float, float]:
    """(n members, first member's start, last member's end) from the files of a sweep record:
    a member starts when Hydra writes its .hydra/ files and ends with its last written file."""
    members = sweep_members(sweep)
    if not members:
        raise ValueError(f"{sweep}: no sweep members")
    times = [[f.stat().st_mtime for f in m.rglob("*") if f.is_file()] for m in members]
    return len(members), min(times[0]), max(max(t) for t in times)


def ideal_parallel(total: float, n: int, span: float, jobs: int, k: float) -> dict:
    """The wall time of an overhead-free parallel launcher, from a serial sweep whose ``n``
    members took ``span`` of its ``total`` wall time: on independent cores and at the measured
    efficiency ``k`` (module docstring)."""
    m = span / n
    serial = total - span
    rounds = math.ceil(n / jobs)
    independent = serial + rounds * m
    measured = serial + rounds * jobs * k * m
    return {"members": n, "per_member_s": m, "serial_s": serial, "rounds": rounds,
            "independent_cores_s": independent, "independent_cores_ratio": independent / total,
            "measured_k_s": measured, "measured_k_ratio": measured / total,
            "measured_k_no_serial_ratio": rounds * jobs * k / n}


def _sweep(overrides: list[str], launcher: str, runs: Path) -> tuple[float, Path]:
    """Run one sweep; (wall seconds, sweep directory)."""
    env = {**os.environ, "DLX_RUNS_DIR": str(runs)}
    env.pop("HYDRA_FULL_ERROR", None)
    t0 = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "dlx.cli", "run", "-m", *overrides,
                             f"hydra/launcher={launcher}", "progress=none"],
                            capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SweepFailed(f"`dlx run -m {' '.join(overrides)} hydra/launcher={launcher}` "
                          f"exited {result.returncode}: {last}", result.returncode)
    return wall, Path(result.stdout.strip().splitlines()[-1])


def _identical(a: Path, b: Path) -> bool:
    names = [m.name for m in sweep_members(a)]
    return names == [m.name for m in sweep_members(b)] and all(
        (a / m / METRICS).read_bytes() == (b / m / METRICS).read_bytes() for m in names)


def run(overrides: list[str], repeats: int = 3) -> dict:
    from joblib import cpu_count  # what the launcher's default n_jobs=-1 means: one per core

    jobs = cpu_count()
    walls: dict[str, list[float]] = {launcher: [] for launcher in LAUNCHERS}
    efficiency, totals, spans = [], [], []
    identical = True
    with tempfile.TemporaryDirectory(prefix="dlx-bench-") as tmp:
        for r in range(repeats):
            dirs = {}
            for launcher in LAUNCHERS:  # interleaved
                wall, dirs[launcher] = _sweep(overrides, launcher, Path(tmp) / f"{r}-{launcher}")
                walls[launcher].append(wall)
            n, first, last = member_timeline(dirs["basic"])
            totals.append(walls["basic"][-1])
            spans.append(last - first)
            identical &= _identical(dirs["basic"], dirs["joblib"])
            efficiency.append(machine_efficiency(jobs))  # under the same conditions as the sweeps
    k = statistics.median(efficiency)
    medians = {launcher: statistics.median(v) for launcher, v in walls.items()}
    return {
        "sweep": ["dlx", "run", "-m", *overrides], "repeats": repeats, "order": "interleaved",
        "cpus": jobs, "wall_s": walls, "median_s": medians,
        "joblib_over_basic": medians["joblib"] / medians["basic"],
        "metrics_identical": identical, "machine_efficiency": k,
        "ideal": ideal_parallel(statistics.median(totals), n, statistics.median(spans), jobs, k),
    }


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    console.print(escape(f"{' '.join(report['sweep'])}: {report['repeats']} interleaved repeats "
                         "per launcher"))
    table = Table()
    for col in ("launcher", "median s", "min", "max"):
        table.add_column(col, justify="left" if col == "launcher" else "right")
    for launcher, values in report["wall_s"].items():
        table.add_row(launcher, f"{report['median_s'][launcher]:.2f}", f"{min(values):.2f}",
                      f"{max(values):.2f}")
    console.print(table)
    b = report["ideal"]
    console.print(f"joblib / basic wall time (ratio of medians): "
                  f"[bold]{report['joblib_over_basic']:.2f}[/]")
    console.print(f"member metrics byte-identical: {'yes' if report['metrics_identical'] else 'NO'}")
    console.print(f"ideal: {b['members']} members of {b['per_member_s']:.2f} s run in {b['rounds']} "
                  f"rounds of {report['cpus']} after {b['serial_s']:.2f} s of serial work: on "
                  f"{report['cpus']} independent cores {b['independent_cores_s']:.2f} s = "
                  f"{b['independent_cores_ratio']:.2f} x basic; at this machine's measured "
                  f"efficiency (k = {report['machine_efficiency']:.2f}: {report['cpus']} concurrent "
                  f"CPU-bound processes take k x their serial time) {b['measured_k_s']:.2f} s = "
                  f"{b['measured_k_ratio']:.2f} x ({b['measured_k_no_serial_ratio']:.2f} x if "
                  f"nothing were serial)")
