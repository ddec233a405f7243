"""Page 10's tables (companion.paper.judgements) against the library functions called one by one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist, squareform

from companion.paper.judgements import (
    JudgementSet,
    describe_sets,
    judgement_table,
    kernel_answer,
    kernel_summary,
    summary_claim,
    sweep_table,
    vector_means,
    wide_table,
)
from glocal.errors import GlocalError
from glocal.evaluation.intervals import verdict
from glocal.evaluation.rsa import noise_ceiling, pair_alignment, rsa_difference, rsa_matrix


class Linear:
    """A fitted-transform stand-in: x -> x A + b."""

    def __init__(self, A: np.ndarray, b: float = 0.0):
        self.A, self.b = A, b

    def transform(self, X: np.ndarray) -> np.ndarray:
        return X @ self.A + self.b


@pytest.fixture
def world(rng):
    X = rng.normal(size=(24, 6))
    truth = pdist(X)
    subjects = np.stack([np.abs(truth + 0.5 * rng.normal(size=truth.shape)) for _ in range(4)])
    images = JudgementSet("images", X, True, matrix=squareform(subjects.mean(axis=0)),
                          kind="dissimilarity", subjects=subjects)  # fmt: skip
    pairs = np.array([(i, j) for i in range(24) for j in range(i + 1, 24)])[::3]
    ratings = np.round(10 - pdist(X)[::3], 0)
    words = JudgementSet("words", X, False, pairs=pairs, ratings=ratings)
    transforms = {
        "scaled": Linear(2.0 * np.eye(6)),  # ranks every pair as the original does
        "scrambled": Linear(rng.normal(size=(6, 6)), 1.5),
    }
    return [images, words], transforms


def test_table_equals_the_library_called_one_by_one(world):
    sets, transforms = world
    table = judgement_table(sets, transforms, ("cosine", "pearson"), ("spearman",),
                            n_bootstrap=30, seed=4, source="planted")  # fmt: skip
    assert len(table) == 2 * 3 * 2  # sets x representations x kernels
    images, words = sets
    Z = transforms["scrambled"].transform(images.features)
    ours = rsa_matrix(Z, images.matrix, "dissimilarity", "pearson", n_bootstrap=30, seed=4)
    base = rsa_matrix(images.features, images.matrix, "dissimilarity", "pearson",
                      n_bootstrap=30, seed=4)  # fmt: skip
    cosine = rsa_matrix(Z, images.matrix, "dissimilarity", "cosine", n_bootstrap=30, seed=4)
    row = table.set_index(["dataset", "representation", "kernel"]).loc[
        ("images", "scrambled", "pearson")]  # fmt: skip
    assert row["rho"] == pytest.approx(ours.rho)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ours.ci_low, ours.ci_high))
    diff, low, high = rsa_difference(ours, base)
    assert (row["vs_original"], row["vs_original_low"], row["vs_original_high"]) == (
        pytest.approx((diff, low, high)))  # fmt: skip
    assert row["verdict"] == verdict(low, high)
    assert row["vs_cosine"] == pytest.approx(ours.rho - cosine.rho)
    ceiling = noise_ceiling(images.subjects, "spearman")
    assert (row["ceiling_low"], row["ceiling_high"]) == pytest.approx(
        (ceiling.lower, ceiling.upper))  # fmt: skip
    assert row["unit"] == "images" and row["n_units"] == 24

    word = table.set_index(["dataset", "representation", "kernel"]).loc[
        ("words", "original", "cosine")]  # fmt: skip
    expected = pair_alignment(words.features, words.pairs, words.ratings, "cosine",
                              n_bootstrap=30, seed=4)  # fmt: skip
    assert word["rho"] == pytest.approx(expected.rho)
    assert word["unit"] == "pairs" and word["n_units"] == len(words.pairs)
    assert np.isnan(word["ceiling_low"]) and word["verdict"] == "n/a"


def test_a_transform_that_keeps_every_ranking_changes_nothing(world):
    sets, transforms = world
    table = judgement_table(sets, transforms, ("cosine",), n_bootstrap=30)
    scaled = table[table["representation"] == "scaled"]
    assert (scaled["vs_original"] == 0).all()
    assert (scaled["vs_original_low"] == 0).all() and (scaled["vs_original_high"] == 0).all()
    assert set(scaled["verdict"]) == {"not resolved"}  # not "holds" by a rounding error


def test_original_is_added_by_the_table_only(world):
    sets, transforms = world
    with pytest.raises(GlocalError, match="'original' is added"):
        judgement_table(sets, {"original": transforms["scaled"]})


def _claim_table(verdicts: list[str], unseen: list[bool]) -> pd.DataFrame:
    rows = []
    for i, (v, u) in enumerate(zip(verdicts, unseen, strict=True)):
        for name, rho in (("original", 0.30), ("glocal", 0.35)):
            rows.append({"source": "s", "dataset": f"d{i}", "unseen": u, "representation": name,
                         "kernel": "cosine", "method": "spearman", "rho": rho,
                         "verdict": v if name == "glocal" else "n/a"})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        (["holds", "holds"], "holds"),
        (["opposite", "opposite"], "opposite"),
        (["holds", "opposite"], "mixed"),
        (["holds", "not resolved"], "not resolved"),
    ],
)
def test_the_claim_counts_only_data_no_fit_saw(verdicts, expected):
    table = _claim_table([*verdicts, "opposite"], [True, True, False])  # the seen set: ignored
    text, holds = summary_claim(table)
    assert holds == expected
    assert "of 2 (model, data set) comparisons" in text
    one = _claim_table(["holds"], [True])
    assert summary_claim(one) == ("Spearman ρ (cosine) 0.300 → 0.350 (original → gLocal, d0)",
                                  "holds")  # fmt: skip


def test_kernel_answer_classifies_each_difference_with_the_margin():
    rows = [
        (0.03, 0.02, 0.04),  # Pearson higher
        (-0.05, -0.07, -0.03),  # cosine higher
        (0.001, -0.004, 0.006),  # within ±0.01: too small to matter
        (0.002, 0.001, 0.003),  # excludes 0, but too small to matter all the same
        (0.01, -0.02, 0.04),  # not resolved
    ]
    table = pd.DataFrame([
        {"kernel": "pearson", "method": "spearman", "representation": f"r{i}", "dataset": "d",
         "vs_cosine": d, "vs_cosine_low": lo, "vs_cosine_high": hi}
        for i, (d, lo, hi) in enumerate(rows)
    ])  # fmt: skip
    answer = kernel_answer(table, margin=0.01)
    assert (answer["pearson_higher"], answer["cosine_higher"]) == (1, 1)
    assert (answer["no_effect"], answer["unresolved"]) == (2, 1)
    assert answer["largest"] == -0.05 and answer["largest_representation"] == "r1"
    assert "**Neither kernel is closer to people everywhere**" in kernel_summary(answer)
    small = kernel_answer(table.iloc[2:4], margin=0.01)
    assert small["no_effect"] == small["n"] == 2
    assert "**On these data the kernel does not matter**" in kernel_summary(small)


def test_describe_and_wide_tables(world):
    sets, transforms = world
    described = describe_sets(sets)
    assert described["pairs"].tolist() == [24 * 23 // 2, len(sets[1].pairs)]
    assert described["participants"].tolist() == [4, 0]
    table = judgement_table(sets, transforms, ("cosine", "pearson"), n_bootstrap=20)
    wide = wide_table(table)
    assert list(wide.columns) == ["source", "dataset", "representation", "cosine", "pearson"]
    assert len(wide) == 6 and wide["cosine"].str.match(r"-?\d\.\d{3} \[-?\d\.\d{3}, ").all()


def test_a_sweep_table_carries_each_alpha_as_a_number(world):
    sets, transforms = world
    sweep = {0.0: transforms["scaled"], 0.25: transforms["scrambled"]}
    table = sweep_table(sets, sweep, ("cosine",), n_bootstrap=20, seed=1)
    direct = judgement_table(sets, {"alpha=0": sweep[0.0], "alpha=0.25": sweep[0.25]},
                             ("cosine",), n_bootstrap=20, seed=1)  # fmt: skip
    pd.testing.assert_frame_equal(table.drop(columns="alpha"), direct)
    by_name = table.groupby("representation", sort=False)["alpha"].first()
    assert np.isnan(by_name["original"])
    assert by_name[["alpha=0", "alpha=0.25"]].tolist() == [0.0, 0.25]
    with pytest.raises(GlocalError, match="print alike"):
        sweep_table(sets, {0.1: sweep[0.0], 0.1000000001: sweep[0.25]}, ("cosine",))


def test_vector_means_are_each_items_mean_over_its_rms(world):
    sets, transforms = world
    means = vector_means(sets, transforms, ["original", "scrambled"], "planted")
    assert len(means) == 2 * 24  # both sets share one feature matrix: counted once
    images = sets[0]
    Z = transforms["scrambled"].transform(images.features)
    expected = [z.mean() / np.sqrt(np.mean(z**2)) for z in Z]
    got = means[means["representation"] == "scrambled"]["m"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert np.abs(means[means["representation"] == "original"]["m"]).max() < 1.0
