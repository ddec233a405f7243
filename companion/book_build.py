"""Build the Jupyter Book (``_config.yml``, ``_toc.yml``, ``book/``) from executed notebooks."""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from companion.notebooks import package_hash
from glocal.errors import GlocalError
from glocal.io import atomic_path, file_lock

RESULTS_PAGES = "book/results"
KEY_FILE = "book.key.json"
LOG_FILE = "book-build.log"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _toc_entries(node: Any) -> list[str]:
    """Every ``root`` / ``file`` value in a parsed ``_toc.yml``, in order."""
    found: list[str] = []
    if isinstance(node, dict):
        for key in ("root", "file"):
            if isinstance(node.get(key), str):
                found.append(node[key])
        for value in node.values():
            if isinstance(value, (dict, list)):
                found += _toc_entries(value)
    elif isinstance(node, list):
        for item in node:
            found += _toc_entries(item)
    return found


def result_pages(root: str | os.PathLike) -> list[str]:
    """Names ``NN_slug`` of the result pages that ``_toc.yml`` lists under ``book/results/``."""
    import yaml

    toc = Path(root) / "_toc.yml"
    if not toc.is_file():
        raise GlocalError(f"{toc} does not exist: the book needs a table of contents there")
    try:
        parsed = yaml.safe_load(toc.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise GlocalError(f"{toc}: not valid YAML ({err})") from err
    prefix = RESULTS_PAGES + "/"
    names = [e.removesuffix(".ipynb") for e in _toc_entries(parsed) if e.startswith(prefix)]
    return [name[len(prefix) :] for name in names]


def executed_pages(root: Path, executed_dir: Path, profile: str) -> list[str]:
    """The result pages the toc lists, each checked to have a valid executed notebook."""
    pages = result_pages(root)
    missing = [name for name in pages if not (executed_dir / f"{name}.ipynb").is_file()]
    if missing:
        first = missing[0]
        raise GlocalError(
            f"_toc.yml lists {RESULTS_PAGES}/{first} but the executed notebook "
            f"{executed_dir / (first + '.ipynb')} does not exist ({len(missing)} missing: "
            f"{', '.join(missing)}); run `python -m companion --profile {profile} "
            f"--only {' '.join(name[:2] for name in missing)}` (or `make reproduce "
            f"PROFILE={profile}`)"
        )
    for name in pages:
        _check_executed(executed_dir / f"{name}.ipynb", name, profile)
    return pages


def sync_results(root: Path, executed_dir: Path, profile: str) -> list[str]:
    """Copy the executed notebooks the toc lists into ``book/results/``; fail if one is missing
    or broken."""
    pages = executed_pages(root, executed_dir, profile)
    target = root / RESULTS_PAGES
    target.mkdir(parents=True, exist_ok=True)
    for stale in target.glob("*.ipynb"):
        if stale.stem not in pages:
            stale.unlink()
    for name in pages:
        source, copy = executed_dir / f"{name}.ipynb", target / f"{name}.ipynb"
        # Copy only when the content differs (an unchanged copy keeps its mtime).
        if not copy.is_file() or not filecmp.cmp(source, copy, shallow=False):
            with atomic_path(copy) as tmp:
                shutil.copyfile(source, tmp)
    return pages


def _check_executed(path: Path, name: str, profile: str) -> None:
    """An executed notebook the book shows must be a valid notebook (not truncated)."""
    import nbformat

    try:
        nbformat.validate(nbformat.read(str(path), as_version=4))
    except Exception as err:  # unreadable JSON, a truncated file, a schema violation
        cause = " ".join(str(err).split())[:200] or type(err).__name__
        raise GlocalError(
            f"page {RESULTS_PAGES}/{name}: the executed notebook {path} is not a valid notebook "
            f"({type(err).__name__}: {cause}); run it again with `python -m companion --profile "
            f"{profile} --only {name[:2]} --force`"
        ) from None


def _sources_key(root: Path) -> str:
    digest = hashlib.sha256()
    files = [root / "_config.yml", root / "_toc.yml"]
    files += sorted(p for p in (root / "book").rglob("*") if p.is_file())
    for file in files:
        rel = file.relative_to(root)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        digest.update(rel.as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(file.read_bytes()).digest() if file.is_file() else b"-")
    digest.update(package_hash().encode())
    digest.update(version("jupyter-book").encode())
    return digest.hexdigest()


def _warnings(log: str) -> list[str]:
    return [line.strip() for line in log.splitlines() if "WARNING:" in line or "ERROR:" in line]


def _failure(log: str) -> str:
    """The page and the cause of a build that failed without a warning line."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    page = re.compile(r"\bbook/[\w/-]+(?:\.(?:ipynb|md))?")
    pages = [m.group(0) for line in lines if (m := page.search(line))]
    causes = [line for line in lines if re.match(r"^[A-Za-z_.]*(Error|Exception)\b", line)]
    cause = causes[-1] if causes else (lines[-1] if lines else "no output")
    return f"{pages[-1]}: {cause}" if pages else cause


def _run_jupyter_book(root: Path, stage: Path, log_file: Path) -> Path:
    command = [
        sys.executable,
        "-c",
        "import sys; from jupyter_book.cli.main import main; sys.exit(main())",
        "build",
        str(root),
        "--path-output",
        str(stage),
        "--warningiserror",
        "--keep-going",
    ]
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.run(command, capture_output=True, text=True, cwd=root, env=env)
    log = _ANSI.sub("", proc.stdout + proc.stderr)
    log_file.write_text(log, encoding="utf-8")
    found = _warnings(log)
    if proc.returncode != 0 or found:
        first = "; ".join(found[:3]) or _failure(log)
        raise GlocalError(
            f"book build failed ({len(found)} warning(s), warnings count as errors): {first}; "
            f"full log: {log_file}"
        )
    return stage / "_build" / "html"


def _install(html: Path, target: Path) -> None:
    """Move the freshly built ``html`` onto ``target``, replacing the previous site."""
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(html, target)
    shutil.rmtree(old, ignore_errors=True)


def build_book(
    root: str | os.PathLike,
    executed_dir: str | os.PathLike,
    build_dir: str | os.PathLike | None = None,
    profile: str = "quick",
    force: bool = False,
) -> Path:
    """Build the book under ``root`` into ``build_dir/html`` and return its index page.

    The executed notebooks that ``_toc.yml`` lists under ``book/results/`` are copied there from
    ``executed_dir`` first. The build is skipped when neither the book sources, the copied
    notebooks, the glocal package nor jupyter-book changed since the last successful build.

    The build runs ``jupyter-book build -W --keep-going``, always fresh: every Sphinx warning (a
    broken cross-reference, a missing image, a toc entry without a file) fails it, and the
    warnings are listed in the error and in ``BUILD_DIR/book-build.log``. Docstrings that are not
    valid reStructuredText are shown verbatim (``book/_ext/verbatim_docstrings.py``) instead.

    Builds of one book run one at a time: they share the copies in ``book/results/`` and the
    staging folder ``BUILD_DIR/.jupyter-book``. A build that waited for another finds the key
    current and returns the site the other built.
    """
    since = time.time()
    root = Path(root).resolve()
    executed = Path(executed_dir).resolve()
    build = Path(build_dir).resolve() if build_dir is not None else root / "_build"
    if not (root / "_config.yml").is_file():
        raise GlocalError(f"{root / '_config.yml'} does not exist; pass the book's root folder")
    executed_pages(root, executed, profile)  # a build that cannot run leaves no lock behind
    # Always this order (the book's copies, then the build folder), so that builds cannot
    # deadlock. The first lock file is hidden inside the git-ignored book/results/.
    with file_lock(root / RESULTS_PAGES / ".sync"), file_lock(build / "html"):
        return _build_locked(root, executed, build, profile, force, since)


def _build_locked(
    root: Path, executed: Path, build: Path, profile: str, force: bool, since: float
) -> Path:
    sync_results(root, executed, profile)
    key = _sources_key(root)
    key_file, index = build / KEY_FILE, build / "html" / "index.html"
    if index.is_file() and key_file.is_file():
        try:
            record = json.loads(key_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            record = {}
        record = record if isinstance(record, dict) else {}
        built_at = record.get("built_at")
        fresh = isinstance(built_at, (int, float)) and built_at >= since
        if record.get("key") == key and (not force or fresh):
            return index
    build.mkdir(parents=True, exist_ok=True)
    key_file.unlink(missing_ok=True)
    # Always a fresh build: an incremental one would not repeat the warnings of unchanged pages.
    stage = build / ".jupyter-book"
    shutil.rmtree(stage, ignore_errors=True)
    try:
        _install(_run_jupyter_book(root, stage, build / LOG_FILE), build / "html")
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    record = {
        "key": key,
        "profile": profile,
        "executed_dir": str(executed),
        "built_at": time.time(),
    }
    with atomic_path(key_file) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return index
