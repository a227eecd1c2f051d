"""Convolution and pooling over (N, C, H, W) images, as torch.nn.functional computes them
(cross-correlation, zero padding, floor((H + 2p - k) / s) + 1 outputs per side).

Vectorized with im2col: every k x k window becomes a column of a matrix, so the convolution is
one matmul. The matrix is laid out (C kH kW, N Ho Wo) and filled with one strided copy per
kernel offset (k*k copies whose inner runs are image rows); the backward pass scatters the
column gradients back the same way (k*k strided adds, overlapping windows summed). Working
channel-first, (C, N, H, W), keeps every copy's inner dimension contiguous: the window-major
layout (N Ho Wo, C kH kW) spent most of a LeNet step moving 5-element runs. Pooling takes the
same k*k offsets. ``conv2d_naive`` keeps the six-loop definition for the speed comparison and as
a reference.
"""

from __future__ import annotations

import numpy as np

from dlx.nn.core import Module, Parameter


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def out_size(size: int, k: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - k) // stride + 1


def _offsets(k: tuple[int, int], stride: int, ho: int, wo: int):
    """(i, j, slices): for each kernel offset, the padded input's positions it meets in every
    window, as (rows, cols) slices."""
    for i in range(k[0]):
        for j in range(k[1]):
            yield i, j, (slice(i, i + stride * (ho - 1) + 1, stride),
                         slice(j, j + stride * (wo - 1) + 1, stride))


def _padded(x: np.ndarray, pad: int, fill: float = 0.0) -> np.ndarray:
    if not pad:
        return x
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=fill)


def im2col(x: np.ndarray, k: tuple[int, int], stride: int, pad: int) -> np.ndarray:
    """(N, C, H, W) -> (C, kH, kW, N, Ho, Wo): entry [c, i, j, n, p, q] is the padded input at
    [n, c, p*stride + i, q*stride + j]; reshaped (C kH kW, N Ho Wo) it is the im2col matrix."""
    n, c, h, w = x.shape
    ho, wo = out_size(h, k[0], stride, pad), out_size(w, k[1], stride, pad)
    xp = _padded(x, pad).transpose(1, 0, 2, 3)  # (C, N, Hp, Wp) view
    cols = np.empty((c, *k, n, ho, wo), dtype=x.dtype)
    for i, j, (rows, cs) in _offsets(k, stride, ho, wo):
        cols[:, i, j] = xp[:, :, rows, cs]
    return cols


def col2im(dcols: np.ndarray, shape, stride: int, pad: int) -> np.ndarray:
    """The adjoint of :func:`im2col`: (C, kH, kW, N, Ho, Wo) -> (N, C, H, W), the gradients of
    every window a pixel lies in summed."""
    n, c, h, w = shape
    _, kh, kw, _, ho, wo = dcols.shape
    dxp = np.zeros((c, n, h + 2 * pad, w + 2 * pad), dtype=dcols.dtype)
    for i, j, (rows, cs) in _offsets((kh, kw), stride, ho, wo):
        dxp[:, :, rows, cs] += dcols[:, i, j]
    return np.ascontiguousarray(dxp[:, :, pad:pad + h, pad:pad + w].transpose(1, 0, 2, 3))


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
        self._shape = x.shape
        self._cols = im2col(x, self.k, self.stride, self.padding)  # (C, kH, kW, N, Ho, Wo)
        ho, wo = self._cols.shape[-2:]
        out = self.W.data.reshape(len(self.W.data), -1) @ self._cols.reshape(-1, n * ho * wo)
        if self.b is not None:
            out += self.b.data[:, None]
        # (F, N Ho Wo) -> (N, F, Ho, Wo), contiguous: the layers after it run faster on it
        return np.ascontiguousarray(out.reshape(-1, n, ho, wo).transpose(1, 0, 2, 3))

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        n, f, ho, wo = dout.shape
        d = dout.transpose(1, 0, 2, 3).reshape(f, -1)  # (F, N Ho Wo)
        cols = self._cols.reshape(-1, n * ho * wo)  # (C kH kW, N Ho Wo)
        self.W.grad += (d @ cols.T).reshape(self.W.data.shape)
        if self.b is not None:
            self.b.grad += d.sum(axis=1)
        if not self.input_grad:
            return None
        dcols = (self.W.data.reshape(f, -1).T @ d).reshape(self._cols.shape)
        return col2im(dcols, self._shape, self.stride, self.padding)


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
    """The largest value of each k x k window (padding with -inf; a NaN wins its window).
    backward routes each output gradient to the first position holding its window's maximum (as
    torch does); overlapping windows (stride < k) add up. The positions are found again in
    backward by comparing each offset with the maximum: cheaper than tracking an argmax in
    forward, which evaluation never needs."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        n, c, h, w = x.shape
        ho = out_size(h, self.k[0], self.stride, self.padding)
        wo = out_size(w, self.k[1], self.stride, self.padding)
        xp = _padded(x, self.padding, fill=-np.inf)
        out = None
        for _, _, (rows, cs) in _offsets(self.k, self.stride, ho, wo):
            v = xp[:, :, rows, cs]  # (N, C, Ho, Wo): this offset's value in every window
            out = v.copy() if out is None else np.maximum(out, v, out=out)  # NaN propagates
        self._xp, self._out, self._shape = xp, out, x.shape
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        n, c, h, w = self._shape
        p, out = self.padding, self._out
        dxp = np.zeros(self._xp.shape, dtype=dout.dtype)
        open_ = np.ones(out.shape, dtype=bool)  # windows whose maximum is not yet found
        nan_out, zero = np.isnan(out), dout.dtype.type(0)
        for _, _, (rows, cs) in _offsets(self.k, self.stride, *out.shape[2:]):
            v = self._xp[:, :, rows, cs]
            hit = (v == out) | (nan_out & np.isnan(v)) if nan_out.any() else v == out
            hit &= open_
            open_ &= ~hit
            dxp[:, :, rows, cs] += np.where(hit, dout, zero)
        return dxp[:, :, p:p + h, p:p + w]


class AvgPool2d(_Pool):
    """The mean of each k x k window (zero padding counted, torch's count_include_pad=True);
    backward spreads each output gradient evenly over its window."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._shape = x.shape
        xp = _padded(x, self.padding)
        n, c, h, w = x.shape
        ho = out_size(h, self.k[0], self.stride, self.padding)
        wo = out_size(w, self.k[1], self.stride, self.padding)
        out = np.zeros((n, c, ho, wo), dtype=x.dtype)
        for _, _, (rows, cs) in _offsets(self.k, self.stride, ho, wo):
            out += xp[:, :, rows, cs]
        return out / (self.k[0] * self.k[1])

    def backward(self, dout: np.ndarray) -> np.ndarray:
        n, c, h, w = self._shape
        p = self.padding
        share = dout / (self.k[0] * self.k[1])
        dxp = np.zeros((n, c, h + 2 * p, w + 2 * p), dtype=dout.dtype)
        for _, _, (rows, cs) in _offsets(self.k, self.stride, *dout.shape[2:]):
            dxp[:, :, rows, cs] += share
        return dxp[:, :, p:p + h, p:p + w]


class GlobalAvgPool(Module):
    """(N, C, H, W) -> (N, C): the mean of each channel map."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._shape = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        n, c, h, w = self._shape
        return np.broadcast_to(dout[:, :, None, None] / (h * w), self._shape).copy()
