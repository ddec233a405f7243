"""One name for the quiet/progress knob: scikit-learn's ``verbose``.

Public functions that took ``progress=`` take ``verbose=``; the old name works for one release
with a FutureWarning that names the function and the new spelling.
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import numpy as np
import pytest

import glocal
from glocal.evaluation.anomaly import shifted_anomaly_detection

ROOT = Path(__file__).resolve().parents[1]
#: The public functions whose progress knob was renamed (``progress`` kept, deprecated).
RENAMED = {
    "glocal/evaluation/few_shot.py:few_shot",
    "glocal/evaluation/anomaly.py:anomaly_detection",
    "glocal/evaluation/anomaly.py:shifted_anomaly_detection",
    "glocal/evaluation/categories.py:things_few_shot",
    "glocal/evaluation/categories.py:things_anomaly_detection",
    "glocal/evaluation/rsa.py:rsa",
    "glocal/evaluation/rsa.py:rsa_matrix",
    "glocal/evaluation/comparison.py:compare",
    "glocal/features/extract.py:extract_features",
    "glocal/features/shards.py:extract_sharded",
}


def _public_functions():
    for package in ("glocal", "companion"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name.startswith("_") and path.name != "__init__.py":
                continue  # a private module (glocal/_params.py's verbose_level reads progress)
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                    yield f"{path.relative_to(ROOT)}:{node.name}", node


def test_no_public_function_names_its_progress_knob_otherwise():
    deprecated = set()
    for name, node in _public_functions():
        args = node.args
        names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
        if "progress" not in names:
            continue
        assert "verbose" in names, f"{name}: a progress knob without verbose"
        defaults = dict(zip([a.arg for a in args.args][::-1], args.defaults[::-1], strict=False))
        defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)})
        default = defaults.get("progress")
        assert isinstance(default, ast.Constant) and default.value is None, name
        deprecated.add(name)
    assert deprecated == RENAMED


@pytest.fixture
def labelled():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 8)
    return rng.normal(size=(24, 4)) + y[:, None], y


def _quietly(call):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new name warns about nothing
        return call()


def test_progress_still_works_with_a_warning_and_means_verbose(labelled, capsys):
    X, y = labelled
    options = {"shots": (1,), "n_repeats": 2, "classifier": "centroid"}
    with pytest.warns(FutureWarning, match=r"few_shot\(progress=\.\.\.\) is deprecated.*verbose=1"):
        old = glocal.few_shot(X, y, progress=True, **options)
    assert "few-shot" in capsys.readouterr().err  # the bar was drawn
    new = _quietly(lambda: glocal.few_shot(X, y, verbose=1, **options))
    assert "few-shot" in capsys.readouterr().err
    assert old.equals(new)
    _quietly(lambda: glocal.few_shot(X, y, verbose=0, **options))
    assert "few-shot" not in capsys.readouterr().err

    with pytest.warns(FutureWarning, match=r"anomaly_detection\(progress=.*verbose=0"):
        quiet = glocal.anomaly_detection(X, y, X, y, k=3, progress=False)
    assert "anomaly detection" not in capsys.readouterr().err
    loud = _quietly(lambda: glocal.anomaly_detection(X, y, X, y, k=3, verbose=1))
    assert "anomaly detection" in capsys.readouterr().err
    assert quiet.per_class.equals(loud.per_class)

    with pytest.warns(FutureWarning, match=r"rsa\(progress="):
        glocal.rsa(X, X, n_bootstrap=3, progress=True)
    assert "RSA bootstrap" in capsys.readouterr().err
    with pytest.warns(FutureWarning, match=r"rsa_matrix\(progress="):
        glocal.rsa_matrix(X, X @ X.T, "similarity", n_bootstrap=3, progress=False)
    fine, coarse = np.arange(24) % 6, np.arange(24) % 6 // 3
    with pytest.warns(FutureWarning, match=r"shifted_anomaly_detection\(progress="):
        shifted_anomaly_detection(X, fine, coarse, X, fine, coarse, k=2, seen=(0,), progress=1)
