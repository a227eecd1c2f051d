"""From-scratch neural-network parts: explicit forward and backward, NumPy only."""

from __future__ import annotations

import numpy as np

from dlx.nn.activations import ACTIVATIONS, GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from dlx.nn.core import Module, Parameter, Sequential
from dlx.nn.dropout import DropConnectLinear, Dropout
from dlx.nn.init import INITS
from dlx.nn.layers import Linear
from dlx.nn.losses import (
    MSE,
    BCEWithLogits,
    SequenceCrossEntropy,
    SoftmaxCrossEntropy,
    predictions,
    sequence_accuracy,
)
from dlx.nn.models import MODELS, reads_tokens


def model_data_mismatch(model: str, sequences: bool) -> str:
    if sequences:
        valid = ", ".join(n for n in MODELS if reads_tokens(n))
        return f"model {model!r} cannot read token sequences (models that can: {valid})"
    valid = ", ".join(n for n in MODELS if not reads_tokens(n))
    return (f"model {model!r} reads token sequences, not feature vectors (use a sequence data "
            f"set, e.g. dataset=reverse, or a model for features: {valid})")


def loss_for(n_classes: int, sequences: bool = False):
    """The loss matching the output layer: token-level CE for sequences, sigmoid-BCE for
    2 classes, else softmax-CE."""
    if sequences:
        return SequenceCrossEntropy()
    return BCEWithLogits() if n_classes == 2 else SoftmaxCrossEntropy()


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    """Fraction right: classes, or whole sequences (every answer token) for token data."""
    if y.ndim == 2:
        return sequence_accuracy(logits, y)
    return float((predictions(logits) == y).mean())


def n_outputs(n_classes: int, sequences: bool = False) -> int:
    return n_classes if sequences or n_classes != 2 else 1


__all__ = ["Module", "Parameter", "Sequential", "Linear", "ReLU", "LeakyReLU", "Sigmoid", "Tanh",
           "GELU", "Softmax", "Dropout", "DropConnectLinear", "ACTIVATIONS", "MSE", "BCEWithLogits",
           "SoftmaxCrossEntropy", "predictions", "loss_for",
           "n_outputs", "INITS", "MODELS", "reads_tokens", "model_data_mismatch"]
