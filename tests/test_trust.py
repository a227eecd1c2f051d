"""Runs you can trust: interrupts at any moment, no silent overwrite, `lost` runs, honest
summaries, and every mistake caught before anything is created (issue #11)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import assert_one_error_line

pytestmark = pytest.mark.slow


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def python(cli, code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`dlx run` in a subprocess with ``code`` patching dlx first (to place a signal or a
    failure exactly where a test needs it)."""
    return subprocess.run([sys.executable, "-c", code], cwd=cli.cwd, env=cli.env,
                          capture_output=True, text=True, timeout=timeout)


def wait_for(predicate, timeout: float = 120, poll: float = 0.005) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(poll)


# --- interrupts, at any moment ---------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_a_member_draws_its_figures_stops_the_sweep(cli, sig):
    sweep = cli.cwd / "runs" / "sw"
    # seed=0: one seed of the experiment's three (7 members, not 21)
    proc = cli.popen("run", "-m", "experiment=lr_schedules", "seed=0", f"hydra.sweep.dir={sweep}")
    wait_for(lambda: (sweep / "1" / "plots").is_dir())  # member 1 has begun its figures
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert out.strip().splitlines()[-1] == str(sweep)
    assert "sweep interrupted: 1 of 7 runs finished" in err
    assert summary(sweep / "0")["status"] == "completed"
    s = summary(sweep / "1")
    assert s["status"] == "interrupted" and "drawing the figures" in s["error"]
    assert not (sweep / "2").exists()
    # run again: the interrupted member is finished, the others run
    result = cli("run", "-m", "experiment=lr_schedules", "seed=0", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    assert [summary(sweep / str(m))["status"] for m in range(7)] == ["completed"] * 7
    assert len(list((sweep / "1" / "plots").glob("*.png"))) >= 3


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_between_members_stops_the_sweep(cli, sig):
    code = ("import os, sys, signal\nimport dlx.runner as r\nrun_job = r.run_job\n"
            "def job(*a, **k):\n    result = run_job(*a, **k)\n"
            f"    os.kill(os.getpid(), {int(sig)})\n    return result\n"
            "r.run_job = job\nfrom dlx.app import main\n"
            "sys.exit(main(['-m', 'optimizer=sgd,adam,momentum', 'epochs=2']))\n")
    result = python(cli, code)
    assert result.returncode == 130, result.stderr
    assert "sweep interrupted: 1 of 3 runs finished: 1 completed" in result.stderr
    sweep = cli.run_dir(result)
    assert summary(sweep / "0")["status"] == "completed"
    assert not (sweep / "1").exists()


@pytest.mark.parametrize("multirun", [False, True])
def test_a_signal_at_start_up_keeps_nothing(cli, multirun):
    code = ("import os, sys\nimport dlx.app as app\nvalidate = app.validate\n"
            "def check(cfg):\n    validate(cfg)\n    os.kill(os.getpid(), 2)\n"
            "app.validate = check\n"
            f"sys.exit(app.main({['-m', 'optimizer=sgd,adam'] if multirun else []!r}"
            " + ['epochs=2']))\n")
    result = python(cli, code)
    assert result.returncode == 130, result.stderr
    assert "nothing was kept" in result.stderr and "Traceback" not in result.stderr
    runs = cli.cwd / "runs"
    assert not runs.exists() or not any(runs.iterdir())


def test_interrupted_and_diverged_runs_record_steps_and_last_values(cli):
    proc = cli.popen("run", "epochs=100000", "progress=log")
    runs = cli.cwd / "runs"
    wait_for(lambda: any(p.stat().st_size > 4000 for p in runs.glob("*/metrics.csv")), poll=0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    run = Path(out.strip().splitlines()[-1])
    s = summary(run)
    rows = [ln.split(",") for ln in (run / "metrics.csv").read_text().splitlines()[1:]]
    last_batch = max(int(r[0]) for r in rows if r[2] == "batch")
    assert s["status"] == "interrupted" and s["steps"] > 25 and s["error"] is None
    assert last_batch - 1 <= s["steps"] <= last_batch  # the last update may not have completed
    val = [r for r in rows if r[2:4] == ["val", "loss"]]
    assert int(val[-1][0]) == s["steps"]  # the model as it was stopped is measured
    assert s["final"]["val/loss"] == float(val[-1][4])

    result = cli("run", "optimizer.lr=1e6")
    s = summary(cli.run_dir(result))
    assert s["status"] == "diverged" and s["steps"] == s["diverged_at_step"] > 0
    rows = [ln.split(",") for ln in (cli.run_dir(result) / "metrics.csv").read_text().splitlines()]
    assert [r[0] for r in rows if r[2:4] == ["val", "loss"]][-1] == str(s["steps"])


def test_a_resumed_run_reports_its_total_wall_time(cli):
    run = cli.cwd / "runs" / "r"
    args = ("run", "epochs=400", f"hydra.run.dir={run}", "progress=log")
    proc = cli.popen(*args)
    wait_for(lambda: (run / "checkpoint.npz").is_file(), poll=0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    first = summary(run)
    assert first["status"] == "interrupted" and first["wall_time_s"] > 0.5
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    second = summary(run)
    assert second["status"] == "completed" and second["resumed_from_epoch"] >= 1
    assert second["started_at"] == first["started_at"]
    assert second["wall_time_s"] > first["wall_time_s"]


def test_a_killed_run_is_shown_as_lost(cli):
    proc = cli.popen("run", "epochs=100000", "progress=log")
    runs = cli.cwd / "runs"
    wait_for(lambda: any(p.stat().st_size > 2000 for p in runs.glob("*/metrics.csv")), poll=0.1)
    run = next(runs.iterdir())
    assert summary(run)["status"] == "running"
    proc.kill()  # SIGKILL: no chance to record anything
    proc.wait(timeout=30)
    assert summary(run)["status"] == "running"  # the file is as the process left it...
    from dlx.records.store import read_summary

    assert read_summary(run)["status"] == "lost"  # ...and every reader sees it died
    assert "lost" in cli("show", str(run)).stdout
    assert "lost" in cli("list").stdout


# --- never overwrite a result ------------------------------------------------------------------

def snapshot(root: Path) -> dict:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_sweep_into_a_directory_with_other_runs_stops_before_touching_it(cli):
    sweep = cli.cwd / "runs" / "s"
    result = cli("run", "-m", "optimizer=sgd,adam", "epochs=2", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    before = snapshot(sweep)
    result = cli("run", "-m", "optimizer=sgd,momentum", "epochs=2", f"hydra.sweep.dir={sweep}")
    assert_one_error_line(result, f"{sweep}/1 holds a completed run with a different config",
                          "optimizer: adam -> momentum", "choose another directory")
    assert snapshot(sweep) == before
    # the same sweep again: completed members are skipped
    result = cli("run", "-m", "optimizer=sgd,adam", "epochs=2", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0 and "already completed" in result.stderr
    assert (sweep / "1" / "metrics.csv").read_bytes() == before[sweep / "1" / "metrics.csv"]


def test_a_sweep_into_a_run_a_foreign_folder_or_a_larger_sweep_stops(cli):
    run = cli.cwd / "runs" / "one"
    assert cli("run", "epochs=2", f"hydra.run.dir={run}").returncode == 0
    (cli.cwd / "notes").mkdir()
    (cli.cwd / "notes" / "mine.txt").write_text("keep me")
    sweep = cli.cwd / "runs" / "s"
    assert cli("run", "-m", "optimizer=sgd,adam", "epochs=2",
               f"hydra.sweep.dir={sweep}").returncode == 0
    before = snapshot(cli.cwd / "runs")
    sweep_of = ("run", "-m", "optimizer=sgd,adam", "epochs=2")
    assert_one_error_line(cli(*sweep_of, f"hydra.sweep.dir={run}"), "holds a run, not a sweep")
    assert_one_error_line(cli(*sweep_of, "hydra.sweep.dir=notes"), "holds no dlx sweep")
    assert_one_error_line(cli("run", "-m", "optimizer=sgd", "epochs=2", f"hydra.sweep.dir={sweep}"),
                          "holds a sweep of 2 members and this one has 1")
    assert snapshot(cli.cwd / "runs") == before
    assert sorted(p.name for p in (cli.cwd / "notes").iterdir()) == ["mine.txt"]
    # a sweep that extends the old one (the same members first) runs only the new member
    result = cli("run", "-m", "optimizer=sgd,adam,momentum", "epochs=2", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0 and "sweep of 3 runs: 3 completed" in result.stderr
    assert (sweep / "1" / "metrics.csv").read_bytes() == before[sweep / "1" / "metrics.csv"]


def test_a_member_that_cannot_be_composed_is_named(cli):
    assert_one_error_line(cli("run", "-m", "optimizer=sgd,nope", "epochs=1"),
                          "sweep member 1 (optimizer=nope", "unknown optimizer 'nope'")


def test_a_run_whose_files_cannot_be_written_fails_cleanly(cli):
    """A full disk, as a file-size limit: the run is `failed` (exit 1, one line), never left
    `running` or reported as a usage error."""
    import resource

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    run = cli.cwd / "runs" / "full"
    result = cli("run", "epochs=200", f"hydra.run.dir={run}", preexec_fn=limit)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "Error executing job" not in result.stderr
    s = summary(run)
    assert s["status"] == "failed" and "File too large" in s["error"]


def test_a_run_into_an_occupied_directory_stops_before_touching_it(cli):
    run = cli.cwd / "runs" / "one"
    assert cli("run", "epochs=2", f"hydra.run.dir={run}").returncode == 0
    before = snapshot(run)
    assert_one_error_line(cli("run", "epochs=3", f"hydra.run.dir={run}"),
                          "holds a completed run with a different config", "epochs: 2 -> 3")
    (cli.cwd / "notes").mkdir()
    (cli.cwd / "notes" / "mine.txt").write_text("keep me")
    assert_one_error_line(cli("run", "epochs=2", "hydra.run.dir=notes"),
                          "not empty and holds no dlx run")
    assert snapshot(run) == before and (cli.cwd / "notes" / "mine.txt").read_text() == "keep me"
    assert sorted(p.name for p in (cli.cwd / "notes").iterdir()) == ["mine.txt"]
    result = cli("run", "epochs=2", f"hydra.run.dir={run}")  # same config: skipped
    assert result.returncode == 0 and "already completed" in result.stderr


# --- every mistake caught before anything is created ----------------------------------------

@pytest.mark.parametrize("args,needle", [
    (["dataset.n_samples=1"], "n_samples must be >= 10"),
    (["dataset.val_fraction=0"], "val_fraction must be in (0, 1)"),
    (["early_stopping.monitor=nope/x", "early_stopping.patience=2"], "early_stopping.monitor"),
    (["dataset=sort"], "model 'logreg' reads feature vectors or images; this data set gives "
                       "token sequences of length 16 over 11 symbols (models that read token "
                       "sequences: transformer, rnn)"),
    (["model=transformer"], "model 'transformer' reads token sequences; this data set gives "
                            "feature vectors of 2 numbers"),
    (["model=transformer", "dataset=mnist"], "this data set gives 1x28x28 images (models that "
                                             "read images: logreg, mlp, cnn, resnet, plain)"),
    (["model=transformer", "dataset=reverse", "probe_every=5"], "probe_every"),
    (["model=mlp", "model.hidden=[1000000000000]"], "MemoryError"),
    (["-m", "optimizer.lr=0.1,-1,0.5"], "sweep member 1 (optimizer.lr=-1"),
    (["-m", "optimizer=sgd,nope"], "unknown optimizer 'nope'"),
    (["runs_dir="], "runs_dir must be a directory path"),
    (["optimizer=sgd,adam"], "add -m"),
    (["model.hidden=[64,", "64]"], "quote it"),
])
def test_mistakes_are_one_line_and_create_nothing(cli, args, needle):
    assert_one_error_line(cli("run", *args, "epochs=1"), needle)
    assert not (cli.cwd / "runs").exists()


def test_an_uncreatable_runs_dir_is_one_line(cli):
    (cli.cwd / "file").write_text("")
    assert_one_error_line(cli("run", f"runs_dir={cli.cwd / 'file' / 'runs'}"),
                          f"cannot create {cli.cwd / 'file' / 'runs'}: Not a directory")


def test_a_read_only_runs_dir_is_one_line(cli):
    from tests.test_cli_ux import run_readonly

    ro = cli.cwd / "ro"
    ro.mkdir()
    result = run_readonly(cli, ro, "run", f"runs_dir={ro / 'runs'}", "epochs=1")
    assert_one_error_line(result, f"cannot create {ro / 'runs'}")
    assert any(w in result.stderr for w in ("Read-only file system", "Permission denied"))
    assert not (ro / "runs").exists()


@pytest.mark.both_ways("torch")
def test_backend_torch_without_torch_is_a_usage_error(monkeypatch):
    import importlib.util

    from omegaconf import OmegaConf

    from dlx.config import validate
    from dlx.errors import Unavailable, UsageError

    base = OmegaConf.load(Path(__file__).parent.parent / "conf" / "config.yaml")
    cfg = OmegaConf.merge(base, {"runs_dir": "runs", "backend": "torch",
                                 **{g: OmegaConf.load(Path(__file__).parent.parent / "conf" / g /
                                                      f"{o}.yaml")
                                    for g, o in (("model", "logreg"), ("optimizer", "sgd"),
                                                 ("regularizer", "none"), ("dataset", "blobs"),
                                                 ("schedule", "constant"), ("init", "zeros"),
                                                 ("loss", "auto"))}})
    cfg.pop("hydra")
    cfg.pop("defaults")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    cfg.backend = "numpy"
    validate(cfg)  # the config itself is fine: nothing but the missing torch is wrong below
    cfg.backend = "torch"
    with pytest.raises(Unavailable, match=r"backend=torch needs PyTorch.*dlx\[torch\]"):
        validate(cfg)
    cfg.optimizer.lr = -1.0  # a mistake in the config is named first, torch or not
    with pytest.raises(UsageError, match=r"lr must be") as raised:
        validate(cfg)
    assert not isinstance(raised.value, Unavailable)


def test_probe_works_with_logistic_regression(cli):
    result = cli("run", "probe_every=5", "epochs=1")
    assert result.returncode == 0, result.stderr
    run = cli.run_dir(result)
    assert summary(run)["status"] == "completed"
    rows = (run / "layer_stats.csv").read_text().splitlines()
    assert rows[0] == "step,layer,stat,value" and {r.split(",")[1] for r in rows[1:]} == {"1"}
    assert {r.split(",")[2] for r in rows[1:]} == {"z_std", "grad_z_norm", "grad_W_norm"}


def test_debug_prints_a_failed_runs_traceback(cli):
    code = ("import sys, dlx.training\n"
            "def boom(*a, **k):\n    raise RuntimeError('boom')\n"
            "dlx.training.train = boom\n"
            "from dlx.app import main\nsys.exit(main(['--debug', 'epochs=1']))\n")
    result = python(cli, code)
    assert result.returncode == 1, result.stderr
    assert "Traceback" in result.stderr and "RuntimeError: boom" in result.stderr
