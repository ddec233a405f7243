"""What every result notebook does first: display settings, its parameters and its output folder."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, NamedTuple

from companion.notebooks import notebook_parameters, repository_notebooks_dir


class Session(NamedTuple):
    """A notebook's resolved parameters and the folder its figures and tables go to."""

    params: dict[str, Any]
    results_dir: Path


def setup(
    name: str,
    profile: str,
    overrides: dict[str, Any] | None = None,
    results_dir: str | Path | None = None,
) -> Session:
    """Apply the notebooks' display settings and resolve ``name``'s parameters in ``profile``.

    ``results_dir`` defaults to ``results/PROFILE/NAME`` in the repository (never a folder
    relative to wherever the notebook happens to run).
    """
    import pandas as pd

    from companion.plotting import use_style

    warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets
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
