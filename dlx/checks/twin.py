"""A dlx Module's twin in torch: the same function written with torch's own operations, on
tensors holding the module's Parameters, so that torch's autograd gives the gradients a
learner's backward must match (the "torch" stage of `dlx check` for layers and models).

``twin(module, torch, params) -> f(x)``: ``params`` fills with id(Parameter) -> the tensor
(``requires_grad``) standing for it. A module it does not know raises :class:`NoTwin`.
"""

from __future__ import annotations

import math

from dlx.nn import activations as act
from dlx.nn.attention import MultiHeadAttention
from dlx.nn.conv import Conv2d, MaxPool2d
from dlx.nn.core import Module, Sequential
from dlx.nn.layers import Flatten, Linear
from dlx.nn.norm import BatchNorm, LayerNorm
from dlx.nn.recurrent import _Recurrent
from dlx.nn.residual import Residual
from dlx.nn.transformer import Block, FeedForward


class NoTwin(Exception):
    """A module torch has no twin for here."""


def twin(m: Module, torch, params: dict):
    F = torch.nn.functional

    def P(p):  # the tensor standing for Parameter p
        if p is None:
            return None
        if id(p) not in params:
            params[id(p)] = torch.tensor(p.data, dtype=torch.float64, requires_grad=True)
        return params[id(p)]

    if isinstance(m, Sequential):
        fns = [twin(layer, torch, params) for layer in m.layers]

        def seq(x):
            for f in fns:
                x = f(x)
            return x
        return seq
    if isinstance(m, Linear):  # x W + b, W (in, out)
        W, b = P(m.W), P(m.b)
        return lambda x: x @ W + b if b is not None else x @ W
    if isinstance(m, Flatten):
        return lambda x: x.reshape(len(x), -1)
    simple = {act.ReLU: torch.relu, act.Tanh: torch.tanh, act.Sigmoid: torch.sigmoid,
              act.GELU: lambda x: F.gelu(x, approximate="tanh"),
              act.Softmax: lambda x: torch.softmax(x, -1)}
    if type(m) in simple:
        return simple[type(m)]
    if isinstance(m, act.LeakyReLU):
        return lambda x: F.leaky_relu(x, m.negative_slope)
    if isinstance(m, LayerNorm):
        g, b = P(m.gamma), P(m.beta)
        return lambda x: F.layer_norm(x, (x.shape[-1],), g, b, m.eps)
    if isinstance(m, BatchNorm):  # training mode: the batch's statistics
        g, b = P(m.gamma), P(m.beta)
        return lambda x: F.batch_norm(x, None, None, g, b, training=True, eps=m.eps)
    if isinstance(m, Residual):
        body = twin(m.body, torch, params)
        short = twin(m.shortcut, torch, params) if m.shortcut is not None else (lambda x: x)
        return (lambda x: body(x) + short(x)) if m.skip else body
    if isinstance(m, FeedForward):
        fc, out = twin(m.fc, torch, params), twin(m.out, torch, params)
        return lambda x: out(F.gelu(fc(x), approximate="tanh"))
    if isinstance(m, MultiHeadAttention):
        return _attention(m, torch, params)
    if isinstance(m, Block):
        ln1, attn = twin(m.ln1, torch, params), twin(m.attn, torch, params)
        ln2, mlp = twin(m.ln2, torch, params), twin(m.mlp, torch, params)
        if m.pre_ln:
            def pre(x):
                h = x + attn(ln1(x))
                return h + mlp(ln2(h))
            return pre

        def post(x):
            h = ln1(x + attn(x))
            return ln2(h + mlp(h))
        return post
    if isinstance(m, Conv2d):
        W, b = P(m.W), P(m.b)
        return lambda x: F.conv2d(x, W, b, stride=m.stride, padding=m.padding)
    if isinstance(m, MaxPool2d):
        return lambda x: F.max_pool2d(x, m.k, stride=m.stride, padding=m.padding)
    if isinstance(m, _Recurrent):
        return _recurrent(m, torch, params)
    raise NoTwin(type(m).__name__)


def _attention(m, torch, params):
    qkv, proj = twin(m.qkv, torch, params), twin(m.proj, torch, params)

    def f(x):
        B, T, C = x.shape
        H = m.n_heads
        q, k, v = (t.reshape(B, T, H, C // H).transpose(1, 2) for t in qkv(x).split(C, -1))
        att = q @ k.transpose(-2, -1) / math.sqrt(C // H)
        if m.causal:
            future = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
            att = att.masked_fill(future, float("-inf"))
        y = torch.softmax(att, -1) @ v
        return proj(y.transpose(1, 2).reshape(B, T, C))
    return f


def _recurrent(m, torch, params):
    """torch's nn.RNN / LSTM / GRU (batch_first), its weights replaced by the module's."""
    mode = m.cells[0].mode
    kind = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}.get(mode, torch.nn.RNN)
    extra = {} if mode in ("lstm", "gru") else {"nonlinearity": mode.removeprefix("rnn_")}
    mod = kind(m.cells[0].input_size, m.hidden_size, m.num_layers, batch_first=True,
               dtype=torch.float64, **extra)
    for k, cell in enumerate(m.cells):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            p = getattr(cell, name)
            tp = torch.nn.Parameter(torch.tensor(p.data, dtype=torch.float64))
            setattr(mod, f"{name}_l{k}", tp)
            params[id(p)] = tp
    return lambda x: mod(x)[0]
