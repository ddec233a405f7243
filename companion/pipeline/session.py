"""What every result notebook does first: display settings, its parameters and its output folder.

Importing this module (which ``cp.setup`` does) already quiets what would otherwise leak
into a page's outputs before the first result: tqdm's "IProgress not found" warning (it
names a file of the build machine) and the progress bars that Hugging Face libraries draw
while loading an encoder. It does so before any ``glocal`` module is imported, so the
notebooks call ``cp.setup(...)`` before their other imports.
"""

from __future__ import annotations

import os
import sys
import warnings

# Before anything imports tqdm.auto or transformers (both read these when first imported).
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets
warnings.filterwarnings("ignore", category=FutureWarning, module="sentence_transformers")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # "Loading weights" and downloads
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402
from typing import Any, NamedTuple  # noqa: E402

from companion.pipeline.notebooks import notebook_parameters, repository_notebooks_dir  # noqa: E402


class Session(NamedTuple):
    """A notebook's resolved parameters and the folder its figures and tables go to."""

    params: dict[str, Any]
    results_dir: Path


def quiet_progress_bars() -> None:
    """Turn off the progress bars of Hugging Face libraries that are already imported."""
    if "transformers" in sys.modules:
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            hf_logging.set_verbosity_error()
        except (ImportError, AttributeError):  # pragma: no cover - other versions
            pass
    if "huggingface_hub" in sys.modules:
        try:
            from huggingface_hub.utils import disable_progress_bars

            disable_progress_bars()
        except (ImportError, AttributeError):  # pragma: no cover - other versions
            pass


def setup(
    name: str,
    profile: str,
    overrides: dict[str, Any] | str | None = None,
    results_dir: str | Path | None = None,
) -> Session:
    """Apply the notebooks' display settings and resolve ``name``'s parameters in ``profile``.

    ``results_dir`` defaults to ``results/PROFILE/NAME`` in the repository (never a folder
    relative to wherever the notebook happens to run).
    """
    import pandas as pd

    from companion.paper.plotting import use_style

    quiet_progress_bars()
    use_style()
    pd.set_option("display.precision", 4)
    pd.set_option("display.width", 140)
    pd.set_option("display.max_colwidth", 90)
    params = notebook_parameters(name, profile, overrides)
    folder = (
        Path(results_dir)
        if results_dir is not None
        else repository_notebooks_dir().parent / "results" / profile / name
    )
    return Session(params, folder)
