"""`dlx bench`: training throughput of the from-scratch NumPy model against PyTorch on the CPU.

The cases: an MLP 784-256-10 (ReLU) on MNIST-shaped random data, batch 128, Adam, float32; a
small transformer; LeNet-5 (`model=cnn`'s defaults) on 1x28x28 images, batch 64, Adam, float32,
with each convolution's forward + backward timed on its own as well. One training step =
forward, softmax cross-entropy, backward, optimizer update. Repetitions of
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

from dlx.assemble import build_model
from dlx.data.spec import DataSpec
from dlx.nn import SoftmaxCrossEntropy
from dlx.nn.transformer import block_params
from dlx.optim import Adam


@dataclass
class CaseResult:
    name: str
    description: str
    flops_per_step: float
    batch: int
    samples_per_s: dict[str, list[float]] = field(default_factory=dict)
    layers: list[dict] = field(default_factory=list)  # per-layer GFLOP/s, where measured

    def median(self, backend: str) -> float:
        return statistics.median(self.samples_per_s[backend])


def _mlp_flops(batch: int, sizes: list[int]) -> float:
    """Matmul FLOPs of one step: forward x W, backward dW = x^T dout for every layer, and
    dx = dout W^T for every layer but the first (nothing needs the input's gradient)."""
    macs = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    first = sizes[0] * sizes[1]
    return 2.0 * batch * (3 * macs - first)


def numpy_mlp_step(sizes: list[int], batch: int, rng) -> Callable[[np.ndarray, np.ndarray], float]:
    model = build_model({"name": "mlp", "hidden": sizes[1:-1]}, {"name": "he_normal"},
                        DataSpec.features(sizes[0], sizes[-1]), rng, np.float32)
    return _numpy_step(model, SoftmaxCrossEntropy(), Adam(model.parameters(), lr=1e-3))


def _numpy_step(model, loss_fn, opt):
    """One training step of the from-scratch library: zero_grad, forward, backward, step."""
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
    return torch_step(torch.nn.Sequential(*layers).to(torch.float32))


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
    _time_interleaved(result, steppers, inputs, steps, repeats, warmup)
    return result


def numpy_transformer_step(cfg: dict):
    from dlx.nn.losses import SequenceCrossEntropy
    from dlx.nn.transformer import TransformerLM
    from dlx.optim import AdamW

    model = TransformerLM(cfg["vocab"], cfg["seq"], n_layers=cfg["layers"], d_model=cfg["d"],
                          n_heads=cfg["heads"])
    rng = np.random.default_rng(0)
    for p in model.parameters():
        if p.decay:
            p.data[...] = rng.normal(0, 0.02, p.data.shape)
    return _numpy_step(model, SequenceCrossEntropy(), AdamW(model.parameters(), lr=1e-3))


def torch_transformer_step(cfg: dict):
    """The same computation in torch: pre-LN blocks, causal SDPA, tanh-GELU MLP, AdamW."""
    import torch
    from torch import nn

    d, h = cfg["d"], cfg["heads"]

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(approximate="tanh"),
                                     nn.Linear(4 * d, d))

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = (t.view(B, T, h, C // h).transpose(1, 2)
                       for t in self.qkv(self.ln1(x)).split(C, dim=2))
            y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
            return x + self.mlp(self.ln2(x))

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok, self.pos = nn.Embedding(cfg["vocab"], d), nn.Embedding(cfg["seq"], d)
            self.blocks = nn.Sequential(*[Block() for _ in range(cfg["layers"])])
            self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, cfg["vocab"])

        def forward(self, idx):
            x = self.tok(idx) + self.pos.weight[: idx.shape[1]]
            return self.head(self.ln(self.blocks(x)))

    model = LM()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step(x, y):
        opt.zero_grad()
        logits = model(x)
        loss = nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1))
        loss.backward()
        opt.step()
        return loss

    return step


def _transformer_flops(cfg: dict) -> float:
    """6 x non-embedding parameters x tokens, plus attention's 12 x layers x T x d per token
    (Kaplan et al. 2020's training-compute estimate)."""
    d, L, T, B = cfg["d"], cfg["layers"], cfg["seq"], cfg["batch"]
    n = block_params(L, d) + d * cfg["vocab"]
    return 6.0 * n * B * T + 12.0 * L * T * d * B * T


def run_transformer_case(backends: list[str], steps: int, repeats: int, warmup: int) -> CaseResult:
    cfg = {"vocab": 16, "seq": 16, "batch": 64, "d": 128, "layers": 2, "heads": 4}
    rng = np.random.default_rng(1)
    X = rng.integers(0, cfg["vocab"], (8, cfg["batch"], cfg["seq"]))
    Y = rng.integers(0, cfg["vocab"], (8, cfg["batch"], cfg["seq"]))
    steppers, inputs = {}, {}
    for b in backends:
        if b == "numpy":
            steppers[b], inputs[b] = numpy_transformer_step(cfg), list(zip(X, Y))
        else:
            import torch

            steppers[b] = torch_transformer_step(cfg)
            inputs[b] = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in zip(X, Y)]
    result = CaseResult("transformer", "transformer d_model 128, 2 layers, 4 heads, sequence 16,"
                        " batch 64, AdamW, float32", _transformer_flops(cfg), cfg["batch"],
                        {b: [] for b in backends})
    _time_interleaved(result, steppers, inputs, steps, repeats, warmup)
    return result


def numpy_cnn_model(rng):
    return build_model({"name": "cnn"}, {"name": "he_normal"}, DataSpec.image(1, 28, 28, 10),
                       rng, np.float32)


def torch_twin(model):
    """torch's copy of a NumPy model (dlx.training.torch_backend.to_torch), same weights."""
    import torch

    from dlx.training.torch_backend import to_torch

    net, pairs = to_torch(model)
    with torch.no_grad():
        for p, tp, kind in pairs:
            tp.copy_(torch.from_numpy(p.data.T.copy() if kind == "W" else p.data))
    return net.to(torch.float32)


def torch_step(net, loss_fn=None):
    """One Adam step of ``net`` in torch; ``loss_fn(logits, y)`` defaults to cross-entropy."""
    import torch

    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = loss_fn or torch.nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def twin_steppers(backends, model, loss_fn, X, Y, torch_loss=None) -> tuple[dict, dict]:
    """(steppers, inputs): a NumPy model's Adam step with ``loss_fn`` and its torch twin's (the
    same weights, ``torch_loss``), each with the batches (X, Y) in its own array type."""
    steppers, inputs = {}, {}
    for b in backends:
        if b == "numpy":
            steppers[b] = _numpy_step(model, loss_fn, Adam(model.parameters(), lr=1e-3))
            inputs[b] = list(zip(X, Y))
        else:
            import torch

            steppers[b] = torch_step(torch_twin(model), torch_loss)
            inputs[b] = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in zip(X, Y)]
    return steppers, inputs


def conv_flops(layer, batch: int, shape) -> float:
    """Matmul FLOPs of one convolution's forward and backward: the output (2 N Ho Wo F C kH kW),
    dW the same, and dx the same again when the layer passes a gradient to its input."""
    f, c, kh, kw = layer.W.data.shape
    _, h, w = shape
    ho = (h + 2 * layer.padding - kh) // layer.stride + 1
    wo = (w + 2 * layer.padding - kw) // layer.stride + 1
    return 2.0 * batch * ho * wo * f * c * kh * kw * (3 if layer.input_grad else 2)


def _conv_layers(model, shape) -> list[tuple[object, tuple[int, int, int]]]:
    """Each Conv2d of a Sequential model with the (C, H, W) shape of its input."""
    from dlx.nn.conv import Conv2d

    x, found = np.zeros((1, *shape), dtype=np.float32), []
    for layer in model.layers:
        if isinstance(layer, Conv2d):
            found.append((layer, x.shape[1:]))
        x = layer.forward(x)
    return found


def run_cnn_case(backends: list[str], steps: int, repeats: int, warmup: int,
                 batch: int = 64) -> CaseResult:
    rng = np.random.default_rng(2)
    X = rng.standard_normal((8, batch, 1, 28, 28), dtype=np.float32)
    Y = rng.integers(0, 10, (8, batch))
    model = numpy_cnn_model(rng)
    convs = _conv_layers(model, (1, 28, 28))
    # the dense part 400-120-84-10 as the MLP's count, plus its first layer's dx (the convs
    # below need it), plus the convolutions
    flops = (_mlp_flops(batch, [400, 120, 84, 10]) + 2.0 * batch * 400 * 120
             + sum(conv_flops(layer, batch, shape) for layer, shape in convs))
    steppers, inputs = twin_steppers(backends, model, SoftmaxCrossEntropy(), X, Y)
    result = CaseResult("cnn", f"LeNet-5 (model=cnn) on 1x28x28, batch {batch}, Adam, float32",
                        flops, batch, {b: [] for b in backends})
    _time_interleaved(result, steppers, inputs, steps, repeats, warmup)
    result.layers = _time_convs(backends, convs, batch, steps, repeats, rng)
    return result


def _time_convs(backends, convs, batch, steps, repeats, rng) -> list[dict]:
    """Forward + backward of each convolution alone, the backends interleaved: median GFLOP/s."""
    out = []
    for i, (layer, shape) in enumerate(convs):
        x = rng.standard_normal((batch, *shape), dtype=np.float32)
        dout = rng.standard_normal(layer.forward(x).shape, dtype=np.float32)
        runners = {}
        for b in backends:
            if b == "numpy":
                def run(layer=layer, x=x, dout=dout):
                    layer.forward(x)
                    layer.backward(dout)
            else:
                import torch

                conv = torch_twin(layer)
                tx = torch.from_numpy(x).requires_grad_(layer.input_grad)
                tdout = torch.from_numpy(dout)

                def run(conv=conv, tx=tx, tdout=tdout):
                    conv(tx).backward(tdout)
            runners[b] = run
        times: dict[str, list[float]] = {b: [] for b in backends}
        for b in backends:
            runners[b]()  # warm-up
        for _ in range(repeats):
            for b in backends:
                run = runners[b]
                start = time.perf_counter()
                for _ in range(steps):
                    run()
                times[b].append((time.perf_counter() - start) / steps)
        gflop = conv_flops(layer, batch, shape) / 1e9
        f, c, kh, kw = layer.W.data.shape
        out.append({"layer": f"conv{i + 1} {c}->{f} {kh}x{kw} pad {layer.padding} on "
                             f"{shape[1]}x{shape[2]}", "gflop": gflop,
                    "gflops": {b: gflop / statistics.median(t) for b, t in times.items()}})
    return out


def run_lstm_case(backends: list[str], steps: int, repeats: int, warmup: int, batch: int = 32,
                  seq: int = 64, hidden: int = 128, vocab: int = 65) -> CaseResult:
    """A character-level LSTM language model's step (`model=rnn`: a 128-wide embedding, one
    LSTM layer, a head at every position; tiny Shakespeare's 65 symbols) against its torch twin
    (torch.nn.LSTM, the same weights)."""
    from dlx.nn.losses import SequenceCrossEntropy

    rng = np.random.default_rng(3)
    model = build_model({"name": "rnn", "cell": "lstm", "hidden": hidden, "embedding": hidden},
                        {"name": "uniform", "a": hidden ** -0.5}, DataSpec.tokens(vocab, seq),
                        rng, np.float32)
    X = rng.integers(0, vocab, (8, batch, seq))
    Y = rng.integers(0, vocab, (8, batch, seq))

    def torch_loss(logits, y):  # (B, T, V) against (B, T): every position's next symbol
        import torch

        return torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))

    steppers, inputs = twin_steppers(backends, model, SequenceCrossEntropy(), X, Y, torch_loss)
    # matmul FLOPs: the gates' input and recurrent products (8 H (E + H) per position forward,
    # twice that backward) and the head (2 H V forward, 4 H V backward)
    flops = batch * seq * (3 * 2 * 4 * hidden * (hidden + hidden) + 3 * 2 * hidden * vocab)
    result = CaseResult("lstm", f"LSTM language model (model=rnn), embedding {hidden}, hidden "
                        f"{hidden}, one layer, sequence {seq}, batch {batch}, {vocab} symbols, Adam, "
                        "float32", flops, batch, {b: [] for b in backends})
    _time_interleaved(result, steppers, inputs, steps, repeats, warmup)
    return result


def _time_interleaved(result: CaseResult, steppers, inputs, steps, repeats, warmup) -> None:
    def chunk(b: str, n: int) -> float:
        step, data = steppers[b], inputs[b]
        start = time.perf_counter()
        for i in range(n):
            step(*data[i % len(data)])
        return time.perf_counter() - start

    for b in steppers:
        chunk(b, warmup)
    for _ in range(repeats):
        for b in steppers:  # interleaved
            result.samples_per_s[b].append(steps * result.batch / chunk(b, steps))


def run(steps: int = 50, repeats: int = 7, warmup: int = 10, include_torch: bool = True,
        cases: tuple[str, ...] = ("mlp", "transformer", "cnn", "lstm"),
        threads: int | None = 1) -> dict:
    """Time ``cases``; every library's thread pools set to ``threads`` (default 1, as a run's
    default; None = the libraries' own), the same for both backends, for the whole benchmark.

    Why not the libraries' defaults: interleaved, each library's idle OpenMP workers spin-wait
    while the other computes; on 2 busy cores that cost NumPy 40x in the CNN case and swung the
    MLP ratio from 4 to 0.16 between two runs. One thread per pool has no idle workers."""
    from dlx import threads as pools

    backends = ["numpy"]
    torch_version = None
    if include_torch:
        try:
            import torch

            backends.append("torch")
            torch_version = torch.__version__
        except ImportError:
            pass
    pools.apply({"threads": threads, "backend": "torch" if len(backends) > 1 else "numpy"})
    try:
        return _run(backends, torch_version, steps, repeats, warmup, cases)
    finally:
        pools.release()


def _run(backends, torch_version, steps, repeats, warmup, cases) -> dict:
    threads = _threads(backends)
    peaks = {b: sgemm_gflops(b) for b in backends}
    results = []
    if "mlp" in cases:
        results.append(run_mlp_case(backends, steps, repeats, warmup))
    if "transformer" in cases:
        results.append(run_transformer_case(backends, max(steps // 2, 1), repeats, warmup))
    if "cnn" in cases:
        results.append(run_cnn_case(backends, max(steps // 2, 1), repeats, warmup))
    if "lstm" in cases:
        results.append(run_lstm_case(backends, max(steps // 5, 1), repeats, warmup))
    report = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "numpy": np.__version__,
                    "torch": torch_version, "threads": threads},
        "settings": {"steps_per_repeat": steps, "repeats": repeats, "warmup_steps": warmup,
                     "order": "interleaved"},
        "sgemm_peak_gflops": peaks,
        "cases": [],
    }
    for case in results:
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


def _threads(backends: list[str]) -> dict[str, int]:
    """The thread counts the timings ran with: BLAS's (threadpoolctl) and torch's intra-op."""
    from threadpoolctl import threadpool_info

    found = {"numpy_blas": max((p["num_threads"] for p in threadpool_info()
                                if p.get("user_api") == "blas"), default=1)}
    if "torch" in backends:
        import torch

        found["torch"] = torch.get_num_threads()
    return found


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    peaks = report["sgemm_peak_gflops"]
    console.print("threads: " + ", ".join(f"{k} {v}" for k, v in
                                          report.get("machine", {}).get("threads", {}).items()))
    console.print("sgemm peak (1024x1024 float32): "
                  + ", ".join(f"{b} {v:.1f} GFLOP/s" for b, v in peaks.items()))
    for case in report["cases"]:
        table = Table(title=escape(case["description"]), title_justify="left")
        for col in ("backend", "median samples/s", "min", "max", "GFLOP/s", "of peak"):
            table.add_column(col, justify="right" if col != "backend" else "left")
        for b, values in case["samples_per_s"].items():
            table.add_row(b, f"{case['median_samples_per_s'][b]:,.0f}", f"{min(values):,.0f}",
                          f"{max(values):,.0f}", f"{case['achieved_gflops'][b]:.3g}",
                          f"{100 * case['fraction_of_peak'][b]:.2g}%")
        console.print(table)
        if case.get("layers"):
            layers = Table(title="each convolution alone, forward + backward: GFLOP/s (median)",
                           title_justify="left")
            layers.add_column("layer")
            for b in case["layers"][0]["gflops"]:
                layers.add_column(b, justify="right")
            for row in case["layers"]:
                layers.add_row(escape(row["layer"]), *(f"{v:.3g}" for v in row["gflops"].values()))
            console.print(layers)
        if "numpy_over_torch" in case:
            console.print(f"NumPy / torch throughput (ratio of medians): "
                          f"[bold]{case['numpy_over_torch']:.2f}[/]")
        else:
            console.print(escape("NumPy only: torch not installed (pip install 'dlx[torch]') "
                                 "or --no-torch"))


def save(report: dict, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return out
