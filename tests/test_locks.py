"""Records nothing can lose (issue #25): a run or sweep directory is locked for as long as a
process writes into it; a second process is refused with one line naming the holder, and the
lock of a process that died is free again. Notes and tags wait for each other."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import assert_one_error_line

pytestmark = pytest.mark.slow


def slow_run(cli, *args: str, pause: float = 4.0) -> subprocess.Popen:
    """`dlx run ARGS` that holds its run directory ``pause`` seconds before training (a window
    as wide as a test needs, deterministically)."""
    code = ("import sys, time\nimport dlx.runner as r\norig = r._run_job\n"
            f"def slow(*a):\n    time.sleep({pause})\n    return orig(*a)\n"
            "r._run_job = slow\n"
            f"sys.argv = ['dlx', 'run', *{list(args)!r}]\n"
            "from dlx.cli import main\nmain()\n")
    return subprocess.Popen([sys.executable, "-c", code], cwd=cli.cwd, env=cli.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.02)


def test_a_second_run_into_a_locked_directory_is_refused_naming_the_holder(cli):
    """Two runs of different configs into one hydra.run.dir: the second gets one line naming
    the first (pid, host, since) and exit 2; the first's record is its own, whole."""
    run = cli.cwd / "runs" / "shared"
    first = slow_run(cli, f"hydra.run.dir={run}", "optimizer=adam")
    wait_for(lambda: (run / ".dlx.lock.who").exists())
    holder = json.loads((run / ".dlx.lock.who").read_text())
    second = cli("run", f"hydra.run.dir={run}", "optimizer=sgd")
    assert_one_error_line(second, "is in use by another dlx run", f"pid {holder['pid']}")
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and "optimizer=adam" in summary["overrides"]
    assert "name: adam" in (run / "config.yaml").read_text()
    assert not (run / ".dlx.lock.who").exists()  # released: nobody holds it


def test_the_lock_of_a_killed_run_is_free_and_the_same_command_carries_on(cli):
    run = cli.cwd / "runs" / "killed"
    first = slow_run(cli, f"hydra.run.dir={run}", pause=30)
    wait_for(lambda: (run / ".dlx.lock.who").exists())
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    again = cli("run", f"hydra.run.dir={run}")
    assert again.returncode == 0, again.stderr
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"


def test_a_second_sweep_into_a_sweep_at_work_is_refused_and_rm_waits(cli):
    sweep = cli.cwd / "runs" / "sw"
    code = ("import sys, time\nimport dlx.runner as r\norig = r._run_job\n"
            "def slow(*a):\n    time.sleep(4)\n    return orig(*a)\nr._run_job = slow\n"
            f"sys.argv = ['dlx', 'run', '-m', 'optimizer=sgd,adam', 'hydra.sweep.dir={sweep}']\n"
            "from dlx.cli import main\nmain()\n")
    first = subprocess.Popen([sys.executable, "-c", code], cwd=cli.cwd, env=cli.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (sweep / "0" / ".dlx.lock.who").exists())
    second = cli("run", "-m", "optimizer=sgd,adam", f"hydra.sweep.dir={sweep}")
    assert_one_error_line(second, "is in use by another dlx sweep")
    removed = cli("rm", "--yes", str(sweep), "--root", str(cli.cwd / "runs"))
    assert_one_error_line(removed, "is in use")
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert [json.loads((sweep / m / "summary.json").read_text())["status"]
            for m in ("0", "1")] == ["completed", "completed"]


def test_concurrent_notes_and_tags_are_all_kept(cli, default_run, tmp_path):
    from tests.test_run_management import copy_run

    run = copy_run(default_run, tmp_path / "runs", default_run.name)
    procs = [cli.popen("note", str(run), f"note number {i}") for i in range(6)]
    procs += [cli.popen("tag", str(run), f"t{i}") for i in range(6)]
    for p in procs:
        p.communicate(timeout=120)
        assert p.returncode == 0
    notes = (run / "notes.md").read_text()
    assert all(f"note number {i}" in notes for i in range(6)), notes
    assert sorted((run / "tags.txt").read_text().split()) == [f"t{i}" for i in range(6)]


def test_a_job_refuses_a_finished_run_of_another_config_whatever_its_sweeper(cli,
                                                                               default_run,
                                                                               tmp_path):
    """The guard lives in the job (every sweeper and launcher passes there, the Optuna sweeper
    included, which never calls the basic sweeper's member checks)."""
    from omegaconf import OmegaConf

    from dlx.errors import Rejected
    from dlx.runner import run_job
    from tests.test_run_management import copy_run

    run = copy_run(default_run, tmp_path / "runs", default_run.name)
    def files():
        return {p.name: p.read_bytes() for p in run.iterdir()
                if p.is_file() and not p.name.startswith(".dlx.lock")}

    before = files()
    config = OmegaConf.create(__import__("yaml").safe_load((run / "config.yaml").read_text()))
    config.optimizer.lr = 0.5  # another config
    with pytest.raises(Rejected) as e:
        run_job(config, run, ["optimizer.lr=0.5"])
    assert "holds a completed run with a different config" in str(e.value.args[0])
    assert files() == before


def test_a_finished_diverged_run_is_skipped_when_run_again(cli, default_run, tmp_path):
    """A divergence is a result: running the same config into its directory again skips it
    (it was retrained, and a Ctrl-C then turned the result into `interrupted`)."""
    from tests.test_run_management import copy_run

    run = copy_run(default_run, cli.cwd / "runs", default_run.name, status="diverged",
                   diverged_at_step=7)
    metrics = (run / "metrics.csv").read_bytes()
    again = cli("run", f"hydra.run.dir={run}")
    assert again.returncode == 0, again.stderr
    assert "already diverged with this config; skipped" in again.stderr
    assert (run / "metrics.csv").read_bytes() == metrics
    assert json.loads((run / "summary.json").read_text())["status"] == "diverged"


def test_an_output_option_never_overwrites_a_record(cli, default_run):
    from tests.test_run_management import copy_run

    run = copy_run(default_run, cli.cwd / "runs", default_run.name)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    for args in (("compare", str(run), "--csv", str(run / "metrics.csv")),
                 ("compare", str(run), "--csv", str(run / "summary.json")),
                 ("bench", "--out", str(run / "summary.json"))):
        assert_one_error_line(cli(*args), "is a file of the record")
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    assert cli("compare", str(run), "--csv", str(cli.cwd / "table.csv")).returncode == 0


@pytest.mark.parametrize("left", ["hydra", "summary", "config"])
def test_a_start_cut_short_is_carried_on_by_the_same_command(cli, left):
    """Killed between the record's first files (Hydra's alone; a summary that says running, no
    step; or a config.yaml alone, as dlx wrote them before): `dlx list` names the folder,
    `dlx rm` removes it (it refused: "not a run"), running the command again carries on."""
    import shutil
    import socket

    run = cli.cwd / "runs" / "cut"
    (run / ".hydra").mkdir(parents=True)
    (run / "run.log").write_text("")
    if left == "summary":
        (run / "summary.json").write_text(json.dumps({"status": "running", "steps": 0,
                                                      "pid": 999999, "pid_start": "1",
                                                      "host": socket.gethostname()}))
    elif left == "config":
        (run / "config.yaml").write_text("seed: 0\n")
    listed = cli("list", str(cli.cwd / "runs"))
    assert listed.returncode == 0, listed.stderr
    if left == "summary":  # a record, with a summary to show: the run is lost
        assert "lost" in listed.stdout
    else:
        assert f"{run}: a start cut short, no record in it" in listed.stdout, listed.stdout
    other = run.with_name("cut2")
    shutil.copytree(run, other)
    removed = cli("rm", str(other), "--root", str(cli.cwd / "runs"))
    assert removed.returncode == 0 and not other.exists(), removed.stderr
    again = cli("run", f"hydra.run.dir={run}")
    assert again.returncode == 0, again.stderr
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"


def test_a_completed_run_killed_while_drawing_gets_its_figures_when_run_again(cli,
                                                                              default_run):
    import shutil

    from tests.test_run_management import copy_run

    run = copy_run(default_run, cli.cwd / "runs", default_run.name)
    shutil.rmtree(run / "plots")
    again = cli("run", f"hydra.run.dir={run}")
    assert again.returncode == 0 and "skipped" in again.stderr, again.stderr
    assert len(list((run / "plots").glob("*.png"))) >= 2


@pytest.fixture
def interrupted(cli):
    """A run interrupted after its first checkpoint (epochs=400 of the default run, SIGINT)."""
    run = cli.cwd / "runs" / "r"
    args = ("run", "epochs=400", f"hydra.run.dir={run}", "progress=log")
    proc = cli.popen(*args)
    wait_for(lambda: (run / "checkpoint.npz").is_file())
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    return run, args


@pytest.mark.parametrize("damage, says", [
    ("shorter", "fewer than the"), ("missing", "metrics.csv is missing"),
    ("empty_checkpoint", "checkpoint.npz is unreadable"),
    ("torn_checkpoint", "checkpoint.npz is unreadable"),
])
def test_resume_verifies_the_record_and_otherwise_starts_over_saying_so(cli, interrupted,
                                                                         damage, says):
    """Resume checks what it continues: metrics.csv shorter than the checkpoint recorded (it
    was padded with NULs), missing (the run became `lost`), a zero-byte or torn checkpoint (a
    traceback naming no file): one warning line naming the file, and the run starts over and
    completes with a whole metrics.csv."""
    run, args = interrupted
    metrics, ckpt = run / "metrics.csv", run / "checkpoint.npz"
    if damage == "shorter":
        metrics.write_bytes(metrics.read_bytes()[:len(metrics.read_bytes()) // 3])
    elif damage == "missing":
        metrics.unlink()
    elif damage == "empty_checkpoint":
        ckpt.write_bytes(b"")
    else:
        ckpt.write_bytes(ckpt.read_bytes()[:100])
    again = cli(*args)
    assert again.returncode == 0, again.stderr
    assert says in again.stderr and "starting over" in again.stderr, again.stderr
    assert "Traceback" not in again.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["resumed_from_epoch"] is None
    data = metrics.read_bytes()
    assert b"\x00" not in data and data.startswith(b"step,epoch,split,metric,value\n")
