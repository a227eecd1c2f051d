"""Optimizers, learning-rate schedules and regularizers."""

from dlx.optim.optimizers import OPTIMIZERS, SGD, Adagrad, Adam, Adamax, AdamW, NAdam, Optimizer, RMSprop
from dlx.optim.regularizers import REGULARIZERS
from dlx.optim.schedules import SCHEDULES

__all__ = ["OPTIMIZERS", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adamax", "NAdam",
           "Optimizer", "SCHEDULES", "REGULARIZERS"]
