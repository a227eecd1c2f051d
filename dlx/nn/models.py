"""Models by name: ``factory(spec, *, dtype, rng, **options) -> Module`` giving logits (or,
for regression data, ``spec.n_out`` real outputs: one per target).

``spec`` describes one example (a :class:`dlx.data.spec.DataSpec`: its ``kind``, input
``shape``, ``n_classes`` and ``n_out`` logits); a factory builds its first and last layers from
it and declares the kinds it reads in ``factory.reads`` (default: feature vectors). ``rng``
feeds the model's own randomness (dropout masks), not the initial weights.
"""

from __future__ import annotations

import numpy as np

from dlx.nn.activations import ACTIVATIONS
from dlx.nn.convnets import cnn, plain, resnet
from dlx.nn.core import Module, Sequential
from dlx.nn.dropout import DropConnectLinear, Dropout, check_keep
from dlx.nn.layers import Flatten, Linear
from dlx.nn.norm import BatchNorm, LayerNorm
from dlx.nn.residual import Residual


def _flat(spec) -> list[Module]:
    """Images enter a fully connected model as vectors of C*H*W numbers."""
    return [Flatten()] if spec.kind == "image" else []


def logreg(spec, *, dtype=np.float32, rng=None) -> Module:
    """Logistic regression: logits = x W + b (one output for 2 classes, else one per class)."""
    if spec.task == "regression":
        raise ValueError("logreg predicts classes; for real-valued targets use linreg")
    linear = Linear(spec.size, spec.n_out, dtype=dtype, name="linear", input_grad=False)
    return Sequential(*_flat(spec), linear) if spec.kind == "image" else linear


def linreg(spec, *, dtype=np.float32, rng=None) -> Module:
    """Linear regression, the single perceptron without an activation: y_hat = x W + b,
    W (D, K), one output per regression target; trained on the squared error.

    Its least-squares optimum has a closed form, [W; b] = lstsq([X 1], t), which
    ``experiment=house_prices`` compares gradient descent against.
    """
    if spec.task != "regression":
        raise ValueError(f"linreg predicts real-valued targets; this data set is "
                         f"{spec.task} (use logreg for classes)")
    return Linear(spec.size, spec.n_out, dtype=dtype, name="linear", input_grad=False)


def _activation(a) -> type | None:
    """An activation option: dlx's by name, or a Module class (the learner's own ReLU, say,
    from ``model.activation=mine.layers.ReLU``; :mod:`dlx.assemble` imports it)."""
    if isinstance(a, type) and issubclass(a, Module):
        return a
    if a not in ACTIVATIONS:
        raise ValueError(f"unknown activation {a!r} (valid: {', '.join(ACTIVATIONS)}, or your "
                         f"own Module class: package.module.Class, or a workspace file "
                         f"conf/activation/{a}.yaml naming it as _target_)")
    return ACTIVATIONS[a]


def _per_layer(value, n: int, key: str) -> list:
    values = list(value) if isinstance(value, (list, tuple)) else [value] * n
    if len(values) != n:
        raise ValueError(f"{key} has {len(values)} entries for {n} hidden layers")
    return values


NORMS = ("none", "batchnorm", "layernorm")


def mlp(spec, *, hidden: list[int] = (256,),
        activation: str | list[str] | type | list[type] = "relu",
        keep_prob: float | list[float] = 1.0,
        dropconnect: bool = False, norm: str = "none", residual: bool = False,
        dtype=np.float32, rng=None) -> Module:
    """A multi-layer perceptron: [Linear -> norm -> activation -> dropout] per hidden layer,
    then Linear.

    ``hidden`` lists the widths (its length is the depth); ``activation`` and ``keep_prob`` are
    one value for every hidden layer or a list with one per layer. ``keep_prob < 1`` drops
    activations (inverted dropout), or, with ``dropconnect``, the hidden layers' weights.
    ``norm`` puts BatchNorm or LayerNorm between each hidden Linear and its activation.
    ``residual`` adds the layer's input to its output, h <- h + layer(h), for every hidden
    layer after the first (they must then share one width): a residual MLP.
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    hidden = [int(h) for h in hidden]
    if not hidden or min(hidden) < 1:
        raise ValueError(f"hidden must list widths >= 1, got {hidden}")
    if residual and len(set(hidden)) > 1:
        raise ValueError(f"residual layers keep their width: hidden must be one width, got {hidden}")
    acts = _per_layer(activation, len(hidden), "activation")
    keeps = _per_layer(keep_prob, len(hidden), "keep_prob")
    for keep in keeps:
        check_keep(keep)
    acts = [_activation(a) for a in acts]
    rng = rng if rng is not None else np.random.default_rng(0)
    layers: list[Module] = []
    width = spec.size
    for i, (h, act, keep) in enumerate(zip(hidden, acts, keeps)):
        name, first = f"fc{i + 1}", i == 0
        if dropconnect and keep < 1.0:
            linear = DropConnectLinear(width, h, keep, rng, dtype=dtype, name=name)
            linear.input_grad = not first
        else:
            linear = Linear(width, h, dtype=dtype, name=name, input_grad=not first,
                            bias=norm != "batchnorm")
        block: list[Module] = [linear]
        if norm != "none":
            block.append((BatchNorm if norm == "batchnorm" else LayerNorm)(h, dtype=dtype,
                                                                          name=f"{name}.norm"))
        if act is not None:
            block.append(act())
        if keep < 1.0 and not dropconnect:
            block.append(Dropout(keep, rng))
        layers += [Residual(Sequential(*block))] if residual and not first else block
        width = h
    layers.append(Linear(width, spec.n_out, dtype=dtype, name=f"fc{len(hidden) + 1}"))
    return Sequential(*_flat(spec), *layers)


def transformer(spec, *, n_layers: int = 2,
                d_model: int = 64, n_heads: int = 4, d_ff: int | None = None,
                positional: str = "learned", pre_ln: bool = True, dtype=np.float32,
                rng=None) -> Module:
    """A decoder-only transformer over the data's vocabulary, its context the data's sequence
    length (see dlx.nn.transformer); d_ff defaults to 4 * d_model."""
    from dlx.nn.transformer import TransformerLM

    if n_layers < 1 or d_model < 1 or n_heads < 1:
        raise ValueError("n_layers, d_model and n_heads must be >= 1")
    return TransformerLM(spec.vocab, spec.seq_len, n_layers=n_layers, d_model=d_model, n_heads=n_heads,
                         d_ff=d_ff, positional=positional, pre_ln=pre_ln, dtype=dtype)


# What each model reads (dlx.data.spec.KINDS)
logreg.reads = mlp.reads = ("features", "image")
linreg.reads = ("features",)
transformer.reads = ("tokens",)

MODELS = {"logreg": logreg, "linreg": linreg, "mlp": mlp, "cnn": cnn, "resnet": resnet, "plain": plain,
          "transformer": transformer}


class RecurrentNet(Module):
    """Tokens (B, T) -> input vectors (one-hot, or a learned embedding) -> a recurrent stack
    (dlx.nn.recurrent) -> a Linear head at every step -> logits (B, T, V).

    With ``vocab=None`` it reads real vectors instead, x (B, T, ``features``) as they are, and
    predicts once, from the last step's state: (B, ``n_out``) (a sequence regression such as
    the adding problem).

    The state starts at zero for every batch (each sequence is one example); the final state of
    the last forward is ``rnn.final_state``. With ``carry = True`` (truncated BPTT over a text
    stream) each forward starts from the previous forward's final state instead, until
    ``reset_state()``; that state enters as a constant, so backward stops at the batch boundary
    (gradients flow back through this batch's T steps only).
    """

    carry = False
    state = None  # the state the next forward starts from when carrying (None: zeros)

    def __init__(self, vocab: int, *, cell: str, hidden: int, layers: int,
                 nonlinearity: str = "tanh", embedding: int | None = None,
                 forget_bias: float | str = 0.0, dtype=np.float32, features: int = 0,
                 n_out: int = 0, steps: int = 0, rng=None):
        from dlx.nn.recurrent import RECURRENT
        from dlx.nn.transformer import Embedding

        self.vocab, self.dtype = vocab, dtype
        self.emb = Embedding(vocab, embedding, dtype=dtype, name="emb") if embedding else None
        width = features if vocab is None else embedding or vocab
        options = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        self.rnn = RECURRENT[cell](width, hidden, layers, dtype=dtype, name="rnn", **options)
        self.head = Linear(hidden, n_out if vocab is None else vocab, dtype=dtype, name="head")
        if cell == "lstm":  # biases start at zero (weights are the init option's): the f block
            for c in self.rnn.cells:
                if forget_bias == "chrono":  # Tallec & Ollivier 2018, T_max = the sequence
                    # b_f ~ log U[1, T_max - 1], b_i = -b_f: unit j forgets after ~e^{b_f} steps,
                    # so the memories' time scales spread up to the longest dependency there is
                    b = np.log(rng.uniform(1.0, max(steps - 1, 2), hidden)).astype(dtype)
                    c.bias_ih.data[hidden:2 * hidden], c.bias_ih.data[:hidden] = b, -b
                else:
                    c.bias_ih.data[hidden:2 * hidden] = forget_bias

    def forward(self, idx: np.ndarray) -> np.ndarray:
        if self.vocab is None:  # real vectors (B, T, D): one prediction, after the last step
            h = self.rnn.forward(idx)  # (B, T, H)
            self._steps = h.shape[1]
            return self.head.forward(h[:, -1])  # (B, K)
        x = self.emb.forward(idx) if self.emb is not None else \
            np.eye(self.vocab, dtype=self.dtype)[idx]  # (B, T, V) one-hot
        out = self.rnn.forward(x, self.state if self.carry else None)
        if self.carry:
            self.state = self.rnn.final_state
        return self.head.forward(out)  # (B, T, V)

    def reset_state(self) -> None:
        """Start the next forward from zeros (a new epoch, or a new text)."""
        self.state = None

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        if self.vocab is None:  # only the last step's state reached the loss
            dlast = self.head.backward(dout)  # (B, H)
            dh = np.zeros((len(dlast), self._steps, dlast.shape[1]), dtype=dlast.dtype)
            dh[:, -1] = dlast
            return self.rnn.backward(dh)  # (B, T, D)
        dx = self.rnn.backward(self.head.backward(dout))
        if self.emb is not None:
            self.emb.backward(dx)
        return None  # token ids have no gradient


CELL_KINDS = ("rnn", "lstm", "gru")


def rnn(spec, *, cell: str = "lstm", hidden: int = 64, layers: int = 1,
        nonlinearity: str = "tanh", embedding: int | None = None, forget_bias: float | str = 0.0,
        dtype=np.float32, rng=None) -> Module:
    """A recurrent net over the data's vocabulary: ``cell`` rnn (Elman, ``nonlinearity`` tanh
    or relu), lstm or gru, ``layers`` deep, ``hidden`` wide; tokens enter one-hot
    (``embedding`` null) or through an embedding of that width; logits at every step. On
    sequences of real vectors (``series``) the vectors enter as they are and the targets are
    predicted once, after the last step.
    ``forget_bias`` starts the LSTM's forget-gate bias b_if there (Gers et al. 2000; Jozefowicz
    et al. 2015 recommend 1: the cell keeps its memory from the first step; 0 is torch's
    centre), or ``chrono``: Tallec & Ollivier's (2018) chrono initialisation, b_f ~ log U[1,
    T_max - 1] per unit and the input gate's bias -b_f, with T_max the data's sequence length;
    the other cells have no forget gate and do not read it, so one config can sweep the cell."""
    if isinstance(forget_bias, str) and forget_bias != "chrono":
        raise ValueError(f"forget_bias must be a number or chrono, got {forget_bias!r}")
    if cell not in CELL_KINDS:
        raise ValueError(f"cell must be one of {', '.join(CELL_KINDS)}, got {cell!r}")
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be tanh or relu, got {nonlinearity!r}")
    if hidden < 1 or layers < 1 or (embedding is not None and embedding < 1):
        raise ValueError(f"hidden, layers and embedding must be >= 1, got {hidden}, {layers}, "
                         f"{embedding}")
    forget = forget_bias if forget_bias == "chrono" else float(forget_bias)
    rng = rng if rng is not None else np.random.default_rng(0)
    if spec.kind == "series":
        if embedding is not None:
            raise ValueError("embedding embeds tokens; sequences of real vectors enter as they "
                             "are (use model.embedding=null)")
        return RecurrentNet(None, cell=cell, hidden=hidden, layers=layers,
                            nonlinearity=nonlinearity, forget_bias=forget, dtype=dtype,
                            features=spec.shape[1], n_out=spec.n_out, steps=spec.shape[0],
                            rng=rng)
    return RecurrentNet(spec.vocab, cell=cell, hidden=hidden, layers=layers,
                        nonlinearity=nonlinearity, embedding=embedding, forget_bias=forget,
                        dtype=dtype, steps=spec.shape[0], rng=rng)


rnn.reads = ("tokens", "series")
MODELS["rnn"] = rnn
