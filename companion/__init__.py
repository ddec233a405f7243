"""The paper companion: what the result notebooks, the papermill runner and the book build share.

It uses only the public API of the ``glocal`` library and is not part of it: the notebook
start-up (``session``), profile inputs (``inputs``), cached fits (``fits``), cross-fitting over
the object-disjoint folds (``crossfit``), paired comparisons (``comparisons``), measurement
tables (``tables``), sweeps with intervals (``sweeps``), page 10's human judgement sets
(``judgements``), page 11's distribution shift (``shift``), the controlled simulation
(``scenarios``), figures and their theme (``plotting``), the notebooks as data
(``notebooks``), the runner (``runner``: ``python -m companion`` or ``glocal reproduce``), the
book build (``book_build``) and the Jupyter kernelspec (``kernel``).
"""

from __future__ import annotations

import importlib
from typing import Any

# What the notebooks use as ``cp.NAME``; loaded on first use so the CLI stays fast.
_EXPORTS = {
    "setup": "companion.session",
    "CHANCE": "companion.inputs",
    "load_inputs": "companion.inputs",
    "fit_transform": "companion.fits",
    "fit_transforms": "companion.fits",
    "fit_summary": "companion.fits",
    "edge_explanations": "companion.fits",
    "select_settings": "companion.fits",
    "fit_alpha_sweep": "companion.fits",
    "LAMBDA_RULES": "companion.fits",
    "fit_data_sizes": "companion.fits",
    "profile_folds": "companion.crossfit",
    "fit_folds": "companion.crossfit",
    "few_shot_episodes": "companion.crossfit",
    "episodes_of": "companion.crossfit",
    "anomaly_splits": "companion.crossfit",
    "paired_summary": "companion.comparisons",
    "unit_differences": "companion.comparisons",
    "summary": "companion.comparisons",
    "claim": "companion.comparisons",
    "MARGINS": "companion.comparisons",
    "alignment_table": "companion.tables",
    "alignment_units": "companion.tables",
    "anomaly_table": "companion.tables",
    "evaluate_with_intervals": "companion.sweeps",
    "sweep_units": "companion.sweeps",
    "summarize_units": "companion.sweeps",
    "interval_units_text": "companion.sweeps",
    "few_shot_table": "companion.tables",
    "local_structure_table": "companion.tables",
    "nearest_concepts": "companion.tables",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'companion' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
