"""glocal: fit, apply, evaluate and reproduce gLocal human-aligned representations."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from glocal.errors import DataUnavailableError, GlocalError

# Public names and the module that defines each. They load on first use, so that
# `import glocal` (and the CLI) stays fast: torch, pandas and scipy come in only when needed.
_EXPORTS: dict[str, str] = {
    "EvalSettings": "glocal.compare",
    "compare": "glocal.compare",
    "resolve_transform": "glocal.compare",
    "AnomalyDetectionResult": "glocal.downstream",
    "anomaly_detection": "glocal.downstream",
    "few_shot": "glocal.downstream",
    "knn_anomaly_scores": "glocal.downstream",
    "logistic_regression_cv": "glocal.downstream",
    "nearest_centroid": "glocal.downstream",
    "summarize_few_shot": "glocal.downstream",
    "RSAResult": "glocal.metrics",
    "nearest_neighbours": "glocal.metrics",
    "neighbour_overlap": "glocal.metrics",
    "neighbourhood_correlation": "glocal.metrics",
    "odd_one_out_accuracy": "glocal.metrics",
    "rsa": "glocal.metrics",
    "category_labels": "glocal.things_tasks",
    "things_anomaly_detection": "glocal.things_tasks",
    "things_few_shot": "glocal.things_tasks",
    "PRESETS": "glocal.transform",
    "GlocalTransform": "glocal.transform",
    "TripletSplit": "glocal.triplets",
    "load_things_csv": "glocal.triplets",
    "load_triplets": "glocal.triplets",
    "object_disjoint_folds": "glocal.triplets",
    "random_split": "glocal.triplets",
    "save_triplets": "glocal.triplets",
    "simulate_triplets": "glocal.triplets",
    "validate_triplets": "glocal.triplets",
}
_SUBMODULES = {"data", "things", "features", "losses", "experiments", "plotting"}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"glocal.{name}")
    else:
        raise AttributeError(f"module 'glocal' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | _SUBMODULES)


__all__ = ["DataUnavailableError", "GlocalError", "__version__", *sorted(_EXPORTS)]
