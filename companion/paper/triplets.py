"""Profile inputs, the triplets: the object split of THINGS and the training, validation and
held-out test triplets (THINGS-data choices, or simulated from VICE)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from glocal import data, things
from glocal.errors import DataUnavailableError, GlocalError
from glocal.evaluation.alignment import odd_one_out_accuracy
from glocal.triplets import object_disjoint_folds, simulate_triplets

#: Human noise ceiling of THINGS odd-one-out choices (Brain-Score's THINGS benchmark).
THINGS_NOISE_CEILING = 0.6767


@dataclass(frozen=True)
class TripletData:
    """Triplets split by objects: fit on ``train`` (early stopping on ``val``), test on held-out.

    ``train`` and ``val`` hold only ``train_objects``; ``test`` holds only ``heldout`` objects,
    which every measurement uses. ``ceiling`` is the best accuracy to expect on ``test``.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    train_objects: np.ndarray
    heldout: np.ndarray
    source: str  # "simulated" (from VICE) or "things" (THINGS-data choices)
    ceiling: float
    ceiling_label: str

    def with_train_size(self, n: int) -> TripletData:
        """The first ``n`` training triplets (a seeded random subset; subsets are nested)."""
        if not 1 <= n <= len(self.train):
            raise GlocalError(f"n must lie in [1, {len(self.train)}] training triplets, got {n}")
        return replace(self, train=self.train[:n])


def heldout_objects(n_folds: int = 5, fold: int = 0, seed: int = 0) -> np.ndarray:
    """The held-out objects of fold ``fold`` of :func:`glocal.object_disjoint_folds`.

    The object groups depend only on (n_objects, n_folds, seed), not on the triplets, so one
    dummy triplet gives them; real and simulated triplets are split the same way.
    """
    if not 0 <= fold < n_folds:
        raise GlocalError(f"fold must lie in [0, {n_folds}), got {fold}")
    dummy = np.array([[0, 1, 2]])
    objects = object_disjoint_folds(dummy, things.N_OBJECTS, n_folds, seed)[fold].test_objects
    assert objects is not None  # object-disjoint folds always name their test objects
    return objects


def _seed(seed: int, stream: int) -> int:
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    previous = os.environ.get(data.ENV_OFFLINE)
    os.environ[data.ENV_OFFLINE] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(data.ENV_OFFLINE, None)
        else:
            os.environ[data.ENV_OFFLINE] = previous


def cached_things_triplets(download: bool = False) -> np.ndarray | None:
    """The THINGS-data triplets of the paper's modelling set (every triplet except the
    noise-ceiling ones) if the mirror or cache holds the file, else None.

    Nothing is downloaded unless ``download`` (then a failed download also gives None).
    """
    with contextlib.nullcontext() if download else _offline():
        try:  # the paper's modelling set: without the noise-ceiling triplets
            return things.triplets("all", exclude_noise_ceiling=True)
        except DataUnavailableError:
            return None


TRIPLETS_MISSING = (
    "THINGS odd-one-out triplets (registry entry things/triplets, OSF h2smy): run "
    "`glocal data fetch things/triplets` on a machine with internet, or put the CSV in the cache"
)


def _take(rng: np.random.Generator, triplets: np.ndarray, n: int | None) -> np.ndarray:
    order = rng.permutation(len(triplets))
    return triplets[order if n is None else order[: min(n, len(order))]]


def make_triplets(
    n_train: int | None,
    n_val: int,
    n_test: int | None,
    source: str = "auto",
    n_folds: int = 5,
    fold: int = 0,
    seed: int = 0,
) -> TripletData:
    """Training, validation and held-out test triplets, split by objects.

    ``source``: ``"simulated"`` draws (similar, similar, odd) choices from the VICE human
    embedding (:func:`glocal.simulate_triplets`): ``n_train`` and ``n_val`` among the training
    objects, ``n_test`` among the held-out ones; the ceiling is VICE's own accuracy on the test
    triplets. ``"things"`` uses the THINGS-data triplets (:func:`glocal.object_disjoint_folds`:
    triplets mixing both object groups are dropped), ``n_*`` = None taking all, with the human
    noise ceiling. ``"auto"`` uses THINGS-data when the mirror or cache holds it, else simulates.
    The held-out objects are fold ``fold`` of ``n_folds`` (seeded).
    """
    if source not in ("auto", "simulated", "things"):
        raise GlocalError(f"source must be 'auto', 'simulated' or 'things', got {source!r}")
    heldout = heldout_objects(n_folds, fold, seed)
    train_objects = np.setdiff1d(np.arange(things.N_OBJECTS), heldout)
    real = None if source == "simulated" else cached_things_triplets(source == "things")
    if real is None and source == "things":
        raise DataUnavailableError(f"missing input: {TRIPLETS_MISSING}")
    if real is not None:
        split = object_disjoint_folds(real, things.N_OBJECTS, n_folds, seed)[fold]
        rng = np.random.default_rng(_seed(seed, 0))
        pool = _take(rng, split.train, None)
        if n_val >= len(pool):
            raise GlocalError(f"n_val={n_val} leaves no training triplets of {len(pool)}")
        train = pool[n_val:] if n_train is None else pool[n_val : n_val + n_train]
        return TripletData(
            train=train,
            val=pool[:n_val],
            test=_take(rng, split.test, n_test),
            train_objects=train_objects,
            heldout=heldout,
            source="things",
            ceiling=THINGS_NOISE_CEILING,
            ceiling_label="human noise ceiling",
        )
    if n_train is None or n_test is None:
        raise GlocalError("simulated triplets need explicit n_train and n_test")
    vice = things.human_embedding()
    test = simulate_triplets(vice, n_test, objects=heldout, seed=_seed(seed, 3))
    return TripletData(
        train=simulate_triplets(vice, n_train, objects=train_objects, seed=_seed(seed, 1)),
        val=simulate_triplets(vice, n_val, objects=train_objects, seed=_seed(seed, 2)),
        test=test,
        train_objects=train_objects,
        heldout=heldout,
        source="simulated",
        ceiling=odd_one_out_accuracy(vice, test, similarity="dot"),
        ceiling_label="generating VICE embedding",
    )
