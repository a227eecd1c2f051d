"""`dlx bench --threads`: how long one epoch of the MNIST MLP takes with 1 thread, 2 threads and
the libraries' default, on a quiet machine and next to one competing CPU-bound process.

The case is ``experiment=mnist_mlp``'s training: an MLP 784-256-10 (ReLU), Adam, float32, batch
64, one epoch = ceil(55000 / 64) = 860 steps (forward, loss, backward, update; MNIST-shaped random
data, so no files are needed). Each thread setting has its own model and is limited with
threadpoolctl as a run is (:mod:`dlx.threads`); "default" is no limit, what the libraries chose
at start-up (one thread per core unless ``OPENBLAS_NUM_THREADS`` etc. say otherwise).

Repetitions are interleaved: in each, the settings are timed once on the quiet machine and once
while the benchmark's own competitor runs (a separate Python process spinning on pure-Python
arithmetic, started before and stopped after each loaded block); the order of the settings
rotates from one repetition to the next. Reported: medians, their ratio loaded / quiet per
setting (the issue's criterion: at most 2 for the default), CPU seconds per wall second of the
timed process (above 1 is several threads working, or spin-waiting), the competitor's share of
a core while it ran, threadpoolctl's report per setting, the load average at the start and
end, and per timing the cores that other processes used meanwhile ("others", from /proc/stat on
Linux): "quiet" means without the competitor, and a shared machine is not always quiet.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext

import numpy as np

from dlx import threads as _threads
from dlx.bench import numpy_mlp_step

SIZES = [784, 256, 10]
BATCH = 64           # experiment=mnist_mlp's batch_size
N_TRAIN = 55000      # MNIST's 60000 training images less the 5000 held out for validation
SETTINGS = (1, 2, None)  # None: the libraries' default (no limit)
CRITERION = 2.0      # the issue's: loaded / quiet at most 2 for the default threads
CONDITIONS = ("quiet", "loaded")

# The competitor: pure-Python arithmetic (no BLAS, no threads), one core's worth of work.
_SPIN = ("import sys\nsys.stdout.write('ready\\n')\nsys.stdout.flush()\ns = 0\n"
         "while True:\n    s = (s + 1) % 1000003\n")


def epoch_steps(n_train: int = N_TRAIN, batch: int = BATCH) -> int:
    """Parameter updates in one epoch (the last batch may be smaller: counted as one)."""
    return math.ceil(n_train / batch)


def label(setting: int | None) -> str:
    return "default" if setting is None else str(setting)


class Competitor:
    """One CPU-bound process for the duration of a ``with`` block; ``cpu_share`` afterwards is
    the CPU seconds it got per wall second it ran (1.0: a whole core)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.cpu_share: float | None = None

    def __enter__(self) -> "Competitor":
        env = {**os.environ, **{v: "1" for v in _threads.ENV_VARS}}
        self._cpu0, self._t0 = _children_cpu(), time.perf_counter()  # its start-up is CPU work too
        self.proc = subprocess.Popen([sys.executable, "-c", _SPIN], stdout=subprocess.PIPE,
                                     env=env, text=True)
        self.proc.stdout.readline()  # "ready": started and spinning
        return self

    def __exit__(self, *exc) -> None:
        wall = time.perf_counter() - self._t0
        self.proc.terminate()
        self.proc.wait()
        self.proc.stdout.close()
        cpu = _children_cpu() - self._cpu0
        self.cpu_share = cpu / wall if wall > 0 and cpu >= 0 else None


def _children_cpu() -> float:
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Unix
        return float("nan")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _busy_s() -> float | None:
    """CPU seconds every process on the machine has used since boot (Linux's /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:9]]
        return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle, iowait
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (Linux's /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def background_cores(busy: float | None, own: float, competitor: float | None,
                     wall: float) -> float | None:
    """Cores' worth of CPU that other users of the machine took during a timing: the machine's
    busy seconds less this process's and the competitor's, per wall second."""
    if busy is None or competitor is None or wall <= 0:
        return None
    return max(busy - own - competitor, 0.0) / wall


def _limited(setting: int | None):
    from threadpoolctl import threadpool_limits

    return nullcontext() if setting is None else threadpool_limits(limits=setting)


def summarize(times: dict[str, list[float]], cpu: dict[str, list[float]],
              background: dict[str, list] | None = None) -> dict:
    """Medians per condition of the epoch times, of CPU seconds per wall second and of the
    background cores, and loaded / quiet (the ratio of the medians)."""
    med = {c: statistics.median(v) for c, v in times.items() if v}
    out = {"median_epoch_s": med,
           "cpu_per_wall": {c: statistics.median(a / b for a, b in zip(cpu[c], times[c]))
                            for c in times if times[c]}}
    if background is not None:
        out["median_background_cores"] = {
            c: statistics.median(v) if v and None not in v else None for c, v in background.items()}
    if "quiet" in med and "loaded" in med:
        out["loaded_over_quiet"] = med["loaded"] / med["quiet"]
    return out


def run(settings: tuple = SETTINGS, steps: int | None = None, repeats: int = 5,
        warmup: int = 20, batch: int = BATCH, n_train: int = N_TRAIN,
        conditions: tuple[str, ...] = CONDITIONS) -> dict:
    """Time the settings (see the module docstring); times are per epoch of ``n_train``
    examples, measured over ``steps`` steps (default: the whole epoch) and scaled."""
    import threadpoolctl

    per_epoch = epoch_steps(n_train, batch)
    steps = steps or per_epoch
    scale = per_epoch / steps
    rng = np.random.default_rng(0)
    X = rng.standard_normal((16, batch, SIZES[0]), dtype=np.float32)
    Y = rng.integers(0, SIZES[-1], (16, batch))
    data = list(zip(X, Y))
    steppers = {s: numpy_mlp_step(SIZES, batch, np.random.default_rng(1)) for s in settings}
    default_libraries = _threads.libraries()
    times = {s: {c: [] for c in conditions} for s in settings}
    cpu = {s: {c: [] for c in conditions} for s in settings}
    background = {s: {c: [] for c in conditions} for s in settings}
    libraries, shares, load = {}, [], {"start": list(os.getloadavg())}

    def chunk(s, n: int, competitor: Competitor | None = None) -> tuple[float, float, float | None]:
        """(wall s, this process's CPU s, background cores) of ``n`` steps of setting ``s``."""
        step = steppers[s]

        def other() -> float | None:
            return _process_cpu_s(competitor.proc.pid) if competitor is not None else 0.0

        with _limited(s):
            libraries[s] = _threads.libraries()
            b0, o0 = _busy_s(), other()
            c0, t0 = time.process_time(), time.perf_counter()
            for i in range(n):
                step(*data[i % len(data)])
            wall, own = time.perf_counter() - t0, time.process_time() - c0
            b1, o1 = _busy_s(), other()
        busy = b1 - b0 if None not in (b0, b1) else None
        return wall, own, background_cores(busy, own, o1 - o0 if None not in (o0, o1) else None,
                                           wall)

    for s in settings:
        chunk(s, warmup)
    for r in range(repeats):
        order = settings[r % len(settings):] + settings[:r % len(settings)]  # rotate
        for c in conditions:
            with Competitor() if c == "loaded" else nullcontext() as competitor:
                for s in order:
                    wall, proc, others = chunk(s, steps, competitor)
                    times[s][c].append(wall * scale)
                    cpu[s][c].append(proc * scale)
                    background[s][c].append(others)
            if competitor is not None:
                shares.append(competitor.cpu_share)
    load["end"] = list(os.getloadavg())

    results = []
    for s in settings:
        entry = {"threads": s, "label": label(s), "libraries": libraries[s],
                 "epoch_s": times[s], "cpu_s": cpu[s], "background_cores": background[s],
                 **summarize(times[s], cpu[s], background[s])}
        results.append(entry)
    report = {
        "kind": "threads",
        "case": {"description": f"MLP {'-'.join(map(str, SIZES))} ReLU, batch {batch}, Adam, "
                                f"float32: one epoch of {n_train} examples ({per_epoch} steps)",
                 "batch": batch, "n_train": n_train, "steps_per_epoch": per_epoch,
                 "steps_timed": steps},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "numpy": np.__version__,
                    "threadpoolctl": threadpoolctl.__version__,
                    "env": {v: os.environ[v] for v in _threads.ENV_VARS if v in os.environ}},
        "settings": {"repeats": repeats, "warmup_steps": warmup, "order": "interleaved",
                     "competitor": "one Python process spinning on pure-Python arithmetic"},
        "default_libraries": default_libraries,
        "load_average": load,
        "competitor_cpu_share": statistics.median(shares) if shares and None not in shares
        else None,
        "dlx_default": _threads.DEFAULT,
        "results": results,
    }
    chosen = next((e for e in results if e["threads"] == _threads.DEFAULT), None)
    if chosen is not None and "loaded_over_quiet" in chosen:
        report["criterion"] = {"threads": _threads.DEFAULT, "max_loaded_over_quiet": CRITERION,
                               "loaded_over_quiet": chosen["loaded_over_quiet"],
                               "met": chosen["loaded_over_quiet"] <= CRITERION}
    return report


def _threads_in_force(libraries: list[dict]) -> str:
    return ", ".join(f"{lib['internal_api']} {lib['num_threads']}" for lib in libraries) or "-"


def _row(e: dict) -> list[str]:
    med, cpw, bg = e["median_epoch_s"], e["cpu_per_wall"], e.get("median_background_cores", {})
    ratio = e.get("loaded_over_quiet")
    return [e["label"], _threads_in_force(e["libraries"]),
            *(f"{med[c]:.2f}" if c in med else "-" for c in CONDITIONS),
            f"{ratio:.2f}" if ratio is not None else "-",
            *(f"{cpw[c]:.2f}" if c in cpw else "-" for c in CONDITIONS),
            *(f"{bg[c]:.2f}" if bg.get(c) is not None else "-" for c in CONDITIONS)]


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=140)
    la = report["load_average"]
    console.print(f"{report['case']['description']}; {report['settings']['repeats']} interleaved "
                  f"repeats; load average (1, 5, 15 min) at start "
                  f"{', '.join(f'{x:.2f}' for x in la['start'])}, at end "
                  f"{', '.join(f'{x:.2f}' for x in la['end'])}; {report['machine']['cpus']} CPUs")
    table = Table()
    for col in ("threads", "in force", "quiet s", "loaded s", "loaded / quiet", "CPU/wall quiet",
                "CPU/wall loaded", "others quiet", "others loaded"):
        table.add_column(col, justify="left" if col in ("threads", "in force") else "right")
    for e in report["results"]:
        table.add_row(*_row(e))
    console.print(table)
    console.print("seconds per epoch (medians); CPU/wall: this process's CPU seconds per second "
                  "(> 1: threads working or spin-waiting); others: cores used by other processes "
                  "than the benchmark and its competitor while it timed (Linux only)")
    if report["competitor_cpu_share"] is not None:
        console.print(f"competitor: {report['competitor_cpu_share']:.2f} of a core while it ran")
    crit = report.get("criterion")
    if crit:
        console.print(f"dlx's default threads={crit['threads']}: loaded / quiet "
                      f"[bold]{crit['loaded_over_quiet']:.2f}[/] (criterion <= "
                      f"{crit['max_loaded_over_quiet']:g}: {'met' if crit['met'] else 'NOT met'})")
