"""Docs are code: every Python block of the README runs, against real records where it reads
one. The blocks of "Your own implementation" (the learner's Adam, dlx.run with a notebook's
class) are run by tests/test_learner.py, which trains with them."""

from __future__ import annotations

import re

import pytest

from tests.conftest import CLI, REPO

RECORD = re.compile(r'"runs/\d{8}-\d{6}-[\w-]+"')


def blocks() -> list[tuple[int, str]]:
    """(line, code) of every ```python block of the README."""
    text = (REPO / "README.md").read_text()
    return [(text[:m.start()].count("\n") + 1, m.group(1))
            for m in re.finditer(r"```python\n(.*?)```", text, re.S)]


def learners(code: str) -> bool:
    """A block test_learner.py runs: a workspace file (``# mine/optim.py``) or dlx.run."""
    return code.startswith("# mine/") or "dlx.run(" in code


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """A run and a sweep over optimizer and seed, as the blocks' comments say they were made."""
    cli = CLI(tmp_path_factory.mktemp("readme"))
    made = []
    for args in (("run", "epochs=2"), ("run", "-m", "optimizer=sgd,adam", "seed=0,1", "epochs=2")):
        result = cli(*args, "progress=none")
        assert result.returncode == 0, result.stderr
        made.append(cli.run_dir(result))
    return made


def run_block(code: str, records) -> dict:
    """Executes a block with its record paths replaced by real ones: load_run's by the run,
    load_sweep's by the sweep."""
    run, sweep = records
    code = re.sub(r'load_run\("runs/[^"]+"\)', f"load_run({str(run)!r})", code)
    code = re.sub(r'load_sweep\("runs/[^"]+"\)', f"load_sweep({str(sweep)!r})", code)
    assert not RECORD.search(code), code
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    return namespace


@pytest.mark.slow
def test_every_python_block_of_the_readme_runs(records):
    ran = []
    for line, code in blocks():
        if learners(code) or "torch.optim" in code:  # that one needs torch: below
            continue
        namespace = run_block(code, records)
        ran.append(line)
        if "load_sweep" in code and "sweep" in namespace:  # what its comments say it shows
            assert namespace["sweep"].varied == ["optimizer", "seed"]
            assert len(namespace["sweep"].members) == 4
        if "check_module" in code:
            from dlx.nn.gradcheck import check_model, check_module

            errors = check_module(namespace["layer"], namespace["x"], namespace["rng"])
            assert set(errors) == {"input", "fc1.W", "fc1.b"}, errors
            assert max(errors.values()) < 1e-7
            assert max(check_model(namespace["layer"], namespace["SoftmaxCrossEntropy"](),
                                   namespace["x"], namespace["y"]).values()) < 1e-7
        if "dlx.check(" in code:  # the grader, from a notebook cell
            assert namespace["report"].passed, str(namespace["report"])
        if "opt.step()" in code:  # a training step took place
            assert namespace["opt"].t == 1 and namespace["loss"] > 0
    assert len(ran) >= 4, ran
    assert sum(learners(code) for _, code in blocks()) == 2  # the two test_learner.py runs


@pytest.mark.needs("torch")
def test_the_readmes_torch_block_runs():
    (code,) = [code for _, code in blocks() if "torch.optim" in code]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
