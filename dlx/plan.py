"""The 60-day deep-learning foundations plan, and where the learner stands in it."""

from __future__ import annotations

from pathlib import Path

# (phase, days, deliverable, experiment, command); "series" marks the notebook series' topics
# that the 60 days do not schedule
PLAN = [
    (1, "1-3", "logistic regression from scratch", "logreg", "dlx run -m experiment=logreg"),
    (1, "4-6", "3-D loss-surface visualizer with optimizer trajectories", "loss_surface",
     "dlx run -m experiment=loss_surface"),
    (1, "7", "batch vs stochastic vs mini-batch gradient descent", "gd_variants",
     "dlx run -m experiment=gd_variants"),
    (1, "8-9", "conditioning experiment", "conditioning", "dlx run experiment=conditioning"),
    (1, "10-12", "SGD vs Momentum vs Adam (and AdaGrad, RMSProp, AdaMax, Nadam, AdamW)",
     "optimizers", "dlx run -m experiment=optimizers"),
    (1, "13-14", "learning rate too high / too low", "learning_rate",
     "dlx run -m experiment=learning_rate"),
    (1, "15-16", "LR range test", "lr_range", "dlx run experiment=lr_range"),
    (1, "17-20", "LR decay schedules", "lr_schedules", "dlx run -m experiment=lr_schedules"),
    (1, "series", "Hessian intuition: Hessian-vector products, Lanczos, and full-batch GD at the "
     "edge of stability (sharpness -> 2/eta)", "sharpness", "dlx run -m experiment=sharpness"),
    (1, "series", "house prices: linear regression in closed form and by GD, against an MLP "
     "(notebook topic 1)", "house_prices", "dlx run -m experiment=house_prices"),
    (1, "series", "activations: sigmoid, tanh, ReLU, ELU, SELU, SiLU, softplus and their "
     "derivatives; saturation, dead units, gradient flow (notebook topic 3)", "activations",
     "dlx run -m experiment=activations"),
    (1, "series", "losses: cross-entropy vs squared error at a wrong sigmoid output; entropy, "
     "cross-entropy, KL; label smoothing (notebook topic 4)", "losses", "dlx run experiment=losses"),
    (1, "series", "momentum as an exponentially weighted average; Adam's bias correction "
     "(notebook 7.4, 7.7)", "ewa", "dlx run experiment=ewa"),
    (1, "series", "vectorization: loops against matmul and broadcasting, checked equal and timed "
     "(notebook topic 6)", "vectorization", "dlx run experiment=vectorization"),
    (2, "21-24", "2-layer MLP on MNIST with hand-written backprop", "mnist_mlp",
     "dlx run experiment=mnist_mlp"),
    (2, "25-27", "initialization comparison", "init", "dlx run -m experiment=init"),
    (2, "28-30", "gradient-norm tracking across layers (vanishing / exploding)", "grad_flow",
     "dlx run -m experiment=grad_flow"),
    (2, "31-33", "batch size vs gradient noise", "batch_noise", "dlx run -m experiment=batch_noise"),
    (2, "34-36", "L1 / L2 / elastic-net regularization", "regularization",
     "dlx run -m experiment=regularization"),
    (2, "37-38", "dropout", "dropout", "dlx run -m experiment=dropout"),
    (2, "39-40", "written report on gradient flow", None,
     "dlx report runs/<mnist_mlp> runs/<init> runs/<grad_flow> ..."),
    (2, "series", "batch normalization: with and without BN, sensitivity to the init scale, "
     "internal covariate shift, training vs eval mode (notebook topic 10)", "batchnorm",
     "dlx run -m experiment=batchnorm"),
    (2, "series", "batch normalization at batch size 5 / 10 / 50, against LayerNorm", "batchnorm_batch",
     "dlx run -m experiment=batchnorm_batch"),
    (2, "series", "CNN: convolution and pooling, LeNet-5 on MNIST (notebook topic 11)", "cnn",
     "dlx run experiment=cnn"),
    (2, "series", "ResNet: plain vs residual nets at depth 8-56, degradation and init gradients "
     "(notebook topic 13)", "resnet", "dlx run -m experiment=resnet"),
    (3, "41-45", "a minimal transformer block", "transformer", "dlx run experiment=transformer"),
    (3, "46-50", "a tiny transformer on a toy sequence task", "transformer",
     "dlx run experiment=transformer"),
    (3, "51-55", "scaling vs performance", "scaling", "dlx run -m experiment=scaling"),
    (3, "56-60", "depth vs width", "depth_width", "dlx run -m experiment=depth_width"),
    (3, "series", "RNN vs LSTM vs GRU: memory over a delay (copy memory; #15)", "rnn_memory",
     "dlx run -m experiment=rnn_memory"),
    (3, "series", "vanishing / exploding gradients through time (||dL/dh_t|| against t at "
     "W_hh radius rho, RNN and LSTM) and gradient clipping (notebook topic 12; #15)",
     "bptt_gradients", "dlx run -m experiment=bptt_gradients"),
]


def completed_runs(root: Path) -> dict[str, str]:
    """experiment name -> the id of its newest completed run (or sweep with a completed member)."""
    from dlx.errors import UsageError
    from dlx.records.store import is_run, is_sweep, read_summary, sweep_members

    found: dict[str, str] = {}
    if not root.is_dir():
        return found
    for path in sorted(p for p in root.iterdir() if p.is_dir()):
        members = sweep_members(path) if is_sweep(path) else [path] if is_run(path) else []
        for member in members:
            try:
                s = read_summary(member)
            except UsageError:
                continue
            if s.get("status") == "completed" and s.get("experiment"):
                found[s["experiment"]] = path.name
    return found


def available(experiment: str) -> bool:
    from importlib.resources import files

    return files("dlx.conf").joinpath("experiment", f"{experiment}.yaml").is_file()


def print_plan(root: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    done = completed_runs(root)
    table = Table(title=f"the 60-day plan (runs under {root})", title_justify="left")
    for col in ("phase", "days", "deliverable", "experiment", "command", "done"):
        table.add_column(col, overflow="fold")
    for phase, days, deliverable, experiment, command in PLAN:
        if experiment is None:  # the report
            reports = sorted((root / "reports").glob("*/report.md"))
            run = reports[-1].parent.name if reports else None
        else:
            run = done.get(experiment)
        mark = f"[green]✓[/] {run}" if run else "[dim]–[/]"
        if experiment and not available(experiment):
            mark = "[yellow]not in this version of dlx yet[/]"
        table.add_row(str(phase), days, deliverable, experiment or "-", command, mark)
    n = sum(1 for *_, e, _ in PLAN if e and e in done)
    console = Console() if __import__("sys").stdout.isatty() else Console(width=220)
    console.print(table)
    console.print(f"{n} of {sum(1 for *_, e, _ in PLAN if e)} experiment deliverables have a "
                  "completed run.")
