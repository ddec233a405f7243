"""``GlocalSearchCV``: choose hyper-parameters by a grid search with object-disjoint folds.

Every (setting, fold) fit is one task of the execution engine (:mod:`glocal.engine`), cached on
disk under a key of its settings, fold, data and fitting code, so a rerun, a killed worker or a
lost node costs only the unfinished fits.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone

from glocal.engine import Engine
from glocal.errors import GlocalError
from glocal.io import atomic_path, cache_dir, check_feature_matrix, digest, file_lock
from glocal.triplets import validate_triplets

GRIDS_FILE = Path(__file__).with_name("grids.json")
#: The selection rules (``scoring``): what the best setting maximises.
SCORINGS = {
    "alignment": "highest mean validation odd-one-out accuracy",
    "cross_entropy": "lowest mean validation cross-entropy of the human choices (the official "
    "naive transform's rule)",
    "objective": "lowest mean held-out global + local loss (the quantity the official code "
    "monitors)",
    "tradeoff": "highest mean validation accuracy among settings whose mean 10-NN overlap on "
    "the held-out contrast slice is at least min_overlap (all settings if none is)",
}
SCORES = ("val_accuracy", "val_cross_entropy", "val_local_loss", "val_overlap", "val_objective")
#: The modules whose code decides a fit's result (part of every cache key).
FITTER_FILES = ("_fit.py", "losses.py", "transform.py", "search.py")


def grids() -> dict[str, dict[str, Any]]:
    """The named grids of ``grids.json`` (``paper``: the official sweep; ``small``)."""
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
    if not settings:
        raise GlocalError("param_grid: the grid has no settings")
    return settings


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


def object_folds(
    n_objects: int, triplets: np.ndarray, n_contrast: int | None, cv: int, seed: int
) -> list[Fold]:
    """Deal the objects (and contrast rows) into ``cv`` seeded groups; fold f validates on group
    f. Triplets that mix a fold's groups are used by neither side of that fold."""
    rng = np.random.default_rng(seed)
    group = np.empty(n_objects, dtype=np.int64)
    group[rng.permutation(n_objects)] = np.arange(n_objects) % cv
    contrast_group = None
    if n_contrast is not None:
        contrast_group = np.empty(n_contrast, dtype=np.int64)
        contrast_group[rng.permutation(n_contrast)] = np.arange(n_contrast) % cv
    folds = []
    for f in range(cv):
        val_objects = np.flatnonzero(group == f)
        train_objects = np.flatnonzero(group != f)
        inside = group[triplets] == f
        train = triplets[(~inside).all(axis=1)]
        val = triplets[inside.all(axis=1)]
        if len(train) == 0 or len(val) == 0:
            raise GlocalError(
                f"fold {f} of {cv} has {len(train)} training and {len(val)} validation triplets; "
                "use fewer folds (cv) or more triplets"
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


@dataclass(frozen=True)
class SearchData:
    """What every task needs, sent to each worker once."""

    X: np.ndarray
    contrast: np.ndarray | None
    folds: list[Fold]
    k: int


def fitter_digest() -> str:
    """sha256 of the code that turns settings into weights and scores."""
    root = Path(__file__).parent
    return digest(*[(root / name).read_text(encoding="utf-8") for name in FITTER_FILES])


def _scores(estimator: Any, data: SearchData, fold: Fold) -> dict[str, float]:
    """Validation alignment and cross-entropy; local loss and overlap on the held-out contrast."""
    import torch
    from scipy.special import logsumexp

    from glocal import losses
    from glocal.evaluation.alignment import triplet_similarities
    from glocal.evaluation.neighbours import neighbour_overlap

    Z = estimator.transform(data.X[fold.val_objects])
    logits = triplet_similarities(Z, fold.val, "dot")
    correct = (logits[:, 0] > logits[:, 1]) & (logits[:, 0] > logits[:, 2])
    scores = {
        "val_accuracy": float(correct.mean()),
        "val_cross_entropy": float((logsumexp(logits, axis=1) - logits[:, 0]).mean()),
        "val_local_loss": math.nan,
        "val_overlap": math.nan,
    }
    if data.contrast is not None and fold.contrast_val is not None:
        original = data.contrast[fold.contrast_val]
        mapped = estimator.transform(original)
        with torch.no_grad():
            scores["val_local_loss"] = float(
                losses.local_loss(
                    torch.as_tensor(original, dtype=torch.float64),
                    torch.as_tensor(mapped, dtype=torch.float64),
                    estimator.tau,
                )
            )
        k = min(data.k, len(original) - 1)
        scores["val_overlap"] = neighbour_overlap(original, mapped, (k,), "cosine")[k]
    local = 0.0 if math.isnan(scores["val_local_loss"]) else scores["val_local_loss"]
    scores["val_objective"] = scores["val_cross_entropy"] + local
    return scores


def fit_task(
    data: SearchData,
    fold_index: int,
    estimator: Any,
    params: dict[str, Any],
    init: dict[str, Any] | None,
    key: str,
    cache: str | None,
    threads: int,
) -> dict[str, Any]:
    """One (setting, fold) fit and its scores; read from / written to the cache when given.

    ``init`` is the result of the warm-start neighbour (its weights start this fit; a diverged
    neighbour gives none). A fit that diverges is a result too: NaN scores and its ``error``,
    so one bad setting (e.g. a learning rate too large) does not stop the sweep. Under the
    cache, the fit runs holding the key's lock: a second process asking for the same fit waits
    and reads the result.
    """
    if cache is None:
        return _fit_and_score(data, fold_index, estimator, params, init, key, threads)
    path = Path(cache) / f"{key}.npz"
    with file_lock(path):
        if path.is_file():
            return _read_result(path)
        result = _fit_and_score(data, fold_index, estimator, params, init, key, threads)
        _write_result(path, result)
    return result


def _fit_and_score(
    data: SearchData,
    fold_index: int,
    estimator: Any,
    params: dict[str, Any],
    init: dict[str, Any] | None,
    key: str,
    threads: int,
) -> dict[str, Any]:
    import torch

    from glocal.errors import FitDivergedError

    fold = data.folds[fold_index]
    est = clone(estimator).set_params(**params, progress=False)
    if init is not None and init.get("weights") is not None:
        est.set_params(warm_start=True)
        est.weights_, est.bias_ = init["weights"], init["bias"]
    contrast = None
    if data.contrast is not None and fold.contrast_train is not None and est.alpha > 0:
        contrast = data.contrast[fold.contrast_train]
    # a seeded tenth of the fold's training triplets (same objects) drives early stopping;
    # the fold's validation objects stay unseen until they are scored
    order = np.random.default_rng(fold_index).permutation(len(fold.train))
    stop = order[: max(1, len(order) // 10)]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)  # results must not depend on where the task runs
    began = time.perf_counter()
    base = {"key": key, "fold": fold_index, "params": params}
    try:
        est.fit(
            data.X[fold.train_objects], fold.train[order[len(stop) :]], contrast=contrast,
            val_triplets=fold.train[stop],
        )  # fmt: skip
    except FitDivergedError as err:
        return {**base, "weights": None, "bias": None, "n_steps": math.nan,
                "seconds": time.perf_counter() - began, "error": str(err),
                **dict.fromkeys(SCORES, math.nan)}  # fmt: skip
    finally:
        torch.set_num_threads(previous)
    return {
        **base,
        "weights": est.weights_,
        "bias": est.bias_,
        "n_steps": int(est.n_steps_),
        "seconds": time.perf_counter() - began,
        "error": "",
        **_scores(est, data, fold),
    }


def _write_result(path: Path, result: dict[str, Any]) -> None:
    record = {k: v for k, v in result.items() if k not in ("weights", "bias")}
    arrays: dict[str, Any] = {"record": np.array(json.dumps(record, default=float))}
    if result["weights"] is not None:
        arrays["weights"] = result["weights"]
    if result["bias"] is not None:
        arrays["bias"] = result["bias"]
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def _read_result(path: Path) -> dict[str, Any]:
    with np.load(path, allow_pickle=False) as stored:
        record = json.loads(str(stored["record"]))
        record["weights"] = stored["weights"] if "weights" in stored.files else None
        record["bias"] = stored["bias"] if "bias" in stored.files else None
    record["cached"] = True
    return record


class GlocalSearchCV(BaseEstimator):
    """Grid search over :class:`~glocal.GlocalTransform` settings with object-disjoint CV.

    The training objects are dealt into ``cv`` groups; fold f fits on the triplets whose three
    objects lie outside group f and scores on those inside it (so no validation object is ever
    seen by its fit), and splits the contrast set the same way. Every (setting, fold) fit is one
    task of the execution engine (a Dask LocalCluster by default, any scheduler by address),
    cached on disk, so reruns and lost workers cost only the unfinished fits.

    Parameters
    ----------
    param_grid : str, path, dict or list of dict, default="small"
        ``"paper"`` (the official 54-setting sweep), ``"small"`` (9 settings), a JSON file, or
        ``{name: [values]}`` of :class:`~glocal.GlocalTransform` hyper-parameters.
    estimator : GlocalTransform or None, default=None
        The base estimator whose other settings every fit shares (default ``GlocalTransform()``).
    cv : int, default=3
        Number of object-disjoint folds.
    scoring : {"alignment", "objective", "tradeoff"}, default="alignment"
        The selection rule (see :data:`SCORINGS`).
    min_overlap : float, default=0.5
        The 10-NN overlap a setting must keep under ``scoring="tradeoff"``.
    k : int, default=10
        Neighbourhood size of the overlap score.
    refit : bool, default=True
        Refit the best setting on all triplets (``best_estimator_``).
    warm_start : str or None, default="lmbda"
        A grid parameter to warm-start along: within a fold, the fit for each value starts from
        the solution for the previous value (in grid order), all else equal. None: cold starts.
    scheduler : str or None, default=None
        Where fits run: None (``$GLOCAL_SCHEDULER`` or a new LocalCluster), ``"serial"`` or a
        Dask scheduler address.
    n_workers : int or None, default=None
        Workers of a new LocalCluster (default: one per GPU, else one per core).
    cache : str, path, bool, default=True
        Where finished fits are kept: True for ``CACHE/search``, a folder, or False (no cache).
    seed : int, default=0
        Seeds the fold assignment.
    progress : bool, default=True
        Show a progress bar (settings done, best so far).

    Attributes
    ----------
    cv_results_ : pandas.DataFrame
        One row per setting: its parameters, mean and std over folds of every score, the score
        of each fold, and its rank under each rule.
    best_index_ : int
        Row of the selected setting in ``cv_results_``.
    best_params_ : dict
        The selected setting.
    best_estimator_ : GlocalTransform
        The selected setting refit on all triplets (with ``refit``).
    n_fits_computed_ : int
        Fits that ran (the rest came from the cache).

    Examples
    --------
    >>> from glocal import GlocalSearchCV, GlocalTransform
    >>> from glocal.planted import planted_problem
    >>> problem = planted_problem(n_objects=60, n_features=8, n_dims=3, n_triplets=6000,
    ...                           n_contrast=90)
    >>> search = GlocalSearchCV({"alpha": [0.0, 0.25]}, cv=2, scheduler="serial", cache=False,
    ...                         estimator=GlocalTransform(max_steps=30), progress=False)
    >>> search.fit(problem.X, problem.triplets, contrast=problem.contrast).best_params_
    {'alpha': 0.0}
    """

    def __init__(
        self,
        param_grid: Any = "small",
        *,
        estimator: Any = None,
        cv: int = 3,
        scoring: str = "alignment",
        min_overlap: float = 0.5,
        k: int = 10,
        refit: bool = True,
        warm_start: str | None = "lmbda",
        scheduler: str | None = None,
        n_workers: int | None = None,
        cache: Any = True,
        seed: int = 0,
        progress: bool = True,
    ):
        self.param_grid = param_grid
        self.estimator = estimator
        self.cv = cv
        self.scoring = scoring
        self.min_overlap = min_overlap
        self.k = k
        self.refit = refit
        self.warm_start = warm_start
        self.scheduler = scheduler
        self.n_workers = n_workers
        self.cache = cache
        self.seed = seed
        self.progress = progress

    def _base(self) -> Any:
        from glocal.transform import GlocalTransform

        return clone(self.estimator) if self.estimator is not None else GlocalTransform()

    def _cache_folder(self) -> str | None:
        if self.cache is False or self.cache is None:
            return None
        folder = cache_dir() / "search" if self.cache is True else Path(self.cache)
        return str(folder)

    def _check(self) -> None:
        if self.scoring not in SCORINGS:
            raise GlocalError(f"scoring must be one of {sorted(SCORINGS)}, got {self.scoring!r}")
        if not isinstance(self.cv, int) or self.cv < 2:
            raise GlocalError(f"cv must be an integer >= 2, got {self.cv!r}")
        if not 0 <= self.min_overlap <= 1:
            raise GlocalError(f"min_overlap must lie in [0, 1], got {self.min_overlap}")

    def fit(
        self, X: np.ndarray, triplets: np.ndarray, contrast: np.ndarray | None = None
    ) -> GlocalSearchCV:
        """Fit every (setting, fold), fill ``cv_results_``, select, and refit the best."""
        self._check()
        settings = resolve_grid(self.param_grid)
        base = self._base()
        known = set(base.get_params())
        unknown = sorted({name for s in settings for name in s} - known)
        if unknown:
            raise GlocalError(
                f"param_grid: {unknown} are not hyper-parameters of GlocalTransform; "
                f"choose from {sorted(known)}"
            )
        X = check_feature_matrix(X, "X")
        triplets = validate_triplets(triplets, len(X), where="triplets")
        if contrast is not None:
            contrast = check_feature_matrix(contrast, "contrast")
            if contrast.shape[1] != X.shape[1]:
                raise GlocalError(
                    f"contrast has {contrast.shape[1]} features but X has {X.shape[1]}"
                )
        elif any({**base.get_params(), **s}["alpha"] > 0 for s in settings):
            raise GlocalError("settings with alpha > 0 need a contrast set: pass contrast=")
        folds = object_folds(
            len(X), triplets, None if contrast is None else len(contrast), self.cv, self.seed
        )
        data = SearchData(X, contrast, folds, self.k)
        results = self._run(base, settings, data)
        self.cv_results_ = self._table(settings, results)
        if self.cv_results_["mean_val_accuracy"].isna().all():
            first = next(r["error"] for per_fold in results for r in per_fold if r.get("error"))
            raise GlocalError(f"every setting of the grid diverged on some fold; e.g. {first}")
        self.best_index_ = int(self.cv_results_[f"rank_{self.scoring}"].to_numpy().argmin())
        self.best_params_ = dict(settings[self.best_index_])
        if self.refit:
            best = clone(base).set_params(**self.best_params_, progress=self.progress)
            uses_contrast = best.alpha > 0
            self.best_estimator_ = best.fit(
                X, triplets, contrast=contrast if uses_contrast else None
            )
        return self

    def _chains(self, settings: list[dict[str, Any]]) -> list[int | None]:
        """For each setting, the index of the setting it warm-starts from (None: cold)."""
        previous: list[int | None] = [None] * len(settings)
        name = self.warm_start
        if not name:
            return previous
        last: dict[str, int] = {}
        for i, s in enumerate(settings):
            if name not in s:
                continue
            rest = json.dumps({k: v for k, v in s.items() if k != name}, sort_keys=True)
            if rest in last:
                previous[i] = last[rest]
            last[rest] = i
        return previous

    def _run(self, base: Any, settings: list[dict[str, Any]], data: SearchData) -> list[list]:
        from tqdm import tqdm

        cache = self._cache_folder()
        common = digest(
            data.X, data.contrast, [(f.train, f.val) for f in data.folds], self.k,
            base.get_params(), fitter_digest(),
        )  # fmt: skip
        chains = self._chains(settings)
        engine = Engine(self.scheduler, n_workers=self.n_workers)
        results: list[list] = [[None] * len(data.folds) for _ in settings]
        keys = [[""] * len(data.folds) for _ in settings]
        with engine:
            self.engine_ = engine.describe()
            handle = engine.put(data, key=f"glocal-data-{common[:16]}")
            futures: dict[tuple[int, int], Any] = {}
            for i, params in enumerate(settings):
                for f in range(len(data.folds)):
                    source = chains[i]
                    init = futures[(source, f)] if source is not None else None
                    keys[i][f] = digest(
                        common, params, f, keys[source][f] if source is not None else None
                    )
                    futures[(i, f)] = engine.submit(
                        fit_task, handle, f, base, params, init, keys[i][f], cache,
                        engine.threads_per_worker, key=f"glocal-fit-{keys[i][f][:16]}",
                    )  # fmt: skip
            where = {future.key: pos for pos, future in futures.items()}
            bar = tqdm(total=len(futures), desc="search", unit="fit", disable=not self.progress)
            best = -math.inf
            self.n_fits_computed_ = 0
            for future in engine.as_completed(futures.values()):
                i, f = where[future.key]
                result = future.result()
                self.n_fits_computed_ += not result.get("cached", False)
                results[i][f] = result
                best = max(best, result["val_accuracy"])
                bar.update()
                bar.set_postfix_str(f"best val acc {best:.4f}")
            bar.close()
        return results

    def _table(self, settings: list[dict[str, Any]], results: list[list]) -> pd.DataFrame:
        rows = []
        for params, per_fold in zip(settings, results, strict=True):
            row: dict[str, Any] = {"params": params}
            row.update({f"param_{k}": v for k, v in params.items()})
            for score in (*SCORES, "n_steps", "seconds"):
                values = np.array([r[score] for r in per_fold], dtype=float)
                for f, value in enumerate(values):
                    row[f"split{f}_{score}"] = value
                row[f"mean_{score}"] = float(np.mean(values))
                row[f"std_{score}"] = float(np.std(values))
            row["n_diverged"] = sum(bool(r.get("error")) for r in per_fold)
            rows.append(row)
        table = pd.DataFrame(rows)
        table["rank_alignment"] = _rank(-table["mean_val_accuracy"])
        table["rank_cross_entropy"] = _rank(table["mean_val_cross_entropy"])
        table["rank_objective"] = _rank(table["mean_val_objective"])
        keeps = table["mean_val_overlap"] >= self.min_overlap
        if not keeps.any():
            keeps[:] = True
        tradeoff = (-table["mean_val_accuracy"]).where(keeps, np.inf)
        table["rank_tradeoff"] = _rank(tradeoff)
        return table


def _rank(values: pd.Series) -> pd.Series:
    """1 for the best (smallest) value; ties share the lower rank; NaN ranks last."""
    return values.fillna(np.inf).rank(method="min").astype(int)
