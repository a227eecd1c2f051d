"""Normalization layers: BatchNorm (Ioffe & Szegedy 2015), LayerNorm (Ba et al. 2016) and
GroupNorm (Wu & He 2018). Each computes xhat = (x - mean) / sqrt(var + eps) over some axes and
returns gamma * xhat + beta, with gamma and beta per feature (or channel); they differ only in
the axes the statistics are taken over.

The backward pass of a normalization over m values (per statistic) with g = dout * gamma:

    dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + eps)

(means over the same m values), because the mean and the variance depend on every x.
"""

from __future__ import annotations

import numpy as np

from dlx.nn.core import Buffer, Module, Parameter


def _normalized_backward(g: np.ndarray, xhat: np.ndarray, std: np.ndarray, axes) -> np.ndarray:
    return (g - g.mean(axis=axes, keepdims=True)
            - xhat * (g * xhat).mean(axis=axes, keepdims=True)) / std


class _Affine(Module):
    """gamma (ones) and beta (zeros), one per feature/channel, never weight-decayed."""

    def _init_affine(self, n: int, dtype, name: str) -> None:
        self.gamma = Parameter(np.ones(n, dtype=dtype), f"{name}.gamma", decay=False)
        self.beta = Parameter(np.zeros(n, dtype=dtype), f"{name}.beta", decay=False)

    def _shape(self, ndim: int) -> tuple[int, ...]:
        """Broadcast gamma/beta over axis 1 of (N, C, H, W) or the last axis otherwise."""
        return (1, -1, 1, 1) if ndim == 4 else (-1,)

    def _affine_backward(self, dout: np.ndarray, xhat: np.ndarray) -> np.ndarray:
        """Accumulate dgamma, dbeta; return g = dout * gamma."""
        axes = tuple(i for i in range(dout.ndim) if i != (1 if dout.ndim == 4 else dout.ndim - 1))
        self.gamma.grad += (dout * xhat).sum(axis=axes)
        self.beta.grad += dout.sum(axis=axes)
        return dout * self.gamma.data.reshape(self._shape(dout.ndim))


class BatchNorm(_Affine):
    """Batch normalization of (N, D) features or (N, C, H, W) channels.

    Training: statistics of the mini-batch (over N, or N, H, W per channel), and the running
    estimates updated as torch does: running = (1 - momentum) * running + momentum * batch, the
    running variance from the *unbiased* batch variance (m / (m - 1)). Eval: the running
    estimates, so the output of one example does not depend on the others.

    Args:
        n: features D, or channels C.
        eps: added to the variance (default 1e-5).
        momentum: weight of the newest batch in the running estimates (default 0.1).
    """

    def __init__(self, n: int, eps: float = 1e-5, momentum: float = 0.1, *, dtype=np.float32,
                 name: str = "bn"):
        self.eps, self.momentum = eps, momentum
        self._init_affine(n, dtype, name)
        self.running_mean = Buffer(np.zeros(n, dtype=dtype), f"{name}.running_mean")
        self.running_var = Buffer(np.ones(n, dtype=dtype), f"{name}.running_var")

    def forward(self, x: np.ndarray) -> np.ndarray:
        axes = (0, 2, 3) if x.ndim == 4 else (0,)
        shape = self._shape(x.ndim)
        if self.training:
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            m = x.size // mean.size
            r = self.momentum
            self.running_mean.data[...] = (1 - r) * self.running_mean.data + r * mean
            self.running_var.data[...] = (1 - r) * self.running_var.data + r * var * m / max(m - 1, 1)
        else:
            mean, var = self.running_mean.data, self.running_var.data
        self._std = np.sqrt(var + self.eps).reshape(shape)
        self._xhat = (x - mean.reshape(shape)) / self._std
        self._axes, self._batch_stats = axes, self.training
        return self.gamma.data.reshape(shape) * self._xhat + self.beta.data.reshape(shape)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        g = self._affine_backward(dout, self._xhat)
        if not self._batch_stats:  # eval: a fixed affine map per feature
            return g / self._std
        return _normalized_backward(g, self._xhat, self._std, self._axes)


class LayerNorm(_Affine):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta over the last axis, per example (and
    per position): no batch statistics, the same in training and eval.

    Args:
        d: size of the last axis.
        eps: added to the variance (default 1e-5).
    """

    def __init__(self, d: int, eps: float = 1e-5, *, dtype=np.float32, name: str = "ln"):
        self.eps = eps
        self._init_affine(d, dtype, name)

    # Row statistics of (N, C) are matrix-vector products with a vector of 1/C (BLAS's gemv):
    # NumPy's own reductions along a short last axis are ~5x slower. The same sums, in another
    # order; fused in place so that a forward or backward makes few passes over (N, C).

    def forward(self, x: np.ndarray) -> np.ndarray:
        C = x.shape[-1]
        x2 = x.reshape(-1, C)  # (N, C): every leading axis is a row
        inv_c = np.full(C, 1.0 / C, dtype=x.dtype)
        xhat = x2 - (x2 @ inv_c)[:, None]  # centred rows
        var = np.square(xhat) @ inv_c  # (N,) the biased variance, as torch's
        var += self.eps
        rstd = np.sqrt(var, out=var)
        np.reciprocal(rstd, out=rstd)  # 1 / sqrt(var + eps)
        xhat *= rstd[:, None]
        self._xhat, self._rstd, self._inv_c = xhat, rstd, inv_c
        out = xhat * self.gamma.data
        out += self.beta.data
        return out.reshape(x.shape)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        # dx = (g - mean(g) - xhat mean(g xhat)) / std per row, g = dout * gamma; the row means
        # are (dout @ gamma) / C and ((dout xhat) @ gamma) / C
        xhat, rstd, gamma = self._xhat, self._rstd, self.gamma.data
        d2 = dout.reshape(-1, xhat.shape[1])  # (N, C)
        p = d2 * xhat
        ones = np.ones(len(d2), dtype=d2.dtype)
        self.gamma.grad += ones @ p  # column sums, as gemv
        self.beta.grad += ones @ d2
        gamma_c = gamma * self._inv_c
        mean_g, mean_gx = d2 @ gamma_c, p @ gamma_c  # (N,) each
        dx = d2 * gamma
        dx -= mean_g[:, None]
        np.multiply(xhat, mean_gx[:, None], out=p)
        dx -= p
        dx *= rstd[:, None]
        return dx.reshape(dout.shape)


class GroupNorm(_Affine):
    """Statistics per example over groups of C / groups channels (and H, W); gamma, beta per
    channel. groups = 1 is LayerNorm over (C, H, W); groups = C is InstanceNorm.

    Args:
        groups: number of groups (divides C).
        channels: C.
        eps: added to the variance (default 1e-5).
    """

    def __init__(self, groups: int, channels: int, eps: float = 1e-5, *, dtype=np.float32,
                 name: str = "gn"):
        if groups < 1 or channels % groups:
            raise ValueError(f"groups ({groups}) must divide the channels ({channels})")
        self.groups, self.eps = groups, eps
        self._init_affine(channels, dtype, name)

    def forward(self, x: np.ndarray) -> np.ndarray:
        n, c = x.shape[:2]
        xg = x.reshape(n, self.groups, -1)  # (N, G, C/G * H * W)
        self._std = np.sqrt(xg.var(axis=-1, keepdims=True) + self.eps)
        self._xhat = ((xg - xg.mean(axis=-1, keepdims=True)) / self._std).reshape(x.shape)
        shape = (1, c) + (1,) * (x.ndim - 2)
        return self.gamma.data.reshape(shape) * self._xhat + self.beta.data.reshape(shape)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        n, c = dout.shape[:2]
        axes = tuple(i for i in range(dout.ndim) if i != 1)
        self.gamma.grad += (dout * self._xhat).sum(axis=axes)
        self.beta.grad += dout.sum(axis=axes)
        g = (dout * self.gamma.data.reshape((1, c) + (1,) * (dout.ndim - 2))).reshape(n, self.groups, -1)
        xhat = self._xhat.reshape(n, self.groups, -1)
        return _normalized_backward(g, xhat, self._std, -1).reshape(dout.shape)
