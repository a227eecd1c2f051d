"""Learning-rate schedules: each option builds a pure function ``step -> lr`` (step from 0).

Builders take the base ``lr`` (optimizer.lr) and the run's ``total_steps`` plus their options.
"""

from __future__ import annotations

from typing import Callable

Schedule = Callable[[int], float]


def constant(lr: float, total_steps: int) -> Schedule:
    """lr(step) = lr."""
    return lambda step: lr


SCHEDULES = {"constant": constant}
