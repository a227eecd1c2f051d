"""`dlx bench`: what it measures and reports (its numbers are a benchmark, not a test)."""

from __future__ import annotations

import json

import pytest

from dlx import bench


def test_flop_count_of_the_mlp_step():
    # forward + dW for both layers, dx only for the second: 2 * B * (3 * macs - first layer)
    assert bench._mlp_flops(128, [784, 256, 10]) == 2 * 128 * (3 * (784 * 256 + 256 * 10)
                                                               - 784 * 256)


def test_report_without_torch_is_complete(tmp_path):
    report = bench.run(steps=2, repeats=3, warmup=1, include_torch=False)
    case = report["cases"][0]
    values = case["samples_per_s"]["numpy"]
    assert len(values) == 3 and min(values) <= case["median_samples_per_s"]["numpy"] <= max(values)
    assert report["sgemm_peak_gflops"]["numpy"] > 0
    assert 0 < case["fraction_of_peak"]["numpy"] < 1.5
    assert "numpy_over_torch" not in case
    path = bench.save(report, tmp_path / "b.json")
    assert json.loads(path.read_text())["settings"]["order"] == "interleaved"


@pytest.mark.torch
def test_report_with_torch_has_the_ratio_of_medians(torch):
    report = bench.run(steps=2, repeats=3, warmup=1)
    case = report["cases"][0]
    assert case["numpy_over_torch"] == pytest.approx(
        case["median_samples_per_s"]["numpy"] / case["median_samples_per_s"]["torch"])
