"""Offline downstream tasks on THINGS concepts: category few-shot learning and anomaly detection.

The labels are THINGS' high-level categories (``glocal.things.categories()``: a 0/1 frame of
shape (1854, n_categories), index uniqueID, one column per category). How objects map to a
single label, the policy every task here uses:

* objects in no category (406 of 1854) are excluded;
* objects in several categories (e.g. ``mammal`` and ``animal``, ``fruit`` and ``food``) are
  resolved by ``overlap``: ``"largest"`` (default) assigns each to its broadest category, the
  one with the most members among all 1854 objects, which yields the top-level classes
  (food, animal, clothing, tool, container, vehicle, ...); ``"smallest"`` assigns each to its
  most specific category; ``"drop"`` leaves out every object with more than one category.
  Ties go to the earlier column;
* only categories with at least ``min_members`` labelled objects *among the evaluated
  objects* are kept: while some category is short, the shortest one (ties: the first in the
  preference order) is removed and its objects move to their next category in the same
  order, if they have one.

Tasks run on held-out objects only: pass the indices of the objects whose triplets were not
used to fit the transform (e.g. ``object_disjoint_folds(...)[f].test_objects``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from glocal._params import verbose_level
from glocal.errors import GlocalError
from glocal.evaluation.anomaly import AnomalyDetectionResult, anomaly_detection
from glocal.evaluation.few_shot import Classifier, few_shot
from glocal.io import check_feature_matrix

Overlap = Literal["largest", "smallest", "drop"]


def _membership(categories: pd.DataFrame) -> np.ndarray:
    if not isinstance(categories, pd.DataFrame):
        raise GlocalError(
            "categories: expected a pandas DataFrame (objects × categories) of 0/1 ints, as "
            f"returned by glocal.things.categories(); got {type(categories).__name__}"
        )
    values = categories.to_numpy()
    if values.ndim != 2 or values.shape[1] == 0:
        raise GlocalError(f"categories: expected at least one category column, got {values.shape}")
    if not np.isin(values, (0, 1)).all():
        raise GlocalError("categories: every cell must be 0 or 1 (fill empty cells with 0)")
    return values.astype(bool)


def check_object_indices(
    objects: np.ndarray | Sequence[int], n: int, where: str = "objects"
) -> np.ndarray:
    """Validate distinct 0-based object indices in [0, n); return them sorted as int64."""
    array = np.asarray(objects)
    if array.ndim != 1 or len(array) == 0:
        raise GlocalError(f"{where}: expected a non-empty 1-D array of object indices")
    if not np.issubdtype(array.dtype, np.integer):
        raise GlocalError(f"{where}: expected integer object indices, got dtype {array.dtype}")
    if array.min() < 0 or array.max() >= n:
        raise GlocalError(f"{where}: indices must lie in [0, {n}) (0-based THINGS order)")
    if len(np.unique(array)) != len(array):
        raise GlocalError(f"{where}: object indices repeat; pass each held-out object once")
    return np.sort(array.astype(np.int64))


def category_labels(
    categories: pd.DataFrame,
    objects: np.ndarray | Sequence[int] | None = None,
    min_members: int = 1,
    overlap: Overlap = "largest",
) -> pd.Series:
    """One category name per object of ``objects`` that gets one (see the module docstring).

    Returns a Series indexed by object index (position in ``categories``), named "category";
    objects without a usable category are absent from it.

    Parameters
    ----------
    categories : pandas.DataFrame of shape (n_objects, n_categories)
        Category membership, 0/1, one row per object and one column per category, as from
        ``glocal.things.categories()``.
    objects : array-like of int or None, default=None
        Distinct 0-based indices (positions in ``categories``) of the objects to label (None:
        all); ``min_members`` counts members among them.
    min_members : int, default=1
        Fewest labelled objects a category needs to be kept; the objects of a short category
        move to their next category.
    overlap : {"largest", "smallest", "drop"}, default="largest"
        How objects in several categories are resolved: their broadest category, their most
        specific one, or left out.

    Returns
    -------
    pandas.Series
        The category name of each labelled object, indexed by object index in increasing
        order.

    Raises
    ------
    GlocalError
        For ``categories`` that is not a DataFrame of 0/1 cells with at least one column,
        invalid ``objects``, an unknown ``overlap`` or ``min_members`` below 1.
    """
    member = _membership(categories)
    names = np.asarray(categories.columns)
    objects = (
        np.arange(len(member))
        if objects is None
        else check_object_indices(objects, len(member), "objects")
    )
    if overlap not in ("largest", "smallest", "drop"):
        raise GlocalError(f"overlap must be 'largest', 'smallest' or 'drop', got {overlap!r}")
    if min_members < 1:
        raise GlocalError(f"min_members must be at least 1, got {min_members}")
    sub = member[objects]
    if overlap == "drop":
        sub = sub & (sub.sum(axis=1) == 1)[:, None]
    # preference order of categories by size over all objects; stable: column order for ties
    sizes = member.sum(axis=0)
    by_size = np.argsort(sizes if overlap == "smallest" else -sizes, kind="stable")
    keep = np.ones(len(names), dtype=bool)
    while True:
        usable = sub[:, by_size] & keep[by_size]
        has = usable.any(axis=1)
        label = np.where(has, by_size[usable.argmax(axis=1)], -1)
        counts = np.bincount(label[has], minlength=len(names))
        too_small = keep & (counts < min_members)
        if not too_small.any():
            break
        candidates = by_size[too_small[by_size]]  # in preference order
        keep[candidates[np.argmin(counts[candidates])]] = False
    return pd.Series(names[label[has]], index=objects[has], name="category")


def _check_inputs(X: np.ndarray, categories: pd.DataFrame) -> np.ndarray:
    X = check_feature_matrix(X, "X")
    if len(categories) != len(X):
        raise GlocalError(
            f"categories has {len(categories)} rows but X has {len(X)}; both must list the "
            "THINGS objects in the canonical order"
        )
    return X


def things_few_shot(
    X: np.ndarray,
    categories: pd.DataFrame,
    heldout: np.ndarray | Sequence[int],
    shots: Sequence[int] = (1, 5, 10),
    n_test_per_class: int | None = 5,
    n_repeats: int = 10,
    classifier: Classifier | Sequence[Classifier] = ("logreg", "centroid"),
    overlap: Overlap = "largest",
    min_members: int | None = None,
    seed: int = 0,
    verbose: int = 0,
    progress: bool | None = None,
    **few_shot_kwargs: Any,
) -> pd.DataFrame:
    """Few-shot classification of held-out THINGS concepts into their categories.

    Support and test concepts both come from ``heldout`` (disjoint in every episode): for n
    shots, n concepts per category train the classifier and ``n_test_per_class`` others (None:
    all the others) are classified. ``min_members`` defaults to max(shots) + n_test_per_class
    (max(shots) + 1 with None), so every category serves every n.

    Parameters
    ----------
    X : ndarray of shape (1854, p)
        Features of all THINGS objects, in the order of the rows of ``categories``.
    categories : pandas.DataFrame
        Category membership of the same objects (see :func:`glocal.category_labels`).
    heldout : array-like of int
        Distinct 0-based indices of the held-out objects.
    shots : sequence of int, default=(1, 5, 10)
        Support concepts per category; each value gets ``n_repeats`` episodes.
    n_test_per_class : int or None, default=5
        Test concepts per category in each episode; None: every held-out member that is not
        in the support set.
    n_repeats : int, default=10
        Episodes per value of ``shots``.
    classifier : {"logreg", "centroid"} or sequence of them, default=("logreg", "centroid")
        The classifiers run on every episode.
    overlap : {"largest", "smallest", "drop"}, default="largest"
        How concepts in several categories are labelled (see :func:`glocal.category_labels`).
    min_members : int or None, default=None
        Fewest labelled held-out concepts a category needs to be kept (None: the default
        above).
    seed : int, default=0
        Seeds the episodes (see :func:`glocal.few_shot`).
    verbose : int, default=0
        0: quiet; 1 or more: a progress bar over episodes.
    progress : bool or None, default=None
        Deprecated name of ``verbose`` (``True`` is 1): accepted for one release, with a
        :class:`FutureWarning`.
    **few_shot_kwargs
        Further keyword arguments of :func:`glocal.few_shot` (e.g. ``Cs``, ``cv_folds``,
        ``device``, ``one_shot``).

    Returns
    -------
    pandas.DataFrame
        :func:`glocal.few_shot`'s table (one row per episode and classifier) with the number
        of categories in ``n_classes``.

    Raises
    ------
    GlocalError
        For an ``X`` that is not a finite, real 2-D array with one row per row of
        ``categories``, invalid ``categories`` or ``heldout``, fewer than 2 categories with
        enough held-out concepts, and the errors of :func:`glocal.few_shot`.
    """
    X = _check_inputs(X, categories)
    heldout = check_object_indices(heldout, len(X), "heldout")
    need = max(int(n) for n in shots) + (1 if n_test_per_class is None else n_test_per_class)
    labels = category_labels(categories, heldout, min_members or need, overlap)
    n_categories = labels.nunique()
    if n_categories < 2:
        raise GlocalError(
            f"heldout: only {n_categories} categories have {min_members or need} or more of "
            f"the {len(heldout)} held-out objects; hold out more objects or lower shots, "
            "n_test_per_class or min_members"
        )
    index = labels.index.to_numpy()
    return few_shot(
        X[index],
        labels.to_numpy(),
        shots=shots,
        n_test_per_class=n_test_per_class,
        n_repeats=n_repeats,
        classifier=classifier,
        seed=seed,
        verbose=verbose_level(verbose, progress, "things_few_shot"),
        **few_shot_kwargs,
    )


def split_per_category(
    labels: pd.Series, train_fraction: float, min_train: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split labelled objects per category into reference (train) and test object indices.

    Each category gives max(min_train, round(train_fraction · size)) objects to train, at least
    one to test; the draw is seeded.
    """
    if not 0.0 < train_fraction < 1.0:
        raise GlocalError(f"train_fraction must lie in (0, 1), got {train_fraction}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for name in sorted(labels.unique()):
        members = rng.permutation(labels.index[labels.to_numpy() == name].to_numpy())
        n_train = max(min_train, int(round(train_fraction * len(members))))
        if n_train >= len(members):
            raise GlocalError(
                f"category {name!r} has {len(members)} objects: too few for {n_train} reference "
                "objects plus a test object; raise min_members"
            )
        train.append(members[:n_train])
        test.append(members[n_train:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def things_anomaly_detection(
    X: np.ndarray,
    categories: pd.DataFrame,
    heldout: np.ndarray | Sequence[int],
    k: int = 5,
    train_fraction: float = 0.5,
    overlap: Overlap = "largest",
    min_members: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    verbose: int = 0,
    progress: bool | None = None,
    near: int | None = None,
    reference: np.ndarray | None = None,
) -> AnomalyDetectionResult:
    """Category-vs-rest anomaly detection on held-out THINGS concepts.

    The labelled held-out concepts are split per category (``train_fraction`` of each, at
    least k) into reference and test concepts. For each category, its reference concepts are
    the normal set; every test concept is scored by its mean cosine distance to its k nearest
    normal concepts, and the AUROC separates the other categories' test concepts from the
    category's own. ``min_members`` defaults to 2k. With ``near``, only the test concepts of
    the ``near`` categories most similar to it count as a category's anomalies (the "near"
    protocol, :func:`near_categories`): similar by ``reference``, an embedding that no compared
    representation defines (e.g. the human VICE embedding).

    Parameters
    ----------
    X : ndarray of shape (1854, p)
        Features of all THINGS objects, in the order of the rows of ``categories``.
    categories : pandas.DataFrame
        Category membership of the same objects (see :func:`glocal.category_labels`).
    heldout : array-like of int
        Distinct 0-based indices of the held-out objects.
    k : int, default=5
        Nearest normal concepts averaged per score.
    train_fraction : float, default=0.5
        Share of each category's concepts in the reference set, in (0, 1).
    overlap : {"largest", "smallest", "drop"}, default="largest"
        How concepts in several categories are labelled (see :func:`glocal.category_labels`).
    min_members : int or None, default=None
        Fewest labelled held-out concepts a category needs to be kept, at least ``k + 1``
        (None: 2k).
    seed : int, default=0
        Seeds the split into reference and test concepts.
    device : str, default="cpu"
        Torch device of the computation (see :func:`glocal.anomaly_detection`).
    verbose : int, default=0
        0: quiet; 1 or more: a progress bar over categories.
    progress : bool or None, default=None
        Deprecated name of ``verbose`` (``True`` is 1): accepted for one release, with a
        :class:`FutureWarning`.
    near : int or None, default=None
        Anomalies of a category: the test concepts of its ``near`` most similar categories
        (None: of every other category).
    reference : ndarray of shape (1854, d) or None, default=None
        With ``near``: the embedding whose category centroids (over the held-out members)
        define "most similar" (cosine).

    Returns
    -------
    AnomalyDetectionResult
        One row of ``per_class`` and one column of ``scores`` per kept category (``class``
        holds its name).

    Raises
    ------
    GlocalError
        For an ``X`` that is not a finite, real 2-D array with one row per row of
        ``categories``, invalid ``categories`` or ``heldout``, ``min_members`` below ``k + 1``,
        fewer than 2 categories with enough held-out concepts, ``train_fraction`` outside
        (0, 1) or a category too small for its reference and test concepts, and the errors of
        :func:`glocal.anomaly_detection`.
    """
    X = _check_inputs(X, categories)
    heldout = check_object_indices(heldout, len(X), "heldout")
    min_members = min_members or 2 * k
    if min_members < k + 1:
        raise GlocalError(
            f"min_members={min_members} is too small: a category needs k={k} reference "
            "objects plus one test object"
        )
    labels = category_labels(categories, heldout, min_members, overlap)
    if labels.nunique() < 2:
        raise GlocalError(
            f"heldout: fewer than 2 categories have {min_members} or more of the "
            f"{len(heldout)} held-out objects; hold out more objects or lower min_members"
        )
    train, test = split_per_category(labels, train_fraction, k, seed)
    anomalies = None
    if near is not None:
        if reference is None:
            raise GlocalError(
                "near: the near protocol needs reference=, an embedding of the 1854 objects "
                "(e.g. the VICE embedding) whose category centroids say which are most similar"
            )
        anomalies = near_categories(reference, labels, near)
    return anomaly_detection(
        X[train],
        labels.loc[train].to_numpy(),
        X[test],
        labels.loc[test].to_numpy(),
        k=k,
        device=device,
        verbose=verbose_level(verbose, progress, "things_anomaly_detection"),
        anomalies=anomalies,
    )


def near_categories(reference: np.ndarray, labels: pd.Series, near: int) -> dict[Any, list]:
    """Each category's ``near`` most similar other categories, most similar first.

    ``labels`` maps object indices (its index) to categories (:func:`category_labels`);
    similarity is the cosine between the categories' mean ``reference`` rows over those
    objects. Used by the near protocol of :func:`things_anomaly_detection`.
    """
    reference = check_feature_matrix(reference, "reference")
    names = sorted(labels.unique())
    if not 1 <= near < len(names):
        raise GlocalError(
            f"near={near}: choose 1 to {len(names) - 1} (there are {len(names)} categories)"
        )
    index = labels.index.to_numpy()
    if index.max() >= len(reference):
        raise GlocalError(
            f"reference has {len(reference)} rows but the labels index object {index.max()}; "
            "pass one row per THINGS object"
        )
    centroids = np.stack([reference[index[labels.to_numpy() == c]].mean(axis=0) for c in names])
    unit = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    order = np.argsort(-similarity, axis=1, kind="stable")[:, :near]
    return {c: [names[j] for j in row] for c, row in zip(names, order, strict=True)}
