"""Fitted transforms of the result notebooks: the paper's three kinds, cached on disk."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from companion.paper.inputs import Inputs
from glocal import things
from glocal.engine import ENV_SCHEDULER
from glocal.errors import GlocalError
from glocal.io import ENV_CACHE, check_writable, digest, file_lock
from glocal.transform import PRESETS, GlocalTransform, fit_digest

KINDS = ("naive", "global", "glocal")
#: How each kind chooses the hyper-parameters its preset leaves open, when the notebook does
#: not set them: a grid search with object-disjoint folds over the training objects
#: (glocal.search). naive: the official protocol, lambda by validation cross-entropy; global:
#: lambda by the best validation alignment; gLocal: alpha and lambda by the best alignment among
#: settings that keep at least ``min_overlap`` of the held-out contrast set's 10 nearest
#: neighbours.
SELECTION: dict[str, dict[str, Any]] = {
    "naive": {"grid": "naive", "scoring": "cross_entropy"},
    "global": {"grid": "global", "scoring": "alignment"},
    "glocal": {"grid": "small", "scoring": "tradeoff", "min_overlap": 0.75},
}


def transform_settings(kind: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Hyper-parameters of the ``kind`` transform: ``params`` under the preset's fixed choices.

    naive and global force ``alpha=0`` and their regulariser (``l2``, ``eye``); gLocal forces
    ``eye`` and takes ``alpha`` from ``params`` (preset default otherwise).
    """
    if kind not in KINDS:
        raise GlocalError(f"unknown transform kind {kind!r}; choose one of {KINDS}")
    fixed = dict(PRESETS[kind]) if kind != "glocal" else {"regularizer": "eye"}
    if kind == "naive":
        fixed.pop("lmbda")  # the one setting the naive transform's protocol chooses
    given = {k: v for k, v in dict(params or {}).items() if v is not None}
    return {**PRESETS[kind], **given, **fixed}


def fit_cache_dir() -> Path:
    """Where fitted transforms are kept: ``$GLOCAL_CACHE_DIR/fits`` (or the user cache)."""
    from glocal.io import cache_dir

    return cache_dir() / "fits"


def select_settings(
    inputs: Inputs,
    kind: str,
    selection: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The settings a grid search chooses for ``kind`` on the training objects of ``inputs``.

    ``selection`` holds ``grid``, ``scoring`` and optionally ``min_overlap``, ``cv``,
    ``scheduler``, ``extend`` and ``max_extensions`` (default :data:`SELECTION`). The folds
    split the training objects only (the validation and held-out triplets are not used); every
    fold's fit is cached, so a second call costs seconds. When the chosen setting sits at the
    end of an axis named in ``extend`` (e.g. ``["lmbda"]``), the grid grows by a decade beyond
    that end (every other axis kept) and the search runs again, at most ``max_extensions``
    times (default 2), until the choice is inside the grid. Returns the chosen settings and the
    last search's ``cv_results_``, whose ``attrs`` hold ``edges`` (the axes the choice still
    sits on the end of, :func:`glocal.search.grid_edges`), ``grid`` (every axis's values) and
    ``extensions`` (how many times the grid grew).
    """
    from sklearn.base import clone

    from glocal.search import RULE_SCORE, GlocalSearchCV, grid_edges, resolve_grid

    spec = {**SELECTION.get(kind, {}), **dict(selection or {})}
    if "grid" not in spec:
        raise GlocalError(f"selection for {kind!r} needs a 'grid' (e.g. 'small'), got {spec}")
    rule = spec["scoring"]
    if rule not in RULE_SCORE:
        raise GlocalError(f"selection 'scoring' must be one of {sorted(RULE_SCORE)}, got {rule!r}")
    extend = list(spec.get("extend", []))
    max_extensions = int(spec.get("max_extensions", 2))
    grid = resolve_grid(spec["grid"])
    open_names = sorted({name for setting in grid for name in setting})
    unknown = sorted(set(extend) - set(open_names))
    if unknown:
        raise GlocalError(
            f"selection for {kind!r}: 'extend' names {unknown}, which its grid does not vary; "
            f"name axes of the grid ({open_names})"
        )
    fixed = {k: v for k, v in dict(params or {}).items() if k not in open_names}
    base = GlocalTransform(**transform_settings(kind, fixed))
    X, train, _ = _training_problem(inputs)
    extensions = 0
    while True:
        settings = [{name: [value] for name, value in s.items()} for s in grid]  # as a grid
        search = GlocalSearchCV(  # every rule ranked (the pages compare them), the spec's selects
            base, settings, cv=spec.get("cv", 3), scoring=list(RULE_SCORE),
            min_overlap=spec.get("min_overlap", 0.5), refit=False,
            scheduler=spec.get("scheduler", os.environ.get(ENV_SCHEDULER) or "serial"),
        )  # fmt: skip
        uses_contrast = any(clone(base).set_params(**s).needs_contrast for s in grid)
        search.fit(X, train, contrast=inputs.contrast if uses_contrast else None)
        table = pd.DataFrame(search.cv_results_)
        best = dict(table["params"].iloc[int(np.argmin(table[f"rank_test_{rule}"]))])
        edges = grid_edges(grid, best)
        grow = {name: end for name, end in edges.items() if name in extend}
        if not grow or extensions == max_extensions:
            break
        for name, end in grow.items():
            beyond = best[name] * 10.0 if end == "highest" else best[name] / 10.0
            grid = grid + [{**s, name: beyond} for s in grid if s.get(name) == best[name]]
        extensions += 1
    table.attrs.update({
        "edges": edges, "extensions": extensions,
        "grid": {name: sorted({s[name] for s in grid if name in s}) for name in open_names},
    })  # fmt: skip
    return best, table


def _training_problem(inputs: Inputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The training objects' features and the train / validation triplets in their indices."""
    t = inputs.triplets
    local = np.full(things.N_OBJECTS, -1)
    local[t.train_objects] = np.arange(len(t.train_objects))
    train, val = local[t.train], local[t.val]
    if (train < 0).any() or (val < 0).any():
        raise GlocalError("training and validation triplets must only hold training objects")
    return inputs.features[t.train_objects], train, val


def fit_transform(
    inputs: Inputs,
    kind: str = "glocal",
    params: Mapping[str, Any] | None = None,
    cache: bool = True,
    selection: Mapping[str, Mapping[str, Any]] | None = None,
    select_on: Inputs | None = None,
) -> GlocalTransform:
    """Fit the naive, global or gLocal transform on the training objects of ``inputs``.

    With ``selection`` (``{kind: {"grid": ..., "scoring": ...}}``, defaults :data:`SELECTION`),
    the settings a kind's grid varies are chosen by :func:`select_settings` (on the training
    objects of ``select_on``, default ``inputs``) unless ``params`` sets one of them (a ``None``
    value counts as not set).

    Only the training objects' features enter the fit (their mean and std standardise, their
    triplets train, ``val`` triplets stop early), so held-out concepts stay unseen. With
    ``cache`` the fitted transform is kept under :func:`fit_cache_dir`, keyed by the features,
    triplets, contrast set, every hyper-parameter (defaults included), the glocal version and
    the fitting code (:func:`glocal.transform.fit_digest`), and reused on the next call.
    ``metadata_["experiment"]`` records the kind, steps, kept step, stop reason, seconds and
    the history of checks.
    """
    from glocal import __version__
    from glocal.search import resolve_grid

    params = {k: v for k, v in dict(params or {}).items() if v is not None}
    chosen: dict[str, Any] = {}
    searched: dict[str, Any] = {}
    spec = selection_spec(selection, kind)
    if spec and selection is not None:
        grid = resolve_grid(spec["grid"])
        values: dict[str, set] = {}
        for setting in grid:
            for name, value in setting.items():
                values.setdefault(name, set()).add(json.dumps(value))
        open_names = {name for name, seen in values.items() if len(seen) > 1}
        if not open_names & set(params):
            chosen, table = select_settings(select_on or inputs, kind, spec, params)
            searched = {str(k): v for k, v in table.attrs.items()}
    settings = transform_settings(kind, {**params, **chosen})
    X, train, val = _training_problem(inputs)
    estimator = GlocalTransform(**settings)
    every = estimator.get_params()  # the defaults count too
    key = digest(
        X, train, val, inputs.contrast if estimator.needs_contrast else None,
        {k: v for k, v in every.items() if k not in ("device", "verbose")},
        __version__, fit_digest(),
    )  # fmt: skip
    if not cache:
        return record_search(_fit(inputs, kind, settings, X, train, val, chosen), searched)
    path = fit_cache_dir() / f"{kind}-{key[:20]}.npz"
    cached = _cached(path)
    if cached is not None:
        return record_search(cached, searched)
    check_writable(path, f"the fit cache (${ENV_CACHE}) file")
    # Of two processes (parallel notebooks) asking for the same fit, one fits while the other
    # waits for the lock and then reads the finished file instead of fitting again.
    with file_lock(path):
        cached = _cached(path)
        if cached is not None:
            return record_search(cached, searched)
        estimator = _fit(inputs, kind, settings, X, train, val, chosen)
        estimator.save(path, model=inputs.model, module=inputs.module)
    return record_search(estimator, searched)


def record_search(estimator: GlocalTransform, searched: Mapping[str, Any]) -> GlocalTransform:
    """Record what the selecting search saw (its grid, the axes the choice sits on the end of,
    how often the grid grew) in ``metadata_["experiment"]["search"]``; not part of the cached
    file, so a fit cached before this record existed gets it too."""
    if searched:
        experiment = dict(estimator.metadata_.get("experiment", {}))
        experiment["search"] = {k: searched[k] for k in ("grid", "edges", "extensions")}
        estimator.metadata_ = {**estimator.metadata_, "experiment": experiment}
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
    selected: dict[str, Any],
) -> GlocalTransform:
    """Fit one transform and record the experiment (and what a search chose) in its metadata."""
    began = time.perf_counter()
    # the estimator decides whether it needs the contrast set (alpha > 0)
    estimator = GlocalTransform(**settings).fit(
        X, train, contrast=inputs.contrast, val_triplets=val
    )
    estimator.metadata_ = {
        **estimator.metadata_,
        "experiment": {
            "kind": kind,
            "source": inputs.source,
            "n_train": int(len(train)),
            "steps": int(estimator.n_steps_),
            "best_step": int(estimator.best_step_),
            "stop_reason": estimator.stop_reason_,
            "selected": selected,
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
    selection: Mapping[str, Mapping[str, Any]] | None = None,
    select_on: Inputs | None = None,
) -> dict[str, GlocalTransform]:
    """:func:`fit_transform` for each of ``kinds``, with the same settings and selection."""
    return {
        kind: fit_transform(inputs, kind, params, cache, selection, select_on) for kind in kinds
    }


def selection_spec(selection: Mapping[str, Mapping[str, Any]] | None, kind: str) -> dict[str, Any]:
    """The selection of ``kind`` a profile gives (``selection[kind]``) over :data:`SELECTION`'s."""
    return {**SELECTION.get(kind, {}), **dict((selection or {}).get(kind, {}))}


def alpha_selection(
    selection: Mapping[str, Mapping[str, Any]] | None, alpha: float
) -> dict[str, dict[str, Any]] | None:
    """The profile's gLocal selection with alpha fixed: its grid becomes
    ``{"alpha": [alpha], "lmbda": [...]}`` with the lambdas of the profile's gLocal grid; None
    when that grid does not vary lambda (then lambda keeps the preset's value)."""
    from glocal.search import resolve_grid

    spec = selection_spec(selection, "glocal")
    lmbdas = sorted({s["lmbda"] for s in resolve_grid(spec["grid"]) if "lmbda" in s},
                    reverse=True)  # fmt: skip
    return {"glocal": {**spec, "grid": {"alpha": [alpha], "lmbda": lmbdas}}} if lmbdas else None


#: How :func:`fit_alpha_sweep` sets lambda (and every other setting the gLocal search chose).
LAMBDA_RULES = ("fixed", "per-alpha", "selected")


def grid_alphas(selection: Mapping[str, Mapping[str, Any]] | None = None) -> list[float]:
    """The alphas of the profile's gLocal selection grid, ascending (none: an error)."""
    from glocal.search import resolve_grid

    spec = selection_spec(selection, "glocal")
    alphas = sorted({float(s["alpha"]) for s in resolve_grid(spec["grid"]) if "alpha" in s})
    if not alphas:
        raise GlocalError(f"selection['glocal']['grid'] varies no alpha: {spec['grid']!r}")
    return alphas


def fit_alpha_sweep(
    inputs: Inputs,
    alphas: Sequence[float] | None = None,
    params: Mapping[str, Any] | None = None,
    selection: Mapping[str, Mapping[str, Any]] | None = None,
    lmbda: str = "fixed",
) -> dict[float, GlocalTransform]:
    """One transform per alpha: ``{alpha: transform}``, alpha = 0 the global transform.

    ``alphas`` None sweeps 0 and the alphas of the profile's gLocal grid (:func:`grid_alphas`).
    The rules (:data:`LAMBDA_RULES`):

    - ``"fixed"`` holds lambda at page 1's gLocal choice (the profile's gLocal rule on all its
      settings) for every alpha, 0 included; the other settings come from ``params``, so that
      in a grid of alpha and lambda (quick) the curve over alpha changes alpha alone;
    - ``"selected"`` holds every setting page 1's gLocal search chose (lambda, and where the
      grid varies them tau, lr, ...), alpha aside, for every alpha > 0, and alpha = 0 is page
      1's global transform with its own selection: both ends are the transforms page 1
      compares (page 10);
    - ``"per-alpha"`` chooses lambda at every alpha the way page 1 chooses it: alpha = 0 is page
      1's global transform, every other alpha searches the lambdas of the profile's gLocal grid
      with the gLocal rule, alpha held fixed; alpha and lambda then change together.

    Fits and searches are cached.
    """
    if lmbda not in LAMBDA_RULES:
        raise GlocalError(f"lmbda must be one of {LAMBDA_RULES}, got {lmbda!r}")
    params = {k: v for k, v in dict(params or {}).items() if k not in ("alpha", "lmbda")}
    selection = selection or SELECTION
    spec = selection_spec(selection, "glocal")
    sweep = [0.0, *grid_alphas(selection)] if alphas is None else [float(a) for a in alphas]
    held: dict[str, Any] = {}
    if lmbda != "per-alpha":
        from glocal.search import resolve_grid

        page_1 = fit_transform(inputs, "glocal", params, selection=selection).get_params()
        varied = {name for setting in resolve_grid(spec["grid"]) for name in setting}
        chosen = varied - {"alpha"} if lmbda == "selected" else {"lmbda"}
        held = {name: page_1[name] for name in sorted(chosen)}
    fitted: dict[float, GlocalTransform] = {}
    for alpha in sweep:
        if alpha == 0 and lmbda != "fixed":
            fitted[0.0] = fit_transform(inputs, "global", params, selection=selection)
        elif lmbda != "per-alpha":
            kind = "global" if alpha == 0 else "glocal"
            fitted[alpha] = fit_transform(inputs, kind, {**params, **held, "alpha": alpha})
        else:
            fitted[alpha] = fit_transform(inputs, "glocal", {**params, "alpha": alpha},
                                          selection=alpha_selection(selection, alpha))  # fmt: skip
    return fitted


def fit_data_sizes(
    inputs: Inputs,
    sizes: Sequence[int],
    kinds: Sequence[str],
    params: Mapping[str, Any] | None = None,
    selection: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[int, dict[str, GlocalTransform]]:
    """Each kind fitted on the first n training triplets for every n of ``sizes``, with its
    lambda chosen by cross-validation on those n triplets (the way the paper chooses it).

    gLocal keeps the alpha page 1 selects on all triplets and searches the lambdas of the
    profile's gLocal grid with the gLocal rule; the naive and global transforms search their
    own grids. The searches and fits are cached (at the full size they are page 1's).
    """
    params = {k: v for k, v in dict(params or {}).items() if v is not None}
    selection = selection or SELECTION
    alpha = 0.0
    if "glocal" in kinds:
        alpha = float(fit_transform(inputs, "glocal", params, selection=selection).alpha)
    fitted: dict[int, dict[str, GlocalTransform]] = {}
    for n in sizes:
        subset = inputs.with_train_size(n)
        fitted[n] = {}
        for kind in kinds:
            if kind == "glocal":
                searched = alpha_selection(selection, alpha)
                fitted[n][kind] = fit_transform(subset, kind, {**params, "alpha": alpha},
                                                selection=searched)  # fmt: skip
            else:
                fitted[n][kind] = fit_transform(subset, kind, params, selection=selection)
    return fitted


def fit_summary(transforms: Mapping[str, GlocalTransform]) -> pd.DataFrame:
    """One row per fitted transform: alpha, lambda, regulariser, steps, kept step, stop, seconds."""
    rows = []
    for name, est in transforms.items():
        info = est.metadata_.get("experiment", {})
        rows.append({
            "transform": name, "alpha": est.alpha, "lmbda": est.lmbda,
            "regularizer": est.regularizer, "n_train": info.get("n_train"),
            "steps": info.get("steps"), "best_step": info.get("best_step"),
            "stopped_by": info.get("stop_reason"),
            "seconds": info.get("seconds"),
            "on_edge": edge_note(info.get("search")),
        })  # fmt: skip
    return pd.DataFrame(rows)


def edge_note(search: Mapping[str, Any] | None) -> str:
    """``"lmbda = 10, the highest of 0.01 … 10"`` for each axis a selected setting sits on the end
    of; ``""`` when it is inside its grid on every axis, ``"not searched"`` without a search."""
    if not search:
        return "not searched"
    notes = []
    for name, end in search["edges"].items():
        values = search["grid"][name]
        value = max(values) if end == "highest" else min(values)
        notes.append(f"{name} = {value:g}, the {end} of {min(values):g} … {max(values):g}")
    return "; ".join(notes)


def edge_explanations(
    transforms: Mapping[str, GlocalTransform], selection: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """One sentence per fitted transform whose selected setting sits on an end of its grid:
    why it may, and what the page does about it (the pages show them under their fit tables).

    gLocal's alpha at the low end under the trade-off rule is expected, not a search that
    stopped short: the rule takes the best alignment among the settings that keep enough
    neighbours, and alignment falls as alpha grows, so when every alpha of the grid keeps enough
    the rule takes the smallest; alpha = 0 is the global transform and page 2 sweeps alpha from 0
    to 1. An axis the search extended and that is still on an end says how often it grew.
    """
    lines = []
    for name, est in transforms.items():
        search = est.metadata_.get("experiment", {}).get("search")
        if not search:
            continue
        kind = est.metadata_.get("experiment", {}).get("kind", name)
        spec = selection_spec(selection, kind)
        for axis, end in search["edges"].items():
            value = getattr(est, axis)
            if axis == "alpha" and end == "lowest" and spec.get("scoring") == "tradeoff":
                lines.append(
                    f"{name}: α = {value:g} is the smallest α of its grid. The trade-off rule "
                    "takes the best alignment among the settings that keep at least "
                    f"{spec.get('min_overlap', 0.5):g} of the held-out contrast words' 10 "
                    "nearest neighbours; alignment falls as α grows, so when every α of the grid "
                    "keeps that many, the rule takes the smallest. The grid is not extended "
                    "below it: α = 0 is the global transform (its neighbourhoods are on page 3), "
                    "and page 2 sweeps α from 0 to 1 at this λ."
                )
            elif axis in spec.get("extend", []):
                lines.append(
                    f"{name}: {axis} = {value:g} is still the {end} value of its grid after the "
                    f"grid grew {search['extensions']} time(s) by a decade (the most the profile "
                    "allows): a value beyond it might score better."
                )
            else:
                lines.append(
                    f"{name}: {axis} = {value:g} is the {end} value of its grid, which this "
                    "profile does not extend: a value beyond it might score better."
                )
    return lines
