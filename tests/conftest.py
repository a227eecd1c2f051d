"""Shared fixtures: the CLI in a subprocess, a private runs directory, the torch oracle; and
what a test needs beyond `make test`'s own install (``@pytest.mark.needs(...)``)."""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


# --- what a test needs beyond the dev install ----------------------------------------------------
# `make test` installs dlx with its dev extras only. A test that needs more declares it with
# @pytest.mark.needs("torch", ...); a test using the `torch`, `plugins` or `tensorboardx`
# fixture is marked by it. Such a test is skipped, with the reason, when that is missing,
# unless DLX_REQUIRE names it (comma-separated, or "all"), as CI does: then it fails instead.

def _installed(*modules: str):
    return lambda: all(importlib.util.find_spec(m) is not None for m in modules)


def _data(name: str):
    def present() -> bool:
        from dlx.data import housing, mnist, text

        if name in mnist.CHECKSUMS:
            folder = mnist.data_dir() / name
            return all((folder / f"{f}.gz").is_file() or (folder / f).is_file()
                       for f in mnist.FILES.values())
        return (housing.path() if name == housing.NAME else text.path(name)).is_file()
    return present


def _chromium() -> bool:
    from dlx.report.pdf import browser

    return browser() is not None


NEEDS = {  # name: (is it there?, how to get it)
    "torch": (_installed("torch"), "torch not installed (pip install 'dlx[torch]')"),
    "tensorboard": (_installed("tensorboardX"),
                    "tensorboardX not installed (pip install 'dlx[tensorboard]')"),
    "plugins": (_installed("hydra_plugins.hydra_joblib_launcher",
                           "hydra_plugins.hydra_submitit_launcher",
                           "hydra_plugins.hydra_optuna_sweeper"),
                "Hydra's launchers and Optuna sweeper not installed "
                "(pip install 'dlx[launchers,optuna]')"),
    "chromium": (_chromium, "Chromium not installed (apt-get install chromium)"),
    **{name: (_data(name), f"real {name} not present (set DLX_DATA_DIR to a folder holding "
                           f"{name}/; ../shared/data in this project's CI)")
       for name in ("mnist", "tinyshakespeare", "california_housing")},
}
FIXTURE_NEEDS = {"torch": ("torch",), "plugins": ("plugins",), "tensorboardx": ("tensorboard",),
                 "shakespeare": ("tinyshakespeare",),
                 "lm_run": ("tinyshakespeare",),
                 "housing_table": ("california_housing",)}

# A test whose path depends on an extra without needing it (it expects torch's own message when
# torch is installed, dlx's "needs PyTorch" otherwise) is marked @pytest.mark.both_ways(...):
# CI's second run, with every extra, then runs it again even if it is an end-to-end (slow) test.
# An end-to-end test that drives an extra's code path unmarked is refused at collection.
EXTRA_PATHS = re.compile(r"backend=torch|--tensorboard|hydra/launcher=|"
                         r"hydra/sweeper=(?!tuned\b|basic\b)|"  # built-in sweepers need no extra
                         r"import torch|tensorboardX")


def required() -> set[str]:
    names = {n.strip() for n in os.environ.get("DLX_REQUIRE", "").split(",") if n.strip()}
    return set(NEEDS) if "all" in names else names


_running: list = []  # the test being set up or run (need() checks it declares what it needs)


def need(*names: str) -> None:
    """Skip the calling test (fail it, if DLX_REQUIRE names it) unless ``names`` are present.
    The test must declare them (a needs mark, or a fixture of FIXTURE_NEEDS), so that
    ``-m needs`` selects every test that needs more than the dev install."""
    # pytest loads this file as `conftest`; tests that import from it as `tests.conftest` get a
    # second copy, whose list is empty: the hooks' list is the one in `conftest`
    running = getattr(sys.modules.get("conftest"), "_running", None) or _running
    declared = {n for item in running for m in item.iter_markers("needs") for n in m.args}
    undeclared = [n for n in names if running and n not in declared]
    if undeclared:
        pytest.fail(f"{running[-1].nodeid} needs {undeclared} without declaring it: mark it "
                    f"@pytest.mark.needs(...) or add its fixture to FIXTURE_NEEDS")
    for name in names:
        present, how = NEEDS[name]
        if not present():
            if name in required():
                pytest.fail(f"{how}; DLX_REQUIRE says this run must have {name}")
            pytest.skip(how)


def pytest_configure(config):
    config.addinivalue_line("markers", "needs(*names): needs more than the dev install: "
                            + ", ".join(NEEDS) + " (skipped without, unless DLX_REQUIRE)")
    config.addinivalue_line("markers", "both_ways(*names): takes another path when these are "
                            "installed, and must pass with them and without")
    unknown = required() - set(NEEDS)
    if unknown:
        raise pytest.UsageError(f"DLX_REQUIRE: unknown {sorted(unknown)} (valid: "
                                f"{', '.join(NEEDS)}, all)")


def _weight(item) -> int:
    """The longest first (pytest-xdist hands tests out in order: a long one last would run
    alone at the end): real-data tests, then science tests, then end-to-end ones."""
    needs = {n for m in item.iter_markers("needs") for n in m.args}
    return (0 if needs & {"mnist", "tinyshakespeare", "california_housing"} else
            1 if item.get_closest_marker("science") else 2 if item.get_closest_marker("slow")
            else 3)


@pytest.hookimpl(tryfirst=True)  # before -m deselects: the marks it adds are selectable
def pytest_collection_modifyitems(items):
    for item in items:
        for fixture, names in FIXTURE_NEEDS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.needs(*names))
        for mark in (*item.iter_markers("needs"), *item.iter_markers("both_ways")):
            unknown = set(mark.args) - set(NEEDS)
            if unknown:
                raise pytest.UsageError(f"{item.nodeid}: {mark.name} {sorted(unknown)}: unknown")
        if not any(item.get_closest_marker(m) for m in ("needs", "both_ways", "science")):
            found = EXTRA_PATHS.search(inspect.getsource(item.function))
            if found:
                raise pytest.UsageError(
                    f"{item.nodeid} drives {found.group()!r} but declares no extra: mark it "
                    f"needs(...) if it needs one, both_ways(...) if it passes either way")
    items.sort(key=_weight)  # stable: the file order within each weight


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    _running.append(item)
    need(*[name for mark in item.iter_markers("needs") for name in mark.args])
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    yield
    _running.remove(item)


@pytest.fixture
def torch():
    """PyTorch as the test oracle, in float64 (marked needs("torch") by using it)."""
    import torch as _torch

    previous = _torch.get_default_dtype()
    _torch.set_default_dtype(_torch.float64)
    yield _torch
    _torch.set_default_dtype(previous)


class _WarmCLI:
    """The client of tests/cli_server.py: a warm `python -m dlx.cli`, started on first use (one
    per pytest worker), that forks a real process per command instead of importing numpy,
    pandas, matplotlib and Hydra again each time."""

    def __init__(self):
        from tests.cli_server import import_sensitive

        self.env = {**os.environ, "MPLBACKEND": "Agg"}
        self.imports = import_sensitive(self.env)
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.cli_server"], cwd=REPO,
                                     env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.buffer = b""
        self._reply(timeout=120)  # {"ready": pid}

    def serves(self, env: dict) -> bool:
        from tests.cli_server import import_sensitive

        return self.proc.poll() is None and import_sensitive(env) == self.imports

    def _reply(self, timeout: float) -> dict:
        import json
        import select
        import time

        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError("the warm dlx.cli server died")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def run(self, args, cwd: Path, env: dict, stdin: str | None, timeout: float):
        import json
        import signal
        import tempfile

        with tempfile.TemporaryDirectory(prefix="dlx-cli-") as tmp:
            files = {name: Path(tmp) / name for name in ("stdin", "stdout", "stderr")}
            for name, path in files.items():
                path.write_text(stdin or "" if name == "stdin" else "")
            request = {"args": list(args), "cwd": str(cwd), "env": env,
                       **{k: str(v) for k, v in files.items()}}
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
            pid = self._reply(timeout=60)["pid"]
            try:
                code = self._reply(timeout)["returncode"]
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
                self._reply(timeout=60)
                raise subprocess.TimeoutExpired(["dlx", *args], timeout) from None
            return subprocess.CompletedProcess(
                [sys.executable, "-m", "dlx.cli", *args], code,
                files["stdout"].read_text(errors="replace"),
                files["stderr"].read_text(errors="replace"))


_warm: _WarmCLI | None = None


def _warm_cli() -> _WarmCLI | None:
    """The worker's warm CLI; None where forking is unavailable or DLX_TEST_COLD=1 asks for a
    fresh interpreter per command (to check that the two agree)."""
    global _warm
    if not hasattr(os, "fork") or os.environ.get("DLX_TEST_COLD") == "1":
        return None
    if _warm is None or _warm.proc.poll() is not None:
        _warm = _WarmCLI()
    return _warm


class CLI:
    """Runs `python -m dlx.cli ...` in ``cwd`` with runs going to ``cwd/runs``: in a process
    forked from a warm interpreter (tests/cli_server.py) unless the environment differs from its
    in what takes effect at import, then in a fresh one."""

    def __init__(self, cwd: Path):
        self.cwd = cwd
        # COLUMNS / LINES: tests set a width themselves (pytest-xdist's workers carry one)
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("DLX_RUNS_DIR", "DLX_WORKSPACE", "HYDRA_FULL_ERROR", "COLUMNS",
                                 "LINES")}
        self.env["MPLBACKEND"] = "Agg"

    def __call__(self, *args: str, timeout: float = 300, input: str | None = None,
                 **kw) -> subprocess.CompletedProcess:
        warm = None if kw else _warm_cli()  # stdin=, preexec_fn=: a fresh process
        if warm is not None and warm.serves(self.env):
            return warm.run(args, self.cwd, self.env, input, timeout)
        return subprocess.run([sys.executable, "-m", "dlx.cli", *args], cwd=self.cwd,
                              env=self.env, capture_output=True, text=True, timeout=timeout,
                              input=input, **kw)

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
    """Hydra's joblib/submitit launchers and Optuna sweeper (marked needs("plugins") by using
    it)."""
