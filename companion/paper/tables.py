"""The result notebooks' measurements as tidy tables: alignment, local structure, downstream."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from companion.paper.image_features import IMAGE_DATASETS, image_downstream
from companion.paper.inputs import CHANCE, THINGS_TASKS, Inputs
from companion.paper.triplets import _seed
from glocal import things
from glocal.errors import GlocalError
from glocal.evaluation.comparison import UNIT_COLUMNS, EvalSettings, compare_units
from glocal.evaluation.neighbours import neighbour_overlap
from glocal.evaluation.similarity import default_similarity
from glocal.transform import GlocalTransform


def representations(
    features: np.ndarray, transforms: Mapping[str, GlocalTransform]
) -> dict[str, np.ndarray]:
    """``{"original": features, name: transform(features), ...}``."""
    return {
        "original": features,
        **{k: np.asarray(t.transform(features)) for k, t in transforms.items()},
    }


def alignment_table(inputs: Inputs, transforms: Mapping[str, GlocalTransform]) -> pd.DataFrame:
    """Odd-one-out accuracy on the held-out test triplets, with chance and the ceiling.

    The original features are scored zero-shot with cosine similarity, transformed ones with
    dot products (as in the paper). Intervals are 95% cluster-robust intervals over the
    held-out concepts (two triplets that share a concept count as dependent;
    :func:`glocal.evaluation.intervals.cluster_interval`): the test
    triplets share their concepts, so the concepts, not the triplets, are the unit a claim
    about new concepts generalises over. Every representation is resampled with the same seed,
    so differences pair (:func:`alignment_units` gives the per-triplet rows).
    """
    from companion.paper.comparisons import summary

    test = inputs.triplets.test
    units = alignment_units(inputs, transforms)
    means = summary(units, "correct", clusters=["i", "j", "k"]).set_index("representation")
    rows = []
    for name, row in means.iterrows():
        rows.append({
            "source": inputs.label, "representation": name, "accuracy": row["mean"],
            "ci_low": row["ci_low"], "ci_high": row["ci_high"], "n_test": len(test),
            "n_concepts": int(row["n"]), "unit": "held-out concepts",
            "similarity": default_similarity(transformed=name != "zero-shot"), "reference": False,
        })  # fmt: skip
    references = {"chance": CHANCE, inputs.triplets.ceiling_label: inputs.triplets.ceiling}
    for name, value in references.items():
        rows.append({"source": inputs.label, "representation": name, "accuracy": value,
                     "n_test": len(test), "reference": True})  # fmt: skip
    return pd.DataFrame(rows)


def alignment_units(inputs: Inputs, transforms: Mapping[str, GlocalTransform]) -> pd.DataFrame:
    """One row per held-out test triplet and representation (``zero-shot`` first): ``correct``
    (1 or 0) and the triplet's three concepts ``i``, ``j``, ``k`` (the units of its interval).
    Measured by :func:`glocal.evaluation.comparison.compare_units`, as a user's ``compare``."""
    units = compare_units({"original": "original", **transforms}, things=inputs.features,
                          triplets=inputs.triplets.test, measurements=("odd_one_out",))  # fmt: skip
    return pd.DataFrame({
        "source": inputs.label,
        "representation": units["transform"].replace({"original": "zero-shot"}),
        "triplet": units["triplet"], "i": units["triplet_i"], "j": units["triplet_j"],
        "k": units["triplet_k"], "correct": units["value"],
    })  # fmt: skip


def things_units(
    inputs: Inputs,
    transforms: Mapping[str, Any],
    measurement: str,
    settings: EvalSettings,
    metric: str,
    reference: np.ndarray | None = None,
) -> pd.DataFrame:
    """The per-class rows of one THINGS category task (``few_shot`` or ``anomaly_detection``)
    for the original features and every transform, on ``inputs``' held-out concepts, measured
    by :func:`glocal.evaluation.comparison.compare_units` with ``settings``: the library's
    per-class table with its value named ``metric`` again, and the ``representation``."""
    units = compare_units({"original": "original", **transforms}, things=inputs.features,
                          heldout_objects=inputs.triplets.heldout, categories=things.categories(),
                          reference=reference, settings=settings,
                          measurements=(measurement,))  # fmt: skip
    return _class_rows(units, measurement, metric)


def task_units(
    inputs: Inputs,
    transforms: Mapping[str, Any],
    task: str,
    measurement: str,
    settings: EvalSettings,
    metric: str,
) -> pd.DataFrame:
    """:func:`things_units` for a THINGS task, and the same rows for an image task (its
    :class:`glocal.evaluation.comparison.Downstream` with the official protocol), both measured
    by :func:`glocal.evaluation.comparison.compare_units`; column ``task`` added."""
    if task in THINGS_TASKS:
        return things_units(inputs, transforms, measurement, settings, metric).assign(task=task)
    units = compare_units({"original": "original", **transforms},
                          downstream={task: _task_data(inputs, task)}, settings=settings,
                          measurements=(measurement,))  # fmt: skip
    return _class_rows(units, measurement, metric).assign(task=task)


def _class_rows(units: pd.DataFrame, measurement: str, metric: str) -> pd.DataFrame:
    rows = units.drop(columns=[*UNIT_COLUMNS, *(["k"] if measurement != "few_shot" else [])])
    return rows.rename(columns={"value": metric}).assign(representation=units["transform"])


def local_structure_table(
    inputs: Inputs,
    transforms: Mapping[str, GlocalTransform],
    ks: Sequence[int] = (1, 5, 10, 25, 50),
) -> pd.DataFrame:
    """Fraction of shared k-nearest neighbours (cosine), original vs each transform.

    Measured on the held-out THINGS concepts and on the held-out contrast items (never seen by
    the fit); 1 means the transform kept every neighbourhood.
    """
    sets = {
        "held-out THINGS concepts": inputs.features[inputs.triplets.heldout],
        "held-out contrast items": inputs.contrast_eval,
    }
    rows = []
    for items, X in sets.items():
        usable = [k for k in ks if k < len(X)]
        for name, t in transforms.items():
            for k, value in neighbour_overlap(X, t.transform(X), usable, "cosine").items():
                rows.append({"source": inputs.label, "items": items, "transform": name, "k": k,
                             "overlap": value, "n_items": len(X)})  # fmt: skip
    return pd.DataFrame(rows)


def nearest_concepts(
    inputs: Inputs,
    transforms: Mapping[str, GlocalTransform],
    n_queries: int = 6,
    k: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """The k nearest held-out concepts (cosine) of a few held-out query concepts, per space.

    Queries are a seeded sample of held-out concepts whose THINGS word is unique; one row per
    (query, representation) lists the neighbours' words, most similar first.
    """
    from glocal.evaluation.neighbours import nearest_neighbours

    concepts = things.concepts()
    words = concepts["Word"].to_numpy()
    heldout = inputs.triplets.heldout
    unique = [i for i, obj in enumerate(heldout) if (words == words[obj]).sum() == 1]
    rng = np.random.default_rng(_seed(seed, 6))
    queries = np.sort(rng.choice(unique, size=min(n_queries, len(unique)), replace=False))
    rows = []
    for name, Z in representations(inputs.features[heldout], transforms).items():
        neighbours = nearest_neighbours(Z, k, "cosine")
        for q in queries:
            rows.append({"query": words[heldout[q]], "representation": name,
                         "neighbours": ", ".join(words[heldout[neighbours[q]]])})  # fmt: skip
    return pd.DataFrame(rows)


def _task_data(inputs: Inputs, task: str) -> Any:
    """THINGS categories (THINGS tasks) or a :class:`DownstreamData` (image tasks)."""
    if task in THINGS_TASKS:
        return things.categories()
    if task in IMAGE_DATASETS:
        return image_downstream(inputs.model, inputs.module, task, inputs.pretrained)
    raise GlocalError(
        f"unknown downstream task {task!r}; choose from {list(THINGS_TASKS)} (text, quick) or "
        f"{list(IMAGE_DATASETS)} (image features, paper and smoke)"
    )


def few_shot_table(
    inputs: Inputs,
    transforms: Mapping[str, GlocalTransform],
    tasks: Sequence[str] = tuple(THINGS_TASKS),
    settings: EvalSettings | None = None,
    per_class: bool = False,
) -> pd.DataFrame:
    """Few-shot accuracy per episode for every representation (original first) and task
    (with ``per_class``: per class of each episode, column ``category``), measured by
    :func:`glocal.evaluation.comparison.compare_units` with ``settings`` (default
    ``EvalSettings(shots=(1, 2, 5), n_test_per_class=5, classifiers=("logreg",))``, 5 test
    items per class for THINGS and image tasks alike, as before; the THINGS category overlap
    rule of each task is set here).

    THINGS tasks classify held-out concepts into categories (support and test concepts both
    held out, ``settings.things_n_test_per_class`` test concepts per class). Image tasks follow
    the official protocol: support images from the training split, one fixed test set of up to
    ``settings.n_test_per_class`` test images per class (BREEDS: per target subclass) for every
    episode, logistic regression with C chosen by cross-validation on the support set, and no
    1-shot logistic regression (the official code cannot cross-validate one example per class).
    All representations see the same episodes. Summarise with :func:`glocal.summarize_few_shot`.
    """
    settings = settings or EvalSettings(shots=(1, 2, 5), n_test_per_class=5,
                                        classifiers=("logreg",))  # fmt: skip
    frames = []
    for task in tasks:
        mine = replace(settings, overlap=THINGS_TASKS.get(task, settings.overlap))
        rows = task_units(inputs, transforms, task, "few_shot", mine, "accuracy")
        rows = rows.rename(columns={"class": "category"})
        frames.append(rows if per_class else episodes_of(rows))
    return pd.concat(frames, ignore_index=True)


def anomaly_table(
    inputs: Inputs,
    transforms: Mapping[str, GlocalTransform],
    tasks: Sequence[str] = tuple(THINGS_TASKS),
    settings: EvalSettings | None = None,
) -> pd.DataFrame:
    """Anomaly detection AUROC per class, for every representation and task, measured by
    :func:`glocal.evaluation.comparison.compare_units` with ``settings`` (``anomaly_k``,
    ``seed``; default ``EvalSettings()``).

    Each class in turn is normal; test items are scored by their mean cosine distance to the
    k nearest normal training items. THINGS tasks use held-out concepts only
    (:func:`glocal.things_anomaly_detection`); image tasks their train/test splits, and
    ``cifar100-shift`` the official subclass-shift protocol
    (:func:`glocal.evaluation.anomaly.shifted_anomaly_detection`).
    """
    settings = settings or EvalSettings()
    frames = []
    for task in tasks:
        mine = replace(settings, overlap=THINGS_TASKS.get(task, settings.overlap))
        frames.append(task_units(inputs, transforms, task, "anomaly_detection", mine, "auroc"))
    return pd.concat(frames, ignore_index=True)


def episodes_of(class_rows: pd.DataFrame) -> pd.DataFrame:
    """One row per episode from the per-class rows of :func:`few_shot_episodes`
    (``per_class=True``): its accuracy over all its test items (the ``n_test``-weighted mean of
    its classes') and their number; the episode's other columns as they were."""
    keys = [c for c in class_rows.columns
            if c not in ("category", "accuracy", "n_test")]  # fmt: skip
    hits = class_rows.assign(hits=class_rows["accuracy"] * class_rows["n_test"])
    grouped = hits.groupby(keys, sort=False, dropna=False)
    episodes = grouped[["hits", "n_test"]].sum().reset_index()
    episodes["accuracy"] = episodes.pop("hits") / episodes["n_test"]
    return episodes
