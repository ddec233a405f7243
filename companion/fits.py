"""Fitted transforms of the result notebooks: the paper's three kinds, cached on disk."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from companion.inputs import Inputs
from glocal import things
from glocal.errors import GlocalError
from glocal.io import ENV_CACHE, check_writable, file_lock
from glocal.transform import PRESETS, GlocalTransform

KINDS = ("naive", "global", "glocal")
#: The modules whose code decides a fit's result; the fit cache key includes their source.
FITTER_FILES = ("_fit.py", "losses.py", "transform.py")
#: Fit settings of the quick profile (MiniLM, 1483 training concepts, 300k simulated
#: triplets): W starts at 0.1·I so the first Adam steps do not swamp the features' own
#: neighbourhoods (at the library default 1e-3·I, lr 1e-3 scrambles them before the global
#: term has any signal); 30 full-batch epochs reach the validation plateau (30 steps are
#: below the fitter's default burn-in ``min_steps``, so early stopping never cuts them short;
#: the best epoch on the validation triplets is kept).
QUICK_FIT = {
    "lmbda": 0.1,
    "tau": 0.1,
    "lr": 1e-3,
    "init_scale": 0.1,
    "max_epochs": 30,
    "patience": 5,
    "triplet_batch_size": None,
}


def transform_settings(kind: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Hyper-parameters of the ``kind`` transform: ``params`` under the preset's fixed choices.

    naive and global force ``alpha=0`` and their regulariser (``l2``, ``eye``); gLocal forces
    ``eye`` and takes ``alpha`` from ``params`` (preset default otherwise).
    """
    if kind not in KINDS:
        raise GlocalError(f"unknown transform kind {kind!r}; choose one of {KINDS}")
    fixed = dict(PRESETS[kind]) if kind != "glocal" else {"regularizer": "eye"}
    return {**PRESETS[kind], **dict(params or {}), **fixed, "progress": False}


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(str((part.dtype, part.shape)).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _fitter_digest() -> str:
    """sha256 of the code that turns settings into weights (a change there refits)."""
    import glocal

    root = Path(glocal.__file__).parent
    return _digest(*[(root / name).read_text(encoding="utf-8") for name in FITTER_FILES])


def fit_cache_dir() -> Path:
    """Where fitted transforms are kept: ``$GLOCAL_CACHE_DIR/fits`` (or the user cache)."""
    from glocal.io import cache_dir

    return cache_dir() / "fits"


def fit_transform(
    inputs: Inputs,
    kind: str = "glocal",
    params: Mapping[str, Any] | None = None,
    cache: bool = True,
) -> GlocalTransform:
    """Fit the naive, global or gLocal transform on the training objects of ``inputs``.

    Only the training objects' features enter the fit (their mean and std standardise, their
    triplets train, ``val`` triplets stop early), so held-out concepts stay unseen. With
    ``cache`` the fitted transform is kept under :func:`fit_cache_dir`, keyed by the features,
    triplets, contrast set, every hyper-parameter (defaults included), the glocal version and
    the fitting code (:data:`FITTER_FILES`), and reused on the next call.
    ``metadata_["experiment"]`` records the kind, epochs, best epoch, seconds and history.
    """
    from glocal import __version__

    settings = transform_settings(kind, params)
    t = inputs.triplets
    local = np.full(things.N_OBJECTS, -1)
    local[t.train_objects] = np.arange(len(t.train_objects))
    train, val = local[t.train], local[t.val]
    if (train < 0).any() or (val < 0).any():
        raise GlocalError("training and validation triplets must only hold training objects")
    X = inputs.features[t.train_objects]
    uses_contrast = settings["alpha"] > 0
    every = GlocalTransform(**settings).get_params()  # the defaults count too
    key = _digest(
        X, train, val, inputs.contrast if uses_contrast else None,
        {k: v for k, v in every.items() if k not in ("device", "progress")},
        __version__, _fitter_digest(),
    )  # fmt: skip
    if not cache:
        return _fit(inputs, kind, settings, X, train, val)
    path = fit_cache_dir() / f"{kind}-{key[:20]}.npz"
    cached = _cached(path)
    if cached is not None:
        return cached
    check_writable(path, f"the fit cache (${ENV_CACHE}) file")
    # Of two processes (parallel notebooks) asking for the same fit, one fits while the other
    # waits for the lock and then reads the finished file instead of fitting again.
    with file_lock(path):
        cached = _cached(path)
        if cached is not None:
            return cached
        estimator = _fit(inputs, kind, settings, X, train, val)
        estimator.save(path, model=inputs.model, module=inputs.module)
    return estimator


def _cached(path: Path) -> GlocalTransform | None:
    """The transform cached at ``path``; None when absent or unreadable (it is then refit)."""
    if not path.is_file():
        return None
    try:
        return GlocalTransform.load(path)
    except GlocalError:
        return None


def _fit(
    inputs: Inputs,
    kind: str,
    settings: dict[str, Any],
    X: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
) -> GlocalTransform:
    """Fit one transform and record the experiment in its metadata."""
    uses_contrast = settings["alpha"] > 0
    began = time.perf_counter()
    estimator = GlocalTransform(**settings).fit(
        X, train, contrast=inputs.contrast if uses_contrast else None, val_triplets=val
    )
    estimator.metadata_ = {
        **estimator.metadata_,
        "experiment": {
            "kind": kind,
            "source": inputs.source,
            "n_train": int(len(train)),
            "epochs": len(estimator.history_),
            "best_epoch": int(estimator.best_epoch_),
            "seconds": round(time.perf_counter() - began, 2),
            "history": estimator.history_,
        },
    }
    return estimator


def fit_transforms(
    inputs: Inputs,
    kinds: Sequence[str] = KINDS,
    params: Mapping[str, Any] | None = None,
    cache: bool = True,
) -> dict[str, GlocalTransform]:
    """:func:`fit_transform` for each of ``kinds``, with the same ``params``."""
    return {kind: fit_transform(inputs, kind, params, cache) for kind in kinds}


def fit_summary(transforms: Mapping[str, GlocalTransform]) -> pd.DataFrame:
    """One row per fitted transform: alpha, lambda, regulariser, epochs, best epoch, seconds."""
    rows = []
    for name, est in transforms.items():
        info = est.metadata_.get("experiment", {})
        rows.append({
            "transform": name, "alpha": est.alpha, "lmbda": est.lmbda,
            "regularizer": est.regularizer, "n_train": info.get("n_train"),
            "epochs": info.get("epochs"), "best_epoch": info.get("best_epoch"),
            "seconds": info.get("seconds"),
        })  # fmt: skip
    return pd.DataFrame(rows)
