"""From-scratch neural-network parts: explicit forward and backward, NumPy only."""

from __future__ import annotations

import numpy as np

from dlx.nn.activations import ACTIVATIONS, GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from dlx.nn.core import Module, Parameter, Sequential
from dlx.nn.dropout import DropConnectLinear, Dropout
from dlx.nn.init import INITS
from dlx.nn.layers import Flatten, Linear
from dlx.nn.losses import (
    MSE,
    BCEWithLogits,
    SequenceCrossEntropy,
    SoftmaxCrossEntropy,
    predictions,
    sequence_accuracy,
)
from dlx.nn.models import MODELS
from dlx.nn.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell


def loss_for(spec, label_smoothing: float = 0.0):
    """The loss matching the task and the output layer a data description asks for
    (``spec.n_out``): squared error for regression, token-level CE for sequences, sigmoid-BCE
    for 2 classes, else softmax-CE; ``label_smoothing`` (classification only) as torch's."""
    if spec.task == "regression":
        return MSE()
    if spec.kind == "tokens":
        return SequenceCrossEntropy()
    if spec.n_out == 1:
        return BCEWithLogits(label_smoothing)
    return SoftmaxCrossEntropy(label_smoothing)


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    """Fraction right: classes, or whole sequences (every answer token) for token data."""
    if y.ndim == 2:
        return sequence_accuracy(logits, y)
    return float((predictions(logits) == y).mean())


__all__ = ["Module", "Parameter", "Sequential", "Linear", "Flatten", "ReLU", "LeakyReLU",
           "Sigmoid", "Tanh", "GELU", "Softmax", "Dropout", "DropConnectLinear", "ACTIVATIONS",
           "MSE", "BCEWithLogits", "SoftmaxCrossEntropy", "predictions", "loss_for", "accuracy",
           "INITS", "MODELS", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]
