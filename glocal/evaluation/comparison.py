"""The comparison entry point: all measurements of a set of named transforms in one tidy table."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from tqdm import tqdm

from glocal._params import verbose_level
from glocal.errors import GlocalError
from glocal.evaluation.alignment import triplet_correct
from glocal.evaluation.anomaly import anomaly_detection, shifted_anomaly_detection
from glocal.evaluation.categories import (
    Overlap,
    check_object_indices,
    things_anomaly_detection,
    things_few_shot,
)
from glocal.evaluation.few_shot import DEFAULT_CS, Classifier, few_shot
from glocal.evaluation.intervals import cluster_interval
from glocal.evaluation.neighbours import item_overlaps, neighbourhood_correlation
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


#: The measurements of :func:`compare`, in the order of its rows for each transform.
MEASUREMENTS = ("odd_one_out", "rsa", "few_shot", "anomaly_detection", "neighbour_overlap",
                "neighbourhood_correlation")  # fmt: skip
#: The measurements with unit rows (:func:`compare_units`): what an interval over them
#: resamples (their columns), and the column that weighs a unit in the mean (None: equal).
UNITS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "odd_one_out": (("triplet_i", "triplet_j", "triplet_k"), None),  # the triplet's concepts
    "neighbour_overlap": (("item",), None),
    "few_shot": (("class",), "n_test"),  # pooled over test items: weighted by them
    "anomaly_detection": (("class",), None),
}
#: The first columns of :func:`compare_units`'s table; then the unit's own columns, among them
#: ``value`` where the measuring function names it after its metric (``accuracy``, ``auroc``).
UNIT_COLUMNS = ("transform", "source", "measurement", "dataset", "metric")


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
    things_n_test_per_class : int or None, default=5
        Test concepts per category in each episode of the THINGS category few-shot task
        (None: every held-out member of the category that is not a support concept).
    anomaly_near : int or None, default=None
        THINGS anomaly detection's protocol: None scores every other category's test concepts
        as anomalies (one-vs-rest); n only those of the n categories nearest to the normal one
        in ``reference`` (the "near" protocol; needs ``reference``).
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
    things_n_test_per_class: int | None = 5
    anomaly_near: int | None = None
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


@dataclass(frozen=True, eq=False)
class Downstream:
    """A downstream dataset of :func:`compare` with its protocol; a plain
    ``(train_X, train_y, test_X, test_y)`` tuple is one with the defaults.

    Parameters
    ----------
    train_X, train_y, test_X, test_y : ndarray
        Features and class labels of the training (support) and test pools.
    test_groups : ndarray of shape (n_test,) or None, default=None
        With ``fixed_test``: the group of each test item (e.g. the BREEDS target subclass); the
        fixed test set takes up to ``n_test_per_class`` items per group instead of per class.
    fixed_test : bool, default=False
        Few-shot learning tests every episode on one test set drawn once (the official image
        protocol; :func:`glocal.evaluation.few_shot.fixed_test_set`) instead of drawing
        ``settings.n_test_per_class`` test items per class for each episode.
    train_fine, test_fine : ndarray or None, default=None
        Fine labels of the two pools (with ``protocol="shift"``).
    protocol : {"standard", "shift"}, default="standard"
        Anomaly detection: one-vs-rest (:func:`glocal.evaluation.anomaly.anomaly_detection`) or
        the subclass shift of CIFAR-100-shift
        (:func:`glocal.evaluation.anomaly.shifted_anomaly_detection`, needs the fine labels).

    Examples
    --------
    >>> import numpy as np
    >>> from glocal.evaluation.comparison import Downstream
    >>> X, y = np.eye(4), np.array([0, 0, 1, 1])
    >>> Downstream(X, y, X, y, fixed_test=True).protocol
    'standard'
    """

    train_X: np.ndarray
    train_y: np.ndarray
    test_X: np.ndarray
    test_y: np.ndarray
    test_groups: np.ndarray | None = None
    fixed_test: bool = False
    train_fine: np.ndarray | None = None
    test_fine: np.ndarray | None = None
    protocol: Literal["standard", "shift"] = "standard"


def _downstream(data: Mapping[str, Sequence[Any] | Downstream] | None) -> dict[str, Downstream]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise GlocalError(
            "downstream: expected {name: (train_X, train_y, test_X, test_y)}, e.g. "
            "{'cifar100': (Xtr, ytr, Xte, yte)}"
        )
    out = {}
    for name, parts in data.items():
        if isinstance(parts, Downstream):
            task = parts
        elif len(parts) != 4:
            raise GlocalError(
                f"downstream[{name!r}]: expected (train_X, train_y, test_X, test_y) or a "
                f"Downstream, got {len(parts)} items"
            )
        else:
            task = Downstream(*parts)
        if task.protocol not in ("standard", "shift"):
            raise GlocalError(
                f"downstream[{name!r}].protocol: unknown {task.protocol!r}; use 'standard' or "
                "'shift'"
            )
        if task.protocol == "shift" and (task.train_fine is None or task.test_fine is None):
            raise GlocalError(
                f"downstream[{name!r}]: protocol 'shift' needs train_fine and test_fine (the "
                "fine labels of both pools)"
            )
        out[name] = replace(task, train_X=np.asarray(task.train_X),
                            train_y=np.asarray(task.train_y), test_X=np.asarray(task.test_X),
                            test_y=np.asarray(task.test_y))  # fmt: skip
    return out


def _settings_columns(settings: EvalSettings) -> dict[str, Any]:
    columns = {}
    for key, value in asdict(settings).items():
        if isinstance(value, tuple):
            value = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
        columns[f"setting_{key}"] = value
    return columns


def _check_inputs(
    things: np.ndarray | None,
    triplets: np.ndarray | None,
    reference: np.ndarray | None,
    heldout_objects: np.ndarray | Sequence[int] | None,
    categories: pd.DataFrame | None,
    contrast: np.ndarray | None,
    settings: EvalSettings,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """(things, heldout, contrast) checked; every combination error in one line."""
    if things is not None:
        things = check_feature_matrix(things, "things")
    if contrast is not None:
        contrast = check_feature_matrix(contrast, "contrast")
    if categories is not None and (things is None or heldout_objects is None):
        raise GlocalError("categories: the THINGS tasks also need things= and heldout_objects=")
    if things is None and (triplets is not None or reference is not None):
        raise GlocalError("triplets/reference: pass the THINGS features as things= as well")
    if settings.anomaly_near is not None and (categories is None or reference is None):
        raise GlocalError(
            "settings.anomaly_near: the near protocol ranks categories in reference=; pass "
            "reference= and categories= as well, or leave anomaly_near at None"
        )
    heldout = None
    if heldout_objects is not None:
        if things is None:
            raise GlocalError("heldout_objects: pass the THINGS features as things= as well")
        heldout = check_object_indices(heldout_objects, len(things), "heldout_objects")
    return things, heldout, contrast


def _measure(
    transforms: Mapping[str, Any] | Sequence[Any],
    things: np.ndarray | None,
    triplets: np.ndarray | None,
    reference: np.ndarray | None,
    heldout_objects: np.ndarray | Sequence[int] | None,
    categories: pd.DataFrame | None,
    contrast: np.ndarray | None,
    downstream: Mapping[str, Sequence[Any] | Downstream] | None,
    settings: EvalSettings,
    wanted: frozenset[str],
    verbose: int,
) -> Iterator[pd.DataFrame]:
    """Every measurement of every transform, in order: unit tables (one row per unit, see
    :data:`UNITS`) and, for RSA and the neighbourhood correlation, one-row tables that are
    already summaries. Each carries the :data:`UNIT_COLUMNS` prefix."""
    named = {name: resolve_transform(spec, name) for name, spec in _named(transforms).items()}
    data = _downstream(downstream)
    things, heldout, contrast = _check_inputs(
        things, triplets, reference, heldout_objects, categories, contrast, settings
    )
    for name, (apply, source) in tqdm(named.items(), desc="transforms", disable=not verbose):
        prefix = functools.partial(_prefixed, name, source)
        sim: Similarity = (
            default_similarity(transformed=apply is not None)
            if settings.similarity == "auto"
            else settings.similarity
        )
        if things is not None:
            (Z,) = apply_transform(apply, things)
            if triplets is not None and "odd_one_out" in wanted:
                yield prefix("odd_one_out", "things", "accuracy",
                             _triplet_units(Z, np.asarray(triplets), sim))  # fmt: skip
            if reference is not None and "rsa" in wanted:
                objects = slice(None) if heldout is None else heldout
                result = rsa(Z[objects], np.asarray(reference)[objects], sim,
                             settings.reference_similarity, settings.n_bootstrap,
                             settings.confidence, settings.seed)  # fmt: skip
                yield prefix("rsa", "things", "spearman", pd.DataFrame([{
                    "value": result.rho, "ci_low": result.ci_low, "ci_high": result.ci_high,
                    "n": result.n_objects, "unit": f"{result.n_objects} objects",
                    "similarity": sim,
                }]))  # fmt: skip
            if categories is not None:
                assert heldout is not None  # checked above: the THINGS tasks need it
                yield from _things_tasks(prefix, Z, categories, heldout, reference, settings,
                                         wanted, verbose)  # fmt: skip
        if contrast is not None:
            (Y,) = apply_transform(apply, contrast)
            if "neighbour_overlap" in wanted:
                yield prefix("neighbour_overlap", "contrast", "overlap",
                             _overlap_units(contrast, Y, settings))  # fmt: skip
            if "neighbourhood_correlation" in wanted:
                sim_local = settings.local_similarity
                value = neighbourhood_correlation(contrast, Y, settings.neighbourhood_k, sim_local)
                yield prefix("neighbourhood_correlation", "contrast", "spearman", pd.DataFrame([{
                    "value": value, "n": len(contrast), "k": settings.neighbourhood_k,
                    "similarity": sim_local,
                }]))  # fmt: skip
        for dataset, task in data.items():
            mapped_train, mapped_test = apply_transform(apply, task.train_X, task.test_X)
            mapped = replace(task, train_X=mapped_train, test_X=mapped_test)
            try:
                yield from _downstream_tasks(prefix, dataset, mapped, settings, wanted, verbose)
            except GlocalError as err:
                if type(err) is not GlocalError:  # a subclass carries more than its message
                    raise
                # the measuring function names its own argument; say which dataset it was
                raise GlocalError(f"downstream[{dataset!r}]: {err}") from err


def _prefixed(
    name: str, source: str, measurement: str, dataset: str, metric: str, frame: pd.DataFrame
) -> pd.DataFrame:
    prefix = {"transform": name, "source": source, "measurement": measurement,
              "dataset": dataset, "metric": metric}  # fmt: skip
    return pd.concat([pd.DataFrame(prefix, index=frame.index), frame], axis=1)


def _triplet_units(Z: np.ndarray, triplets: np.ndarray, similarity: Similarity) -> pd.DataFrame:
    correct = triplet_correct(Z, triplets, similarity).astype(float)
    return pd.DataFrame({
        "value": correct, "triplet": np.arange(len(triplets)), "triplet_i": triplets[:, 0],
        "triplet_j": triplets[:, 1], "triplet_k": triplets[:, 2], "similarity": similarity,
    })  # fmt: skip


def _overlap_units(X: np.ndarray, Y: np.ndarray, settings: EvalSettings) -> pd.DataFrame:
    sim = settings.local_similarity
    return pd.concat(
        [pd.DataFrame({"value": values, "item": np.arange(len(X)), "k": k, "similarity": sim})
         for k, values in item_overlaps(X, Y, settings.ks, sim).items()],
        ignore_index=True,
    )  # fmt: skip


def _class_units(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """A per-class table of the downstream functions with its ``metric`` column as ``value``."""
    return table.rename(columns={metric: "value"})


def _downstream_tasks(
    prefix: Callable[..., pd.DataFrame],
    dataset: str,
    task: Downstream,
    settings: EvalSettings,
    wanted: frozenset[str],
    verbose: int,
) -> Iterator[pd.DataFrame]:
    if "few_shot" in wanted:
        results = few_shot(
            task.train_X, task.train_y, task.test_X, task.test_y, shots=settings.shots,
            n_test_per_class=settings.n_test_per_class, n_repeats=settings.n_repeats,
            classifier=settings.classifiers, Cs=settings.Cs, cv_folds=settings.cv_folds,
            device=settings.device, seed=settings.seed, verbose=verbose, per_class=True,
            fixed_test=task.fixed_test, test_groups=task.test_groups,
        )  # fmt: skip
        yield prefix("few_shot", dataset, "accuracy", _class_units(results, "accuracy"))
    if "anomaly_detection" in wanted:
        if task.protocol == "shift":
            assert task.train_fine is not None and task.test_fine is not None  # checked
            result = shifted_anomaly_detection(
                task.train_X, task.train_fine, task.train_y, task.test_X, task.test_fine,
                task.test_y, k=settings.anomaly_k, device=settings.device, verbose=verbose,
            )  # fmt: skip
        else:
            result = anomaly_detection(task.train_X, task.train_y, task.test_X, task.test_y,
                                       k=settings.anomaly_k, device=settings.device,
                                       verbose=verbose)  # fmt: skip
        units = _class_units(result.per_class, "auroc").assign(k=settings.anomaly_k)
        yield prefix("anomaly_detection", dataset, "auroc", units)


def _things_tasks(
    prefix: Callable[..., pd.DataFrame],
    Z: np.ndarray,
    categories: pd.DataFrame,
    heldout: np.ndarray,
    reference: np.ndarray | None,
    settings: EvalSettings,
    wanted: frozenset[str],
    verbose: int,
) -> Iterator[pd.DataFrame]:
    if "few_shot" in wanted:
        results = things_few_shot(
            Z, categories, heldout, shots=settings.shots,
            n_test_per_class=settings.things_n_test_per_class, n_repeats=settings.n_repeats,
            classifier=settings.classifiers, overlap=settings.overlap, seed=settings.seed,
            verbose=verbose, Cs=settings.Cs, cv_folds=settings.cv_folds,
            device=settings.device, per_class=True,
        )  # fmt: skip
        yield prefix("few_shot", "things_categories", "accuracy", _class_units(results, "accuracy"))
    if "anomaly_detection" in wanted:
        result = things_anomaly_detection(
            Z, categories, heldout, k=settings.anomaly_k, overlap=settings.overlap,
            seed=settings.seed, device=settings.device, near=settings.anomaly_near,
            reference=None if settings.anomaly_near is None else reference,
        )  # fmt: skip
        units = _class_units(result.per_class, "auroc").assign(k=settings.anomaly_k)
        yield prefix("anomaly_detection", "things_categories", "auroc", units)


def _wanted(measurements: Collection[str] | None, allowed: Sequence[str]) -> frozenset[str]:
    if measurements is None:
        return frozenset(allowed)
    if isinstance(measurements, str):
        measurements = (measurements,)
    unknown = sorted(set(measurements) - set(allowed))
    if unknown:
        raise GlocalError(f"measurements: unknown {unknown}; choose from {list(allowed)}")
    return frozenset(measurements)


def compare_units(
    transforms: Mapping[str, Any] | Sequence[Any],
    *,
    things: np.ndarray | None = None,
    triplets: np.ndarray | None = None,
    reference: np.ndarray | None = None,
    heldout_objects: np.ndarray | Sequence[int] | None = None,
    categories: pd.DataFrame | None = None,
    contrast: np.ndarray | None = None,
    downstream: Mapping[str, Sequence[Any] | Downstream] | None = None,
    settings: EvalSettings | None = None,
    measurements: Collection[str] | None = None,
    verbose: int = 0,
) -> pd.DataFrame:
    """:func:`compare`'s measurements unit by unit: one row per transform × measurement × unit.

    The rows an interval resamples and a paired comparison matches: a test triplet for
    odd-one-out accuracy, an item (per k) for the neighbour overlap, a class of an episode
    (few-shot) or of a split (anomaly detection) downstream. :func:`summarize_compare_units` turns
    them into :func:`compare`'s rows (which is how :func:`compare` makes them); the paper's
    pages compare representations on the same rows. RSA and the neighbourhood correlation are
    statistics of a whole set of objects, with no unit rows; use :func:`compare`.

    Parameters
    ----------
    transforms, things, triplets, heldout_objects, categories, contrast, downstream
        As in :func:`compare`.
    reference : ndarray of shape (1854, q) or None, default=None
        Used here only by the near protocol of THINGS anomaly detection
        (``settings.anomaly_near``).
    settings : EvalSettings or None, default=None
        As in :func:`compare`.
    measurements : collection of str or None, default=None
        Which of :data:`UNITS` to measure (None: every one its inputs allow).
    verbose : int, default=0
        0: quiet; 1 or more: progress bars.

    Returns
    -------
    pandas.DataFrame
        The columns :data:`UNIT_COLUMNS` (transform, source, measurement, dataset, metric),
        then the unit's own columns with its ``value``: ``triplet`` and its concepts
        ``triplet_i``, ``triplet_j``, ``triplet_k`` (odd one out); ``item`` and ``k``
        (neighbour overlap); the columns of the per-class tables of :func:`glocal.few_shot`
        (``classifier``, ``shots``, ``repeat``, ``class``, ``n_test``, ...) and of
        :attr:`glocal.evaluation.anomaly.AnomalyDetectionResult.per_class` (``class``,
        ``n_test_normal``, ...) in their order, with ``accuracy`` or ``auroc`` named
        ``value``; missing where they do not apply.

    Raises
    ------
    GlocalError
        As :func:`compare`, and for unknown ``measurements``.

    Examples
    --------
    >>> import numpy as np
    >>> from glocal.evaluation.comparison import compare_units
    >>> X = np.random.default_rng(0).normal(size=(30, 4))
    >>> units = compare_units(["original"], things=X, triplets=np.array([[0, 1, 2], [3, 4, 5]]))
    >>> units[["measurement", "value", "triplet_k"]].shape
    (2, 3)
    """
    settings = settings or EvalSettings()
    wanted = _wanted(measurements, tuple(UNITS))
    frames = list(_measure(transforms, things, triplets, reference, heldout_objects, categories,
                           contrast, downstream, settings, wanted, verbose))  # fmt: skip
    if not frames:
        return pd.DataFrame(columns=[*UNIT_COLUMNS, "value"])
    return pd.concat(frames, ignore_index=True)


def summarize_compare_units(units: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """:func:`compare`'s rows from the unit rows of :func:`compare_units`.

    Per transform, measurement and dataset (and k, shots, classifier): the mean over the units
    (few-shot accuracy weighted by each class's test items: the accuracy over all test items)
    with a cluster-robust interval over the units of :data:`UNITS` (odd-one-out accuracy over
    the triplets' concepts, downstream measures over the classes;
    :func:`glocal.evaluation.intervals.cluster_interval`). The neighbour overlap is reported
    without an interval, each class's AUROC as a row of its own before their mean
    (``mean_auroc``). Returns a table with the columns :data:`COLUMNS`.
    """
    rows: list[dict[str, Any]] = []
    keys = ["transform", "source", "measurement", "dataset"]
    for _, frame in units.groupby(keys, sort=False):
        rows.extend(_summary_rows(frame, confidence))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _labels(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """The unit labels of ``columns`` as integers or strings: a table that mixes measurements
    holds them as floats (missing on the other measurements' rows) or as objects."""
    labels = frame[list(columns)].to_numpy()
    if labels.dtype.kind == "f":
        return labels.astype(np.int64)
    if labels.dtype.kind == "O":
        return labels.astype(str)
    return labels


def _summary_rows(frame: pd.DataFrame, confidence: float) -> list[dict[str, Any]]:
    first = frame.iloc[0]
    measurement = first["measurement"]
    common = {key: first[key] for key in ("transform", "source", "measurement", "dataset")}
    if measurement not in UNITS:  # already a summary (RSA, neighbourhood correlation)
        records = frame.drop(columns=list(common)).to_dict("records")
        return [{**common, **{str(key): value for key, value in row.items()}} for row in records]
    rows = []
    if measurement == "odd_one_out":
        concepts = _labels(frame, UNITS["odd_one_out"][0])
        interval = cluster_interval(frame["value"].to_numpy(float), concepts,
                                    confidence=confidence)  # fmt: skip
        rows.append({**common, "metric": "accuracy", "value": interval.estimate,
                     "ci_low": interval.ci_low, "ci_high": interval.ci_high, "n": len(frame),
                     "unit": f"{interval.n_units} concepts",
                     "similarity": first["similarity"]})  # fmt: skip
    elif measurement == "neighbour_overlap":
        for k, part in frame.groupby("k", sort=False):
            rows.append({**common, "metric": "overlap", "value": float(part["value"].mean()),
                         "n": len(part), "k": k, "similarity": first["similarity"]})  # fmt: skip
    elif measurement == "few_shot":
        for (shots, classifier), part in frame.groupby(["shots", "classifier"], sort=False):
            interval = cluster_interval(part["value"].to_numpy(float), _labels(part, ("class",)),
                                        weights=part["n_test"].to_numpy(float),
                                        confidence=confidence)  # fmt: skip
            rows.append({**common, "metric": "accuracy", "value": interval.estimate,
                         "ci_low": interval.ci_low, "ci_high": interval.ci_high,
                         "n": int(part["repeat"].nunique()),
                         "unit": f"{interval.n_units} classes", "shots": shots,
                         "classifier": classifier})  # fmt: skip
    else:  # anomaly detection: every class's AUROC, then their mean
        k = first["k"]
        for row in frame.to_dict("records"):
            rows.append({**common, "metric": "auroc", "value": row["value"],
                         "n": row["n_test_normal"] + row["n_test_anomalous"], "k": k,
                         "category": row["class"], "similarity": "cosine"})  # fmt: skip
        interval = cluster_interval(frame["value"].to_numpy(float), _labels(frame, ("class",)),
                                    confidence=confidence)  # fmt: skip
        rows.append({**common, "metric": "mean_auroc", "value": float(frame["value"].mean()),
                     "ci_low": interval.ci_low, "ci_high": interval.ci_high, "n": len(frame),
                     "unit": f"{interval.n_units} classes", "k": k,
                     "similarity": "cosine"})  # fmt: skip
    return rows


def compare(
    transforms: Mapping[str, Any] | Sequence[Any],
    *,
    things: np.ndarray | None = None,
    triplets: np.ndarray | None = None,
    reference: np.ndarray | None = None,
    heldout_objects: np.ndarray | Sequence[int] | None = None,
    categories: pd.DataFrame | None = None,
    contrast: np.ndarray | None = None,
    downstream: Mapping[str, Sequence[Any] | Downstream] | None = None,
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
        {dataset: (train_X, train_y, test_X, test_y)} or {dataset: :class:`Downstream`} (which
        also sets the fixed test set and the shift protocol) → few-shot accuracy (over all
        episodes' test items, with an interval over the classes, per classifier and shots) and
        anomaly AUROC (per class, and its mean with an interval over classes).
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
        unknown spec; ``downstream`` that is not a mapping of 4-tuples or :class:`Downstream`
        (or a shift protocol without fine labels); ``triplets``, ``reference``,
        ``heldout_objects`` or ``categories`` without the inputs they need; invalid features,
        object indices, triplets or labels; and the errors of the measurements themselves.
    """
    verbose = verbose_level(verbose, progress, "compare")
    settings = settings or EvalSettings()
    frames = _measure(transforms, things, triplets, reference, heldout_objects, categories,
                      contrast, downstream, settings, frozenset(MEASUREMENTS), verbose)  # fmt: skip
    rows = [row for frame in frames for row in _summary_rows(frame, settings.confidence)]
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    for key, value in _settings_columns(settings).items():
        table[key] = value
    from glocal import __version__

    table["glocal_version"] = __version__
    return table
