"""The learner's own implementations in a workspace (`dlx init`): written as a learner would,
plugged in by config files with ``_target_``, compared with dlx's reference under the same data,
initial weights and batches, and recorded with their source."""

from __future__ import annotations

import csv
import hashlib
import json
import linecache
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import CLI, REPO, assert_one_error_line

pytestmark = pytest.mark.slow

EXTRA = '''\
import numpy as np

from dlx.optim import Optimizer


class SGD(Optimizer):
    def __init__(self, params, lr=0.01):
        super().__init__(params, lr)

    def update(self, p, g, state):
        p -= self.lr * g


class HalfSGD(Optimizer):
    """A slip in the maths: half the step the rule says."""
    def update(self, p, g, state):
        p -= self.lr * g / 2


class NaNs(Optimizer):
    """A 0/0 somewhere in the maths: every parameter NaN after the first step."""
    def update(self, p, g, state):
        p[...] = np.nan


class Rebinds(Optimizer):
    """The classic slip: a new array bound to the local name, the parameter left as it was."""
    def update(self, p, g, state):
        p = p - self.lr * g


class Raises(Optimizer):
    def update(self, p, g, state):
        scale = state["scale"]  # never set: KeyError at the first step
        p -= scale * g
'''


def readme_blocks() -> list[str]:
    """The Python and YAML blocks of the README's "Your own implementation", in order."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Your own implementation", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(?:python|yaml)\n(.*?)```", section, re.S)


def readme_files() -> dict[str, str]:
    """The files among them, by the path their first line names (``# mine/optim.py``)."""
    files = {}
    for block in readme_blocks():
        first, _, body = block.partition("\n")
        if re.fullmatch(r"# [\w/]+\.(py|yaml)", first.strip()):
            files[first.removeprefix("# ").strip()] = body
    return files


MODELS = '''\
import numpy as np

from dlx.nn import Module, Parameter


class LogReg(Module):
    """logits = x W + b, one output for 2 classes (sigmoid + BCE), else one per class."""
    def __init__(self, spec):
        D, K = spec.shape[0], spec.n_out      # K = 1 for 2 classes (sigmoid), else one per class
        self.W = Parameter(np.zeros((D, K)), "W")
        self.b = Parameter(np.zeros(K), "b", decay=False)

    def forward(self, x):
        self.x = x                            # (N, D): what backward needs
        return x @ self.W.data + self.b.data  # (N, n_out)

    def backward(self, dout):
        self.W.grad += self.x.T @ dout
        self.b.grad += dout.sum(axis=0)
        return dout @ self.W.data.T


class Bigram(Module):
    """makemore's bigram: the next character's logits are a row of W, looked up by this one."""
    def __init__(self, spec):
        V = spec.vocab
        self.W = Parameter(np.zeros((V, V)), "W")

    def forward(self, ids):                   # (N, T) ints
        self.ids = ids
        return self.W.data[ids]               # (N, T, V)

    def backward(self, dout):                 # (N, T, V)
        np.add.at(self.W.grad, self.ids, dout)
        return None                           # ids have no gradient
'''

LAYERS = '''\
import numpy as np

from dlx.nn import Module, Parameter


class Linear(Module):
    def __init__(self, d_in, d_out, name):
        self.W = Parameter(np.zeros((d_in, d_out)), f"{name}.W")
        self.b = Parameter(np.zeros(d_out), f"{name}.b", decay=False)

    def forward(self, x):                     # x: (N, d_in)
        self.x = x
        return x @ self.W.data + self.b.data  # (N, d_out)

    def backward(self, dout):                 # dout: (N, d_out)
        self.W.grad += self.x.T @ dout
        self.b.grad += dout.sum(axis=0)
        return dout @ self.W.data.T


class ReLU(Module):
    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, dout):
        return dout * self.mask


class SumReLU(ReLU):
    def backward(self, dout):  # the slip: summed over the batch, as a bias gradient is
        return (dout * self.mask).sum(axis=0, keepdims=True)


class MLP(Module):
    """Linear -> ReLU per hidden width, then a Linear to the outputs."""
    def __init__(self, spec, hidden=(16,)):
        sizes = [spec.shape[0], *hidden]
        self.layers = []
        for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
            self.layers += [Linear(a, b, f"fc{i + 1}"), ReLU()]
        self.layers.append(Linear(sizes[-1], spec.n_out, f"fc{len(hidden) + 1}"))

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout
'''

LOSSES = '''\
import numpy as np


class BCE:
    """Binary cross-entropy of sigmoid(z) against y in {0, 1}; z: (N, 1) logits."""
    def forward(self, z, y):
        self.z, self.y = z[:, 0], y
        return np.mean(np.maximum(self.z, 0) - self.z * y + np.log1p(np.exp(-np.abs(self.z))))

    def backward(self):
        p = 1 / (1 + np.exp(-self.z))
        return ((p - self.y) / len(self.z))[:, None]  # (N, 1), as the scores


class FlatBCE(BCE):
    def backward(self):  # the slip: (N,) where the scores are (N, 1)
        return (1 / (1 + np.exp(-self.z)) - self.y) / len(self.z)
'''

PIECES = '''\
import math
import re


def he_normal(shape, rng):
    return rng.normal(0.0, math.sqrt(2.0 / shape[0]), shape)


def cosine(step, lr, total_steps, eta_min=0.0):
    return eta_min + (lr - eta_min) * (1 + math.cos(math.pi * step / total_steps)) / 2
'''

REGULARIZERS = '''\
import numpy as np


class ElasticNet:
    """lam * (l1_ratio * sum|w| + (1 - l1_ratio) / 2 * sum w^2), its subgradient."""
    def __init__(self, lam=1e-3, l1_ratio=0.5):
        self.lam, self.l1_ratio = lam, l1_ratio

    def penalty(self, w):
        return self.lam * (self.l1_ratio * np.abs(w).sum()
                           + (1 - self.l1_ratio) / 2 * (w * w).sum())

    def grad(self, w):
        return self.lam * (self.l1_ratio * np.sign(w) + (1 - self.l1_ratio) * w)


class RowNorms(ElasticNet):
    def grad(self, w):  # the slip: one number per row where the gradient is shaped as w
        return self.lam * np.abs(w).sum(axis=1)
'''

OPTIONS = {
    "optimizer/my_sgd.yaml": "_target_: mine.extra.SGD\nreference: sgd\nlr: 0.1\n",
    "optimizer/rebinds.yaml": "_target_: mine.extra.Rebinds\nlr: 0.1\n",
    "optimizer/nans.yaml": "_target_: mine.extra.NaNs\nlr: 0.1\n",
    "optimizer/half_sgd.yaml": "_target_: mine.extra.HalfSGD\nreference: sgd\nlr: 0.1\n",
    "optimizer/raises.yaml": "_target_: mine.extra.Raises\nlr: 0.1\n",
    "model/my_logreg.yaml": "_target_: mine.models.LogReg\n",
    "model/my_mlp.yaml": "_target_: mine.layers.MLP\nhidden: [16]\n",
    "model/my_bigram.yaml": "_target_: mine.models.Bigram\n",
    "init/my_he.yaml": "_target_: mine.pieces.he_normal\n",
    "loss/my_bce.yaml": "_target_: mine.losses.BCE\n",
    "loss/flat_bce.yaml": "_target_: mine.losses.FlatBCE\n",
    "schedule/my_cosine.yaml": "_target_: mine.pieces.cosine\neta_min: 0.0\n",
    "regularizer/my_enet.yaml": "_target_: mine.regs.ElasticNet\nlam: 1.0e-3\nl1_ratio: 0.5\n",
    "regularizer/row_norms.yaml": "_target_: mine.regs.RowNorms\n",
    "activation/my_relu.yaml": "_target_: mine.layers.ReLU\n",
    "activation/untargeted.yaml": "class: mine.layers.ReLU\n",
}


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A workspace made by `dlx init`, holding a learner's code and config options."""
    root = tmp_path_factory.mktemp("learner")
    made = CLI(root)("init", "ws")
    assert made.returncode == 0, made.stderr
    ws = root / "ws"
    for name, text in (("extra", EXTRA), ("models", MODELS), ("layers", LAYERS),
                       ("losses", LOSSES), ("pieces", PIECES), ("regs", REGULARIZERS)):
        (ws / "mine" / f"{name}.py").write_text(text)
    for rel, text in readme_files().items():  # the README's Adam and its option
        (ws / rel).write_text(text)
    for rel, text in OPTIONS.items():
        (ws / "conf" / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / "conf" / rel).write_text(text)
    return ws


def metrics(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "metrics.csv")


def assert_same_run(mine: Path, ref: Path, rel: float) -> float:
    """Same rows (steps, splits, metrics) and values equal to ``rel``: the largest relative
    difference, returned so a test can state it."""
    a, b = metrics(mine), metrics(ref)
    keys = ["step", "epoch", "split", "metric"]
    assert a[keys].equals(b[keys])
    diff = float(((a.value - b.value).abs() / np.maximum(b.value.abs(), 1e-6)).max())
    assert diff < rel, diff
    return diff


def run(cli: CLI, *args: str) -> Path:
    result = cli("run", "progress=none", *args)
    assert result.returncode == 0, result.stderr
    return cli.run_dir(result)


def test_init_makes_the_workspace_and_overwrites_nothing(tmp_path):
    cli = CLI(tmp_path)
    made = cli("init", "w")
    assert made.returncode == 0, made.stderr
    for rel in ("dlx-workspace.yaml", "README.md", "mine/__init__.py", "conf/optimizer", "runs"):
        assert (tmp_path / "w" / rel).exists(), rel
    assert_one_error_line(cli("init", "w"), "already a dlx workspace")
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "README.md").write_text("mine")
    assert_one_error_line(cli("init", "v"), "README.md exists", "writes nothing over")
    assert (tmp_path / "v" / "README.md").read_text() == "mine"
    assert not (tmp_path / "v" / "dlx-workspace.yaml").exists()


def test_every_command_finds_the_workspace_from_inside_it(ws):
    deep = ws / "mine" / "notes"
    deep.mkdir(exist_ok=True)
    result = CLI(deep)("run", "optimizer=my_sgd", "epochs=1", "progress=none")
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.split()[-1]).parent == ws / "runs"  # the workspace's runs/
    listed = CLI(deep)("list")
    assert Path(result.stdout.split()[-1]).name in listed.stdout


def test_a_named_workspace_that_is_not_one_is_an_error(tmp_path):
    cli = CLI(tmp_path)
    assert_one_error_line(cli("--workspace", str(tmp_path), "run"), "not a dlx workspace",
                          "dlx init")
    cli.env["DLX_WORKSPACE"] = str(tmp_path / "nowhere")
    assert_one_error_line(cli("list"), "DLX_WORKSPACE", "not a dlx workspace")
    del cli.env["DLX_WORKSPACE"]
    assert_one_error_line(cli("run", f"hydra.searchpath=[file://{tmp_path}/nope]"),
                          "hydra.searchpath", "is not a folder")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("dtype, rel", [("float32", 1e-5), ("float64", 1e-12)])
def test_a_correct_adam_matches_the_reference_side_by_side(ws, dtype, rel):
    """experiment=optimizers, dlx's Adam and the learner's in one sweep: the same data, batches
    and initial weights, so the same metrics up to round-off (measured: 8.9e-7 relative in
    float32, where the learner's order of operations differs from dlx's fused one)."""
    result = CLI(ws)("run", "-m", "experiment=optimizers", "optimizer=adam,my_adam", "seed=0",
                     f"dtype={dtype}", "epochs=5", "progress=none")
    assert result.returncode == 0, result.stderr
    sweep = Path(result.stdout.split()[-1])
    assert_same_run(sweep / "1", sweep / "0", rel)
    config = (sweep / "1" / "config.yaml").read_text()
    assert "name: my_adam" in config and "_target_: mine.optim.Adam" in config
    assert "lr: 0.005" in config  # the experiment's tuned lr for the reference it implements


@pytest.mark.slow
def test_a_tuned_sweep_runs_the_learners_optimizer_at_its_references_rate(ws):
    """hydra/sweeper=tuned tunes each arm on its own, but a learner's implementation of a dlx
    option (my_adam: `reference: adam`) is not an arm to tune: it follows its reference's
    choice, so it is still compared with dlx's at identical settings (and costs no trials)."""
    result = CLI(ws)("run", "-m", "hydra/sweeper=tuned", "optimizer=adam,my_adam,sgd", "seed=0",
                     "epochs=2", "hydra.sweeper.tune.grid={optimizer.lr:[0.01,0.1]}",
                     "progress=none")
    assert result.returncode == 0, result.stderr
    sweep = Path(result.stdout.split()[-1])
    rows = list(csv.DictReader((sweep / "tuning.csv").open()))
    assert [r["arm"] for r in rows] == ["optimizer=adam"] * 2 + ["optimizer=sgd"] * 2 + \
        ["optimizer=my_adam"]  # 4 trials: none for the learner's Adam
    follower = rows[-1]
    adam = next(r for r in rows if r["arm"] == "optimizer=adam" and r["chosen"] == "1")
    assert follower["setting"] == adam["setting"] and follower["run"] == "as optimizer=adam"
    assert "tuned: optimizer=my_adam: " + adam["setting"] + " (as optimizer=adam, the option " \
        "it implements: compared at identical settings)" in result.stderr
    assert_same_run(sweep / "1", sweep / "0", 1e-5)  # the same rate, the same numbers
    assert cli_plot(ws, sweep)


def cli_plot(ws: Path, sweep: Path) -> bool:
    plotted = CLI(ws)("plot", str(sweep))
    return plotted.returncode == 0 and "tuning.png" in plotted.stdout


def test_the_record_holds_the_learners_source_with_its_hash(ws):
    out = run(CLI(ws), "optimizer=my_sgd", "epochs=2")
    source = json.loads((out / "summary.json").read_text())["source"]
    assert source["targets"] == {"optimizer": "mine.extra.SGD"}
    digest = hashlib.sha256((ws / "mine" / "extra.py").read_bytes()).hexdigest()
    assert source["files"]["mine/extra.py"] == digest
    assert (out / "source" / "mine" / "extra.py").read_bytes() == \
        (ws / "mine" / "extra.py").read_bytes()
    reference = run(CLI(ws), "optimizer=sgd", "optimizer.lr=0.1", "epochs=2")
    assert "source" not in json.loads((reference / "summary.json").read_text())
    assert_same_run(out, reference, 1e-6)


def test_a_learners_model_init_and_schedule_match_the_reference(ws):
    cli = CLI(ws)
    common = ("epochs=3", "dtype=float64", "optimizer=adam", "optimizer.lr=0.05")
    mine = run(cli, "model=my_logreg", "init=my_he", "schedule=my_cosine", *common)
    ref = run(cli, "model=logreg", "init=he_normal", "schedule=cosine", *common)
    assert_same_run(mine, ref, 1e-12)
    summary = json.loads((mine / "summary.json").read_text())
    assert summary["source"]["targets"] == {"model": "mine.models.LogReg",
                                            "init": "mine.pieces.he_normal",
                                            "schedule": "mine.pieces.cosine"}
    # the same start, provably: fingerprints of the initial weights and of the first batch
    assert summary["start"] == json.loads((ref / "summary.json").read_text())["start"]
    other = run(cli, "model=logreg", "init=zeros", *common)
    told = cli("compare", str(mine), str(ref), str(other))
    assert told.returncode == 0, told.stderr
    assert "did not start from the same initial weights" in told.stderr
    assert f"{mine.name}, {ref.name} | {other.name}" in told.stderr
    assert "first mini-batch" not in told.stderr  # the same data and batch order
    # runs that differ in their data on purpose are not set side by side
    apart = run(cli, "model=logreg", "init=zeros", "dataset.std=2.0", *common)
    assert "did not start" not in cli("compare", str(mine), str(apart)).stderr


def test_a_learners_layers_in_a_model_and_in_dlxs_mlp_match_the_reference(ws):
    """The learner's Linear and ReLU in their own MLP, and their ReLU inside dlx's mlp
    (model.activation=package.module.Class): dlx's mlp, to round-off in float64."""
    cli = CLI(ws)
    common = ("dataset=moons", "epochs=3", "dtype=float64", "init=he_normal")
    ref = run(cli, "model=mlp", "model.hidden=[16]", *common)
    mine = run(cli, "model=my_mlp", *common)
    assert_same_run(mine, ref, 1e-12)
    relu = run(cli, "model=mlp", "model.hidden=[16]", "model.activation=mine.layers.ReLU",
               *common)
    assert_same_run(relu, ref, 1e-12)
    source = json.loads((relu / "summary.json").read_text())["source"]
    assert source["targets"] == {"model.activation": "mine.layers.ReLU"}
    assert "mine/layers.py" in source["files"]
    assert_one_error_line(cli("run", "model=mlp", "model.activation=mine.layers.Nope"),
                          "model.activation", "has no 'Nope'", "Linear, MLP, ReLU")
    # by name, through the workspace's conf/activation/my_relu.yaml: the same run, recorded
    named = run(cli, "model=mlp", "model.hidden=[16]", "model.activation=my_relu", *common)
    assert_same_run(named, ref, 1e-12)
    source = json.loads((named / "summary.json").read_text())["source"]
    assert source["targets"] == {"model.activation": "mine.layers.ReLU"}
    clash = ws / "conf" / "activation" / "relu.yaml"  # would shadow dlx's: said, not chosen
    clash.write_text("_target_: mine.layers.ReLU\n")
    try:
        assert_one_error_line(cli("run", "model=mlp", "model.activation=relu"),
                              "conf/activation/relu.yaml has the name of dlx's own relu")
    finally:
        clash.unlink()
    assert_one_error_line(cli("run", "model=mlp", "model.activation=untargeted"),
                          "needs `_target_: package.module.Class`")
    assert_one_error_line(cli("run", "model=mlp", "model.activation=my_relx"),
                          "model.activation=my_relx: not one of yours (my_relu, ",
                          "nor of dlx's (relu, ")
    # a backward that returns the wrong shape is named at once, in training and in gradcheck
    failed = cli("run", "model=mlp", "model.hidden=[16]", "model.activation=mine.layers.SumReLU",
                 "epochs=1")
    assert failed.returncode == 1
    assert "model.activation mine.layers:SumReLU: backward returned shape (1, 16)" in \
        failed.stderr, failed.stderr
    checked = cli("gradcheck", "model=mlp", "model.hidden=[16]",
                  "model.activation=mine.layers.SumReLU")
    assert checked.returncode == 1 and "Traceback" not in checked.stderr, checked.stderr
    assert checked.stderr.startswith("error: model.activation mine.layers:SumReLU: backward "
                                     "returned shape"), checked.stderr


def test_a_learners_loss_matches_the_reference_and_its_shape_slip_is_named(ws):
    cli = CLI(ws)
    mine = run(cli, "loss=my_bce", "dtype=float64", "epochs=3")
    ref = run(cli, "dtype=float64", "epochs=3")
    assert_same_run(mine, ref, 1e-12)
    flat = cli("run", "loss=flat_bce", "epochs=1", "progress=none")
    assert flat.returncode == 1
    error = json.loads((Path(flat.stdout.split()[-1]) / "summary.json").read_text())["error"]
    assert "backward returned shape (32,)" in error and "(32, 1)" in error
    assert_one_error_line(cli("run", "loss=my_bce", "label_smoothing=0.1"),
                          "label_smoothing is an option of dlx's loss")


@pytest.mark.parametrize("reference, lam, l1_ratio", [
    ("regularizer=l2", 0.01, 0.0),
    ("regularizer=l1 regularizer.method=subgradient", 0.001, 1.0),
    ("regularizer=elastic_net regularizer.method=subgradient", 0.003, 0.5)])
def test_a_learners_regularizer_matches_the_reference(ws, reference, lam, l1_ratio):
    """The penalty logged (batch/penalty) and its gradient in every step: equal in float64."""
    cli = CLI(ws)
    common = ("model=mlp", "model.hidden=[16]", "epochs=2", "dtype=float64")
    mine = run(cli, "regularizer=my_enet", f"regularizer.lam={lam}",
               f"regularizer.l1_ratio={l1_ratio}", *common)
    ref = run(cli, *reference.split(), f"regularizer.lam={lam}", *common)
    assert_same_run(mine, ref, 1e-12)
    m = metrics(mine)
    assert (m[(m.split == "batch") & (m.metric == "penalty")].value > 0).all()


def test_a_regularizers_misshapen_gradient_is_named_and_proximal_l1_is_dlxs(ws):
    cli = CLI(ws)
    bad = cli("run", "regularizer=row_norms", "model=mlp", "epochs=1", "progress=none")
    assert bad.returncode == 1
    error = json.loads((cli.run_dir(bad) / "summary.json").read_text())["error"]
    assert "grad returned shape (2,)" in error and "fc1.W of shape (2, 64)" in error, error
    # dlx's proximal step needs the optimizer's step size: yours takes no such option
    assert_one_error_line(cli("run", "regularizer=my_enet", "+regularizer.method=proximal"),
                          "unknown key regularizer.method (valid keys: lam, l1_ratio)")


def test_weight_decay_stays_the_frameworks(ws):
    cli = CLI(ws)
    mine = run(cli, "optimizer=my_sgd", "+optimizer.weight_decay=0.01", "epochs=2",
               "dtype=float64")
    ref = run(cli, "optimizer=sgd", "optimizer.lr=0.1", "optimizer.weight_decay=0.01",
              "epochs=2", "dtype=float64")
    assert_same_run(mine, ref, 1e-12)


def test_nan_from_the_learners_code_is_a_diverged_run_as_any(ws):
    cli = CLI(ws)
    result = cli("run", "optimizer=nans", "epochs=1", "progress=none")
    assert result.returncode == 0, result.stderr
    summary = json.loads((cli.run_dir(result) / "summary.json").read_text())
    # the loss of step 2, the first computed after the NaN update, is where it shows
    assert summary["status"] == "diverged" and summary["diverged_at_step"] == 2, summary


def test_a_rebinding_update_fails_the_run_naming_the_slip(ws):
    result = CLI(ws)("run", "optimizer=rebinds", "epochs=1", "progress=none")
    assert result.returncode == 1
    summary = json.loads((Path(result.stdout.split()[-1]) / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert "left every parameter as it was" in summary["error"]
    assert "p = p - lr * g" in summary["error"]


def test_a_learner_exception_shows_the_learners_frames(ws):
    result = CLI(ws)("run", "optimizer=raises", "epochs=1", "progress=none")
    assert result.returncode == 1
    assert "Traceback (your code" in result.stderr
    assert f"{ws / 'mine' / 'extra.py'}" in result.stderr and "state[\"scale\"]" in result.stderr
    assert "dlx/optim/optimizers.py" not in result.stderr  # dlx's frames only with --debug
    assert "KeyError: 'scale'" in result.stderr


@pytest.mark.parametrize("option, code, needles", [
    ("broken", "class Adam(\n", ["mine/broken.py:1", "SyntaxError"]),
    ("missing", None, ["no module named 'mine.nothere'"]),
    ("typo", "from dlx.optim import Optimizer\nclass Adamm(Optimizer):\n"
             "    def update(self, p, g, state):\n        p -= g\n",
     ["has no 'Adam'", "it defines: Adamm"]),
    ("noupdate", "from dlx.optim import Optimizer\nclass Adam(Optimizer):\n    pass\n",
     ["does not define update(self, p, g, state)"]),
    ("notsub", "class Adam:\n    def update(self, p, g, state):\n        p -= g\n",
     ["must be a class subclassing dlx.optim.Optimizer"]),
    ("raising", "raise RuntimeError('half-written')\nclass Adam: pass\n",
     ["mine/raising.py:1", "RuntimeError: half-written"]),
])
def test_bad_learner_code_is_one_error_line_and_creates_nothing(tmp_path, option, code, needles):
    cli = CLI(tmp_path)
    assert cli("init", "w").returncode == 0
    ws = tmp_path / "w"
    module = "nothere" if code is None else option
    if code is not None:
        (ws / "mine" / f"{option}.py").write_text(code)
    (ws / "conf" / "optimizer" / f"my_{option}.yaml").write_text(
        f"_target_: mine.{module}.Adam\nlr: 0.1\n")
    assert_one_error_line(CLI(ws)("run", f"optimizer=my_{option}"), *needles)
    assert list((ws / "runs").iterdir()) == []


@pytest.mark.both_ways("torch")
def test_refusals_before_anything_is_created(ws):
    cli = CLI(ws)
    before = set((ws / "runs").iterdir())
    assert_one_error_line(cli("run", "optimizer=my_adam", "backend=torch"),
                          "backend=torch", "no torch twin")
    assert_one_error_line(cli("run", "optimizer=my_sgd", "+optimizer.momentum=0.9"),
                          "unknown key optimizer.momentum")
    assert_one_error_line(cli("run", "-m", "experiment=optimizers", "optimizer=rebinds"),
                          "no tuned learning rate for 'rebinds'", "reference: adam")
    assert set((ws / "runs").iterdir()) == before


def test_an_option_named_as_dlxs_own_is_refused(tmp_path):
    cli = CLI(tmp_path)
    assert cli("init", "w").returncode == 0
    (tmp_path / "w" / "conf" / "optimizer" / "adam.yaml").write_text("_target_: mine.a.Adam\n")
    assert_one_error_line(CLI(tmp_path / "w")("run"), "conf/optimizer/adam.yaml",
                          "dlx's own option", "my_adam")
    assert_one_error_line(CLI(tmp_path / "w")("gradcheck"), "conf/optimizer/adam.yaml")
    assert CLI(tmp_path / "w")("list").returncode == 0  # reading the records needs no options


def test_the_optimizer_state_resumes_exactly(ws):
    """A learner's state dict (arrays and a number) is checkpointed generically: a run
    stopped after epoch 2 and resumed gives the uninterrupted run's bytes."""
    import signal
    import time

    cli = CLI(ws)
    args = ("optimizer=my_adam", "epochs=400", "progress=log", "hydra.run.dir=" +
            str(ws / "runs" / "resumed"))
    proc = cli.popen("run", *args)
    log = ws / "runs" / "resumed" / "run.log"
    deadline = time.time() + 60
    while time.time() < deadline and not (log.exists() and log.read_text().count("epoch ") > 30):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert (ws / "runs" / "resumed" / "checkpoint.npz").exists()
    resumed = cli("run", *args)
    assert resumed.returncode == 0, resumed.stderr
    straight = run(cli, "optimizer=my_adam", "epochs=400")
    assert (ws / "runs" / "resumed" / "metrics.csv").read_bytes() == \
        (straight / "metrics.csv").read_bytes()


def test_the_contract_is_checked_in_process():
    """Without the CLI: the base class's update names itself; the learner's state takes
    numbers beside arrays through state_dict / load_state_dict."""
    from dlx.nn import Parameter
    from dlx.optim import Optimizer

    class Counting(Optimizer):
        def update(self, p, g, state):
            state["n"] = state.get("n", 0) + 1
            p -= self.lr * g

    p = Parameter(np.ones(3))
    p.grad[...] = 1.0
    opt = Counting([p], lr=0.5)
    opt.step()
    opt.step()
    arrays, meta = opt.state_dict()
    fresh = Counting([Parameter(np.ones(3))], lr=0.5)
    fresh.load_state_dict(arrays, json.loads(json.dumps(meta)))
    assert fresh.state[0]["n"] == 2 and fresh.t == 2
    assert np.allclose(p.data, 0.0) and math.isclose(opt.lr, 0.5)
    with pytest.raises(NotImplementedError, match="must define update"):
        Optimizer([Parameter(np.ones(2))], lr=0.1).update(np.ones(2), np.ones(2), {})


def test_the_readme_walkthrough(tmp_path):
    """The README's commands and files, as a learner follows them."""
    made = CLI(tmp_path)("init", "my-dlx")
    assert made.returncode == 0 and "my-dlx/dlx-workspace.yaml" in made.stdout, made.stderr
    ws = tmp_path / "my-dlx"
    for rel, text in readme_files().items():
        (ws / rel).write_text(text)
    cli = CLI(ws)
    result = cli("run", "-m", "experiment=optimizers", "optimizer=adam,my_adam", "seed=0")
    assert result.returncode == 0 and "sweep of 2 runs: 2 completed" in result.stderr
    sweep = Path(result.stdout.split()[-1])
    diff = assert_same_run(sweep / "1", sweep / "0", 1e-5)
    assert diff > 0  # not the reference run twice: the learner's order of operations shows
    digest = hashlib.sha256((ws / "mine" / "optim.py").read_bytes()).hexdigest()[:6]
    cli.env["COLUMNS"] = "200"
    listed = cli("list", "--limit", "2")
    said = f"optimizer=my_adam (mine.optim:Adam @{digest}, not checked)"
    assert said in " ".join(listed.stdout.split())
    assert cli("check", "optimizer=my_adam").returncode == 0  # the verdict, kept for these bytes
    listed = cli("list", "--limit", "2")
    assert said.replace("not checked", "check passed") in " ".join(listed.stdout.split())


def test_rerun_uses_the_code_the_run_recorded_or_says_which_file_changed(tmp_path):
    assert CLI(tmp_path)("init", "w").returncode == 0
    ws = tmp_path / "w"
    for rel, text in readme_files().items():
        (ws / rel).write_text(text)
    cli = CLI(ws)
    first = run(cli, "optimizer=my_adam", "epochs=3")
    same = cli("rerun", str(first), "--verify")
    assert same.returncode == 0 and "identical" in same.stdout, same.stderr
    optim = ws / "mine" / "optim.py"
    original = optim.read_text()
    # the maths changed since (no bias correction): today's code computes something else
    optim.write_text(original.replace("m / (1 - self.b1 ** self.t)", "m"))
    assert_one_error_line(cli("rerun", str(first)), f"{optim} changed since", "--code current",
                          "--code recorded")
    recorded = cli("rerun", str(first), "--verify", "--code", "recorded")
    assert recorded.returncode == 0 and "identical" in recorded.stdout, recorded.stderr
    again = Path(recorded.stdout.split()[-1])
    assert json.loads((again / "summary.json").read_text())["source"]["files"] == \
        json.loads((first / "summary.json").read_text())["source"]["files"]
    today = cli("rerun", str(first), "--verify", "--code", "current")
    assert today.returncode == 1 and "differ" in today.stdout
    # a tampered copy is not run
    (first / "source" / "mine" / "optim.py").write_text("import os\n")
    assert_one_error_line(cli("rerun", str(first), "--code", "recorded"),
                          "not the file the run recorded")
    assert_one_error_line(cli("rerun", str(first), "--code", "mine"), "--code must be")



def _notebook_sgd():
    from dlx.optim import Optimizer

    class MySGD(Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, lr)

        def update(self, p, g, state):
            p -= self.lr * g
    return MySGD


def test_dlx_run_in_process_with_a_class_from_a_cell(tmp_path, monkeypatch):
    import dlx

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("DLX_WORKSPACE", raising=False)
    monkeypatch.delenv("DLX_RUNS_DIR", raising=False)
    my_sgd = _notebook_sgd()
    sweep = dlx.run(["-m", "optimizer=sgd,MySGD", "optimizer.lr=0.1", "epochs=2",
                     "progress=none"], optimizer=my_sgd)
    mine, ref = (Path(p) for p in sorted(sweep.members["path"], reverse=True))
    assert_same_run(mine, ref, 1e-6)
    summary = json.loads((mine / "summary.json").read_text())
    assert summary["source"]["targets"] == {"optimizer": "__dlx_inline__.MySGD"}
    copied = (mine / "source" / "__dlx_inline__" / "MySGD.py").read_text()
    assert "class MySGD(Optimizer):" in copied and "p -= self.lr * g" in copied
    one = dlx.run(["epochs=1", "progress=none"], optimizer=my_sgd)
    assert one.summary["status"] == "completed"
    assert '<img src="data:image/png;base64,' in one._repr_html_()
    with pytest.raises(dlx.errors.UsageError, match="unknown key optimizer.momentum"):
        dlx.run(["+optimizer.momentum=0.9"], optimizer=my_sgd)
    assert_one_error_line(CLI(tmp_path)("rerun", str(mine)), "ran MySGD, given to dlx.run from "
                          "Python: dlx rerun cannot import it")


def test_gradcheck_checks_the_learners_backward(ws, tmp_path):
    """dlx gradcheck model=<yours>: a right backward passes; one that forgets the bias's
    gradient is named, parameter by parameter."""
    cli = CLI(ws)
    good = cli("gradcheck", "model=my_logreg", "init=he_normal")
    assert good.returncode == 0 and "below 1e-05" in good.stdout, good.stdout + good.stderr
    models = ws / "mine" / "models.py"
    (ws / "mine" / "broken.py").write_text(models.read_text().replace(
        "        self.b.grad += dout.sum(axis=0)\n", ""))
    (ws / "conf" / "model" / "broken_logreg.yaml").write_text("_target_: mine.broken.LogReg\n")
    bad = cli("gradcheck", "model=broken_logreg", "init=he_normal")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    row = next(ln for ln in bad.stdout.splitlines() if ln.strip("│ ").startswith("b "))
    assert "1.0e+00" in row or "1e+00" in row, bad.stdout
    # a whole model's dx: never used in training, so only gradcheck can find it wrong
    assert "input x (the dx backward returns)" in good.stdout
    (ws / "mine" / "wrong_dx.py").write_text(models.read_text().replace(
        "return dout @ self.W.data.T", "return 2 * dout @ self.W.data.T"))
    wrong = cli("gradcheck", "model=mine.wrong_dx.LogReg", "init=he_normal")  # the quick form
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    row = next(ln for ln in wrong.stdout.splitlines() if "input x" in ln)
    assert "FAIL" in row and "W " not in row, wrong.stdout
    assert "a wrong backward" in " ".join(wrong.stdout.split())
    # the learner's backward raises: their frames, not dlx's
    (ws / "mine" / "raising.py").write_text(models.read_text().replace(
        "return dout @ self.W.data.T", "return dout @ self.W.data"))
    raised = cli("gradcheck", "model=mine.raising.LogReg")
    assert raised.returncode == 1 and "Traceback (your code" in raised.stderr, raised.stderr
    assert "mine/raising.py" in raised.stderr and "dlx/cli.py" not in raised.stderr


@pytest.mark.needs("plugins")
@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_a_sweep_under_a_launcher_imports_the_workspace_in_its_workers(ws, launcher):
    result = CLI(ws)("run", "-m", "model=my_logreg", "seed=0,1", f"hydra/launcher={launcher}",
                     "epochs=2", "progress=none", timeout=600)
    assert result.returncode == 0, result.stderr
    sweep = Path(result.stdout.split()[-1])
    for member in ("0", "1"):
        summary = json.loads((sweep / member / "summary.json").read_text())
        assert summary["status"] == "completed"
        assert summary["source"]["targets"] == {"model": "mine.models.LogReg"}
        assert (sweep / member / "source" / "mine" / "models.py").is_file()
    assert launcher in (sweep / "multirun.yaml").read_text()


def test_the_readmes_notebook_example_runs(tmp_path, monkeypatch, capsys):
    """The README's dlx.run block, executed as a notebook cell would."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("DLX_WORKSPACE", raising=False)
    monkeypatch.delenv("DLX_RUNS_DIR", raising=False)
    (block,) = [b for b in readme_blocks() if b.startswith("import dlx") and "dlx.run(" in b]
    cell = str(tmp_path / "ipykernel" / "3.py")  # IPython keeps a cell's text in linecache
    linecache.cache[cell] = (len(block), None, block.splitlines(True), cell)
    exec(compile(block, cell, "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    assert "MySGD" in out and out.count("completed") == 2, out
    sweep = next((tmp_path / "runs").iterdir())
    targets = [json.loads((m / "summary.json").read_text()).get("source", {}).get("targets")
               for m in sorted(p for p in sweep.iterdir() if p.name.isdigit())]
    assert targets == [None, {"optimizer": "__dlx_inline__.MySGD"}]
    copied = (sweep / "1" / "source" / "__dlx_inline__" / "MySGD.py").read_text()
    assert copied.startswith("class MySGD(Optimizer):") and "p -= self.lr * g" in copied


def test_the_loss_surface_draws_the_learners_path_beside_dlxs(ws):
    """experiment=loss_surface hard-codes SGD, momentum and Adam on its exact problems; the
    learner's optimizer joins them from the same start, at its reference's preset step."""
    out = run(CLI(ws), "experiment=loss_surface", "loss_surface.problem=rosenbrock",
              "optimizer=my_adam", "loss_surface.steps=200")
    paths = pd.read_csv(out / "trajectories.csv")
    assert list(paths["optimizer"].unique()) == ["sgd", "momentum", "adam", "my_adam"]
    mine = paths[paths.optimizer == "my_adam"][["x", "y"]].to_numpy()
    ref = paths[paths.optimizer == "adam"][["x", "y"]].to_numpy()
    assert mine.shape == ref.shape and np.allclose(mine, ref, rtol=1e-10, atol=1e-12)


def test_the_quick_form_needs_no_file(ws):
    """optimizer=mine.optim.Adam: the path where an option's name goes; its defaults are keys."""
    cli = CLI(ws)
    result = cli("run", "-m", "optimizer=adam,mine.optim.Adam", "optimizer.lr=0.01", "epochs=2",
                 "dtype=float64", "progress=none")
    assert result.returncode == 0, result.stderr
    sweep = Path(result.stdout.split()[-1])
    assert_same_run(sweep / "1", sweep / "0", 1e-12)
    config = (sweep / "1" / "config.yaml").read_text()
    assert "_target_: mine.optim.Adam" in config and "lr: 0.01" in config
    assert_one_error_line(cli("run", "optimizer=mine.optim.Adamm"), "has no 'Adamm'",
                          "it defines: Adam")
    # in an experiment with tuned rates, mine.optim.Adam implements adam: its rate applies
    tuned = cli("run", "-m", "experiment=optimizers", "optimizer=adam,mine.optim.Adam",
                "seed=0", "epochs=1", "progress=none")
    assert tuned.returncode == 0, tuned.stderr
    sweep = Path(tuned.stdout.split()[-1])
    assert_same_run(sweep / "1", sweep / "0", 1e-5)
    assert_one_error_line(cli("run", "model=mine.optim.Adam"), "model mine.optim:Adam",
                          "subclassing dlx.nn.Module")


def test_the_report_sets_the_learners_runs_against_the_reference(ws):
    """A from-scratch deliverable's section: yours against dlx's, paired by seed; a correct
    Adam computes what dlx's does, a slip parts at the step it first acts; not run: where to
    start."""
    cli = CLI(ws)
    short = ("experiment=optimizers", "epochs=1", "dataset.n_samples=400", "seed=0,1")
    ref = cli("run", "-m", *short, "optimizer=adam,sgd", "progress=none")
    assert ref.returncode == 0, ref.stderr
    mine = cli("run", "-m", *short, "optimizer=my_adam,half_sgd", "progress=none")
    assert mine.returncode == 0, mine.stderr
    assert cli("check", "optimizer=my_adam").returncode == 0  # its verdict, in the report
    out = ws / "report"
    made = cli("report", str(cli.run_dir(ref)), str(cli.run_dir(mine)), "--out", str(out))
    assert made.returncode == 0, made.stderr
    text = (out / "report.md").read_text()
    adam = re.search(r"optimizer=my_adam \(mine\.optim:Adam @\w+, check passed\) at dataset\.n_samples=400, "
                     r"epochs=1 computes what "
                     r"optimizer=adam \(dlx\) does: every one of [\d,]+ logged values of 2 "
                     r"runs paired by seed within ([\d.e-]+)", text)
    assert adam and float(adam.group(1)) < 1e-5, text
    assert re.search(r"half_sgd \(mine\.extra:HalfSGD @\w+, not checked\) at .*? differs from "
                     r"optimizer=sgd \(dlx\).*they part at step \d+, \w+/loss", text), text
    assert "yours against dlx's reference: final values" in text
    assert re.search(r"\| optimizer=my_adam \(mine\.optim:Adam @\w+, check passed\) \| "
                     r"dlx check optimizer=my_adam \| passed \| 0 interface passed; 1 fixed "
                     r"inputs passed; 4 trajectory passed", text), text
    assert re.search(r"\| optimizer=half_sgd \(mine\.extra:HalfSGD @\w+, not checked\) \| "
                     r"dlx check optimizer=half_sgd \| not checked \|", text), text
    assert "a second record of this phase's optimizers" in text  # the reference's own section
    assert list((out / "figures").glob("*yours_vs_reference.png"))
    # the reference alone: the section says the deliverable waits for the learner's code
    alone = ws / "report-ref"
    assert cli("report", str(cli.run_dir(ref)), "--out", str(alone)).returncode == 0
    assert ("Not run yet with your own optimizer: this deliverable is yours to implement"
            in (alone / "report.md").read_text())


def test_conditioning_runs_the_learners_optimizer_model_and_loss(ws):
    """experiment=conditioning hard-codes GD, heavy ball, a Linear and BCE; the learner's SGD
    walks the quadratics at GD's step 2/(L+mu), their logistic regression and BCE do the
    standardization's GD from the Linear's initial weights: the same iteration counts."""
    cli = CLI(ws)
    common = ("experiment=conditioning", "conditioning.kappas=[10,100,1000]")
    mine = run(cli, *common, "optimizer=my_sgd", "model=my_logreg", "loss=my_bce")
    ref = run(cli, *common)
    table = pd.read_csv(mine / "conditioning.csv")
    assert list(table[table.method == "my_sgd"].iterations) == \
        list(table[table.method == "gd"].iterations) == [65, 651, 6506]
    a, b = (json.loads((r / "summary.json").read_text())["conditioning"] for r in (mine, ref))
    assert a["logreg"] == b["logreg"] and a["slopes"]["my_sgd"] == a["slopes"]["gd"]
    assert (mine / "plots" / "iterations_vs_kappa.png").is_file()


PIECE_SLIPS = '''\
import numpy as np


def no_return(step, lr, total_steps):
    lr * 0.5 ** (step // 10)                   # the slip: a forgotten return


def flat_init(shape, rng):
    return rng.normal(0.0, 0.1, shape[0])      # the slip: one number per row


def one_argument(shape):
    return np.zeros(shape)
'''


def test_slips_in_a_schedule_an_init_and_a_models_options_are_named(ws):
    cli = CLI(ws)
    (ws / "mine" / "slips.py").write_text(PIECE_SLIPS)
    failed = cli("run", "schedule=mine.slips.no_return", "epochs=1", "progress=none")
    assert failed.returncode == 1
    error = json.loads((cli.run_dir(failed) / "summary.json").read_text())["error"]
    assert "schedule mine.slips:no_return returned NoneType (a forgotten return?)" in error, error
    failed = cli("run", "init=mine.slips.flat_init", "epochs=1", "progress=none")
    assert_one_error_line(failed, "init mine.slips:flat_init returned shape (3,) for a weight "
                                  "of shape (3, 2)")
    assert_one_error_line(cli("run", "init=mine.slips.one_argument"),
                          "init mine.slips:one_argument: must take (shape, rng, ...)")
    # an experiment's model keys reach the learner's class: named, with where it raised
    assert_one_error_line(cli("run", "experiment=optimizers", "model=my_mlp", "model.hidden=16"),
                          "your code raised while dlx built the run: TypeError",
                          "mine/layers.py:", "model hidden=16")


def test_a_learners_hidden_layers_from_all_zeros_are_warned_of(ws):
    cli = CLI(ws)
    warned = cli("run", "model=my_mlp", "epochs=1", "progress=none")
    assert warned.returncode == 0
    assert "init=zeros on your model my_mlp with 2 weight matrices" in warned.stderr
    quiet = cli("run", "model=my_mlp", "init=he_normal", "epochs=1", "progress=none")
    assert "init=zeros" not in quiet.stderr


def test_the_optimizers_figures_keep_arms_apart_by_what_else_the_sweep_varies(ws):
    cli = CLI(ws)
    result = cli("run", "-m", "experiment=optimizers", "optimizer=sgd",
                 "schedule=constant,my_cosine", "seed=0", "epochs=1", "progress=none")
    assert result.returncode == 0, result.stderr
    sweep = cli.run_dir(result)
    assert cli("plot", str(sweep)).returncode == 0
    table = pd.read_csv(sweep / "plots" / "optimizers_table.csv")
    assert list(table["optimizer"]) == ["sgd (schedule=constant)", "sgd (schedule=my_cosine)"]
    assert list(table["n"]) == [1, 1]


def test_the_losses_experiment_trains_a_learners_loss_beside_its_own(ws):
    """experiment=losses loss=my_bce: a third arm, "yours", from the same confidently wrong
    start; a correct BCE retraces cross-entropy's curve to round-off on every seed, the figure
    draws it, the record names it. A backward shaped (N,) fails the run saying so."""
    cli = CLI(ws)
    mine = run(cli, "experiment=losses", "loss=my_bce", "losses.steps=60",
               "losses.smoothing_steps=20", "losses.seeds=[0,1]")
    t = pd.read_csv(mine / "training.csv")
    assert sorted(t["loss"].unique()) == ["ce", "mse", "yours"]
    ce, yours = (t[t["loss"] == a].reset_index(drop=True) for a in ("ce", "yours"))
    assert len(yours) == 2 * 61
    np.testing.assert_allclose(yours[["ce", "acc", "mean_abs_dz"]], ce[["ce", "acc", "mean_abs_dz"]],
                               rtol=1e-10)
    assert yours["acc"].iloc[-1] > yours["acc"].iloc[0]  # it trained from the wrong start
    summary = json.loads((mine / "summary.json").read_text())
    assert summary["losses"]["yours"] == "mine.losses:BCE"
    assert summary["source"]["targets"] == {"loss": "mine.losses.BCE"}
    assert (mine / "plots" / "ce_vs_mse.png").is_file()
    flat = cli("run", "experiment=losses", "loss=flat_bce", "losses.steps=5",
               "losses.smoothing_steps=5", "losses.seeds=[0]", "progress=none")
    assert flat.returncode == 1
    error = json.loads((Path(flat.stdout.split()[-1]) / "summary.json").read_text())["error"]
    assert "backward returned shape" in error


@pytest.mark.parametrize("experiment, piece", [("losses", "model=my_logreg"),
                                               ("vectorization", "model=my_logreg"),
                                               ("sharpness", "optimizer=my_sgd")])
def test_an_experiment_that_computes_with_its_own_pieces_refuses_the_learners(
        ws, experiment, piece):
    """Its record would name the learner's code, which never ran: refused, saying why."""
    group = piece.partition("=")[0]
    assert_one_error_line(CLI(ws)("run", f"experiment={experiment}", piece),
                          f"experiment={experiment} does not use the {group} option",
                          f"your {group} ", "would not run")


@pytest.mark.needs("tinyshakespeare", "tensorboard")
def test_a_learners_language_model_samples_and_exports(ws):
    """A learner's bigram model (makemore's first) trains on tiny Shakespeare; `dlx sample`
    rebuilds it from the workspace and draws from it, `dlx export` copies its record."""
    cli = CLI(ws)
    trained = run(cli, "model=my_bigram", "dataset=tinyshakespeare", "dataset.block_size=16",
                  "dataset.n_train_tokens=20000", "dataset.val_tokens=2000", "optimizer=adam",
                  "optimizer.lr=0.1", "batch_size=32", "max_steps=150", "init=zeros")
    final = json.loads((trained / "summary.json").read_text())["final"]
    assert final["val/loss"] < 3.0  # below the 65-letter uniform ln 65 = 4.17: it learnt
    sampled = cli("sample", str(trained), "--prompt", "ROMEO:", "--length", "80")
    assert sampled.returncode == 0, sampled.stderr
    assert sampled.stdout.startswith("ROMEO:") and len(sampled.stdout.rstrip("\n")) == 86
    exported = cli("export", str(trained), "--tensorboard", str(ws / "tb"))
    assert exported.returncode == 0, exported.stderr
    assert list((ws / "tb").rglob("events.out.tfevents.*"))
