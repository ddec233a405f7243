"""Cross-fitting over the object-disjoint folds, and paired comparisons with verdicts.

Fold f holds out one fifth of the THINGS concepts: the transforms fitted on the other concepts'
triplets are evaluated on fold f's concepts, so that over the folds every concept is a test
concept once (:func:`fold_inputs`, :func:`fit_folds`). Downstream tasks on THINGS categories
then use every held-out member of a class: a few-shot episode trains on ``shots`` of them and
tests on all the others (:func:`few_shot_folds`); anomaly detection splits them into reference
and test concepts (:func:`anomaly_folds`). Every representation sees the same episodes and
splits, so the comparisons are paired (:mod:`companion.paper.comparisons` gives the intervals and
verdicts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from companion.paper.fits import fit_transform, record_search
from companion.paper.inputs import THINGS_TASKS, Inputs, load_inputs
from companion.paper.tables import episodes_of, things_units
from glocal import things
from glocal.errors import GlocalError
from glocal.evaluation.comparison import EvalSettings
from glocal.transform import GlocalTransform

#: Hyper-parameters that say where or how loudly a fit runs, not what it fits.
_RUNTIME = ("device", "verbose")
#: Folds of the object-disjoint split (the held-out fifth of page 1 is fold 0).
N_FOLDS = 5


def fold_inputs(
    source: str,
    n_train: int | None,
    n_val: int,
    n_test: int | None,
    n_contrast: int,
    n_contrast_eval: int,
    n_folds: int = 5,
    seed: int = 0,
    device: str = "auto",
    first: int | None = None,
) -> list[Inputs]:
    """The profile's inputs once per fold: element f holds out fold f's concepts (only the
    ``first`` folds when given).

    Features and contrast sets are the same in every fold; the triplets (simulated or real)
    are split by the fold's objects (:func:`companion.paper.inputs.load_inputs` with ``fold=f``).
    """
    return [
        load_inputs(
            source,
            n_train,
            n_val,
            n_test,
            n_contrast,
            n_contrast_eval,
            n_folds=n_folds,
            fold=f,
            seed=seed,
            device=device,
        )  # fmt: skip
        for f in range(n_folds if first is None else first)
    ]


def profile_folds(
    tasks: Sequence[str],
    source: str,
    n_train: int | None,
    n_val: int,
    n_test: int | None,
    n_contrast: int,
    n_contrast_eval: int,
    seed: int = 0,
    device: str = "auto",
    crossfit_folds: int = N_FOLDS,
) -> list[Inputs]:
    """The folds a downstream page needs: the first ``crossfit_folds`` of the five when it
    scores THINGS category tasks (cross-fitting; all five: every concept is a test concept
    once), else fold 0 alone (image tasks have test sets of their own)."""
    if not 1 <= crossfit_folds <= N_FOLDS:
        raise GlocalError(f"crossfit_folds must lie in 1..{N_FOLDS}, got {crossfit_folds!r}")
    if not any(task in THINGS_TASKS for task in tasks) or crossfit_folds == 1:
        return [load_inputs(source, n_train, n_val, n_test, n_contrast, n_contrast_eval,
                            seed=seed, device=device)]  # fmt: skip
    folds = fold_inputs(source, n_train, n_val, n_test, n_contrast, n_contrast_eval, N_FOLDS,
                        seed, device, first=crossfit_folds)  # fmt: skip
    return folds


def fit_folds(
    folds: Sequence[Inputs],
    kinds: Sequence[str],
    params: Mapping[str, Any] | None = None,
    selection: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, GlocalTransform]]:
    """Each kind fitted on every fold's training concepts, with one set of settings.

    The settings a kind leaves open are chosen once, by page 1's search on fold 0's training
    concepts (``selection``), and reused for the other folds, so that the folds differ only in
    the concepts they hold out (searching per fold would cost five searches per kind). All
    fits are cached.
    """
    first = {kind: fit_transform(folds[0], kind, params, selection=selection) for kind in kinds}
    fitted = [first]
    for inputs in folds[1:]:
        fitted.append({
            kind: record_search(
                fit_transform(inputs, kind, {k: v for k, v in est.get_params().items()
                                             if k not in _RUNTIME} | _runtime(params)),
                est.metadata_.get("experiment", {}).get("search", {}),
            )
            for kind, est in first.items()
        })  # fmt: skip
    return fitted


def _runtime(params: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in dict(params or {}).items() if k in _RUNTIME}


def _check_task(task: str) -> None:
    if task not in THINGS_TASKS:
        raise GlocalError(
            f"task {task!r}: cross-fitting applies to the THINGS category tasks "
            f"{list(THINGS_TASKS)}; image tasks compare the transforms on their own test sets"
        )


#: The few-shot episodes and the anomaly splits of cross-fitting unless a caller says otherwise.
FEW_SHOT_SETTINGS = EvalSettings(shots=(5,), n_repeats=10, classifiers=("logreg",))
ANOMALY_SETTINGS = EvalSettings(anomaly_k=5)


def _fold_seed(*keys: int) -> int:
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])


def few_shot_folds(
    folds: Sequence[Inputs],
    transforms: Sequence[Mapping[str, GlocalTransform]],
    task: str = "things-coarse",
    settings: EvalSettings = FEW_SHOT_SETTINGS,
    per_class: bool = False,
) -> pd.DataFrame:
    """Few-shot accuracy of every representation, episode by episode, over all folds.

    ``settings`` gives the episodes (``shots``, ``n_repeats``, ``classifiers``, ``seed``, and
    the classifiers' own settings). In fold f the classes are the THINGS categories (``task``)
    of fold f's held-out concepts that have more than ``max(shots)`` members there; an episode
    trains on ``shots`` of each class's members and tests on all the others. Episode r of fold
    f is the same for every representation (seeded by ``seed``, f and r), so rows pair on
    (fold, shots, repeat, classifier). Returns one row per episode, classifier and
    representation; with ``per_class`` one per episode, classifier, category (column
    ``category``) and representation, with the category's accuracy and test items
    (``n_test``), the rows an interval over categories resamples.
    """
    _check_task(task)
    frames = []
    for f, (inputs, fitted) in enumerate(zip(folds, transforms, strict=True)):
        fold = replace(settings, things_n_test_per_class=None, overlap=THINGS_TASKS[task],
                       seed=_fold_seed(settings.seed, f))  # fmt: skip
        rows = things_units(inputs, fitted, "few_shot", fold, "accuracy")
        representation = rows.pop("representation")
        frames.append(rows.assign(fold=f, representation=representation, task=task))
    frame = pd.concat(frames, ignore_index=True).rename(columns={"class": "category"})
    return frame if per_class else episodes_of(frame)


#: Anomaly-detection protocols: every other category's test concepts are anomalies
#: (one-vs-rest), or only those of the categories people find most similar (near).
PROTOCOLS = ("one-vs-rest", "near")


def anomaly_folds(
    folds: Sequence[Inputs],
    transforms: Sequence[Mapping[str, GlocalTransform]],
    task: str = "things-coarse",
    settings: EvalSettings = ANOMALY_SETTINGS,
    n_splits: int = 5,
) -> pd.DataFrame:
    """Anomaly AUROC of every representation, per class, split and fold.

    ``settings`` gives ``anomaly_k``, ``anomaly_near`` and ``seed``. In fold f each category of
    fold f's held-out concepts with at least 2k members is split into reference and test
    concepts (``n_splits`` seeded splits, column ``repeat``); every representation is scored on
    the same splits, so rows pair on (fold, repeat, class). The anomalies of a category are
    every other category's test concepts (``protocol`` one-vs-rest) or, with
    ``settings.anomaly_near``, those of the n categories closest to it in the human (VICE)
    embedding (``protocol`` near; :func:`glocal.evaluation.categories.near_categories`), which
    no compared representation defines.
    """
    _check_task(task)
    near = settings.anomaly_near
    reference = None if near is None else things.human_embedding()
    protocol = PROTOCOLS[0] if near is None else PROTOCOLS[1]
    frames = []
    for f, (inputs, fitted) in enumerate(zip(folds, transforms, strict=True)):
        for r in range(n_splits):
            seed = _fold_seed(settings.seed, f, r)
            split = replace(settings, overlap=THINGS_TASKS[task], seed=seed)
            rows = things_units(inputs, fitted, "anomaly_detection", split, "auroc", reference)
            representation = rows.pop("representation")
            frames.append(rows.assign(fold=f, repeat=r, representation=representation,
                                      task=task, protocol=protocol))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def few_shot_episodes(
    folds: Sequence[Inputs],
    transforms: Sequence[Mapping[str, Any]],
    tasks: Sequence[str],
    settings: EvalSettings = FEW_SHOT_SETTINGS,
    per_class: bool = False,
) -> pd.DataFrame:
    """Episodes of every task: THINGS tasks cross-fitted over ``folds``
    (:func:`few_shot_folds`), image tasks on their own test sets with fold 0's transforms
    (``settings.n_test_per_class`` test images per class, 100 when None;
    :func:`companion.paper.tables.few_shot_table`). One row per episode, classifier and
    representation, with ``fold`` (0 for image tasks); with ``per_class`` one per class of
    each episode (column ``category``, with ``n_test``)."""
    from companion.paper.tables import few_shot_table

    frames = []
    for task in tasks:
        if task in THINGS_TASKS:
            frames.append(few_shot_folds(folds, transforms, task, settings, per_class))
        else:
            images = replace(settings, n_test_per_class=settings.n_test_per_class or 100)
            table = few_shot_table(folds[0], transforms[0], (task,), images, per_class)
            frames.append(table.assign(fold=0))
    return pd.concat(frames, ignore_index=True)


def anomaly_splits(
    folds: Sequence[Inputs],
    transforms: Sequence[Mapping[str, Any]],
    tasks: Sequence[str],
    settings: EvalSettings = ANOMALY_SETTINGS,
    n_splits: int = 5,
) -> pd.DataFrame:
    """AUROC per class of every task: THINGS tasks cross-fitted with ``n_splits`` splits per
    fold (:func:`anomaly_folds`), each in the one-vs-rest protocol and, with
    ``settings.anomaly_near``, the near protocol too; image tasks on their own split with fold
    0's transforms (one-vs-rest: no reference embedding says which of their classes are near).
    One row per class, split, protocol and representation, with ``fold``, ``repeat`` and
    ``protocol``."""
    from companion.paper.tables import anomaly_table

    near = settings.anomaly_near
    frames = []
    for task in tasks:
        if task in THINGS_TASKS:
            for n in (None, near) if near is not None else (None,):
                protocol = replace(settings, anomaly_near=n)
                frames.append(anomaly_folds(folds, transforms, task, protocol, n_splits))
        else:
            table = anomaly_table(folds[0], transforms[0], (task,),
                                  replace(settings, anomaly_near=None))  # fmt: skip
            frames.append(table.assign(fold=0, repeat=0, protocol=PROTOCOLS[0]))
    return pd.concat(frames, ignore_index=True)
