"""The wiring goes one way: the pure library (nn, optim, data) imports no configuration
machinery, and no dlx module imports itself back through others (read from the source, with
ast, so that a lazy import inside a function counts too)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "dlx"
LIBRARY = ("dlx.nn", "dlx.optim", "dlx.data")
CONFIG_LAYER = ("dlx.registry", "dlx.config", "dlx.assemble", "dlx.app", "dlx.runner",
                "dlx.training", "dlx.experiments", "dlx.plots", "dlx.records", "dlx.cli",
                "hydra", "omegaconf")


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path = PACKAGE, modules=frozenset()) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function; relative imports
    resolved. ``from pkg import sub`` where ``sub`` is one of ``modules`` imports ``pkg.sub``,
    as ``import pkg.sub`` does: not ``pkg``'s own body, which Python ran before any of its
    submodules."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = module_name(path, root).split(".")
                keep = here if path.name == "__init__.py" else here[:-1]
                base = ".".join(keep[: len(keep) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names]
            found.update(names)
            if not all(n in modules for n in names):
                found.add(base)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports(path, modules=modules.keys()) if m in modules and m != name}
            for name, path in modules.items()}


def inside(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_library_imports_no_configuration():
    offenders = {name: sorted(m for m in imports(path) if inside(m, CONFIG_LAYER))
                 for name, path in ((module_name(p), p) for p in PACKAGE.rglob("*.py"))
                 if inside(name, LIBRARY)}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_module_imports_itself_back():
    edges = graph()
    cycles = set()

    def visit(node, path):
        for nxt in edges[node]:
            if nxt == path[0]:
                cycles.add(" -> ".join(path + [nxt]))
            elif nxt not in path and len(path) < 8:
                visit(nxt, path + [nxt])

    for start in edges:
        visit(start, [start])
    assert not cycles, sorted(cycles)[:10]


def test_figures_are_decided_above_plots_and_experiments():
    """plots/ draws and never looks up an experiment; experiments may use plots' helpers."""
    for name, deps in graph().items():
        if inside(name, ("dlx.plots",)):
            assert not [d for d in deps if inside(d, ("dlx.experiments", "dlx.figures"))], name


def test_the_checks_above_can_fail(tmp_path):
    """The import reader sees a lazy import inside a function, and a relative one."""
    pkg = tmp_path / "dlx" / "nn"
    pkg.mkdir(parents=True)
    (pkg / "x.py").write_text("def f():\n    from dlx import registry\n    from . import y\n")
    found = imports(pkg / "x.py", tmp_path / "dlx")
    assert {"dlx.registry", "dlx.nn", "dlx.nn.y"} <= found
    assert imports(pkg / "x.py", tmp_path / "dlx", modules={"dlx.nn.y"}) == {
        "dlx", "dlx.registry", "dlx.nn.y"}  # y is a module: `from . import y` is no edge to nn
    assert inside("dlx.registry", CONFIG_LAYER) and not inside("dlx.registryx", CONFIG_LAYER)


def test_experiments_are_keyed_by_the_chosen_experiment_not_the_model(cli):
    """A plain run of the logreg model is no run of the logreg experiment: it gets the generic
    figures only, and `dlx plan` does not count it as the experiment's reference run."""
    import json

    result = cli("run", "-m", "optimizer=sgd,adam", "epochs=2")
    assert result.returncode == 0, result.stderr
    sweep = cli.run_dir(result)
    assert json.loads((sweep / "0" / "summary.json").read_text())["experiment"] is None
    assert cli("plot", str(sweep)).returncode == 0
    assert not (sweep / "plots" / "weight_norm_log_steps.png").exists()  # logreg's own figure
    line = next(ln for ln in cli("plan").stdout.splitlines() if "logistic regression" in ln)
    assert "✓" not in line and "reference ran" not in line

    result = cli("run", "experiment=logreg", "epochs=2")
    assert json.loads((cli.run_dir(result) / "summary.json").read_text())["experiment"] == "logreg"
    line = next(ln for ln in cli("plan").stdout.splitlines() if "logistic regression" in ln)
    # the experiment's run is seen; the deliverable ("from scratch") waits for the learner's model
    assert f"reference ran {cli.run_dir(result).name}" in line and "✓" not in line
