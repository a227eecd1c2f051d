"""`dlx.load_sweep`: a sweep's members and one long DataFrame of their metrics, with the varied
overrides as typed columns (issue #17)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import dlx
from dlx.errors import UsageError
from tests.conftest import REPO

HEADER = "step,epoch,split,metric,value\n"


def member(sweep: Path, job: int, overrides: list[str], status: str = "completed",
           rows: str | None = "0,0,val,loss,1.5\n1,1,val,loss,0.25\n") -> Path:
    run = sweep / str(job)
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (run / "summary.json").write_text(f'{{"status": "{status}", "experiment": null}}')
    if rows is not None:
        (run / "metrics.csv").write_text(HEADER + rows)
    return run


def test_varied_overrides_become_typed_columns(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text("{}\n")
    member(sweep, 0, ["optimizer=sgd", "optimizer.lr=1e-3", "seed=0", "model.hidden=[8,8]",
                      "epochs=2"])
    member(sweep, 1, ["optimizer=adam", "optimizer.lr=0.1", "seed=1", "model.hidden=[16]",
                      "epochs=2", "+clip_grad_norm=null"], status="diverged")
    member(sweep, 2, ["optimizer=adam", "optimizer.lr=0.1", "seed=2", "model.hidden=[16]",
                      "epochs=2"], rows=None)  # no metrics.csv: in members, not in metrics
    s = dlx.load_sweep(sweep)
    assert len(s) == 3 and s[1].path == sweep / "1"
    assert s.varied == ["optimizer", "optimizer.lr", "seed", "model.hidden", "clip_grad_norm"]
    assert s.overrides[0] == {"optimizer": "sgd", "optimizer.lr": 1e-3, "seed": 0,
                              "model.hidden": (8, 8), "epochs": 2}  # typed as Hydra reads them
    assert list(s.members["status"]) == ["completed", "diverged", "completed"]
    assert list(s.members["model.hidden"]) == [(8, 8), (16,), (16,)]
    with pytest.warns(UserWarning, match="metrics.csv: missing"):
        m = s.metrics
    assert list(m.columns) == ["member", "optimizer", "optimizer.lr", "seed", "model.hidden",
                               "clip_grad_norm", "step", "epoch", "split", "metric", "value"]
    assert list(m["member"]) == [0, 0, 1, 1]
    assert m["optimizer.lr"].dtype == "float64" and list(m["optimizer.lr"]) == [1e-3, 1e-3, .1, .1]
    assert m["seed"].dtype == "int64" and list(m["seed"]) == [0, 0, 1, 1]
    assert list(m["model.hidden"]) == [(8, 8), (8, 8), (16,), (16,)]
    assert m.groupby("optimizer")["value"].min().to_dict() == {"adam": 0.25, "sgd": 0.25}


def test_a_run_or_nothing_is_not_a_sweep(tmp_path):
    run = member(tmp_path, 0, ["seed=0"])
    with pytest.raises(UsageError, match="not a sweep directory .a run: use dlx.load_run."):
        dlx.load_sweep(run)
    with pytest.raises(UsageError, match="no such directory"):
        dlx.load_sweep(tmp_path / "nope")


def test_importing_dlx_stays_light():
    code = ("import sys, dlx\ndlx.load_sweep, dlx.load_run\n"
            "print([m for m in ('numpy', 'pandas', 'hydra', 'matplotlib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.slow
def test_a_real_sweep_loads_every_members_rows(cli):
    result = cli("run", "-m", "optimizer.lr=0.1,1e-2", "seed=0,1", "epochs=1", "progress=none")
    assert result.returncode == 0, result.stderr
    s = dlx.load_sweep(cli.run_dir(result))
    assert s.varied == ["optimizer.lr", "seed"]
    assert list(s.members["optimizer.lr"]) == [0.1, 0.1, 0.01, 0.01]
    assert list(s.members["seed"]) == [0, 1, 0, 1]
    m = s.metrics
    assert m["optimizer.lr"].dtype == "float64" and m["seed"].dtype == "int64"
    for run in s.runs:  # each member's rows, unchanged, under its overrides
        mine = m[m["member"] == int(run.path.name)]
        assert mine[["step", "epoch", "split", "metric", "value"]].reset_index(drop=True).equals(
            run.metrics)
        assert set(mine["seed"]) == {run.summary["seed"]}
        assert set(mine["optimizer.lr"]) == {run.config["optimizer"]["lr"]}
