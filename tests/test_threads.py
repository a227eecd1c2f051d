"""The ``threads`` key: validated, applied at run start (threadpoolctl, torch), recorded in
summary.json, and what makes a run's metrics independent of the launcher; `dlx bench --threads`."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import pytest

from dlx import bench_threads, threads
from dlx.errors import UsageError
from tests.conftest import assert_one_error_line

# Synthetic, no files needed, and big enough for OpenBLAS to split its sums across threads, so
# that 1 and 2 threads give different bytes (test_the_workload_depends_on_the_thread_count).
# Which sums a BLAS splits depends on its kernels: Haswell's split float32 matrix products,
# SkylakeX's and Sandybridge's only long float64 dot products (the L2 penalty, logged every
# step, is one over the 65,536 weights of a 256x256 layer); Prescott's split neither.
WORKLOAD = ("model=mlp", "model.hidden=[256,256]", "dataset.n_samples=1000", "batch_size=512",
            "epochs=2", "progress=none", "dtype=float64", "regularizer=l2")
TWO_CPUS = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 CPUs to run 2 threads")


def metrics(run: Path) -> bytes:
    return (run / "metrics.csv").read_bytes()


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def blas_threads(record: dict) -> set[int]:
    return {lib["num_threads"] for lib in record["libraries"] if lib["user_api"] == "blas"}


# --- the key ----------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [1, 2, 64, None])
def test_check_accepts_positive_integers_and_null(value):
    threads.check(value)


@pytest.mark.parametrize("value", [0, -1, "abc", 2.5, True, "1"])
def test_check_rejects_anything_else(value):
    with pytest.raises(UsageError, match=r"^threads must be a positive integer .* got "):
        threads.check(value)


@pytest.mark.parametrize("value", ["0", "-1", "abc", "2.5"])
def test_a_bad_value_is_one_error_line_before_anything_is_created(cli, value):
    assert_one_error_line(cli("run", f"threads={value}"), "threads must be a positive integer",
                          f"got {value if value != 'abc' else repr(value)}")
    assert not (cli.cwd / "runs").exists()


def test_the_config_default_is_the_modules():
    import yaml

    from tests.conftest import REPO

    assert yaml.safe_load((REPO / "conf" / "config.yaml").read_text())["threads"] == threads.DEFAULT


# --- applied and recorded ---------------------------------------------------------------------

@TWO_CPUS
def test_apply_limits_every_library_and_the_next_call_undoes_it():
    import numpy  # noqa: F401 - its OpenBLAS is loaded

    before = threads.libraries()
    try:
        one = threads.apply({"threads": 1, "backend": "numpy"})
        assert one["requested"] == 1 and one["libraries"]
        assert {lib["num_threads"] for lib in one["libraries"]} == {1}
        assert blas_threads(threads.apply({"threads": 2, "backend": "numpy"})) == {2}
        assert set(one) >= {v for v in threads.ENV_VARS if v in os.environ}
    finally:
        unlimited = threads.apply({"threads": None, "backend": "numpy"})
    assert unlimited["requested"] is None
    assert unlimited["libraries"] == before  # null: the libraries' own default again


@pytest.mark.torch
def test_backend_torch_also_sets_torchs_intra_op_threads(torch):
    default = torch.get_num_threads()
    try:
        record = threads.apply({"threads": 1, "backend": "torch"})
        assert torch.get_num_threads() == 1 and record["torch"] == 1
        assert any(lib["user_api"] == "openmp" for lib in record["libraries"])  # torch's libgomp
        assert {lib["num_threads"] for lib in record["libraries"]} == {1}
    finally:
        threads.apply({"threads": None, "backend": "torch"})
    assert torch.get_num_threads() == default


def threads_change_sums() -> bool:
    """Whether this process's BLAS adds the partial sums of a float64 dot product as long as the
    workload's (65,536 terms) in another order with 2 threads than with 1."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    w = np.random.default_rng(0).standard_normal(256 * 256)
    with threadpool_limits(1):
        one = w @ w
    with threadpool_limits(2):
        two = w @ w
    return one != two


def blas_kernel() -> str:
    from threadpoolctl import threadpool_info

    return ", ".join(f"{lib['internal_api']} {lib['version']} ({lib.get('architecture')} kernels)"
                     for lib in threadpool_info() if lib["user_api"] == "blas")


@pytest.mark.slow
@TWO_CPUS
def test_the_workload_depends_on_the_thread_count(cli):
    """1 and 2 threads are applied and recorded, and they change the bytes of this workload:
    otherwise the launcher test below could not fail. Skipped where the BLAS gives the same sums
    with either count (then no workload's bytes can depend on it)."""
    if not threads_change_sums():
        pytest.skip(f"{blas_kernel()} adds a long dot product's partial sums in the same order "
                    "with 1 and 2 threads: the thread count cannot change a run's bytes here")
    runs = {}
    for n in (1, 2):
        result = cli("run", *WORKLOAD, f"threads={n}")
        assert result.returncode == 0, result.stderr
        runs[n] = cli.run_dir(result)
        record = summary(runs[n])["threads"]
        assert record["requested"] == n and blas_threads(record) == {n}
    assert metrics(runs[1]) != metrics(runs[2])


@pytest.mark.slow
def test_same_bytes_under_every_launcher(cli, plugins):
    """The same config, seed and threads give byte-identical metrics.csv under the basic
    launcher (this process, the libraries' default: 2 threads here), joblib (loky workers with
    OPENBLAS_NUM_THREADS=1) and submitit_local; each member records the threads it ran with."""
    members = {"0": 1, "1": 2}  # threads=1,2
    sweeps = {}
    for launcher in ("basic", "joblib", "submitit_local"):
        result = cli("run", "-m", *WORKLOAD, "threads=1,2", f"hydra/launcher={launcher}",
                     timeout=600)
        assert result.returncode == 0, result.stderr
        sweeps[launcher] = cli.run_dir(result)
        for m, n in members.items():
            record = summary(sweeps[launcher] / m)["threads"]
            assert record["requested"] == n
            if (os.cpu_count() or 1) >= 2:
                assert blas_threads(record) == {n}
    for launcher in ("joblib", "submitit_local"):
        for m in members:
            assert metrics(sweeps[launcher] / m) == metrics(sweeps["basic"] / m), (launcher, m)
    assert summary(sweeps["joblib"] / "0")["threads"].get("OPENBLAS_NUM_THREADS") == "1"  # loky


@pytest.mark.needs("mnist")
@pytest.mark.slow
def test_grad_flow_same_bytes_basic_and_joblib(cli, plugins):
    """The issue's case: `experiment=grad_flow` on real MNIST (skipped without the files)."""

    args = ("run", "-m", "experiment=grad_flow", "model.activation=sigmoid,relu", "max_steps=10",
            "dataset.subset=1000", "progress=none")
    basic = cli.run_dir(cli(*args))
    result = cli(*args, "hydra/launcher=joblib")
    assert result.returncode == 0, result.stderr
    joblib = cli.run_dir(result)
    for m in "01":
        assert metrics(joblib / m) == metrics(basic / m), m


# --- dlx bench --threads ----------------------------------------------------------------------

def test_an_epoch_is_mnist_mlps_steps():
    assert bench_threads.epoch_steps() == 860  # ceil(55000 / 64)
    assert bench_threads.epoch_steps(128, 64) == 2 and bench_threads.epoch_steps(129, 64) == 3


def test_summarize_takes_medians_and_their_ratio():
    times = {"quiet": [1.0, 3.0, 2.0], "loaded": [4.0, 8.0, 6.0]}
    cpu = {"quiet": [2.0, 6.0, 4.0], "loaded": [4.0, 8.0, 3.0]}
    s = bench_threads.summarize(times, cpu)
    assert s["median_epoch_s"] == {"quiet": 2.0, "loaded": 6.0}
    assert s["loaded_over_quiet"] == 3.0
    assert s["cpu_per_wall"] == {"quiet": 2.0, "loaded": 1.0}  # medians of 2, 2, 2 and 1, 1, .5
    assert "loaded_over_quiet" not in bench_threads.summarize({"quiet": [1.0]}, {"quiet": [1.0]})


def test_bench_report_on_a_tiny_case(tmp_path):
    report = bench_threads.run(settings=(1, None), steps=2, repeats=3, warmup=1, batch=8,
                               n_train=80)
    assert report["case"]["steps_per_epoch"] == 10 and report["case"]["steps_timed"] == 2
    assert [e["label"] for e in report["results"]] == ["1", "default"]
    for e in report["results"]:
        for c in ("quiet", "loaded"):
            assert len(e["epoch_s"][c]) == 3 and len(e["cpu_s"][c]) == 3
            assert e["median_epoch_s"][c] == statistics.median(e["epoch_s"][c])
        assert e["loaded_over_quiet"] == pytest.approx(
            e["median_epoch_s"]["loaded"] / e["median_epoch_s"]["quiet"])
    one = report["results"][0]
    assert blas_threads({"libraries": one["libraries"]}) == {1}
    assert report["results"][1]["libraries"] == report["default_libraries"]
    assert report["criterion"]["threads"] == threads.DEFAULT == 1
    assert report["criterion"]["loaded_over_quiet"] == one["loaded_over_quiet"]
    assert report["criterion"]["met"] == (one["loaded_over_quiet"] <= 2)
    assert 0 < report["competitor_cpu_share"] <= 1.5  # it ran (a core's worth at most)
    assert len(report["load_average"]["start"]) == len(report["load_average"]["end"]) == 3
    if os.path.exists("/proc/stat"):
        assert all(x >= 0 for e in report["results"] for c in ("quiet", "loaded")
                   for x in e["background_cores"][c])


def test_background_cores_is_the_rest_of_the_machines_cpu():
    # 3 busy seconds in 2 s of wall time, 1.2 of them ours and 0.8 the competitor's: 0.5 core
    assert bench_threads.background_cores(3.0, 1.2, 0.8, 2.0) == pytest.approx(0.5)
    assert bench_threads.background_cores(1.0, 1.2, 0.0, 2.0) == 0.0  # tick rounding: never < 0
    assert bench_threads.background_cores(None, 1.2, 0.0, 2.0) is None


def test_bench_threads_command(cli):
    result = cli("bench", "--threads", "--steps", "2", "--repeats", "1", "--warmup", "1",
                 "--out", "threads.json")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "threads.json"
    report = json.loads((cli.cwd / "threads.json").read_text())
    assert report["kind"] == "threads" and report["case"]["steps_per_epoch"] == 860
    assert [e["label"] for e in report["results"]] == ["1", "2", "default"]
    assert "loaded / quiet" in result.stdout and "criterion <= 2" in result.stdout
    assert_one_error_line(cli("bench", "--threads", "--launchers"), "--launchers and --threads")
