"""`dlx gradcheck [OVERRIDES]`: the configured model's hand-written backward against centred
finite differences, in float64, one relative error per parameter: the check a learner runs on
their own layer before trusting a training curve.

The configuration is composed exactly as `dlx run` composes it (same groups, same overrides,
same validation), then rebuilt in float64 on a few training examples. Large parameters are
checked at a sample of their entries (cs231n's sparse gradient check): every entry of a
784 x 256 weight would take 400k forward passes.

The step h = 1e-5 (cs231n's) balances the centred difference's truncation error (~h^2) against
round-off in the loss (~eps |L| / h): at 1e-6 a transformer's LayerNorm gains and a GRU's input
weights, whose gradients are ~1e-5 of the loss, read 5e-6 and 2e-5 from round-off alone; at
1e-4 a LeNet's ReLUs cross their kinks (1e-3).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dlx.errors import UsageError


@dataclass
class Row:
    name: str
    shape: tuple[int, ...]
    checked: int  # entries compared
    rel_error: float


def compose(overrides: list[str], validated: bool = True):
    """The run config for ``overrides`` (Hydra's compose), validated as `dlx run` does (unless
    ``validated`` is False: `dlx check init=` calls the learner's init itself, guarded, where the
    validation would build a model with it)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import open_dict

    from dlx import inline, learner
    from dlx.app import describe
    from dlx.config import validate

    bad = [o for o in overrides if o.startswith("-")]
    if bad:
        raise UsageError(f"unknown option {bad[0]!r} (dlx gradcheck takes config overrides, "
                         f"e.g. model=mlp; see dlx gradcheck --help)")
    if any("," in o.partition("=")[2] and "[" not in o for o in overrides):
        raise UsageError("dlx gradcheck checks one configuration: no sweeps (a,b)")
    GlobalHydra.instance().clear()
    quick = Path(tempfile.mkdtemp(prefix="dlx-quick-"))
    try:  # the learner's options beside dlx's, the quick form included, as dlx run
        overrides = [*overrides, *inline.search_overrides(overrides, quick)]
        with initialize_config_module(config_module="dlx.conf", version_base="1.3"):
            cfg = hydra_compose(config_name="config", overrides=list(overrides),
                                return_hydra_config=True)
    except UsageError:
        raise
    except Exception as e:  # Hydra's parse / missing-config / unknown-key errors
        raise UsageError(describe(e)) from None
    finally:
        shutil.rmtree(quick, ignore_errors=True)
    learner.adopt(cfg, cfg.hydra.runtime.choices)
    with open_dict(cfg):  # never resolved here: hydra.run.dir would make a run directory
        del cfg["hydra"]
    if validated:
        validate(cfg)
    return cfg


def check(overrides: list[str], examples: int = 4, entries: int = 12, h: float = 1e-5):
    """(rows, model description): the relative error of every parameter's gradient."""
    import numpy as np
    from omegaconf import OmegaConf

    from dlx import learner
    from dlx.assemble import build_data, build_model_for
    from dlx.nn import loss_for
    from dlx.nn.dropout import Dropout
    from dlx.nn.gradcheck import numerical_grad_at, rel_error

    cfg = OmegaConf.to_container(compose(overrides), resolve=True)
    cfg["dtype"] = "float64"  # in float32 the differences are rounding noise
    data = build_data(cfg)
    model = build_model_for(cfg, data)
    model.train()
    for layer in model.modules():  # randomness would make f(w + h) - f(w - h) meaningless
        if isinstance(layer, Dropout):
            layer.training = False
    rng = np.random.default_rng(0)
    # Zero biases on zero inputs (MNIST's background, padding) put ReLUs exactly on their kink,
    # where the one-sided differences disagree with any subgradient: check at a generic point
    for p in model.parameters():
        if not p.data.any():
            p.data[...] = rng.normal(0.0, 0.1, p.data.shape)
    x, y = data.X_train[:examples], data.y_train[:examples]
    loss_fn = loss_for(data.spec)

    def f() -> float:
        return float(loss_fn.forward(model.forward(x), y))

    model.zero_grad()
    f()
    dx = model.backward(loss_fn.backward())
    rows = []
    for p in model.parameters():
        size = p.data.size
        pick = np.arange(size) if size <= entries else \
            np.sort(rng.choice(size, entries, replace=False))
        numeric = numerical_grad_at(f, p.data, pick, h)
        rows.append(Row(p.name, p.data.shape, len(pick),
                        rel_error(p.grad.reshape(-1)[pick], numeric)))
    if learner.is_learner(cfg["model"]) and np.issubdtype(x.dtype, np.floating):
        rows.append(input_row(f, x, dx, rng, entries, h))
    return rows, (f"{cfg['model']['name']} on {data.spec.describe()}, {len(x)} examples; "
                  f"all-zero parameters (biases) drawn from N(0, 0.1^2)")


def input_row(f, x, dx, rng, entries: int, h: float) -> Row:
    """The learner's model's contract: backward returns dL/dx, shaped as x. Training never
    uses it (nothing lies upstream of a whole model), so only this check can find it wrong."""
    import numpy as np

    from dlx.nn.gradcheck import numerical_grad_at, rel_error

    name = "input x (the dx backward returns)"
    if dx is None or np.shape(dx) != x.shape:
        return Row(f"{name}: got {'None' if dx is None else f'shape {np.shape(dx)}'}, "
                   f"expected shape {x.shape}", x.shape, 0, float("inf"))
    # x is the batch f() reads (a view of the float64 data): perturbed in place, then restored
    pick = np.arange(x.size) if x.size <= entries else \
        np.sort(rng.choice(x.size, entries, replace=False))
    numeric = numerical_grad_at(f, x, pick, h)
    return Row(name, x.shape, len(pick), rel_error(np.asarray(dx).reshape(-1)[pick], numeric))


def print_report(rows: list[Row], what: str, tol: float) -> bool:
    """The table; True if every relative error is below ``tol``."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"gradient check (float64, centred differences): {what}",
                  title_justify="left")
    for col in ("parameter", "shape", "entries", "relative error", ""):
        table.add_column(col, justify="left" if col in ("parameter", "") else "right")
    for r in rows:
        ok = r.rel_error < tol
        table.add_row(r.name, "x".join(map(str, r.shape)), str(r.checked), f"{r.rel_error:.1e}",
                      "ok" if ok else "[bold red]FAIL[/]")
    Console().print(table)
    worst = max(rows, key=lambda r: r.rel_error)
    passed = worst.rel_error < tol
    Console().print(f"largest relative error {worst.rel_error:.1e} ({worst.name}): "
                    + ("below" if passed else "[bold red]above[/]") + f" {tol:g}")
    if not passed and not worst.rel_error < 0.05:
        Console().print("note: an error this large is a wrong backward (or a wrong shape), not "
                        "round-off or a kink: compare your formula with its derivation, one "
                        "term at a time.", soft_wrap=True)
    elif not passed:
        # measured: resnet-20 (width 16) on 4 MNIST images reads 1e-4-1e-2 everywhere, at width
        # 2 or on 6x6 images 3e-9: its backward is right, its ~1e6 ReLU inputs are not smooth
        Console().print("note: ReLUs and max-pools have kinks; in a large net some of the values "
                        "they see cross one within a step h and read 1e-4-1e-2. If errors shrink "
                        "with --examples 1 or a narrower model (model.width=2, model.hidden=[8]) "
                        "it was kinks; errors that stay put mean a wrong backward.", soft_wrap=True)
    return passed
