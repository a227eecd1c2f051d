"""`dlx gradcheck`: per-parameter relative errors of the configured model, and what fails it."""

from __future__ import annotations

import pytest
from conftest import assert_one_error_line

from dlx import gradcheck
from dlx.nn.layers import Linear


def test_every_parameter_of_the_configured_model_is_checked():
    rows, what = gradcheck.check(["model=mlp", "dataset=moons", "model.hidden=[8,8]"])
    assert [r.name for r in rows] == ["fc1.W", "fc1.b", "fc2.W", "fc2.b", "fc3.W", "fc3.b"]
    assert all(r.rel_error < 1e-7 for r in rows), rows
    assert rows[2].checked == 12 and rows[5].checked == 1  # sampled entries; all of a small one
    assert "mlp on feature vectors" in what


@pytest.mark.parametrize("overrides", [["model=transformer", "dataset=reverse"],
                                       ["model=rnn", "dataset=copy_memory", "model.cell=gru"]])
def test_parameters_with_tiny_gradients_pass_at_the_default_step(overrides):
    """A transformer's LayerNorm gains and a GRU's input weights have gradients ~1e-5 of the
    loss: at h = 1e-6 round-off alone read 5e-6 and 2e-5 (a new user's first try failed);
    h = 1e-5 keeps them under the default tolerance."""
    rows, _ = gradcheck.check(overrides)
    assert max(r.rel_error for r in rows) < 1e-5, rows
    rows, _ = gradcheck.check(overrides, h=1e-6)
    assert max(r.rel_error for r in rows) > 1e-6  # the round-off the step avoids


def test_a_wrong_backward_fails_the_check(monkeypatch, capsys):
    right = Linear.backward

    def off_by_one_percent(self, dout):
        dx = right(self, dout)
        self.W.grad *= 1.01
        return dx

    monkeypatch.setattr(Linear, "backward", off_by_one_percent)
    rows, what = gradcheck.check(["model=mlp", "dataset=moons", "model.hidden=[8]"])
    assert all(4e-3 < r.rel_error < 6e-3 for r in rows if r.name.endswith(".W"))
    assert not gradcheck.print_report(rows, what, tol=1e-5)
    assert "errors that stay put mean a wrong backward" in capsys.readouterr().out


@pytest.mark.needs("mnist")
def test_zero_biases_on_zero_pixels_do_not_sit_on_relu_kinks():
    """LeNet on MNIST at its initialization (zero biases, zero background pixels) would put
    every background ReLU on its kink; the check moves all-zero parameters off it."""
    rows, _ = gradcheck.check(["model=cnn", "dataset=mnist", "dataset.subset=50"], examples=2,
                              entries=4)
    assert max(r.rel_error for r in rows) < 1e-7, rows


@pytest.mark.slow
def test_gradcheck_command(cli):
    result = cli("gradcheck", "model=mlp", "dataset=moons", "model.hidden=[8]")
    assert result.returncode == 0, result.stderr
    assert "fc1.W" in result.stdout and "below 1e-05" in result.stdout
    assert_one_error_line(cli("gradcheck", "model=nope"), "unknown model 'nope'")
    assert_one_error_line(cli("gradcheck", "nosuchkey=1"), "unknown key 'nosuchkey'")
    assert_one_error_line(cli("gradcheck", "model=mlp,logreg"), "no sweeps")
    assert_one_error_line(cli("gradcheck", "model.hidden=[-3]"), "hidden")
    assert_one_error_line(cli("gradcheck", "--step", "0"), "--step must be > 0")
