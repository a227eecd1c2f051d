"""Sweeps that scale and compare: launchers, Optuna, resume, compare, plan."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import assert_one_error_line

pytestmark = pytest.mark.slow


def metrics(run: Path) -> bytes:
    return (run / "metrics.csv").read_bytes()


def test_joblib_launcher_gives_the_same_bytes_with_limited_threads(cli, plugins):
    args = ("run", "-m", "optimizer=sgd,adam,momentum", "epochs=3")
    basic = cli.run_dir(cli(*args))
    result = cli(*args, "hydra/launcher=joblib")
    assert result.returncode == 0, result.stderr
    joblib = cli.run_dir(result)
    for m in "012":
        assert metrics(basic / m) == metrics(joblib / m)
        threads = json.loads((joblib / m / "summary.json").read_text())["threads"]
        assert threads.get("OPENBLAS_NUM_THREADS") == "1"  # 2 jobs x 1 thread on 2 cores


def test_submitit_local_launcher(cli, plugins):
    result = cli("run", "-m", "optimizer=sgd,adam", "epochs=2", "hydra/launcher=submitit_local",
                 timeout=600)
    assert result.returncode == 0, result.stderr
    sweep = cli.run_dir(result)
    assert "2 completed" in result.stderr
    basic = cli.run_dir(cli("run", "-m", "optimizer=sgd,adam", "epochs=2"))
    assert metrics(sweep / "1") == metrics(basic / "1")


def test_optuna_sweeper_minimizes_the_monitored_metric(cli, plugins):
    result = cli("run", "-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=3",
                 "hydra.sweeper.sampler.seed=0", "optimizer.lr=tag(log,interval(0.001,1.0))",
                 "epochs=2")
    assert result.returncode == 0, result.stderr
    sweep = cli.run_dir(result)
    best = (sweep / "optimization_results.yaml").read_text()
    values = [json.loads((sweep / m / "summary.json").read_text())["best"]["val/loss"]
              for m in "012"]
    assert f"best_value: {min(values)}" in best
    assert cli("compare", str(sweep)).returncode == 0
    assert cli("plot", str(sweep)).returncode == 0


@pytest.mark.slow
def test_a_sweep_over_models_is_named_after_them(cli):
    """Named after its base config's model, `-m model=mlp,linreg` went into `...-logreg-...`."""
    names = {}
    for sweep in ("model=mlp,logreg", "model=choice(mlp,logreg)", "optimizer=sgd,adam"):
        result = cli("run", "-m", sweep, "epochs=1", "progress=none")
        assert result.returncode == 0, result.stderr
        names[sweep] = cli.run_dir(result).name.split("-")[2]
    assert names == {"model=mlp,logreg": "mlp+logreg", "model=choice(mlp,logreg)": "models",
                     "optimizer=sgd,adam": "logreg"}
    named = cli("run", "-m", "model=mlp,logreg", "name=mine", "epochs=1", "progress=none")
    assert named.returncode == 0, named.stderr  # a name given (an experiment's too) is kept
    assert cli.run_dir(named).name.split("-")[2] == "mine"


def test_missing_plugin_names_the_extra(cli, plugins):
    assert_one_error_line(cli("run", "-m", "hydra/launcher=nope"), "unknown hydra/launcher 'nope'",
                          "dlx[launchers]")


def test_a_killed_sweep_resumes_only_what_is_missing(cli, tmp_path):
    sweep = tmp_path / "sweep"
    args = ("run", "-m", "optimizer.lr=0.1,0.05,0.02", "epochs=800", "progress=none",
            f"hydra.sweep.dir={sweep}")
    proc = cli.popen(*args)
    deadline = time.time() + 120
    while time.time() < deadline:  # member 1 has checkpointed a few hundred epochs
        log = sweep / "1" / "run.log"
        if (sweep / "1" / "checkpoint.npz").exists() and log.exists() and \
                log.read_text().count("epoch ") > 200:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert json.loads((sweep / "1" / "summary.json").read_text())["status"] == "interrupted"
    assert not (sweep / "2").exists()
    first = (sweep / "0" / "metrics.csv").stat().st_mtime_ns

    result = cli(*args)
    assert result.returncode == 0, result.stderr
    assert "0: already completed with this config; skipped" in result.stderr
    assert (sweep / "0" / "metrics.csv").stat().st_mtime_ns == first  # untouched
    resumed = json.loads((sweep / "1" / "summary.json").read_text())
    assert resumed["status"] == "completed" and resumed["resumed_from_epoch"] > 0
    assert not (sweep / "1" / "checkpoint.npz").exists()
    reference = cli.run_dir(cli("run", "optimizer.lr=0.05", "epochs=800"))
    assert metrics(sweep / "1") == metrics(reference)  # as if never interrupted
    assert json.loads((sweep / "2" / "summary.json").read_text())["status"] == "completed"


@pytest.mark.slow
@pytest.mark.parametrize("to", ["the sweep's process", "the process group (Ctrl-C)"])
def test_an_interrupted_joblib_sweep_records_its_members_interrupted(cli, plugins, tmp_path, to):
    """SIGTERM to the sweep's process alone used to leave its joblib members `lost` (the
    workers never heard of it and joblib's clean-up killed them); Ctrl-C reaches the workers
    from the terminal and from the sweep, which passes it on: recorded once, not cut short."""
    sweep = tmp_path / "sweep"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dlx.cli", "run", "-m", "hydra/launcher=joblib",
         "optimizer=sgd,adam", "epochs=100000", "progress=none", f"hydra.sweep.dir={sweep}"],
        cwd=cli.cwd, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:  # both members are training
        if all((sweep / m / "metrics.csv").exists() and (sweep / m / "metrics.csv").stat().st_size
               > 2000 for m in "01"):
            break
        time.sleep(0.1)
    if to == "the sweep's process":
        proc.send_signal(signal.SIGTERM)
    else:
        os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "sweep interrupted: 0 of 2 runs finished: 2 interrupted" in err, err
    for m in "01":
        summary = json.loads((sweep / m / "summary.json").read_text())
        assert summary["status"] == "interrupted" and summary["steps"] > 0, (m, summary)
        assert cli("show", str(sweep / m)).returncode == 0
    assert "Traceback" not in err, err


def test_compare_groups_seeds_into_mean_and_std(cli, tmp_path):
    sweep = cli.run_dir(cli("run", "-m", "optimizer=sgd,adam", "seed=0,1,2", "epochs=2"))
    result = cli("compare", str(sweep), "--group-by", "optimizer", "--md")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("| optimizer.name | n | final.train/loss | final.val/loss")
    rows = [ln for ln in lines[2:] if ln.startswith("| ")]
    assert [r.split(" | ")[0] for r in rows] == ["| sgd", "| adam"]
    assert all(" | 3 | " in r and " ± " in r for r in rows)
    out = tmp_path / "table.csv"
    result = cli("compare", str(sweep), "--sort", "-val/acc", "--csv", str(out))
    assert result.returncode == 0 and out.read_text().startswith("id,status,")
    assert "optimizer.name" in out.read_text().splitlines()[0]  # what differs
    assert "epochs" not in out.read_text().splitlines()[0]      # what does not
    assert_one_error_line(cli("compare", str(sweep), "--group-by", "nope"), "unknown key 'nope'")


def test_plan_marks_what_has_been_run(cli):
    cli("run", "experiment=conditioning", "conditioning.kappas=[10,100]")
    result = cli("plan")
    assert result.returncode == 0, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if "conditioning" in ln)
    assert "✓" in line
    line = next(ln for ln in result.stdout.splitlines() if "lr_range" in ln)
    assert "✓" not in line
