"""Run management: `dlx note`, `dlx tag`, `dlx rm` (the trash), `dlx list`'s filters,
`dlx rerun --verify`, and what `dlx show` prints of them. The CLI runs in subprocesses, as a
user types it, on copies of one small shared run (edited where a test needs another status,
experiment, time or task)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import assert_one_error_line

HEADING = re.compile(r"^## \d{4}-\d{2}-\d{2} \d{2}:\d{2}$", re.M)


def copy_run(src: Path, root: Path, name: str, **summary_changes) -> Path:
    run = root / name
    shutil.copytree(src, run)
    if summary_changes:
        summary = json.loads((run / "summary.json").read_text())
        summary.update(summary_changes)
        (run / "summary.json").write_text(json.dumps(summary))
    return run


def make_sweep(src: Path, root: Path, name: str, n: int = 2) -> Path:
    sweep = root / name
    sweep.mkdir(parents=True)
    (sweep / "multirun.yaml").write_text("{}\n")
    for i in range(n):
        copy_run(src, sweep, str(i), overrides=[f"seed={i}"])
    return sweep


def tree(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` and its bytes: to check that nothing changed."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


@pytest.fixture
def root(cli, default_run) -> Path:
    """runs/ with a plain run, a regression-like run, and a sweep of two members."""
    root = cli.cwd / "runs"
    root.mkdir()
    copy_run(default_run, root, "20261120-100000-logreg-aaaaaa")
    copy_run(default_run, root, "20261121-100000-house_prices-bbbbbb", experiment="house_prices",
             started_at="2026-11-21T10:00:00+00:00",
             final={"val/loss": 0.25, "val/rmse": 51000.0, "train/loss": 0.2})
    make_sweep(default_run, root, "20261122-100000-optimizers-cccccc")
    return root


def test_the_new_commands_help_imports_nothing_heavy():
    code = ("import sys\nfrom dlx.cli import main\n"
            "for cmd in ('note', 'tag', 'rm', 'rerun', 'list'):\n"
            "    sys.argv = ['dlx', cmd, '--help']\n"
            "    try:\n        main()\n    except SystemExit as e:\n        assert e.code == 0\n"
            "heavy = [m for m in ('numpy', 'hydra', 'omegaconf', 'pandas', 'matplotlib') "
            "if m in sys.modules]\nprint('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "COLUMNS": "100"})
    assert "HEAVY []" in out.stdout, out.stdout
    for text in ("Usage: dlx note", "notes.md", "tags.txt", "mv runs/.trash/ID runs/",
                 "--verify", "--since"):
        assert text in out.stdout, text


# --- notes -----------------------------------------------------------------------------------

def test_notes_are_dated_markdown_shown_and_compared(cli, root):
    run = root / "20261120-100000-logreg-aaaaaa"
    first = cli("note", str(run), "The loss falls as log 2 at step 0: p = 1/2 for both classes.")
    assert first.returncode == 0, first.stderr
    assert cli("note", str(run), "Failure mode: lr 10 diverges\nwithin 3 steps.").returncode == 0
    text = (run / "notes.md").read_text()
    assert len(HEADING.findall(text)) == 2
    blocks = text.split("\n\n")  # heading, blank line, text; notes one blank line apart
    assert HEADING.match(blocks[0]) and blocks[1].startswith("The loss falls")
    assert HEADING.match(blocks[2]) and blocks[3] == "Failure mode: lr 10 diverges\nwithin 3 steps.\n"

    show = cli("show", str(run))
    assert show.returncode == 0 and "within 3 steps." in show.stdout and "notes" in show.stdout
    member = root / "20261122-100000-optimizers-cccccc" / "1"
    assert cli("note", str(member), "seed 1 is the odd one").returncode == 0
    assert cli("note", str(member.parent), "the whole sweep").returncode == 0
    assert (member.parent / "notes.md").is_file()
    shown = cli("show", str(member.parent))  # a sweep: its members' statuses and its notes
    assert shown.returncode == 0, shown.stderr
    assert "sweep: 2 completed" in shown.stdout and "the whole sweep" in shown.stdout
    assert "seed 1 is the odd one" in cli("show", str(member)).stdout
    compared = cli("compare", str(run), str(member.parent), "--notes", "--md")
    assert compared.returncode == 0, compared.stderr
    lines = compared.stdout.splitlines()
    assert lines[0].endswith("| notes |")
    assert "| (2 notes) Failure mode: lr 10 diverges |" in lines[2]  # the latest note's line
    # a sweep's own notes go with each of its members (the README's "A day in the plan")
    assert lines[3].endswith("| sweep: the whole sweep |")
    assert lines[4].endswith("| seed 1 is the odd one; sweep: the whole sweep |")

    # nothing is cut: a pipe gets the latest note's whole first line, the CSV every note whole
    long = ("**bold claim**: Adam's lr 1e-3 beats SGD's 0.1 on every seed, by more than the "
            "seed spread | of 0.002")
    assert cli("note", str(member.parent), long + "\nsecond line").returncode == 0
    piped = cli("compare", str(member.parent), "--notes")
    assert piped.returncode == 0 and "…" not in piped.stdout, piped.stdout
    assert " ".join(piped.stdout.split()).count(long) == 2, piped.stdout  # one per member
    csv_file = cli.cwd / "notes.csv"
    assert cli("compare", str(member.parent), "--notes", "--csv", str(csv_file)).returncode == 0
    import csv as _csv
    with open(csv_file, newline="") as f:
        cells = [r["notes"] for r in _csv.DictReader(f)]
    assert all(long + "\nsecond line" in c and "the whole sweep" in c for c in cells), cells
    assert "seed 1 is the odd one" in cells[1] and "seed 1" not in cells[0]


def test_bad_notes_change_nothing(cli, root):
    run = root / "20261120-100000-logreg-aaaaaa"
    before = tree(root)
    for args, needle in ((["note", str(run), "  "], "empty"),
                         (["note", str(run)], "--edit"),
                         (["note", str(run), "x", "--edit"], "not both"),
                         (["note", str(root / "nope"), "x"], "no such directory"),
                         (["note", str(root), "x"], "not a run or sweep")):
        assert_one_error_line(cli(*args), needle)
    assert tree(root) == before


def test_notes_and_tags_on_a_read_only_run_are_one_error_line(cli, root):
    """A read-only run folder (e.g. a copy on a read-only mount): one line naming the file,
    exit 2, nothing changed -- not an OSError raised again by the temp file's cleanup."""
    from tests.test_cli_ux import run_readonly

    run = root / "20261120-100000-logreg-aaaaaa"
    (run / "tags.txt").write_text("old\n")
    before = tree(run)
    for args, name in ((["note", str(run), "x"], "notes.md"),
                       (["note", str(run), "--edit"], "notes.md"),  # before the editor opens
                       (["tag", str(run), "x"], "tags.txt"),
                       (["tag", str(run), "old", "--remove"], "tags.txt")):
        result = run_readonly(cli, run, *args, env={"EDITOR": "false"})
        assert_one_error_line(result, f"cannot write {run / name}: read-only")
    assert tree(run) == before


def test_note_edit_opens_the_editor_and_an_empty_edit_changes_nothing(cli, root):
    run = root / "20261120-100000-logreg-aaaaaa"
    env = dict(cli.env)

    def edit(editor: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dlx.cli", "note", str(run), "--edit"],
                              cwd=cli.cwd, env={**env, "EDITOR": editor}, capture_output=True,
                              text=True)

    unchanged = edit("true")  # saves the file as offered: a heading and nothing under it
    assert unchanged.returncode == 0 and "unchanged" in unchanged.stderr
    assert not (run / "notes.md").exists()
    script = cli.cwd / "my editor.sh"  # $EDITOR may hold arguments, and paths with spaces
    script.write_text("#!/bin/sh\nprintf 'derivation: dL/dw = X^T (p - y) / N\\n' >> \"$2\"\n")
    written = edit(f"sh '{script}' --wait")
    assert written.returncode == 0, written.stderr
    text = (run / "notes.md").read_text()
    assert HEADING.match(text.splitlines()[0]) and "dL/dw = X^T (p - y) / N" in text
    before = text
    assert_one_error_line(edit("false"), "exited with status 1")
    assert_one_error_line(edit("/nonexistent/editor"), "cannot start the editor")
    assert (run / "notes.md").read_text() == before


# --- tags ------------------------------------------------------------------------------------

def test_tags_are_a_file_of_their_own_and_filter_the_list(cli, root):
    run = root / "20261120-100000-logreg-aaaaaa"
    summary = (run / "summary.json").read_bytes()
    result = cli("tag", str(run), "baseline", "lr-0.1")
    assert result.returncode == 0, result.stderr
    assert (run / "tags.txt").read_text() == "baseline\nlr-0.1\n"
    assert (run / "summary.json").read_bytes() == summary  # the record is not rewritten
    sweep = root / "20261122-100000-optimizers-cccccc"
    assert cli("tag", str(sweep), "sweepy").returncode == 0

    listing = cli("list", "--tag", "baseline")
    assert listing.returncode == 0, listing.stderr
    assert run.name in listing.stdout and "baseline, lr-0.1" in listing.stdout
    assert sweep.name not in listing.stdout and "house_prices" not in listing.stdout
    swept = cli("list", "--tag", "sweepy")  # a sweep's tag counts for its members
    assert sweep.name in swept.stdout and "└ 1" in swept.stdout and run.name not in swept.stdout

    assert_one_error_line(cli("tag", str(run), "no such", "x"), "invalid tag 'no such'")
    assert_one_error_line(cli("tag", str(run), "nope", "--remove"), "no tag 'nope'",
                          "baseline, lr-0.1")
    assert (run / "tags.txt").read_text() == "baseline\nlr-0.1\n"
    assert cli("tag", str(run), "baseline", "lr-0.1", "--remove").returncode == 0
    assert not (run / "tags.txt").exists()
    assert "no runs under runs match --tag baseline" in cli("list", "--tag", "baseline").stdout


# --- the trash -------------------------------------------------------------------------------

def test_rm_moves_to_the_trash_restorably_and_purge_asks(cli, root):
    run, sweep = root / "20261120-100000-logreg-aaaaaa", root / "20261122-100000-optimizers-cccccc"
    content = tree(run)
    result = cli("rm", str(run), str(sweep))
    assert result.returncode == 0, result.stderr
    assert not run.exists() and not sweep.exists()
    assert tree(root / ".trash" / run.name) == content
    listing = cli("list").stdout
    assert run.name not in listing and sweep.name not in listing and ".trash" not in listing
    assert "house_prices" in listing

    (root / ".trash" / run.name).rename(run)  # restored by moving it back, as the help says
    assert run.name in cli("list").stdout and tree(run) == content

    refused = cli("rm", "--purge", stdin=subprocess.DEVNULL)  # no answer is never a yes
    assert refused.returncode == 2 and refused.stderr.splitlines()[-1].startswith("error: not confirmed")
    assert (root / ".trash" / sweep.name).is_dir()
    declined = cli("rm", "--purge", input="n\n")
    assert declined.returncode == 0 and (root / ".trash" / sweep.name).is_dir()
    purged = cli("rm", "--purge", "--yes")
    assert purged.returncode == 0 and not any((root / ".trash").iterdir())


def test_rm_refuses_what_it_must_not_move_and_moves_nothing(cli, root, tmp_path_factory):
    run, sweep = root / "20261120-100000-logreg-aaaaaa", root / "20261122-100000-optimizers-cccccc"
    elsewhere = copy_run(run, tmp_path_factory.mktemp("other"), run.name)
    live = copy_run(run, root, "20261123-100000-logreg-dddddd", status="running",
                    pid=os.getpid(), host=socket.gethostname(), pid_start=_start(os.getpid()))
    before = tree(root)
    assert_one_error_line(cli("rm", str(run), str(elsewhere)), "not under the runs root")
    assert_one_error_line(cli("rm", str(run), str(sweep / "1")), "member of the sweep")
    assert_one_error_line(cli("rm", str(run), str(live)), "still running", str(os.getpid()))
    assert_one_error_line(cli("rm", str(run), str(root / "nope")), "no such directory")
    assert_one_error_line(cli("rm", str(root)), "not a run or sweep")
    assert_one_error_line(cli("rm"), "give the runs")
    assert tree(root) == before and not (root / ".trash").exists()

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid names no process now: the run shows as lost and may go
    edit = json.loads((live / "summary.json").read_text())
    edit.update(pid=dead.pid, pid_start="0")
    (live / "summary.json").write_text(json.dumps(edit))
    assert "lost" in cli("list", "--status", "lost").stdout
    assert cli("rm", str(live)).returncode == 0 and not live.exists()


def _start(pid: int) -> str | None:
    from dlx.records.store import process_start

    return process_start(pid)


# --- dlx list: filters, sort, limit, the task's metrics ----------------------------------------

def _ids(stdout: str) -> list[str]:
    return [ln.split()[0] for ln in stdout.splitlines() if re.match(r"^\d{8}-", ln)]


def _members(stdout: str) -> list[str]:
    return re.findall(r"└ (\S+)", stdout)


def test_list_filters_sorts_and_limits(cli, root, default_run):
    runs = [copy_run(default_run, root, f"2026111{i}-100000-logreg-00000{i}",
                     started_at=f"2026-11-1{i}T10:00:00+00:00", wall_time_s=10.0 - i,
                     final={"val/acc": 0.5 + i / 10, "val/loss": 1.0 - i / 10})
             for i in range(1, 4)]
    edit = json.loads((runs[0] / "summary.json").read_text())
    edit["status"] = "failed"
    (runs[0] / "summary.json").write_text(json.dumps(edit))

    failed = cli("list", "--status", "failed")
    assert failed.returncode == 0 and _ids(failed.stdout) == [runs[0].name]
    both = _ids(cli("list", "--status", "failed,completed", "--since", "2026-11-12").stdout)
    assert runs[0].name not in both and runs[1].name in both
    assert _ids(cli("list", "--experiment", "house_prices").stdout) == [
        "20261121-100000-house_prices-bbbbbb"]
    plain = _ids(cli("list", "--experiment", "none").stdout)
    assert "20261121-100000-house_prices-bbbbbb" not in plain and runs[1].name in plain
    recent = _ids(cli("list", "--since", "2d").stdout)  # the copies of today's run
    assert "20261120-100000-logreg-aaaaaa" in recent and runs[2].name not in recent

    by_acc = _ids(cli("list", "--sort", "val/acc", "--limit", "2").stdout)
    assert by_acc == [runs[0].name, runs[1].name]  # 0.6, 0.7: ascending; no val/acc last
    best = _ids(cli("list", "--sort", "-val/acc", "--limit", "1").stdout)
    assert best == ["20261120-100000-logreg-aaaaaa"]  # 0.995 (its sweep's too: the first)
    longest = _ids(cli("list", "--sort", "-duration", "--limit", "1").stdout)
    assert longest == [runs[0].name]  # 9 s
    newest = cli("list", "--limit", "1").stdout  # no --sort: the most recent run
    assert _ids(newest) == ["20261122-100000-optimizers-cccccc"]
    assert _members(newest) == ["1"]  # its last member, under its sweep's line
    # --limit counts runs, a sweep's members one by one: "the two best" are two runs
    best2 = cli("list", "--sort", "-val/acc", "--limit", "2").stdout
    assert _ids(best2) == ["20261120-100000-logreg-aaaaaa", "20261122-100000-optimizers-cccccc"]
    assert _members(best2) == ["0"]
    assert _members(cli("list", "--sort", "-val/acc", "--limit", "3").stdout) == ["0", "1"]

    before = tree(root)
    assert_one_error_line(cli("list", "--status", "done"), "unknown status 'done'", "completed")
    assert_one_error_line(cli("list", "--since", "last week"), "--since")
    assert_one_error_line(cli("list", "--sort", "nope"), "cannot sort by 'nope'", "val/acc")
    assert_one_error_line(cli("list", "--limit", "0"), "--limit")
    assert tree(root) == before


def test_list_shows_the_metrics_each_task_reports(cli, root):
    listing = cli("list")
    head = next(ln for ln in listing.stdout.splitlines() if ln.startswith("id"))
    assert "val/acc" in head and "val/rmse" in head
    line = next(ln for ln in listing.stdout.splitlines() if "house_prices-bbbbbb" in ln)
    assert "5.1e+04" in line  # its RMSE, in dollars; its accuracy "-"
    only = cli("list", "--experiment", "house_prices")
    head = next(ln for ln in only.stdout.splitlines() if ln.startswith("id"))
    assert "val/rmse" in head and "val/acc" not in head


# --- dlx show ----------------------------------------------------------------------------------

def test_show_gives_the_step_budget_and_the_rnns_cell(cli, root):
    run = root / "20261120-100000-logreg-aaaaaa"
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["max_steps"] = 40
    config["model"] = {"name": "rnn", "cell": "gru", "hidden": 48, "layers": 1}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    assert cli("tag", str(run), "rnn-try").returncode == 0
    out = cli("show", str(run)).stdout
    last_epoch = int((run / "metrics.csv").read_text().splitlines()[-1].split(",")[1])
    assert f"max_steps=40 ({last_epoch} epochs)" in out and "epochs=20" not in out
    assert "rnn cell=gru hidden=48 layers=1" in out and "rnn-try" in out


# --- dlx rerun -------------------------------------------------------------------------------

@pytest.mark.slow
def test_rerun_verify_identical_and_tampered(cli, default_run):
    root = cli.cwd / "runs"
    run = copy_run(default_run, root, default_run.name)
    same = cli("rerun", str(run), "--verify")
    assert same.returncode == 0, same.stderr
    assert same.stdout.startswith("identical: ") and "warning" not in same.stderr
    new = Path(same.stdout.splitlines()[-1])
    assert new.parent == root and new != run and (new / "metrics.csv").is_file()
    summary = json.loads((new / "summary.json").read_text())
    assert summary["seed"] == 0 and summary["threads"]["requested"] == 1

    lines = (run / "metrics.csv").read_text().splitlines(keepends=True)
    lines[40] = lines[40].rstrip("\n") + "1\n"  # one digit more in row 41
    (run / "metrics.csv").write_text("".join(lines))
    tampered = cli("rerun", str(run), "--verify")
    assert tampered.returncode == 1, tampered.stderr
    out = tampered.stdout.splitlines()
    assert out[0] == "differ: metrics.csv first differs at line 41"
    assert out[1].endswith(lines[40].rstrip("\n")) and out[2].endswith(lines[40].rstrip("\n")[:-1])


def test_rerun_refuses_sweeps_and_unfinished_records_before_running(cli, root):
    sweep = root / "20261122-100000-optimizers-cccccc"
    before = tree(root)
    assert_one_error_line(cli("rerun", str(sweep)), "is a sweep", f"{sweep}/0 --verify")
    run = root / "20261120-100000-logreg-aaaaaa"
    edit = json.loads((run / "summary.json").read_text())
    edit["status"] = "interrupted"
    (run / "summary.json").write_text(json.dumps(edit))
    before = tree(root)
    assert_one_error_line(cli("rerun", str(run), "--verify"), "is interrupted")
    assert_one_error_line(cli("rerun", str(root / "nope")), "no such directory")
    assert tree(root) == before


def test_rerun_plan_keeps_what_computes_and_the_recorded_threads(root, monkeypatch):
    from dlx.rerun import plan

    run = root / "20261120-100000-logreg-aaaaaa"
    summary = json.loads((run / "summary.json").read_text())
    summary.update(overrides=["optimizer=adam", "hydra.run.dir=runs/x", "runs_dir=/elsewhere",
                              "+seed=7", "progress=none", "dataset.n_samples=200",
                              "++hydra.run.dir=/tmp/elsewhere", "+hydra/callbacks=x",
                              "~hydra.output_subdir"],
                   threads={"requested": None, "OMP_NUM_THREADS": "2", "libraries": []})
    (run / "summary.json").write_text(json.dumps(summary))
    config = yaml.safe_load((run / "config.yaml").read_text())
    config.update(seed=7, threads=None)
    config["optimizer"]["name"], config["dataset"]["n_samples"] = "adam", 200
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")  # not recorded: not passed on
    args, env, _, _ = plan(run)
    assert args == ["optimizer=adam", "dataset.n_samples=200", "seed=7", "threads=null"]
    assert env["OMP_NUM_THREADS"] == "2" and "OPENBLAS_NUM_THREADS" not in env


@pytest.mark.parametrize("override, says", [
    ("optimizer=adam", "chose 'adam', its config.yaml 'sgd'"),
    ("dataset.n_samples=7", "sets 7, its config.yaml"),
    ("+callbacks.evil._target_=os.remove", "names callbacks.evil._target_, which its config"),
    ("--config-dir=/tmp/evil", "is a command-line option"),
])
def test_rerun_refuses_a_record_whose_overrides_are_not_its_config(root, override, says):
    """An edited summary.json cannot make dlx rerun run what the record did not: an override
    the config.yaml does not hold (a value, a key, a flag) is refused, naming it; Hydra's own
    keys, in any spelling, are dropped (test above)."""
    from dlx.errors import UsageError
    from dlx.rerun import plan

    run = root / "20261120-100000-logreg-aaaaaa"
    summary = json.loads((run / "summary.json").read_text())
    summary["overrides"] = [override]
    (run / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(UsageError, match="an edited or damaged record") as e:
        plan(run)
    assert says in str(e.value), str(e.value)


def test_first_difference():
    from dlx.rerun import first_difference

    def diff(a: bytes, b: bytes, tmp=Path(os.environ.get("TMPDIR", "/tmp"))):
        import tempfile

        with tempfile.TemporaryDirectory(dir=tmp) as d:
            (Path(d) / "a").write_bytes(a)
            (Path(d) / "b").write_bytes(b)
            return first_difference(Path(d) / "a", Path(d) / "b")

    assert diff(b"h\n1\n2\n", b"h\n1\n2\n") is None
    assert diff(b"h\n1\n2\n", b"h\n1\n3\n") == (3, "2", "3")
    assert diff(b"h\n1\n2\n", b"h\n1\n") == (3, "2", None)  # None: the file has ended
    assert diff(b"h\n1\n", b"h\n1\n2\n") == (3, None, "2")
    assert diff(b"h\n1", b"h\n1\n") == (2, "1 (no newline at the end)", "1")
