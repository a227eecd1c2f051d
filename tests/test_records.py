"""Reading records back: the notebook API and its checks."""

from __future__ import annotations

import math
import shutil

import pytest

import dlx
from dlx.errors import UsageError
from dlx.records.metrics import MetricsWriter
from dlx.records.rundir import create_unique_dir
from dlx.records.store import differing


def test_load_run_notebook_api(default_run):
    run = dlx.load_run(default_run)
    assert run.config["optimizer"]["name"] == "sgd"
    assert run.summary["status"] == "completed"
    df = run.metrics
    assert list(df.columns) == ["step", "epoch", "split", "metric", "value"]
    assert str(df["value"].dtype) == "float64" and str(df["step"].dtype) == "int64"
    wide = run.wide()
    assert {"train/loss", "val/acc", "batch/loss"} <= set(wide.columns)
    assert wide.index.name == "step" and wide.index.is_monotonic_increasing
    assert wide["val/acc"].dropna().iloc[-1] == run.summary["final"]["val/acc"]
    assert wide["train/loss"].iloc[0] == pytest.approx(math.log(2))


def test_a_line_cut_short_by_a_crash_is_dropped(tmp_path, default_run):
    run = tmp_path / "run"
    shutil.copytree(default_run, run)
    text = (run / "metrics.csv").read_text()
    (run / "metrics.csv").write_text(text + "501,21,batch,lo")
    assert len(dlx.load_run(run).metrics) == text.count("\n") - 1


@pytest.mark.parametrize("content,needle", [
    ("step,epoch,split,metric\n", "header"),
    ("step,epoch,split,metric,value\n1,x,batch,loss,0.5\n", "corrupt"),
    ("step,epoch,split,metric,value\n1,1,,loss,0.5\n", "empty split"),
])
def test_corrupt_metrics_are_reported(tmp_path, default_run, content, needle):
    run = tmp_path / "run"
    shutil.copytree(default_run, run)
    (run / "metrics.csv").write_text(content)
    with pytest.raises(UsageError, match=needle):
        dlx.load_run(run).metrics  # noqa: B018


def test_load_run_refuses_what_is_not_a_run(tmp_path):
    with pytest.raises(UsageError, match="no such directory"):
        dlx.load_run(tmp_path / "missing")
    with pytest.raises(UsageError, match="not a run or sweep"):
        dlx.load_run(tmp_path)


def test_metrics_writer_flushes_each_row_and_tracks_best(tmp_path):
    w = MetricsWriter(tmp_path / "m.csv")
    w.log(1, 1, "val", "loss", 0.5)
    w.log(2, 1, "val", "loss", 0.7)
    w.log(2, 1, "val", "acc", 0.9)
    w.log(3, 1, "batch", "loss", float("nan"))
    # visible to another reader before close: flushed row by row
    assert (tmp_path / "m.csv").read_text().count("\n") == 5
    assert w.final["val/loss"] == 0.7 and w.best["val/loss"] == 0.5 and w.best["val/acc"] == 0.9
    assert "batch/loss" not in w.best
    w.close()


def test_unique_dirs_never_collide(tmp_path):
    dirs = {create_unique_dir(tmp_path, "same name!") for _ in range(200)}
    assert len(dirs) == 200
    assert all(d.name.split("-")[2] == "same_name" for d in dirs)


def test_differing_overrides():
    assert differing([["a=1", "b=2"], ["a=1", "b=3"]]) == [["b=2"], ["b=3"]]
