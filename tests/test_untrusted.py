"""A run directory is untrusted input (issue #25): nothing in one (names, metric names, links)
makes dlx write, read or delete outside where the user pointed it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dlx.records.files import file_name
from tests.conftest import assert_one_error_line
from tests.test_run_management import copy_run, root  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name, made", [
    ("loss.png", "loss.png"), ("train_grad_norm.png", "train_grad_norm.png"),
    ("../../evil.png", "_.._evil.png"), ("/etc/evil.png", "_etc_evil.png"),
    ("..", "_"), ("a\x1b[2Jb.png", "a__2Jb.png"), ("", "_"),
])
def test_a_name_from_a_record_stays_a_file_name(name, made):
    assert file_name(name) == made and "/" not in made and not made.startswith(".")


def test_purge_refuses_a_trash_that_links_elsewhere(cli, root, tmp_path):  # noqa: F811
    """runs/.trash -> a folder of the user's: `dlx rm --purge` (and `dlx rm`) refuse, and the
    folder keeps its files."""
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work\n")
    (root / ".trash").symlink_to(precious)
    purged = cli("rm", "--purge", "--yes")
    assert purged.returncode == 2 and "is a symlink" in purged.stderr, purged.stderr
    assert_one_error_line(purged)
    moved = cli("rm", "--yes", str(root / "20261120-100000-logreg-aaaaaa"))
    assert moved.returncode == 2 and "is a symlink" in moved.stderr
    assert (precious / "thesis.tex").read_text() == "years of work\n"
    assert (root / "20261120-100000-logreg-aaaaaa").is_dir()


def test_a_metric_name_cannot_write_a_figure_outside_the_runs_plots(cli, default_run, tmp_path):
    """metrics.csv naming a metric ../../../victim: `dlx plot` draws it inside RUN/plots."""
    run = copy_run(default_run, tmp_path / "runs", "20261120-100000-logreg-aaaaaa")
    metrics = run / "metrics.csv"
    lines = metrics.read_text().splitlines()
    row = lines[1].split(",")
    head = lines[0].split(",")
    row[head.index("metric")] = "../../../victim"
    metrics.write_text("\n".join([*lines, ",".join(row)]) + "\n")
    plotted = cli("plot", str(run))
    assert plotted.returncode == 0, plotted.stderr
    assert not list(tmp_path.rglob("victim*.png")) or all(
        p.parent == run / "plots" for p in tmp_path.rglob("*victim*.png"))
    assert not (tmp_path / "victim.png").exists() and not (cli.cwd / "victim.png").exists()
    assert (run / "plots" / "_.._.._victim.png").is_file()


def test_a_report_does_not_follow_a_runs_symlinked_figure(cli, default_run, tmp_path):
    """A run's plots/x.png linking to a private file is not copied into a report."""
    from dlx.report import Doc

    private = tmp_path / "private.png"
    private.write_bytes(b"\x89PNG secret")
    link = tmp_path / "plots" / "loss.png"
    link.parent.mkdir()
    link.symlink_to(private)
    doc = Doc(tmp_path / "report")
    doc.figure(link, "a figure", "run/../name")
    assert doc.n_fig == 0 and not any((tmp_path / "report").rglob("*"))
    json.dumps(doc.md)  # nothing of the private file in the text either


def test_control_characters_from_a_record_are_shown_not_obeyed(cli, root):  # noqa: F811
    """A note and a tag-free name holding ESC sequences (clear the screen, forge a link):
    `dlx show` and `dlx list` print them as visible escapes."""
    run = root / "20261120-100000-logreg-aaaaaa"
    (run / "notes.md").write_text("## 2026-11-20 10:00\n\nfine\x1b[2J\x1b]8;;http://evil\x07x\n")
    summary = json.loads((run / "summary.json").read_text())
    summary["experiment"] = "logreg\x1b[31m"
    (run / "summary.json").write_text(json.dumps(summary))
    for args in (("show", str(run)), ("list",)):
        out = cli(*args)
        assert out.returncode == 0, out.stderr
        assert "\x1b" not in out.stdout and "\x07" not in out.stdout, args
    assert "\\x1b[2J" in cli("show", str(run)).stdout


def test_a_symlinked_note_is_not_read_into_show_or_a_report(cli, root, tmp_path):  # noqa: F811
    secret = tmp_path / "secret.txt"
    secret.write_text("my password is hunter2\n")
    run = root / "20261120-100000-logreg-aaaaaa"
    (run / "notes.md").unlink(missing_ok=True)
    (run / "notes.md").symlink_to(secret)
    shown = cli("show", str(run))
    assert shown.returncode == 0 and "hunter2" not in shown.stdout
    from dlx.records.notes import read_notes

    assert read_notes(run) == ""


def test_the_markdown_report_keeps_a_notes_html_inert():
    from dlx.report import Doc

    doc = Doc(__import__("pathlib").Path("/nonexistent"))
    doc.slot("Yours", [("run/notes.md", "see <script>alert(1)</script> & <img src=x>")], "")
    md = "\n".join(doc.md)
    assert "<script>" not in md and "&lt;script&gt;" in md and "<img" not in md


@pytest.mark.parametrize("edit", [{"final": "x"}, {"wall_time_s": "abc"}, {"experiment": ["a"]},
                                  {"steps": 2 ** 70}, {"final": {"val/loss": "0.1"}}])
def test_a_summary_of_the_wrong_types_is_unreadable_not_a_traceback(cli, root, edit):  # noqa: F811
    """Valid JSON that dlx did not write: `dlx list` lists it as unreadable beside the others,
    show and compare say so in one line, plan and report carry on."""
    run = root / "20261120-100000-logreg-aaaaaa"
    summary = json.loads((run / "summary.json").read_text())
    summary.update(edit)
    (run / "summary.json").write_text(json.dumps(summary))
    listed = cli("list")
    assert listed.returncode == 0, listed.stderr
    assert any(run.name in line and "unreadable" in line for line in listed.stdout.splitlines())
    assert "20261121-100000-house_prices-bbbbbb" in listed.stdout
    for args in (("show", str(run)), ("compare", str(run))):
        assert_one_error_line(cli(*args), "not a dlx summary")
    for args in (("plan",), ("report", "--phase", "1")):
        done = cli(*args)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (args, done.stderr)


def test_dates_and_text_out_of_range_are_one_line(cli, root):  # noqa: F811
    """Tracebacks that remained: a start date whose plan leaves the calendar (it was saved and
    broke every later `dlx plan`), --since before year 1 or a duration beyond it, a note on
    stdin that is not UTF-8."""
    assert_one_error_line(cli("plan", "--start", "9999-12-31"), "out of the plan's range")
    assert not (root / ".plan.json").exists()
    (root / ".plan.json").write_text('{"start": "9999-12-31"}')
    assert_one_error_line(cli("plan"), "corrupt (set the start date again")
    assert cli("plan", "--start", "2026-11-01").returncode == 0  # and it can be set again
    for since in ("0001-01-01", "99999999999w"):
        assert_one_error_line(cli("list", "--since", since), "within the calendar")
    run = root / "20261120-100000-logreg-aaaaaa"
    noted = subprocess.run([sys.executable, "-m", "dlx.cli", "note", str(run), "-"],
                           cwd=cli.cwd, env=cli.env, input=b"\xff\xfe not text",
                           capture_output=True, timeout=120)
    err = noted.stderr.decode()
    assert noted.returncode == 2 and err.count("\n") == 1 and "not UTF-8 text" in err, err
    assert not (run / "notes.md").exists()
