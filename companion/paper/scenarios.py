"""Notebook 09's controlled simulation: fit the three transforms in planted worlds, then check
predictions written before the results."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from glocal.errors import GlocalError
from glocal.evaluation.alignment import odd_one_out_accuracy
from glocal.evaluation.few_shot import few_shot
from glocal.evaluation.neighbours import neighbour_overlap
from glocal.evaluation.rsa import rsa
from glocal.evaluation.similarity import apply_transform, default_similarity
from glocal.planted import World, WorldConfig, make_world
from glocal.transform import GlocalTransform

#: The transforms fitted in every world, in display order (``original`` = no transform).
TRANSFORMS: tuple[str, ...] = ("original", "naive", "global", "glocal")


@dataclass(frozen=True)
class FitConfig:
    """Settings shared by the three fits (passed to :meth:`GlocalTransform.preset`); the rest
    are the library's defaults. The worlds are small, so several triplet batches per pass."""

    alpha: float = 0.1
    lmbda: float = 1e-2
    max_steps: int = 2000
    triplet_batch_size: int = 8192
    contrast_batch_size: int = 512


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
    common.update(device="cpu", seed=seed)
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
            if est.stop_reason_ != "converged":
                warnings.warn(
                    f"the {name} fit ran all {est.n_steps_} steps without converging; raise "
                    "max_steps",
                    RuntimeWarning,
                    stacklevel=2,
                )
    finally:
        torch.set_num_threads(threads)
    return fitted


def _within_category_few_shot(
    Z: np.ndarray,
    category: np.ndarray,
    subclass: np.ndarray,
    shots: Sequence[int],
    repeats: int,
    seed: int,
) -> pd.DataFrame:
    """Subclass few-shot classification inside each category, one table over categories."""
    frames = []
    for c in np.unique(category):
        inside = category == c
        table = few_shot(
            Z[inside], subclass[inside], shots=shots, n_test_per_class=None, n_repeats=repeats,
            classifier="centroid", seed=seed, verbose=0,
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
        similarity = default_similarity(transformed=transform is not None)
        Z, probe = apply_transform(transform, world.X, world.probe)

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
            classifier="centroid", seed=seed, verbose=0,
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


def _value(table: pd.DataFrame, scenario: str, metric: str, transform: str) -> float:
    return float(table.at[(scenario, metric), transform])  # type: ignore[arg-type]


def _compared(p: Prediction, table: pd.DataFrame) -> tuple[float, float, float, bool]:
    """Both sides, the quantity the prediction compares with its threshold, and whether it holds.

    A margin prediction compares the difference ``left − right`` with ``margin``; a share
    prediction the ratio ``(left − base) / (right − base)`` with ``share`` (NaN when the
    denominator is not positive; the prediction then holds only as the inequality
    ``left − base ≥ share · (right − base)`` says).
    """
    left = _value(table, p.scenario, p.left[1], p.left[0])
    right = _value(table, p.scenario, p.right[1], p.right[0])
    if p.share is not None:
        base = _value(table, p.scenario, p.left[1], p.base)
        ratio = (left - base) / (right - base) if right - base > 0 else float("nan")
        return left, right, ratio, left - base >= p.share * (right - base)
    return left, right, left - right, left - right > p.margin


def compared_quantity(p: Prediction) -> tuple[str, str]:
    """What a prediction compares, as text, and its threshold: ``("gLocal − naive", "> 0.05")``."""
    from companion.paper.plotting import label

    left, right = label(p.left[0]), label(p.right[0])
    if p.share is not None:
        base = label(p.base)
        return f"({left} − {base}) / ({right} − {base})", f"≥ {p.share:g}"
    return f"{left} − {right}", f"> {p.margin:g}"


def check_predictions(
    results: pd.DataFrame, predictions: Sequence[Prediction] = PREDICTIONS
) -> pd.DataFrame:
    """One row per prediction: the quantity it compares and its threshold, that quantity per
    seed and on the means over seeds, how many seeds it holds on, and the result.

    ``result`` is ``PASS`` when the prediction holds on every seed, ``FAIL`` when it holds on
    none, and ``k of n seeds`` in between. Predictions whose scenario or metric (e.g.
    ``fine_shot_1`` when no 1-shot episodes ran) is missing are ``NOT RUN``.
    """
    table = summarize(results)
    per_seed = {seed: summarize(part) for seed, part in results.groupby("seed")}
    rows = []
    for p in predictions:
        compared, threshold = compared_quantity(p)
        row = {
            "id": p.id, "scenario": p.scenario, "prediction": p.statement,
            "metric": p.left[1], "compared": compared, "threshold": threshold,
        }  # fmt: skip
        needed = {(p.scenario, p.left[1]), (p.scenario, p.right[1])}
        if not needed <= set(table.index):
            rows.append({**row, "left_value": np.nan, "right_value": np.nan, "value": np.nan,
                         "per_seed": "", "n_holding": 0, "n_seeds": 0,
                         "result": "NOT RUN"})  # fmt: skip
            continue
        left, right, value, _ = _compared(p, table)
        seeds = [_compared(p, t) for t in per_seed.values()]
        holding = sum(ok for *_, ok in seeds)
        result = (
            "PASS" if holding == len(seeds) else "FAIL" if holding == 0
            else f"{holding} of {len(seeds)} seeds"
        )  # fmt: skip
        rows.append({**row, "left_value": left, "right_value": right, "value": value,
                     "per_seed": ", ".join(f"{q:.3f}" for _, _, q, _ in seeds),
                     "n_holding": holding, "n_seeds": len(seeds),
                     "result": result})  # fmt: skip
    return pd.DataFrame(rows)
