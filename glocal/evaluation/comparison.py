"""The comparison entry point: all measurements of a set of named transforms in one tidy table."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from tqdm import tqdm

from glocal._params import verbose_level
from glocal.errors import GlocalError
from glocal.evaluation.alignment import triplet_correct
from glocal.evaluation.anomaly import anomaly_detection
from glocal.evaluation.categories import (
    Overlap,
    check_object_indices,
    things_anomaly_detection,
    things_few_shot,
)
from glocal.evaluation.few_shot import DEFAULT_CS, Classifier, few_shot
from glocal.evaluation.intervals import cluster_interval
from glocal.evaluation.neighbours import neighbour_overlap, neighbourhood_correlation
from glocal.evaluation.rsa import rsa
from glocal.evaluation.similarity import Similarity, apply_transform, default_similarity
from glocal.io import check_feature_matrix

#: The columns of :func:`compare`'s table, before the ``setting_*`` columns.
COLUMNS = (
    "transform",  # the name given in ``transforms``
    "source",  # "original", the npz path, or the object's class
    "measurement",  # odd_one_out, rsa, neighbour_overlap, neighbourhood_correlation, ...
    "dataset",  # things, contrast, or a downstream dataset's name
    "metric",  # accuracy, spearman, overlap, auroc, mean_auroc
    "value",
    "ci_low",
    "ci_high",
    "n",  # triplets, objects, items, test items or repeats behind the value
    "unit",  # what the interval resamples: concepts, objects, classes ("" without interval)
    "k",  # neighbourhood size (local structure, anomaly detection)
    "shots",
    "classifier",
    "category",  # the normal class of a per-class AUROC
    "similarity",
)


@dataclass(frozen=True)
class EvalSettings:
    """Settings of every measurement; :func:`compare` records them as ``setting_*`` columns.

    Parameters
    ----------
    similarity : {"auto", "dot", "cosine", "pearson"}, default="auto"
        Similarity for odd-one-out accuracy and RSA; ``"auto"`` scores original features with
        cosines and transformed ones with dot products (the paper's convention).
    reference_similarity : {"dot", "cosine", "pearson"}, default="dot"
        Similarity of the human reference embedding in RSA (VICE: dot products).
    n_bootstrap : int, default=200
        Bootstrap replicates of the RSA interval (0: none).
    confidence : float, default=0.95
        Level of every interval: odd-one-out accuracy over the concepts of the triplets,
        RSA over objects, few-shot accuracy and mean AUROC over classes.
    ks : tuple of int, default=(1, 5, 10, 50)
        Neighbourhood sizes of the k-NN overlap.
    local_similarity : {"cosine", "dot", "pearson"}, default="cosine"
        Similarity that defines neighbourhoods for the overlap and the correlation.
    neighbourhood_k : int, default=10
        Neighbours whose similarities the neighbourhood correlation compares.
    shots : tuple of int, default=(1, 5, 10)
        Training examples per class in the few-shot episodes.
    n_test_per_class : int or None, default=None
        Test items per class in each episode of the ``downstream`` datasets (None: all test
        items of the class).
    n_repeats : int, default=10
        Episodes per setting (per number of shots).
    classifiers : tuple of {"logreg", "centroid"}, default=("logreg", "centroid")
        Few-shot classifiers.
    Cs : tuple of float, default=DEFAULT_CS
        Inverse L2 strengths the logistic regression chooses from by cross-validation
        (default: the 11 powers of ten from 1e-4 to 1e6).
    cv_folds : int, default=5
        Folds of that cross-validation.
    anomaly_k : int, default=5
        Nearest normal training items whose mean cosine distance scores an item.
    things_n_test_per_class : int, default=5
        Test concepts per category in the THINGS category few-shot task.
    overlap : {"largest", "smallest", "drop"}, default="largest"
        How THINGS concepts in several categories are labelled (see
        :func:`glocal.evaluation.categories.category_labels`).
    device : str, default="cpu"
        Torch device of the few-shot and anomaly computations.
    seed : int, default=0
        Seeds episodes and bootstrap (and the THINGS anomaly-detection split into reference
        and test concepts).
    """

    similarity: Literal["auto", "dot", "cosine", "pearson"] = "auto"
    reference_similarity: Similarity = "dot"
    n_bootstrap: int = 200
    confidence: float = 0.95
    ks: tuple[int, ...] = (1, 5, 10, 50)
    local_similarity: Similarity = "cosine"
    neighbourhood_k: int = 10
    shots: tuple[int, ...] = (1, 5, 10)
    n_test_per_class: int | None = None
    n_repeats: int = 10
    classifiers: tuple[Classifier, ...] = ("logreg", "centroid")
    Cs: tuple[float, ...] = field(default=DEFAULT_CS)
    cv_folds: int = 5
    anomaly_k: int = 5
    things_n_test_per_class: int = 5
    overlap: Overlap = "largest"
    device: str = "cpu"
    seed: int = 0


Apply = Callable[[np.ndarray], np.ndarray]


def resolve_transform(spec: Any, name: str = "transform") -> tuple[Apply | None, str]:
    """Turn ``"original"``, a fitted object with ``.transform`` or an npz path into a map.

    Returns (function or None for the identity, a description of the source).

    Parameters
    ----------
    spec : str, path-like or object
        ``"original"`` (the identity), a fitted object with a callable ``.transform`` (e.g. a
        :class:`~glocal.GlocalTransform`), or the path of a saved transform (a name ending in
        ``.npz`` or an existing file), read with :meth:`glocal.GlocalTransform.load`.
    name : str, default="transform"
        The transform's name in ``compare``'s ``transforms``, for the error message.

    Returns
    -------
    apply : callable or None
        The map (the object's ``transform`` method), or None for the identity.
    source : str
        ``"original"``, the npz path, or for an object the ``"path"`` entry of its
        ``metadata_`` when it has one, else its class name.

    Raises
    ------
    GlocalError
        For any other ``spec``, or an npz file that cannot be read as a transform.
    """
    from glocal.transform import GlocalTransform

    if isinstance(spec, str) and spec == "original":
        return None, "original"
    if hasattr(spec, "transform") and callable(spec.transform):
        path = getattr(spec, "metadata_", {}).get("path") if hasattr(spec, "metadata_") else None
        return spec.transform, str(path or type(spec).__name__)
    if isinstance(spec, (str, os.PathLike)):
        path = Path(spec)
        if path.suffix == ".npz" or path.is_file():
            return GlocalTransform.load(path).transform, str(path)
    raise GlocalError(
        f"transforms[{name!r}]: unknown transform {spec!r}; use 'original', a fitted transform "
        "(an object with .transform, e.g. GlocalTransform) or the path of a saved .npz file"
    )


def _named(transforms: Mapping[str, Any] | Sequence[Any]) -> dict[str, Any]:
    if isinstance(transforms, Mapping):
        named = dict(transforms)
    elif isinstance(transforms, (str, os.PathLike)) or not isinstance(transforms, Sequence):
        raise GlocalError(
            "transforms: expected a mapping {name: spec} or a list of 'original'/npz paths"
        )
    else:
        named = {str(spec): spec for spec in transforms}
    if not named:
        raise GlocalError("transforms: give at least one transform (e.g. {'original': 'original'})")
    return named


def _downstream(data: Mapping[str, Sequence[Any]] | None) -> dict[str, tuple]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise GlocalError(
            "downstream: expected {name: (train_X, train_y, test_X, test_y)}, e.g. "
            "{'cifar100': (Xtr, ytr, Xte, yte)}"
        )
    out = {}
    for name, parts in data.items():
        if len(parts) != 4:
            raise GlocalError(
                f"downstream[{name!r}]: expected (train_X, train_y, test_X, test_y), "
                f"got {len(parts)} items"
            )
        out[name] = tuple(parts)
    return out


def _settings_columns(settings: EvalSettings) -> dict[str, Any]:
    columns = {}
    for key, value in asdict(settings).items():
        if isinstance(value, tuple):
            value = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
        columns[f"setting_{key}"] = value
    return columns


def compare(
    transforms: Mapping[str, Any] | Sequence[Any],
    *,
    things: np.ndarray | None = None,
    triplets: np.ndarray | None = None,
    reference: np.ndarray | None = None,
    heldout_objects: np.ndarray | Sequence[int] | None = None,
    categories: pd.DataFrame | None = None,
    contrast: np.ndarray | None = None,
    downstream: Mapping[str, Sequence[Any]] | None = None,
    settings: EvalSettings | None = None,
    verbose: int = 0,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Measure every named transform on every given feature set; one tidy row per number.

    Missing inputs skip their measurements. Settings come from ``settings`` and are recorded
    in ``setting_*`` columns.

    Parameters
    ----------
    transforms : mapping of str to spec, or sequence of spec
        {name: spec}, spec = ``"original"`` (the features as they are), a fitted object with
        ``.transform`` (e.g. a :class:`~glocal.GlocalTransform`) or an npz path (see
        :func:`resolve_transform`). A sequence of specs names each one ``str(spec)``.
    things : ndarray of shape (1854, p) or None, default=None
        THINGS object features, the transforms' input space. With ``triplets`` → odd-one-out
        accuracy; with ``reference`` → RSA; with ``categories`` and ``heldout_objects`` → the
        THINGS category few-shot and anomaly-detection tasks.
    triplets : ndarray of shape (n, 3) or None, default=None
        Held-out triplets of the THINGS objects → odd-one-out accuracy with a cluster-robust
        interval over the triplets' concepts (needs ``things``).
    reference : ndarray of shape (1854, q) or None, default=None
        A reference embedding of the same objects (e.g. the VICE human embedding) → RSA with a
        bootstrap interval over objects, on ``heldout_objects`` if given, else on all objects
        (needs ``things``).
    heldout_objects : array-like of int or None, default=None
        Distinct 0-based indices of the held-out THINGS objects (needs ``things``): the
        objects of RSA and of the THINGS category tasks.
    categories : pandas.DataFrame or None, default=None
        THINGS category membership, 0/1, one row per object and one column per category
        (``glocal.things.categories()``) → the THINGS category tasks (needs ``things`` and
        ``heldout_objects``).
    contrast : ndarray of shape (n_c, p) or None, default=None
        Held-out generic features → neighbour overlap (per k) and neighbourhood correlation
        between the original and the transformed features.
    downstream : mapping or None, default=None
        {dataset: (train_X, train_y, test_X, test_y)} → few-shot accuracy (over all episodes'
        test items, with an interval over the classes, per classifier and shots) and
        one-vs-rest anomaly AUROC (per class, and its mean with an interval over classes).
    settings : EvalSettings or None, default=None
        Settings of every measurement (None: ``EvalSettings()``).
    verbose : int, default=0
        0: quiet; 1 or more: progress bars.
    progress : bool or None, default=None
        Deprecated name of ``verbose`` (``True`` is 1): accepted for one release, with a
        :class:`FutureWarning`.

    Returns
    -------
    pandas.DataFrame
        One row per number, with the columns ``COLUMNS`` (transform, source, measurement,
        dataset, metric, value, ci_low, ci_high, n, unit, k, shots, classifier, category,
        similarity; missing where they do not apply), one ``setting_*`` column per field of
        ``settings`` and ``glocal_version``.

    Raises
    ------
    GlocalError
        For ``transforms`` that are neither a mapping nor a sequence, are empty or hold an
        unknown spec; ``downstream`` that is not a mapping of 4-tuples; ``triplets``,
        ``reference``, ``heldout_objects`` or ``categories`` without the inputs they need;
        invalid features, object indices, triplets or labels; and the errors of the
        measurements themselves.
    """
    verbose = verbose_level(verbose, progress, "compare")
    settings = settings or EvalSettings()
    named = {name: resolve_transform(spec, name) for name, spec in _named(transforms).items()}
    data = _downstream(downstream)
    if things is not None:
        things = check_feature_matrix(things, "things")
    if contrast is not None:
        contrast = check_feature_matrix(contrast, "contrast")
    if categories is not None and (things is None or heldout_objects is None):
        raise GlocalError("categories: the THINGS tasks also need things= and heldout_objects=")
    if things is None and (triplets is not None or reference is not None):
        raise GlocalError("triplets/reference: pass the THINGS features as things= as well")
    heldout = None
    if heldout_objects is not None:
        if things is None:
            raise GlocalError("heldout_objects: pass the THINGS features as things= as well")
        heldout = check_object_indices(heldout_objects, len(things), "heldout_objects")
    rows: list[dict[str, Any]] = []
    for name, (apply, source) in tqdm(named.items(), desc="transforms", disable=not verbose):
        add = functools.partial(_add, rows, name, source)
        sim: Similarity = (
            default_similarity(transformed=apply is not None)
            if settings.similarity == "auto"
            else settings.similarity
        )
        if things is not None:
            (Z,) = apply_transform(apply, things)
            if triplets is not None:
                correct = triplet_correct(Z, np.asarray(triplets), sim).astype(float)
                interval = cluster_interval(correct, np.asarray(triplets),
                                            confidence=settings.confidence)  # fmt: skip
                add(
                    measurement="odd_one_out",
                    dataset="things",
                    metric="accuracy",
                    value=interval.estimate,
                    ci_low=interval.ci_low,
                    ci_high=interval.ci_high,
                    n=len(triplets),
                    unit=f"{interval.n_units} concepts",
                    similarity=sim,
                )
            if reference is not None:
                objects = slice(None) if heldout is None else heldout
                result = rsa(
                    Z[objects],
                    np.asarray(reference)[objects],
                    sim,
                    settings.reference_similarity,
                    settings.n_bootstrap,
                    settings.confidence,
                    settings.seed,
                )
                add(
                    measurement="rsa",
                    dataset="things",
                    metric="spearman",
                    value=result.rho,
                    ci_low=result.ci_low,
                    ci_high=result.ci_high,
                    n=result.n_objects,
                    unit=f"{result.n_objects} objects",
                    similarity=sim,
                )
            if categories is not None:
                assert heldout is not None  # checked above: the THINGS tasks need it
                _things_tasks(add, Z, categories, heldout, settings, verbose)
        if contrast is not None:
            _local_structure(add, contrast, apply_transform(apply, contrast)[0], settings)
        for dataset, (train_X, train_y, test_X, test_y) in data.items():
            mapped_train, mapped_test = apply_transform(
                apply, np.asarray(train_X), np.asarray(test_X)
            )
            _downstream_tasks(
                add,
                dataset,
                mapped_train,
                np.asarray(train_y),
                mapped_test,
                np.asarray(test_y),
                settings,
                verbose,
            )
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    for key, value in _settings_columns(settings).items():
        table[key] = value
    from glocal import __version__

    table["glocal_version"] = __version__
    return table


def _add(rows: list[dict[str, Any]], name: str, source: str, **row: Any) -> None:
    rows.append({"transform": name, "source": source, **row})


def _local_structure(add: Callable, X: np.ndarray, Y: np.ndarray, settings: EvalSettings) -> None:
    sim = settings.local_similarity
    for k, value in neighbour_overlap(X, Y, settings.ks, sim).items():
        add(
            measurement="neighbour_overlap",
            dataset="contrast",
            metric="overlap",
            value=value,
            n=len(X),
            k=k,
            similarity=sim,
        )
    value = neighbourhood_correlation(X, Y, settings.neighbourhood_k, sim)
    add(
        measurement="neighbourhood_correlation",
        dataset="contrast",
        metric="spearman",
        value=value,
        n=len(X),
        k=settings.neighbourhood_k,
        similarity=sim,
    )


def _few_shot_rows(add: Callable, dataset: str, results: pd.DataFrame, settings: EvalSettings):
    """One row per (shots, classifier): the accuracy over all episodes' test items, with an
    interval over the classes (``results`` has one row per class of each episode)."""
    for (shots, classifier), part in results.groupby(["shots", "classifier"], sort=False):
        interval = cluster_interval(part["accuracy"].to_numpy(float), part["class"].to_numpy(),
                                    weights=part["n_test"].to_numpy(float),
                                    confidence=settings.confidence)  # fmt: skip
        add(
            measurement="few_shot",
            dataset=dataset,
            metric="accuracy",
            value=interval.estimate,
            ci_low=interval.ci_low,
            ci_high=interval.ci_high,
            n=int(part["repeat"].nunique()),
            unit=f"{interval.n_units} classes",
            shots=shots,
            classifier=classifier,
        )


def _anomaly_rows(add: Callable, dataset: str, result: Any, settings: EvalSettings) -> None:
    for row in result.per_class.to_dict("records"):
        add(
            measurement="anomaly_detection",
            dataset=dataset,
            metric="auroc",
            value=row["auroc"],
            n=row["n_test_normal"] + row["n_test_anomalous"],
            k=settings.anomaly_k,
            category=row["class"],
            similarity="cosine",
        )
    per_class = result.per_class
    interval = cluster_interval(per_class["auroc"].to_numpy(float), per_class["class"].to_numpy(),
                                confidence=settings.confidence)  # fmt: skip
    add(
        measurement="anomaly_detection",
        dataset=dataset,
        metric="mean_auroc",
        value=result.mean_auroc,
        ci_low=interval.ci_low,
        ci_high=interval.ci_high,
        n=len(per_class),
        unit=f"{interval.n_units} classes",
        k=settings.anomaly_k,
        similarity="cosine",
    )


def _downstream_tasks(
    add: Callable,
    dataset: str,
    train_X: np.ndarray,
    train_y: np.ndarray,
    test_X: np.ndarray,
    test_y: np.ndarray,
    settings: EvalSettings,
    verbose: int,
) -> None:
    results = few_shot(
        train_X,
        train_y,
        test_X,
        test_y,
        shots=settings.shots,
        n_test_per_class=settings.n_test_per_class,
        n_repeats=settings.n_repeats,
        classifier=settings.classifiers,
        Cs=settings.Cs,
        cv_folds=settings.cv_folds,
        device=settings.device,
        seed=settings.seed,
        verbose=verbose,
        per_class=True,
    )
    _few_shot_rows(add, dataset, results, settings)
    result = anomaly_detection(
        train_X,
        train_y,
        test_X,
        test_y,
        k=settings.anomaly_k,
        device=settings.device,
        verbose=verbose,
    )
    _anomaly_rows(add, dataset, result, settings)


def _things_tasks(
    add: Callable,
    Z: np.ndarray,
    categories: pd.DataFrame,
    heldout: np.ndarray,
    settings: EvalSettings,
    verbose: int,
) -> None:
    results = things_few_shot(
        Z,
        categories,
        heldout,
        shots=settings.shots,
        n_test_per_class=settings.things_n_test_per_class,
        n_repeats=settings.n_repeats,
        classifier=settings.classifiers,
        overlap=settings.overlap,
        seed=settings.seed,
        verbose=verbose,
        Cs=settings.Cs,
        cv_folds=settings.cv_folds,
        device=settings.device,
        per_class=True,
    )
    _few_shot_rows(add, "things_categories", results, settings)
    result = things_anomaly_detection(
        Z,
        categories,
        heldout,
        k=settings.anomaly_k,
        overlap=settings.overlap,
        seed=settings.seed,
        device=settings.device,
    )
    _anomaly_rows(add, "things_categories", result, settings)
