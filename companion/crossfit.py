"""Cross-fitting over the object-disjoint folds, and paired comparisons with verdicts.

Fold f holds out one fifth of the THINGS concepts: the transforms fitted on the other concepts'
triplets are evaluated on fold f's concepts, so that over the folds every concept is a test
concept once (:func:`fold_inputs`, :func:`fit_folds`). Downstream tasks on THINGS categories
then use every held-out member of a class: a few-shot episode trains on ``shots`` of them and
tests on all the others (:func:`few_shot_folds`); anomaly detection splits them into reference
and test concepts (:func:`anomaly_folds`). Every representation sees the same episodes and
splits, so the comparisons are paired: :func:`paired_differences` gives the mean difference
per unit (episode, or class of a split), its t-interval and the verdict with a stated margin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from companion.fits import fit_transform
from companion.inputs import THINGS_TASKS, Inputs, load_inputs
from glocal import things
from glocal.errors import GlocalError
from glocal.evaluation.categories import things_anomaly_detection, things_few_shot
from glocal.evaluation.few_shot import Classifier
from glocal.evaluation.intervals import mean_interval, verdict
from glocal.transform import GlocalTransform

#: Hyper-parameters that say where or how loudly a fit runs, not what it fits.
_RUNTIME = ("device", "verbose")


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
) -> list[Inputs]:
    """The profile's inputs once per fold: element f holds out fold f's concepts.

    Features and contrast sets are the same in every fold; the triplets (simulated or real)
    are split by the fold's objects (:func:`companion.inputs.load_inputs` with ``fold=f``).
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
        for f in range(n_folds)
    ]


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
            kind: fit_transform(inputs, kind, {k: v for k, v in est.get_params().items()
                                               if k not in _RUNTIME} | _runtime(params))
            for kind, est in first.items()
        })  # fmt: skip
    return fitted


def _runtime(params: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in dict(params or {}).items() if k in _RUNTIME}


def _representations(
    transforms: Mapping[str, GlocalTransform], features: np.ndarray
) -> dict[str, np.ndarray]:
    return {"original": features, **{k: t.transform(features) for k, t in transforms.items()}}


def _check_task(task: str) -> None:
    if task not in THINGS_TASKS:
        raise GlocalError(
            f"task {task!r}: cross-fitting applies to the THINGS category tasks "
            f"{list(THINGS_TASKS)}; image tasks compare the transforms on their own test sets"
        )


def few_shot_folds(
    folds: Sequence[Inputs],
    transforms: Sequence[Mapping[str, GlocalTransform]],
    task: str = "things-coarse",
    shots: Sequence[int] = (5,),
    n_repeats: int = 10,
    classifiers: Sequence[Classifier] = ("logreg",),
    seed: int = 0,
) -> pd.DataFrame:
    """Few-shot accuracy of every representation, episode by episode, over all folds.

    In fold f the classes are the THINGS categories (``task``) of fold f's held-out concepts
    that have more than ``max(shots)`` members there; an episode trains on ``shots`` of each
    class's members and tests on all the others. Episode r of fold f is the same for every
    representation (seeded by ``seed``, f and r), so rows pair on (fold, shots, repeat,
    classifier). Returns one row per episode, classifier and representation.
    """
    _check_task(task)
    categories = things.categories()
    frames = []
    for f, (inputs, fitted) in enumerate(zip(folds, transforms, strict=True)):
        for name, Z in _representations(fitted, inputs.features).items():
            table = things_few_shot(
                Z, categories, inputs.triplets.heldout, shots=shots, n_test_per_class=None,
                n_repeats=n_repeats, classifier=classifiers, overlap=THINGS_TASKS[task],
                min_members=max(shots) + 1, seed=int(np.random.SeedSequence([seed, f])
                                                     .generate_state(1)[0]),
            )  # fmt: skip
            frames.append(table.assign(fold=f, representation=name, task=task))
    return pd.concat(frames, ignore_index=True)


def anomaly_folds(
    folds: Sequence[Inputs],
    transforms: Sequence[Mapping[str, GlocalTransform]],
    task: str = "things-coarse",
    k: int = 5,
    n_repeats: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """One-vs-rest anomaly AUROC of every representation, per class, split and fold.

    In fold f each category of fold f's held-out concepts with at least 2k members is split
    into reference and test concepts (``n_repeats`` seeded splits); every representation is
    scored on the same splits, so rows pair on (fold, repeat, class).
    """
    _check_task(task)
    categories = things.categories()
    frames = []
    for f, (inputs, fitted) in enumerate(zip(folds, transforms, strict=True)):
        for r in range(n_repeats):
            split = int(np.random.SeedSequence([seed, f, r]).generate_state(1)[0])
            for name, Z in _representations(fitted, inputs.features).items():
                result = things_anomaly_detection(
                    Z, categories, inputs.triplets.heldout, k=k, overlap=THINGS_TASKS[task],
                    seed=split,
                )  # fmt: skip
                frames.append(result.per_class.assign(fold=f, repeat=r, representation=name,
                                                      task=task))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def paired_differences(
    table: pd.DataFrame,
    value: str,
    units: Sequence[str],
    by: Sequence[str] = (),
    baseline: str = "original",
    expected: Mapping[str, str] | None = None,
    margin: float = 0.0,
) -> pd.DataFrame:
    """Each representation minus ``baseline``, unit by unit, with a t-interval and a verdict.

    ``table`` is tidy: one row per (unit, representation) with the measure in ``value``;
    ``units`` are the columns that identify a unit (e.g. fold, repeat, shots); ``by`` the
    columns that keep comparisons apart (e.g. task). ``expected`` maps a representation to the
    sign the claim expects (``"positive"`` by default); ``margin`` is the size below which a
    difference does not matter (see :func:`glocal.evaluation.intervals.verdict`). Returns one
    row per group and representation: ``mean``, ``ci_low``, ``ci_high``, ``width``, ``n``
    (units) and ``verdict``.
    """
    keys = [*by, *units]
    missing = sorted({*keys, value, "representation"} - set(table.columns))
    if missing:
        raise GlocalError(f"paired_differences: the table lacks the column(s) {missing}")
    wide = table.pivot_table(index=keys, columns="representation", values=value, aggfunc="mean")
    if baseline not in wide:
        raise GlocalError(f"paired_differences: no rows of the baseline {baseline!r}")
    groups = wide.groupby(level=list(range(len(by)))) if by else [((), wide)]
    rows = []
    for group, part in groups:
        group = group if isinstance(group, tuple) else (group,)
        for name in [c for c in wide.columns if c != baseline]:
            pairs = part[[name, baseline]].dropna()
            mean, low, high, n = mean_interval((pairs[name] - pairs[baseline]).to_numpy())
            sign = (expected or {}).get(name, "positive")
            rows.append({
                **dict(zip(by, group, strict=True)), "representation": name, "mean": mean,
                "ci_low": low, "ci_high": high, "width": high - low, "n": n,
                "expected": sign, "verdict": verdict(low, high, sign, margin),
            })  # fmt: skip
    return pd.DataFrame(rows)
