"""`dlx bench`: what it measures and reports (its numbers are a benchmark, not a test)."""

from __future__ import annotations

import json
import os
import statistics

import pytest

from dlx import bench, bench_launchers
from tests.conftest import assert_one_error_line


def test_flop_count_of_the_mlp_step():
    # counted by hand for a 2-3-1 net, batch 1: forward 2*6 + 2*3, dW the same, dx of layer 2
    # only (the input needs no gradient) 2*3: 18 + 18 + 6
    assert bench._mlp_flops(1, [2, 3, 1]) == 42
    assert bench._mlp_flops(4, [2, 3, 1]) == 4 * 42  # linear in the batch


def test_flop_count_of_a_convolution():
    from dlx.nn.conv import Conv2d

    # 1 -> 2 maps, 3x3, pad 1 on 4x4: 16 outputs per map, 2 * 16 * 2 * 9 = 576 per image forward
    first = Conv2d(1, 2, 3, padding=1, input_grad=False)
    assert bench.conv_flops(first, 1, (1, 4, 4)) == 2 * 576  # forward + dW (no dx)
    inner = Conv2d(1, 2, 3, stride=2, padding=1)  # 2x2 outputs: a quarter of the work
    assert bench.conv_flops(inner, 3, (1, 4, 4)) == 3 * 3 * 576 / 4


def test_cnn_case_times_each_convolution_of_the_model():
    report = bench.run(steps=1, repeats=2, warmup=0, include_torch=False, cases=("cnn",))
    (case,) = report["cases"]
    assert case["name"] == "cnn" and case["batch"] == 64
    assert [row["layer"].split()[0] for row in case["layers"]] == ["conv1", "conv2"]
    assert all(row["gflops"]["numpy"] > 0 for row in case["layers"])
    assert report["machine"]["threads"]["numpy_blas"] == 1  # one thread per pool by default


def test_report_without_torch_is_complete(tmp_path):
    report = bench.run(steps=2, repeats=3, warmup=1, include_torch=False, cases=("mlp",))
    case = report["cases"][0]
    values = case["samples_per_s"]["numpy"]
    assert len(values) == 3 and case["median_samples_per_s"]["numpy"] == statistics.median(values)
    assert report["sgemm_peak_gflops"]["numpy"] > 0
    assert 0 < case["fraction_of_peak"]["numpy"] < 1.5
    assert "numpy_over_torch" not in case
    path = bench.save(report, tmp_path / "b.json")
    assert json.loads(path.read_text())["settings"]["order"] == "interleaved"


@pytest.mark.torch
def test_report_with_torch_has_the_ratio_of_medians(torch):
    report = bench.run(steps=2, repeats=3, warmup=1, cases=("mlp", "cnn"))
    assert report["machine"]["threads"]["torch"] == 1
    case = report["cases"][0]
    raw = case["samples_per_s"]
    assert case["numpy_over_torch"] == pytest.approx(
        statistics.median(raw["numpy"]) / statistics.median(raw["torch"]))


# --- `dlx bench --launchers`: a sweep's wall time, basic vs joblib launcher ---------------------

def test_ideal_parallel_is_serial_part_plus_rounds_of_concurrent_members():
    # 9 members of 1 s after 1 s of serial work, 2 workers: 5 rounds
    b = bench_launchers.ideal_parallel(total=10.0, n=9, span=9.0, jobs=2, k=0.5)
    assert b["rounds"] == 5 and b["serial_s"] == pytest.approx(1.0)
    assert b["independent_cores_s"] == pytest.approx(1.0 + 5 * 1.0)
    assert b["independent_cores_ratio"] == pytest.approx(0.6)
    assert b["measured_k_s"] == pytest.approx(b["independent_cores_s"])  # k = 1/2 is independent
    assert b["measured_k_no_serial_ratio"] == pytest.approx(5 / 9)
    # two "cores" that share one (k = 1): the rounds gain nothing
    b = bench_launchers.ideal_parallel(10.0, 9, 9.0, 2, 1.0)
    assert b["measured_k_ratio"] == pytest.approx(1.1) and b["independent_cores_ratio"] < 1


def test_member_timeline_spans_first_start_to_last_end(tmp_path):
    for member, (start, end) in {"0": (100.0, 103.0), "1": (103.5, 107.0)}.items():
        for name, t in ((".hydra/config.yaml", start), ("run.log", end)):
            path = tmp_path / member / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("x")
            os.utime(path, (t, t))
    (tmp_path / "multirun.yaml").write_text("x")
    assert bench_launchers.member_timeline(tmp_path) == (2, 100.0, 107.0)


@pytest.mark.slow
def test_launcher_benchmark_report(cli, plugins):
    result = cli("bench", "--launchers", "optimizer=sgd,adam", "epochs=1", "--repeats", "1",
                 "--out", "launchers.json")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "launchers.json"
    report = json.loads((cli.cwd / "launchers.json").read_text())
    assert report["metrics_identical"] is True
    assert set(report["wall_s"]) == {"basic", "joblib"}
    assert report["joblib_over_basic"] == pytest.approx(
        report["median_s"]["joblib"] / report["median_s"]["basic"])
    ideal = report["ideal"]
    assert ideal["members"] == 2 and ideal["rounds"] == 1
    assert 0 < ideal["serial_s"] < report["median_s"]["basic"]
    assert "joblib / basic wall time" in result.stdout
    assert not (cli.cwd / "runs").exists() or not any((cli.cwd / "runs").iterdir())


def test_launcher_benchmark_bad_input(cli, plugins):
    assert_one_error_line(cli("bench", "optimizer=sgd"), "'optimizer=sgd'", "--launchers")
    assert_one_error_line(cli("bench", "--launchers", "hydra/launcher=joblib"),
                          "only the sweep's overrides")
    assert_one_error_line(cli("bench", "--launchers", "optimizer=nope", "--repeats", "1"),
                          "exited 2", "unknown optimizer 'nope'")


def test_lstm_case_runs_the_rnn_model():
    report = bench.run(steps=1, repeats=1, warmup=0, include_torch=False, cases=("lstm",))
    (case,) = report["cases"]
    assert case["name"] == "lstm" and case["batch"] == 32 and "hidden 128" in case["description"]
    # (8 H (E + H) + 2 H V) multiply-adds... x 3 for forward and backward, 64 positions, batch 32
    assert case["flops_per_step"] == 32 * 64 * 3 * 2 * (4 * 128 * 256 + 128 * 65)


@pytest.mark.torch
def test_the_torch_twins_compute_the_same_loss(torch):
    """The bench times the same computation on both sides: the first step's loss of the NumPy
    model and of its torch twin agree (float32)."""
    import numpy as np

    from dlx.assemble import build_model
    from dlx.data.spec import DataSpec
    from dlx.nn.losses import SequenceCrossEntropy

    rng = np.random.default_rng(0)
    model = build_model({"name": "rnn", "cell": "lstm", "hidden": 16, "embedding": 16},
                        {"name": "uniform", "a": 0.25}, DataSpec.tokens(11, 7), rng, np.float32)
    x, y = rng.integers(0, 11, (4, 7)), rng.integers(0, 11, (4, 7))
    ours = SequenceCrossEntropy().forward(model.forward(x), y)
    with torch.no_grad():
        logits = bench.torch_twin(model)(torch.from_numpy(x))
    theirs = torch.nn.functional.cross_entropy(logits.reshape(-1, 11), torch.from_numpy(y).reshape(-1))
    assert theirs.item() == pytest.approx(ours, rel=1e-5)


def test_bench_case_option_runs_only_that_case(cli, tmp_path):
    """`dlx bench --case lstm` times the LSTM case alone; an unknown case is one error line and
    writes no report."""
    out = tmp_path / "b.json"
    result = cli("bench", "--case", "lstm", "--no-torch", "--steps", "1", "--repeats", "1",
                 "--warmup", "0", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert [c["name"] for c in json.loads(out.read_text())["cases"]] == ["lstm"]
    bad = tmp_path / "c.json"
    assert_one_error_line(cli("bench", "--case", "gpt", "--out", str(bad)), "'gpt'", "lstm")
    assert not bad.exists()
