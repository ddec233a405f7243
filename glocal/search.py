"""``GlocalSearchCV``: choose hyper-parameters by a grid search with object-disjoint folds.

Every (setting, fold) fit is one task of the execution engine (:mod:`glocal.engine`), cached on
disk under a key of its settings, fold, data and fitting code, so a rerun, a killed worker or a
lost node costs only the unfinished fits. A cache entry carries what it answers and is checked
against the request before it is used.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone

from glocal._fit import FIT_CODE, code_digest
from glocal._params import Constraint, integer, interval
from glocal.engine import Engine, check_scheduler
from glocal.errors import DamagedCacheWarning, GlocalError
from glocal.io import atomic_path, cache_dir, check_feature_matrix, digest, file_lock
from glocal.triplets import deal_into_groups, triplets_within, validate_triplets

GRIDS_FILE = Path(__file__).with_name("grids.json")
#: The selection rules: what the best setting maximises.
SCORINGS = {
    "alignment": "highest mean validation odd-one-out accuracy",
    "cross_entropy": "lowest mean validation cross-entropy of the human choices (the official "
    "naive transform's rule)",
    "objective": "lowest mean held-out global + local loss (the quantity the official code "
    "monitors)",
    "tradeoff": "highest mean validation accuracy among settings whose mean 10-NN overlap on "
    "the held-out contrast slice is at least min_overlap (all settings if none is)",
}
#: The scores of every fit, greater is better as in scikit-learn (``neg_``: a loss negated).
SCORES = ("accuracy", "neg_cross_entropy", "neg_local_loss", "overlap", "neg_objective")
#: The score each rule ranks by (``tradeoff`` among the settings that keep ``min_overlap``).
RULE_SCORE = {"alignment": "accuracy", "cross_entropy": "neg_cross_entropy",
              "objective": "neg_objective", "tradeoff": "accuracy"}  # fmt: skip
#: The code that decides a cache entry (part of every key): the fitting code, the scoring
#: primitives and the search's own fit-and-score path (as :data:`glocal._fit.FIT_CODE`).
SEARCH_CODE: dict[str, tuple[str, ...] | None] = {
    **FIT_CODE,
    "scoring.py": None,
    "search.py": ("_fit_and_score", "_scores", "_contrast_reference"),
}
#: Version of the cache entries' layout (part of every key).
ENTRY_FORMAT = "glocal-search-entry/2"


def grids() -> dict[str, dict[str, Any]]:
    """The named grids of ``grids.json`` (``paper``: the official sweep; ``small``; ...)."""
    return json.loads(GRIDS_FILE.read_text(encoding="utf-8"))


def resolve_grid(param_grid: str | os.PathLike | Mapping | Sequence) -> list[dict[str, Any]]:
    """The settings of a grid: a name of :func:`grids`, a JSON file, a dict or a list of dicts."""
    from sklearn.model_selection import ParameterGrid

    grid: Any = param_grid
    if isinstance(grid, (str, os.PathLike)):
        named = grids()
        if str(grid) in named:
            grid = named[str(grid)]["grid"]
        else:
            path = Path(grid)
            if not path.is_file():
                raise GlocalError(
                    f"grid {str(grid)!r}: not a named grid ({', '.join(sorted(named))}) and no "
                    "such JSON file"
                )
            try:
                grid = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise GlocalError(f"grid file {path}: not valid JSON ({err})") from err
            grid = grid.get("grid", grid) if isinstance(grid, dict) else grid
    try:
        settings = [dict(s) for s in ParameterGrid(grid)]
    except (TypeError, ValueError) as err:
        raise GlocalError(
            f"param_grid: {err}; give {{name: [values, ...]}} or a list of such dicts"
        ) from err
    if not settings or all(not s for s in settings):
        raise GlocalError(
            "param_grid is empty: name at least one hyper-parameter with a list of values, "
            'e.g. {"lmbda": [0.1, 0.01]}'
        )
    return settings


def grid_edges(settings: Sequence[Mapping[str, Any]], chosen: Mapping[str, Any]) -> dict[str, str]:
    """The axes of a grid on which ``chosen`` sits at an end: ``{name: "lowest" | "highest"}``.

    An axis is a hyper-parameter that takes two or more numeric values over ``settings`` (the
    list of :func:`resolve_grid`); ``chosen`` sits on its edge when its value is the smallest or
    the largest of them. A selected setting on an edge says the grid may not contain the
    optimum: the score might still improve beyond it.

    Examples
    --------
    >>> grid_edges(resolve_grid({"lmbda": [1.0, 0.1, 0.01], "alpha": [0.25]}), {"lmbda": 1.0,
    ...            "alpha": 0.25})
    {'lmbda': 'highest'}
    """
    edges: dict[str, str] = {}
    for name, value in chosen.items():
        seen = {s[name] for s in settings if name in s}
        if len(seen) < 2 or not all(_is_number(v) for v in (*seen, value)):
            continue
        if value == min(seen):
            edges[name] = "lowest"
        elif value == max(seen):
            edges[name] = "highest"
    return edges


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


# --- folds ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fold:
    """One object-disjoint fold: fit on ``train_objects``, score on ``val_objects``.

    Triplets are in local indices of their object set; the contrast set is split into folds as
    well (``contrast_train`` feeds the local term, ``contrast_val`` is scored).
    """

    index: int
    train_objects: np.ndarray
    val_objects: np.ndarray
    train: np.ndarray
    val: np.ndarray
    contrast_train: np.ndarray | None
    contrast_val: np.ndarray | None


def _local(triplets: np.ndarray, objects: np.ndarray, n_objects: int) -> np.ndarray:
    index = np.full(n_objects, -1)
    index[objects] = np.arange(len(objects))
    return index[triplets]


def _object_pairs(cv: Any, X: np.ndarray, rng: np.random.Generator) -> list[tuple]:
    """(train objects, validation objects) of each fold, from ``cv`` as the search takes it."""
    n = len(X)
    if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
        if cv > n:
            raise GlocalError(f"cv={cv} exceeds the number of objects ({n})")
        group = deal_into_groups(n, int(cv), rng)
        return [(np.flatnonzero(group != f), np.flatnonzero(group == f)) for f in range(cv)]
    pairs = list(cv.split(X)) if hasattr(cv, "split") else list(cv)
    if len(pairs) < 2:
        raise GlocalError(f"cv gave {len(pairs)} fold(s); a search needs at least 2")
    checked = []
    for f, pair in enumerate(pairs):
        try:
            train, val = (np.asarray(part) for part in pair)
        except (TypeError, ValueError) as err:
            raise GlocalError(
                f"cv: fold {f} is not a pair (train objects, validation objects) ({err})"
            ) from err
        for name, part in (("train", train), ("validation", val)):
            if part.ndim != 1 or not np.issubdtype(part.dtype, np.integer) or len(part) == 0:
                raise GlocalError(
                    f"cv: fold {f}'s {name} objects must be a non-empty 1-D array of object "
                    f"indices (rows of X), got dtype {part.dtype} shape {part.shape}"
                )
            if part.min() < 0 or part.max() >= n:
                raise GlocalError(f"cv: fold {f}'s {name} objects must lie in [0, {n})")
        if np.intersect1d(train, val).size:
            raise GlocalError(
                f"cv: fold {f} shares objects between training and validation; folds must be "
                "object-disjoint"
            )
        checked.append((np.unique(train), np.unique(val)))
    return checked


def object_folds(
    X: np.ndarray, triplets: np.ndarray, n_contrast: int | None, cv: Any, seed: int
) -> list[Fold]:
    """The search's folds over the objects (rows of ``X``) and the contrast rows.

    ``cv`` is a number of folds (objects dealt into seeded groups; fold f validates on group
    f), a scikit-learn splitter whose ``split(X)`` yields (train, validation) object indices,
    or an iterable of such pairs. A fold's training triplets have all three objects among its
    training objects, its validation triplets all three among its validation objects; the
    rest are used by neither side. The contrast rows are dealt into one seeded group per fold.
    """
    rng = np.random.default_rng(seed)
    n_objects = len(X)
    pairs = _object_pairs(cv, X, rng)
    contrast_group = None
    if n_contrast is not None:
        contrast_group = deal_into_groups(n_contrast, len(pairs), rng)
    folds = []
    for f, (train_objects, val_objects) in enumerate(pairs):
        inside = np.zeros(n_objects, dtype=bool)
        inside[train_objects] = True
        train = triplets[triplets_within(triplets, inside)]
        inside[:] = False
        inside[val_objects] = True
        val = triplets[triplets_within(triplets, inside)]
        if len(train) < 2 or len(val) == 0:
            raise GlocalError(
                f"fold {f} of {len(pairs)} has {len(train)} training and {len(val)} validation "
                f"triplets of {len(triplets)} (a triplet counts only when its three objects "
                "lie on one side; a fold needs 2 training triplets, a tenth of which stop its "
                "fit early, and 1 validation triplet); use fewer folds (cv) or more triplets"
            )
        folds.append(
            Fold(
                f, train_objects, val_objects,
                _local(train, train_objects, n_objects), _local(val, val_objects, n_objects),
                None if contrast_group is None else np.flatnonzero(contrast_group != f),
                None if contrast_group is None else np.flatnonzero(contrast_group == f),
            )
        )  # fmt: skip
    return folds


# --- one (setting, fold) fit: a task of the engine --------------------------------------------


@dataclass(frozen=True)
class SearchData:
    """What every task needs, sent to each worker once."""

    X: np.ndarray
    contrast: np.ndarray | None
    folds: list[Fold]
    k: int
    digest: str  # of everything above, the base estimator and the code (SEARCH_CODE)


def _scores(estimator: Any, data: SearchData, fold: Fold) -> dict[str, float]:
    """Validation alignment and cross-entropy; local loss and overlap on the held-out contrast."""
    import torch

    from glocal import losses
    from glocal.scoring import (
        answered_correctly,
        nearest_neighbours,
        shared_fraction,
        triplet_similarities,
    )

    Z = estimator.transform(data.X[fold.val_objects])
    logits = triplet_similarities(Z, fold.val, "dot")
    cross_entropy = float(losses.triplet_cross_entropy(torch.as_tensor(logits)).mean())
    scores = {
        "accuracy": float(answered_correctly(logits).mean()),
        "neg_cross_entropy": -cross_entropy,
        "neg_local_loss": math.nan,
        "overlap": math.nan,
    }
    local = 0.0
    if data.contrast is not None and fold.contrast_val is not None:
        original, teacher, target, neighbours = _contrast_reference(data, fold, estimator.tau)
        mapped = estimator.transform(original)
        with torch.no_grad():
            local = float(losses.local_loss(
                teacher, torch.as_tensor(mapped, dtype=torch.float64), estimator.tau, target
            ))  # fmt: skip
        shared = shared_fraction(neighbours, nearest_neighbours(mapped, data.k, "cosine"))
        scores["neg_local_loss"] = -local
        scores["overlap"] = float(shared.mean())
    scores["neg_objective"] = -(cross_entropy + local)
    return scores


#: The held-out contrast rows, their teacher (float64), its neighbour softmax and its k nearest
#: neighbours per (data, fold, tau): the same for every setting a worker scores on that fold.
#: Computing them once instead of per fit took scoring a gLocal fit from 6.3 to 3.6 s (one
#: thread, 5000 x 384 held-out contrast items as in the quick profile, a busy 2-core machine;
#: scratch timing of ``_scores``); a few entries are kept (each about n² float64 values).
_REFERENCES: OrderedDict[tuple, tuple[np.ndarray, Any, Any, np.ndarray]] = OrderedDict()
_MAX_REFERENCES = 4


def _contrast_reference(
    data: SearchData, fold: Fold, tau: float
) -> tuple[np.ndarray, Any, Any, np.ndarray]:
    import torch

    from glocal import losses
    from glocal.scoring import nearest_neighbours

    assert fold.contrast_val is not None and data.contrast is not None
    key = (data.digest, digest(fold.contrast_val), float(tau), data.k)
    if key in _REFERENCES:
        _REFERENCES.move_to_end(key)
        return _REFERENCES[key]
    original = data.contrast[fold.contrast_val]
    teacher = torch.as_tensor(original, dtype=torch.float64)
    with torch.no_grad():
        target = losses.local_target(teacher, tau)
    reference = (original, teacher, target, nearest_neighbours(original, data.k, "cosine"))
    _REFERENCES[key] = reference
    while len(_REFERENCES) > _MAX_REFERENCES:
        _REFERENCES.popitem(last=False)
    return reference


def fit_task(
    data: SearchData,
    fold_index: int,
    estimator: Any,
    params: dict[str, Any],
    key: str,
    cache: str | None,
    threads: int,
) -> dict[str, Any]:
    """One (setting, fold) fit and its scores; read from / written to the cache when given.

    A fit that diverges is a result too: NaN scores and its ``error``, so one bad setting
    does not stop the sweep. A finished entry is read without a lock (a read-only cache of
    complete results works); an entry that is damaged or answers another request is named,
    and the fit runs again under the key's lock, so a second process asking for the same fit
    waits and reads the result.
    """
    request = {"key": key, "fold": fold_index, "params": params, "data": data.digest}
    if cache is None:
        return _fit_and_score(data, fold_index, estimator, params, request, threads)
    path = Path(cache) / f"{key}.npz"
    found, notice = _read_entry(path, request)
    if found is not None:
        return found
    if not os.access(path.parent, os.W_OK | os.X_OK):  # a read-only cache: fit, keep nothing
        return _fit_and_score(data, fold_index, estimator, params, request, threads)
    with file_lock(path):
        found, later = _read_entry(path, request)
        if found is not None:
            return found
        result = _fit_and_score(data, fold_index, estimator, params, request, threads)
        _write_entry(path, result)
    result["notice"] = notice or later
    return result


def _fit_and_score(
    data: SearchData,
    fold_index: int,
    estimator: Any,
    params: dict[str, Any],
    request: dict[str, Any],
    threads: int,
) -> dict[str, Any]:
    import torch

    from glocal.errors import FitDivergedError

    fold = data.folds[fold_index]
    est = clone(estimator).set_params(**params, verbose=0)
    contrast = None
    if data.contrast is not None and fold.contrast_train is not None and est.needs_contrast:
        contrast = data.contrast[fold.contrast_train]
    # a seeded tenth of the fold's training triplets (same objects) drives early stopping;
    # the fold's validation objects stay unseen until they are scored
    order = np.random.default_rng(fold_index).permutation(len(fold.train))
    stop = order[: max(1, len(order) // 10)]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)  # results must not depend on where the task runs
    began = time.perf_counter()
    try:
        est.fit(
            data.X[fold.train_objects], fold.train[order[len(stop) :]], contrast=contrast,
            val_triplets=fold.train[stop],
        )  # fmt: skip
    except FitDivergedError as err:
        return {**request, "weights": None, "bias": None, "n_steps": 0, "best_step": 0,
                "stop_reason": "diverged", "fit_time": time.perf_counter() - began,
                "score_time": 0.0, "error": str(err),
                **dict.fromkeys(SCORES, math.nan)}  # fmt: skip
    finally:
        torch.set_num_threads(previous)
    fit_time = time.perf_counter() - began
    scores = _scores(est, data, fold)
    return {
        **request,
        "weights": est.weights_,
        "bias": est.bias_,
        "n_steps": int(est.n_steps_),
        "best_step": int(est.best_step_),
        "stop_reason": est.stop_reason_,
        "fit_time": fit_time,
        "score_time": time.perf_counter() - began - fit_time,
        "error": "",
        **scores,
    }


def _write_entry(path: Path, result: dict[str, Any]) -> None:
    record = {k: v for k, v in result.items() if k not in ("weights", "bias")}
    arrays: dict[str, Any] = {
        "format": np.array(ENTRY_FORMAT),
        "record": np.array(json.dumps(record, default=float)),
    }
    if result["weights"] is not None:
        arrays["weights"] = result["weights"]
    if result["bias"] is not None:
        arrays["bias"] = result["bias"]
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def _read_entry(path: Path, request: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The cached result answering ``request``, or None and why it cannot be used ("" when
    there is no entry)."""
    import zipfile
    import zlib

    if not path.is_file():
        return None, ""
    try:
        with np.load(path, allow_pickle=False) as stored:
            if "format" not in stored.files or str(stored["format"]) != ENTRY_FORMAT:
                raise ValueError(f"not a {ENTRY_FORMAT} entry")
            record = json.loads(str(stored["record"]))
            record["weights"] = stored["weights"] if "weights" in stored.files else None
            record["bias"] = stored["bias"] if "bias" in stored.files else None
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        why = " ".join(str(err).split()) or type(err).__name__
        return None, f"search cache entry {path} cannot be read ({why}); it was fitted again"
    answered = {name: record.get(name) for name in request}
    expected = json.loads(json.dumps(request, default=float))
    if answered != expected:
        wrong = ", ".join(sorted(n for n in request if answered[n] != expected[n]))
        return None, (
            f"search cache entry {path} answers another request (its {wrong} differ); it was "
            "fitted again"
        )
    weights = record["weights"]
    if weights is not None and (weights.ndim != 2 or weights.shape[0] != weights.shape[1]):
        return None, f"search cache entry {path} holds non-square weights; it was fitted again"
    wrong = _wrong_fields(record)
    if wrong:
        return None, (
            f"search cache entry {path} holds a damaged record ({wrong}); it was fitted again"
        )
    record["cached"] = True
    return record, ""


#: The fields of an entry's record that the search reads, by the type each must have.
_RECORD_FIELDS = {
    **dict.fromkeys((*SCORES, "fit_time", "score_time"), ("a number", (int, float))),
    **dict.fromkeys(("n_steps", "best_step"), ("an integer", (int,))),
    **dict.fromkeys(("stop_reason", "error"), ("a string", (str,))),
}


def _wrong_fields(record: dict[str, Any]) -> str:
    """What is missing or mistyped among the record's fields ("" when nothing)."""
    wrong = []
    for name, (kind, types) in _RECORD_FIELDS.items():
        if name not in record:
            wrong.append(f"no {name!r}")
        elif isinstance(record[name], bool) or not isinstance(record[name], types):
            wrong.append(f"{name!r} is {record[name]!r}, not {kind}")
    return "; ".join(wrong)


# --- the estimator ------------------------------------------------------------------------------


def _is_glocal_transform(value: Any) -> bool:
    from glocal.transform import GlocalTransform

    return isinstance(value, GlocalTransform)


def _is_rule(value: Any) -> bool:
    return isinstance(value, str) and value in SCORINGS


def _is_scoring(value: Any) -> bool:
    if _is_rule(value):
        return True
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(_is_rule(v) for v in value)
        and len(set(value)) == len(value)
    )


def _is_cv(value: Any) -> bool:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return bool(value >= 2)
    return hasattr(value, "split") or (isinstance(value, Iterable) and not isinstance(value, str))


def _is_cache(value: Any) -> bool:
    return isinstance(value, (bool, str, os.PathLike)) and value != ""


class GlocalSearchCV(BaseEstimator):
    """Grid search over :class:`~glocal.GlocalTransform` settings with object-disjoint CV.

    Used like scikit-learn's ``GridSearchCV``: ``GlocalSearchCV(estimator, param_grid)``,
    ``fit``, then ``cv_results_``, ``best_params_``, ``best_score_``, ``best_index_``,
    ``best_estimator_``, ``score`` and ``transform``. It differs on purpose where triplets
    require it:

    - the folds split the *objects* (rows of ``X``), not the triplets: fold f fits on the
      triplets whose three objects lie outside its validation objects and scores on those
      inside them, so no validation object is ever seen by its fit (scikit-learn splits rows
      of the data it scores, which here would leak objects); the contrast set is split the
      same way;
    - the scores are fixed, all computed for every fit, and ``scoring`` names the rule that
      selects (``tradeoff`` combines two scores, which a scikit-learn scorer cannot);
    - fits run as tasks of an execution engine (a Dask LocalCluster by default, any scheduler
      by address, or serially) instead of joblib's ``n_jobs``, and every finished fit is
      cached on disk, so reruns and lost workers cost only the unfinished fits.

    Parameters
    ----------
    estimator : GlocalTransform or None, default=None
        The base estimator whose other settings every fit shares (default: the preset a named
        grid names, e.g. ``GlocalTransform.preset("global")`` for ``"global"``, else
        ``GlocalTransform()``).
    param_grid : str, path, dict or list of dict, default="small"
        ``"paper"`` (the official 54-setting sweep), ``"small"`` (12 settings), another name
        of ``glocal/grids.json``, a JSON file, or ``{name: [values]}`` of
        :class:`~glocal.GlocalTransform` hyper-parameters (or a list of such dicts).
    scoring : str or list of str, default="alignment"
        The selection rule (see :data:`SCORINGS`), or several (each ranked in
        ``cv_results_``; ``refit`` then names the one that selects).
    cv : int, splitter or iterable, default=3
        A number of object-disjoint folds (seeded by ``seed``), a scikit-learn splitter whose
        ``split(X)`` yields (train, validation) object indices (e.g. ``KFold``), or an
        iterable of such pairs.
    refit : bool or str, default=True
        Refit the selected setting on all triplets (``best_estimator_``). A rule name selects
        by that rule (it must be among ``scoring`` when that is a list).
    min_overlap : float, default=0.5
        The 10-NN overlap a setting must keep under ``tradeoff``.
    k : int, default=10
        Neighbourhood size of the overlap score (at most the smallest held-out contrast slice
        minus one).
    scheduler : str or None, default=None
        Where fits run: None (``$GLOCAL_SCHEDULER`` or a new LocalCluster), ``"serial"`` or a
        Dask scheduler address such as ``"tcp://host:8786"``.
    n_workers : int or None, default=None
        Workers of a new LocalCluster (default: one per GPU, else one per core).
    cache : bool, str or path, default=True
        Where finished fits are kept: True for ``CACHE/search``, a folder, or False.
    seed : int, default=0
        Seeds the fold assignment (with an integer ``cv``) and the contrast split.
    verbose : int, default=0
        0: quiet; 1 or more: a progress bar over fits (the CLI's default).

    Attributes
    ----------
    cv_results_ : dict of ndarray
        scikit-learn's layout: ``params``, ``param_NAME`` (masked arrays), for every score
        ``S`` of :data:`SCORES` ``splitF_test_S``, ``mean_test_S`` and ``std_test_S``,
        ``rank_test_RULE`` for every rule of ``scoring`` (with one rule also scikit-learn's
        ``splitF_test_score``, ``mean_test_score``, ``std_test_score`` and
        ``rank_test_score`` for the score that rule ranks by), ``mean_fit_time``,
        ``std_fit_time``, ``mean_score_time``, ``std_score_time``, and per fit
        ``splitF_n_steps``, ``splitF_best_step``, ``splitF_stop_reason``; ``n_no_improvement``
        and ``n_diverged`` count the folds whose fit kept its start or diverged.
        ``pandas.DataFrame(search.cv_results_)`` gives the table.
    best_index_ : int
        Index of the selected setting.
    best_params_ : dict
        The selected setting.
    best_score_ : float
        The selecting rule's mean score of it (``mean_test_S``; greater is better).
    best_edges_ : dict
        The axes of the grid on which the selected setting sits at the smallest or largest
        value (``{name: "lowest" | "highest"}``, :func:`grid_edges`); empty when it is inside
        the grid on every axis.
    best_estimator_ : GlocalTransform
        The selected setting refit on all triplets (with ``refit``).
    refit_time_ : float
        Seconds the refit took.
    n_splits_ : int
        Number of folds.
    n_fits_computed_ : int
        Fits that ran (the rest came from the cache).
    engine_ : str
        Where the fits ran.

    Examples
    --------
    >>> from glocal import GlocalSearchCV, GlocalTransform
    >>> from glocal.planted import planted_problem
    >>> problem = planted_problem(n_objects=60, n_features=8, n_dims=3, n_triplets=6000,
    ...                           n_contrast=90)
    >>> search = GlocalSearchCV(GlocalTransform(max_steps=30), {"alpha": [0.0, 0.25]}, cv=2,
    ...                         scheduler="serial", cache=False)
    >>> search.fit(problem.X, problem.triplets, contrast=problem.contrast).best_params_
    {'alpha': 0.0}
    """

    def __init__(
        self,
        estimator: Any = None,
        param_grid: Any = "small",
        *,
        scoring: str | Sequence[str] = "alignment",
        cv: Any = 3,
        refit: bool | str = True,
        min_overlap: float = 0.5,
        k: int = 10,
        scheduler: str | None = None,
        n_workers: int | None = None,
        cache: Any = True,
        seed: int = 0,
        verbose: int = 0,
    ):
        self.estimator = estimator
        self.param_grid = param_grid
        self.scoring = scoring
        self.cv = cv
        self.refit = refit
        self.min_overlap = min_overlap
        self.k = k
        self.scheduler = scheduler
        self.n_workers = n_workers
        self.cache = cache
        self.seed = seed
        self.verbose = verbose

    #: One check per parameter (a test checks that they cover the signature).
    _constraints: dict[str, Constraint] = {
        "estimator": Constraint(
            lambda v: v is None or _is_glocal_transform(v),
            "a GlocalTransform or None (the grid is the second argument: "
            "GlocalSearchCV(estimator, param_grid) or GlocalSearchCV(param_grid=...))",
        ),
        "param_grid": Constraint(
            lambda v: isinstance(v, (str, os.PathLike, Mapping, list, tuple)),
            "a grid name, a JSON file, a dict {name: [values]} or a list of such dicts",
        ),
        "scoring": Constraint(_is_scoring, f"one of {sorted(SCORINGS)} or a list of them"),
        "cv": Constraint(
            _is_cv,
            "an integer >= 2, a splitter with split(X), or an iterable of "
            "(train objects, validation objects) pairs",
        ),  # fmt: skip
        "refit": Constraint(
            lambda v: isinstance(v, bool) or _is_rule(v),
            f"True, False or one of {sorted(SCORINGS)}",
        ),
        "min_overlap": interval(0.0, 1.0),
        "k": integer(1),
        "scheduler": Constraint(
            lambda v: v is None or isinstance(v, str), "None, 'serial' or a scheduler address"
        ),
        "n_workers": integer(1, allow_none=True),
        "cache": Constraint(_is_cache, "True, False or a folder"),
        "seed": integer(0),
        "verbose": integer(0),
    }

    # --- checks ---------------------------------------------------------------------------

    def _rule(self) -> str | None:
        """The rule that selects the best setting (None: several rules and no refit rule)."""
        if isinstance(self.refit, str):
            if isinstance(self.scoring, str) and self.scoring != self.refit:
                raise GlocalError(
                    f"refit={self.refit!r} selects by another rule than scoring="
                    f"{self.scoring!r}; give one rule, or scoring=[...] with both"
                )
            if not isinstance(self.scoring, str) and self.refit not in self.scoring:
                raise GlocalError(f"refit={self.refit!r} must be one of scoring={self.scoring}")
            return self.refit
        if isinstance(self.scoring, str):
            return self.scoring
        if self.refit:
            raise GlocalError(
                f"scoring={list(self.scoring)} names several rules: set refit to the one that "
                "selects, e.g. refit='alignment'"
            )
        return None

    def _check_params(self) -> None:
        for name, value in self.get_params(deep=False).items():
            self._constraints[name].validate(name, value)
        if self.scheduler is not None:
            check_scheduler(self.scheduler, "scheduler")
        cache = self.cache
        if not isinstance(cache, bool):
            path = Path(cache)
            if path.exists() and not path.is_dir():
                raise GlocalError(f"cache {str(path)!r} is a file; give a folder (or False)")

    def _base(self) -> Any:
        from glocal.transform import GlocalTransform

        if self.estimator is not None:
            return clone(self.estimator)
        named = grids().get(self.param_grid) if isinstance(self.param_grid, str) else None
        preset = (named or {}).get("preset")  # a named grid says which transform it searches
        return GlocalTransform.preset(preset) if preset else GlocalTransform()

    def _settings(self, base: Any) -> list[dict[str, Any]]:
        """The grid's settings, each checked by the estimator's own constraints."""
        from glocal._device import resolve_device

        settings = resolve_grid(self.param_grid)
        known = set(base.get_params())
        unknown = sorted({name for s in settings for name in s} - known)
        if unknown:
            raise GlocalError(
                f"param_grid: {unknown} are not hyper-parameters of GlocalTransform; "
                f"choose from {sorted(known)}"
            )
        for i, setting in enumerate(settings):
            try:
                est = clone(base).set_params(**setting)
                resolve_device(est._validated()["device"])
            except GlocalError as err:
                raise GlocalError(f"param_grid: setting {i} {setting}: {err}") from None
        return settings

    def _cache_folder(self) -> str | None:
        if self.cache is False:
            return None
        folder = cache_dir() / "search" if self.cache is True else Path(self.cache)
        return str(folder)

    # --- fitting --------------------------------------------------------------------------

    def fit(
        self, X: np.ndarray, triplets: np.ndarray, contrast: np.ndarray | None = None
    ) -> GlocalSearchCV:
        """Fit every (setting, fold), fill ``cv_results_``, select, and refit the best.

        ``X`` (m × p) holds the features of the objects the triplets (n × 3) index;
        ``contrast`` (n_c × p) the generic features of the local term (needed when a setting
        has ``alpha > 0``). Every input and setting is checked before any fit starts.
        """
        self._check_params()
        rule = self._rule()
        base = self._base()
        settings = self._settings(base)
        X = check_feature_matrix(X, "X")
        triplets = validate_triplets(triplets, len(X), where="triplets")
        if contrast is not None:
            contrast = check_feature_matrix(contrast, "contrast")
            if contrast.shape[1] != X.shape[1]:
                raise GlocalError(
                    f"contrast has {contrast.shape[1]} features but X has {X.shape[1]}"
                )
        elif any(clone(base).set_params(**s).needs_contrast for s in settings):
            raise GlocalError(
                "settings with alpha > 0 need a contrast set: pass contrast= (--contrast on the "
                "command line), or search alpha = 0 only"
            )
        folds = object_folds(X, triplets, None if contrast is None else len(contrast),
                             self.cv, self.seed)  # fmt: skip
        if contrast is not None:
            trained = min(len(f.contrast_train) for f in folds if f.contrast_train is not None)
            smallest = min(len(f.contrast_val) for f in folds if f.contrast_val is not None)
            if trained < 2 or smallest < 2:
                raise GlocalError(
                    f"contrast: its {len(contrast)} rows are dealt into {len(folds)} folds, "
                    f"leaving as few as {trained} to train on and {smallest} to score; pass at "
                    f"least {2 * len(folds)} contrast rows (thousands for real features)"
                )
            if self.k >= smallest:
                raise GlocalError(
                    f"k={self.k}: the smallest held-out contrast slice has {smallest} rows, so "
                    f"k must be at most {smallest - 1}; lower k or pass more contrast rows"
                )
        common = digest(
            ENTRY_FORMAT, X, contrast, [(f.train, f.val, f.train_objects, f.contrast_val)
                                        for f in folds],
            self.k, base.get_params(), code_digest(SEARCH_CODE),
        )  # fmt: skip
        data = SearchData(X, contrast, folds, self.k, common)
        results = self._run(base, settings, data)
        self.n_splits_ = len(folds)
        self.cv_results_ = self._table(settings, results)
        if np.isnan(self.cv_results_["mean_test_accuracy"]).all():
            first = next(r["error"] for per_fold in results for r in per_fold if r["error"])
            raise GlocalError(f"every setting of the grid diverged on some fold; e.g. {first}")
        if rule is not None:
            self.best_index_ = int(np.argmin(self.cv_results_[f"rank_test_{rule}"]))
            self.best_params_ = dict(settings[self.best_index_])
            self.best_score_ = float(
                self.cv_results_[f"mean_test_{RULE_SCORE[rule]}"][self.best_index_]
            )
            self.best_edges_ = grid_edges(settings, self.best_params_)
        if self.refit:
            began = time.perf_counter()
            best = clone(base).set_params(**self.best_params_, verbose=self.verbose)
            self.best_estimator_ = best.fit(X, triplets, contrast=contrast)
            self.refit_time_ = time.perf_counter() - began
        return self

    def _run(self, base: Any, settings: list[dict[str, Any]], data: SearchData) -> list[list]:
        from tqdm import tqdm

        cache = self._cache_folder()
        if cache is not None:
            _prepare_cache(Path(cache))
        keys = [[digest(data.digest, params, f) for f in range(len(data.folds))]
                for params in settings]  # fmt: skip
        results: list[list] = [[None] * len(data.folds) for _ in settings]
        engine = Engine(self.scheduler, n_workers=self.n_workers)
        with engine:
            self.engine_ = engine.describe()
            handle = engine.put(data, key=f"glocal-data-{data.digest[:16]}")
            futures: dict[str, Any] = {}  # identical settings share one task
            for i, params in enumerate(settings):
                for f in range(len(data.folds)):
                    key = keys[i][f]
                    if key not in futures:
                        futures[key] = engine.submit(
                            fit_task, handle, f, base, params, key, cache,
                            engine.threads_per_worker, key=f"glocal-fit-{key[:16]}",
                        )  # fmt: skip
            bar = tqdm(total=len(futures), desc="search", unit="fit", disable=not self.verbose)
            best = -math.inf
            done: dict[str, dict[str, Any]] = {}
            for key, result in engine.results(futures):
                done[key] = result
                if result.get("notice"):
                    warnings.warn(result["notice"], DamagedCacheWarning, stacklevel=3)
                best = max(best, result["accuracy"])
                bar.update()
                bar.set_postfix_str(f"best val acc {best:.4f}")
            bar.close()
        self.n_fits_computed_ = sum(not r.get("cached", False) for r in done.values())
        for i in range(len(settings)):
            for f in range(len(data.folds)):
                results[i][f] = done[keys[i][f]]
        return results

    def _table(self, settings: list[dict[str, Any]], results: list[list]) -> dict[str, Any]:
        n = len(settings)
        table: dict[str, Any] = {"params": [dict(s) for s in settings]}
        for name in sorted({name for s in settings for name in s}):
            column = np.ma.MaskedArray(np.empty(n, dtype=object), mask=True)
            for i, s in enumerate(settings):
                if name in s:
                    column[i] = s[name]
            table[f"param_{name}"] = column
        n_folds = len(results[0])
        for score in SCORES:
            values = np.array([[r[score] for r in per_fold] for per_fold in results], float)
            for f in range(n_folds):
                table[f"split{f}_test_{score}"] = values[:, f]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (diverged)
                table[f"mean_test_{score}"] = values.mean(axis=1)
                table[f"std_test_{score}"] = values.std(axis=1)
        for timing in ("fit_time", "score_time"):
            values = np.array([[r[timing] for r in per_fold] for per_fold in results], float)
            table[f"mean_{timing}"] = values.mean(axis=1)
            table[f"std_{timing}"] = values.std(axis=1)
        for f in range(n_folds):
            table[f"split{f}_n_steps"] = np.array([r[f]["n_steps"] for r in results])
            table[f"split{f}_best_step"] = np.array([r[f]["best_step"] for r in results])
            table[f"split{f}_stop_reason"] = np.array([r[f]["stop_reason"] for r in results])
        reasons = np.array([[r["stop_reason"] for r in per_fold] for per_fold in results])
        table["n_no_improvement"] = (reasons == "no_improvement").sum(axis=1)
        table["n_diverged"] = (reasons == "diverged").sum(axis=1)
        rules = [self.scoring] if isinstance(self.scoring, str) else list(self.scoring)
        for rule in rules:
            values = -table[f"mean_test_{RULE_SCORE[rule]}"]
            if rule == "tradeoff":
                keeps = table["mean_test_overlap"] >= self.min_overlap
                if not keeps.any():
                    keeps[:] = True
                values = np.where(keeps, values, np.inf)
            table[f"rank_test_{rule}"] = _rank(values)
        if isinstance(self.scoring, str):  # scikit-learn's names for a single scorer
            score = RULE_SCORE[self.scoring]
            for f in range(n_folds):
                table[f"split{f}_test_score"] = table[f"split{f}_test_{score}"]
            table["mean_test_score"] = table[f"mean_test_{score}"]
            table["std_test_score"] = table[f"std_test_{score}"]
            table["rank_test_score"] = table[f"rank_test_{self.scoring}"]
        return table

    # --- using the selected setting ---------------------------------------------------------

    def _fitted(self) -> Any:
        if not hasattr(self, "best_estimator_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(
                "This GlocalSearchCV has no best_estimator_: call fit() with refit=True first"
            )
        return self.best_estimator_

    def transform(self, X: np.ndarray) -> np.ndarray:
        """``best_estimator_.transform(X)``: the selected map applied to ``X``."""
        return self._fitted().transform(X)

    def score(self, X: np.ndarray, triplets: np.ndarray) -> float:
        """``best_estimator_.score``: odd-one-out accuracy of the transformed ``X``."""
        return self._fitted().score(X, triplets)


class ReadOnlyCacheWarning(UserWarning):
    """The search cache cannot be written: missing fits run without being kept."""


def _prepare_cache(folder: Path) -> None:
    """Create the cache folder; a read-only one is used for reading only (with a warning)."""
    if not folder.is_dir():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise GlocalError(
                f"cache {str(folder)!r}: cannot create the folder ({err.strerror or err}); "
                "choose a writable folder or pass cache=False"
            ) from err
    if not os.access(folder, os.W_OK | os.X_OK):
        warnings.warn(
            f"the search cache {folder} is read-only: cached fits are read, missing ones run "
            "without being kept",
            ReadOnlyCacheWarning,
            stacklevel=4,
        )


def _rank(values: np.ndarray) -> np.ndarray:
    """1 for the best (smallest) value; ties share the lower rank; NaN ranks last."""
    from scipy.stats import rankdata

    filled = np.where(np.isnan(values), np.inf, values)
    return rankdata(filled, method="min").astype(np.int32)
