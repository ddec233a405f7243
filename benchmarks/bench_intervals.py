"""Benchmark: do 95 % intervals cover the population value? Today's intervals and the
cluster intervals of :func:`glocal.evaluation.intervals.cluster_interval`, by coverage.

Worlds from :func:`glocal.planted.concept_world`: concepts with a latent human embedding,
seen by two representations (A distorted, B plain), drawn afresh as often as needed. Each
measure's population value (A, and B − A) is measured once on a large independent draw; then
every draw of a THINGS-sized sample records whether each interval covers it:

* triplet accuracy: 371 concepts, 50,000 simulated odd-one-out triplets among them (the
  held-out fifth of THINGS and its test triplets); units: concepts (3 per triplet);
* 5-shot accuracy: 20 fresh classes × 5 folds of 10 concepts, 10 episodes per fold (5
  support, 5 test concepts per class), nearest-centroid classifier (cosine; the cheap
  stand-in for the logistic regression the book uses); units: classes;
* anomaly AUROC: the same layout, 2 splits per fold into 5 reference and 5 test concepts per
  class, score = 1 − mean cosine of the 3 nearest reference concepts, one AUROC per class
  (its test concepts against the other classes'); units: classes;
* RSA: Spearman correlation of cosine similarities with the human dot products over the
  pairs of 100 concepts; today's interval is the object bootstrap of :func:`glocal.rsa`.

    python benchmarks/bench_intervals.py [--draws 200] [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from glocal.evaluation.alignment import triplet_correct  # noqa: E402
from glocal.evaluation.intervals import (  # noqa: E402
    cluster_interval,
    mean_interval,
    wilson_interval,
)
from glocal.evaluation.rsa import rsa, rsa_difference  # noqa: E402
from glocal.io import atomic_write  # noqa: E402
from glocal.planted import ConceptWorld, concept_world, draw_classes, draw_concepts  # noqa: E402
from glocal.triplets import simulate_triplets  # noqa: E402

CONFIDENCE = 0.95
SIZES: dict[str, dict[str, Any]] = {
    "full": {"concepts": 371, "triplets": 50_000, "classes": 20, "folds": 5, "per_fold": 10,
             "episodes": 10, "splits": 2, "rsa_objects": 100, "population_triplets": 1_000_000,
             "population_tasks": 10_000, "population_rsa": (3000, 2)},
    "quick": {"concepts": 371, "triplets": 50_000, "classes": 20, "folds": 5, "per_fold": 10,
              "episodes": 10, "splits": 2, "rsa_objects": 100, "population_triplets": 200_000,
              "population_tasks": 2_000, "population_rsa": (1500, 1)},
}  # fmt: skip
SHOTS, ANOMALY_K = 5, 3


def _seed(*keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(list(keys)))


def _unit(X: np.ndarray) -> np.ndarray:
    return X / np.linalg.norm(X, axis=-1, keepdims=True)


# --- triplets ---------------------------------------------------------------------------------


def _pair_probabilities(H: np.ndarray, triplets: np.ndarray) -> np.ndarray:
    """People's probability of keeping (i, j) together in each triplet (i, j, k)."""
    a, b, c = (H[triplets[:, i]] for i in range(3))
    logits = np.stack([(a * b).sum(1), (a * c).sum(1), (b * c).sum(1)], axis=1)
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


def _model_pair(X: np.ndarray, triplets: np.ndarray) -> np.ndarray:
    """Which pair (0: (i, j), 1: (i, k), 2: (j, k)) a representation finds most similar."""
    a, b, c = (X[triplets[:, i]] for i in range(3))
    return np.stack([(a * b).sum(1), (a * c).sum(1), (b * c).sum(1)], axis=1).argmax(axis=1)


def triplet_population(world: ConceptWorld, n: int) -> dict[str, float]:
    """Expected accuracy of A and B on triplets of three fresh concepts each (n triplets,
    each scored by its exact probability of being answered correctly)."""
    rng, chunk, totals = _seed(1, 1), 50_000, np.zeros(2)
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        draw = draw_concepts(world, 3 * size, rng)
        triplets = np.arange(3 * size).reshape(size, 3)
        p = _pair_probabilities(draw.human, triplets)
        for i, X in enumerate((draw.A, draw.B)):
            totals[i] += p[np.arange(size), _model_pair(X, triplets)].sum()
    a, b = totals / n
    return {"A": a, "B − A": b - a}


def triplet_draw(world: ConceptWorld, size: dict, d: int, n_bootstrap: int) -> dict:
    rng = _seed(2, d)
    draw = draw_concepts(world, size["concepts"], rng)
    test = simulate_triplets(draw.human, size["triplets"], seed=int(rng.integers(2**31)))
    a = triplet_correct(draw.A, test, "dot").astype(float)
    b = triplet_correct(draw.B, test, "dot").astype(float)
    values = {"A": a, "B − A": b - a}
    out = {("A", "Wilson over triplets (today)"): wilson_interval(a.mean(), len(a)),
           ("B − A", "paired t over triplets (today)"): mean_interval(b - a)[1:3]}  # fmt: skip
    for name, r in cluster_interval(values, test).items():
        out[(name, "cluster analytic, concepts")] = (r.ci_low, r.ci_high)
    if n_bootstrap:
        boot = cluster_interval(values, test, method="bootstrap", n_bootstrap=n_bootstrap, seed=d)
        for name, r in boot.items():
            out[(name, "cluster bootstrap (product weights), concepts")] = (r.ci_low, r.ci_high)
    return out


# --- classes: few-shot and anomaly detection --------------------------------------------------


def _class_layout(world: ConceptWorld, size: dict, rng: np.random.Generator) -> list:
    """Unit-normalised A and B of one draw's fresh classes, shaped (folds, classes, per_fold,
    p): the same classes in every fold, other concepts."""
    K, F, m = size["classes"], size["folds"], size["per_fold"]
    draw = draw_classes(world, K, F * m, rng)
    return [_unit(X).reshape(K, F, m, -1).transpose(1, 0, 2, 3) for X in (draw.A, draw.B)]


def _fresh_tasks(world: ConceptWorld, size: dict, n: int, rng: np.random.Generator) -> list:
    """Like :func:`_class_layout`, but every one of the n "folds" has classes of its own."""
    K, m = size["classes"], size["per_fold"]
    draw = draw_classes(world, n * K, m, rng)
    return [_unit(X).reshape(n, K, m, -1) for X in (draw.A, draw.B)]


def _few_shot_rows(views: list, rng: np.random.Generator, n_episodes: int) -> list:
    """Per representation, the accuracy of each class's test concepts in each episode,
    shaped (folds, episodes, classes)."""
    F, K, m, p = views[0].shape
    order = rng.random((F, n_episodes, K, m)).argsort(axis=-1)  # the same for A and B
    support, test = order[..., :SHOTS, None], order[..., SHOTS:, None]
    out = []
    for X in views:
        base = np.broadcast_to(X[:, None], (F, n_episodes, K, m, p))
        centroids = _unit(np.take_along_axis(base, support, axis=3).mean(axis=3))
        queries = np.take_along_axis(base, test, axis=3)  # (F, R, K, t, p)
        scores = np.einsum("frkip,frcp->frkic", queries, centroids)
        out.append((scores.argmax(axis=-1) == np.arange(K)[:, None]).mean(axis=-1))
    return out


def _auroc_rows(views: list, rng: np.random.Generator, n_splits: int) -> list:
    """Per representation, each class's AUROC (its own test concepts normal, the other
    classes' anomalous) in each split, shaped (folds, splits, classes)."""
    F, K, m, _ = views[0].shape
    half = m // 2
    order = rng.random((F, n_splits, K, m)).argsort(axis=-1)
    reference, test = order[..., :half], order[..., half:]
    other = ~np.eye(K, dtype=bool)
    out = []
    for X in views:
        base = np.broadcast_to(X[:, None], (F, n_splits, K, m, X.shape[-1]))
        R = np.take_along_axis(base, reference[..., None], axis=3)  # (F, S, K, h, p)
        T = np.take_along_axis(base, test[..., None], axis=3)  # (F, S, K, t, p)
        sims = np.einsum("fsjip,fschp->fsjich", T, R)  # test item i of class j vs class c
        top = np.sort(sims, axis=-1)[..., -ANOMALY_K:].mean(axis=-1)
        score = 1.0 - top  # (F, S, j, i, c)
        normal = np.einsum("fsjij->fsji", score)  # each class's own test items, (F, S, c, i)
        s = score.transpose(0, 1, 4, 2, 3)  # (F, S, c, j, i)
        diff = s[..., :, :, None] - normal[:, :, :, None, None, :]  # (F, S, c, j, i, i')
        wins = (diff > 0) + 0.5 * (diff == 0)
        per_class = (wins.mean(axis=(-2, -1)) * other).sum(axis=-1) / (K - 1)
        out.append(per_class)
    return out


def class_population(world: ConceptWorld, size: dict, n_tasks: int) -> dict[str, float]:
    """Expected 5-shot accuracy and AUROC of A and B over tasks of fresh classes."""
    rng, totals, done = _seed(1, 2), np.zeros(4), 0
    while done < n_tasks:
        batch = min(250, n_tasks - done)
        views = _fresh_tasks(world, size, batch, rng)
        fs = _few_shot_rows(views, rng, 1)
        au = _auroc_rows(views, rng, 1)
        totals += [fs[0].sum(), fs[1].sum(), au[0].sum(), au[1].sum()]
        done += batch
    a_fs, b_fs, a_au, b_au = totals / (n_tasks * size["classes"])
    return {"A": a_fs, "B − A": b_fs - a_fs, "AUROC A": a_au, "AUROC B − A": b_au - a_au}


def class_draw(world: ConceptWorld, size: dict, d: int, n_bootstrap: int) -> dict:
    rng = _seed(3, d)
    views = _class_layout(world, size, rng)
    out = {}
    tasks = {
        "few-shot": (_few_shot_rows(views, rng, size["episodes"]), "episodes × folds"),
        "AUROC": (_auroc_rows(views, rng, size["splits"]), "class × split × fold"),
    }
    for task, ((a, b), today_units) in tasks.items():
        classes = np.broadcast_to(np.arange(a.shape[-1]), a.shape).ravel()
        values = {"A": a.ravel(), "B − A": (b - a).ravel()}
        if task == "few-shot":  # today: one value per episode (the mean over its classes)
            today = {"A": a.mean(axis=-1).ravel(), "B − A": (b - a).mean(axis=-1).ravel()}
        else:
            today = values
        for name in values:
            out[(task, name, f"t over {today_units} (today)")] = mean_interval(today[name])[1:3]
        for name, r in cluster_interval(values, classes).items():
            out[(task, name, "cluster analytic, classes")] = (r.ci_low, r.ci_high)
        if n_bootstrap:
            boot = cluster_interval(values, classes, method="bootstrap", n_bootstrap=n_bootstrap,
                                    seed=d)  # fmt: skip
            for name, r in boot.items():
                out[(task, name, "cluster bootstrap, classes")] = (r.ci_low, r.ci_high)
    return out


# --- RSA --------------------------------------------------------------------------------------


def rsa_population(world: ConceptWorld, n: int, repeats: int) -> tuple[dict[str, float], float]:
    """RSA of A and of B − A on ``repeats`` draws of n concepts: their mean, and the largest
    distance of one draw's B − A from it (how well the population value is known)."""
    values = []
    for r in range(repeats):
        draw = draw_concepts(world, n, _seed(1, 3, r))
        a = rsa(draw.A, draw.human, "cosine", "dot", n_bootstrap=0).rho
        b = rsa(draw.B, draw.human, "cosine", "dot", n_bootstrap=0).rho
        values.append((a, b - a))
    mean = np.mean(values, axis=0)
    return {"A": float(mean[0]), "B − A": float(mean[1])}, float(
        np.abs(np.array(values)[:, 1] - mean[1]).max())  # fmt: skip


def rsa_draw(world: ConceptWorld, size: dict, d: int, n_bootstrap: int) -> dict:
    draw = draw_concepts(world, size["rsa_objects"], _seed(4, d))
    a = rsa(draw.A, draw.human, "cosine", "dot", n_bootstrap=n_bootstrap, seed=d)
    b = rsa(draw.B, draw.human, "cosine", "dot", n_bootstrap=n_bootstrap, seed=d)
    _, low, high = rsa_difference(b, a)
    return {("A", "object bootstrap (today)"): (a.ci_low, a.ci_high),
            ("B − A", "object bootstrap (today)"): (low, high)}  # fmt: skip


# --- the table --------------------------------------------------------------------------------

MEASURES = {
    "triplet accuracy": "test triplets; units: 371 concepts",
    "5-shot accuracy": "(fold, episode, class); units: 20 classes",
    "anomaly AUROC": "(fold, split, class); units: 20 classes",
    "RSA (Spearman)": "pairs of 100 concepts; units: concepts",
}


def _coverage_row(measure: str, name: str, interval: str, truth: float, bounds) -> dict:
    bounds = np.asarray(bounds, dtype=float)
    ok = ~np.isnan(bounds).any(axis=1)
    hits = int(((bounds[ok, 0] < truth) & (truth < bounds[ok, 1])).sum())
    n = int(ok.sum())
    ci = stats.binomtest(hits, n).proportion_ci(0.95, method="exact")
    return {"measure": measure, "quantity": name, "interval": interval, "truth": truth,
            "hits": hits, "n": n, "coverage": hits / n, "low": ci.low, "high": ci.high,
            "width": float(np.mean(bounds[ok, 1] - bounds[ok, 0]))}  # fmt: skip


def _timing(world: ConceptWorld, size: dict) -> dict[str, float]:
    """Seconds of cluster_interval on one triplet draw (A, B − A together) and for B − A."""
    rng = _seed(5, 0)
    draw = draw_concepts(world, size["concepts"], rng)
    test = simulate_triplets(draw.human, size["triplets"], seed=1)
    d = (triplet_correct(draw.B, test, "dot") * 1.0) - triplet_correct(draw.A, test, "dot")
    cluster_interval(d[:100], test[:100])  # imports
    out = {}
    for label, method in (("analytic", "analytic"), ("bootstrap, 2000 replicates", "bootstrap")):
        start = time.perf_counter()
        cluster_interval(d, test, method=method, n_bootstrap=2000)
        out[label] = time.perf_counter() - start
    return out


def _section(rows: list[dict], info: dict) -> str:
    load = ", ".join(f"{v:.1f}" for v in info["load"])
    lines = [
        "## Coverage of 95 % intervals (`benchmarks/bench_intervals.py`)\n",
        f"Run {info['stamp']} on {platform.node() or 'this machine'}: {os.cpu_count()} CPU "
        f"cores, load average at the start {load} (other jobs share these cores); "
        f"{info['draws']} draws per measure, sizes `{info['size']}`, {info['seconds']:.0f} s in "
        "all. Worlds from `glocal.planted.concept_world(seed=0)`: concepts with a latent human "
        "embedding, representation A a distorted noisy view of it, B a plain noisy view. Each "
        "population value was measured once on a large independent draw of new concepts "
        "(classes for few-shot and AUROC); a draw is a fresh THINGS-sized sample (see the "
        "module docstring). Coverage: the share of draws whose interval contains the "
        "population value, with its exact binomial 95 % interval. The target for a 95 % "
        "interval is 90–98 % over these draws.\n",
        "| measure | quantity | rows; units | interval | population value | nominal | coverage "
        "| (binomial 95 %) | mean width |",
        "|---|---|---|---|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['measure']} | {r['quantity']} | {MEASURES[r['measure']]} | {r['interval']} | "
            f"{r['truth']:+.4f} | 95 % | **{100 * r['coverage']:.1f} %** ({r['hits']}/{r['n']}) "
            f"| {100 * r['low']:.1f}–{100 * r['high']:.1f} % | {r['width']:.4f} |"
        )
    t = info["timing"]
    lines += [
        "",
        f"Population values: triplets {info['population_triplets']:,} triplets of fresh "
        f"concepts (exact choice probabilities); few-shot and AUROC {info['population_tasks']:,}"
        f" tasks of fresh classes; RSA the mean of {info['population_rsa'][1]} draws of "
        f"{info['population_rsa'][0]:,} concepts (their B − A differ by at most "
        f"{info['rsa_spread']:.4f} from it).",
        "",
        "*Cluster analytic* is `cluster_interval(values, members)`: the cluster-robust variance "
        "(pairs of rows that share at least one unit, counted once, by inclusion–exclusion, "
        "divided by 1 − the share of such pairs) and a t interval with units − 1 degrees of "
        "freedom. *Cluster bootstrap* is "
        "`cluster_interval(..., method='bootstrap')` (product weights of the units' "
        "multiplicities, percentile interval, "
        f"{info['n_bootstrap']} replicates here): with three units per row it counts a "
        "triplet's own noise about 7 times and is too wide; with one unit per row it is the "
        "usual cluster bootstrap. Few-shot uses the nearest-centroid classifier (cosine) as a "
        "cheap stand-in for logistic regression. Fits are not simulated (the representations "
        "are fixed), so fold-to-fold variation of fitted transforms is not in these worlds.",
        "",
        f"Cost of `cluster_interval` on one triplet draw (50,000 triplets, 371 concepts, B − A): "
        f"analytic {t['analytic']:.2f} s, bootstrap with 2000 replicates "
        f"{t['bootstrap, 2000 replicates']:.2f} s (under the load above).\n",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=200, help="draws per measure")
    parser.add_argument("--bootstrap", type=int, default=500,
                        help="replicates of the cluster bootstrap in each draw")  # fmt: skip
    parser.add_argument("--rsa-bootstrap", type=int, default=500,
                        help="replicates of RSA's object bootstrap in each draw")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="small population draws")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "intervals.md")
    args = parser.parse_args()
    size = SIZES["quick" if args.quick else "full"]
    load = os.getloadavg()
    start = time.perf_counter()
    world = concept_world(seed=0)
    print("population values …", flush=True)
    pop_t = triplet_population(world, size["population_triplets"])
    pop_c = class_population(world, size, size["population_tasks"])
    pop_r, rsa_spread = rsa_population(world, *size["population_rsa"])
    print(f"  triplets {pop_t}\n  classes {pop_c}\n  RSA {pop_r}", flush=True)
    print(f"  ({time.perf_counter() - start:.0f} s)", flush=True)
    bounds: dict[tuple, list] = {}
    for d in range(args.draws):
        for key, b in triplet_draw(world, size, d, args.bootstrap).items():
            bounds.setdefault(("triplet accuracy", *key), []).append(b)
        for (task, *key), b in class_draw(world, size, d, args.bootstrap).items():
            measure = "5-shot accuracy" if task == "few-shot" else "anomaly AUROC"
            bounds.setdefault((measure, *key), []).append(b)
        for key, b in rsa_draw(world, size, d, args.rsa_bootstrap).items():
            bounds.setdefault(("RSA (Spearman)", *key), []).append(b)
        if (d + 1) % 20 == 0:
            print(f"  {d + 1} draws, {time.perf_counter() - start:.0f} s", flush=True)
    truths = {"triplet accuracy": pop_t, "RSA (Spearman)": pop_r,
              "5-shot accuracy": {k: pop_c[k] for k in ("A", "B − A")},
              "anomaly AUROC": {"A": pop_c["AUROC A"], "B − A": pop_c["AUROC B − A"]}}  # fmt: skip
    rows = [_coverage_row(m, name, interval, truths[m][name], b)
            for (m, name, interval), b in bounds.items()]  # fmt: skip
    order = list(MEASURES)
    rows.sort(key=lambda r: (order.index(r["measure"]), r["quantity"] != "A"))
    info = {"stamp": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
            "load": load, "draws": args.draws, "size": "quick" if args.quick else "full",
            "seconds": time.perf_counter() - start, "n_bootstrap": args.bootstrap,
            "population_triplets": size["population_triplets"],
            "population_tasks": size["population_tasks"],
            "population_rsa": size["population_rsa"], "rsa_spread": rsa_spread,
            "timing": _timing(world, size)}  # fmt: skip
    text = _section(rows, info)

    def write(tmp: Path) -> None:
        tmp.write_text(text)

    atomic_write(args.out, write)
    print(text)


if __name__ == "__main__":
    main()
