"""Shared fixtures: the CLI in a subprocess, a private runs directory, the torch oracle."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def torch():
    """PyTorch as the test oracle: skipped when not installed, unless CI requires it."""
    try:
        import torch as _torch
    except ImportError:
        if os.environ.get("DLX_REQUIRE_TORCH") == "1":
            pytest.fail("torch is required here (DLX_REQUIRE_TORCH=1) but is not installed")
        pytest.skip("torch not installed (pip install 'dlx[torch]')")
    previous = _torch.get_default_dtype()
    _torch.set_default_dtype(_torch.float64)
    yield _torch
    _torch.set_default_dtype(previous)


class CLI:
    """Runs `python -m dlx.cli ...` in ``cwd`` with runs going to ``cwd/runs``."""

    def __init__(self, cwd: Path):
        self.cwd = cwd
        # COLUMNS / LINES: tests set a width themselves (pytest-xdist's workers carry one)
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("DLX_RUNS_DIR", "HYDRA_FULL_ERROR", "COLUMNS", "LINES")}
        self.env["MPLBACKEND"] = "Agg"

    def __call__(self, *args: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dlx.cli", *args], cwd=self.cwd,
                              env=self.env, capture_output=True, text=True, timeout=timeout,
                              **kw)

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "dlx.cli", *args], cwd=self.cwd,
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    def run_dir(self, result: subprocess.CompletedProcess) -> Path:
        assert result.stdout.strip(), result.stderr
        return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def cli(tmp_path) -> CLI:
    return CLI(tmp_path)


def assert_one_error_line(result: subprocess.CompletedProcess, *needles: str) -> None:
    """A user mistake: exit 2, exactly one `error:` line naming the problem, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="session")
def default_run(tmp_path_factory) -> Path:
    """One `dlx run` with the defaults, shared by tests that only read it (copy to modify)."""
    cli = CLI(tmp_path_factory.mktemp("default"))
    result = cli("run")
    assert result.returncode == 0, result.stderr
    return cli.run_dir(result)


@pytest.fixture
def plugins():
    """Hydra's joblib/submitit launchers and Optuna sweeper (extras `launchers`, `optuna`):
    skipped when absent, unless CI requires them (DLX_REQUIRE_PLUGINS=1)."""
    import importlib.util

    names = ("hydra_plugins.hydra_joblib_launcher", "hydra_plugins.hydra_submitit_launcher",
             "hydra_plugins.hydra_optuna_sweeper")
    missing = [n for n in names if importlib.util.find_spec(n) is None]
    if missing:
        if os.environ.get("DLX_REQUIRE_PLUGINS") == "1":
            pytest.fail(f"required Hydra plugins missing: {missing}")
        pytest.skip("Hydra plugins not installed (pip install 'dlx[launchers,optuna]')")
