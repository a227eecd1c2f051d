"""A run directory is untrusted input (issue #25): nothing in one (names, metric names, links)
makes dlx write, read or delete outside where the user pointed it."""

from __future__ import annotations

import json

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
