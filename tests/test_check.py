"""`dlx check` for optimizers: every catalogue entry applied to the reference is diagnosed as
itself (and none fires on the reference), every relation and interface rule names the mistake
it exists for, and the command's exit codes and output are what a learner reads."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dlx.checks import mistakes, optim
from dlx.optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop
from tests.conftest import CLI, assert_one_error_line

REFERENCES = {  # concept -> (dlx's class, options)
    "sgd": (SGD, {"lr": 0.05}),
    "momentum": (SGD, {"lr": 0.05, "momentum": 0.9}),
    "nesterov": (SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    "adam": (Adam, {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8}),
    "rmsprop": (RMSprop, {"lr": 0.01, "alpha": 0.99, "eps": 1e-8}),
    "adagrad": (Adagrad, {"lr": 0.01, "eps": 1e-10}),
    "adamw": (AdamW, {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1}),
}


def checked(concept: str, mine) -> optim.Result:
    cls, options = REFERENCES[concept]
    return optim.check(mine, lambda ps: cls(ps, **options), options,
                       mistakes.for_concept(concept))


@pytest.mark.parametrize("concept", REFERENCES)
def test_the_reference_passes_with_no_diagnosis(concept):
    cls, options = REFERENCES[concept]
    result = checked(concept, lambda ps: cls(ps, **options))
    assert result.passed and result.variant is None and result.failed is None
    assert [s for s, _ in result.stages] == ["0 interface", "1 fixed inputs", "4 trajectory"]


@pytest.mark.parametrize("entry", mistakes.CATALOGUE, ids=lambda m: m.key)
def test_every_catalogue_entry_is_diagnosed_as_itself(entry):
    """A bug fails with its own message; an accepted variant passes with its note."""
    options = REFERENCES[entry.concept][1]
    result = checked(entry.concept, lambda ps: entry.make(ps, **options))
    if entry.severity == "bug":
        assert not result.passed and result.diagnosis == entry.title, result
        assert result.revisit == entry.revisit
    else:
        assert result.passed and result.variant.startswith(entry.title), result
        assert any("exactly as that variant does" in note for note in result.notes)


@pytest.mark.parametrize("concept", ["momentum", "adam", "rmsprop", "adagrad", "adamw"])
def test_the_catalogues_own_base_rule_is_the_reference(concept):
    """Switched off, every entry's class computes torch's rule: the catalogue differs from the
    reference only by the switch it names."""
    cls = {"momentum": mistakes._Momentum, "adam": mistakes._Adam,
           "rmsprop": mistakes._RMSprop, "adagrad": mistakes._Adagrad,
           "adamw": mistakes._AdamW}[concept]
    result = checked(concept, lambda ps: cls(ps, **REFERENCES[concept][1]))
    assert result.passed and result.variant is None


class Scaled(Optimizer):
    def __init__(self, params, lr=0.05, factor=1.0, power=1):
        super().__init__(params, lr)
        self.factor, self.power = factor, power

    def update(self, p, g, state):
        p -= self.factor * self.lr ** self.power * g


@pytest.mark.parametrize("factor, power, says", [
    (-1.0, 1, "the opposite of the reference's: it climbs the gradient (p += where p -= is "
              "meant)"),
    (2.0, 1, "twice the reference's"),
    (0.5, 1, "half the reference's"),
    (1.0, 2, "the reference's times lr = 0.05: the learning rate applied twice"),
    (1.0, 0, "the reference's divided by lr = 0.05: the learning rate left out"),
    (3.0, 1, "3 times the reference's (a constant factor)"),
])
def test_a_constant_factor_is_named(factor, power, says):
    result = checked("sgd", lambda ps: Scaled(ps, factor=factor, power=power))
    assert not result.passed and result.failed == "1 fixed inputs"
    assert result.diagnosis == f"your step at step 1 is {says}", result.diagnosis
    assert [r.step for r in result.rows] == [1, 1, 2, 2]  # where they part, not every step


class KeptRate(Optimizer):
    def __init__(self, params, lr=0.05):
        super().__init__(params, lr)
        self.rate = lr

    def update(self, p, g, state):
        p -= self.rate * g


def test_a_rate_kept_from_init_is_named_at_the_schedules_change():
    result = checked("sgd", KeptRate)
    assert result.failed == "4 trajectory"
    assert "kept the learning rate it was built with: at step 11 self.lr was halved" in \
        result.diagnosis
    assert [r.step for r in result.rows][0] == optim.HALVED_AT


class SharedMomentum(Optimizer):
    def __init__(self, params, lr=0.05, momentum=0.9):
        super().__init__(params, lr)
        self.mu, self.b = momentum, None

    def update(self, p, g, state):  # one buffer on self for every parameter
        self.b = g.copy() if self.b is None or self.b.shape != g.shape else self.mu * self.b + g
        p -= self.lr * self.b


class GradInPlace(Optimizer):
    def __init__(self, params, lr=0.05):
        super().__init__(params, lr)

    def update(self, p, g, state):
        g *= self.lr
        p -= g


class Noisy(Optimizer):
    def __init__(self, params, lr=0.05):
        super().__init__(params, lr)
        self.rng = np.random.default_rng()

    def update(self, p, g, state):
        p -= self.lr * g * (1 + 1e-3 * self.rng.standard_normal())


class AdamFromZero(mistakes._Adam):  # its own step counter, used before it is incremented
    def update(self, p, g, state):
        t = state.get("t", 0)  # 0 at the first step: incremented only after its use
        self.t_offset = t - self.t
        super().update(p, g, state)
        state["t"] = t + 1


@pytest.mark.parametrize("cls, says", [
    (AdamFromZero, "holds NaN or inf (a division by zero? a bias correction 1 - beta^t is 0"),
    (GradInPlace, "update changed the gradient g in place"),
    (SharedMomentum, "state is shared between parameters"),
    (Noisy, "the same steps on the same inputs gave different results"),
])
def test_the_interface_stage_names_the_broken_rule(cls, says):
    result = checked("adam" if cls is AdamFromZero else "momentum", cls)
    assert result.failed == "0 interface" and says in result.diagnosis, result.diagnosis


def test_a_step_right_at_first_and_wrong_later_points_at_the_state():
    class ForgetsMomentum(Optimizer):  # heavy ball whose buffer is rebuilt every step
        def __init__(self, params, lr=0.05, momentum=0.9):
            super().__init__(params, lr)

        def update(self, p, g, state):
            state["b"] = g.copy()
            p -= self.lr * state["b"]

    result = checked("momentum", ForgetsMomentum)
    assert result.failed == "1 fixed inputs"
    assert "after step 2" in result.diagnosis
    assert "what carries from step to step differs" in result.revisit
    state = [r for r in result.rows if r.name.startswith("state")]
    assert state and state[0].name.startswith("state W.b ~ W.momentum_buffer")


# --- the command --------------------------------------------------------------------------------

ADAM = '''\
import numpy as np

from dlx.optim import Optimizer


class Adam(Optimizer):
    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, correct=True):
        super().__init__(params, lr)
        self.b1, self.b2 = betas
        self.eps, self.correct = eps, correct

    def update(self, p, g, state):
        if not state:
            state["m"], state["v"] = np.zeros_like(p), np.zeros_like(p)
        m, v = state["m"], state["v"]
        m[...] = self.b1 * m + (1 - self.b1) * g
        v[...] = self.b2 * v + (1 - self.b2) * g * g
        c1 = 1 - self.b1 ** self.t if self.correct else 1.0
        c2 = 1 - self.b2 ** self.t if self.correct else 1.0
        p -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


class Raises(Adam):
    def update(self, p, g, state):
        raise RuntimeError("my bug")
'''


SLIPS = '''

class Inverted(ReLU):
    def backward(self, dout):
        return dout * ~self.mask


class TransposedLinear(Linear):
    def backward(self, dout):  # dW as (d_out, d_in): the transpose of W's shape
        self.W.grad += dout.T @ self.x
        self.b.grad += dout.sum(axis=0)
        return dout @ self.W.data.T
'''


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("check")
    assert CLI(root)("init", "ws").returncode == 0
    ws = root / "ws"
    (ws / "mine" / "optim.py").write_text(ADAM)
    from tests.test_learner import LOSSES

    (ws / "mine" / "losses.py").write_text(LOSSES)
    (ws / "conf" / "loss" / "my_bce.yaml").write_text("_target_: mine.losses.BCE\n")
    (ws / "conf" / "loss" / "flat.yaml").write_text("_target_: mine.losses.FlatBCE\n"
                                                    "reference: bce\n")
    from tests.test_learner import LAYERS

    (ws / "mine" / "layers.py").write_text(LAYERS + SLIPS)  # a learner's Linear and ReLU
    (ws / "conf" / "activation" / "my_relu.yaml").write_text("_target_: mine.layers.ReLU\n")
    (ws / "conf" / "activation" / "inverted.yaml").write_text(
        "_target_: mine.layers.Inverted\nreference: relu\n")
    for name, text in (("my_adam", "_target_: mine.optim.Adam\nreference: adam\n"),
                       ("no_bc", "_target_: mine.optim.Adam\nreference: adam\ncorrect: false\n"),
                       ("raises", "_target_: mine.optim.Raises\nreference: adam\n"),
                       ("unreferenced", "_target_: mine.optim.Raises\n")):
        (ws / "conf" / "optimizer" / f"{name}.yaml").write_text(text)
    return ws


@pytest.mark.slow
def test_the_command_passes_fails_and_refuses_with_its_exit_codes(ws):
    cli = CLI(ws)
    ok = cli("check", "optimizer=my_adam")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("PASS  my_adam (mine.optim:Adam) computes what dlx's adam")
    assert "not checked: stages 2 and 3" in ok.stdout  # a pass says what it did not check
    bad = cli("check", "optimizer=no_bc")
    assert bad.returncode == 1
    first, second = bad.stdout.splitlines()[:2]
    assert first.startswith("FAIL  no_bc (mine.optim:Adam) against dlx's adam")
    assert "stage 1 fixed inputs" in first
    assert second.strip().startswith("Adam without bias correction")  # the diagnosis first
    assert "state W.m ~ W.exp_avg" in bad.stdout  # the moments are right: the step is not
    as_json = json.loads(cli("check", "optimizer=no_bc", "--json").stdout)
    assert as_json["passed"] is False and as_json["failed"] == "1 fixed inputs"
    assert as_json["diagnosis"].startswith("Adam without bias correction")
    raised = cli("check", "optimizer=raises")  # the verdict first, then the learner's frames
    first, *frames = raised.stdout.splitlines()
    assert raised.returncode == 1 and first.startswith("FAIL  raises (mine.optim:Raises): your "
                                                       "code raised ") and "my bug" in first
    assert frames[0].startswith("Traceback (your code") and "mine/optim.py" in raised.stdout
    assert "dlx/checks" not in raised.stdout and raised.stderr == ""
    as_json = json.loads(cli("check", "optimizer=raises", "--json").stdout)
    assert as_json["failed"] == "your code raised" and "mine/optim.py" in as_json["trace"]
    assert_one_error_line(cli("check", "optimizer=adam"), "optimizer=adam is dlx's own")
    assert_one_error_line(cli("check", "optimizer=unreferenced"),
                          "say which dlx optimizer yours implements")
    assert_one_error_line(cli("check"), "say what to check: one optimizer=NAME")
    assert_one_error_line(cli("check", "model=mlp"), "model=mlp is dlx's own")
    assert_one_error_line(cli("check", "loss=my_bce", "optimizer=my_adam"),
                          "one thing at a time: you gave loss=my_bce and optimizer=my_adam")
    (ws / "conf" / "activation" / "slope.yaml").write_text(
        "_target_: mine.layers.ReLU\nslope: 0.2\n")
    assert_one_error_line(cli("check", "model.activation=slope"),
                          "sets slope, but dlx builds an activation with no options")
    (ws / "conf" / "activation" / "slope.yaml").unlink()
    bce = cli("check", "loss=my_bce")  # the reference named by the class: BCE -> bce
    assert bce.returncode == 0 and bce.stdout.startswith(
        "PASS  my_bce (mine.losses:BCE) computes what dlx's bce"), bce.stdout + bce.stderr
    flat = cli("check", "loss=flat")
    assert flat.returncode == 1 and "backward returned shape (6,)" in flat.stdout
    relu = cli("check", "model.activation=my_relu")  # conf/activation/my_relu.yaml, ReLU -> relu
    assert relu.returncode == 0 and relu.stdout.startswith(
        "PASS  my_relu (mine.layers:ReLU) computes what dlx's relu"), relu.stdout + relu.stderr
    upside = cli("check", "model.activation=inverted")
    assert upside.returncode == 1 and "the mask is inverted" in upside.stdout, upside.stdout
    transposed = cli("check", "layer=mine.layers.TransposedLinear")
    assert transposed.returncode == 1, transposed.stderr
    assert "your weight gradient is the transpose of dL/dW" in transposed.stdout
    assert_one_error_line(cli("check", "optimizer=my_adam", "optimizer.reference=nope"),
                          "reference 'nope' is not a dlx optimizer")


@pytest.mark.slow
def test_the_readmes_check_output_is_what_the_command_prints(ws):
    """The README's `dlx check optimizer=nobc`: its Adam with the bias correction left out
    (mine/bad.py, class NoBC) prints those lines, number for number."""
    import re

    from tests.conftest import REPO
    from tests.test_learner import readme_files

    adam = readme_files()["mine/optim.py"]
    bad = adam.replace("class Adam", "class NoBC").replace(
        "m_hat = m / (1 - self.b1 ** self.t)", "m_hat = m").replace(
        "v_hat = v / (1 - self.b2 ** self.t)", "v_hat = v")
    assert "** self.t" not in bad, bad  # both corrections gone
    (ws / "mine" / "bad.py").write_text(bad)
    (ws / "conf" / "optimizer" / "nobc.yaml").write_text(
        "_target_: mine.bad.NoBC\nreference: adam\nlr: 0.001\n")
    text = (REPO / "README.md").read_text()
    block = re.search(r"```console\n\$ dlx check optimizer=nobc\n(.*?)```", text, re.S).group(1)
    shown = [line for line in block.splitlines() if line.strip() != "..."]
    printed = CLI(ws)("check", "optimizer=nobc").stdout.splitlines()
    assert printed[:len(shown)] == shown


# --- losses -------------------------------------------------------------------------------------

from dlx.checks import losses as loss_check  # noqa: E402
from dlx.nn.losses import MSE, BCEWithLogits, SoftmaxCrossEntropy  # noqa: E402


class SummedBCE(BCEWithLogits):
    def forward(self, z, y):
        return super().forward(z, y) * len(z)

    def backward(self):
        return super().backward() * len(self._cache[0])


class NoMeanInBackward(SoftmaxCrossEntropy):
    def backward(self):
        return super().backward() * len(self._cache[0])


class NoTargetTerm(SoftmaxCrossEntropy):
    def backward(self):  # softmax / N: the -1 at the true class forgotten
        shifted, logsumexp, _ = self._cache
        return np.exp(shifted - logsumexp[:, None]) / len(shifted)


class HalfMSE(MSE):
    def forward(self, z, y):
        return 0.5 * super().forward(z, y)

    def backward(self):
        return 0.5 * super().backward()


class Uphill(BCEWithLogits):
    def backward(self):
        return -super().backward()


class NaiveSoftmax:
    def forward(self, z, y):
        self.p, self.y = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True), y
        return float(-np.mean(np.log(self.p[np.arange(len(y)), y])))

    def backward(self):
        d = self.p.copy()
        d[np.arange(len(self.y)), self.y] -= 1
        return d / len(self.y)


class NaiveBCE:
    def forward(self, z, y):
        self.p, self.y = 1 / (1 + np.exp(-z[:, 0])), y
        return float(-np.mean(y * np.log(self.p) + (1 - y) * np.log(1 - self.p)))

    def backward(self):
        return ((self.p - self.y) / len(self.y))[:, None]


class OverflowingBackward(NaiveBCE):
    """A safe forward (logaddexp), a backward whose exp(z) / (1 + exp(z)) is inf / inf."""
    def forward(self, z, y):
        self.z, self.y = z[:, 0], y
        return float(np.mean(y * np.logaddexp(0, -self.z) + (1 - y) * np.logaddexp(0, self.z)))

    def backward(self):
        p = np.exp(self.z) / (1 + np.exp(self.z))
        return ((p - self.y) / len(self.y))[:, None]


class PerExample(MSE):
    def forward(self, z, y):
        super().forward(z, y)
        return self._diff ** 2


class Flat(BCEWithLogits):
    def backward(self):
        return super().backward()[:, 0]


class InPlace(BCEWithLogits):
    def forward(self, z, y):
        z -= z.max()
        return super().forward(z, y)


class Accumulates(MSE):
    def __init__(self):
        self.total = 0.0

    def forward(self, z, y):
        self.total += super().forward(z, y)
        return self.total


@pytest.mark.parametrize("name", loss_check.REFERENCES)
def test_dlxs_losses_pass_as_references(name):
    result = loss_check.check(loss_check.REFERENCES[name].make, name)
    assert result.passed and not result.notes, result


@pytest.mark.parametrize("cls, name, stage, says", [
    (SummedBCE, "bce", "1 fixed inputs",
     "your value is 6 times the reference's: summed over the batch where the mean is taken "
     "(N = 6) (and your backward is its derivative)"),
    (NoMeanInBackward, "cross_entropy", "1 fixed inputs",
     "your backward is 6 times the reference's: the 1/N of the mean is missing from dL/dscores "
     "(N = 6) (your value matches)"),
    (NoTargetTerm, "cross_entropy", "1 fixed inputs", "your dL/dscores misses the target's "
     "term: it is p / N where (p - onehot(y)) / N belongs"),
    (HalfMSE, "mse", "1 fixed inputs", "your value is half the reference's (the 1/2 (z - y)^2 "
     "convention, or a 1/2 too many) (and your backward is its derivative)"),
    (Uphill, "bce", "1 fixed inputs", "your backward is the reference's with the sign flipped "
     "(your value matches)"),
    (NaiveSoftmax, "cross_entropy", "1 fixed inputs", "an exp of a large score overflowed"),
    (NaiveBCE, "bce", "1 fixed inputs", "an exp of a large score overflowed in your forward"),
    (OverflowingBackward, "bce", "1 fixed inputs", "your forward is finite but your backward is "
     "not: an exp of a large score overflowed in your backward"),
    (PerExample, "mse", "0 interface", "forward returned an array of shape (6, 2)"),
    (Flat, "bce", "0 interface", "backward returned shape (6,); the scores have shape (6, 1)"),
    (InPlace, "bce", "0 interface", "changed the scores in place"),
    (Accumulates, "mse", "0 interface", "something is kept from the earlier call"),
])
def test_a_loss_mistake_is_named(cls, name, stage, says):
    result = loss_check.check(cls, name)
    assert not result.passed and result.failed == stage, result
    assert says in result.diagnosis, result.diagnosis


def test_a_backward_that_is_not_the_forwards_derivative_is_told_apart():
    class WrongSlope(BCEWithLogits):  # forward right, backward the sigmoid's input, not output
        def backward(self):
            z = self._cache[0]
            return ((z - self._cache[1]) / len(z))[:, None]

    result = loss_check.check(WrongSlope, "bce")
    assert result.failed == "1 fixed inputs"
    assert result.diagnosis == "your value matches, your dL/dscores does not"
    assert result.revisit.startswith("backward is not forward's derivative")
    fd = [r for r in result.rows if r.name == "dL/dscores vs finite diff."][0]
    assert not fd.ok and fd.tol == loss_check.GRAD_RTOL


# --- activation layers --------------------------------------------------------------------------

from dlx.checks import layers as layer_check  # noqa: E402
from dlx.nn.activations import ACTIVATIONS  # noqa: E402


@pytest.mark.parametrize("name", [k for k, v in ACTIVATIONS.items() if v is not None])
def test_dlxs_activations_pass_as_references(name):
    result = layer_check.check(ACTIVATIONS[name], name)
    assert result.passed, result


def mutated(name: str, backward):
    """dlx's activation with its backward replaced: backward(x, y, dout) -> dx."""
    base = ACTIVATIONS[name]

    class Mutant(base):
        def forward(self, x):
            self._x_seen = x.copy()
            self._y_seen = super().forward(x)
            return self._y_seen

        def backward(self, dout):
            return backward(self._x_seen, self._y_seen, dout)
    return Mutant


@pytest.mark.parametrize("entry", layer_check.CATALOGUE, ids=lambda m: m.key)
def test_every_layer_mistake_is_diagnosed_as_itself(entry):
    result = layer_check.check(mutated(entry.concept, entry.backward), entry.concept)
    assert result.failed == "1 fixed inputs" and result.diagnosis == entry.title, result
    assert result.revisit == entry.revisit


def test_layer_relations_and_interface():
    doubled = layer_check.check(mutated("tanh", lambda x, y, d: 2 * d * (1 - y * y)), "tanh")
    assert doubled.diagnosis == "your forward matches; your dx is 2 times the reference's"

    class Clamps(ACTIVATIONS["relu"]):  # forward zeroes its input in place
        def forward(self, x):
            x[x < 0] = 0
            return super().forward(x)

    assert "forward changed its input in place" in layer_check.check(Clamps, "relu").diagnosis

    class Summed(ACTIVATIONS["relu"]):
        def backward(self, dout):
            return super().backward(dout).sum(axis=0)

    assert "backward returned shape (6,)" in layer_check.check(Summed, "relu").diagnosis

    class Shifted(ACTIVATIONS["sigmoid"]):  # a forward that is not the sigmoid, consistently
        def forward(self, x):
            return super().forward(x + 1.0)

    wrong = layer_check.check(Shifted, "sigmoid")
    assert wrong.diagnosis == "your forward is not dlx's sigmoid"
    assert wrong.revisit.startswith("your backward is your forward's derivative")


# --- a Linear layer -----------------------------------------------------------------------------

from dlx.checks import linear as linear_check  # noqa: E402
from dlx.nn import Module, Parameter  # noqa: E402


class MyLinear(Module):
    """x W + b, W (d_in, d_out), as the README's learner writes it; ``slip`` makes one mistake."""
    slip = None

    def __init__(self, d_in, d_out, name):
        self.W = Parameter(np.zeros((d_in, d_out)), f"{name}.W")
        self.b = Parameter(np.zeros(d_out), f"{name}.b", decay=False)

    def forward(self, x):
        self.x = x
        return x @ self.W.data + self.b.data

    def backward(self, dout):
        n = len(dout)
        self.W.grad += {"transposed": lambda: dout.T @ self.x,
                        "mean": lambda: self.x.T @ dout / n}.get(self.slip, lambda: self.x.T @ dout)()
        self.b.grad += dout.sum(axis=0) if self.slip != "db_mean" else dout.mean(axis=0)
        if self.slip == "overwrite":
            self.W.grad = self.x.T @ dout  # a new array bound: what .grad held is lost
        return dout @ self.W.data.T if self.slip != "dx_no_transpose" else dout @ self.W.data[:3]


class TorchLayout(MyLinear):  # W (d_out, d_in), out = x W^T + b: torch's nn.Linear
    def __init__(self, d_in, d_out, name):
        self.W = Parameter(np.zeros((d_out, d_in)), f"{name}.W")
        self.b = Parameter(np.zeros(d_out), f"{name}.b", decay=False)

    def forward(self, x):
        self.x = x
        return x @ self.W.data.T + self.b.data

    def backward(self, dout):
        self.W.grad += dout.T @ self.x
        self.b.grad += dout.sum(axis=0)
        return dout @ self.W.data


def slipped(slip):
    return type("Linear", (MyLinear,), {"slip": slip})


@pytest.mark.parametrize("cls", [MyLinear, TorchLayout])
def test_a_correct_linear_passes_in_either_layout(cls):
    result = linear_check.check(cls)
    assert result.passed, result
    assert [r.name for r in result.rows][:4] == ["out", "dx", "dW", "db"]
    assert result.stages[-1] in (("torch", "agrees"), ("torch", "skipped"))


@pytest.mark.parametrize("slip, stage, says", [
    ("transposed", "0 interface", "your weight gradient is the transpose of dL/dW"),
    ("mean", "1 fixed inputs", "your dW is not x^T dout (it is 0.25 times it: the 1/N of a "
                               "mean does not belong in a layer's gradient)"),
    ("db_mean", "1 fixed inputs", "your db is not dout summed over the batch (it is 0.25 times"),
    ("overwrite", "1 fixed inputs", "your backward sets W's .grad (=) where it must add into it"),
])
def test_a_linear_mistake_is_named(slip, stage, says):
    result = linear_check.check(slipped(slip))
    assert result.failed == stage and says in result.diagnosis, result


def test_dlx_check_in_a_notebook_grades_a_class_as_the_command_does():
    import dlx
    from dlx.errors import UsageError

    wrong = dlx.check(mistakes._Adam, reference="adam", correct=False)
    assert not wrong.passed
    assert str(wrong).splitlines()[1].strip().startswith("Adam without bias correction")
    html = wrong._repr_html_()
    assert html.startswith("<pre") and "Adam without bias correction" in html
    assert "(1 - beta1^t)" in html and "&gt; 1e-09" in html  # escaped, as text
    assert dlx.check(mistakes._Adam, reference="adam").passed
    assert not dlx.check(SummedBCE, reference="bce").passed
    assert dlx.check(BCEWithLogits).passed            # its name says bce
    assert dlx.check(MyLinear).passed                 # a Module named as a Linear
    assert dlx.check(ACTIVATIONS["tanh"]).passed      # any other Module: an activation
    with pytest.raises(UsageError, match="say which dlx optimizer yours implements"):
        dlx.check(Scaled)
    with pytest.raises(UsageError, match="dlx.check takes your optimizer"):
        dlx.check(42)


def test_the_json_of_a_non_finite_result_is_strict_json():
    from dlx.checks import as_json

    result = loss_check.check(NaiveSoftmax, "cross_entropy")
    assert any(not np.isfinite(r.max_abs_diff) or not np.isfinite(r.rel_error)
               for r in result.rows)
    text = json.dumps(as_json(result, "mine", "dlx's"), allow_nan=False)
    assert '"inf"' in text or '"nan"' in text


# --- BatchNorm and dropout ----------------------------------------------------------------------

from dlx.checks import batchnorm as bn_check  # noqa: E402
from dlx.checks import dropout as dropout_check  # noqa: E402
from dlx.nn import Dropout  # noqa: E402


def switched(**options):
    return type("BatchNorm", (bn_check._Switched,),
                {"__init__": lambda self, n: bn_check._Switched.__init__(self, n, **options)})


def test_dlxs_batchnorm_passes_every_stage():
    result = bn_check.check(switched())
    assert result.passed and result.variant is None, result
    assert [s for s, _ in result.stages][:3] == ["0 interface", "1 fixed inputs", "2 gradients"]
    assert result.stages[-1] in (("torch", "agrees"), ("torch", "skipped"))
    assert [r.name for r in result.rows][:8] == [
        "train out", "train dx", "dgamma", "dbeta", "running_mean (2 batches)",
        "running_var (2 batches)", "eval out", "eval dx"]


def test_a_batchnorm_that_sets_its_gradients_is_named():
    class Sets(bn_check._Switched):
        def __init__(self, n):
            super().__init__(n)

        def backward(self, dout):
            dx = super().backward(dout)
            self.gamma.grad = (dout * self._xhat).sum(axis=0)
            return dx

    result = bn_check.check(Sets)
    assert result.failed == "1 fixed inputs" and "sets gamma's .grad (=)" in result.diagnosis


@pytest.mark.parametrize("entry", bn_check.CATALOGUE, ids=lambda m: m.key)
def test_every_batchnorm_mistake_is_diagnosed_as_itself(entry):
    result = bn_check.check(switched(**entry.options))
    if entry.severity == "bug":
        assert not result.passed and result.diagnosis == entry.title, result
    else:
        assert result.passed and result.variant == entry.title, result


class MyDropout(Dropout):
    """A learner's dropout with one slip (``slip``), else correct."""
    slip = None

    def forward(self, x):
        if not self.training and self.slip != "eval":
            self.m = None
            return x
        if self.slip == "cached" and getattr(self, "m", None) is not None:
            return x * self.m
        u = np.random.random(x.shape) if self.slip == "global" else self.rng.random(x.shape)
        keep = 1 - self.keep_prob if self.slip == "swapped" else self.keep_prob
        scale = {"unscaled": 1.0, "times_keep": self.keep_prob}.get(self.slip, 1 / self.keep_prob)
        self.m = (u < keep) * scale
        return x * self.m

    def backward(self, dout):
        if self.m is None:
            return dout
        if self.slip == "unmasked":
            return dout
        if self.slip == "redrawn":
            return dout * (self.rng.random(dout.shape) < self.keep_prob) / self.keep_prob
        return dout * self.m


@pytest.mark.parametrize("slip, says", [
    (None, None),
    ("unscaled", "no 1/keep_prob scaling"),
    ("times_keep", "x * keep_prob"),
    ("swapped", "keep and drop probabilities are swapped"),
    ("unmasked", "passes dout through unmasked"),
    ("redrawn", "backward draws a new mask"),
    ("cached", "the same mask at every forward"),
    ("global", "does not draw from the rng dlx passes"),
    ("eval", "changes its input in eval mode"),
])
def test_a_dropout_mistake_is_named(slip, says):
    result = dropout_check.check(type("Dropout", (MyDropout,), {"slip": slip}))
    if says is None:
        assert result.passed, result
    else:
        assert not result.passed and says in result.diagnosis, result
    assert dropout_check.check(Dropout).passed  # dlx's own


# --- schedules ----------------------------------------------------------------------------------

from dlx.checks import schedules as schedule_check  # noqa: E402
from dlx.optim.schedules import SCHEDULES  # noqa: E402


def schedule_result(fn, name: str, **options):
    """``fn(t, lr, total)`` checked against dlx's ``name`` at ``options``."""
    return schedule_check.check(lambda lr, total: (lambda t: fn(t, lr, total)),
                                lambda lr, total: SCHEDULES[name](lr, total, **options), options)


@pytest.mark.parametrize("fn, name, options, says", [
    (lambda t, lr, T: lr * 0.5 ** (t // 200), "step", {"step_size": 200, "gamma": 0.5}, None),
    (lambda t, lr, T: lr * 0.5 ** ((t + 1) // 200), "step", {"step_size": 200, "gamma": 0.5},
     "one step ahead"),
    (lambda t, lr, T: lr * 0.995 ** (t - 1), "exponential", {"gamma": 0.995}, "one step behind"),
    (lambda t, lr, T: 2 * lr / (1 + 0.01 * t), "time_based", {"decay": 0.01},
     "2 times dlx's at every step"),
    (lambda t, lr, T: lr * 0.5 ** (t / 200), "step", {"step_size": 200, "gamma": 0.5},
     "decays continuously"),
    (lambda t, lr, T: lr * math.cos(math.pi * t / T), "cosine", {"T_max": None, "eta_min": 0.0},
     "lacks the (1 + cos) / 2"),
    (lambda t, lr, T: lr / (1 + 0.01 * t ** 1.01), "time_based", {"decay": 0.01},
     "parts from dlx's at step 2"),
    (lambda t, lr, T: lr * 100 ** (min(t, T - 1) / (T - 1)), "log_range", {"final_lr": 10.0},
     None),
    (lambda t, lr, T: lr * 100 ** (min(t, T) / T), "log_range", {"final_lr": 10.0},
     "reaches final_lr one update late"),
    (lambda t, lr, T: lr + 9.9 * min(t, T - 1) / (T - 1), "log_range", {"final_lr": 10.0},
     "grows linearly (by equal steps)"),
    (lambda t, lr, T: lr * 100 ** (min(t, T - 1) / (T - 1)) * (1 + 1e-7 * (t == 1)), "log_range",
     {"final_lr": 10.0}, "at step 1: yours 0.1004621, dlx's 0.1004620"),  # to the digit that differs
    (lambda t, lr, T: lr * 100 ** (min(t, T - 1) / T), "log_range", {"final_lr": 10.0},
     "reaches final_lr one update late"),  # clamped at T - 1 as the stub says, over T
])
def test_a_schedule_mistake_is_named(fn, name, options, says):
    result = schedule_result(fn, name, **options)
    if says is None:
        assert result.passed, result
    else:
        assert result.failed == "1 fixed inputs" and says in result.diagnosis, result


def test_a_schedule_that_keeps_state_or_returns_nothing_fails_its_interface():
    calls = []

    def counting(t, lr, T):  # counts its own calls instead of reading t
        calls.append(t)
        return lr * 0.995 ** (len(calls) - 1)

    result = schedule_result(counting, "exponential", gamma=0.995)
    assert result.failed == "0 interface" and "keeps state between calls" in result.diagnosis
    result = schedule_result(lambda t, lr, T: None, "constant")
    assert result.failed == "0 interface" and "one finite number" in result.diagnosis


# --- regularizers -------------------------------------------------------------------------------

from dlx.checks import regularizers as reg_check  # noqa: E402
from dlx.optim.regularizers import ElasticNet  # noqa: E402


class MyPenalty:
    """lam * (r |w| + (1 - r)/2 w^2) with one ``slip``."""
    slip = None

    def __init__(self, lam=0.01, l1_ratio=0.5):
        self.lam, self.r = lam, l1_ratio

    def penalty(self, w):
        l2 = (w * w).sum() * (1.0 if self.slip == "no_half" else 0.5)
        total = self.lam * (self.r * np.abs(w).sum() + (1 - self.r) * l2)
        return {"mean": total / w.size, "no_lam": total / self.lam}.get(self.slip, total)

    def grad(self, w):
        l1 = w if self.slip == "l1_as_w" else np.sign(w)
        g = self.lam * (self.r * l1 + (1 - self.r) * w * (2.0 if self.slip == "no_half" else 1.0))
        return {"mean": g / w.size, "no_lam": g / self.lam, "sign": -g}.get(self.slip, g)


@pytest.mark.parametrize("slip, ratio, says", [
    (None, 0.5, None), (None, 1.0, None), (None, 0.0, None),
    ("no_half", 0.0, "your L2 penalty is lam * sum w^2"),
    ("l1_as_w", 1.0, "your L1 gradient is lam * w"),
    ("mean", 0.5, "it averages over the weight's entries"),
    ("no_lam", 0.5, "your penalty lacks lam"),
    ("sign", 0.5, "wrong sign"),
])
def test_a_penalty_mistake_is_named(slip, ratio, says):
    cls = type("P", (MyPenalty,), {"slip": slip})
    result = reg_check.check(lambda: cls(0.01, ratio), ElasticNet(0.01, ratio, "subgradient"),
                             0.01, ratio)
    if says is None:
        assert result.passed, result
    else:
        assert not result.passed and says in result.diagnosis, result


# --- whole models -------------------------------------------------------------------------------

from dlx.checks import models as model_check  # noqa: E402
from dlx.data.spec import DataSpec  # noqa: E402
from dlx.nn.models import MODELS  # noqa: E402


class TwoLayerNet(Module):
    """cs231n's two-layer net as a learner writes it; ``slip`` makes one mistake."""
    slip = None

    def __init__(self, spec, hidden=(8,)):
        D, H, K = spec.shape[0], hidden[0], spec.n_out
        shape1 = (H, D) if self.slip == "torch_layout" else (D, H)
        self.W1 = Parameter(np.zeros(shape1), "fc1.W")
        self.b1 = Parameter(np.zeros(H), "fc1.b", decay=False)
        self.W2 = Parameter(np.zeros((H, K)), "fc2.W")
        self.b2 = Parameter(np.zeros(H if self.slip == "wrong_shape" else K), "fc2.b")

    def forward(self, x):
        W1 = self.W1.data.T if self.slip == "torch_layout" else self.W1.data
        self.x, self.z1 = x, x @ W1 + self.b1.data
        self.h1 = np.maximum(self.z1, 0.1 * self.z1) if self.slip == "leaky" else \
            np.maximum(self.z1, 0)
        return self.h1 @ self.W2.data + self.b2.data * (2 if self.slip == "bias_twice" else 1)

    def backward(self, dout):
        W1 = self.W1.data.T if self.slip == "torch_layout" else self.W1.data
        self.W2.grad += self.h1.T @ dout
        self.b2.grad += dout.sum(axis=0)
        self.dh1 = dout @ self.W2.data.T
        self.dz1 = self.dh1 if self.slip == "no_mask" else self.dh1 * (self.z1 > 0)
        dW1 = self.x.T @ self.dz1
        if self.slip != "w1_not_stored":  # a local dW1 never added into .grad
            self.W1.grad += dW1.T if self.slip == "torch_layout" else dW1
        self.b1.grad += self.dz1.sum(axis=0)
        if self.slip == "w2_from_z1":
            self.W2.grad += (self.z1 - self.h1).T @ dout  # net: z1^T dout
        if self.slip == "w1_mean":
            self.W1.grad -= dW1 * (1 - 1 / len(dout))
        if self.slip == "dx_unmasked":
            return self.dh1 @ W1.T
        return None if self.slip == "no_dx" else self.dz1 @ W1.T


def test_parameters_in_another_order_are_named_as_such():
    class Reordered(TwoLayerNet):
        def __init__(self, spec, hidden=(8,)):
            super().__init__(spec, hidden)
            self.__dict__ = {k: self.__dict__[k] for k in ("W2", "b2", "W1", "b1")}

    spec = DataSpec.features(3, 4)
    result = model_check.check(Reordered(spec), MODELS["mlp"](spec, hidden=[8]),
                               np.ones((6, 3)), "mlp")
    assert result.failed == "0 interface" and "in another order" in result.diagnosis


def model_result(slip):
    spec = DataSpec.features(3, 4)
    cls = type("TwoLayerNet", (TwoLayerNet,), {"slip": slip})
    mine, ref = cls(spec, hidden=(8,)), MODELS["mlp"](spec, hidden=[8], dtype=np.float64)
    for p in mine.parameters():
        p.data = p.data.astype(np.float64)
    for p in ref.parameters():  # the reference's weights as dlx's init would draw them
        p.data[...] = np.random.default_rng(1).normal(0, 0.5, p.data.shape)
    x = np.linspace(-1.0, 1.5, 18).reshape(6, 3)
    return model_check.check(mine, ref, x, "mlp")


@pytest.mark.parametrize("slip, stage, says", [
    (None, None, None),
    ("torch_layout", None, None),
    ("leaky", "1 fixed inputs", "they part at layer 2 (ReLU)'s forward"),
    ("no_mask", "1 fixed inputs", "they part at layer 2 (ReLU)'s backward (the gradient it "
                                  "passes down)"),
    ("wrong_shape", "0 interface", "are not those of the reference"),
    ("w2_from_z1", "1 fixed inputs", "your fc2.W grad is self.z1^T times the gradient reaching "
                                     "layer 3's output: the weight's gradient takes the layer's "
                                     "own input, layer 2's output"),
    ("w1_mean", "1 fixed inputs", "your fc1.W grad is 0.166667 times dlx's: the 1/N of the mean "
                                  "is the loss's"),
    ("dx_unmasked", "1 fixed inputs", "every parameter's gradient matches; only dx differs"),
    ("no_dx", "0 interface", "backward returned None"),
    ("w1_not_stored", "1 fixed inputs", "your fc1.W grad is all zeros: nothing reached its .grad"),
    ("bias_twice", "1 fixed inputs", "your scores differ from dlx's by the same offset in every "
                                     "example: a bias added twice"),
])
def test_a_models_mistake_is_localised_to_its_layer(slip, stage, says):
    result = model_result(slip)
    if stage is None:
        assert result.passed, result
        assert [s for s, _ in result.stages][:3] == ["0 interface", "1 fixed inputs",
                                                     "2 gradients"]
    else:
        assert result.failed == stage and says in result.diagnosis, result


from dlx.checks import attention as attention_check  # noqa: E402


def switched_attention(**options):
    return type("Attention", (attention_check._Switched,), {
        "__init__": lambda self, d, h: attention_check._Switched.__init__(self, d, h, **options)})


def test_dlxs_attention_passes_and_every_attention_mistake_is_named():
    assert attention_check.check(switched_attention()).passed
    for m in attention_check.CATALOGUE:
        result = attention_check.check(switched_attention(**m.options))
        assert result.failed == "1 fixed inputs" and result.diagnosis == m.title, (m.key, result)
        if m.key == "no_scale":  # localised: the weights are the first intermediate that differs
            first = next(r for r in result.rows if "~" in r.name and not r.ok)
            assert first.name.startswith("attention weights")


from dlx.checks import recurrent as lstm_check  # noqa: E402
from dlx.nn.recurrent import LSTMCell  # noqa: E402


class MyLSTM(LSTMCell):
    """dlx's cell read with switches in forward, and a backward slip (``slip``)."""
    switches: dict = {}
    slip = None

    def __init__(self, i, h):
        super().__init__(i, h, dtype=np.float64)

    def forward(self, x, state):
        if not self.switches:
            out = super().forward(x, state)
            i, f, g, o, c, tc = self._one[2]
            self.i, self.f, self.g, self.o, self.tc = i, f, g, o, tc
            return out
        super().forward(x, state)  # its cache, for a backward (the check names the forward)
        params = [p.data for p in self.parameters()]
        return lstm_check.forward(x, state[0], state[1], params, **self.switches)

    def backward(self, dstate):
        if self.slip == "no_h_path":  # dc' alone, the path through h' = o tanh(c') forgotten
            i, f, g, o, c, tc = self._one[2]
            dh, dc = dstate
            self.dc_total = dc
            return super().backward((np.zeros_like(dh), dc))
        return super().backward(dstate)


@pytest.mark.parametrize("switches, says", [
    ({}, None),
    ({"order": "ifog"}, "your gate blocks are read in the order i, f, o, g"),
    ({"forget": False}, "no forget gate"),
    ({"tanh_c": False}, "without the tanh"),
])
def test_an_lstm_mistake_is_named(switches, says):
    result = lstm_check.check(type("LSTMCell", (MyLSTM,), {"switches": switches}))
    if says is None:
        assert result.passed, result
    else:
        assert result.failed == "1 fixed inputs" and says in result.diagnosis, result


def test_an_lstm_backward_slip_is_localised():
    result = lstm_check.check(type("LSTMCell", (MyLSTM,), {"slip": "no_h_path"}))
    assert result.failed == "1 fixed inputs", result
    assert "dL/dc'" in result.diagnosis and "self.dc_total" in result.diagnosis, result


from dlx.checks import conv as conv_check  # noqa: E402
from dlx.nn.conv import Conv2d, MaxPool2d  # noqa: E402


class MyConv(Conv2d):
    slip = None

    def __init__(self, c, f, k, s, p):
        super().__init__(c, f, k, 1 if self.slip == "no_stride" else s,
                         0 if self.slip == "no_pad" else p, dtype=np.float64)

    def forward(self, x):
        if self.slip != "flipped":
            return super().forward(x)
        kept, self.W.data = self.W.data, self.W.data[:, :, ::-1, ::-1].copy()
        out = super().forward(x)
        self.W.data = kept
        return out


class MyPool(MaxPool2d):
    slip = None

    def backward(self, dout):
        if self.slip is None:
            return super().backward(dout)
        return conv_check._spread(dout, self._shape) / (9 if self.slip == "average" else 1)


@pytest.mark.parametrize("cls, slip, stage, says", [
    (MyConv, None, None, None),
    (MyConv, "flipped", "1 fixed inputs", "your layer flips the kernel"),
    (MyConv, "no_pad", "0 interface", "the padding is not applied"),
    (MyConv, "no_stride", "0 interface", "the stride is not applied"),
    (MyPool, None, None, None),
    (MyPool, "every", "1 fixed inputs", "to every position of the window"),
    (MyPool, "average", "1 fixed inputs", "an average pool's backward"),
])
def test_a_convolution_or_pooling_mistake_is_named(cls, slip, stage, says):
    check = conv_check.check_conv if cls is MyConv else conv_check.check_pool
    result = check(type(cls.__name__, (cls,), {"slip": slip}))
    if stage is None:
        assert result.passed, result
    else:
        assert result.failed == stage and says in result.diagnosis, result


# --- torch as a second reference ----------------------------------------------------------------

from dlx.checks import oracle  # noqa: E402
from dlx.checks.result import Row  # noqa: E402


def test_a_pass_is_confirmed_by_torch_where_it_is_installed(torch):
    import dlx

    for report in (dlx.check(mistakes._Adam, reference="adam", lr=0.01),
                   dlx.check(mistakes._Momentum, reference="momentum", lr=0.05, momentum=0.9),
                   dlx.check(BCEWithLogits), dlx.check(SoftmaxCrossEntropy), dlx.check(MSE),
                   dlx.check(ACTIVATIONS["tanh"]), dlx.check(ACTIVATIONS["relu"])):
        assert report.passed and ("torch", "agrees") in report.result.stages, report
        assert any(r.name.endswith("vs torch") or "vs torch." in r.name
                   for r in report.result.rows), report
    # Ng's averaged velocity passes as a variant of dlx's momentum; torch has no ema option
    ema = dlx.check(mistakes._Momentum, reference="momentum", lr=0.05, momentum=0.9, ema=True)
    assert ("torch", "agrees") not in ema.result.stages


def test_without_torch_a_pass_says_the_torch_comparison_was_skipped(monkeypatch):
    import dlx

    monkeypatch.setattr(oracle, "_torch", lambda: None)
    report = dlx.check(mistakes._Adam, reference="adam", lr=0.01)
    assert report.passed and ("torch", "skipped") in report.result.stages
    assert oracle.SKIPPED in str(report)
    failed = dlx.check(mistakes._Adam, reference="adam", lr=0.01, correct=False)
    assert all(stage != "torch" for stage, _ in failed.result.stages)  # a failure is named


def test_a_torch_disagreement_on_a_pass_is_reported_as_dlxs():
    result = optim.Result(passed=True)
    oracle.attach(result, Row(5, "params vs torch.optim.Adam", 1e-3, 1e-3, False))
    assert ("torch", "differs") in result.stages
    assert any("please report it" in note for note in result.notes)


from dlx.nn.recurrent import GRUCell, RNNCell  # noqa: E402


def switched_cell(base, forward, **switches):
    """dlx's cell whose forward is the catalogue's with ``switches`` (its backward dlx's)."""
    def step(self, x, h):
        base.forward(self, x, h)  # its cache, for a backward (the check names the forward)
        return forward(x, h, [p.data for p in self.parameters()], **switches)[0]

    return type(base.__name__, (base,), {
        "__init__": lambda self, i, h: base.__init__(self, i, h, dtype=np.float64),
        **({"forward": step} if switches else {})})


@pytest.mark.parametrize("base, forward, switches, says", [
    (GRUCell, lstm_check.gru_forward, {}, None),
    (GRUCell, lstm_check.gru_forward, {"order": "zrn"}, "in the order z, r, n"),
    (GRUCell, lstm_check.gru_forward, {"reset_after": False}, "Cho et al.'s original GRU"),
    (GRUCell, lstm_check.gru_forward, {"z_swapped": True}, "the other way"),
    (RNNCell, lstm_check.rnn_forward, {}, None),
    (RNNCell, lstm_check.rnn_forward, {"act": "relu"}, "a ReLU where"),
])
def test_a_gru_or_rnn_mistake_is_named(base, forward, switches, says):
    which = "gru" if base is GRUCell else "rnn"
    result = lstm_check.check(switched_cell(base, forward, **switches), which)
    if says is None:
        assert result.passed, result
    else:
        assert result.failed == "1 fixed inputs" and says in result.diagnosis, result


from dlx.checks import softmax as softmax_check  # noqa: E402
from dlx.nn.activations import Softmax  # noqa: E402


class MySoftmax(Softmax):
    slip = None

    def forward(self, x):
        if self.slip == "naive":
            e = np.exp(x)
        elif self.slip == "axis0":
            e = np.exp(x - x.max(axis=0, keepdims=True))
            self._y = e / e.sum(axis=0, keepdims=True)
            return self._y
        else:
            return super().forward(x)
        self._y = e / e.sum(axis=-1, keepdims=True)
        return self._y

    def backward(self, dout):
        if self.slip == "diagonal":
            return dout * self._y * (1 - self._y)
        return super().backward(dout)


@pytest.mark.parametrize("slip, says", [
    (None, None), ("naive", "exp of a large input overflowed"),
    ("diagonal", "the Jacobian's diagonal only"), ("axis0", "normalizes over axis 0"),
])
def test_a_softmax_mistake_is_named(slip, says):
    result = softmax_check.check(type("Softmax", (MySoftmax,), {"slip": slip}))
    if says is None:
        assert result.passed, result
    else:
        assert not result.passed and says in result.diagnosis, result


def test_a_warm_up_whose_cosine_runs_over_every_step_is_named():
    """dlx's warmup_cosine anneals over total_steps - warmup after the warm-up."""
    from dlx.assemble import build_schedule

    node = {"name": "cosine", "T_max": None, "eta_min": 0.0, "warmup_steps": 50,
            "warmup_start_factor": 0.01}

    def mine(t, lr, total):
        if t < 50:
            return lr * (0.01 + 0.99 * t / 50)
        return lr * (1 + math.cos(math.pi * (t - 50) / total)) / 2

    result = schedule_check.check(lambda lr, total: (lambda t: mine(t, lr, total)),
                                  lambda lr, total: build_schedule(node, lr, total), node)
    assert result.failed == "1 fixed inputs" and "total_steps - warmup" in result.diagnosis


from dlx.checks import bptt as bptt_check  # noqa: E402


class MyRNN(Module):
    """A learner's RNN over a sequence, with one BPTT slip switched on (``slip``)."""

    slip = None

    def __init__(self, input_size, hidden_size):
        H, I = hidden_size, input_size  # noqa: E741
        self.weight_ih = Parameter(np.zeros((H, I)), "rnn.weight_ih")
        self.weight_hh = Parameter(np.zeros((H, H)), "rnn.weight_hh")
        self.bias_ih = Parameter(np.zeros(H), "rnn.bias_ih")
        self.bias_hh = Parameter(np.zeros(H), "rnn.bias_hh")

    def forward(self, x):
        self.x, self.hs = x, [np.zeros((len(x), self.weight_hh.data.shape[0]))]
        for t in range(x.shape[1]):
            prev = self.hs[0] if self.slip == "stale" else self.hs[-1]
            self.hs.append(np.tanh(x[:, t] @ self.weight_ih.data.T + self.bias_ih.data
                                   + prev @ self.weight_hh.data.T + self.bias_hh.data))
        return np.stack(self.hs[1:], axis=1)

    def backward(self, dout):
        dx, dh_next = np.zeros_like(self.x), np.zeros_like(self.hs[0])
        W_hh = self.weight_hh.data.T if self.slip == "carry_transposed" else self.weight_hh.data
        for t in reversed(range(dout.shape[1])):
            dh = dout[:, t] + (0 if self.slip == "no_carry" else dh_next)
            da = dh * (1 - self.hs[t + 1] ** 2)
            h_in = self.hs[t + 1] if self.slip == "offset" else self.hs[t]
            shares = (da.T @ self.x[:, t], da.T @ h_in, da.sum(axis=0), da.sum(axis=0))
            for p, share in zip(self.parameters(), shares):
                if self.slip == "overwrite":
                    p.grad[...] = share
                else:
                    p.grad += share
            dx[:, t] = da @ self.weight_ih.data
            dh_next = da @ W_hh
        return dx


@pytest.mark.parametrize("slip, says", [
    (None, None),
    ("no_carry", "does not carry the gradient from step t+1"),
    ("overwrite", "overwritten at every step"),
    ("offset", "takes h_t where the step's input, h_{t-1}, belongs"),
    ("carry_transposed", "parts at t = 5 of 6: what a step sends back"),
    ("stale", "matches dlx's for t = 1..1 and parts at t = 2"),
])
def test_a_bptt_mistake_is_named_and_placed_in_time(slip, says):
    from dlx import checks

    result, _, reference = checks.check_layer(type("RNN", (MyRNN,), {"slip": slip}), "rnn", "RNN")
    assert "over a sequence" in reference
    step = type("MyRNN", (MyRNN,), {"forward": lambda self, x, h: h})  # a step: (x, h)
    assert not bptt_check.is_sequence(step) and not bptt_check.is_sequence(RNNCell)
    if says is None:
        assert result.passed, result
    else:
        assert result.failed == "1 fixed inputs" and says in result.diagnosis, result


@pytest.mark.parametrize("which", ["lstm", "gru"])
def test_an_lstm_or_gru_unrolled_over_a_sequence_is_checked_against_dlxs(which):
    """A sequence layer made of dlx's own cell, stepped and stepped back by hand: BPTT with the
    cell's state carried (an LSTM's (dh, dc)) matches dlx's sequence layer; dropping the carry
    of c alone is named."""
    from dlx import checks
    from dlx.nn.recurrent import LSTMCell

    cell_cls = LSTMCell if which == "lstm" else GRUCell

    class Seq(Module):
        drop_c = False

        def __init__(self, input_size, hidden_size):
            self.cell = cell_cls(input_size, hidden_size, dtype=np.float64)
            self.H = hidden_size

        def forward(self, x):
            state = (np.zeros((len(x), self.H)),) * (2 if which == "lstm" else 1)
            self.steps, out = [], []
            for t in range(x.shape[1]):
                step = cell_cls(x.shape[2], self.H, dtype=np.float64)
                for p, q in zip(step.parameters(), self.cell.parameters()):
                    p.data = q.data  # the shared weights; each step keeps its own cache
                state = step.forward(x[:, t], state if which == "lstm" else state[0])
                state = state if which == "lstm" else (state,)
                self.steps.append(step)
                out.append(state[0])
            return np.stack(out, axis=1)

        def backward(self, dout):
            carry = [np.zeros_like(dout[:, 0])] * (2 if which == "lstm" else 1)
            dx = []
            for t in reversed(range(dout.shape[1])):
                step = self.steps[t]
                ds = (dout[:, t] + carry[0], *carry[1:])
                dx.append(step.backward(ds if which == "lstm" else ds[0]))
                for p, q in zip(self.cell.parameters(), step.parameters()):
                    p.grad += q.grad
                carry = list(step.dstate0) if which == "lstm" else [step.dstate0]
                if self.drop_c:
                    carry[1] = np.zeros_like(carry[1])
            return np.stack(dx[::-1], axis=1)

    name = "LSTM" if which == "lstm" else "GRU"
    result = checks.check_layer(type(name, (Seq,), {}), which, name)[0]
    assert result.passed, result
    if which == "lstm":
        result = checks.check_layer(type(name, (Seq,), {"drop_c": True}), which, name)[0]
        assert result.failed == "1 fixed inputs" and "parts at t = 5 of 6" in result.diagnosis


from dlx.checks import blocks as block_check  # noqa: E402
from dlx.nn import Linear, ReLU  # noqa: E402
from dlx.nn.norm import LayerNorm  # noqa: E402
from dlx.nn.transformer import FeedForward  # noqa: E402


class MyResidual(Module):
    slip = None

    def __init__(self, d, hidden):
        self.fc1 = Linear(d, hidden, dtype=np.float64)
        self.relu = ReLU()
        self.fc2 = Linear(hidden, d, dtype=np.float64)

    def forward(self, x):
        f = self.fc2.forward(self.relu.forward(self.fc1.forward(x)))
        return f if self.slip == "no_skip" else x + f

    def backward(self, dout):
        d = self.fc1.backward(self.relu.backward(self.fc2.backward(dout)))
        return d if self.slip == "no_skip_back" else d + dout


@pytest.mark.parametrize("slip, says", [
    (None, None), ("no_skip", "output is F(x) alone: the skip, + x, is missing"),
    ("no_skip_back", "your backward leaves out the skip's gradient"),
])
def test_a_residual_block_mistake_is_named(slip, says):
    result = block_check.check_residual(type("ResidualBlock", (MyResidual,), {"slip": slip}))
    if says is None:
        assert result.passed, result
    else:
        assert result.failed == "1 fixed inputs" and says in result.diagnosis, result


class MyBlock(Module):
    slip = None

    def __init__(self, d_model, n_heads, d_ff):
        f64 = {"dtype": np.float64}
        self.ln1 = LayerNorm(d_model, **f64)
        self.attn = attention_check.MultiHeadAttention(d_model, n_heads, **f64)
        self.ln2 = LayerNorm(d_model, **f64)
        self.mlp = FeedForward(d_model, d_ff, **f64)

    def forward(self, x):
        if self.slip == "post_ln":
            h = self.ln1.forward(x + self.attn.forward(x))
            return self.ln2.forward(h + self.mlp.forward(h))
        a = self.ln1.forward(x)
        h = (a if self.slip == "skip_from_ln" else x) + self.attn.forward(a)
        return h + self.mlp.forward(self.ln2.forward(h))

    def backward(self, dout):
        dh = self.ln2.backward(self.mlp.backward(dout)) + (0 if self.slip == "drop_second" else dout)
        dx = self.ln1.backward(self.attn.backward(dh))
        return dx if self.slip == "drop_first" else dx + dh


@pytest.mark.parametrize("slip, says", [
    (None, None), ("post_ln", "your block is post-LN"),
    ("skip_from_ln", "your first residual adds ln1(x) where x belongs"),
    ("drop_second", "leaves out the second residual's gradient"),
    ("drop_first", "leaves out the first residual's gradient"),
])
def test_a_transformer_block_mistake_is_named(slip, says):
    from dlx import checks

    result, _, reference = checks.check_layer(type("Block", (MyBlock,), {"slip": slip}),
                                              "block", "Block")
    assert "pre-LN" in reference
    if says is None:
        assert result.passed, result
    else:
        assert result.failed == "1 fixed inputs" and says in result.diagnosis, result


from dlx.checks import dropconnect as dropconnect_check  # noqa: E402
from dlx.nn.dropout import Dropout2d  # noqa: E402


class MyDropout2d(Dropout2d):
    """A learner's spatial dropout with one slip (``slip``), else correct."""
    slip = None

    def forward(self, x):
        if not self.training:
            self.m = None
            return x
        N, C = x.shape[:2]
        shape = {"entries": x.shape, "batch": (1, C, 1, 1),
                 "examples": (N, 1, 1, 1)}.get(self.slip, (N, C, 1, 1))
        self.m = (self.rng.random(shape) < self.keep_prob) / self.keep_prob
        return x * self.m

    def backward(self, dout):
        return dout if self.m is None else dout * self.m


@pytest.mark.parametrize("slip, says", [
    (None, None), ("entries", "drops single entries of a map"),
    ("batch", "shared by every example of the batch"), ("examples", "drops whole examples"),
])
def test_a_spatial_dropout_mistake_is_named(slip, says):
    from dlx import checks

    cls = type("Dropout2d", (MyDropout2d,), {"slip": slip})
    assert checks.layer_kind(cls) == "dropout2d"
    result = checks.check_layer(cls, "dropout2d", "Dropout2d")[0]
    if says is None:
        assert result.passed, result
    else:
        assert result.failed == "1 fixed inputs" and says in result.diagnosis, result


class MyDropConnect(Module):
    """A learner's DropConnect layer with one slip (``slip``), else correct."""
    slip = None

    def __init__(self, in_features, out_features, keep_prob, rng):
        self.W = Parameter(np.zeros((in_features, out_features)), "fc.W")
        self.b = Parameter(np.zeros(out_features), "fc.b")
        self.keep_prob, self.rng, self.M = keep_prob, rng, None

    def forward(self, x):
        self.x = x
        if not self.training and self.slip != "eval":
            self.W_eff = self.W.data
            return x @ self.W_eff + self.b.data
        self.W_eff = self.W.data  # what the two slips below leave to backward
        if self.slip == "outputs":
            self.M = (self.rng.random((len(x), self.W.data.shape[1])) < self.keep_prob)
            return (x @ self.W.data + self.b.data) * self.M / self.keep_prob
        if self.slip == "per_example":
            self.M = self.rng.random((len(x), *self.W.data.shape)) < self.keep_prob
            return np.einsum("ni,nio->no", x, self.W.data * self.M / self.keep_prob) + self.b.data
        if self.slip != "cached" or self.M is None:
            draw = np.random.random if self.slip == "global" else self.rng.random
            self.M = draw(self.W.data.shape) < self.keep_prob
        scale = 1.0 if self.slip == "unscaled" else 1 / self.keep_prob
        self.W_eff = self.W.data * self.M * scale
        return x @ self.W_eff + self.b.data

    def backward(self, dout):
        g = self.x.T @ dout
        if self.slip == "dW_unmasked":
            self.W.grad += g
        elif self.slip == "dW_unscaled":
            self.W.grad += g * self.M
        else:  # W_eff / W: the mask and its scale
            self.W.grad += g * self.W_eff / np.where(self.W.data == 0, 1, self.W.data)
        self.b.grad += dout.sum(axis=0)
        return dout @ (self.W.data if self.slip == "dx_undropped" else self.W_eff).T


@pytest.mark.parametrize("slip, says", [
    (None, None), ("outputs", "drops outputs (dropout after a Linear), not weights"),
    ("unscaled", "no 1/keep_prob scaling"), ("per_example", "did not share one mask"),
    ("dW_unmasked", "the mask is missing from it"), ("dW_unscaled", "lacks the 1/keep_prob"),
    ("dx_undropped", "your dx goes through W"), ("cached", "the same mask at every forward"),
    ("eval", "drops weights in eval mode"), ("global", "does not draw from the rng dlx passes"),
])
def test_a_dropconnect_mistake_is_named(slip, says):
    from dlx import checks

    cls = type("DropConnectLinear", (MyDropConnect,), {"slip": slip})
    assert checks.layer_kind(cls) == "dropconnect"
    result = dropconnect_check.check(cls)
    if says is None:
        assert result.passed, result
    else:
        assert result.failed == "1 fixed inputs" and says in result.diagnosis, result


class MyEntropy:
    """A learner's entropy of softmax(z) with one slip (``slip``), else correct."""
    slip = None

    def forward(self, scores, y):
        z = scores if self.slip == "no_max" else scores - scores.max(axis=1, keepdims=True)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self.p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
            self.logp = np.log(self.p)
        log = self.logp / np.log(2) if self.slip == "bits" else self.logp
        self.h = -(self.p * log).sum(axis=1)
        return float(self.h.sum() if self.slip == "summed" else self.h.mean())

    def backward(self):
        if self.slip == "dp":
            return -(self.logp + 1) / len(self.p)
        return -self.p * (self.logp + self.h[:, None]) / len(self.p)


@pytest.mark.parametrize("slip, says", [
    (None, None), ("summed", "summed over the batch"), ("bits", "in bits: a log base 2"),
    ("dp", "the softmax's Jacobian, from p back to the scores, is missing"),
    ("no_max", "an exp of a large score overflowed"),
])
def test_an_entropy_mistake_is_named(slip, says):
    result = loss_check.check(type("Entropy", (MyEntropy,), {"slip": slip}), "entropy")
    if says is None:
        assert result.passed, result
    else:
        assert not result.passed and says in result.diagnosis, result


from dlx.checks import inits as init_check  # noqa: E402


def _fan_in(shape, torch_layout=False, kernel=True):
    if len(shape) == 2:
        return shape[1] if torch_layout else shape[0]
    return shape[1] * (math.prod(shape[2:]) if kernel else 1)


@pytest.mark.parametrize("reference, fn, says", [
    ("he_normal", lambda s, rng: rng.normal(0, math.sqrt(2 / _fan_in(s)), s), None),
    ("he_normal", lambda s, rng: rng.standard_normal(s) * math.sqrt(2 / _fan_in(s)), None),
    ("he_uniform", lambda s, rng: rng.uniform(-1, 1, s) * math.sqrt(6 / _fan_in(s)), None),
    ("xavier_uniform", lambda s, rng: rng.uniform(-1, 1, s) * math.sqrt(
        6 / sum(init_check.fans(s))), None),
    ("he_normal", lambda s, rng: rng.normal(0, math.sqrt(1 / _fan_in(s)), s),
     "1 / fan_in where dlx's is 2 / fan_in: He's 2 is for ReLU"),
    ("he_normal", lambda s, rng: rng.normal(0, math.sqrt(2 / _fan_in(s, torch_layout=True)), s),
     "torch's (out, in) layout"),
    ("he_normal", lambda s, rng: rng.normal(0, math.sqrt(2 / init_check.fans(s)[1]), s),
     "divides by fan_out where dlx's uses fan_in"),
    ("he_normal", lambda s, rng: rng.normal(0, math.sqrt(2 / _fan_in(s, kernel=False)), s),
     "leave out the kernel's size"),
    ("he_normal", lambda s, rng: rng.normal(0, 2 / _fan_in(s), s), "without the square root"),
    ("he_normal", lambda s, rng: rng.normal(0, math.sqrt(6 / _fan_in(s)), s),
     "the square of a uniform's bound"),
    ("he_uniform", lambda s, rng: rng.uniform(-1, 1, s) * math.sqrt(2 / _fan_in(s)),
     "your bound is the standard deviation's formula"),
    ("xavier_uniform", lambda s, rng: rng.normal(0, math.sqrt(2 / sum(init_check.fans(s))), s),
     "right standard deviation but are not uniform"),
    ("xavier_normal", lambda s, rng: rng.normal(0, math.sqrt(1 / _fan_in(s)), s),
     "divides by fan_in where dlx's uses (fan_in + fan_out) / 2"),
    ("he_normal", lambda s, rng: np.random.normal(0, math.sqrt(2 / _fan_in(s)), s),
     "does not draw from the rng it is given"),
    ("he_normal", lambda s, rng: 0.3 + rng.normal(0, math.sqrt(2 / _fan_in(s)), s),
     "not centred on 0"),
])
def test_an_init_mistake_is_named(reference, fn, says):
    result = init_check.check(fn, reference, {})
    if says is None:
        assert result.passed, result
    else:
        assert not result.passed and says in result.diagnosis, result


def test_dlxs_own_initializers_pass_their_checks():
    from dlx.nn.init import INITS

    for name in init_check.SPECS:
        assert init_check.check(INITS[name], name, {}).passed, name
    result = init_check.check(lambda s, rng, gain: INITS["xavier_normal"](s, rng, gain=gain),
                              "xavier_normal", {"gain": 2.0})
    assert result.passed, result


def test_an_init_pass_says_it_checked_a_distribution():
    from dlx import checks
    from dlx.errors import UsageError
    from dlx.nn.init import INITS

    result, label, ref = checks.check_init(INITS["he_normal"], {}, None, "he_normal (x)", "")
    text = checks.render(result, label, ref)
    assert text.startswith("PASS  he_normal (x) draws from the distribution dlx's he_normal "
                           "(N(0, 2 / fan_in)) draws from")
    assert "not value by value" in text
    assert checks.as_json(result, label, ref)["claim"].startswith("draws from the distribution")
    with pytest.raises(UsageError, match="say which dlx initializer"):
        checks.check_init(lambda shape, rng: None, {}, None, "mine", "add `reference:`")


def test_torch_twins_agree_with_dlxs_modules_and_catch_a_difference(torch):
    """The torch stage of layers and models: autograd through each reference's twin agrees
    with dlx's own module (output, dx, every gradient), and a module that differs is caught."""
    from dlx.checks import oracle, twin
    from dlx.nn import GRU, LSTM, RNN
    from dlx.nn.residual import basic_block
    from dlx.nn.transformer import Block

    f64 = {"dtype": np.float64}
    rng = np.random.default_rng(0)
    cases = [
        (MODELS["mlp"](DataSpec.image(1, 3, 3, 4), hidden=[5, 4], activation="tanh", norm="layernorm",
                       **f64), (3, 1, 3, 3)),
        (MODELS["mlp"](DataSpec.features(3, 2), hidden=[4, 4], residual=True, norm="batchnorm",
                       **f64), (5, 3)),
        (Block(8, 2, 16, **f64), (2, 5, 8)), (Block(8, 2, 16, pre_ln=False, **f64), (2, 5, 8)),
        (RNN(3, 4, 2, **f64), (2, 5, 3)), (RNN(3, 4, nonlinearity="relu", **f64), (2, 5, 3)),
        (LSTM(3, 4, **f64), (2, 5, 3)), (GRU(3, 4, 2, **f64), (2, 5, 3)),
        (basic_block(2, 3, 2, **f64), (2, 2, 6, 6)),
        (MODELS["cnn"](DataSpec.image(1, 12, 12, 3), **f64), (2, 1, 12, 12)),
    ]
    for module, shape in cases:
        model_check._open_input(module)  # a first Linear returns dx too, as the check asks
        for p in module.parameters():
            p.data[...] = rng.normal(0, 0.3, p.data.shape)
        x = rng.standard_normal(shape)
        dout = rng.standard_normal(np.shape(module.forward(x.copy())))
        pairs = [(p, p, False) for p in module.parameters()]
        row = oracle.module(module, module, pairs, x, dout)
        assert row.ok, (type(module).__name__, row)
    pre, post = Block(8, 2, 16, **f64), Block(8, 2, 16, pre_ln=False, **f64)
    for p, q in zip(pre.parameters(), post.parameters()):
        p.data[...] = q.data[...] = rng.normal(0, 0.3, p.data.shape)
    x = rng.standard_normal((2, 5, 8))
    row = oracle.module(post, pre, list(zip(post.parameters(), pre.parameters(), [False] * 12)),
                        x, rng.standard_normal((2, 5, 8)))
    assert not row.ok
    with pytest.raises(twin.NoTwin, match="Dropout"):
        twin.twin(Dropout(0.5, rng), torch, {})


def test_without_torch_every_torch_stage_says_it_was_skipped(monkeypatch):
    """CI's first step has no torch: a layer, a cell, a model, a schedule and a penalty pass
    with the torch stage 'skipped' and the reason, never 'agrees'."""
    from dlx.checks import oracle

    monkeypatch.setattr(oracle, "_torch", lambda: None)
    results = [checks_layer(type("Block", (MyBlock,), {}), "block"),
               checks_layer(type("RNN", (MyRNN,), {}), "rnn"),
               lstm_check.check(switched_cell(GRUCell, lstm_check.gru_forward), "gru"),
               model_result(None),
               schedule_result(lambda t, lr, T: lr * 0.995 ** t, "exponential", gamma=0.995)]
    for result in results:
        assert result.passed, result
    assert oracle.penalty(lambda: None, 0.01, 0.0) == oracle.SKIPPED
    assert oracle.schedule(None, "step", {}) == oracle.SKIPPED
    for result in results[:4]:
        assert result.stages[-1] == ("torch", "skipped") and oracle.SKIPPED in result.notes


def checks_layer(cls, kind):
    from dlx import checks

    return checks.check_layer(cls, kind, cls.__name__)[0]


@pytest.mark.parametrize("which, index", [(k, i) for k, kind in lstm_check.KINDS.items()
                                          for i in range(len(kind.catalogue))])
def test_every_recurrent_catalogue_entry_is_diagnosed_as_itself(which, index):
    """Mutation: each entry of the LSTM, GRU and RNN cells' catalogues, thrown on dlx's cell,
    is named by its own title (every gate order, not one)."""
    kind = lstm_check.KINDS[which]
    title, switches = kind.catalogue[index]
    if which == "lstm":
        cls = type("LSTMCell", (MyLSTM,), {"switches": switches})
    else:
        cls = switched_cell(kind.ref, kind.forward, **switches)
    result = lstm_check.check(cls, which)
    assert result.failed == "1 fixed inputs" and result.diagnosis == title, result


def _init_mistakes():
    return [(name, i) for name, spec in init_check.SPECS.items()
            for i in range(len(init_check._mistakes(spec, 1.0)))]


@pytest.mark.parametrize("reference, index", _init_mistakes())
def test_every_init_mistake_is_diagnosed_as_itself(reference, index):
    """Mutation: each formula of an init's catalogue, drawn in the reference's family, is named
    by its title, or by an earlier entry's when the two formulas coincide on every checked
    shape (then they are the same mistake there)."""
    spec = init_check.SPECS[reference]
    mistakes = init_check._mistakes(spec, 1.0)
    title, _, formula = mistakes[index]

    def mine(shape, rng):
        sd = formula(shape)
        return rng.uniform(-1, 1, shape) * sd * math.sqrt(3) if spec.uniform else \
            rng.normal(0.0, sd, shape)

    same = [t for t, _, f in mistakes[:index + 1]
            if all(abs(f(s) / formula(s) - 1) < 1e-9 for s in init_check.SHAPES)]
    result = init_check.check(mine, reference, {})
    assert not result.passed and result.diagnosis == same[0], (result.diagnosis, title)


def test_torch_confirms_cells_schedules_and_penalties_and_catches_a_difference(torch):
    """The torch stage of a recurrent cell (torch.nn's), a schedule (torch.optim.lr_scheduler's,
    warm-up and range test included) and a penalty (autograd): agrees on dlx's own, differs on
    a wrong one."""
    from dlx.checks import oracle
    from dlx.optim.schedules import SCHEDULES

    for base, which, fwd in ((GRUCell, "gru", lstm_check.gru_forward),
                             (RNNCell, "rnn", lstm_check.rnn_forward)):
        assert ("torch", "agrees") in lstm_check.check(switched_cell(base, fwd), which).stages
    assert ("torch", "agrees") in lstm_check.check(type("LSTMCell", (MyLSTM,), {})).stages
    for name, options in (("step", {"step_size": 200, "gamma": 0.5}),
                          ("exponential", {"gamma": 0.995}),
                          ("cosine", {"T_max": None, "eta_min": 0.01}),
                          ("log_range", {"final_lr": 10.0})):
        row = oracle.schedule(lambda lr, total, n=name, o=options: SCHEDULES[n](lr, total, **o),
                              name, options)
        assert row.ok, (name, row)
    node = {"warmup_steps": 50, "warmup_start_factor": 0.01, "eta_min": 0.0}

    def warm(lr, total):
        return lambda t: lr * (0.01 + 0.99 * t / 50) if t < 50 else \
            lr * (1 + math.cos(math.pi * (t - 50) / (total - 50))) / 2
    assert oracle.schedule(warm, "warmup_cosine", node).ok
    assert not oracle.schedule(lambda lr, total: lambda t: lr * 0.995 ** (t + 1), "exponential",
                               {"gamma": 0.995}).ok
    for lam, ratio in ((0.01, 1.0), (0.01, 0.0), (0.02, 0.3)):
        assert oracle.penalty(lambda a=lam, r=ratio: ElasticNetPenalty(a, r), lam, ratio).ok
    assert not oracle.penalty(lambda: ElasticNetPenalty(0.01, 0.0, half=False), 0.01, 0.0).ok


class ElasticNetPenalty:
    """A learner's penalty class: lam (r |w|_1 + (1 - r) / 2 |w|^2), or without the 1/2."""

    def __init__(self, lam, l1_ratio, half=True):
        self.lam, self.r, self.half = lam, l1_ratio, half

    def penalty(self, w):
        return self.lam * (self.r * np.abs(w).sum()
                           + (1 - self.r) * (0.5 if self.half else 1) * (w ** 2).sum())

    def grad(self, w):
        return self.lam * (self.r * np.sign(w) + (1 - self.r) * (1 if self.half else 2) * w)


class DropOutputs(MyDropConnect):
    """Dropout on the outputs, written as a learner's DropConnect: per entry, or one mask per
    output unit shared by the batch (with or without the bias in what is dropped)."""
    how = "entries"

    def forward(self, x):
        self.x, self.W_eff = x, self.W.data
        if not self.training:
            return x @ self.W.data + self.b.data
        shape = (len(x), self.W.data.shape[1]) if self.how == "entries" else self.W.data.shape[1]
        self.M = (self.rng.random(shape) < self.keep_prob) / self.keep_prob
        if self.how == "units_no_bias":
            return (x @ self.W.data) * self.M + self.b.data
        return (x @ self.W.data + self.b.data) * self.M


@pytest.mark.parametrize("how, says", [
    ("entries", "drops outputs (dropout after a Linear), not weights"),
    ("units", "drops outputs (dropout after a Linear), not weights"),
    ("units_no_bias", "keeps or drops whole output units"),
])
def test_dropping_outputs_is_named_whichever_way_it_is_written(how, says):
    result = dropconnect_check.check(type("DropConnectLinear", (DropOutputs,), {"how": how}))
    assert result.failed == "1 fixed inputs" and says in result.diagnosis, result
