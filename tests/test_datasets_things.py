"""THINGS-data triplets: the noise-ceiling rows stay out of the paper's modelling set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from glocal import things
from glocal.errors import GlocalError


def _csv(path: Path, rows: list[tuple[int, int, int, int, int]]) -> Path:
    lines = ["image1,image2,image3,choice,subject_id,noise_ceiling"]
    lines += [f"{a},{b},{c},{choice},7,{nc}" for a, b, c, choice, nc in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_noise_ceiling_rows_are_excluded_from_the_modelling_set(tmp_path, monkeypatch):
    monkeypatch.setenv("GLOCAL_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    rows = [(*(rng.choice(100, 3, replace=False) + 1), 1 + i % 3, int(i % 4 == 0))
            for i in range(40)]  # fmt: skip
    csv = _csv(tmp_path / "t.csv", rows)
    mask = things.noise_ceiling_rows(csv)
    assert mask.tolist() == [i % 4 == 0 for i in range(40)]
    every = things.triplets("all", source=csv)
    modelling = things.triplets("all", source=csv, exclude_noise_ceiling=True)
    assert len(every) == 40 and len(modelling) == 30
    np.testing.assert_array_equal(modelling, every[~mask])
    # the two sets are cached apart, and so are their splits
    assert len(things.triplets("all", source=csv)) == 40
    assert len(things.triplets("train", source=csv, exclude_noise_ceiling=True)) == 27


def test_a_file_without_the_column_cannot_be_filtered(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("image1,image2,image3,choice\n1,2,3,3\n")
    with pytest.raises(GlocalError, match="noise_ceiling"):
        things.noise_ceiling_rows(path)
