"""Per-layer statistics of a network on one batch: how activations and gradients scale with
depth (the init and grad_flow experiments, and plain against residual networks). Run in eval
mode (no dropout noise): one forward and one backward, then the gradients are cleared.
``batch_stats=True`` keeps BatchNorm on the probe batch's own statistics, as in training: in
eval mode at initialization its running estimates are still (0, 1), so it would be the identity
and the probe would see a network without normalization, not the one training differentiates.

Every weight layer (Linear, Conv2d) is a "layer", numbered in the order the forward pass meets
it, however deeply it is nested (residual blocks included): its forward and backward are
watched for the duration of the probe.
"""

from __future__ import annotations

import numpy as np

from dlx.nn.conv import Conv2d
from dlx.nn.core import Module, Sequential
from dlx.nn.layers import Linear
from dlx.nn.norm import BatchNorm, GroupNorm, LayerNorm

WEIGHTED = (Linear, Conv2d)
NORMS = (BatchNorm, LayerNorm, GroupNorm)


def _std(x: np.ndarray) -> float:
    return float(np.std(x, dtype=np.float64))


def layer_stats(model: Module, loss_fn, X: np.ndarray, y: np.ndarray,
                batch_stats: bool = False) -> list[dict]:
    """For each weight layer l (1 = the first met): std of its output z_l, std of the activation
    that follows it in its Sequential (the first module after it that is neither a weight layer
    nor a normalization), ||dL/dz_l|| and ||dL/dW_l|| (Frobenius).

    Args:
        batch_stats: BatchNorm layers normalize with the batch's statistics (training mode);
            their running estimates are restored afterwards, so the probe changes nothing.
    """
    stats: dict[int, dict] = {}  # id(layer) -> its row, in the order of the forward pass
    followers: dict[int, int] = {}  # id(activation) -> id(the weight layer it follows)
    for seq in (m for m in model.modules() if isinstance(m, Sequential)):
        for i, layer in enumerate(seq.layers):
            if isinstance(layer, WEIGHTED):
                for after in seq.layers[i + 1:]:
                    if isinstance(after, WEIGHTED):
                        break
                    if not isinstance(after, NORMS):
                        followers[id(after)] = id(layer)
                        break
    watched = [m for m in model.modules() if isinstance(m, WEIGHTED) or id(m) in followers]

    def watch(m: Module) -> None:
        forward, backward = m.forward, m.backward

        def recording_forward(x):
            out = forward(x)
            if isinstance(m, WEIGHTED):
                stats.setdefault(id(m), {"layer": len(stats) + 1})["z_std"] = _std(out)
            elif followers.get(id(m)) in stats:
                stats[followers[id(m)]].setdefault("act_std", _std(out))
            return out

        def recording_backward(dout):
            dx = backward(dout)
            row = stats[id(m)]
            row["grad_z_norm"] = float(np.linalg.norm(dout.astype(np.float64)))
            row["grad_W_norm"] = float(np.linalg.norm(m.W.grad.astype(np.float64)))
            return dx

        m.forward = recording_forward
        if isinstance(m, WEIGHTED):
            m.backward = recording_backward

    was_training = model.training
    model.eval()
    model.zero_grad()
    batch_norms = [m for m in model.modules() if isinstance(m, BatchNorm)] if batch_stats else []
    running = [(m.running_mean.data.copy(), m.running_var.data.copy()) for m in batch_norms]
    for m in batch_norms:
        m.training = True
    for m in watched:
        watch(m)
    try:
        loss_fn.forward(model.forward(X), y)
        model.backward(loss_fn.backward())
    finally:
        for m in watched:  # back to the class's methods
            vars(m).pop("forward", None)
            vars(m).pop("backward", None)
        for m, (mean, var) in zip(batch_norms, running):
            m.running_mean.data[...], m.running_var.data[...] = mean, var
        model.zero_grad()
        model.train(was_training)
    return list(stats.values())
