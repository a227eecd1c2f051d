"""Seeded synthetic 2-D classification data: ``fn(rng, **options) -> (X (N, 2), y (N,))``."""

from __future__ import annotations

import numpy as np


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
