"""glocal: fit, apply, evaluate and reproduce gLocal human-aligned representations."""

from __future__ import annotations

__version__ = "0.1.0"

from glocal import data, things
from glocal.compare import EvalSettings, compare, resolve_transform
from glocal.downstream import (
    AnomalyDetectionResult,
    anomaly_detection,
    few_shot,
    knn_anomaly_scores,
    logistic_regression_cv,
    nearest_centroid,
    summarize_few_shot,
)
from glocal.errors import DataUnavailableError, GlocalError
from glocal.metrics import (
    RSAResult,
    nearest_neighbours,
    neighbour_overlap,
    neighbourhood_correlation,
    odd_one_out_accuracy,
    rsa,
)
from glocal.things_tasks import category_labels, things_anomaly_detection, things_few_shot
from glocal.transform import PRESETS, GlocalTransform
from glocal.triplets import (
    TripletSplit,
    load_things_csv,
    load_triplets,
    object_disjoint_folds,
    random_split,
    save_triplets,
    simulate_triplets,
    validate_triplets,
)


def __getattr__(name: str):
    # glocal.features imports open_clip and timm; load it only when asked for.
    if name == "features":
        import importlib

        return importlib.import_module("glocal.features")
    raise AttributeError(f"module 'glocal' has no attribute {name!r}")


__all__ = [
    "PRESETS",
    "AnomalyDetectionResult",
    "DataUnavailableError",
    "EvalSettings",
    "GlocalError",
    "GlocalTransform",
    "RSAResult",
    "TripletSplit",
    "__version__",
    "anomaly_detection",
    "category_labels",
    "compare",
    "data",
    "few_shot",
    "knn_anomaly_scores",
    "load_things_csv",
    "load_triplets",
    "logistic_regression_cv",
    "nearest_centroid",
    "nearest_neighbours",
    "neighbour_overlap",
    "neighbourhood_correlation",
    "object_disjoint_folds",
    "odd_one_out_accuracy",
    "random_split",
    "resolve_transform",
    "rsa",
    "save_triplets",
    "simulate_triplets",
    "summarize_few_shot",
    "things",
    "things_anomaly_detection",
    "things_few_shot",
    "validate_triplets",
]
