"""benchmarks/compare_builds.py: two builds' results compared number for number."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_builds.py"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("compare_builds", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up while being built
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def _build(folder: Path, table: pd.DataFrame, pixels: np.ndarray) -> Path:
    from PIL import Image

    (folder / "01_page").mkdir(parents=True)
    table.to_csv(folder / "01_page" / "t.csv", index=False)
    Image.fromarray(pixels).save(folder / "01_page" / "f.png")
    return folder


def test_only_a_change_beyond_the_tolerance_or_of_shape_fails(tool, tmp_path, capsys):
    table = pd.DataFrame({"name": ["a", "b", "c"], "value": [0.1, np.nan, 3.0],
                          "note": ["x", "/tmp/one", "y"]})  # fmt: skip
    pixels = np.zeros((4, 5, 3), np.uint8)
    before = _build(tmp_path / "before", table, pixels)
    nudged, moved = table.copy(), pixels.copy()
    nudged.loc[0, "value"] += 4e-7
    nudged.loc[1, "note"] = "/tmp/two"  # a path in a message: listed, not a failure
    moved[0, 0] = 255
    after = _build(tmp_path / "within", nudged, moved)
    assert tool.main([str(before), str(after)]) == 0
    out = capsys.readouterr().out
    assert "1 of 1 CSVs match in every number" in out and "text note: 1 cells" in out
    assert "4e-07" in out and "01_page/f.png: 5.00% of pixels" in out
    for change in (
        {"value": [0.1, 2.0, 3.0]},  # a NaN became a number
        {"value": [0.1 + 2e-6, np.nan, 3.0]},
    ):  # beyond 1e-6
        changed = _build(tmp_path / str(len(list(tmp_path.iterdir()))),
                         table.assign(**change), pixels)  # fmt: skip
        assert tool.main([str(before), str(changed)]) == 1
    reordered = _build(tmp_path / "reordered", table[["value", "name", "note"]], pixels)
    assert tool.main([str(before), str(reordered), "--out", str(tmp_path / "r.md")]) == 1
    assert "columns in another order" in (tmp_path / "r.md").read_text()
    shorter = _build(tmp_path / "shorter", table.iloc[:2], pixels)
    assert tool.main([str(before), str(shorter)]) == 1
    assert "3 rows before, 2 after" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        tool.main([str(before), str(tmp_path / "absent")])
