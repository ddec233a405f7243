"""The fit digest: the key part of every cached fit that names the code which made it.

It covers exactly the fitting code (``glocal._fit.FIT_CODE``), without docstrings and comments:
editing prose, or code off the fit's path, keeps cached fits valid; editing the fit's code
does not.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

import glocal
from glocal._fit import FIT_CODE, code_digest, fit_digest
from glocal.search import SEARCH_CODE

PACKAGE = Path(glocal.__file__).parent
#: Names the fit imports from glocal that do not decide its numbers.
OFF_THE_NUMBERS = {"GlocalError", "FitDivergedError", "resolve_device", "digest", "parse"}


@pytest.fixture
def copy(tmp_path):
    """A copy of the package's modules, and a function that edits one of them in place."""
    for path in PACKAGE.glob("*.py"):
        shutil.copy(path, tmp_path / path.name)

    def edit(name: str, old: str, new: str) -> None:
        path = tmp_path / name
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{old!r} is not once in {name}"
        path.write_text(text.replace(old, new), encoding="utf-8")

    return tmp_path, edit


def test_prose_and_code_off_the_fit_path_keep_the_digest(copy):
    root, edit = copy
    fit, search = fit_digest(root), code_digest(SEARCH_CODE, root)
    assert fit == fit_digest()  # the copy is the package
    edit("search.py", '"""Grid search over', '"""A grid search over')  # a search docstring
    edit("search.py", "def _scores(", "# a comment\ndef _scores(")
    edit("_fit.py", '"""The optimisation loop', '"""The loop')  # the fitter's own prose
    edit("_fit.py", "    return alpha > 0\n", "    return alpha > 0  # the local term\n")
    edit("transform.py", '        """Fit the map on', '        """Fits the map on')
    edit(
        "transform.py",
        "        self._check_fitted()\n        path = Path(path)",
        "        self._check_fitted()\n        path = Path(str(path))",
    )  # save(): off the path
    edit("scoring.py", "    n = len(Xs)\n", "    n = Xs.shape[0]\n")  # nearest_neighbours
    assert fit_digest(root) == fit
    assert code_digest(SEARCH_CODE, root) != search  # the search scores with it


@pytest.mark.parametrize(
    ("name", "old", "new"),
    [
        ("_fit.py", "VAL_CONTRAST_SHARE = 0.2", "VAL_CONTRAST_SHARE = 0.25"),
        ("losses.py", "total = (1.0 - alpha) * global_term", "total = (1 - alpha) * global_term"),
        ("scoring.py", "(s[:, 0] > s[:, 1]) & (s[:, 0] > s[:, 2])",
         "(s[:, 0] >= s[:, 1]) & (s[:, 0] > s[:, 2])"),
        ("transform.py", "        if std == 0:", "        if std <= 0:"),
        ("transform.py", "return (X - X.dtype.type(mean)) / X.dtype.type(std)",
         "return (X - mean) / std"),
        ("io.py", "array.astype(np.float32 if", "array.astype(np.float64 if"),
    ],
)  # fmt: skip
def test_code_on_the_fit_path_changes_the_digest(copy, name, old, new):
    root, edit = copy
    before = fit_digest(root)
    edit(name, old, new)
    assert fit_digest(root) != before


def _glocal_imports(tree: ast.AST) -> dict[str, str]:
    """name -> the file of glocal it is imported from (``from glocal import losses``: the
    module itself)."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("glocal"):
            for alias in node.names:
                if node.module == "glocal":
                    found[alias.asname or alias.name] = f"{alias.name}.py:*"
                else:
                    found[alias.asname or alias.name] = f"{node.module.split('.')[-1]}.py"
    return found


def _covered(file: str, name: str) -> bool:
    if file.endswith(":*"):
        return FIT_CODE.get(file[:-2], ()) is None
    members = FIT_CODE.get(file, ())
    return members is None or name in members


def test_the_digest_covers_what_the_fit_calls():
    """Every glocal name the loop (``_fit.py``) and the estimator's ``fit`` use is in FIT_CODE,
    so a new dependency of the fit cannot be left out of the key unnoticed."""
    fitter = ast.parse((PACKAGE / "_fit.py").read_text(encoding="utf-8"))
    missing = [f"_fit.py uses {file}:{name}"
               for name, file in _glocal_imports(fitter).items()
               if name not in OFF_THE_NUMBERS and not _covered(file, name)]  # fmt: skip
    module = ast.parse((PACKAGE / "transform.py").read_text(encoding="utf-8"))
    estimator = next(n for n in module.body if getattr(n, "name", "") == "GlocalTransform")
    fit = next(n for n in estimator.body if getattr(n, "name", "") == "fit")  # type: ignore[attr-defined]
    imported = _glocal_imports(module)
    local = {n.name for n in module.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    for node in (inner for statement in fit.body for inner in ast.walk(statement)):
        if not isinstance(node, ast.Name) or node.id in OFF_THE_NUMBERS:
            continue
        if node.id in imported and not _covered(imported[node.id], node.id):
            missing.append(f"GlocalTransform.fit uses {imported[node.id]}:{node.id}")
        if node.id in local and not _covered("transform.py", node.id):
            missing.append(f"GlocalTransform.fit uses transform.py:{node.id}")
    assert missing == []


def test_digests_parse_one_thread_at_a_time(monkeypatch):
    import ast
    import threading
    import time

    import glocal._syntax as syntax
    from glocal._fit import _code_digest, code_digest, fit_digest
    from glocal.search import SEARCH_CODE

    inside, most = [0], [0]
    real = ast.parse

    def slow_parse(source, *args, **kwargs):  # widens the window two threads could share
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        time.sleep(0.002)
        try:
            return real(source, *args, **kwargs)
        finally:
            inside[0] -= 1

    monkeypatch.setattr(syntax.ast, "parse", slow_parse)
    _code_digest.cache_clear()
    expected = {fit_digest(), code_digest(SEARCH_CODE)}
    _code_digest.cache_clear()
    seen: list[str] = []

    def work():
        for _ in range(3):
            _code_digest.cache_clear()
            seen.extend([fit_digest(), code_digest(SEARCH_CODE)])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1 and set(seen) == expected


def test_a_tree_broken_by_another_thread_is_parsed_again(monkeypatch):
    import ast

    import glocal._syntax as syntax

    real, calls = ast.parse, []

    def racing(source, *args, **kwargs):  # what a concurrent np.load does to ast.parse
        calls.append(source)
        if len(calls) < 3:
            raise SystemError("AST constructor recursion depth mismatch (before=48, after=40)")
        return real(source, *args, **kwargs)

    monkeypatch.setattr(syntax.ast, "parse", racing)
    assert isinstance(syntax.parse("x = 1"), ast.Module) and len(calls) == 3
    calls.clear()
    monkeypatch.setattr(syntax, "ATTEMPTS", 2)
    with pytest.raises(SystemError, match="recursion depth mismatch"):
        syntax.parse("x = 1")
    monkeypatch.setattr(syntax.ast, "parse", lambda *a, **k: (_ for _ in ()).throw(
        SystemError("something else")))  # fmt: skip
    with pytest.raises(SystemError, match="something else"):
        syntax.parse("x = 1")
