"""Convolutional models over images (spec.kind == "image", shape (C, H, W)).

* ``cnn``: LeNet-5-like (LeCun et al. 1998): [conv k x k -> ReLU -> 2x2 pool] per entry of
  ``channels``, then fully connected layers ``hidden`` and the output layer.
* ``resnet``: the CIFAR-style family of He et al. 2016 (section 4.2) with depth 6n + 2: a 3x3
  conv, three stages of n basic blocks at widths w, 2w, 4w (the 2nd and 3rd start with stride 2),
  global average pooling and a linear layer. ``plain`` is its twin without shortcuts.
"""

from __future__ import annotations

import numpy as np

from dlx.nn.activations import ReLU
from dlx.nn.conv import AvgPool2d, Conv2d, GlobalAvgPool, MaxPool2d, out_size
from dlx.nn.core import Module, Sequential
from dlx.nn.dropout import Dropout, Dropout2d, check_keep
from dlx.nn.layers import Flatten, Linear
from dlx.nn.norm import BatchNorm
from dlx.nn.residual import basic_block

POOLS = {"max": MaxPool2d, "avg": AvgPool2d}


def cnn(spec, *, channels: list[int] = (6, 16), kernel: int = 5,
        padding: int | list[int] = (2, 0), hidden: list[int] = (120, 84), pool: str = "max",
        batchnorm: bool = False, keep_prob: float = 1.0, dtype=np.float32, rng=None) -> Module:
    """LeNet-5-like. The defaults on 1x28x28 MNIST are LeNet-5's layout (its 32x32 input is
    MNIST padded by 2): conv 5x5 (pad 2) 6 maps -> pool -> conv 5x5 16 maps -> pool -> 16*5*5 ->
    120 -> 84 -> 10, 61,706 parameters. ``padding`` is one value or one per conv;
    ``batchnorm`` puts BN after each conv; ``keep_prob < 1`` adds spatial dropout after each
    conv block and dropout after each hidden fully connected layer."""
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
    pads = list(padding) if isinstance(padding, (list, tuple)) else [padding] * len(channels)
    if len(pads) != len(channels):
        raise ValueError(f"padding has {len(pads)} entries for {len(channels)} conv layers")
    if not channels or min(channels) < 1 or kernel < 1 or min(pads) < 0:
        raise ValueError("channels must list counts >= 1, kernel >= 1 and padding >= 0")
    check_keep(keep_prob)
    rng = rng if rng is not None else np.random.default_rng(0)
    c, h, w = spec.shape
    layers: list[Module] = []
    for i, (f, padding) in enumerate(zip((int(f) for f in channels), pads)):
        h, w = out_size(h, kernel, 1, padding), out_size(w, kernel, 1, padding)
        if min(h, w) < 2:
            raise ValueError(f"the image ({spec.describe()}) is too small for {len(channels)} "
                             f"conv {kernel}x{kernel} + 2x2 pool blocks")
        layers.append(Conv2d(c, f, kernel, 1, padding, bias=not batchnorm, dtype=dtype,
                             name=f"conv{i + 1}", input_grad=i > 0))
        if batchnorm:
            layers.append(BatchNorm(f, dtype=dtype, name=f"bn{i + 1}"))
        layers += [ReLU(), POOLS[pool](2)]
        if keep_prob < 1:
            layers.append(Dropout2d(keep_prob, rng))
        c, h, w = f, h // 2, w // 2
    layers.append(Flatten())
    width = c * h * w
    for i, n in enumerate(int(n) for n in hidden):
        layers += [Linear(width, n, dtype=dtype, name=f"fc{i + 1}"), ReLU()]
        if keep_prob < 1:
            layers.append(Dropout(keep_prob, rng))
        width = n
    layers.append(Linear(width, spec.n_out, dtype=dtype, name=f"fc{len(hidden) + 1}"))
    return Sequential(*layers)


def _six_n_plus_two(spec, depth: int, width: int, dtype, skip: bool, preact: bool) -> Module:
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n + 2 (8, 14, 20, 32, 44, 56, ...), got {depth}")
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    n = (depth - 2) // 6
    layers: list[Module] = [Conv2d(spec.shape[0], width, 3, 1, 1, bias=False, dtype=dtype,
                                   name="stem", input_grad=False)]
    if not preact:  # pre-activation blocks start with their own BN -> ReLU
        layers += [BatchNorm(width, dtype=dtype, name="stem_bn"), ReLU()]
    c = width
    for stage, out in enumerate((width, 2 * width, 4 * width)):
        for b in range(n):
            stride = 2 if stage > 0 and b == 0 else 1
            layers.append(basic_block(c, out, stride, skip=skip, preact=preact, dtype=dtype,
                                      name=f"s{stage + 1}b{b + 1}"))
            c = out
    if preact:
        layers += [BatchNorm(c, dtype=dtype, name="final_bn"), ReLU()]
    layers += [GlobalAvgPool(), Linear(c, spec.n_out, dtype=dtype, name="fc")]
    return Sequential(*layers)


def resnet(spec, *, depth: int = 20, width: int = 16, preact: bool = False, dtype=np.float32,
           rng=None) -> Module:
    """A residual network of depth 6n + 2 (20 layers: n = 3) at base width ``width``;
    ``preact`` uses pre-activation blocks."""
    return _six_n_plus_two(spec, depth, width, dtype, skip=True, preact=preact)


def plain(spec, *, depth: int = 20, width: int = 16, dtype=np.float32, rng=None) -> Module:
    """resnet's twin: the same convolutions and BatchNorms, no shortcuts."""
    return _six_n_plus_two(spec, depth, width, dtype, skip=False, preact=False)


cnn.reads = resnet.reads = plain.reads = ("image",)
