"""`dlx report`: which records a phase's report takes, the learner's notes, missing runs, errors.
(The printed report in a real browser: tests/test_report_browser.py.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dlx.report.notes import to_html
from dlx.report.phases import PHASES, pick
from tests.conftest import assert_one_error_line

# --- the notes' Markdown ------------------------------------------------------------------------


def test_notes_are_escaped_and_keep_their_structure():
    text = ("## 2026-11-24 10:00\n"
            "Why <script>alert(1)</script> the *first* layer's **gradient** vanishes:\n"
            "it is `sigmoid'(z) <= 1/4` per layer.\n\n"
            "- one & two\n- three\n  carried on\n\n"
            "1. first\n2. second\n\n"
            "```\nx = a < b  # <b>not bold</b>\n```\n"
            "<img src=x onerror=alert(1)>")
    out = to_html(text, top=4)
    assert "<script" not in out and "<img" not in out and "<b>not" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "<h5>2026-11-24 10:00</h5>" in out  # ## sits one level below the slot's heading
    assert "<i>first</i>" in out and "<b>gradient</b>" in out
    assert "<code>sigmoid&#x27;(z) &lt;= 1/4</code>" in out
    assert "<ul><li>one &amp; two</li><li>three carried on</li></ul>" in out
    assert "<ol><li>first</li><li>second</li></ol>" in out
    assert "<pre><code>x = a &lt; b  # &lt;b&gt;not bold&lt;/b&gt;</code></pre>" in out
    assert out.endswith("<p>&lt;img src=x onerror=alert(1)&gt;</p>")


# --- which records a phase takes ----------------------------------------------------------------


def _record(path: Path, experiment: str, status: str = "completed") -> Path:
    path.mkdir(parents=True)
    (path / "summary.json").write_text(json.dumps({"status": status, "experiment": experiment}))
    (path / "config.yaml").write_text(f"experiment: {experiment}\n")
    (path / "metrics.csv").write_text("step,epoch,split,metric,value\n")
    return path


def _sweep(path: Path, experiment: str, statuses: list[str]) -> Path:
    path.mkdir(parents=True)
    (path / "multirun.yaml").write_text("{}\n")  # no sweeper recorded: its members are all
    for i, status in enumerate(statuses):
        _record(path / str(i), experiment, status)
    return path


def test_a_phase_takes_the_newest_finished_record_of_the_plans_shape(tmp_path):
    root = tmp_path / "runs"
    old = _sweep(root / "20261101-000000-grad_flow-aaaaaa", "grad_flow", ["completed"] * 3)
    _sweep(root / "20261102-000000-grad_flow-bbbbbb", "grad_flow", ["completed", "failed"])
    # a single run poking at one setting does not replace the plan's sweep...
    poke = _record(root / "20261103-000000-grad_flow-cccccc", "grad_flow")
    # ...but is taken where there is no sweep; diverged members are results (too-high lr)
    single = _record(root / "20261104-000000-init-dddddd", "init")
    lr = _sweep(root / "20261105-000000-dropout-eeeeee", "dropout", ["completed", "diverged"])
    _sweep(root / "20261106-000000-dropout-ffffff", "dropout", ["diverged", "diverged"])
    _record(root / "20261107-000000-batch_noise-gggggg", "batch_noise", "interrupted")
    picks = {p.section.experiment: p for p in pick(PHASES[2], root, {})}
    assert picks["grad_flow"].path == old
    assert picks["init"].path == single
    assert picks["dropout"].path == lr  # the newer one has no completed member
    assert picks["batch_noise"].path is None
    assert picks["batch_noise"].newest_unfinished[1] == "interrupted"
    assert picks["mnist_mlp"].path is None and picks["mnist_mlp"].newest_unfinished is None
    # a record named by the learner wins over the newest
    named = pick(PHASES[2], root, {"grad_flow": poke})
    assert named[[p.section.experiment for p in named].index("grad_flow")].path == poke


# --- the command ------------------------------------------------------------------------------


@pytest.mark.slow
def test_phase_report_sections_notes_and_missing_runs(cli):
    run = cli.run_dir(cli("run", "experiment=lr_range", "epochs=4"))
    (run / "notes.md").write_text("## 2026-11-24\nThe loss runs away near **lr 1** "
                                  "<script>x</script>\n\n- smoothed with `β = 0.98`\n")
    out = cli.cwd / "rep"
    result = cli("report", "--phase", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(out / "report.html")
    page = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    assert json.loads((out / "report.json").read_text())["phase"] == 1  # for `dlx plan`
    # the record, its numbers and figure, numbered; the learner's notes in its slot, escaped
    assert "Record: <code>" in page and run.name in page
    assert "lr by rule &#x27;minimum&#x27; (the suggestion)" in page
    figures = re.findall(r"<figcaption>Figure (\d+)\.", page)
    tables = re.findall(r"<caption>Table (\d+)\.", page)
    assert figures == [str(i) for i in range(1, len(figures) + 1)] and figures
    assert tables == [str(i) for i in range(1, len(tables) + 1)] and tables
    assert len(list((out / "figures").glob("*.png"))) == len(figures)
    assert "<h5>2026-11-24</h5>" in page and "<b>lr 1</b>" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "The loss runs away" in md
    # the other required experiments: a section naming the command, never a figure
    for command in ("dlx run experiment=conditioning", "dlx run -m experiment=optimizers",
                    "dlx run -m experiment=learning_rate", "dlx run -m experiment=lr_schedules"):
        assert f"Make it with <code>{command}</code>" in page, command
    assert page.count("class='missing-run'") == 4
    # optional experiments without a run: named on the title page, no section
    assert "Optional sections not included" in page and "gd_variants" in page
    assert page.count("<section class='experiment'>") == 5
    # the slots without notes stay empty and say so
    assert page.count("class='yours empty'") == 1  # discussion and conclusions
    assert "@page" in page and "break-before: page" in page and "titlepage" in page


def test_report_usage_errors(cli, tmp_path):
    assert_one_error_line(cli("report"), "--phase")
    assert_one_error_line(cli("report", "--phase", "4"), "1, 2 or 3")
    missing = tmp_path / "none"
    assert_one_error_line(cli("report", "--phase", "2", "--root", str(missing)),
                          "no such directory")
    assert not missing.exists() and not (cli.cwd / "runs").exists()
    (cli.cwd / "runs").mkdir()
    cli.env["PATH"] = str(tmp_path)  # no browser on PATH
    assert_one_error_line(cli("report", "--phase", "2", "--pdf"), "--pdf needs Chromium")
    assert not (cli.cwd / "runs" / "reports").exists()


def test_phase3_takes_a_char_lm_record_generically(default_run, tmp_path):
    """The recurrent-against-attention section needs nothing of char_lm's internals: its
    figures and the throughput CSV it writes in its run directory."""
    import shutil

    import yaml

    from dlx.report import build

    root = tmp_path / "runs"
    run = root / "20261124-120000-char_lm-abcdef"
    shutil.copytree(default_run, run)
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "experiment": "char_lm"}))
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, "experiment": "char_lm"}))
    (run / "throughput.csv").write_text("model,tokens_per_s\nlstm,1234.5\ntransformer,2345\n")
    html = build([], tmp_path / "rep", phase=3, root=root)[-1].read_text()
    section = html.split("Recurrent against attention: throughput and loss</h2>")[1]
    assert "<caption>Table" in section and "throughput.csv" in section
    assert "<td>lstm</td><td>1234.5</td>" in section
    assert section.count("<figure") == len(list((run / "plots").glob("*.png"))) >= 1
    assert html.count("class='missing-run'") == 5  # scaling x3, depth_width, transformer
