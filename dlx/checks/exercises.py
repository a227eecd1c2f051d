"""The exercises: every implementation of the plan and the series that `dlx check` can grade, as
a stub the learner fills in (`dlx exercise start NAME`) and a status (`dlx exercise list`).

A stub is the contract and nothing of the maths: the class, its ``__init__`` storing the
hyperparameters (dlx's defaults), and each method the learner writes with a docstring saying
what it computes and how to derive it, its body ``raise NotImplementedError``. `start` writes
``mine/NAME.py`` and the option file that makes `dlx run` and `dlx check` use it
(``conf/optimizer/my_adam.yaml``: ``_target_: mine.adam.Adam``, ``reference: adam``), never
over a file that exists. The status comes from the last `dlx check` of the file as it is now
(:mod:`dlx.checks.store`). This module imports no numpy: `dlx exercise list` stays quick.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dlx.errors import UsageError

NOT_IMPLEMENTED = "not implemented yet"


@dataclass(frozen=True)
class Exercise:
    name: str            # the module's name (mine/NAME.py) and the option's (my_NAME)
    group: str           # optimizer, loss, schedule, regularizer, init, model, activation or layer
    reference: str       # dlx's implementation of the same maths
    cls: str             # the class (a schedule: the function) the stub defines
    topic: str           # one line: what it is
    experiment: str      # the plan's experiment it belongs to (its days come from the plan)
    run: str | None      # a command that runs it beside dlx's
    code: str            # the stub's text
    options: dict = field(default_factory=dict)  # the option file's hyperparameters
    also: tuple[str, ...] = ()  # other classes of the same module, each checked (layers)
    defaults: tuple[str, ...] = ()  # the option file's defaults list (as dlx's option's)

    @property
    def module(self) -> str:
        return f"mine/{self.name}.py"

    @property
    def target(self) -> str:
        return f"mine.{self.name}.{self.cls}"

    @property
    def option(self) -> str:
        return f"my_{self.name}"

    @property
    def config(self) -> str | None:
        """The option file's path in the workspace (None for a layer: dlx check takes its path)."""
        return None if self.group == "layer" else f"conf/{self.group}/{self.option}.yaml"

    @property
    def use(self) -> str:
        """Where the learner's code goes when no dlx command runs it."""
        if self.group == "loss":
            return ("use it as a term of a loss of yours, e.g. the confidence penalty CE - beta "
                    "H (Pereyra et al. 2017)")
        return "use it in a model of yours (conf/model/)"

    @property
    def checks(self) -> list[str]:
        """Every command that grades it (a layer exercise may define several classes)."""
        return [self.check, *(f"dlx check layer=mine.{self.name}.{c}" for c in self.also)]

    @property
    def check(self) -> str:
        if self.group == "layer":
            return f"dlx check layer={self.target}"
        if self.group == "activation":
            return f"dlx check model.activation={self.option}"
        return f"dlx check {self.group}={self.option}"

    @property
    def days(self) -> str:
        """The plan's days for its experiment ("10-12"), or "series" (the notebook series)."""
        from dlx.plan import PLAN

        return next(days for _, days, _, exp, _ in PLAN if exp == self.experiment)

    def config_text(self) -> str:
        lines = [f"# {self.config}: your {self.cls} ({self.module}) as dlx's {self.group} "
                 f"option {self.option}"]
        if self.defaults:  # what dlx's own option sets beside itself (a CNN's data and init)
            lines += ["defaults:", *(f"  - {d}" for d in self.defaults), ""]
        lines += [f"_target_: {self.target}",
                 f"reference: {self.reference}          # dlx's option it implements: "
                 f"`dlx check` compares with it"]
        if self.group == "activation":  # dlx builds an activation with no options
            return "\n".join(lines) + "\n"
        lines += [f"{k}: {_yaml(v)}" for k, v in self.options.items()]
        return "\n".join(lines) + "\n"


def _yaml(v) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_yaml(x) for x in v) + "]"
    if v is None:
        return "null"
    if isinstance(v, float) and 0 < abs(v) < 1e-3:
        return f"{v:.1e}"  # 1.0e-08: YAML reads 1e-08 (no dot) as a string
    return str(v).lower() if isinstance(v, bool) else str(v)


# --- the stubs ------------------------------------------------------------------------------

_UPDATE_DOC = '''\
        """One step for one parameter: change ``p`` (an array) **in place** (``p -= ...``,
        ``m[...] = ...``; ``p = p - ...`` only rebinds the name). ``g`` is its gradient: read
        it, never change it. ``state`` is this parameter's dict, kept from step to step (empty
        at the first step): put your buffers there, not on ``self`` (each parameter has its
        own). ``self.lr`` is the current rate (a schedule may change it), ``self.t`` the step
        number (1 at the first step)."""'''


def _optimizer(name: str, cls: str, title: str, rule: str, derive: str, args: str,
               init: str, body: str, run: str) -> str:
    return f'''"""Exercise {name}: {title}.

Check it:  dlx check optimizer=my_{name}
Run it:    {run}
"""

import numpy as np  # noqa: F401 - for your update

from dlx.optim import Optimizer


class {cls}(Optimizer):
    r"""{title[0].upper() + title[1:]}.

    For each parameter p with gradient g, at step t (from 1)::

{rule}

    {derive}

    Args:
        params: the model's Parameters (dlx loops over them and calls ``update`` for each).
{args}
    """

    def __init__({init}):
{body}

    def update(self, p, g, state):
{_UPDATE_DOC}
        raise NotImplementedError("{cls}.update: write one step of the rule above")
'''


_LR = "        lr: the learning rate (``self.lr``; a schedule may change it between steps)."
_OPT_RUN = "dlx run -m experiment=optimizers optimizer={ref},my_{name} seed=0"


def _optimizers() -> list[Exercise]:
    specs = [
        ("sgd", "sgd", "SGD", "stochastic gradient descent", "gd_variants",
         "        p <- p - lr * g",
         "Derive it: the first-order Taylor expansion of the loss around p; the step that "
         "lowers it most for a given (small) length points along -g.", _LR,
         "self, params, lr=0.05", "        super().__init__(params, lr)", {"lr": 0.05},
         "dlx run -m experiment=gd_variants optimizer=my_sgd"),
        ("momentum", "momentum", "Momentum", "heavy-ball momentum, as torch.optim.SGD writes it",
         "optimizers",
         "        b <- g                        at the first step\n"
         "        b <- momentum * b + g         afterwards\n"
         "        p <- p - lr * b",
         "Derive it: unroll b_t as a weighted sum of the past gradients; for a constant g it "
         "tends to g / (1 - momentum), so the effective rate is lr / (1 - momentum).",
         _LR + "\n        momentum: how much of the previous velocity is kept (0.9).",
         "self, params, lr=0.05, momentum=0.9",
         "        super().__init__(params, lr)\n        self.momentum = momentum",
         {"lr": 0.05, "momentum": 0.9}, None),
        ("nesterov", "nesterov", "Nesterov", "Nesterov momentum, as torch.optim.SGD writes it",
         "optimizers",
         "        b <- g                        at the first step\n"
         "        b <- momentum * b + g         afterwards\n"
         "        p <- p - lr * (g + momentum * b)",
         "Derive it: Nesterov evaluates the gradient at the look-ahead point p - lr momentum b; "
         "rewrite the update in the variable p' = p - lr momentum b to get the form above.",
         _LR + "\n        momentum: how much of the previous velocity is kept (0.9).",
         "self, params, lr=0.05, momentum=0.9",
         "        super().__init__(params, lr)\n        self.momentum = momentum",
         {"lr": 0.05, "momentum": 0.9}, None),
        ("adagrad", "adagrad", "Adagrad", "AdaGrad (Duchi et al. 2011)", "optimizers",
         "        s <- s + g^2                  (s starts at zero)\n"
         "        p <- p - lr * g / (sqrt(s) + eps)",
         "Derive it: each coordinate's step shrinks with the squared gradients it has seen; "
         "why does the step size only ever decrease, and what does that do late in training?",
         _LR + "\n        eps: added to sqrt(s), outside the root, so the division is safe.",
         "self, params, lr=0.01, eps=1e-10",
         "        super().__init__(params, lr)\n        self.eps = eps",
         {"lr": 0.01, "eps": 1e-10}, None),
        ("rmsprop", "rmsprop", "RMSprop", "RMSProp (Hinton 2012), as torch.optim.RMSprop",
         "optimizers",
         "        v <- alpha * v + (1 - alpha) * g^2      (v starts at zero)\n"
         "        p <- p - lr * g / (sqrt(v) + eps)",
         "Derive it: v is an exponentially weighted average of g^2 (AdaGrad's sum, forgetting); "
         "its time constant is about 1 / (1 - alpha) steps.",
         _LR + "\n        alpha: the average's decay (0.99).\n"
         "        eps: added to sqrt(v), outside the root.",
         "self, params, lr=0.01, alpha=0.99, eps=1e-8",
         "        super().__init__(params, lr)\n        self.alpha, self.eps = alpha, eps",
         {"lr": 0.01, "alpha": 0.99, "eps": 1e-8}, None),
        ("adam", "adam", "Adam", "Adam (Kingma & Ba 2015)", "optimizers",
         "        m <- beta1 * m + (1 - beta1) * g        (m and v start at zero)\n"
         "        v <- beta2 * v + (1 - beta2) * g^2\n"
         "        m_hat = m / (1 - beta1^t)\n"
         "        v_hat = v / (1 - beta2^t)\n"
         "        p <- p - lr * m_hat / (sqrt(v_hat) + eps)",
         "Derive it: for a constant gradient, E[m_t] = (1 - beta1^t) g: the correction undoes "
         "the zero start. Which step would be too small without it, and by how much?",
         _LR + "\n        betas: (beta1, beta2), the averages' decays.\n"
         "        eps: added to sqrt(v_hat), outside the root.",
         "self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8",
         "        super().__init__(params, lr)\n        self.beta1, self.beta2 = betas\n"
         "        self.eps = eps",
         {"lr": 0.001, "betas": [0.9, 0.999], "eps": 1e-8}, None),
        ("adamw", "adamw", "AdamW", "AdamW (Loshchilov & Hutter 2019), as torch.optim.AdamW",
         "optimizers",
         "        p <- p * (1 - lr * weight_decay)        (decoupled: outside the Adam step)\n"
         "        then Adam's step, with m_hat and v_hat bias-corrected as in Adam",
         "Derive it: with the decay in the gradient (L2, g + wd p) Adam divides it by "
         "sqrt(v_hat); what does that do to weights with large gradients?",
         _LR + "\n        betas: (beta1, beta2).\n        eps: added to sqrt(v_hat).\n"
         "        weight_decay: the decay per unit of lr (yours: dlx adds nothing to g).",
         "self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01",
         "        super().__init__(params, lr)  # no weight_decay here: the decay is yours\n"
         "        self.beta1, self.beta2 = betas\n        self.eps, self.wd = eps, weight_decay",
         {"lr": 0.001, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01}, None),
        ("adamax", "adamax", "Adamax", "AdaMax (Kingma & Ba 2015, section 7)", "optimizers",
         "        m <- beta1 * m + (1 - beta1) * g        (m and u start at zero)\n"
         "        u <- max(beta2 * u, |g| + eps)\n"
         "        p <- p - lr / (1 - beta1^t) * m / u",
         "Derive it: Adam's v with the L2 norm replaced by the Lp norm, p -> infinity, becomes "
         "the running maximum u; u needs no bias correction (why?).",
         _LR + "\n        betas: (beta1, beta2).\n        eps: added to |g| inside the maximum.",
         "self, params, lr=0.002, betas=(0.9, 0.999), eps=1e-8",
         "        super().__init__(params, lr)\n        self.beta1, self.beta2 = betas\n"
         "        self.eps = eps",
         {"lr": 0.002, "betas": [0.9, 0.999], "eps": 1e-8}, None),
        ("nadam", "nadam", "NAdam", "NAdam (Dozat 2016), as torch.optim.NAdam", "optimizers",
         "        mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay))\n"
         "        P_t = mu_1 * mu_2 * ... * mu_t          (keep the running product in state)\n"
         "        m <- beta1 * m + (1 - beta1) * g        (m and v start at zero)\n"
         "        v <- beta2 * v + (1 - beta2) * g^2\n"
         "        d = sqrt(v / (1 - beta2^t)) + eps\n"
         "        p <- p - lr * (1 - mu_t) / (1 - P_t) * g / d\n"
         "               - lr * mu_{t+1} / (1 - P_t * mu_{t+1}) * m / d",
         "Derive it: Adam's step with Nesterov's look-ahead: the next step's momentum applied "
         "to m now, the current gradient weighted by (1 - mu_t).",
         _LR + "\n        betas: (beta1, beta2).\n        eps: added to the root.\n"
         "        momentum_decay: the schedule of mu_t (0.004).",
         "self, params, lr=0.002, betas=(0.9, 0.999), eps=1e-8, momentum_decay=0.004",
         "        super().__init__(params, lr)\n        self.beta1, self.beta2 = betas\n"
         "        self.eps, self.momentum_decay = eps, momentum_decay",
         {"lr": 0.002, "betas": [0.9, 0.999], "eps": 1e-8, "momentum_decay": 0.004}, None),
    ]
    out = []
    for (name, ref, cls, title, experiment, rule, derive, args, init, body, options,
         run) in specs:
        run = run or _OPT_RUN.format(ref=ref, name=name)
        out.append(Exercise(name, "optimizer", ref, cls, title, experiment, run,
                            _optimizer(name, cls, title, rule, derive, args, init, body, run),
                            options))
    return out


def _loss(name: str, cls: str, title: str, shapes: str, forward: str, backward: str,
          run: str) -> str:
    return f'''"""Exercise {name}: {title}.

Check it:  dlx check loss=my_{name}
{f"Run it:    {run}" if run else "Use it:    in a loss of yours (a confidence penalty, CE - beta H)"}
"""

import numpy as np  # noqa: F401 - for your forward and backward


class {cls}:
    """{title[0].upper() + title[1:]}, the mean over the batch.

    {shapes}
    """

    def forward(self, scores, y):
        """The loss: one float, the mean over the batch. Keep on ``self`` what backward
        needs (and never change ``scores``: the model's backward still needs them).

        {forward}"""
        raise NotImplementedError("{cls}.forward: compute the loss")

    def backward(self):
        """dL/dscores for the last forward: an array shaped as the scores, the mean's 1/N
        included (the model's backward starts from it).

        {backward}"""
        raise NotImplementedError("{cls}.backward: compute dL/dscores")
'''


def _losses() -> list[Exercise]:
    specs = [
        ("bce", "bce", "BCE", "binary cross-entropy of sigmoid(z), from logits", "logreg",
         "scores: (N, 1) logits z (no sigmoid applied yet); y: (N,) labels in {0, 1}.",
         "L = -(1/N) sum_i [y_i log sigmoid(z_i) + (1 - y_i) log(1 - sigmoid(z_i))].\n"
         "        Write log sigmoid(z) = -log(1 + exp(-z)) in a form that cannot overflow for "
         "a large |z|\n        (np.logaddexp(0, -z) is log(1 + exp(-z)), computed safely).",
         "Derive dL_i/dz_i for one example first: sigmoid'(z) = sigmoid(z) (1 - sigmoid(z))\n"
         "        cancels against the log's derivative. Then the mean's 1/N.",
         "dlx run experiment=losses loss=my_bce"),
        ("cross_entropy", "cross_entropy", "CrossEntropy", "cross-entropy of softmax(z)",
         "losses",
         "scores: (N, C) logits z; y: (N,) integer class labels in [0, C).",
         "L = -(1/N) sum_i log softmax(z_i)[y_i], softmax(z)_k = exp(z_k) / sum_j exp(z_j).\n"
         "        Subtract each row's maximum before exp: softmax does not change, and exp of "
         "a logit\n        of 1000 no longer overflows.",
         "Derive dL_i/dz_ik for one example: the log-sum-exp's derivative is softmax(z_i)_k,\n"
         "        and the true class adds one more term. Then the mean's 1/N.",
         "dlx run -m model=mlp dataset=blobs dataset.n_classes=3 loss=auto,my_cross_entropy "
         "seed=0"),
        ("entropy", "entropy", "Entropy", "the entropy of softmax(z), in nats", "losses",
         "scores: (N, C) logits z; y: (N,) labels, not used (the entropy is the prediction's "
         "own).",
         "H_i = -sum_k p_ik log p_ik with p_i = softmax(z_i); L = the mean of H_i over the "
         "batch.\n        Compute log p from the shifted logits (z - max) so that nothing "
         "overflows and no\n        log(0) appears for a confident prediction.",
         "H depends on z only through p: derive dH/dp_k, then chain it through the softmax's "
         "Jacobian\n        dp_k/dz_j = p_k (delta_kj - p_j); the result is short (in terms of "
         "p, log p and H).\n        Then the mean's 1/N.", None),
        ("mse", "mse", "MSE", "mean squared error", "function_approx",
         "scores: (N, D) predictions z; y: (N, D) targets (floats).",
         "L = the mean of (z - y)^2 over every entry (N * D of them).",
         "Derive dL/dz entry by entry: the square's derivative and the mean's 1 / (N * D).",
         "dlx run -m model=mlp dataset=function optimizer=adam optimizer.lr=0.01 "
         "loss=auto,my_mse seed=0"),
    ]
    return [Exercise(name, "loss", ref, cls, title, experiment, run,
                     _loss(name, cls, title, shapes, forward, backward, run))
            for name, ref, cls, title, experiment, shapes, forward, backward, run in specs]


def _activation(name: str, cls: str, title: str, forward: str, backward: str, run: str) -> str:
    return f'''"""Exercise {name}: {title}, a layer of dlx's mlp.

Check it:  dlx check model.activation=my_{name}
Run it:    {run}
"""

import numpy as np  # noqa: F401 - for your forward and backward

from dlx.nn import Module


class {cls}(Module):
    """{title[0].upper() + title[1:]}, entry by entry: x of any shape, out shaped as x."""

    def forward(self, x):
        """{forward}
        Keep on ``self`` what backward needs; never change ``x`` in place (the layer before
        still needs it)."""
        raise NotImplementedError("{cls}.forward: compute the activation")

    def backward(self, dout):
        """dL/dx = dout * f'(x), entry by entry, shaped as x (``dout`` is dL/dout).

        {backward}"""
        raise NotImplementedError("{cls}.backward: compute dL/dx")
'''


def _activations() -> list[Exercise]:
    run = "dlx run -m model=mlp dataset=moons model.activation={ref},my_{name} seed=0"
    specs = [
        ("relu", "ReLU", "the rectified linear unit max(x, 0)",
         "out = max(x, 0).",
         "Derive f'(x) on each side of 0 (at 0 itself, take 0, as torch does)."),
        ("sigmoid", "Sigmoid", "the logistic sigmoid 1 / (1 + exp(-x))",
         "out = 1 / (1 + exp(-x)).",
         "Derive f'(x) and write it with the output y = f(x): then backward needs only y."),
        ("tanh", "Tanh", "the hyperbolic tangent",
         "out = tanh(x).",
         "Derive f'(x) and write it with the output y = f(x): then backward needs only y."),
    ]
    return [Exercise(name, "activation", name, cls, title, "activations",
                     run.format(ref=name, name=name),
                     _activation(name, cls, title, forward, backward,
                                 run.format(ref=name, name=name)))
            for name, cls, title, forward, backward in specs]


_LINEAR = '''"""Exercise linear: a fully connected layer, out = x W + b.

Check it:  dlx check layer=mine.linear.Linear
Use it:    in a model of yours (conf/model/), e.g. two of them and a ReLU for the MNIST MLP.
"""

import numpy as np

from dlx.nn import Module, Parameter


class Linear(Module):
    """out = x W + b for a batch x of shape (N, d_in): W is (d_in, d_out), b is (d_out,).

    Args:
        d_in: the input's features.
        d_out: the output's features.
        dtype: the parameters' dtype (dlx casts them to the run's).
        name: the prefix of the parameters' names.
    """

    def __init__(self, d_in, d_out, dtype=np.float64, name="fc"):
        # dlx's init option fills the weight (decay=True); the bias starts at zero
        self.W = Parameter(np.zeros((d_in, d_out), dtype=dtype), f"{name}.W")
        self.b = Parameter(np.zeros(d_out, dtype=dtype), f"{name}.b", decay=False)

    def forward(self, x):
        """(N, d_in) -> (N, d_out). ``self.W`` is a Parameter: its array is ``self.W.data``
        (and its gradient ``self.W.grad``). Keep on ``self`` what backward needs."""
        raise NotImplementedError("Linear.forward: compute x W + b")

    def backward(self, dout):
        """dout = dL/dout, (N, d_out). **Add** dL/dW into ``self.W.grad`` and dL/db into
        ``self.b.grad`` (``+=``: a layer used twice sums its gradients; dlx zeroes them before
        each step), and return dL/dx, shaped as x.

        Derive each for one example first (out_j = sum_i x_i W_ij + b_j), then over the batch:
        every gradient has the shape of what it is the gradient of."""
        raise NotImplementedError("Linear.backward: compute dW, db and dx")
'''


def _schedule(name: str, fn: str, title: str, rule: str, derive: str, params: str,
              args: str, run: str) -> str:
    return f'''"""Exercise {name}: {title}.

Check it:  dlx check schedule=my_{name}
Run it:    {run}
"""

import math  # noqa: F401 - for your schedule


def {fn}(step, lr, total_steps, {params}):
    """{title[0].upper() + title[1:]}: the learning rate at update ``step``::

{rule}

    {derive}

    Args:
        step: the update's number, from 0 (the first update uses lr(0)).
        lr: the base rate (the optimizer's lr).
        total_steps: the run's updates (after any warm-up, which is dlx's).
{args}

    Return one number. A function of ``step`` alone: dlx asks for it at every update, and
    again from the checkpoint's step when a run resumes.
    """
    raise NotImplementedError("{fn}: return the rate at this step")
'''


def _schedules() -> list[Exercise]:
    specs = [
        ("step", "step_decay", "step decay (torch's StepLR)",
         "        lr(t) = lr * gamma^floor(t / step_size)",
         "The rate is held for step_size updates, then multiplied by gamma.",
         "step_size=200, gamma=0.5",
         "        step_size: updates between two drops.\n        gamma: the factor of a drop.",
         {"step_size": 200, "gamma": 0.5}),
        ("exponential", "exponential_decay", "exponential decay (torch's ExponentialLR)",
         "        lr(t) = lr * gamma^t",
         "What is the rate's half-life in updates, for gamma = 0.995?",
         "gamma=0.995", "        gamma: the factor per update.", {"gamma": 0.995}),
        ("time_based", "time_based_decay", "1/t (time-based) decay",
         "        lr(t) = lr / (1 + decay * t)",
         "Robbins-Monro: sum lr(t) diverges, sum lr(t)^2 converges; which does 1/t satisfy?",
         "decay=0.01", "        decay: how fast the rate falls.", {"decay": 0.01}),
        ("cosine", "cosine_annealing", "cosine annealing (torch's CosineAnnealingLR)",
         "        T = T_max, or total_steps when T_max is None\n"
         "        lr(t) = eta_min + (lr - eta_min) * (1 + cos(pi * t / T)) / 2",
         "Check the ends: lr(0) = lr, lr(T) = eta_min, and the slope is zero at both.",
         "T_max=None, eta_min=0.0",
         "        T_max: the annealing's length in updates (None: the whole run).\n"
         "        eta_min: the rate it ends at.", {"T_max": None, "eta_min": 0.0}),
    ]
    specs.append(
        ("warmup_cosine", "warmup_cosine", "linear warm-up, then cosine annealing",
         "        lr(t) = lr * (start_factor + (1 - start_factor) * t / warmup)   for t < warmup\n"
         "        then cosine annealing from lr to eta_min over the remaining total_steps - warmup\n"
         "        updates, its own step counting from 0 at t = warmup",
         "Why warm up at all? Adam's second moment (and a freshly initialized net's gradient "
         "scale) is unreliable for the first steps: a small rate while they settle.",
         "warmup=50, start_factor=0.01, eta_min=0.0",
         "        warmup: the warm-up's updates.\n"
         "        start_factor: the rate at step 0, as a fraction of lr.\n"
         "        eta_min: the rate the cosine ends at.",
         {"warmup": 50, "start_factor": 0.01, "eta_min": 0.0}))
    out = []
    for name, fn, title, rule, derive, params, args, options in specs:
        run = f"dlx run -m experiment=lr_schedules schedule={name},my_{name} seed=0"
        out.append(Exercise(name, "schedule", name, fn, title, "lr_schedules", run,
                            _schedule(name, fn, title, rule, derive, params, args, run), options))
    run = "dlx run -m experiment=lr_range schedule=log_range,my_lr_range seed=0"
    out.append(Exercise(
        "lr_range", "schedule", "log_range", "log_range", "the LR range test's sweep (Smith 2017)",
        "lr_range", run, _schedule(
            "lr_range", "log_range", "the LR range test's sweep (Smith 2017)",
            "        lr(t) = lr * (final_lr / lr)^(t / (T - 1)),  T = total_steps\n"
            "        (held at final_lr after the last step)",
            "From lr to final_lr evenly on a log scale: each update multiplies the rate by\n"
            "    the same factor. Why not a linear sweep? The rates worth trying span decades,\n"
            "    and a linear one spends nearly all its steps in the top decade.", "final_lr=10.0",
            "        final_lr: the rate at the last update (lr is the first's).", run),
        {"final_lr": 10.0}))
    return out


def _init(name: str, title: str, formula: str, derive: str, params: str, args: str,
          run: str) -> str:
    return f'''"""Exercise {name}: {title}.

Check it:  dlx check init=my_{name}
Run it:    {run}
"""

import math  # noqa: F401 - for your initializer

import numpy as np  # noqa: F401 - for your initializer


def {name}(shape, rng{params}):
    """{title[0].upper() + title[1:]}: a weight of this shape drawn from::

{formula}

    The shapes are dlx's: a dense weight is (fan_in, fan_out) (x @ W: its rows are a unit's
    inputs); a convolution kernel is (C_out, C_in, kH, kW), whose units each see C_in kH kW
    inputs: fan_in = C_in kH kW and fan_out = C_out kH kW. Biases are dlx's (zeros).

    {derive}

    Args:
        shape: the weight's shape, a tuple.
        rng: numpy's Generator, seeded by the run: draw with it (rng.normal(mean, std, shape),
            rng.uniform(low, high, shape)), never with np.random, so that a run is
            reproducible from its seed.
{args}
    Return an array of that shape.
    """
    raise NotImplementedError("{name}: draw the weights")
'''


def _inits() -> list[Exercise]:
    he = ("He et al. 2015: z = sum of fan_in terms w x, so Var(z) = fan_in Var(w) E[x^2]; a "
          "ReLU\n    zeroes half its inputs, E[x^2] = Var(z_prev) / 2: which Var(w) keeps Var(z) "
          "from layer to layer?")
    glorot = ("Glorot & Bengio 2010: the forward pass keeps its variance with Var(w) = 1 / "
              "fan_in, the backward\n    pass with 1 / fan_out; the compromise is their harmonic "
              "mean.")
    uniform = "\n    U(-b, b) has variance b^2 / 3: choose b for the variance above."
    gain = ("        gain: a factor on the standard deviation (1 for tanh or linear layers).\n",
            ", gain=1.0")
    specs = [
        ("he_normal", "He initialization, normal", "        N(0, 2 / fan_in)", he, ("", ""), {},
         "relu"),
        ("he_uniform", "He initialization, uniform",
         "        U(-b, b) with the variance of He's normal, 2 / fan_in", he + uniform, ("", ""),
         {}, "relu"),
        ("lecun_normal", "LeCun initialization, normal", "        N(0, 1 / fan_in)",
         "LeCun 1998: Var(z) = fan_in Var(w) Var(x) for a linear (or tanh, near 0) layer: which "
         "Var(w)\n    keeps Var(z) = Var(x)?", ("", ""), {}, "tanh"),
        ("xavier_normal", "Xavier (Glorot) initialization, normal",
         "        N(0, gain^2 * 2 / (fan_in + fan_out))", glorot, gain, {"gain": 1.0}, "tanh"),
        ("xavier_uniform", "Xavier (Glorot) initialization, uniform",
         "        U(-b, b) with the variance of Xavier's normal, gain^2 * 2 / (fan_in + fan_out)",
         glorot + uniform, gain, {"gain": 1.0}, "tanh"),
    ]
    out = []
    for name, title, formula, derive, (args, params), options, act in specs:
        run = (f"dlx run -m experiment=init init={name},my_{name} model.activation={act} "
               f"seed=0")
        out.append(Exercise(name, "init", name, name, title, "init", run,
                            _init(name, title, formula, derive, params, args, run), options))
    return out


def _penalty(name: str, cls: str, title: str, formula: str, derive: str, init: str,
             body: str, args: str, run: str) -> str:
    return f'''"""Exercise {name}: {title}.

Check it:  dlx check regularizer=my_{name}
Run it:    {run}
"""

import numpy as np  # noqa: F401 - for your penalty and gradient


class {cls}:
    """{title[0].upper() + title[1:]} on one weight array w (dlx sums it over the weights,
    never the biases, adds it to the loss and its gradient to each weight's)::

{formula}

    Args:
{args}
    """

    def __init__({init}):
{body}

    def penalty(self, w):
        """The penalty of this weight array: one float (a sum over every entry)."""
        raise NotImplementedError("{cls}.penalty")

    def grad(self, w):
        """d penalty / dw, shaped as w (never change w itself).

        {derive}"""
        raise NotImplementedError("{cls}.grad")
'''


def _penalties() -> list[Exercise]:
    run = "dlx run -m model=mlp dataset=moons regularizer={ref},my_{name} regularizer.lam=0.01 " \
          "seed=0"
    specs = [
        ("l2", "L2", "the L2 (ridge) penalty", "        penalty = lam / 2 * sum(w^2)",
         "Differentiate one entry's term: the 1/2 is there so that the gradient is simple.",
         "self, lam=0.001", "        self.lam = lam", "        lam: the penalty's strength.",
         {"lam": 0.001}),
        ("l1", "L1", "the L1 (lasso) penalty", "        penalty = lam * sum(|w|)",
         "Differentiate |w| on each side of 0 (take 0 at 0, as numpy's sign does).",
         "self, lam=0.001", "        self.lam = lam", "        lam: the penalty's strength.",
         {"lam": 0.001}),
        ("elastic_net", "ElasticNet", "the elastic net (Zou & Hastie 2005)",
         "        penalty = lam * (l1_ratio * sum(|w|) + (1 - l1_ratio) / 2 * sum(w^2))",
         "The two parts' gradients, weighted as in the penalty.",
         "self, lam=0.001, l1_ratio=0.5",
         "        self.lam, self.l1_ratio = lam, l1_ratio",
         "        lam: the penalty's strength.\n        l1_ratio: the L1 share, in [0, 1].",
         {"lam": 0.001, "l1_ratio": 0.5}),
    ]
    out = []
    for name, cls, title, formula, derive, init, body, args, options in specs:
        command = (run.format(ref=name, name=name) if name == "l2" else
                   f"dlx run model=mlp dataset=moons regularizer=my_{name} "
                   f"regularizer.lam=0.01")  # dlx's own L1 takes a proximal step: not yours
        out.append(Exercise(name, "regularizer", name, cls, title, "regularization", command,
                            _penalty(name, cls, title, formula, derive, init, body, args,
                                     command), options))
    return out


def _affine_model(name: str, title: str, cls: str, doc: str, run: str, out: str,
                  backward: str) -> str:
    """The stub of a one-layer model, out = x W + b (logistic and linear regression)."""
    return f'''"""Exercise {name}: {title}.

Check it:  dlx check model=my_{name}
Run it:    {run}
"""

import numpy as np

from dlx.nn import Module, Parameter


class {cls}(Module):
    """{doc}

    Args:
        spec: the data's description: ``spec.shape`` one input's shape (D,), ``spec.n_out``.
    """

    def __init__(self, spec):
        D, K = int(np.prod(spec.shape)), spec.n_out
        self.W = Parameter(np.zeros((D, K)), "linear.W")  # .data the array, .grad its gradient
        self.b = Parameter(np.zeros(K), "linear.b", decay=False)

    def forward(self, x):
        """(N, D) -> {out} (N, K). Keep on ``self`` what backward needs."""
        raise NotImplementedError("{cls}.forward")

    def backward(self, dout):
        """{backward}"""
        raise NotImplementedError("{cls}.backward")
'''


_LOGREG = _affine_model(
    "logreg", "logistic regression from scratch, logits = x W + b", "LogisticRegression",
    "logits = x W + b for a batch x of shape (N, D): W is (D, K), b is (K,), K = spec.n_out\n"
    "    (1 for two classes: dlx's loss applies the sigmoid; else one logit per class, softmax).",
    "dlx run -m experiment=logreg model=logreg,my_logreg seed=0", "logits",
    "dout = dL/dlogits, (N, K) (the loss's backward, its 1/N included). **Add** dL/dW\n"
    "        and dL/db into ``self.W.grad`` and ``self.b.grad`` (+=), and return dL/dx, (N, D).\n"
    "\n        Derive each for one example (logit_k = sum_d x_d W_dk + b_k), then over the "
    "batch.")

_LINREG = _affine_model(
    "linreg", "the single perceptron without an activation, y_hat = x W + b (house prices)",
    "LinearRegression",
    "y_hat = x W + b for x (N, D): W (D, K), b (K,), K = spec.n_out real targets (trained on\n"
    "    the squared error: the gradient of its mean is dlx's loss's backward).",
    "dlx run -m model=linreg,my_linreg dataset=function optimizer=sgd optimizer.lr=0.1 seed=0",
    "predictions",
    "dout = dL/dy_hat, (N, K). **Add** dL/dW and dL/db into ``self.W.grad`` and\n"
    "        ``self.b.grad`` (+=) and return dL/dx, (N, D): the perceptron's gradient, derived "
    "for\n        one example (y_hat_k = sum_d x_d W_dk + b_k), then over the batch.")


_TWO_LAYER = '''"""Exercise two_layer_net: a 2-layer net, vectorized forward and backward (cs231n's).

Check it:  dlx check model=my_two_layer_net
Run it:    dlx run -m experiment=mnist_mlp model=mlp,my_two_layer_net
"""

import numpy as np

from dlx.nn import Module, Parameter


class TwoLayerNet(Module):
    """scores = relu(x W1 + b1) W2 + b2: x (N, D) (images are flattened first), W1 (D, H),
    b1 (H,), W2 (H, K), b2 (K,), K = spec.n_out.

    Args:
        spec: the data's description: ``spec.shape`` one input's shape, ``spec.n_out``.
        hidden: the hidden width, as a one-element list (dlx's mlp takes one per layer).
        activation: the hidden activation; this net's is ReLU.
    """

    def __init__(self, spec, hidden=(64,), activation="relu"):
        if len(hidden) != 1 or activation != "relu":
            raise ValueError(f"a two-layer ReLU net: one hidden width and activation relu, got "
                             f"hidden={hidden}, activation={activation}")
        D, H, K = int(np.prod(spec.shape)), int(hidden[0]), spec.n_out
        self.W1 = Parameter(np.zeros((D, H)), "fc1.W")  # dlx's init option fills the weights
        self.b1 = Parameter(np.zeros(H), "fc1.b", decay=False)
        self.W2 = Parameter(np.zeros((H, K)), "fc2.W")
        self.b2 = Parameter(np.zeros(K), "fc2.b", decay=False)

    def forward(self, x):
        """x (N, ...) -> scores (N, K). Flatten x to (N, D); keep every intermediate on
        ``self`` (the pre-activation z1, the hidden h1, ...): backward needs them, and
        `dlx check` compares each with dlx's to point at the first that differs."""
        raise NotImplementedError("TwoLayerNet.forward")

    def backward(self, dout):
        """dout = dL/dscores (N, K). **Add** every parameter's gradient into its ``.grad``
        (+=) and return dL/dx, shaped as the x forward was given.

        Derive it backwards through the graph, scores <- h1 <- z1 <- x, one node at a time;
        keep the gradients you compute on ``self`` (dh1, dz1): `dlx check` then names the
        first wrong one."""
        raise NotImplementedError("TwoLayerNet.backward")
'''

_MLP = '''"""Exercise mlp: a multilayer perceptron of any depth, for function approximation.

Check it:  dlx check model=my_mlp
Run it:    {run}
"""

import numpy as np

from dlx.nn import Module, Parameter


class MLP(Module):
    """scores = act(... act(x W1 + b1) ...) WL + bL: len(hidden) hidden layers, each a Linear
    then the activation, and a Linear output (no activation: a regression's prediction, or a
    classifier's logits). x (N, D) (images flattened first), K = spec.n_out.

    Args:
        spec: the data's description: ``spec.shape`` one input's shape, ``spec.n_out``.
        hidden: the hidden layers' widths, e.g. [32, 32].
        activation: ``tanh`` or ``relu``, after every hidden Linear.
    """

    def __init__(self, spec, hidden=(32, 32), activation="tanh"):
        if activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be tanh or relu, got {{activation!r}}")
        self.activation = activation
        sizes = [int(np.prod(spec.shape)), *map(int, hidden), spec.n_out]
        self.L = len(sizes) - 1
        for i in range(1, self.L + 1):  # fc1.W, fc1.b, fc2.W, ...: dlx's order, for the check
            setattr(self, f"W{{i}}", Parameter(np.zeros((sizes[i - 1], sizes[i])), f"fc{{i}}.W"))
            setattr(self, f"b{{i}}", Parameter(np.zeros(sizes[i]), f"fc{{i}}.b", decay=False))

    def forward(self, x):
        """x (N, ...) -> scores (N, K): a loop over the layers (``getattr(self, f"W{{i}}")``).
        Keep what backward needs on ``self`` (each layer's input and output, in lists)."""
        raise NotImplementedError("MLP.forward")

    def backward(self, dout):
        """dout = dL/dscores (N, K) -> dL/dx, shaped as the x forward was given. **Add** every
        parameter's gradient into its ``.grad`` (+=).

        The same loop backwards: at each layer, dW = (its input)^T g, db = g summed over the
        batch, then the gradient passed down, g W^T, through the activation below it (tanh's
        derivative written with its output, relu's with its mask)."""
        raise NotImplementedError("MLP.backward")
'''


# ++: the sweep's base config holds the default model (logreg), which has no hidden to set
_MLP_RUN = ("dlx run -m model=mlp,my_mlp dataset=function ++model.hidden=[32,32] "
            "++model.activation=tanh init=xavier_normal optimizer=adam optimizer.lr=0.01 "
            "epochs=100 seed=0")

_LENET = '''"""Exercise lenet: LeNet-5, a CNN made of convolution, pooling and fully connected layers.

Check it:  dlx check model=my_lenet
Run it:    dlx run -m model=cnn,my_lenet dataset=mnist epochs=2 seed=0
           (its option file, like dlx's cnn, picks MNIST and He's init)
"""

import numpy as np

from dlx.nn import Linear, Module, ReLU
from dlx.nn.conv import Conv2d, MaxPool2d


def _side(n, kernel, padding):
    """A side of the map after a k x k convolution (stride 1) and a 2 x 2 pool."""
    return (n + 2 * padding - kernel + 1) // 2


class LeNet(Module):
    """[conv k x k -> ReLU -> 2 x 2 max pool] per entry of ``channels``, the maps flattened,
    [Linear -> ReLU] per entry of ``hidden``, then a Linear to the classes: dlx's cnn. On MNIST
    (1 x 28 x 28) with the defaults: 6 maps 28 x 28 (padding 2) -> 14 x 14 -> 16 maps 10 x 10 ->
    5 x 5 -> 400 numbers -> 120 -> 84 -> 10 scores.

    The layers are dlx's (or yours, from the conv and linear exercises): each keeps its own
    cache, and its backward adds its weights' gradients and returns its input's. What you
    write is the model: the layers in order, and the flatten between the maps and the vectors
    (forward and backward).

    Args:
        spec: the data's description: ``spec.shape`` one image's (C, H, W), ``spec.n_out``.
        channels: the maps of each conv block.
        kernel: k, the convolutions' size.
        padding: the zeros around each side, one per conv block.
        hidden: the widths of the fully connected layers before the output.
    """

    def __init__(self, spec, channels=(6, 16), kernel=5, padding=(2, 0), hidden=(120, 84)):
        c, h, w = spec.shape
        self.convs, self.relus, self.pools = [], [], []  # conv1, conv2, ...: dlx's order
        for i, (f, p) in enumerate(zip(channels, padding)):
            self.convs.append(Conv2d(c, f, kernel, 1, p, dtype=np.float64, name=f"conv{i + 1}"))
            self.relus.append(ReLU())
            self.pools.append(MaxPool2d(2))
            c, h, w = f, _side(h, kernel, p), _side(w, kernel, p)
        sizes = [c * h * w, *hidden, spec.n_out]
        self.fcs = [Linear(a, b, dtype=np.float64, name=f"fc{i + 1}")
                    for i, (a, b) in enumerate(zip(sizes, sizes[1:]))]
        self.fc_relus = [ReLU() for _ in hidden]

    def forward(self, x):
        """x (N, C, H, W) -> scores (N, K): each conv block's conv, ReLU and pool, then
        the maps flattened to (N, c h w), then the fully connected layers (a ReLU after each
        but the last). Keep on ``self`` what backward needs (the maps' shape before the
        flatten)."""
        raise NotImplementedError("LeNet.forward")

    def backward(self, dout):
        """dout = dL/dscores (N, K) -> dL/dx (N, C, H, W): every layer's backward in the
        reverse order, the flatten's backward (a reshape back to the maps' shape) between the
        two parts. The layers add their weights' gradients themselves."""
        raise NotImplementedError("LeNet.backward")
'''


_ATTENTION = '''"""Exercise attention: multi-head causal self-attention, forward and backward.

Check it:  dlx check layer=mine.attention.SelfAttention
Use it:    in a transformer block of yours (conf/model/), as nanoGPT's CausalSelfAttention.
"""

import numpy as np

from dlx.nn import Module, Parameter


class SelfAttention(Module):
    """y = concat_h softmax(q_h k_h^T / sqrt(D) + mask) v_h, then an output projection, for x
    of shape (B, T, C), C = H * D (H heads of width D). Position t attends to s <= t only.

    The q, k and v projections are one matrix, as nanoGPT's ``c_attn``: qkv = x W_qkv + b_qkv
    is (B, T, 3C), q its first C columns, k the next C, v the last C; head h of q is columns
    h*D .. (h+1)*D - 1 of q. Then out = y W_o + b_o.

    Args:
        d_model: C.
        n_heads: H (C must be a multiple of it).
        dtype: the parameters' dtype.
        name: the prefix of the parameters' names.
    """

    def __init__(self, d_model, n_heads, dtype=np.float64, name="attn"):
        C = d_model
        self.n_heads = n_heads
        self.W_qkv = Parameter(np.zeros((C, 3 * C), dtype=dtype), f"{name}.qkv.W")
        self.b_qkv = Parameter(np.zeros(3 * C, dtype=dtype), f"{name}.qkv.b", decay=False)
        self.W_o = Parameter(np.zeros((C, C), dtype=dtype), f"{name}.proj.W")
        self.b_o = Parameter(np.zeros(C, dtype=dtype), f"{name}.proj.b", decay=False)

    def forward(self, x):
        """(B, T, C) -> (B, T, C). Per head: scores = q k^T / sqrt(D) (B, H, T, T); -inf where
        s > t (the future); softmax over s; then att @ v, the heads side by side again, and the
        output projection. Keep on ``self`` what backward needs (the weights att, q, k, v, ...):
        `dlx check` compares them with dlx's to point at the first that differs."""
        raise NotImplementedError("SelfAttention.forward")

    def backward(self, dout):
        """dout = dL/dout (B, T, C). **Add** each parameter's gradient into its ``.grad`` (+=)
        and return dL/dx, (B, T, C).

        Go back through the graph one node at a time: the output projection, att @ v (a
        gradient for att and one for v), the softmax (its Jacobian for one row is
        diag(a) - a a^T: apply it without building it), the 1/sqrt(D), q k^T (gradients for q
        and k), and the qkv projection, x reaching it once for all three."""
        raise NotImplementedError("SelfAttention.backward")
'''

_LSTM = '''"""Exercise lstm: one step of an LSTM cell, forward and backward (the unit of BPTT).

Check it:  dlx check layer=mine.lstm.LSTMCell
Use it:    unrolled over a sequence in a model of yours (conf/model/): backward through time
           runs the steps' backward in reverse, carrying dstate0 to the step before.
"""

import numpy as np

from dlx.nn import Module, Parameter


class LSTMCell(Module):
    """One LSTM step (torch's layout: the four gate blocks stacked along the rows, i, f, g, o)::

        [a_i, a_f, a_g, a_o] = x W_ih^T + b_ih + h W_hh^T + b_hh      (each (B, H))
        i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o);  g = tanh(a_g)
        c' = f * c + i * g;   h' = o * tanh(c')

    Args:
        input_size: I, features of x.
        hidden_size: H, the state's width.
        dtype: the parameters' dtype.
        name: the prefix of the parameters' names.
    """

    def __init__(self, input_size, hidden_size, dtype=np.float64, name="lstm"):
        H, I = hidden_size, input_size
        self.weight_ih = Parameter(np.zeros((4 * H, I), dtype=dtype), f"{name}.weight_ih")
        self.weight_hh = Parameter(np.zeros((4 * H, H), dtype=dtype), f"{name}.weight_hh")
        self.bias_ih = Parameter(np.zeros(4 * H, dtype=dtype), f"{name}.bias_ih", decay=False)
        self.bias_hh = Parameter(np.zeros(4 * H, dtype=dtype), f"{name}.bias_hh", decay=False)

    def forward(self, x, state):
        """x (B, I), state the pair (h, c), each (B, H) -> the new pair (h', c'). Keep on
        ``self`` what backward needs (the gates, c', tanh(c'), x, h, c): `dlx check` compares
        them with dlx's to point at the first that differs."""
        raise NotImplementedError("LSTMCell.forward")

    def backward(self, dstate):
        """dstate = (dL/dh', dL/dc') -> dL/dx (B, I). **Add** each weight's gradient into its
        ``.grad`` (+=), and set ``self.dstate0 = (dL/dh, dL/dc)``: the gradient of the state
        forward was given, which BPTT carries to the step before.

        c' reaches the loss twice (directly, and through h' = o tanh(c')): add both before
        going into the gates. Then one gradient per gate block, each through its own
        nonlinearity, stacked in the order i, f, g, o like the weights' rows."""
        raise NotImplementedError("LSTMCell.backward")
'''

_CONV = '''"""Exercise conv: a 2-D convolution layer and max pooling, forward and backward (cs231n's).

Check them:  dlx check layer=mine.conv.Conv2d
             dlx check layer=mine.conv.MaxPool2d
Use them:    in a CNN of yours (conf/model/), as LeNet's conv -> ReLU -> pool.
"""

import numpy as np

from dlx.nn import Module, Parameter


class Conv2d(Module):
    """out[n, f, i, j] = b[f] + sum over c, di, dj of W[f, c, di, dj] * xp[n, c, i*s + di, j*s + dj]
    for x (N, C, H, W), xp it padded with p zeros on each side of H and W, W (F, C, k, k) as
    torch's: a cross-correlation (the kernel is not flipped). The output is (N, F, Ho, Wo) with
    Ho = (H + 2p - k) // s + 1 (and Wo alike).

    Args:
        in_channels: C.
        out_channels: F.
        kernel_size: k (square kernels).
        stride: s.
        padding: p.
        dtype: the parameters' dtype.
        name: the prefix of the parameters' names.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dtype=np.float64, name="conv"):
        k = kernel_size
        self.stride, self.padding = stride, padding
        self.W = Parameter(np.zeros((out_channels, in_channels, k, k), dtype=dtype), f"{name}.W")
        self.b = Parameter(np.zeros(out_channels, dtype=dtype), f"{name}.b", decay=False)

    def forward(self, x):
        """(N, C, H, W) -> (N, F, Ho, Wo). Loops over the output positions are fine (cs231n's
        naive version); keep on ``self`` what backward needs (the padded x)."""
        raise NotImplementedError("Conv2d.forward")

    def backward(self, dout):
        """dout (N, F, Ho, Wo) -> dx (N, C, H, W). **Add** dW and db into ``self.W.grad`` and
        ``self.b.grad`` (+=).

        Each output position used one window of xp: it adds dout * W to that window's dxp and
        dout * window to dW. Overlapping windows sum; drop the padding from dxp at the end."""
        raise NotImplementedError("Conv2d.backward")


class MaxPool2d(Module):
    """The largest value of each k x k window, windows every s positions (no padding).

    Args:
        kernel_size: k.
        stride: s (default k: windows that do not overlap).
    """

    def __init__(self, kernel_size, stride=None):
        self.k, self.stride = kernel_size, stride or kernel_size

    def forward(self, x):
        """(N, C, H, W) -> (N, C, Ho, Wo), Ho = (H - k) // s + 1. Keep what backward needs."""
        raise NotImplementedError("MaxPool2d.forward")

    def backward(self, dout):
        """dout (N, C, Ho, Wo) -> dx (N, C, H, W): the derivative of a max is 1 at the position
        that held it and 0 elsewhere; overlapping windows (s < k) add up."""
        raise NotImplementedError("MaxPool2d.backward")
'''

_RNN = '''"""Exercise rnn: one step of an Elman RNN and of a GRU, forward and backward (the units of BPTT).

Check them:  dlx check layer=mine.rnn.RNNCell
             dlx check layer=mine.rnn.GRUCell
Use them:    unrolled over a sequence in a model of yours (conf/model/): backward through time
             runs the steps' backward in reverse, carrying dstate0 to the step before.
"""

import numpy as np

from dlx.nn import Module, Parameter


def _weights(cell, gates, input_size, hidden_size, dtype, name):
    """torch's layout: the gate blocks stacked along the rows (shared by both cells)."""
    G, H, I = gates, hidden_size, input_size
    cell.weight_ih = Parameter(np.zeros((G * H, I), dtype=dtype), f"{name}.weight_ih")
    cell.weight_hh = Parameter(np.zeros((G * H, H), dtype=dtype), f"{name}.weight_hh")
    cell.bias_ih = Parameter(np.zeros(G * H, dtype=dtype), f"{name}.bias_ih", decay=False)
    cell.bias_hh = Parameter(np.zeros(G * H, dtype=dtype), f"{name}.bias_hh", decay=False)


class RNNCell(Module):
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh), x (B, I), h (B, H).

    Args:
        input_size: I.
        hidden_size: H.
        dtype: the parameters' dtype.
        name: the prefix of the parameters' names.
    """

    def __init__(self, input_size, hidden_size, dtype=np.float64, name="rnn"):
        _weights(self, 1, input_size, hidden_size, dtype, name)

    def forward(self, x, h):
        """x (B, I), h (B, H) -> h' (B, H). Keep on ``self`` what backward needs."""
        raise NotImplementedError("RNNCell.forward")

    def backward(self, dh):
        """dh = dL/dh' -> dL/dx (B, I). **Add** each weight's gradient into its ``.grad`` and
        set ``self.dstate0 = dL/dh``, what BPTT carries to the step before. Write tanh's
        derivative with the output h' (kept from forward)."""
        raise NotImplementedError("RNNCell.backward")


class GRUCell(Module):
    """One GRU step, torch's form (gate blocks r, z, n along the rows)::

        a = x W_ih^T + b_ih;  b = h W_hh^T + b_hh            (each (B, 3H): blocks r, z, n)
        r = sigmoid(a_r + b_r);  z = sigmoid(a_z + b_z)
        n = tanh(a_n + r * b_n)          (the reset gate multiplies W_hn h + b_hn)
        h' = (1 - z) * n + z * h

    Args: as RNNCell's.
    """

    def __init__(self, input_size, hidden_size, dtype=np.float64, name="gru"):
        _weights(self, 3, input_size, hidden_size, dtype, name)

    def forward(self, x, h):
        """x (B, I), h (B, H) -> h' (B, H). Keep on ``self`` what backward needs (r, z, n,
        b_n, h): `dlx check` compares them with dlx's to point at the first that differs."""
        raise NotImplementedError("GRUCell.forward")

    def backward(self, dh):
        """dh = dL/dh' -> dL/dx (B, I). **Add** each weight's gradient into its ``.grad`` and
        set ``self.dstate0 = dL/dh``. h reaches h' twice (through z * h and through the gates'
        recurrent parts b = h W_hh^T + b_hh), and b_n enters multiplied by r: its gradient
        differs from a_n's."""
        raise NotImplementedError("GRUCell.backward")
'''

_SOFTMAX = '''"""Exercise softmax: softmax over the last axis, forward and backward.

Check it:  dlx check layer=mine.softmax.Softmax
Use it:    in a model of yours (conf/model/), or inside your attention.
"""

import numpy as np  # noqa: F401 - for your forward and backward

from dlx.nn import Module


class Softmax(Module):
    """y = exp(x) / sum exp(x), each row (the last axis) on its own: x (N, K) -> y (N, K)."""

    def forward(self, x):
        """Keep on ``self`` what backward needs. An exp of a large input overflows: the
        softmax of x - c is the softmax of x for any c per row; choose c well."""
        raise NotImplementedError("Softmax.forward")

    def backward(self, dout):
        """dL/dx, shaped as x. Each y_i depends on every x_j of its row: derive d y_i / d x_j,
        then apply that Jacobian to dout row by row without building it."""
        raise NotImplementedError("Softmax.backward")
'''

_BATCHNORM = '''"""Exercise batchnorm: batch normalization of (N, D) features (Ioffe & Szegedy 2015).

Check it:  dlx check layer=mine.batchnorm.BatchNorm
Use it:    in a model of yours (conf/model/), between a Linear and its activation.
"""

import numpy as np

from dlx.nn import Module, Parameter


class BatchNorm(Module):
    """Normalize each feature over the batch, then scale and shift it: gamma * xhat + beta.

    Args:
        n: the features D (x is (N, D)).
        eps: added to the variance inside the square root.
        momentum: the newest batch's weight in the running estimates (torch's convention).
        dtype: the parameters' dtype.
        name: the prefix of the parameters' names.
    """

    def __init__(self, n, eps=1e-5, momentum=0.1, dtype=np.float64, name="bn"):
        self.eps, self.momentum = eps, momentum
        self.gamma = Parameter(np.ones(n, dtype=dtype), f"{name}.gamma", decay=False)
        self.beta = Parameter(np.zeros(n, dtype=dtype), f"{name}.beta", decay=False)
        self.running_mean = np.zeros(n, dtype=dtype)  # what eval mode normalizes with
        self.running_var = np.ones(n, dtype=dtype)

    def forward(self, x):
        """(N, D) -> (N, D). In training (``self.training``)::

            mu = mean of x over the batch;  var = mean of (x - mu)^2   (divide by N)
            xhat = (x - mu) / sqrt(var + eps);  out = gamma * xhat + beta
            running_mean <- (1 - momentum) * running_mean + momentum * mu
            running_var  <- (1 - momentum) * running_var + momentum * var * N / (N - 1)

        (update the running arrays in place: ``self.running_mean[...] = ...``; gamma's array
        is ``self.gamma.data``, its gradient ``self.gamma.grad``). In eval mode
        (after ``.eval()``) mu and var are the running estimates and nothing is updated.
        Keep on ``self`` what backward needs."""
        raise NotImplementedError("BatchNorm.forward")

    def backward(self, dout):
        """dout = dL/dout, (N, D). **Add** dL/dgamma and dL/dbeta into ``self.gamma.grad`` and
        ``self.beta.grad``, and return dL/dx, shaped as x.

        Derive dx through the graph: xhat depends on x directly and through mu and var, and
        both depend on every x of the batch (cs231n's computational graph, or the compact
        form in terms of g = dout * gamma and xhat). In eval mode mu and var are constants."""
        raise NotImplementedError("BatchNorm.backward")
'''

_DROPOUT = '''"""Exercise dropout: inverted dropout (Srivastava et al. 2014).

Check it:  dlx check layer=mine.dropout.Dropout
Use it:    in a model of yours (conf/model/), after a hidden layer's activation.
"""

import numpy as np  # noqa: F401 - for your forward and backward

from dlx.nn import Module


class Dropout(Module):
    """Training: each entry kept with probability keep_prob and scaled by 1 / keep_prob, so
    that E[out] = x; eval: the identity.

    Args:
        keep_prob: the probability of keeping an entry, in (0, 1].
        rng: the generator to draw the masks with (numpy's Generator, seeded by the run).
    """

    def __init__(self, keep_prob, rng):
        self.keep_prob, self.rng = keep_prob, rng

    def forward(self, x):
        """x of any shape -> out shaped as x. In training (``self.training``) draw a new mask
        m ~ Bernoulli(keep_prob) per entry from ``self.rng`` (``self.rng.random(x.shape)``
        is uniform on [0, 1)) and return x * m / keep_prob; in eval mode return x.
        Keep on ``self`` what backward needs; never change x in place."""
        raise NotImplementedError("Dropout.forward")

    def backward(self, dout):
        """dL/dx, shaped as x: derive it from out = x * m / keep_prob with the forward's m.
        In eval mode, out = x."""
        raise NotImplementedError("Dropout.backward")
'''

_BPTT = '''"""Exercise bptt: an Elman RNN over a whole sequence, forward and backpropagation through time.

Check it:  dlx check layer=mine.bptt.RNN
           (an LSTM or a GRU over a sequence of yours is checked alike: dlx check layer=...LSTM)
Use it:    in a model of yours (conf/model/), e.g. on dataset=adding (experiment rnn_adding).
"""

import numpy as np

from dlx.nn import Module, Parameter


class RNN(Module):
    """h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) for t = 1 .. T, from h_0 = 0;
    the output is every h_t: x (B, T, I) -> out (B, T, H) (torch.nn.RNN with batch_first).

    Args:
        input_size: I, features per step.
        hidden_size: H, the state's width.
        dtype: the parameters' dtype.
        name: the prefix of the parameters' names.
    """

    def __init__(self, input_size, hidden_size, dtype=np.float64, name="rnn"):
        H, I = hidden_size, input_size
        self.weight_ih = Parameter(np.zeros((H, I), dtype=dtype), f"{name}.weight_ih")
        self.weight_hh = Parameter(np.zeros((H, H), dtype=dtype), f"{name}.weight_hh")
        self.bias_ih = Parameter(np.zeros(H, dtype=dtype), f"{name}.bias_ih", decay=False)
        self.bias_hh = Parameter(np.zeros(H, dtype=dtype), f"{name}.bias_hh", decay=False)

    def forward(self, x):
        """(B, T, I) -> (B, T, H), a loop over t. Keep on ``self`` what backward needs: every
        h_t, h_0 included (step t's backward needs the state it made and the one it was given)."""
        raise NotImplementedError("RNN.forward")

    def backward(self, dout):
        """dout = dL/dout (B, T, H) -> dL/dx (B, T, I). **Add** each weight's gradient into
        its ``.grad`` (+=).

        h_t reaches the loss twice: through out[:, t] and through h_{t+1}. So go back in time
        from the last step, carrying dh_next (zero after the last step): the gradient reaching
        h_t is dout[:, t] + dh_next; through the tanh (its derivative written with h_t); then
        step t's shares of the weights' gradients (the weights are shared by every step: sum
        them over t), its dx_t, and the dh_next it sends to step t - 1."""
        raise NotImplementedError("RNN.backward")
'''

_RESIDUAL = '''"""Exercise residual: a residual block, y = x + F(x) (He et al. 2016), forward and backward.

Check it:  dlx check layer=mine.residual.ResidualBlock
Use it:    in a deep MLP of yours (conf/model/), beside the same layers without the skip
           (experiment resnet shows what the skip does to a deep net's gradients).
"""

import numpy as np

from dlx.nn import Linear, Module, ReLU


class ResidualBlock(Module):
    """y = x + F(x) with F = Linear(d, hidden) -> ReLU -> Linear(hidden, d): the branch learns
    a correction to the identity. x (N, d) -> y (N, d).

    The layers are dlx's (or yours, from the linear exercise): each keeps its own cache and
    its backward adds its weights' gradients. What you write is the sum and its gradient.

    Args:
        d: the features of x (and of y).
        hidden: the branch's width.
        dtype: the parameters' dtype.
        name: the prefix of the parameters' names.
    """

    def __init__(self, d, hidden, dtype=np.float64, name="res"):
        self.fc1 = Linear(d, hidden, dtype=dtype, name=f"{name}.fc1")
        self.relu = ReLU()
        self.fc2 = Linear(hidden, d, dtype=dtype, name=f"{name}.fc2")

    def forward(self, x):
        """(N, d) -> (N, d): each layer's forward in turn, then the sum."""
        raise NotImplementedError("ResidualBlock.forward")

    def backward(self, dout):
        """dout = dL/dy (N, d) -> dL/dx (N, d).

        x reaches y twice, through the branch and directly: dL/dx is the sum of the two paths'
        gradients (the layers' backward in reverse order for the branch). Then ask: with this
        path in every block of a deep net, what is the smallest gradient the first block gets?"""
        raise NotImplementedError("ResidualBlock.backward")
'''

_BLOCK = '''"""Exercise block: a transformer block, pre-LN as GPT-2, forward and backward.

Check it:  dlx check layer=mine.block.Block
Use it:    stacked in a language model of yours (conf/model/), as experiment transformer does.
"""

import numpy as np

from dlx.nn import Module
from dlx.nn.attention import MultiHeadAttention
from dlx.nn.norm import LayerNorm
from dlx.nn.transformer import FeedForward


class Block(Module):
    """h = x + attn(ln1(x));  y = h + mlp(ln2(h)), x (B, T, C) -> y (B, T, C), C = d_model.

    The layers are dlx's: attn a causal multi-head self-attention (or yours, from the attention
    exercise: ``from mine.attention import SelfAttention``, built alike), mlp Linear(C, d_ff) ->
    GELU -> Linear(d_ff, C). Each keeps its own cache and adds its weights' gradients. What you
    write is how they are joined: the order, the two residual sums, and the gradients that flow
    around each branch.

    Args:
        d_model: C.
        n_heads: the attention's heads (C a multiple of it).
        d_ff: the MLP's hidden width (4 C in GPT-2).
        dtype: the parameters' dtype.
        name: the prefix of the parameters' names.
    """

    def __init__(self, d_model, n_heads, d_ff, dtype=np.float64, name="block"):
        self.ln1 = LayerNorm(d_model, dtype=dtype, name=f"{name}.ln1")
        self.attn = MultiHeadAttention(d_model, n_heads, dtype=dtype, name=f"{name}.attn")
        self.ln2 = LayerNorm(d_model, dtype=dtype, name=f"{name}.ln2")
        self.mlp = FeedForward(d_model, d_ff, dtype=dtype, name=f"{name}.mlp")

    def forward(self, x):
        """(B, T, C) -> (B, T, C): each sublayer reads the normalised residual stream, and its
        output is added back to the stream."""
        raise NotImplementedError("Block.forward")

    def backward(self, dout):
        """dout = dL/dy (B, T, C) -> dL/dx (B, T, C).

        Backward in reverse order: h reaches y directly and through ln2 and the MLP, so dL/dh is
        the sum of both; x reaches h directly and through ln1 and the attention, likewise. A
        sublayer's backward returns the gradient of its input (and keeps its weights')."""
        raise NotImplementedError("Block.backward")
'''

_DROPCONNECT = '''"""Exercise dropconnect: DropConnect (Wan et al. 2013), a Linear whose weights are dropped.

Check it:  dlx check layer=mine.dropconnect.DropConnectLinear
Use it:    in a model of yours (conf/model/) where a Linear stands; dlx's own is model.dropconnect=true
           in experiment dropout.
"""

import numpy as np

from dlx.nn import Module, Parameter


class DropConnectLinear(Module):
    """Training: out = x (W * M / keep_prob) + b, M ~ Bernoulli(keep_prob) per weight, one M
    per forward (for the whole mini-batch); eval: out = x W + b. W is (in, out); the bias is
    never dropped.

    Args:
        in_features: the features of x.
        out_features: the features of out.
        keep_prob: the probability of keeping a weight, in (0, 1].
        rng: the generator to draw the masks with (numpy's Generator, seeded by the run).
        dtype: the parameters' dtype.
        name: the prefix of the parameters' names.
    """

    def __init__(self, in_features, out_features, keep_prob, rng, dtype=np.float64, name="fc"):
        self.keep_prob, self.rng = keep_prob, rng
        self.W = Parameter(np.zeros((in_features, out_features), dtype=dtype), f"{name}.W")
        self.b = Parameter(np.zeros(out_features, dtype=dtype), f"{name}.b", decay=False)

    def forward(self, x):
        """(N, in) -> (N, out). In training (``self.training``) draw M from ``self.rng``
        (``self.rng.random(W.shape)`` is uniform on [0, 1)); in eval mode use W as it is. Keep
        on ``self`` what backward needs (x, and the weights the forward used)."""
        raise NotImplementedError("DropConnectLinear.forward")

    def backward(self, dout):
        """dout = dL/dout (N, out) -> dL/dx (N, in). **Add** dL/dW and dL/db into ``.grad``.

        The forward was x W_eff + b with W_eff = W * M / keep_prob fixed: derive dx and
        dL/dW_eff as for a Linear, then dL/dW from W_eff = W * M / keep_prob (what is the
        gradient of a weight that was dropped?)."""
        raise NotImplementedError("DropConnectLinear.backward")
'''

_SPATIAL = '''"""Exercise dropout2d: spatial dropout (Tompson et al. 2015), inverted, on (N, C, H, W) maps.

Check it:  dlx check layer=mine.dropout2d.Dropout2d
Use it:    in a CNN of yours (conf/model/), after a convolution's activation.
"""

import numpy as np  # noqa: F401 - for your forward and backward

from dlx.nn import Module


class Dropout2d(Module):
    """Training: whole channel maps are kept or dropped, m ~ Bernoulli(keep_prob) per
    (example, channel), the kept maps scaled by 1 / keep_prob; eval: the identity.

    Neighbouring pixels of one map are strongly correlated: dropping single pixels hardly
    removes information (the neighbours carry it), dropping the whole map does.

    Args:
        keep_prob: the probability of keeping a map, in (0, 1].
        rng: the generator to draw the masks with (numpy's Generator, seeded by the run).
    """

    def __init__(self, keep_prob, rng):
        self.keep_prob, self.rng = keep_prob, rng

    def forward(self, x):
        """x (N, C, H, W) -> out shaped as x. In training draw the mask from ``self.rng``
        with the shape that makes one draw per (example, channel) and let broadcasting spread it
        over H and W; in eval mode return x. Keep what backward needs; never change x in place."""
        raise NotImplementedError("Dropout2d.forward")

    def backward(self, dout):
        """dL/dx, shaped as x, through the forward's own mask. In eval mode, dout."""
        raise NotImplementedError("Dropout2d.backward")
'''


EXERCISES: dict[str, Exercise] = {e.name: e for e in [
    *_optimizers(), *_losses(), *_activations(), *_schedules(), *_penalties(), *_inits(),
    Exercise("logreg", "model", "logreg", "LogisticRegression",
             "logistic regression from scratch, logits = x W + b", "logreg",
             "dlx run -m experiment=logreg model=logreg,my_logreg seed=0", _LOGREG),
    Exercise("linreg", "model", "linreg", "LinearRegression",
             "the perceptron on house prices, y_hat = x W + b", "house_prices",
             "dlx run -m model=linreg,my_linreg dataset=function optimizer=sgd optimizer.lr=0.1 "
             "seed=0", _LINREG),
    Exercise("mlp", "model", "mlp", "MLP", "an MLP of any depth, for function approximation",
             "function_approx", _MLP_RUN, _MLP.format(run=_MLP_RUN),
             {"hidden": [32, 32], "activation": "tanh"}),
    Exercise("lenet", "model", "cnn", "LeNet", "LeNet-5, a CNN of conv, pool and linear layers",
             "cnn", "dlx run -m model=cnn,my_lenet dataset=mnist epochs=2 seed=0", _LENET,
             {"channels": [6, 16], "kernel": 5, "padding": [2, 0], "hidden": [120, 84]},
             defaults=("override /init@_global_.init: he_normal   # as dlx's cnn: fans of a "
                       "kernel", "override /dataset@_global_.dataset: mnist")),
    Exercise("two_layer_net", "model", "mlp", "TwoLayerNet",
             "a 2-layer ReLU net, vectorized forward and backward", "mnist_mlp",
             "dlx run -m experiment=mnist_mlp model=mlp,my_two_layer_net", _TWO_LAYER,
             {"hidden": [64]}),
    Exercise("linear", "layer", "linear", "Linear", "a fully connected layer, x W + b",
             "mnist_mlp", None, _LINEAR),
    Exercise("attention", "layer", "attention", "SelfAttention",
             "multi-head causal self-attention", "transformer", None, _ATTENTION),
    Exercise("lstm", "layer", "lstm", "LSTMCell",
             "one LSTM step, forward and backward (the unit of BPTT)", "rnn_memory", None, _LSTM),
    Exercise("bptt", "layer", "rnn", "RNN",
             "an Elman RNN over a sequence, backprop through time", "bptt_gradients",
             None, _BPTT),
    Exercise("residual", "layer", "residual", "ResidualBlock",
             "a residual block, y = x + F(x)", "resnet", None, _RESIDUAL),
    Exercise("block", "layer", "block", "Block", "a transformer block (pre-LN, as GPT-2)",
             "transformer", None, _BLOCK),
    Exercise("conv", "layer", "conv", "Conv2d", "2-D convolution and max pooling (two layers)",
             "cnn", None, _CONV, also=("MaxPool2d",)),
    Exercise("rnn", "layer", "rnn", "RNNCell", "an Elman RNN step and a GRU step (BPTT's units)",
             "rnn_memory", None, _RNN, also=("GRUCell",)),
    Exercise("softmax", "layer", "softmax", "Softmax", "softmax over the last axis",
             "activations", None, _SOFTMAX),
    Exercise("batchnorm", "layer", "batchnorm", "BatchNorm",
             "batch normalization, training and eval modes", "batchnorm", None, _BATCHNORM),
    Exercise("dropout", "layer", "dropout", "Dropout", "inverted dropout",
             "dropout", None, _DROPOUT),
    Exercise("dropconnect", "layer", "dropconnect", "DropConnectLinear",
             "DropConnect: a Linear whose weights are dropped", "dropout", None, _DROPCONNECT),
    Exercise("dropout2d", "layer", "dropout2d", "Dropout2d",
             "spatial dropout: whole channel maps dropped", "dropout", None, _SPATIAL)]}


# --- start and status -------------------------------------------------------------------------

def get(name: str) -> Exercise:
    if name not in EXERCISES:
        import difflib

        close = difflib.get_close_matches(name, EXERCISES, n=1)
        raise UsageError(f"no exercise {name!r}" + (f" (did you mean {close[0]}?)" if close
                                                     else "")
                         + f"; `dlx exercise list` shows them ({', '.join(EXERCISES)})")
    return EXERCISES[name]


def files(ex: Exercise) -> dict[str, str]:
    """What `start` writes: workspace-relative path -> text."""
    out = {ex.module: ex.code}
    if ex.config:
        out[ex.config] = ex.config_text()
    return out


def start(ws: Path, name: str) -> list[Path]:
    """Write ``name``'s stub and option file into the workspace ``ws``; refuse (writing
    nothing) when either exists: the learner's work is never overwritten."""
    ex = get(name)
    todo = {ws / rel: text for rel, text in files(ex).items()}
    there = [p for p in todo if p.exists() or p.is_symlink()]
    if there:
        raise UsageError(f"{there[0]} exists: `dlx exercise start {name}` writes nothing over "
                         f"your files ({ex.check} checks what is there)")
    written = []
    try:
        for path, text in todo.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "x", encoding="utf-8") as f:  # "x": never over a file that appeared
                f.write(text)
            written.append(path)
    except OSError as e:
        for path in written:  # all or nothing
            path.unlink(missing_ok=True)
        raise UsageError(f"cannot write {e.filename or ws}: {e.strerror or e}") from None
    return written


def status(ws: Path, ex: Exercise) -> str:
    """"not started", "not implemented yet", "not checked" (since its last change), "failing
    at stage N ..." or "passing", for the file as it is now."""
    from dlx.checks import store

    path = ws / ex.module
    if not path.is_file():
        return "not started"
    data = path.read_bytes()
    if data == ex.code.encode():
        return NOT_IMPLEMENTED
    said = [_said(store.lookup(ws, ex.module, cls, store.digest(data)), cls, ex)
            for cls in (ex.cls, *ex.also)]
    order = ("raises an exception", NOT_IMPLEMENTED, "failing", "not checked", "passing")
    return min(said, key=lambda s: next(i for i, o in enumerate(order) if s.startswith(o)))


def _said(found: dict | None, cls: str, ex: Exercise) -> str:
    """One class's status (named when the exercise has several)."""
    who = f" ({cls})" if ex.also else ""
    if found is None:
        return "not checked" + who
    if found["passed"]:
        return "passing"
    stage = found.get("stage") or ""
    if stage == NOT_IMPLEMENTED:
        return NOT_IMPLEMENTED + who
    if stage == "your code raised":
        return "raises an exception" + who
    return f"failing at stage {stage}{who}"
