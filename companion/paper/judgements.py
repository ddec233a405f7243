"""Page 10's measurements: alignment with human similarity judgements beyond THINGS.

A *judgement set* is either word pairs with human ratings (SimLex-999, scored by
:func:`glocal.pair_alignment`, bootstrap over pairs) or an image set with a human matrix (the
three image sets of the official gLocal code, scored by :func:`glocal.rsa_matrix`, bootstrap
over images, with the leave-one-subject-out noise ceiling where the set has one matrix per
participant). Every representation of a source (the original features, the fitted transforms,
the released one) is scored on every set under every kernel, and compared with the original
features on the same resamples (:func:`glocal.rsa_difference`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from companion.paper.comparisons import MARGINS
from companion.paper.image_features import similarity_set
from companion.paper.inputs import Inputs
from companion.paper.text_features import word_features
from glocal import things
from glocal.data.human import simlex999
from glocal.errors import GlocalError
from glocal.evaluation.intervals import verdict
from glocal.evaluation.rsa import (
    Method,
    RSAResult,
    noise_ceiling,
    pair_alignment,
    rsa_difference,
    rsa_matrix,
)

#: The kernels page 10 compares (the question the paper leaves open).
KERNELS = ("cosine", "pearson")
SIMLEX = "SimLex-999"
SIMLEX_SUBSETS = {"all": "all pairs", "unseen": "unseen pairs"}
#: A kernel difference whose paired interval lies within ±KERNEL_MARGIN (in correlation units)
#: is too small to matter: the two kernels agree (the book's one table of margins).
KERNEL_MARGIN = MARGINS["correlation"]


@dataclass(frozen=True)
class JudgementSet:
    """One set of human judgements and the original features of its items.

    Word pairs carry ``pairs`` (k, 2) row indices into ``features`` and ``ratings`` (k,); image
    sets carry the human ``matrix`` (n, n) of the rows of ``features``, its ``kind`` and the
    per-participant ``subjects`` when there are any. ``unseen``: no item is a THINGS concept,
    so no transform saw any of them.
    """

    name: str
    features: np.ndarray
    unseen: bool
    pairs: np.ndarray | None = None
    ratings: np.ndarray | None = None
    matrix: np.ndarray | None = None
    kind: str = "similarity"
    subjects: np.ndarray | None = None

    @property
    def unit(self) -> str:
        """What the bootstrap resamples: ``pairs`` or ``images``."""
        return "pairs" if self.pairs is not None else "images"

    @property
    def n_units(self) -> int:
        return len(self.pairs) if self.pairs is not None else len(self.features)


def things_words() -> set[str]:
    """The THINGS concept names, lower case (a SimLex word equal to one is *seen*)."""
    return {str(w).strip().lower() for w in things.concepts()["Word"]}


def simlex_sets(device: str = "auto") -> list[JudgementSet]:
    """SimLex-999 with its words encoded as the ``text:words`` source encodes the THINGS
    concepts: all 999 pairs, and the pairs neither of whose words is a THINGS concept."""
    table = simlex999()
    words = sorted(set(table["word1"]) | set(table["word2"]))
    index = {w: i for i, w in enumerate(words)}
    X = word_features(words, "simlex999", device)
    pairs = np.array(
        [[index[a], index[b]] for a, b in zip(table["word1"], table["word2"], strict=True)]
    )
    ratings = table["similarity"].to_numpy(dtype=np.float64)
    seen = things_words()
    unseen = np.array([a.lower() not in seen and b.lower() not in seen
                       for a, b in zip(table["word1"], table["word2"], strict=True)])  # fmt: skip
    return [
        JudgementSet(f"{SIMLEX} · {SIMLEX_SUBSETS['all']}", X, False, pairs, ratings),
        JudgementSet(f"{SIMLEX} · {SIMLEX_SUBSETS['unseen']}", X, True, pairs[unseen],
                     ratings[unseen]),
    ]  # fmt: skip


def image_sets(source: str, names: Sequence[str]) -> list[JudgementSet]:
    """The image sets ``names`` (:data:`glocal.data.human.SIMILARITY_SETS`) for an image source."""
    found = []
    for name in names:
        judgements, X = similarity_set(source, name)
        found.append(JudgementSet(name, X, True, matrix=judgements.matrix, kind=judgements.kind,
                                  subjects=judgements.subjects))  # fmt: skip
    return found


def judgement_sets(
    inputs: Inputs, word_sets: Sequence[str], similarity_sets: Sequence[str], device: str = "auto"
) -> list[JudgementSet]:
    """The sets a page-10 profile names: ``word_sets`` (``simlex999``) for text sources,
    ``similarity_sets`` for image sources."""
    sets: list[JudgementSet] = []
    for name in word_sets:
        if name != "simlex999":
            raise GlocalError(f"word_sets: unknown word-pair set {name!r}; known: simlex999")
        if not inputs.source.startswith("text:words"):
            raise GlocalError(
                f"word_sets need the source 'text:words' (the words encoded alone), got "
                f"{inputs.source!r}"
            )
        sets += simlex_sets(device)
    if similarity_sets:
        sets += image_sets(inputs.source, similarity_sets)
    if not sets:
        raise GlocalError("give at least one of word_sets and similarity_sets")
    return sets


def _score(
    judgements: JudgementSet, Z: np.ndarray, kernel: Any, method: Any, n_bootstrap: int, seed: int
) -> RSAResult:
    """Score one representation of a set (kernel and method are checked by the library)."""
    if judgements.pairs is not None:
        assert judgements.ratings is not None
        return pair_alignment(Z, judgements.pairs, judgements.ratings, kernel, method,
                              n_bootstrap=n_bootstrap, seed=seed)  # fmt: skip
    assert judgements.matrix is not None
    kind: Any = judgements.kind
    return rsa_matrix(Z, judgements.matrix, kind, kernel, method,
                      n_bootstrap=n_bootstrap, seed=seed)  # fmt: skip


def judgement_table(
    sets: Sequence[JudgementSet],
    transforms: Mapping[str, Any],
    kernels: Sequence[str] = KERNELS,
    methods: Sequence[str] = ("spearman",),
    n_bootstrap: int = 1000,
    seed: int = 0,
    source: str = "",
) -> pd.DataFrame:
    """Every representation scored on every set, kernel and correlation, with intervals.

    ``transforms`` maps names to fitted transforms (applied to each set's original features;
    ``"original"`` is added first). One row per (set, representation, kernel, method):
    ``rho`` with its percentile bootstrap interval (``ci_low``, ``ci_high``; over ``unit``,
    ``n_units`` of them), the paired difference to the original features on the same resamples
    (``vs_original``, ``_low``, ``_high``) and its ``verdict`` (a positive difference expected),
    the paired difference to the cosine kernel of the same representation (``vs_cosine``, ...),
    and the set's noise ceiling (``ceiling_low``, ``ceiling_high``; NaN without per-participant
    matrices).
    """
    if "original" in transforms:
        raise GlocalError("transforms: 'original' is added by judgement_table itself")
    rows = []
    for judgements in sets:
        ceilings = {}
        if judgements.subjects is not None:
            ceilings = {m: noise_ceiling(judgements.subjects, cast(Method, m)) for m in methods}
        spaces = {"original": judgements.features}
        spaces.update({name: t.transform(judgements.features) for name, t in transforms.items()})
        for method in methods:
            results: dict[tuple[str, str], RSAResult] = {}
            for name, Z in spaces.items():
                for kernel in kernels:
                    results[name, kernel] = _score(judgements, Z, kernel, method, n_bootstrap, seed)
            for (name, kernel), result in results.items():
                diff, low, high = rsa_difference(result, results["original", kernel])
                kdiff, klow, khigh = (
                    rsa_difference(result, results[name, "cosine"])
                    if "cosine" in kernels else (np.nan, np.nan, np.nan)
                )  # fmt: skip
                ceiling = ceilings.get(method)
                rows.append({
                    "source": source, "dataset": judgements.name, "unseen": judgements.unseen,
                    "representation": name, "kernel": kernel, "method": method,
                    "rho": result.rho, "ci_low": result.ci_low, "ci_high": result.ci_high,
                    "unit": judgements.unit, "n_units": judgements.n_units,
                    "vs_original": diff, "vs_original_low": low, "vs_original_high": high,
                    "verdict": "n/a" if name == "original" else verdict(low, high),
                    "vs_cosine": kdiff, "vs_cosine_low": klow, "vs_cosine_high": khigh,
                    "ceiling_low": ceiling.lower if ceiling else np.nan,
                    "ceiling_high": ceiling.upper if ceiling else np.nan,
                })  # fmt: skip
    return pd.DataFrame(rows)


def sweep_table(
    sets: Sequence[JudgementSet], sweep: Mapping[float, Any], *args: Any, **kwargs: Any
) -> pd.DataFrame:
    """:func:`judgement_table` of an alpha sweep (``{alpha: transform}``, e.g. from
    :func:`companion.paper.fits.fit_alpha_sweep`; the other arguments are
    :func:`judgement_table`'s): each transform is the representation ``alpha=A`` and its row
    carries ``alpha`` (NaN for the original features)."""
    names = {f"alpha={a:g}": float(a) for a in sweep}
    if len(names) != len(sweep):
        raise GlocalError(f"sweep: alphas {sorted(sweep)} print alike; give distinct alphas")
    transforms = dict(zip(names, sweep.values(), strict=True))
    table = judgement_table(sets, transforms, *args, **kwargs)
    table["alpha"] = table["representation"].map(names)
    return table


def vector_means(
    sets: Sequence[JudgementSet],
    transforms: Mapping[str, Any],
    representations: Sequence[str],
    source: str = "",
) -> pd.DataFrame:
    """Every item's vector mean over its root mean square (``m``) in each representation, once
    per distinct feature matrix of ``sets`` (columns source, representation, items, m).

    The Pearson kernel is the cosine of the centred vectors; with every ``|m| <= M`` it moves no
    pair's cosine by more than ``2 M^2 / (1 - M^2)``.
    """
    seen: dict[int, JudgementSet] = {}
    for judgement_set in sets:
        seen.setdefault(id(judgement_set.features), judgement_set)
    rows = []
    for judgement_set in seen.values():
        X = judgement_set.features
        for name in representations:
            Z = np.asarray(X if name == "original" else transforms[name].transform(X),
                           dtype=np.float64)  # fmt: skip
            m = Z.mean(axis=1) / np.sqrt((Z**2).mean(axis=1))
            rows.append(pd.DataFrame({"source": source, "representation": name,
                                      "items": judgement_set.name, "m": m}))  # fmt: skip
    return pd.concat(rows, ignore_index=True)


def summary_claim(
    table: pd.DataFrame, kernel: str = "cosine", method: str = "spearman"
) -> tuple[str, str]:
    """The intro's claim cell: gLocal vs the original features on the sets no fit saw.

    Returns (text, verdict): ``holds`` when gLocal's paired difference to the original is
    positive on every unseen set, ``opposite`` when negative on every one, ``mixed`` when sets
    disagree, ``not resolved`` otherwise.
    """
    rows = table[(table["representation"] == "glocal") & table["unseen"]
                 & (table["kernel"] == kernel) & (table["method"] == method)]  # fmt: skip
    if rows.empty:
        return "not measured", "n/a"
    originals = table[(table["representation"] == "original") & (table["kernel"] == kernel)
                      & (table["method"] == method)]  # fmt: skip
    original = originals.set_index(["source", "dataset"])["rho"]
    verdicts = rows["verdict"].tolist()
    if len(rows) == 1:
        row = rows.iloc[0]
        text = (f"{method.capitalize()} ρ ({kernel}) {original[row['source'], row['dataset']]:.3f}"
                f" → {row['rho']:.3f} (original → gLocal, {row['dataset']})")  # fmt: skip
    else:
        up = sum(v == "holds" for v in verdicts)
        down = sum(v == "opposite" for v in verdicts)
        text = (
            f"gLocal − original {method.capitalize()} ρ ({kernel}) > 0 on {up} and < 0 on "
            f"{down} of {len(rows)} (model, data set) comparisons on data no fit saw"
        )
    if all(v == "holds" for v in verdicts):
        return text, "holds"
    if all(v == "opposite" for v in verdicts):
        return text, "opposite"
    if "holds" in verdicts and "opposite" in verdicts:
        return text, "mixed"
    return text, "not resolved"


def kernel_answer(
    table: pd.DataFrame, method: str = "spearman", margin: float = KERNEL_MARGIN
) -> dict[str, Any]:
    """What the data say about the kernel: the Pearson-kernel correlation minus the cosine-kernel
    one for every set and representation, each classified by its paired interval.

    The rule of every verdict in the book (:func:`glocal.evaluation.intervals.verdict`, claimed
    direction "Pearson higher"): an interval inside ±``margin`` means the kernels agree
    (``no_effect``), even when it excludes 0, since such a difference is too small to matter;
    otherwise ``pearson_higher`` (holds), ``cosine_higher`` (opposite) or ``unresolved``.
    """
    rows = table[(table["kernel"] == "pearson") & (table["method"] == method)]
    if rows.empty or rows["vs_cosine"].isna().all():
        return {"n": 0}
    counts = dict.fromkeys(("no_effect", "pearson_higher", "cosine_higher", "unresolved"), 0)
    for low, high in zip(rows["vs_cosine_low"], rows["vs_cosine_high"], strict=True):
        said = verdict(low, high, "positive", margin)
        counts[{"no effect": "no_effect", "holds": "pearson_higher",
                "opposite": "cosine_higher"}.get(said, "unresolved")] += 1  # fmt: skip
    largest = rows.iloc[int(np.argmax(rows["vs_cosine"].abs().to_numpy()))]
    return {
        "n": len(rows),
        "margin": margin,
        **counts,
        "largest": float(largest["vs_cosine"]),
        "largest_representation": str(largest["representation"]),
        "largest_dataset": str(largest["dataset"]),
        "mean_abs": float(rows["vs_cosine"].abs().mean()),
    }


def describe_sets(sets: Sequence[JudgementSet]) -> pd.DataFrame:
    """One row per judgement set: what it holds and what its bootstrap resamples."""
    rows = []
    for s in sets:
        rows.append({
            "data set": s.name,
            "items": len(s.features) if s.pairs is None else len(np.unique(s.pairs)),
            "pairs": len(s.ratings) if s.ratings is not None else len(s.features) * (
                len(s.features) - 1) // 2,
            "human values": "ratings (similarity)" if s.pairs is not None else s.kind,
            "participants": 0 if s.subjects is None else len(s.subjects),
            "bootstrap over": s.unit,
            "no THINGS concept": s.unseen,
        })  # fmt: skip
    return pd.DataFrame(rows)


def with_interval(value: float, low: float, high: float, digits: int = 3) -> str:
    """``0.412 [0.380, 0.443]``; the value alone without an interval."""
    if np.isnan(low) or np.isnan(high):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def wide_table(table: pd.DataFrame, method: str = "spearman") -> pd.DataFrame:
    """Rows (source, data set, representation), one column per kernel: the correlation with
    its interval, as text for display."""
    part = table[table["method"] == method].copy()
    part["value"] = [
        with_interval(float(v), float(lo), float(hi))
        for v, lo, hi in zip(part["rho"], part["ci_low"], part["ci_high"], strict=True)
    ]
    wide = part.pivot_table(index=["source", "dataset", "representation"], columns="kernel",
                            values="value", aggfunc="first", sort=False)  # fmt: skip
    return wide.reset_index().rename_axis(columns=None)


def short_label(dataset: str, lines: int = 2) -> str:
    """A data set's name for an axis tick: ``SimLex-999\\nunseen pairs``, ``Peterson
    animals``, ``free arr. set1`` (on one line when ``lines`` is 1)."""
    family, _, part = dataset.partition("/")
    if dataset.startswith(SIMLEX):
        first, _, rest = dataset.partition(" · ")
        family, part = first, rest
    elif family == "free-arrangement":
        family = "free arr."
    elif family == "peterson":
        family = "Peterson"
    return f"{family}{' ' if lines == 1 else chr(10)}{part}" if part else family


def kernel_summary(answer: Mapping[str, Any], method: str = "spearman") -> str:
    """The page's answer to the kernel question, in words, from :func:`kernel_answer`."""
    from companion.paper.plotting import label

    if not answer.get("n"):
        return "No data set was scored with both kernels."
    margin = answer["margin"]
    if answer["no_effect"] == answer["n"]:
        verdict_text = (
            f"**On these data the kernel does not matter**: every difference's interval lies "
            f"within ±{margin:g}."
        )
    elif answer["pearson_higher"] and not answer["cosine_higher"]:
        verdict_text = "**Where the kernels differ, the Pearson kernel is closer to people.**"
    elif answer["cosine_higher"] and not answer["pearson_higher"]:
        verdict_text = "**Where the kernels differ, the cosine kernel is closer to people.**"
    elif answer["cosine_higher"] and answer["pearson_higher"]:
        verdict_text = "**Neither kernel is closer to people everywhere**: the data sets disagree."
    else:
        verdict_text = "**No difference is resolved**, but not every one is shown to be small."
    return (
        f"Pearson kernel minus cosine kernel ({method}), over {answer['n']} (data set, "
        f"representation) pairs: interval above 0 in {answer['pearson_higher']}, below 0 in "
        f"{answer['cosine_higher']}, within ±{margin:g} in {answer['no_effect']} (too small to "
        f"matter), unresolved in {answer['unresolved']}; mean absolute difference "
        f"{answer['mean_abs']:.4f}, largest {answer['largest']:+.4f} "
        f"({label(answer['largest_representation'])} on {answer['largest_dataset']}). "
        + verdict_text
    )
