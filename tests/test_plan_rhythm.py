"""`dlx plan`: the 60 days in weeks of 5 build, 1 consolidation and 1 reading day; this week,
the next deliverable, and what counts as done (issue #17)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from dlx import plan
from tests.conftest import assert_one_error_line


def test_the_rhythm_fills_the_build_days_in_the_plans_order():
    assert [plan.kind(d) for d in range(1, 15)] == (["build"] * 5 + ["consolidation", "reading"]) * 2
    assert len(plan.BUILD_DAYS) == 44 and plan.BUILD_DAYS[-4:] == [57, 58, 59, 60]
    rows = plan.schedule()
    assert [r for r, _ in rows] == [r for r in plan.PLAN if r[1] != "series"]
    days = [d for _, ds in rows for d in ds]
    assert days == plan.BUILD_DAYS  # every build day has one deliverable, in order
    assert all(len(ds) >= 1 for _, ds in rows)
    # each phase ends where the plan ends it (day 20, 40, 60), give or take a day
    end = {r[0]: ds[-1] for r, ds in rows}
    assert end == {1: 19, 2: 39, 3: 60}
    # a deliverable's share of build days follows its share of the plan's days
    lr_schedules = next(ds for r, ds in rows if r[3] == "lr_schedules")  # plan days 17-20
    gd_variants = next(ds for r, ds in rows if r[3] == "gd_variants")     # plan day 7
    assert len(lr_schedules) == 3 and len(gd_variants) == 1


def fake_run(root: Path, name: str, experiment: str | None, status: str, **extra) -> Path:
    run = root / name
    run.mkdir(parents=True)
    summary = {"status": status, "experiment": experiment, "finished_at": name[:15], **extra}
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "metrics.csv").write_text("step,epoch,split,metric,value\n")
    return run


MY_ADAM = {"source": {"targets": {"optimizer": "mine.optim.Adam"},
                      "files": {"mine/optim.py": "a" * 64}}}
MY_LOGREG = {"source": {"targets": {"model": "mine.models.LogReg"},
                        "files": {"mine/models.py": "b" * 64}}}


def passed_checks(ws: Path) -> Path:
    """``ws`` a workspace whose `dlx check` passed MY_ADAM's and MY_LOGREG's files (the bytes
    their runs record)."""
    from dlx.checks import store

    (ws / "dlx-workspace.yaml").write_text("version: 1\n")
    (ws / store.FILE).parent.mkdir(parents=True, exist_ok=True)
    verdicts = {f"{rel}:{cls}": {"file": rel, "class": cls,
                                 "verdicts": {sha: {"passed": True}}}
                for rel, cls, sha in (("mine/optim.py", "Adam", "a" * 64),
                                      ("mine/models.py", "LogReg", "b" * 64))}
    (ws / store.FILE).write_text(json.dumps(verdicts))
    return ws / store.FILE


@pytest.fixture
def adam_checked(tmp_path, monkeypatch):
    """A workspace whose `dlx check` passed MY_ADAM's mine/optim.py (the bytes its runs record)."""
    ws = tmp_path / "ws"
    ws.mkdir()
    monkeypatch.setenv("DLX_WORKSPACE", str(ws))
    return passed_checks(ws)


def test_a_checked_deliverable_is_done_once_its_check_passed(tmp_path, adam_checked):
    """The optimizers (a group `dlx check` grades): a run of the learner's Adam counts once the
    check passed for the file the run recorded; a failing verdict, or none, shows "yours ran"."""
    root = tmp_path / "runs"
    fake_run(root, "20261201-100000-optimizers-aaaaaa", "optimizers", "completed", **MY_ADAM)
    assert plan.completed_runs(root)["optimizers"] == "20261201-100000-optimizers-aaaaaa"
    verdicts = json.loads(adam_checked.read_text())
    verdicts["mine/optim.py:Adam"]["verdicts"]["a" * 64].update(passed=False,
                                                                stage="1 fixed inputs")
    adam_checked.write_text(json.dumps(verdicts))
    done = plan.completed_runs(root)
    assert "optimizers" not in done and done["unchecked:optimizers"].endswith("aaaaaa")
    assert "yours ran" in plan._mark("optimizers", done)
    assert "dlx check optimizer=" in plan._mark("optimizers", done)
    adam_checked.unlink()  # never checked
    assert "optimizers" not in plan.completed_runs(root)


def test_a_from_scratch_deliverable_is_done_only_by_the_learners_code(tmp_path, adam_checked):
    """"logistic regression from scratch": dlx's reference run shows as "reference ran" and is
    not counted; the learner's own model is; their own optimizer on logreg is not."""
    root = tmp_path / "runs"
    fake_run(root, "20261201-100000-logreg-aaaaaa", "logreg", "completed")
    done = plan.completed_runs(root)
    assert "logreg" not in done and done["reference:logreg"] == "20261201-100000-logreg-aaaaaa"
    assert "reference ran" in plan._mark("logreg", done) and "model=" in plan._mark("logreg", done)
    assert plan._count(done).startswith("0 of")
    fake_run(root, "20261201-110000-logreg-bbbbbb", "logreg", "completed", **MY_ADAM)
    assert "logreg" not in plan.completed_runs(root)  # their optimizer, dlx's model
    fake_run(root, "20261201-120000-logreg-cccccc", "logreg", "completed", **MY_LOGREG)
    done = plan.completed_runs(root)
    assert done["logreg"] == "20261201-120000-logreg-cccccc"
    assert plan._mark("logreg", done).startswith("[green]✓[/]")
    assert plan._count(done).startswith("1 of")


def test_only_a_completed_run_of_the_experiment_counts(tmp_path, adam_checked):
    root = tmp_path / "runs"
    fake_run(root, "20261201-100000-logreg-aaaaaa", None, "completed")       # a plain logreg run
    fake_run(root, "20261201-110000-loss_surface-bbbbbb", "loss_surface", "diverged")
    fake_run(root, "20261201-120000-gd_variants-cccccc", "gd_variants", "running",
             pid=2**22 + 7, pid_start="1", host=socket.gethostname())       # dead: lost
    fake_run(root, "20261201-130000-conditioning-dddddd", "conditioning", "completed")
    sweep = root / "20261201-140000-optimizers-eeeeee"
    fake_run(sweep, "0", "optimizers", "failed")
    fake_run(sweep, "1", "optimizers", "completed", **MY_ADAM)
    (sweep / "multirun.yaml").write_text("{}\n")
    done = plan.completed_runs(root)
    assert done == {"conditioning": "20261201-130000-conditioning-dddddd",
                    "optimizers": "20261201-140000-optimizers-eeeeee"}
    # `dlx rerun SWEEP/1` later: a completed run of the experiment, but the plan runs it as a
    # sweep (-m), so the sweep stays the one shown; a single run counts when there is no sweep
    fake_run(root, "20261202-100000-optimizers-ffffff", "optimizers", "completed", **MY_ADAM)
    fake_run(root, "20261202-110000-logreg-gggggg", "logreg", "completed", **MY_LOGREG)
    done = plan.completed_runs(root)
    assert done["optimizers"] == "20261201-140000-optimizers-eeeeee"
    assert done["logreg"] == "20261202-110000-logreg-gggggg"
    newer = root / "20261203-100000-optimizers-hhhhhh"  # a newer sweep is shown instead
    fake_run(newer, "0", "optimizers", "completed", finished_at="20261203-110000", **MY_ADAM)
    (newer / "multirun.yaml").write_text("{}\n")
    assert plan.completed_runs(root)["optimizers"] == newer.name


def test_on_a_date_is_not_today(tmp_path, capsys):
    from datetime import date

    plan.print_week(tmp_path, date(2026, 11, 15), date(2026, 12, 4), on=True)
    out = capsys.readouterr().out
    assert "on day 20 of 60, Fri 4 Dec 2026, a consolidation day; week 3 of 9:" in out
    assert "today" not in out.split("\n")[1]
    plan.print_week(tmp_path, date(2026, 11, 15), date(2026, 12, 4))
    assert "today is day 20 of 60, Fri 4 Dec 2026" in capsys.readouterr().out


def test_a_written_report_counts_for_the_phase_it_covers(tmp_path):
    """Phase 2's report deliverable is done by a Phase 2 report (its report.json says so), not
    by a report of Phase 1 or of runs named by path; Phase 3's written explanation likewise."""
    root = tmp_path / "runs"
    for name, phase in (("report-a", 1), ("report-b", None)):
        (root / "reports" / name).mkdir(parents=True)
        (root / "reports" / name / "report.json").write_text(json.dumps({"phase": phase}))
    assert plan.completed_runs(root) == {"report:1": "reports/report-a"}
    keys = {plan._key(r) for r in plan.PLAN if r[3] is None}
    assert keys == {"report:2", "report:3"}
    (root / "reports" / "report-c").mkdir()
    (root / "reports" / "report-c" / "report.json").write_text(json.dumps({"phase": 2}))
    assert plan.completed_runs(root)["report:2"] == "reports/report-c"


@pytest.mark.slow
def test_plan_shows_this_week_and_the_next_deliverable(cli):
    root = cli.cwd / "runs"
    passed_checks(cli.cwd)  # the learner's logreg, checked
    result = cli("plan", "--start", "2026-12-01", "--on", "2026-12-09")
    assert result.returncode == 0, result.stderr
    assert json.loads((root / ".plan.json").read_text()) == {"start": "2026-12-01"}
    out = result.stdout
    assert "on day 9 of 60, Wed 9 Dec 2026, a build day; week 2 of 9:" in out
    days = [ln for ln in out.splitlines() if ln[:4].strip().lstrip("▶ ").isdigit()]
    assert [ln[18:31].strip() for ln in days] == ["build"] * 5 + ["consolidation", "reading"]
    assert days[1].startswith("▶  9  Wed 9 Dec   build          conditioning experiment (2/2)")
    assert out.split(days[1])[1].splitlines()[1].strip() == "dlx run experiment=conditioning"
    assert days[-1].startswith("  14  Mon 14 Dec  reading") and "LR range test" in days[-1]
    assert "next deliverable: logistic regression from scratch (days 1-2, 1-2 Dec; 5 build " \
           "days behind)\n  dlx run -m experiment=logreg" in out
    # the start date is remembered; a plain run of the model does not tick the deliverable
    fake_run(root, "20261201-100000-logreg-aaaaaa", None, "completed")
    result = cli("plan", "--on", "2026-12-02")
    assert "on day 2 of 60, Wed 2 Dec 2026, a build day; week 1 of 9:" in result.stdout
    assert "✓" not in result.stdout
    assert "next deliverable: logistic regression" in result.stdout
    fake_run(root, "20261201-110000-logreg-bbbbbb", "logreg", "completed", **MY_LOGREG)
    result = cli("plan", "--on", "2026-12-02")
    assert "▶  2  Wed 2 Dec   build          logistic regression from scratch (2/2)\n" \
           "                                 dlx run -m experiment=logreg\n" \
           "                                 ✓ 20261201-110000-logreg-bbbbbb\n" in result.stdout
    assert "next deliverable: 3-D loss-surface visualizer" in result.stdout
    assert "1 of 20 deliverables done" in result.stdout

    # the week a phase ends: its consolidation day drafts the phase's report
    result = cli("plan", "--on", "2026-12-20")  # day 20, week 3: Phase 1 ends on day 19
    assert "▶ 20  Sun 20 Dec  consolidation  consolidate: compare the week's runs, note what " \
           "you learned; draft the Phase 1 report\n" in result.stdout
    assert "dlx report --phase 1\n" in result.stdout
    # before the start and after the end
    assert "the plan starts Tue 1 Dec 2026, in 3 days" in cli("plan", "--on", "2026-11-28").stdout
    assert "the 60 days ended Fri 29 Jan 2027" in cli("plan", "--on", "2027-03-01").stdout


@pytest.mark.slow
def test_without_a_start_date_the_whole_plan_and_how_to_start(cli):
    result = cli("plan")
    assert result.returncode == 0, result.stderr
    assert "the 60-day plan (runs under runs)" in result.stdout
    assert "dlx plan --start YYYY-MM-DD" in result.stderr
    row = next(ln for ln in result.stdout.splitlines() if "LR decay schedules" in ln)
    assert "│ 17-20  │ 17-19 " in row  # the plan's days, and the calendar days of the rhythm
    assert not (cli.cwd / "runs").exists()  # looking creates nothing
    result = cli("plan", "--start", "2026-12-01", "--all")
    row = next(ln for ln in result.stdout.splitlines() if "LR decay schedules" in ln)
    assert "│ 17-20  │ 17-19 Dec " in row


@pytest.mark.slow
def test_bad_dates_are_one_error_line_and_change_nothing(cli):
    for args, needle in ((["--start", "2026-13-01"], "--start: '2026-13-01' is not a date"),
                         (["--start", "tomorrow"], "--start: 'tomorrow' is not a date"),
                         (["--start", "2026-12-1"], "YYYY-MM-DD"),
                         (["--on", "2026-02-30"], "--on: '2026-02-30' is not a date")):
        assert_one_error_line(cli("plan", *args), needle)
    assert not (cli.cwd / "runs").exists()
    (cli.cwd / "runs").mkdir()
    (cli.cwd / "runs" / ".plan.json").write_text("{\"start\": \"soon\"}")
    assert_one_error_line(cli("plan"), "runs/.plan.json: corrupt", "dlx plan --start")


@pytest.mark.slow
def test_plan_takes_the_runs_root_as_root_like_report_and_rm(cli):
    root = cli.cwd / "elsewhere"
    result = cli("plan", "--root", str(root), "--start", "2026-12-01", "--on", "2026-12-02")
    assert result.returncode == 0, result.stderr
    assert (root / ".plan.json").is_file() and f"(runs under {root})" in result.stdout
    assert cli("plan", str(root), "--on", "2026-12-02").stdout == result.stdout  # positional too
    assert_one_error_line(cli("plan", str(cli.cwd / "x"), "--root", str(root)), "two runs roots")
