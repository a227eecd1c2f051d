"""`dlx bench`: training throughput of the from-scratch NumPy model against PyTorch on the CPU.

The case: an MLP 784-256-10 (ReLU) on MNIST-shaped random data, batch 128, Adam, float32 —
one training step = forward, softmax cross-entropy, backward, optimizer update. Repetitions of
the two backends are interleaved (numpy, torch, numpy, torch, ...) so that a slow moment of a
shared machine hits both alike; medians are reported, and the ratio of the medians.
Achieved GFLOP/s (the step's matmul FLOPs / time) is set against a measured sgemm peak.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from dlx.nn import SoftmaxCrossEntropy, build_model
from dlx.optim import Adam


@dataclass
class CaseResult:
    name: str
    description: str
    flops_per_step: float
    batch: int
    samples_per_s: dict[str, list[float]] = field(default_factory=dict)

    def median(self, backend: str) -> float:
        return statistics.median(self.samples_per_s[backend])


def _mlp_flops(batch: int, sizes: list[int]) -> float:
    """Matmul FLOPs of one step: forward x W, backward dW = x^T dout for every layer, and
    dx = dout W^T for every layer but the first (nothing needs the input's gradient)."""
    macs = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    first = sizes[0] * sizes[1]
    return 2.0 * batch * (3 * macs - first)


def numpy_mlp_step(sizes: list[int], batch: int, rng) -> Callable[[np.ndarray, np.ndarray], float]:
    model = build_model({"name": "mlp", "hidden": sizes[1:-1]}, {"name": "he_normal"}, sizes[0],
                        sizes[-1], rng, np.float32)
    loss_fn = SoftmaxCrossEntropy()
    opt = Adam(model.parameters(), lr=1e-3)

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn.forward(model.forward(x), y)
        model.backward(loss_fn.backward())
        opt.step()
        return loss

    return step


def torch_mlp_step(sizes: list[int], batch: int, rng):
    import torch

    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).to(torch.float32)
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def sgemm_gflops(backend: str, n: int = 1024, repeats: int = 5) -> float:
    """Best of a few n x n float32 matmuls: the machine's practical matmul peak here."""
    if backend == "torch":
        import torch

        a, b = torch.randn(n, n, dtype=torch.float32), torch.randn(n, n, dtype=torch.float32)
        mm = torch.mm
    else:
        rng = np.random.default_rng(0)
        a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
        mm = np.matmul
    mm(a, b)
    best = min(_timed(lambda: mm(a, b)) for _ in range(repeats))
    return 2.0 * n**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_mlp_case(backends: list[str], steps: int, repeats: int, warmup: int,
                 batch: int = 128, hidden: int = 256) -> CaseResult:
    sizes = [784, hidden, 10]
    rng = np.random.default_rng(0)
    n_batches = 16
    X = rng.standard_normal((n_batches, batch, 784), dtype=np.float32)
    Y = rng.integers(0, 10, (n_batches, batch))
    steppers, inputs = {}, {}
    for b in backends:
        if b == "numpy":
            steppers[b] = numpy_mlp_step(sizes, batch, rng)
            inputs[b] = list(zip(X, Y))
        else:
            import torch

            steppers[b] = torch_mlp_step(sizes, batch, rng)
            inputs[b] = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in zip(X, Y)]
    result = CaseResult("mlp", f"MLP {'-'.join(map(str, sizes))} ReLU, batch {batch}, Adam, "
                        "float32", _mlp_flops(batch, sizes), batch, {b: [] for b in backends})

    def chunk(b: str, n: int) -> float:
        step, data = steppers[b], inputs[b]
        start = time.perf_counter()
        for i in range(n):
            step(*data[i % n_batches])
        return time.perf_counter() - start

    for b in backends:
        chunk(b, warmup)
    for _ in range(repeats):
        for b in backends:  # interleaved
            result.samples_per_s[b].append(steps * batch / chunk(b, steps))
    return result


def run(steps: int = 50, repeats: int = 7, warmup: int = 10, include_torch: bool = True) -> dict:
    backends = ["numpy"]
    torch_version = None
    if include_torch:
        try:
            import torch

            backends.append("torch")
            torch_version = torch.__version__
        except ImportError:
            pass
    peaks = {b: sgemm_gflops(b) for b in backends}
    case = run_mlp_case(backends, steps, repeats, warmup)
    report = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "numpy": np.__version__,
                    "torch": torch_version},
        "settings": {"steps_per_repeat": steps, "repeats": repeats, "warmup_steps": warmup,
                     "order": "interleaved"},
        "sgemm_peak_gflops": peaks,
        "cases": [],
    }
    entry = asdict(case)
    entry["median_samples_per_s"] = {b: case.median(b) for b in backends}
    entry["achieved_gflops"] = {b: case.median(b) / case.batch * case.flops_per_step / 1e9
                                for b in backends}
    entry["fraction_of_peak"] = {b: entry["achieved_gflops"][b] / max(peaks.values())
                                 for b in backends}
    if "torch" in backends:
        entry["numpy_over_torch"] = case.median("numpy") / case.median("torch")
    report["cases"].append(entry)
    return report


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    peaks = report["sgemm_peak_gflops"]
    console.print("sgemm peak (1024x1024 float32): "
                  + ", ".join(f"{b} {v:.1f} GFLOP/s" for b, v in peaks.items()))
    for case in report["cases"]:
        table = Table(title=case["description"], title_justify="left")
        for col in ("backend", "median samples/s", "min", "max", "GFLOP/s", "of peak"):
            table.add_column(col, justify="right" if col != "backend" else "left")
        for b, values in case["samples_per_s"].items():
            table.add_row(b, f"{case['median_samples_per_s'][b]:,.0f}", f"{min(values):,.0f}",
                          f"{max(values):,.0f}", f"{case['achieved_gflops'][b]:.1f}",
                          f"{case['fraction_of_peak'][b]:.0%}")
        console.print(table)
        if "numpy_over_torch" in case:
            console.print(f"NumPy / torch throughput (ratio of medians): "
                          f"[bold]{case['numpy_over_torch']:.2f}[/]")
        else:
            console.print("torch not installed: NumPy only (pip install 'dlx[torch]' to compare)")


def save(report: dict, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return out
