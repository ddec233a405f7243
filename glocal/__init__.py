"""glocal: fit, apply, evaluate and reproduce gLocal human-aligned representations."""

from __future__ import annotations

import importlib
import typing

__version__ = "0.1.0"

from glocal.errors import DamagedCacheWarning, DataUnavailableError, FitDivergedError, GlocalError

# Public names and the module that defines each. They load on first use, so that
# `import glocal` (and the CLI) stays fast: torch, pandas and scipy come in only when needed.
_EXPORTS: dict[str, str] = {
    "GlocalTransform": "glocal.transform",
    "PRESETS": "glocal.transform",
    "GlocalSearchCV": "glocal.search",
    "Engine": "glocal.engine",
    "TripletSplit": "glocal.triplets",
    "load_things_csv": "glocal.triplets",
    "load_triplets": "glocal.triplets",
    "object_disjoint_folds": "glocal.triplets",
    "random_split": "glocal.triplets",
    "save_triplets": "glocal.triplets",
    "simulate_triplets": "glocal.triplets",
    "validate_triplets": "glocal.triplets",
    "odd_one_out_accuracy": "glocal.scoring",
    "ClusterInterval": "glocal.evaluation.intervals",
    "cluster_difference": "glocal.evaluation.intervals",
    "cluster_interval": "glocal.evaluation.intervals",
    "NoiseCeiling": "glocal.evaluation.rsa",
    "RSAResult": "glocal.evaluation.rsa",
    "noise_ceiling": "glocal.evaluation.rsa",
    "pair_alignment": "glocal.evaluation.rsa",
    "rsa": "glocal.evaluation.rsa",
    "rsa_difference": "glocal.evaluation.rsa",
    "rsa_matrix": "glocal.evaluation.rsa",
    "paired_similarity": "glocal.evaluation.similarity",
    "similarity_matrix": "glocal.scoring",
    "SimilarityJudgements": "glocal.data.human",
    "simlex999": "glocal.data.human",
    "similarity_judgements": "glocal.data.human",
    "nearest_neighbours": "glocal.scoring",
    "neighbour_overlap": "glocal.evaluation.neighbours",
    "neighbourhood_correlation": "glocal.evaluation.neighbours",
    "few_shot": "glocal.evaluation.few_shot",
    "logistic_regression_cv": "glocal.evaluation.few_shot",
    "nearest_centroid": "glocal.evaluation.few_shot",
    "summarize_few_shot": "glocal.evaluation.few_shot",
    "ShiftResult": "glocal.evaluation.shift",
    "shift_accuracy": "glocal.evaluation.shift",
    "AnomalyDetectionResult": "glocal.evaluation.anomaly",
    "anomaly_detection": "glocal.evaluation.anomaly",
    "knn_anomaly_scores": "glocal.evaluation.anomaly",
    "category_labels": "glocal.evaluation.categories",
    "things_anomaly_detection": "glocal.evaluation.categories",
    "things_few_shot": "glocal.evaluation.categories",
    "Downstream": "glocal.evaluation.comparison",
    "EvalSettings": "glocal.evaluation.comparison",
    "compare": "glocal.evaluation.comparison",
    "compare_units": "glocal.evaluation.comparison",
    "resolve_transform": "glocal.evaluation.comparison",
}
_SUBMODULES = {
    "data",
    "engine",
    "evaluation",
    "features",
    "losses",
    "planted",
    "released",
    "scoring",
    "search",
    "things",
}


def __getattr__(name: str) -> typing.Any:
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


__all__ = [
    "DamagedCacheWarning",
    "DataUnavailableError",
    "FitDivergedError",
    "GlocalError",
    "__version__",
    *sorted(_EXPORTS),
]
