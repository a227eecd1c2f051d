"""The scaling study (issue 13, item 2): the tiny Shakespeare data set, the fits on log loss with
intervals from resampling seeds, the IsoFLOP optimum, and a CI-sized sweep end to end."""

from __future__ import annotations

import hashlib
import io
import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from dlx.data import text
from dlx.errors import UsageError
from dlx.experiments import fits
from tests.conftest import assert_one_error_line, need


@pytest.fixture
def shakespeare():
    """The real file in $DLX_DATA_DIR (CI: DLX_DATA_DIR=../shared/data); skipped if absent."""
    need("tinyshakespeare")
    return text.path("tinyshakespeare")


def build(**options):
    from dlx.assemble import build_dataset

    return build_dataset({"name": "tinyshakespeare", **options}, np.random.default_rng(0))


# --- the data set ---------------------------------------------------------------------------

def test_vocabulary_windows_and_contiguous_split(shakespeare):
    raw = shakespeare.read_text()
    d = build(block_size=32)
    assert d.spec.vocab == len(d.classes) == 65 and d.spec.seq_len == 32
    assert d.X_train.dtype == d.y_train.dtype == np.int64 and d.X_train.shape[1] == 32
    decode = np.array(d.classes)
    # windows of the text in order; the target is the next character at every position
    assert "".join(decode[d.X_train[0]]) == raw[:32]
    assert "".join(decode[d.y_train[0]]) == raw[1:33]
    assert "".join(decode[d.X_train[1]]) == raw[32:64]  # stride = block_size: disjoint
    n_train = len(raw) - round(0.1 * len(raw))  # the last 10% is validation
    assert "".join(decode[d.X_val[0]]) == raw[n_train:n_train + 32]
    assert len(d.X_train) == (n_train - 1 - 32) // 32 + 1


def test_nested_training_subsets_and_one_fixed_validation_set(shakespeare):
    small, large, full = (build(block_size=16, stride=8, n_train_tokens=n, val_tokens=4000)
                          for n in (1000, 5000, None))
    assert len(small.X_train) == (1000 - 1 - 16) // 8 + 1
    # a smaller D is a prefix of a larger one: the same windows, in the same places
    np.testing.assert_array_equal(large.X_train[:len(small.X_train)], small.X_train)
    np.testing.assert_array_equal(full.X_train[:len(large.X_train)], large.X_train)
    assert small.X_train.max() < 65 and len(full.X_train) > len(large.X_train)
    for d in (small, large):  # the same validation windows for every D
        np.testing.assert_array_equal(d.X_val, full.X_val)
        np.testing.assert_array_equal(d.y_val, full.y_val)
    assert full.X_val.shape == ((4000 - 1 - 16) // 16 + 1, 16)


def test_bad_options_are_usage_errors(shakespeare):
    with pytest.raises(UsageError, match="n_train_tokens must be in"):
        build(block_size=64, n_train_tokens=10)
    with pytest.raises(UsageError, match="block_size and stride must be >= 1"):
        build(block_size=0)


def test_a_missing_file_is_downloaded_verified_or_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("DLX_DATA_DIR", str(tmp_path))
    body = b"To be, or not to be: that is the question.\n"
    monkeypatch.setitem(text.SOURCES["tinyshakespeare"], "sha256",
                        hashlib.sha256(body).hexdigest())
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(body))
    assert text.load_text("tinyshakespeare") == body.decode()
    assert (tmp_path / "tinyshakespeare" / "input.txt").read_bytes() == body  # cached

    other = tmp_path / "other"
    monkeypatch.setenv("DLX_DATA_DIR", str(other))
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"x"))
    with pytest.raises(UsageError, match="wrong checksum"):
        text.load_text("tinyshakespeare")
    assert not (other / "tinyshakespeare" / "input.txt").exists()  # nothing unverified kept

    def offline(url, timeout):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(UsageError, match="missing and the download failed"):
        text.load_text("tinyshakespeare")


# --- the fits -------------------------------------------------------------------------------

TRUE = {"E": 1.2, "A": 25.0, "alpha": 0.4}


def synthetic(rng, seeds: int = 3, noise: float = 0.01):
    """L = E + A N^-alpha over 2.3 decades, each seed with its own multiplicative noise."""
    N = np.repeat(np.geomspace(2e3, 4e5, 6), seeds)
    return N, (TRUE["E"] + TRUE["A"] * N ** -TRUE["alpha"]) * np.exp(rng.normal(0, noise, len(N)))


def test_saturating_fit_recovers_exponent_and_floor():
    N, _ = synthetic(np.random.default_rng(0))
    exact = fits.fit_saturating(N, TRUE["E"] + TRUE["A"] * N ** -TRUE["alpha"])
    for k, v in TRUE.items():
        assert exact[k] == pytest.approx(v, rel=1e-6)
    noisy = fits.fit_saturating(*synthetic(np.random.default_rng(1)))
    assert noisy["alpha"] == pytest.approx(0.4, abs=0.04)
    assert noisy["E"] == pytest.approx(1.2, abs=0.05)
    power = fits.fit_power(N, 3.0 * N ** -0.3)
    assert power["alpha"] == pytest.approx(0.3) and power["r2_log"] == pytest.approx(1.0)


def test_the_fit_is_least_squares_on_log_loss():
    """At the fit, no small change of (E, A, alpha) lowers the squared error of log L (a fit on
    linear L, as before, sits elsewhere when the noise is multiplicative)."""
    N, L = synthetic(np.random.default_rng(2), noise=0.1)  # the old linear fit fails here
    f = fits.fit_saturating(N, L)

    def sse(E, A, alpha):
        return np.sum((np.log(E + A * N ** -alpha) - np.log(L)) ** 2)

    best = sse(f["E"], f["A"], f["alpha"])
    for k in ("E", "A", "alpha"):
        for factor in (0.999, 1.001):
            moved = {key: f[key] for key in ("E", "A", "alpha")}
            moved[k] *= factor
            assert sse(**moved) > best


def test_intervals_resample_seeds_and_cover_the_truth():
    # no seed spread: every resample is the same data, so the interval has no width (a
    # bootstrap over points would still move the fit)
    N = np.repeat(np.geomspace(2e3, 4e5, 6), 3)
    L = TRUE["E"] + TRUE["A"] * N ** -TRUE["alpha"] * np.repeat([1.0, 1.02, 0.97, 1.01, 0.99, 1.0], 3)
    lo, hi = fits.seed_bootstrap(fits.fit_saturating, N, L, n=30)["alpha"]
    assert hi - lo < 1e-9
    # with seed noise the 95% interval covers the true values in most synthetic studies
    covered = {"alpha": 0, "E": 0}
    for k in range(6):
        N, L = synthetic(np.random.default_rng(100 + k), seeds=4)
        ci = fits.seed_bootstrap(fits.fit_saturating, N, L, n=100, seed=k)
        for key in covered:
            covered[key] += ci[key][0] <= TRUE[key] <= ci[key][1]
    assert covered["alpha"] >= 5 and covered["E"] >= 5, covered


def test_isoflop_finds_the_compute_optimal_size():
    """L(N, D) = E + A/N^a + B/D^b with D = C/6N has its minimum at N_opt ~ C^(b/(a+b)): with
    a = b the exponent is 1/2 (Hoffmann et al.); the parabola in log N recovers it."""
    E, A, B, a, b = 1.5, 400.0, 400.0, 0.34, 0.34
    rows = []
    rng = np.random.default_rng(0)
    for C in (1e10, 1e11, 1e12):
        n_star = (a * A / (b * B)) ** (1 / (a + b)) * (C / 6) ** (b / (a + b))
        for N in n_star * np.geomspace(1 / 8, 8, 7):
            for _ in range(3):
                L = (E + A / N ** a + B / (C / (6 * N)) ** b) * np.exp(rng.normal(0, 0.002))
                rows.append((C, N, L))
    C, N, L = map(np.array, zip(*rows))
    result = fits.isoflop(C, N, L, n=100)
    assert result["a"] == pytest.approx(0.5, abs=0.03)
    assert result["a_ci95"][0] <= 0.5 + 0.03 and result["a_ci95"][1] >= 0.5 - 0.03
    for row, c in zip(result["budgets"], (1e10, 1e11, 1e12)):
        assert row["N_opt"] == pytest.approx((c / 6) ** 0.5, rel=0.25)  # A = B, a = b
        assert row["D_opt"] == pytest.approx(c / (6 * row["N_opt"]))
    # the lowest loss at an end of the sizes: the optimum lies outside them, no minimum claimed
    assert np.isnan(fits.parabola_minimum([1, 10, 100, 1000], [3.0, 2.2, 1.5, 1.0])["N_opt"])
    # far sizes (step-starved: much higher loss) do not move the vertex fitted near the minimum
    u = np.log([1e3, 2e3, 4e3, 8e3, 16e3])
    L = (u - np.log(4e3)) ** 2 + np.array([0, 0, 0, 0, 5.0])
    assert fits.parabola_minimum(np.exp(u), L)["N_opt"] == pytest.approx(4e3)


# --- end to end -----------------------------------------------------------------------------

TINY = ("model.n_layers=1", "dataset.block_size=16", "dataset.val_tokens=4000",
        "batch_size=16", "scaling.bootstrap=50", "scaling.train_eval_windows=64", "progress=none")


@pytest.mark.slow
def test_a_tiny_scaling_sweep_end_to_end(cli, shakespeare):
    cli.env["DLX_DATA_DIR"] = str(shakespeare.parent.parent)
    result = cli("run", "-m", "experiment=scaling", *TINY, "max_steps=150",
                 "model.d_model=4,8,32")
    assert result.returncode == 0, result.stderr
    assert "9 completed" in result.stderr  # 3 widths x 3 seeds
    sweep = cli.run_dir(result)
    summary = json.loads((sweep / "0" / "summary.json").read_text())
    assert summary["tokens_seen"] == 150 * 16 * 16 and summary["train_chars"] > 10**6
    assert summary["train_flops"] == 6.0 * summary["non_embedding_params"] * 150 * 16 * 16
    plotted = cli("plot", str(sweep))
    assert plotted.returncode == 0, plotted.stderr
    assert (sweep / "plots" / "scaling_model.png").is_file()
    assert (sweep / "0" / "plots" / "learning_curve.png").is_file()
    fit = json.loads((sweep / "plots" / "scaling_fit.json").read_text())
    pts = fit["points"]
    assert pts["n"] == [3, 3, 3] and len(fit["x"]) == 9
    assert pts["mean"][0] > pts["mean"][1] > pts["mean"][2]  # loss falls with N at fixed data
    assert fit["power_law"]["alpha"] > 0
    assert fit["power_law"]["ci95"]["alpha"][0] <= fit["power_law"]["alpha"] \
        <= fit["power_law"]["ci95"]["alpha"][1]
    assert fit["reference_alpha"] == {"kaplan": 0.076, "chinchilla": 0.34}


@pytest.mark.slow
def test_isoflop_runs_take_their_steps_from_the_budget_reproducibly(cli, shakespeare):
    cli.env["DLX_DATA_DIR"] = str(shakespeare.parent.parent)
    result = cli("run", "experiment=scaling_compute", *TINY, "model.d_model=8",
                 "scaling.flops=2e8")
    assert result.returncode == 0, result.stderr
    s = json.loads((cli.run_dir(result) / "summary.json").read_text())
    assert s["steps"] == round(2e8 / (6 * s["non_embedding_params"] * 16 * 16))
    assert s["train_flops"] == pytest.approx(2e8, rel=0.01)
    again = cli("run", "experiment=scaling_compute", *TINY, "model.d_model=8", "scaling.flops=2e8")
    assert (cli.run_dir(again) / "metrics.csv").read_bytes() == \
        (cli.run_dir(result) / "metrics.csv").read_bytes()  # same config and seed: same bytes
    assert_one_error_line(cli("run", "experiment=scaling_compute", "scaling.flops=null"),
                          "scaling.flops must be > 0")
    assert_one_error_line(cli("run", "experiment=scaling", "scaling.axis=time"),
                          "scaling.axis must be one of model, data, compute")


def test_experiment_names_keep_working_and_sweep_what_they_say():
    from hydra import compose, initialize_config_dir

    from dlx.experiments import hooks

    conf = Path(__file__).parent.parent / "conf"
    sweeps = {}
    with initialize_config_dir(config_dir=str(conf), version_base=None):
        for name in ("scaling", "scaling_data", "scaling_compute"):
            assert hooks(name).__name__ == "dlx.experiments.scaling"
            cfg = compose("config", overrides=[f"experiment={name}"], return_hydra_config=True)
            sweeps[name] = {k: str(v).split(",") for k, v in cfg.hydra.sweeper.params.items()}
    assert sweeps["scaling"] == {"model.d_model": ["8", "16", "32", "64", "128"],
                                 "seed": ["0", "1", "2"]}
    # one model for L(D): scaling's list of widths must not leak into it (75 runs, not 15)
    assert sweeps["scaling_data"]["model.d_model"] == ["32"]
    assert len(sweeps["scaling_data"]["dataset.n_train_tokens"]) == 5
    assert len(sweeps["scaling_compute"]["scaling.flops"]) == 3
    assert all(len(s["seed"]) >= 3 for s in sweeps.values())
