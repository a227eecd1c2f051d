"""Defects a new learner's trial found in reports and figures: an unfinished sweep described by
the members it asked for, records of other phases named, notes' headings under the report's in
Markdown too, figure warnings as notes, Ctrl-C, accuracy axes and the epoch axis."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pandas as pd
import yaml

from tests.test_report import _record

OPTIMIZERS_SWEEP = {"hydra": {
    "sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                "params": {"optimizer": "sgd,momentum,nesterov", "seed": "0,1,2"}},
    "overrides": {"task": ["experiment=optimizers"]}}}


def test_an_interrupted_sweep_is_described_by_the_members_it_asked_for(tmp_path):
    from dlx.report import Source

    sweep = tmp_path / "20261124-153500-optimizers-abcdef"
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text(yaml.safe_dump(OPTIMIZERS_SWEEP))
    _record(sweep / "0", "optimizers", "interrupted")
    src = Source(sweep)
    status = src.status()
    assert status.startswith("a sweep of 9 runs: 0 of 9 completed, 1 interrupted, 8 not run")
    assert "UNFINISHED" in status
    assert "only 1 of the 9 runs" in src.unfinished_note()
    assert src.command() == "dlx run -m experiment=optimizers  # a sweep of 9"


def test_notes_headings_sit_under_the_reports_in_markdown_as_in_html():
    from dlx.report.notes import demote, to_html

    text = "## 2026-11-24 15:35\nwhy\n\n```\n# a comment, not a heading\n```\n# top"
    md = demote(text)
    assert md.splitlines()[0] == "##### 2026-11-24 15:35"  # as <h5> in the HTML
    assert "<h5>2026-11-24 15:35</h5>" in to_html(text)
    assert "\n# a comment, not a heading\n" in md and md.endswith("\n#### top")


def test_a_record_of_another_phase_is_included_and_said_to_be(default_run, tmp_path):
    from dlx.report import build

    run = tmp_path / "runs" / "20261124-120000-char_lm-abcdef"
    shutil.copytree(default_run, run)
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "experiment": "char_lm"}))
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, "experiment": "char_lm"}))
    notes: list[str] = []
    md = build([run], tmp_path / "rep", notes=notes, phase=1, root=tmp_path / "runs")[0]
    text = md.read_text()
    assert "Recurrent against attention" in text and "*not of this phase*" in text
    assert "not part of phase 1 (an experiment of phase 3)" in text
    assert [n for n in notes if "not part of phase 1" in n and str(run) in n]


def test_one_seed_promises_no_spread():
    from dlx.plots.sweep import seeds_note

    assert seeds_note([1, 1]) == "1 seed, no spread"
    assert seeds_note([3, 3]) == "mean ± 1 sd over 3 seeds"


def test_warnings_while_drawing_become_one_note_each_not_raw_stderr():
    from dlx.plots.style import guarded

    def draw():
        warnings.warn("Attempting to set identical low and high xlims", UserWarning, stacklevel=1)
        warnings.warn("Attempting to set identical low and high xlims", UserWarning, stacklevel=1)
        return [Path("x.png")]

    notes: list[str] = []
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        assert guarded(notes, "steps_and_memory", draw) == [Path("x.png")]
    assert escaped == []
    assert notes == ["figure steps_and_memory: UserWarning: Attempting to set identical low "
                     "and high xlims"]


def test_accuracy_stays_on_a_linear_axis_and_a_loss_spanning_decades_does_not():
    from matplotlib.figure import Figure

    from dlx.plots.style import log_scale_if_wide

    for metric, scale in (("acc", "linear"), ("loss", "log")):
        ax = Figure().subplots()
        log_scale_if_wide(ax, [1 / 65, 0.02, 0.5, 0.9] if metric == "acc" else [4.2, 0.1],
                          metric=metric)
        assert ax.get_yscale() == scale, metric


def _metrics(steps: int, per_epoch: int, eval_every: int) -> pd.DataFrame:
    """A run's metrics as the loop logs them: each step's mini-batch row in its (1-based)
    epoch, evaluations every ``eval_every`` steps and at the end."""
    rows = [(s, (s - 1) // per_epoch + 1, "batch", "loss", 1.0) for s in range(1, steps + 1)]
    rows += [(s, (max(s, 1) - 1) // per_epoch + 1 if s else 0, "val", "loss", 1.0)
             for s in [*range(0, steps, eval_every), steps]]
    return pd.DataFrame(rows, columns=["step", "epoch", "split", "metric", "value"])


def test_the_epoch_axis_uses_the_real_epoch_length():
    from dlx.plots.run import epoch_length

    # a stream epoch of 490 steps, evaluated every 20: not 20 or 40 steps an epoch
    assert epoch_length(_metrics(1000, 490, 20), max_steps=1000) == 490
    # 120 steps of a 490-step epoch: the length is not in the record, so no epoch axis
    assert epoch_length(_metrics(120, 490, 20), max_steps=120) == 0
    # whole epochs (no step budget): the last evaluation ends the last epoch
    assert epoch_length(_metrics(75, 25, 25), max_steps=None) == 25


def test_ctrl_c_keeps_a_complete_report_without_its_pdf_or_removes_a_half_made_one(
        tmp_path, capsys):
    from dlx.cli import _report_interrupted

    done = tmp_path / "done"
    done.mkdir()
    for name in ("report.md", "report.html", "report.pdf"):
        (done / name).write_text("x")
    written = [done / "report.md", done / "report.html"]
    assert _report_interrupted(done, None, written) == 130
    assert sorted(p.name for p in done.iterdir()) == ["report.html", "report.md"]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("interrupted while printing the PDF")

    half = tmp_path / "half"
    (half / "figures").mkdir(parents=True)
    assert _report_interrupted(half, half, []) == 130
    assert not half.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("interrupted: the report was not finished")



def test_extrapolation_draws_the_nets_trained_whatever_the_widths(tmp_path):
    """function_approx.widths=[2,8], depths=[1,2], depth_width 8: no 1 x 32 or 4 x 16 net, yet
    the panel draws a wide and a deep net of each activation, not f(x) alone."""
    from types import SimpleNamespace

    import numpy as np
    from matplotlib.figure import Figure

    from dlx.experiments import function_approx as fa

    fits = [("linear", "none", 0, 0)] + [("width", a, w, 1) for a in ("relu", "tanh")
                                         for w in (2, 8)] + [("depth", a, 8, 2)
                                                             for a in ("relu", "tanh")]
    pd.DataFrame([{"fit": i, "series": s, "activation": a, "width": w, "depth": d}
                  for i, (s, a, w, d) in enumerate(fits)]).to_csv(tmp_path / fa.CAPACITY)
    x = np.linspace(-2, 2, 9)
    pd.DataFrame({"x": x, **{f"fit{i}": x * i for i in range(len(fits))}}).to_csv(
        tmp_path / fa.PREDICTIONS, index=False)
    run = SimpleNamespace(path=tmp_path, summary={"data": {"interval": [-1, 1]}},
                          config={"dataset": {"target": "abs"}, "seed": 0})
    ax = Figure().subplots()
    fa._extrapolation_panel(ax, run, depth_width=8)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["f(x)", "ReLU, 1 × 8", "ReLU, 2 × 8", "tanh, 1 × 8", "tanh, 2 × 8"]
