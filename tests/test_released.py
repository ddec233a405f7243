"""The official-transform analysis: distance to a scaled identity, spectra, availability and
the dinov2 byte copy of the release."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from glocal import released
from glocal.errors import GlocalError

DINO_P16 = Path("transforms/dino-vit-base-p16/norm/transform.npz")
DINOV2_RELEASE = Path("transforms/dinov2-vit-base-p14/norm/transform.npz")
DINOV2_GENUINE = Path("transforms-d1860d3/dinov2-vit-base-p14/norm/transform.npz")
MISSING = {"resnet50", "vgg16", "alexnet"}


def save(path: Path, weights: np.ndarray, bias: np.ndarray | None = None) -> Path:
    arrays = {"weights": weights.astype(np.float32), "mean": np.float32(0.1),
              "std": np.float32(2.0)}  # fmt: skip
    if bias is not None:
        arrays["bias"] = bias.astype(np.float32)
    np.savez(path, **arrays)
    return path


def test_identity_distance_is_zero_for_a_scaled_identity_and_near_one_for_noise(rng):
    beta, distance = released.identity_distance(3.0 * np.eye(50))
    assert beta == pytest.approx(3.0) and distance == pytest.approx(0.0, abs=1e-12)
    beta, distance = released.identity_distance(rng.standard_normal((400, 400)))
    assert abs(beta) < 0.2 and distance == pytest.approx(1.0, abs=0.01)
    W = 2.0 * np.eye(200) + 0.01 * rng.standard_normal((200, 200))
    off = 0.01 * np.sqrt(200 * 199) / np.linalg.norm(W)  # the expected off-diagonal share
    assert released.identity_distance(W)[1] == pytest.approx(off, rel=0.05)
    with pytest.raises(GlocalError, match="square"):
        released.identity_distance(np.ones((3, 4)))
    with pytest.raises(GlocalError, match="zero matrix"):
        released.identity_distance(np.zeros((3, 3)))


def test_spectrum_and_summary_of_a_small_transform(rng, tmp_path):
    W = rng.standard_normal((30, 30))
    s = released.singular_values(W)
    np.testing.assert_allclose(s, np.linalg.svd(W, compute_uv=False), rtol=1e-10)
    assert np.all(np.diff(s) <= 0)
    assert released.effective_rank(np.ones(30)) == pytest.approx(30.0)
    assert released.effective_rank(np.r_[1.0, np.zeros(29)]) == pytest.approx(1.0)
    summary = released.summarize_weights(
        released.load_arrays(save(tmp_path / "t.npz", 0.5 * np.eye(30), np.full(30, 0.2)))
    )
    assert summary["p"] == 30 and summary["beta"] == pytest.approx(0.5)
    assert summary["rel_dist_scaled_identity"] == pytest.approx(0.0, abs=1e-6)
    assert summary["condition_number"] == pytest.approx(1.0)
    assert summary["bias_norm"] == pytest.approx(0.2 * np.sqrt(30), rel=1e-6)
    assert summary["bias_norm_per_sqrt_p"] == pytest.approx(0.2, rel=1e-6)
    no_bias = released.summarize_weights(released.load_arrays(save(tmp_path / "u.npz", W)))
    assert np.isnan(no_bias["bias_norm"])


def test_compare_files_tells_byte_array_and_weight_differences(rng, tmp_path):
    W = rng.standard_normal((8, 8))
    a = save(tmp_path / "a.npz", W, np.zeros(8))
    b = tmp_path / "b.npz"
    shutil.copy(a, b)
    c = save(tmp_path / "c.npz", 1.1 * W, np.zeros(8))
    same = released.compare_files(a, b)
    assert same["same_bytes"] and same["same_arrays"] and same["weights_rel_diff"] == 0.0
    other = released.compare_files(a, c)
    assert not other["same_bytes"] and not other["same_arrays"]
    assert other["weights_rel_diff"] == pytest.approx(0.1 / 1.1, rel=1e-5)


def test_nothing_available_offline_lists_every_transform_with_its_fetch_command(no_network):
    found = released.locate_transforms(download=False)
    assert len(found) == 12 and not any(t.available for t in found)
    table = released.availability_table(found)
    assert table["fetch_command"].str.startswith("glocal data fetch transform/").all()
    assert table["reason"].str.contains("cannot get").all()
    assert released.transform_table(found)["p"].isna().all()
    assert released.spectra_table(found).empty


@pytest.fixture
def mirror(data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("GLOCAL_DATA_DIR", str(data_dir))
    monkeypatch.setenv("GLOCAL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GLOCAL_OFFLINE", "1")
    return data_dir


def test_the_mirror_has_nine_transforms_and_each_is_near_a_scaled_identity(mirror):
    found = released.locate_transforms(download=False)
    missing = {t.model for t in found if not t.available}
    assert missing == MISSING
    dinov2 = next(t for t in found if t.model == "dinov2-vit-base-p14")
    assert dinov2.path == mirror / DINOV2_GENUINE and "override" in dinov2.served_from
    # the three smallest matrices keep the test fast
    small = [t for t in found if t.model in ("resnet18", "dino-vit-base-p16", "clip_RN50")]
    table = released.transform_table(small)
    assert (table["rel_dist_scaled_identity"] < 0.35).all()
    assert (table["beta"] > 0).all()
    spectra = released.spectra_table(small)
    assert len(spectra) == 512 + 768 + 1024
    assert (spectra.groupby("model")["relative"].max() == 1.0).all()


def test_duplicate_report_finds_the_dinov2_byte_copy(mirror):
    report = released.duplicate_report()
    assert len(report) == 2
    twin, genuine = report.iloc[0], report.iloc[1]
    assert twin["file_b"] == "transform/dino-vit-base-p16/norm"
    assert twin["registry_says_same"] and twin["same_bytes"] and twin["same_arrays"]
    assert twin["weights_rel_diff"] == 0.0
    assert not genuine["registry_says_same"] and not genuine["same_bytes"]
    assert not genuine["same_arrays"] and genuine["weights_rel_diff"] > 0.1


def test_duplicate_report_without_the_release_copy_says_where_to_get_it(
    mirror, monkeypatch, tmp_path
):
    partial = tmp_path / "mirror"
    for rel in (DINO_P16, DINOV2_GENUINE):
        (partial / rel).parent.mkdir(parents=True)
        shutil.copy(mirror / rel, partial / rel)
    monkeypatch.setenv("GLOCAL_DATA_DIR", str(partial))
    report = released.duplicate_report()
    assert report["registry_says_same"].tolist() == [True, False]
    assert report["note"].str.contains("release copy not present").all()
    assert "same_bytes" not in report
