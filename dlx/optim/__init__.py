"""Optimizers, learning-rate schedules and regularizers."""

from dlx.optim.optimizers import OPTIMIZERS, SGD, Adam, Optimizer
from dlx.optim.regularizers import L2, REGULARIZERS, NoPenalty
from dlx.optim.schedules import SCHEDULES

__all__ = ["OPTIMIZERS", "SGD", "Adam", "Optimizer", "SCHEDULES", "REGULARIZERS", "L2", "NoPenalty"]
