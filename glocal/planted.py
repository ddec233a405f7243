"""Planted worlds with a known answer: for tests, benchmarks and the controlled simulation.

``planted_problem``: network features that linearly contain a hidden human embedding.
``make_world``: objects with planted category (global) and subclass (local) structure.
``concept_world``: concepts seen by people and two representations, drawn afresh as often as
needed (``draw_concepts``, ``draw_classes``): population values known, for checking intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glocal.errors import GlocalError
from glocal.triplets import simulate_triplets


@dataclass(frozen=True)
class PlantedProblem:
    """Network features ``X``, hidden human embedding ``H = X A``, triplets simulated from ``H``,
    and generic contrast features drawn like ``X``."""

    X: np.ndarray
    H: np.ndarray
    A: np.ndarray
    triplets: np.ndarray
    contrast: np.ndarray


def planted_problem(
    n_objects: int = 1854,
    n_features: int = 64,
    n_dims: int = 16,
    n_triplets: int = 300_000,
    n_contrast: int = 2000,
    human_scale: float = 1.0,
    seed: int = 0,
) -> PlantedProblem:
    """A problem whose answer is known: human similarity is a linear map of the features.

    Draws ``X ~ N(0, I)`` (float32), a hidden map ``A`` with ``H = X A`` (each entry of A has
    variance ``human_scale² / n_features``), triplets simulated from H
    (:func:`glocal.simulate_triplets`) and contrast rows from the same law as X (pure noise: they
    carry no structure a transform should keep).

    Parameters
    ----------
    n_objects, n_features : int
        Size of X (objects × features).
    n_dims : int
        Dimension of the hidden human embedding H.
    n_triplets : int
        Triplets simulated from H over all objects.
    n_contrast : int
        Rows of the contrast set.
    human_scale : float
        Scale of H: larger makes the simulated choices more deterministic.
    seed : int
        Seeds everything (the triplets use ``seed + 1``).
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_objects, n_features)).astype(np.float32)
    A = rng.standard_normal((n_features, n_dims)) * (human_scale / np.sqrt(n_features))
    H = X.astype(np.float64) @ A
    triplets = simulate_triplets(H, n_triplets, seed=seed + 1)
    contrast = rng.standard_normal((n_contrast, n_features)).astype(np.float32)
    return PlantedProblem(X=X, H=H, A=A, triplets=triplets, contrast=contrast)


@dataclass(frozen=True)
class WorldConfig:
    """Sizes and strengths of one simulated world.

    Every object belongs to one of ``n_categories`` categories and, inside it, to one of
    ``n_subclasses`` subclasses. Three independent latent blocks describe an object: its
    category centre u (``category_dims``), its subclass offset v (``subclass_dims``) and its own
    noise e (``noise_dims``), each with unit expected squared norm.

    * network features: ``x = R [network_category · u, network_subclass · v, network_noise · e]``
      with R a random rotation: strong local (subclass) structure, weak category signal;
    * human embedding: ``h = human_scale · [u, human_subclass · v] / √(1 + human_subclass²)``:
      people judge mainly by category and see the subclass only with weight
      ``human_subclass``; ``human_scale`` fixes the total signal (how deterministic the
      simulated choices are) whatever the weight.

    Triplets are simulated from h (softmax choice model); the contrast set and the downstream
    objects are fresh draws of x from the same world.
    """

    n_categories: int = 8
    n_subclasses: int = 4
    objects_per_subclass: int = 12
    category_dims: int = 8
    subclass_dims: int = 16
    noise_dims: int = 40
    network_category: float = 0.4
    network_subclass: float = 1.0
    network_noise: float = 1.5
    human_scale: float = 2.0
    human_subclass: float = 0.2
    heldout_fraction: float = 0.25
    n_train_triplets: int = 50_000
    n_test_triplets: int = 10_000
    n_contrast: int = 2000
    downstream_per_subclass: int = 20

    @property
    def n_features(self) -> int:
        """Dimension p of the network features."""
        return self.category_dims + self.subclass_dims + self.noise_dims


@dataclass(frozen=True)
class World:
    """One draw of a world: THINGS-like objects with triplets, a contrast set, downstream data."""

    config: WorldConfig
    X: np.ndarray  # (m, p) network features of the triplet objects
    H: np.ndarray  # (m, q) human embedding of the same objects
    category: np.ndarray  # (m,) category of each object
    subclass: np.ndarray  # (m,) subclass id (unique over categories) of each object
    train_objects: np.ndarray
    test_objects: np.ndarray
    train_triplets: np.ndarray
    test_triplets: np.ndarray
    contrast: np.ndarray  # (n_contrast, p) fresh network features for the local term
    probe: np.ndarray  # (n_probe, p) fresh network features: neighbourhoods, downstream tasks
    probe_category: np.ndarray
    probe_subclass: np.ndarray


def _check(config: WorldConfig) -> None:
    counts = ("n_categories", "n_subclasses", "objects_per_subclass", "category_dims",
              "subclass_dims", "noise_dims", "n_train_triplets", "n_test_triplets",
              "n_contrast", "downstream_per_subclass")  # fmt: skip
    for name in counts:
        if getattr(config, name) < 1:
            raise GlocalError(f"WorldConfig.{name} must be at least 1, got {getattr(config, name)}")
    if config.n_categories < 2 or config.n_subclasses < 2:
        raise GlocalError("WorldConfig: need at least 2 categories and 2 subclasses per category")
    if not 0.0 < config.heldout_fraction < 1.0:
        raise GlocalError(
            f"WorldConfig.heldout_fraction must lie in (0, 1), got {config.heldout_fraction}"
        )


def _blocks(rng: np.random.Generator, n: int, dims: int) -> np.ndarray:
    """n Gaussian vectors with unit expected squared norm."""
    return rng.standard_normal((n, dims)) / np.sqrt(dims)


def make_world(config: WorldConfig | None = None, seed: int = 0) -> World:
    """Draw a world (see :class:`WorldConfig`); everything is fixed by ``seed``."""
    config = config or WorldConfig()
    _check(config)
    rng = np.random.default_rng(seed)
    K, S = config.n_categories, config.n_subclasses
    centres = _blocks(rng, K, config.category_dims)
    offsets = _blocks(rng, K * S, config.subclass_dims)
    rotation = np.linalg.qr(rng.standard_normal((config.n_features, config.n_features)))[0]

    def draw(subclass: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u, v = centres[subclass // S], offsets[subclass]
        e = _blocks(rng, len(subclass), config.noise_dims)
        latent = np.hstack(
            [config.network_category * u, config.network_subclass * v, config.network_noise * e]
        )
        human = np.hstack([u, config.human_subclass * v]) * (
            config.human_scale / np.sqrt(1.0 + config.human_subclass**2)
        )
        return (latent @ rotation.T).astype(np.float32), human

    subclass = np.repeat(np.arange(K * S), config.objects_per_subclass)
    X, H = draw(subclass)
    m = len(subclass)
    order = rng.permutation(m)
    n_test = max(3, int(round(config.heldout_fraction * m)))
    test_objects, train_objects = np.sort(order[:n_test]), np.sort(order[n_test:])
    seeds = rng.integers(0, 2**31, size=2)
    train = simulate_triplets(H, config.n_train_triplets, train_objects, seed=int(seeds[0]))
    test = simulate_triplets(H, config.n_test_triplets, test_objects, seed=int(seeds[1]))
    contrast, _ = draw(rng.integers(0, K * S, size=config.n_contrast))
    probe_subclass = np.repeat(np.arange(K * S), config.downstream_per_subclass)
    probe, _ = draw(probe_subclass)
    return World(
        config=config,
        X=X,
        H=H,
        category=subclass // S,
        subclass=subclass,
        train_objects=train_objects,
        test_objects=test_objects,
        train_triplets=train,
        test_triplets=test,
        contrast=contrast,
        probe=probe,
        probe_category=probe_subclass // S,
        probe_subclass=probe_subclass,
    )


# --- worlds with a known population value: checking intervals by their coverage -------------


@dataclass(frozen=True)
class ConceptWorld:
    """A generator of concepts seen by people and by two representations, A and B.

    A concept has a latent human embedding ``h = centre + spread`` (people's similarity is
    ``h · h'``; their odd-one-out choices follow :func:`glocal.simulate_triplets`). A concept
    of the world belongs to one of the world's fixed classes (``centres``); fresh classes
    (for tasks whose unit is the class) draw their centres from the same law. The two
    representations map h linearly and add noise of their own to each concept:
    ``x = h M + s ε`` with a per-concept noise scale ``s ∝ noise · exp(noise_spread · z)``
    (z standard normal: some concepts are represented worse than others). A's map weighs
    half the latent dimensions 4 times more than the other half (a distorted view); B's
    weighs them equally. Made by :func:`concept_world`; drawn by :func:`draw_concepts` and
    :func:`draw_classes`.
    """

    centres: np.ndarray  # (n_classes, n_dims): the world's classes
    maps: tuple[np.ndarray, np.ndarray]  # (n_dims, n_features): A's and B's
    class_scale: float
    concept_scale: float
    noise: tuple[float, float]
    noise_spread: float


@dataclass(frozen=True)
class ConceptDraw:
    """Concepts drawn from a :class:`ConceptWorld`: the human embedding, both
    representations and each concept's class."""

    human: np.ndarray  # (n, n_dims)
    A: np.ndarray  # (n, n_features)
    B: np.ndarray  # (n, n_features)
    label: np.ndarray  # (n,)


def concept_world(
    *,
    n_dims: int = 16,
    n_features: int = 32,
    n_classes: int = 30,
    class_scale: float = 2.0,
    concept_scale: float = 1.5,
    noise: tuple[float, float] = (0.3, 0.3),
    noise_spread: float = 0.5,
    seed: int = 0,
) -> ConceptWorld:
    """A :class:`ConceptWorld`, fixed by ``seed``.

    Parameters
    ----------
    n_dims, n_features : int
        Dimension of the human embedding and of the representations.
    n_classes : int
        The world's classes (as THINGS' categories: fixed, concepts drawn within them).
    class_scale, concept_scale : float
        Root expected squared norm of a class centre and of a concept's offset from it.
    noise : tuple of float
        Noise of A and of B: the standard deviation of a feature's noise relative to that
        of its signal ``h M``, for a concept of median noise.
    noise_spread : float
        Standard deviation of the log noise scale over concepts.
    seed : int
        Seeds the classes and the maps.
    """
    if n_dims < 2 or n_features < 1 or n_classes < 1:
        raise GlocalError(
            f"concept_world: need n_dims >= 2, n_features >= 1 and n_classes >= 1, got "
            f"{n_dims}, {n_features}, {n_classes}"
        )
    rng = np.random.default_rng(seed)
    centres = _blocks(rng, n_classes, n_dims) * class_scale
    weights = np.where(np.arange(n_dims) < n_dims // 2, 1.6, 0.4)[:, None]
    distorted = weights * rng.standard_normal((n_dims, n_features)) / np.sqrt(n_dims)
    plain = rng.standard_normal((n_dims, n_features)) / np.sqrt(n_dims)
    return ConceptWorld(centres, (distorted, plain), class_scale, concept_scale,
                        (float(noise[0]), float(noise[1])), noise_spread)  # fmt: skip


def _represent(
    world: ConceptWorld, human: np.ndarray, label: np.ndarray, rng: np.random.Generator
) -> ConceptDraw:
    n, dims = human.shape
    power = world.class_scale**2 + world.concept_scale**2  # expected squared norm of h
    views = []
    for M, noise in zip(world.maps, world.noise, strict=True):
        signal = np.sqrt(power * (M**2).sum() / M.size)  # a feature's standard deviation
        scale = noise * signal * np.exp(world.noise_spread * rng.standard_normal((n, 1)))
        views.append(human @ M + scale * rng.standard_normal((n, M.shape[1])))
    return ConceptDraw(human, views[0], views[1], label)


def draw_concepts(world: ConceptWorld, n: int, seed: int | np.random.Generator = 0) -> ConceptDraw:
    """``n`` concepts of the world's classes (each class equally likely), independently."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, len(world.centres), size=n)
    dims = world.centres.shape[1]
    human = world.centres[label] + _blocks(rng, n, dims) * world.concept_scale
    return _represent(world, human, label, rng)


def draw_classes(
    world: ConceptWorld, n_classes: int, per_class: int, seed: int | np.random.Generator = 0
) -> ConceptDraw:
    """``n_classes`` fresh classes (centres drawn like the world's) of ``per_class``
    concepts each, class by class: for tasks whose unit of generalisation is the class."""
    rng = np.random.default_rng(seed)
    dims = world.centres.shape[1]
    centres = _blocks(rng, n_classes, dims) * world.class_scale
    label = np.repeat(np.arange(n_classes), per_class)
    human = centres[label] + _blocks(rng, len(label), dims) * world.concept_scale
    return _represent(world, human, label, rng)


@dataclass(frozen=True)
class SharedUnitScores:
    """Binary scores of rows that share units, and their known population mean."""

    values: np.ndarray  # (n_rows,) 0.0 or 1.0
    members: np.ndarray  # (n_rows, per_row) the units of each row
    population: float


def shared_unit_scores(
    n_units: int = 40,
    n_rows: int = 1500,
    *,
    per_row: int = 3,
    unit_sd: float = 0.5,
    noise_sd: float = 1.0,
    offset: float = 0.3,
    seed: int | np.random.Generator = 0,
) -> SharedUnitScores:
    """Rows scored 0/1 that share units (as test triplets share concepts), population known.

    Each of ``n_units`` fresh units gets an effect ``g ~ N(0, unit_sd²)``; each row involves
    ``per_row`` distinct units drawn uniformly and scores 1 when ``offset + Σ g + ε > 0``
    (``ε ~ N(0, noise_sd²)`` of its own). Over fresh units and rows the mean score is
    ``Φ(offset / √(per_row · unit_sd² + noise_sd²))``: an interval of the mean of one draw
    should cover it as often as its level says.
    """
    from scipy import stats

    if per_row < 1 or n_units < per_row or n_rows < 1:
        raise GlocalError(
            f"shared_unit_scores: need 1 <= per_row <= n_units and n_rows >= 1, got "
            f"per_row={per_row}, n_units={n_units}, n_rows={n_rows}"
        )
    rng = np.random.default_rng(seed)
    effects = rng.normal(0.0, unit_sd, n_units)
    members = rng.integers(0, n_units, size=(n_rows, per_row))
    while True:  # redraw the rows that repeat a unit
        ordered = np.sort(members, axis=1)
        repeated = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
        if not repeated.any():
            break
        members[repeated] = rng.integers(0, n_units, size=(int(repeated.sum()), per_row))
    latent = offset + effects[members].sum(axis=1) + rng.normal(0.0, noise_sd, n_rows)
    population = float(stats.norm.cdf(offset / np.sqrt(per_row * unit_sd**2 + noise_sd**2)))
    return SharedUnitScores((latent > 0).astype(np.float64), members, population)
