"""Input checks shared by the evaluation protocols."""

from __future__ import annotations

from typing import Any

import numpy as np

from glocal.errors import GlocalError


def show_label(label: Any) -> Any:
    """A label as plain Python (``2``, not ``np.int64(2)``) for error messages."""
    return label.item() if isinstance(label, np.generic) else label


def check_labels(y: np.ndarray, n: int, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise GlocalError(f"{where}: expected a 1-D label vector, got shape {y.shape}")
    if len(y) != n:
        raise GlocalError(
            f"{where} has {len(y)} labels but the feature matrix has {n} rows; "
            "give one label per row"
        )
    return y
