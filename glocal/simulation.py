"""A controlled world with planted global (category) and local (subclass) structure, in which
naive, global and gLocal alignment have known, predictable effects."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from glocal.downstream import few_shot
from glocal.errors import GlocalError
from glocal.metrics import neighbour_overlap, odd_one_out_accuracy, rsa
from glocal.transform import GlocalTransform
from glocal.triplets import simulate_triplets

#: The transforms fitted in every world, in display order (``original`` = no transform).
TRANSFORMS: tuple[str, ...] = ("original", "naive", "global", "glocal")


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


@dataclass(frozen=True)
class FitConfig:
    """Settings shared by the three fits (passed to :meth:`GlocalTransform.preset`).

    Keep several steps per epoch (``n_train_triplets / triplet_batch_size`` ≥ 5): early
    stopping counts epochs, and gLocal's loss first rises as W leaves the identity (the local
    term is smallest there), so with one or two steps per epoch a fit can stop at its start.
    """

    alpha: float = 0.1
    lmbda: float = 1e-2
    tau: float = 0.1
    lr: float = 1e-2
    max_epochs: int = 200
    triplet_batch_size: int = 8192
    contrast_batch_size: int = 512
    patience: int = 5


def fit_transforms(
    world: World,
    fit: FitConfig | None = None,
    seed: int = 0,
    names: Sequence[str] = TRANSFORMS[1:],
) -> dict[str, Any]:
    """Fit the naive, global and gLocal transforms (or those in ``names``) on the world's
    training triplets. Returns {name: fitted GlocalTransform}; ``"original"`` is None."""
    unknown = [n for n in names if n not in TRANSFORMS[1:]]
    if unknown:
        raise GlocalError(f"names: unknown transform(s) {unknown}; choose from {TRANSFORMS[1:]}")
    fit = fit or FitConfig()
    common = {k: v for k, v in asdict(fit).items() if k != "alpha"}
    common.update(progress=False, device="cpu", seed=seed)
    fitted: dict[str, Any] = {"original": None}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # problems this small run fastest (and reproducibly) on one thread
    try:
        for name in names:
            overrides = dict(common)
            if name == "glocal":
                overrides["alpha"] = fit.alpha
            est = GlocalTransform.preset(name, **overrides)
            contrast = world.contrast if name == "glocal" else None
            fitted[name] = est.fit(world.X, world.train_triplets, contrast=contrast)
            if est.best_epoch_ <= 2 and est.n_steps_ > est.best_epoch_:
                warnings.warn(
                    f"the {name} fit kept its epoch-{est.best_epoch_} parameters: its loss rose "
                    "after the first steps and early stopping ended it; use a smaller "
                    "triplet_batch_size (more steps per epoch) or a lower lr",
                    RuntimeWarning,
                    stacklevel=2,
                )
    finally:
        torch.set_num_threads(threads)
    return fitted


def _apply(transform: Any, X: np.ndarray) -> np.ndarray:
    return X if transform is None else transform.transform(X)


def _within_category_few_shot(
    Z: np.ndarray, category: np.ndarray, subclass: np.ndarray, shots: Sequence[int], repeats: int,
    seed: int,
) -> pd.DataFrame:
    """Subclass few-shot classification inside each category, one table over categories."""
    frames = []
    for c in np.unique(category):
        inside = category == c
        table = few_shot(
            Z[inside], subclass[inside], shots=shots, n_test_per_class=None, n_repeats=repeats,
            classifier="centroid", seed=seed, progress=False,
        )  # fmt: skip
        frames.append(table.assign(category=c))
    return pd.concat(frames, ignore_index=True)


def evaluate_world(
    world: World,
    fitted: dict[str, Any],
    k: int = 10,
    shots: Sequence[int] = (1, 5),
    repeats: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """Tidy table (transform, metric, value) of every transform in ``fitted``.

    Metrics: ``heldout_accuracy`` (odd-one-out on held-out objects; cosine for the original,
    dot products for transforms) and ``generator_accuracy`` (the human embedding's own);
    ``human_rsa`` (Spearman RSA with the human embedding on held-out objects);
    ``neighbour_overlap`` (k-NN overlap with the original features on the fresh probe set);
    ``fine_shot_N`` (nearest-centroid subclass accuracy inside each category, N shots) and
    ``coarse_shot_N`` (category accuracy, N shots), both on the probe set.
    """
    rows = []
    generator = odd_one_out_accuracy(world.H, world.test_triplets)
    held = world.test_objects
    for name, transform in fitted.items():
        similarity = "cosine" if transform is None else "dot"
        Z = _apply(transform, world.X)
        probe = _apply(transform, world.probe)

        def add(metric: str, value: float, name: str = name) -> None:
            rows.append({"transform": name, "metric": metric, "value": float(value)})

        add("heldout_accuracy", odd_one_out_accuracy(Z, world.test_triplets, similarity))
        add("generator_accuracy", generator)
        add("human_rsa", rsa(Z[held], world.H[held], similarity, "dot", n_bootstrap=0).rho)
        add("neighbour_overlap", neighbour_overlap(world.probe, probe, ks=(k,))[k])
        fine = _within_category_few_shot(
            probe, world.probe_category, world.probe_subclass, shots, repeats, seed
        )
        coarse = few_shot(
            probe, world.probe_category, shots=shots, n_test_per_class=None, n_repeats=repeats,
            classifier="centroid", seed=seed, progress=False,
        )  # fmt: skip
        for n in shots:
            add(f"fine_shot_{n}", fine.loc[fine["shots"] == n, "accuracy"].mean())
            add(f"coarse_shot_{n}", coarse.loc[coarse["shots"] == n, "accuracy"].mean())
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class ScenarioRun:
    """One scenario and seed: the world, its fitted transforms and their evaluation."""

    name: str
    seed: int
    world: World
    fitted: dict[str, Any]
    table: pd.DataFrame


def run_scenario(
    name: str,
    config: WorldConfig,
    fit: FitConfig | None = None,
    seed: int = 0,
    **evaluate: Any,
) -> ScenarioRun:
    """Draw one world, fit the three transforms and evaluate them; rows carry ``scenario``."""
    world = make_world(config, seed)
    fitted = fit_transforms(world, fit, seed)
    table = evaluate_world(world, fitted, seed=seed, **evaluate)
    return ScenarioRun(name, seed, world, fitted, table.assign(scenario=name, seed=seed))


def scenarios(base: WorldConfig) -> dict[str, WorldConfig]:
    """The main world and its control: in the control people see the subclass structure as
    strongly as the network does (``human_subclass`` = network_subclass / network_category)."""
    return {
        "main": base,
        "control": replace(base, human_subclass=base.network_subclass / base.network_category),
    }


def run_simulation(
    base: WorldConfig,
    fit: FitConfig | None = None,
    seeds: Sequence[int] = (0,),
    names: Sequence[str] = ("main", "control"),
    **evaluate: Any,
) -> list[ScenarioRun]:
    """:func:`run_scenario` for every scenario in ``names`` and every seed.

    Join the tables with :func:`results_table`.
    """
    worlds = scenarios(base)
    unknown = [n for n in names if n not in worlds]
    if unknown:
        raise GlocalError(f"names: unknown scenario(s) {unknown}; choose from {sorted(worlds)}")
    if not list(seeds):
        raise GlocalError("seeds: give at least one seed")
    return [
        run_scenario(name, worlds[name], fit, seed=int(seed), **evaluate)
        for name in names
        for seed in seeds
    ]


def results_table(runs: Sequence[ScenarioRun]) -> pd.DataFrame:
    """The tidy results (scenario, seed, transform, metric, value) of several runs."""
    return pd.concat([run.table for run in runs], ignore_index=True)[
        ["scenario", "seed", "transform", "metric", "value"]
    ]


@dataclass(frozen=True)
class Prediction:
    """A statement made before the simulation runs, and how to check it on the results."""

    id: str
    scenario: str
    statement: str
    left: tuple[str, str]  # (transform, metric) of the left-hand side
    right: tuple[str, str]  # (transform, metric) of the right-hand side
    margin: float = 0.0  # holds when left > right + margin (a negative margin allows a loss)
    share: float | None = None  # if set: (left − base) ≥ share · (right − base) instead
    base: str = "original"  # the transform whose value (of the left metric) is the baseline


#: What the objective implies in the main world (people judge by category, the network's
#: neighbourhoods are set by subclasses) and in the control (people see subclasses as well).
PREDICTIONS: tuple[Prediction, ...] = (
    Prediction("P1", "main", "naive alignment raises held-out odd-one-out accuracy by > 0.1",
               ("naive", "heldout_accuracy"), ("original", "heldout_accuracy"), 0.1),
    Prediction("P2", "main", "gLocal keeps >= 80% of the global transform's alignment gain",
               ("glocal", "heldout_accuracy"), ("global", "heldout_accuracy"), share=0.8),
    Prediction("P3a", "main", "local structure: gLocal preserves more 10-NN than global",
               ("glocal", "neighbour_overlap"), ("global", "neighbour_overlap")),
    Prediction("P3b", "main", "local structure: global preserves more 10-NN than naive",
               ("global", "neighbour_overlap"), ("naive", "neighbour_overlap")),
    Prediction("P4", "main", "naive alignment HURTS fine-grained 1-shot accuracy (by > 0.03)",
               ("original", "fine_shot_1"), ("naive", "fine_shot_1"), 0.03),
    Prediction("P5a", "main", "gLocal beats naive on fine-grained 1-shot accuracy by > 0.05",
               ("glocal", "fine_shot_1"), ("naive", "fine_shot_1"), 0.05),
    Prediction("P5b", "main", "gLocal recovers >= 50% of the fine-grained accuracy naive loses",
               ("glocal", "fine_shot_1"), ("original", "fine_shot_1"), share=0.5, base="naive"),
    Prediction("P6", "main", "gLocal HELPS category 1-shot accuracy (by > 0.1)",
               ("glocal", "coarse_shot_1"), ("original", "coarse_shot_1"), 0.1),
    Prediction("C1", "control", "control: naive does not hurt fine-grained accuracy (loss < 0.02)",
               ("naive", "fine_shot_1"), ("original", "fine_shot_1"), -0.02),
)  # fmt: skip


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds: one row per (scenario, metric), one column per transform."""
    table = results.pivot_table(
        index=["scenario", "metric"], columns="transform", values="value", aggfunc="mean"
    )
    known = [t for t in TRANSFORMS if t in table.columns]
    return table[known + [t for t in table.columns if t not in known]]


def _holds(prediction: Prediction, table: pd.DataFrame) -> tuple[float, float, bool]:
    left = float(table.loc[(prediction.scenario, prediction.left[1]), prediction.left[0]])
    right = float(table.loc[(prediction.scenario, prediction.right[1]), prediction.right[0]])
    if prediction.share is not None:
        base = float(table.loc[(prediction.scenario, prediction.left[1]), prediction.base])
        return left, right, left - base >= prediction.share * (right - base)
    return left, right, left > right + prediction.margin


def check_predictions(
    results: pd.DataFrame, predictions: Sequence[Prediction] = PREDICTIONS
) -> pd.DataFrame:
    """One row per prediction: the two sides (mean over seeds), PASS/FAIL, and the share of
    seeds on which it holds. Predictions whose scenario or metric (e.g. ``fine_shot_1`` when
    no 1-shot episodes ran) is missing are ``NOT RUN``."""
    table = summarize(results)
    per_seed = {seed: summarize(part) for seed, part in results.groupby("seed")}
    rows = []
    for p in predictions:
        row = {
            "id": p.id, "scenario": p.scenario, "prediction": p.statement,
            "left": " ".join(p.left), "right": " ".join(p.right),
        }  # fmt: skip
        needed = {(p.scenario, p.left[1]), (p.scenario, p.right[1])}
        if not needed <= set(table.index):
            rows.append({**row, "left_value": np.nan, "right_value": np.nan,
                         "result": "NOT RUN", "seeds_holding": ""})  # fmt: skip
            continue
        left, right, ok = _holds(p, table)
        seeds = [_holds(p, t)[2] for t in per_seed.values()]
        rows.append({**row, "left_value": left, "right_value": right,
                     "result": "PASS" if ok else "FAIL",
                     "seeds_holding": f"{sum(seeds)}/{len(seeds)}"})  # fmt: skip
    return pd.DataFrame(rows)
