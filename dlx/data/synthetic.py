"""Seeded synthetic data: 2-D classification sets ``fn(rng, **options) -> (X (N, 2), y (N,))``
and 1-D functions for regression (:func:`function_dataset`)."""

from __future__ import annotations

import numpy as np

from dlx.data.dataset import Dataset
from dlx.data.spec import DataSpec


def _check_n(n_samples: int) -> None:
    if n_samples < 10:
        raise ValueError(f"n_samples must be >= 10, got {n_samples}")


def _check_noise(name: str, value: float) -> None:
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def blobs(rng: np.random.Generator, *, n_samples: int = 1000, n_classes: int = 2,
          spread: float = 2.1, std: float = 1.0):
    """One isotropic Gaussian (std) per class, centres evenly on a circle of radius ``spread``.

    With 2 classes the centres are 2*spread apart: the Bayes error is Phi(-spread/std)
    (1.8% at the defaults), so a linear model can reach about 98% accuracy.
    """
    _check_n(n_samples)
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")
    _check_noise("std", std)
    y = np.arange(n_samples) % n_classes
    angles = 2 * np.pi * np.arange(n_classes) / n_classes
    centres = spread * np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (C, 2)
    X = centres[y] + std * rng.standard_normal((n_samples, 2))
    return X, y


def moons(rng: np.random.Generator, *, n_samples: int = 1000, noise: float = 0.15):
    """Two interleaving half circles (the sklearn construction) plus Gaussian noise."""
    _check_n(n_samples)
    _check_noise("noise", noise)
    y = np.arange(n_samples) % 2
    t = np.pi * rng.uniform(0, 1, n_samples)
    X = np.where(y[:, None] == 0,
                 np.stack([np.cos(t), np.sin(t)], axis=1),
                 np.stack([1 - np.cos(t), 0.5 - np.sin(t)], axis=1))
    return X + noise * rng.standard_normal((n_samples, 2)), y


def xor(rng: np.random.Generator, *, n_samples: int = 1000, noise: float = 0.1):
    """Points uniform in [-1, 1]^2, label 1 where x1 * x2 > 0; noise jitters the inputs."""
    _check_n(n_samples)
    _check_noise("noise", noise)
    X = rng.uniform(-1, 1, (n_samples, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    return X + noise * rng.standard_normal((n_samples, 2)), y


SYNTHETIC = {"blobs": blobs, "moons": moons, "xor": xor}


# --- 1-D functions for regression (function approximation) ------------------------------------

#: the target functions of ``function_dataset``: smooth (sin, a cubic), a kink (|x|), a jump
TARGETS = {
    "sin": np.sin,
    "poly": lambda x: 0.2 * x**3 - x,        # odd cubic, zeros at 0 and +-sqrt(5)
    "abs": np.abs,                           # = relu(x) + relu(-x): two ReLU units, exactly
    "step": lambda x: (x > 0).astype(float),  # Heaviside: no continuous function fits it exactly
}


def function_dataset(rng: np.random.Generator, *, target: str = "sin", n_samples: int = 256,
                     noise: float = 0.0, low: float = -np.pi, high: float = np.pi,
                     val_fraction: float = 0.25, test_points: int = 512, dtype=np.float64):
    """Regression of y = f(x) + noise on x ~ U[low, high]: a train/validation split of the
    (noisy) samples, and as the test split f itself (noise-free) on an even grid of
    ``test_points`` over [low, high], so that test RMSE is the approximation error.

    Inputs are used as they are (x in the interval's own units: extrapolation reads the same
    units); targets are standardized with the training split's mean and std, and the metrics
    report errors in f's units. Returns a :class:`dlx.data.Dataset`.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    if n_samples < 4:
        raise ValueError(f"n_samples must be >= 4, got {n_samples}")
    _check_noise("noise", noise)
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"need finite low < high, got low={low}, high={high}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if test_points < 2:
        raise ValueError(f"test_points must be >= 2, got {test_points}")
    n_val = max(1, int(round(n_samples * val_fraction)))
    if n_val >= n_samples:
        raise ValueError(f"val_fraction {val_fraction} leaves no training sample of {n_samples}")
    f = TARGETS[target]
    x = rng.uniform(low, high, n_samples)                                # (N,)
    y = f(x) + noise * rng.standard_normal(n_samples)
    val, train = np.arange(n_val), np.arange(n_val, n_samples)           # x is already random
    mean, scale = float(y[train].mean()), float(y[train].std()) or 1.0
    grid = np.linspace(low, high, test_points)

    def arrays(x, y):  # (N, 1) inputs, (N, 1) standardized targets
        return x[:, None].astype(dtype), ((y - mean) / scale)[:, None].astype(dtype)

    (X_tr, t_tr), (X_va, t_va), (X_te, t_te) = (arrays(x[train], y[train]),
                                                arrays(x[val], y[val]), arrays(grid, f(grid)))
    description = {"task": "regression", "target": target, "units": "f(x)", "noise": noise,
                   "interval": [low, high], "target_mean": mean, "target_scale": scale,
                   "sizes": {"train": len(train), "val": n_val, "test": test_points}}
    return Dataset("function", X_tr, t_tr, X_va, t_va, DataSpec.regression(1, 1), X_te, t_te,
                   target_mean=np.array([mean]), target_scale=np.array([scale]),
                   description=description)


FUNCTIONS = {"function": function_dataset}  # regression data sets generated from a formula
