"""Per-layer statistics of a Sequential network on one batch: how activations and gradients
scale with depth (the init and grad_flow experiments). Run in eval mode (no dropout noise), on
a copy of nothing: it does one forward and one backward and then clears the gradients."""

from __future__ import annotations

import numpy as np

from dlx.nn.core import Sequential
from dlx.nn.layers import Linear


def layer_stats(model: Sequential | Linear, loss_fn, X: np.ndarray, y: np.ndarray) -> list[dict]:
    """For each Linear layer l (1 = first): std of its output z_l (the pre-activation), std of
    the activation that follows (hidden layers), ||dL/dz_l|| and ||dL/dW_l|| (Frobenius). A
    single Linear layer (logistic regression) is a one-layer network."""
    layers = model.layers if isinstance(model, Sequential) else [model]
    was_training = model.training
    model.eval()
    model.zero_grad()
    stats: list[dict] = []
    x = X
    for layer in layers:
        x = layer.forward(x)
        if isinstance(layer, Linear):
            stats.append({"layer": len(stats) + 1, "z_std": float(np.std(x, dtype=np.float64))})
        elif stats and "act_std" not in stats[-1]:
            stats[-1]["act_std"] = float(np.std(x, dtype=np.float64))
    loss_fn.forward(x, y)
    dout = loss_fn.backward()
    index = len(stats)
    for layer in reversed(layers):
        if isinstance(layer, Linear):
            index -= 1
            stats[index]["grad_z_norm"] = float(np.linalg.norm(dout.astype(np.float64)))
        dout = layer.backward(dout)
        if isinstance(layer, Linear):
            stats[index]["grad_W_norm"] = float(np.linalg.norm(layer.W.grad.astype(np.float64)))
    model.zero_grad()
    model.train(was_training)
    return stats
