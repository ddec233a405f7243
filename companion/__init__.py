"""The paper companion: what the result notebooks, the papermill runner and the book build share.

It uses only the public API of the ``glocal`` library and is not part of it. Two parts:

- :mod:`companion.pipeline` runs and builds: the notebook start-up (``session``: ``cp.setup``),
  the notebooks as data (``notebooks``: profiles, parameters, cache keys), what a profile needs
  and its preparation (``plan``), the generated smoke world (``smoke``), the runner (``runner``:
  ``python -m companion`` or ``glocal reproduce``, registered by ``cli``), the book build
  (``book_build``) and the Jupyter kernelspec (``kernel``).
- :mod:`companion.paper` measures and draws: profile inputs by topic (``inputs``,
  ``triplets``, ``text_features``, ``image_features``), cached fits (``fits``), cross-fitting
  over the object-disjoint folds (``crossfit``), paired comparisons (``comparisons``),
  measurement tables (``tables``), sweeps with intervals (``sweeps``), page 10's human
  judgement sets (``judgements``), page 11's distribution shift (``shift``,
  ``text_corruptions``), the controlled simulation (``scenarios``) and figures and their theme
  (``plotting``).

The notebooks reach the names below as ``cp.NAME`` (``import companion as cp``).
"""

from __future__ import annotations

import importlib
from typing import Any

# What the notebooks use as ``cp.NAME``; loaded on first use so the CLI stays fast.
_EXPORTS = {
    "setup": "companion.pipeline.session",
    "CHANCE": "companion.paper.inputs",
    "load_inputs": "companion.paper.inputs",
    "fit_transform": "companion.paper.fits",
    "fit_transforms": "companion.paper.fits",
    "fit_summary": "companion.paper.fits",
    "edge_explanations": "companion.paper.fits",
    "select_settings": "companion.paper.fits",
    "fit_alpha_sweep": "companion.paper.fits",
    "LAMBDA_RULES": "companion.paper.fits",
    "fit_data_sizes": "companion.paper.fits",
    "profile_folds": "companion.paper.crossfit",
    "fit_folds": "companion.paper.crossfit",
    "few_shot_episodes": "companion.paper.crossfit",
    "episodes_of": "companion.paper.tables",
    "anomaly_splits": "companion.paper.crossfit",
    "paired_summary": "companion.paper.comparisons",
    "unit_differences": "companion.paper.comparisons",
    "summary": "companion.paper.comparisons",
    "claim": "companion.paper.comparisons",
    "MARGINS": "companion.paper.comparisons",
    "alignment_table": "companion.paper.tables",
    "alignment_units": "companion.paper.tables",
    "anomaly_table": "companion.paper.tables",
    "evaluate_with_intervals": "companion.paper.sweeps",
    "sweep_units": "companion.paper.sweeps",
    "SweepSettings": "companion.paper.sweeps",
    "summarize_units": "companion.paper.sweeps",
    "interval_units_text": "companion.paper.sweeps",
    "few_shot_table": "companion.paper.tables",
    "local_structure_table": "companion.paper.tables",
    "nearest_concepts": "companion.paper.tables",
    "things_units": "companion.paper.tables",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'companion' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
