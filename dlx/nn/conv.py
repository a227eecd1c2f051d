"""Convolution and pooling over (N, C, H, W) images, as torch.nn.functional computes them
(cross-correlation, zero padding, floor((H + 2p - k) / s) + 1 outputs per side).

Vectorized with im2col: every k x k window becomes a row of a matrix, so the convolution is one
matmul. The windows are read with ``sliding_window_view`` (no copy until the reshape), and the
backward pass scatters the window gradients back with one strided add per kernel offset
(k*k adds, overlapping windows summed). ``conv2d_naive`` keeps the six-loop definition for the
speed comparison and as a reference.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from dlx.nn.core import Module, Parameter


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def out_size(size: int, k: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - k) // stride + 1


def windows(x: np.ndarray, k: tuple[int, int], stride: int, pad: int, fill: float = 0.0):
    """(N, C, H, W) -> view (N, C, Ho, Wo, kH, kW) of the padded input's windows."""
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=fill)
    return sliding_window_view(x, k, axis=(2, 3))[:, :, ::stride, ::stride]


def scatter_windows(dwin: np.ndarray, shape, stride: int, pad: int) -> np.ndarray:
    """The adjoint of :func:`windows`: (N, C, Ho, Wo, kH, kW) gradients -> (N, C, H, W),
    overlapping windows summed."""
    n, c, h, w = shape
    _, _, ho, wo, kh, kw = dwin.shape
    dx = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=dwin.dtype)
    if (kh, kw) == (stride, stride):  # windows tile the image: one reshape, no adds
        dx[:, :, :ho * kh, :wo * kw] = dwin.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, ho * kh,
                                                                                 wo * kw)
        return dx[:, :, pad:pad + h, pad:pad + w]
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride] += dwin[..., i, j]
    return dx[:, :, pad:pad + h, pad:pad + w]


class Conv2d(Module):
    """out[n, f] = b[f] + sum_c W[f, c] (*) x[n, c], W of shape (F, C, kH, kW) as torch's.

    backward (with cols the im2col matrix and d the output gradient as rows):
    dW += d^T cols, db += sum d, dx = col2im(d W).

    Args:
        in_channels, out_channels: C and F.
        kernel_size: k or (kH, kW).
        stride: step between windows (default 1).
        padding: zeros added on each side (default 0).
        bias: add b (default True; a convolution followed by BatchNorm has none: BN's beta
            does its job, and its gradient would be exactly zero).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride: int = 1,
                 padding: int = 0, bias: bool = True, *, dtype=np.float32, name: str = "conv",
                 input_grad: bool = True):
        self.k, self.stride, self.padding = _pair(kernel_size), int(stride), int(padding)
        self.W = Parameter(np.zeros((out_channels, in_channels, *self.k), dtype=dtype),
                           f"{name}.W")
        self.b = Parameter(np.zeros(out_channels, dtype=dtype), f"{name}.b", decay=False) \
            if bias else None
        self.input_grad = input_grad

    def forward(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        win = windows(x, self.k, self.stride, self.padding)  # (N, C, Ho, Wo, kH, kW)
        ho, wo = win.shape[2:4]
        self._shape = x.shape
        self._cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, -1)  # (N Ho Wo, C kH kW)
        out = self._cols @ self.W.data.reshape(len(self.W.data), -1).T
        if self.b is not None:
            out += self.b.data
        return out.reshape(n, ho, wo, -1).transpose(0, 3, 1, 2)  # (N, F, Ho, Wo)

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        n, f, ho, wo = dout.shape
        d = dout.transpose(0, 2, 3, 1).reshape(-1, f)  # (N Ho Wo, F)
        self.W.grad += (d.T @ self._cols).reshape(self.W.data.shape)
        if self.b is not None:
            self.b.grad += d.sum(axis=0)
        if not self.input_grad:
            return None
        c = self._shape[1]
        dwin = (d @ self.W.data.reshape(f, -1)).reshape(n, ho, wo, c, *self.k)
        return scatter_windows(dwin.transpose(0, 3, 1, 2, 4, 5), self._shape, self.stride,
                               self.padding)


def conv2d_naive(x: np.ndarray, W: np.ndarray, b: np.ndarray, stride: int = 1,
                 padding: int = 0) -> np.ndarray:
    """The definition, one multiply-add at a time over (n, f, i, j) and a window sum: slow, for
    the speed comparison and as a reference."""
    n, c, h, w = x.shape
    f, _, kh, kw = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho, wo = out_size(h, kh, stride, padding), out_size(w, kw, stride, padding)
    out = np.empty((n, f, ho, wo), dtype=np.result_type(x, W))
    for s in range(n):
        for o in range(f):
            for i in range(ho):
                for j in range(wo):
                    patch = xp[s, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
                    out[s, o, i, j] = np.sum(patch * W[o]) + b[o]
    return out


class _Pool(Module):
    """A k x k window reduced to one value.

    Args:
        kernel_size: k or (kH, kW).
        stride: default kernel_size.
        padding: default 0.
    """

    def __init__(self, kernel_size, stride: int | None = None, padding: int = 0):
        self.k = _pair(kernel_size)
        self.stride, self.padding = int(stride or self.k[0]), int(padding)


class MaxPool2d(_Pool):
    """The largest value of each k x k window (padding with -inf). backward routes each output
    gradient to the first position holding its window's maximum (as torch does); overlapping
    windows (stride < k) add up."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        win = windows(x, self.k, self.stride, self.padding, fill=-np.inf)
        flat = win.reshape(*win.shape[:4], -1)  # (N, C, Ho, Wo, kH kW)
        self._arg, self._shape = flat.argmax(axis=-1), x.shape
        return np.take_along_axis(flat, self._arg[..., None], axis=-1)[..., 0]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        kh, kw = self.k
        dwin = np.zeros((*dout.shape, kh * kw), dtype=dout.dtype)
        np.put_along_axis(dwin, self._arg[..., None], dout[..., None], axis=-1)
        return scatter_windows(dwin.reshape(*dout.shape, kh, kw), self._shape, self.stride,
                               self.padding)


class AvgPool2d(_Pool):
    """The mean of each k x k window (zero padding counted, torch's count_include_pad=True);
    backward spreads each output gradient evenly over its window."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._shape = x.shape
        return windows(x, self.k, self.stride, self.padding).mean(axis=(-2, -1))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        kh, kw = self.k
        dwin = np.broadcast_to((dout / (kh * kw))[..., None, None], (*dout.shape, kh, kw))
        return scatter_windows(dwin, self._shape, self.stride, self.padding)


class GlobalAvgPool(Module):
    """(N, C, H, W) -> (N, C): the mean of each channel map."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._shape = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        n, c, h, w = self._shape
        return np.broadcast_to(dout[:, :, None, None] / (h * w), self._shape).copy()
