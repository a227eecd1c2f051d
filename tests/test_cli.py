"""`dlx` end to end, in subprocesses, as a user types it."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from dlx.plots.sweep import load_members, member_labels
from tests.conftest import REPO, assert_one_error_line

pytestmark = pytest.mark.slow


def test_help_does_not_import_the_heavy_libraries():
    code = ("import sys\nfrom dlx.cli import main\nsys.argv = ['dlx', '--help']\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0\n"
            "heavy = [m for m in ('numpy', 'hydra', 'omegaconf', 'pandas', 'matplotlib') "
            "if m in sys.modules]\nprint('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout, out.stdout
    assert "run" in out.stdout and "plot" in out.stdout


def test_default_run_leaves_the_full_record(default_run: Path):
    assert default_run.is_absolute() and default_run.parent.name == "runs"
    parts = default_run.name.split("-")
    assert len(parts) == 4 and parts[2] == "logreg" and len(parts[3]) == 6
    for name in ("config.yaml", "metrics.csv", "summary.json", "run.log", ".hydra/overrides.yaml"):
        assert (default_run / name).is_file(), name
    assert len(list((default_run / "plots").glob("*.png"))) >= 2
    assert (default_run / "plots" / "decision_boundary.png").is_file()

    lines = (default_run / "metrics.csv").read_text().splitlines()
    assert lines[0] == "step,epoch,split,metric,value"
    epoch_rows = {tuple(ln.split(",")[1:4]) for ln in lines[1:]}
    for epoch in range(21):
        for key in ("train,loss", "train,acc", "val,loss", "val,acc"):
            assert (str(epoch), *key.split(",")) in epoch_rows

    s = json.loads((default_run / "summary.json").read_text())
    assert s["status"] == "completed" and s["seed"] == 0
    assert s["experiment"] is None  # a plain run, not the logreg experiment of the plan
    assert s["final"]["val/acc"] >= 0.95
    assert s["best"]["val/loss"] <= s["final"]["val/loss"]
    for key in ("started_at", "finished_at", "wall_time_s", "steps_per_s", "versions", "host",
                "overrides", "diverged_at_step", "error", "optimizer_state_bytes"):
        assert key in s, key
    assert s["versions"]["numpy"] and s["optimizer_state_bytes"] == 0
    assert "git_commit" in s  # the tests run from a checkout


def test_same_command_twice_gives_identical_metrics(cli):
    a = cli.run_dir(cli("run", "epochs=3", "seed=7"))
    b = cli.run_dir(cli("run", "epochs=3", "seed=7"))
    assert a != b
    assert (a / "metrics.csv").read_bytes() == (b / "metrics.csv").read_bytes()


def test_two_runs_started_together_get_their_own_directories(cli):
    procs = [cli.popen("run", "epochs=2") for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    dirs = [Path(out.strip().splitlines()[-1]) for out, _ in outs]
    assert dirs[0] != dirs[1]
    for d in dirs:
        assert json.loads((d / "summary.json").read_text())["status"] == "completed"


def test_divergence_is_a_result_not_a_crash(cli):
    result = cli("run", "optimizer.lr=1e6")
    assert result.returncode == 0, result.stderr
    assert "diverged at step" in result.stderr
    run = cli.run_dir(result)
    s = json.loads((run / "summary.json").read_text())
    assert s["status"] == "diverged" and s["diverged_at_step"] >= 1
    assert (run / "metrics.csv").is_file() and list((run / "plots").glob("*.png"))


@pytest.mark.parametrize("args,needles", [
    (["run", "optimizer=nope"], ["unknown optimizer 'nope'", "adam, adamax, adamw, momentum"]),
    (["run", "experiment=nope"], ["unknown experiment 'nope'", "logreg"]),
    (["run", "optimizer.lr=-1"], ["lr must be a finite number > 0"]),
    (["run", "optimizer.lr=abc"], ["optimizer.lr: expected a number"]),
    (["run", "optimizer.foo=1"], ["unknown key 'optimizer.foo'"]),
    (["run", "epochs=0"], ["epochs must be an integer >= 1"]),
    (["run", "batch_size=0"], ["batch_size"]),
    (["run", "optimizer.lr=[1"], ["cannot parse override"]),
    (["run", "--bogus"], ["unrecognized arguments: --bogus"]),
    (["run", "-m", "optimizer.lr=-1"], ["lr must be a finite number > 0"]),
    (["run", "optimizer=adam", "optimizer.betas=[0.9,1.0]"], ["betas[1] must be >= 0.0, < 1.0"]),
    (["run", "optimizer=adamw", "optimizer.weight_decay=-0.1"], ["weight_decay must be >= 0.0"]),
    (["run", "optimizer=rmsprop", "+optimizer.beta=0.9"], ["unknown key optimizer.beta"]),
    (["run", "model=mlp", "model.keep_prob=1.5"], ["keep_prob must be in (0, 1]"]),
    (["run", "model=mlp", "model.keep_prob=0"], ["keep_prob must be in (0, 1]"]),
    (["run", "schedule=step", "schedule.step_size=0"], ["step_size must be >= 1"]),
    (["run", "regularizer=elastic_net", "regularizer.l1_ratio=2"], ["l1_ratio must be in [0, 1]"]),
    (["run", "backend=jax"], ["backend must be one of numpy, torch"]),
    (["bench", "--repeats", "0"], ["--repeats"]),
    (["plot", "/nonexistent"], ["/nonexistent: no such directory"]),
    (["plot", "."], ["not a run or sweep directory"]),
    (["show", "/nonexistent"], ["no such directory"]),
    (["list", "/nonexistent"], ["no such directory"]),
    (["plot"], ["Missing argument"]),
    (["frobnicate"], ["No such command"]),
])
def test_bad_input_is_one_error_line_and_writes_nothing(cli, args, needles):
    result = cli(*args)
    assert_one_error_line(result, *needles)
    assert not (cli.cwd / "runs").exists() or not any((cli.cwd / "runs").iterdir())


def test_plot_and_show_reject_corrupt_runs_without_writing(cli, default_run):
    run = cli.cwd / "copy"
    shutil.copytree(default_run, run)
    shutil.rmtree(run / "plots")
    (run / "metrics.csv").write_text("step,epoch,split,metric,value\n1,1,batch,loss,oops\n")
    assert_one_error_line(cli("plot", str(run)), "metrics.csv: corrupt")
    assert not (run / "plots").exists()
    (run / "summary.json").write_text("{not json")
    assert_one_error_line(cli("show", str(run)), "summary.json: corrupt JSON")


def test_plot_remakes_a_runs_figures_in_every_format(cli, default_run):
    for fmt in ("png", "svg", "pdf"):
        result = cli("plot", str(default_run), "--format", fmt)
        assert result.returncode == 0, result.stderr
        written = [Path(p) for p in result.stdout.split()]
        assert written and all(p.suffix == f".{fmt}" and p.stat().st_size > 0 for p in written)
    assert_one_error_line(cli("plot", str(default_run), "--format", "gif"), "unknown format")


def test_show_and_list(cli, default_run):
    result = cli("show", str(default_run))
    assert result.returncode == 0, result.stderr
    assert "completed" in result.stdout and "val/acc" in result.stdout
    result = cli("list", str(default_run.parent))
    assert result.returncode == 0, result.stderr
    assert default_run.name in result.stdout


def test_sweep_plot_and_list(cli):
    result = cli("run", "-m", "optimizer=sgd,momentum,adam", "epochs=3")
    assert result.returncode == 0, result.stderr
    assert "sweep of 3 runs: 3 completed" in result.stderr
    sweep = cli.run_dir(result)
    assert (sweep / "multirun.yaml").is_file()
    assert sorted(p.name for p in sweep.iterdir() if p.name.isdigit()) == ["0", "1", "2"]

    result = cli("plot", str(sweep))
    assert result.returncode == 0, result.stderr
    written = {Path(p).name for p in result.stdout.split()}
    assert {"val_loss.png", "val_acc.png", "train_loss.png"} <= written
    runs, skipped = load_members(sweep)
    # each at its own default learning rate: the legend says which, it decides the result
    assert member_labels(runs) == ["optimizer=sgd, optimizer.lr=0.1",
                                   "optimizer=momentum, optimizer.lr=0.05",
                                   "optimizer=adam, optimizer.lr=0.001"]
    assert skipped == []

    listing = cli("list")
    assert listing.returncode == 0, listing.stderr
    assert sweep.name in listing.stdout and "optimizer=momentum" in listing.stdout


def test_sweep_member_failure_does_not_stop_the_others(cli):
    # a failure that no validation can foresee: training itself raises for one member
    code = ("import sys, dlx.training\ntrain = dlx.training.train\n"
            "def train_or_fail(cfg, *a, **k):\n"
            "    if cfg['optimizer']['lr'] == 0.5:\n        raise RuntimeError('boom')\n"
            "    return train(cfg, *a, **k)\n"
            "dlx.training.train = train_or_fail\n"
            "from dlx.app import main\n"
            "sys.exit(main(['-m', 'optimizer.lr=0.1,0.5,1e6', 'epochs=2']))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=cli.cwd, env=cli.env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert "1 completed, 1 diverged, 1 failed" in result.stderr
    assert "member 1 failed: RuntimeError: boom" in result.stderr
    sweep = cli.run_dir(result)
    statuses = [json.loads((sweep / m / "summary.json").read_text())["status"] for m in "012"]
    assert statuses == ["completed", "failed", "diverged"]
    result = cli("plot", str(sweep))
    assert result.returncode == 0 and "member 1 skipped" in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_keeps_the_record(cli, sig):
    proc = cli.popen("run", "epochs=100000", "progress=log")
    deadline = time.time() + 60
    runs = cli.cwd / "runs"
    while time.time() < deadline:
        metrics = list(runs.glob("*/metrics.csv")) if runs.exists() else []
        if metrics and metrics[0].stat().st_size > 2000:
            break
        time.sleep(0.2)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    run = Path(out.strip().splitlines()[-1])
    s = json.loads((run / "summary.json").read_text())
    assert s["status"] == "interrupted" and s["final"]["val/acc"] > 0.9
    assert (run / "metrics.csv").read_text().endswith("\n")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_after_the_run_finished_changes_nothing(cli, sig):
    """The run is recorded and its directory printed: a Ctrl-C in the moments before the process
    exits used to turn exit 0 into 130, or a death by the signal (-2)."""
    for when, delay in (("completed", 0.0), ("directory", 0.0), ("directory", 0.05),
                        ("directory", 0.2)):
        proc = cli.popen("run", "progress=none", f"hydra.run.dir=r{when}{delay}")
        if when == "completed":  # its last log line: the record is final, Hydra's job not over
            while "completed:" not in proc.stderr.readline():
                pass
        else:
            proc.stdout.readline()  # the run directory: the run is over
        time.sleep(delay)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, (when, delay, proc.returncode, err)
        assert "interrupted" not in err, err
        assert json.loads((cli.cwd / f"r{when}{delay}" / "summary.json").read_text())["status"] \
            == "completed"
        if when == "completed":
            assert out.strip().endswith(f"r{when}{delay}"), out  # the directory, as ever


def test_an_exception_fails_the_run_with_traceback_in_the_log(cli):
    code = ("import sys, dlx.training\n"
            "def boom(*a, **k):\n    raise RuntimeError('boom')\n"
            "dlx.training.train = boom\n"
            "from dlx.app import main\nsys.exit(main(['epochs=1']))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=cli.cwd, env=cli.env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    run = cli.run_dir(result)
    s = json.loads((run / "summary.json").read_text())
    assert s["status"] == "failed" and s["error"] == "RuntimeError: boom"
    assert "Traceback" in (run / "run.log").read_text()
    assert "Traceback" not in result.stderr


def test_hydra_features_pass_through(cli):
    result = cli("run", "--help")
    assert result.returncode == 0
    assert ("optimizer: adadelta, adagrad, adam, adamax, adamw, momentum, nadam, nesterov, radam, "
            "rmsprop, sgd") in result.stdout
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("experiment: "))
    for name in ("logreg", "loss_surface", "conditioning", "optimizers", "learning_rate",
                 "lr_range", "lr_schedules", "gd_variants", "mnist_mlp", "init", "grad_flow",
                 "batch_noise", "regularization", "dropout"):
        assert name in line.split(": ")[1].split(", ")
    result = cli("run", "--cfg", "job", "optimizer=adam")
    assert result.returncode == 0 and "name: adam" in result.stdout
    assert not (cli.cwd / "runs").exists()
    result = cli("run", "+extra_key=1", "epochs=1")
    assert result.returncode == 0, result.stderr
    assert "extra_key: 1" in (cli.run_dir(result) / "config.yaml").read_text()


def test_runs_dir_and_env(cli, tmp_path):
    result = cli("run", "epochs=1", f"runs_dir={tmp_path / 'elsewhere'}")
    assert cli.run_dir(result).parent == tmp_path / "elsewhere"
    cli.env["DLX_RUNS_DIR"] = str(tmp_path / "fromenv")
    result = cli("run", "epochs=1")
    assert cli.run_dir(result).parent == tmp_path / "fromenv"


def test_non_editable_install_finds_its_configs(tmp_path):
    """The wheel carries conf/ as dlx.conf: a plain install runs from any directory."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(tmp_path / "wheel"), str(REPO)], check=True,
                   capture_output=True)
    wheel = next((tmp_path / "wheel").glob("dlx-*.whl"))
    # every module of the source tree is in the wheel (the editable install in this venv would
    # otherwise supply a subpackage the wheel lacks, and the run below would not notice)
    packed = set(zipfile.ZipFile(wheel).namelist())
    source = {p.relative_to(REPO).as_posix() for p in (REPO / "dlx").rglob("*.py")
              if "__pycache__" not in p.parts}
    assert source <= packed, sorted(source - packed)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(site), str(wheel)], check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, "-c", "import dlx, sys; from dlx.app import main; "
         "print(dlx.__file__, file=sys.stderr); sys.exit(main(['epochs=1']))"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert str(site) in result.stderr
    assert (Path(result.stdout.strip().splitlines()[-1]) / "summary.json").is_file()


def test_report_assembles_records_without_writing_analysis(cli, default_run, tmp_path):
    sweep = cli.run_dir(cli("run", "-m", "optimizer=sgd,adam", "epochs=2"))
    out = tmp_path / "report"
    result = cli("report", str(default_run), str(sweep), "--out", str(out))
    assert result.returncode == 0, result.stderr
    page = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    assert page.count("data:image/png;base64,") >= 4  # self-contained: figures embedded
    assert md.count("*Your explanation:* …") == 2 + 1  # each record, and the discussion
    assert "optimizer=adam" in md and "val/acc" in md and "dlx run" in md
    figures = [line.rsplit("](", 1)[1].rstrip(")") for line in md.splitlines()
               if line.startswith("![")]
    assert len(figures) >= 4 and all((out / figure).is_file() for figure in figures)
    assert_one_error_line(cli("report", str(tmp_path / "nope")), "no such directory")
