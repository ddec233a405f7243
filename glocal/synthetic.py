"""Planted problems: features that linearly contain a hidden human embedding."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glocal.triplets import simulate_triplets


@dataclass(frozen=True)
class PlantedProblem:
    """Network features ``X``, hidden human embedding ``H = X A``, triplets simulated from ``H``,
    and generic contrast features drawn like ``X``."""

    X: np.ndarray
    H: np.ndarray
    A: np.ndarray
    triplets: np.ndarray
    contrast: np.ndarray


def planted_problem(
    n_objects: int = 1854,
    n_features: int = 64,
    n_dims: int = 16,
    n_triplets: int = 300_000,
    n_contrast: int = 2000,
    human_scale: float = 1.0,
    seed: int = 0,
) -> PlantedProblem:
    """Draw X ~ N(0, I) (float32), a hidden map A with ``H = X A`` of per-dimension variance
    ``human_scale² / n_dims``·p, simulate triplets from H, and contrast rows from the same law."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_objects, n_features)).astype(np.float32)
    A = rng.standard_normal((n_features, n_dims)) * (human_scale / np.sqrt(n_features))
    H = X.astype(np.float64) @ A
    triplets = simulate_triplets(H, n_triplets, seed=seed + 1)
    contrast = rng.standard_normal((n_contrast, n_features)).astype(np.float32)
    return PlantedProblem(X=X, H=H, A=A, triplets=triplets, contrast=contrast)
