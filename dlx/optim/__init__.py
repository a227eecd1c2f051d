"""Optimizers, learning-rate schedules and regularizers."""

from dlx.optim.optimizers import (
    OPTIMIZERS,
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    NAdam,
    Optimizer,
    RAdam,
    RMSprop,
)
from dlx.optim.regularizers import REGULARIZERS
from dlx.optim.schedules import SCHEDULES

__all__ = ["OPTIMIZERS", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adamax", "NAdam",
           "RAdam", "Adadelta", "Optimizer", "SCHEDULES", "REGULARIZERS"]
