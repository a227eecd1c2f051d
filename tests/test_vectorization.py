"""The vectorization experiment: every loop version computes what the vectorized one does;
the record keeps the differences (deterministic) apart from the times."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dlx.errors import UsageError
from dlx.experiments import vectorization as v
from tests.test_experiments import run

rng = np.random.default_rng(0)


def test_the_loop_versions_equal_the_vectorized_ones():
    A, B = rng.standard_normal((4, 9)), rng.standard_normal((6, 9))
    B[2] = A[1]  # a zero distance: the expanded square must not go negative under the sqrt
    d = v.dist_no_loops(A, B)
    np.testing.assert_allclose(v.dist_two_loops(A, B), d, atol=1e-12)
    np.testing.assert_allclose(v.dist_one_loop(A, B), d, atol=1e-12)
    assert d[1, 2] == pytest.approx(0.0, abs=1e-6) and np.isfinite(d).all()

    x, W, b, dout = (rng.standard_normal(s) for s in ((5, 7), (7, 3), (3,), (5, 3)))
    for f in (v.linear_loops, v.linear_one_loop):
        np.testing.assert_allclose(f(x, W, b), x @ W + b, rtol=1e-12)
    for f in (v.dW_loops, v.dW_one_loop):
        np.testing.assert_allclose(f(x, dout), x.T @ dout, rtol=1e-12)

    z, y = rng.standard_normal((8, 4)) * 5, rng.integers(0, 4, 8)
    loss, dz = v.softmax_ce_vectorized(z, y)
    loss1, dz1 = v.softmax_ce_one_loop(z, y)
    assert loss1 == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(dz1, dz, atol=1e-15)
    from dlx.nn import SoftmaxCrossEntropy  # and the library's own loss

    ref = SoftmaxCrossEntropy()
    assert ref.forward(z, y) == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(ref.backward(), dz, atol=1e-15)


def test_a_run_records_differences_not_times_and_draws_the_figure(tmp_path):
    a = run(tmp_path, "experiment=vectorization", "vectorization.repeats=1",
            "vectorization.scale=0.2", figures=True)
    b = run(tmp_path, "experiment=vectorization", "vectorization.repeats=1",
            "vectorization.scale=0.2")
    assert (a.path / "metrics.csv").read_bytes() == (b.path / "metrics.csv").read_bytes()
    m = a.metrics
    assert set(m["split"]) == {"distances", "linear_forward", "linear_dW", "softmax_ce", "conv2d"}
    assert (m["value"] < 1e-10).all()  # every version agrees with the vectorized one
    times = pd.read_csv(a.path / v.TIMES)
    assert (times["min_seconds"] > 0).all() and len(times) == len(m)
    assert (times["min_seconds"] <= times["median_seconds"]).all()
    assert (times["median_seconds"] <= times["max_seconds"]).all()
    speedups = a.summary["vectorization"]["distances"]["speedup"]
    assert speedups["vectorized"] == 1.0 and set(speedups) == set(v.VERSIONS)
    seconds = a.summary["vectorization"]["distances"]["seconds"]  # the fastest call's
    assert seconds == dict(zip(times[times["case"] == "distances"]["version"],
                               times[times["case"] == "distances"]["min_seconds"]))
    assert (a.path / "plots" / "vectorization.png").is_file()
    assert not (a.path / "plots" / "loss.png").exists()  # no training curves: none were trained


@pytest.mark.parametrize("key,value", [("repeats", 0), ("scale", 0), ("scale", 9)])
def test_bad_settings_are_refused(key, value):
    with pytest.raises(UsageError, match=f"vectorization.{key}"):
        v.validate({"vectorization": {"repeats": 5, "scale": 1.0, key: value}})
