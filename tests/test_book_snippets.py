"""Every code block of the book's chapters (book/*.md) runs as the page shows it.

Each fenced ``python`` or ``bash`` block is preceded by a MyST comment line (``%`` lines are
not rendered) that says how this test runs it:

- ``% book-test: run`` runs the block as written, in a fresh temporary folder;
- ``% book-test: run with=FIXTURE (note)`` first prepares that folder with a fixture of this
  file (stand-in input files, or a documented replacement of an input that needs a network);
- ``% book-test: run cwd=repo`` runs it from the repository root instead;
- ``% book-test: run shell=fresh`` runs a shell recipe from the repository root in a fresh
  shell: an environment with nothing but ``HOME``, a system ``PATH`` and the variables of
  :data:`PASSED_THROUGH` (the test run's own cache, offline switches and import path), so that
  no variable of the test run makes a command work that would fail when pasted;
- ``% book-test: continue`` runs a Python block in the namespace of the page's previous block;
- ``% book-test: skip: REASON`` does not run it, and says why (images, a GPU, the network, or
  the whole pipeline that other tests run).

A block without such a line fails the test, so a new snippet cannot go untested by accident.
Paths under ``/tmp/`` in a block are moved into the test's temporary folder, and ``source
.venv/bin/activate`` activates the environment running the tests when the checkout has no
``.venv`` of its own (CI's ``make test`` runs in ``.venv``, so there the line runs as written).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from _notebooks import REPO

BOOK = REPO / "book"
LANGUAGES = ("python", "bash")
MARKER = re.compile(r"^%\s*book-test:\s*(?P<mode>run|continue|skip)\b(?P<rest>.*)$")


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    language: str
    code: str
    mode: str  # run | continue | skip | missing
    options: dict[str, str]
    note: str
    caption: str = ""  # the visible caption of a ``{code-block}``

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"


def parse_blocks(path: Path) -> list[Block]:
    """The ``python`` and ``bash`` blocks of one page, each with its ``% book-test:`` marker."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = re.match(r"^(`{3,})\s*(?:\{code-block\}\s+)?(\w+)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        ticks, language = fence.group(1), fence.group(2)
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == ticks), None)
        if end is None:
            raise AssertionError(f"{path.name}:{i + 1}: code block never closed")
        if language in LANGUAGES:
            before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            found = MARKER.match(before.strip())
            mode, options, note = "missing", {}, ""
            if found:
                mode, rest = found.group("mode"), found.group("rest").strip()
                if mode == "skip":
                    note = rest.lstrip(":").strip()
                else:
                    words = rest.split("(", 1)
                    note = words[1].rstrip(")").strip() if len(words) > 1 else ""
                    options = dict(w.split("=", 1) for w in words[0].split() if "=" in w)
            body, caption = lines[i + 1 : end], ""
            while body and re.match(r"^:[\w-]+:", body[0]):  # a code-block's options
                if body[0].startswith(":caption:"):
                    caption = body[0].removeprefix(":caption:").strip().strip('"')
                body = body[1:]
            if body and not body[0].strip() and len(lines[i + 1 : end]) != len(body):
                body = body[1:]  # the blank line after the options
            code = "\n".join(body) + "\n"
            blocks.append(Block(path.name, i + 1, language, code, mode, options, note, caption))
        i = end + 1
    return blocks


def book_blocks() -> list[Block]:
    return [b for page in sorted(BOOK.glob("*.md")) for b in parse_blocks(page)]


# --- fixtures that prepare a block's folder ---------------------------------------------------


def own_model_files(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand-ins for 'your own model' (book/own_model.md), small enough to fit in seconds.

    ``things_features.npy`` (1854, 24): the VICE human embedding seen through a random linear
    map plus noise, so that a transform has something to align; ``contrast_features.npy``
    (400, 24): generic examples of the same "network" (fresh objects through the same map);
    ``train.npy``, ``val.npy``,
    ``test.npy``: object-disjoint splits of 30,000 triplets simulated from VICE. The page's
    ``things.triplets("all")`` downloads the THINGS-data triplets; here it returns these
    simulated triplets instead (the tests have no network).
    """
    from glocal import things
    from glocal.triplets import object_disjoint_folds, simulate_triplets

    rng = np.random.default_rng(0)
    vice = things.human_embedding()
    mixing = rng.normal(size=(vice.shape[1], 24)) / np.sqrt(vice.shape[1])
    X = vice @ mixing + 0.5 * rng.normal(size=(len(vice), 24))
    np.save(folder / "things_features.npy", X.astype(np.float32))
    # generic examples of the same network: fresh objects (VICE rows, rescaled and jittered)
    # seen through the same map with the same noise, not draws unrelated to X
    fresh = vice[rng.integers(0, len(vice), 400)] * rng.uniform(0.5, 1.5, (400, 1))
    fresh = np.clip(fresh + 0.05 * rng.normal(size=fresh.shape), 0, None)
    contrast = fresh @ mixing + 0.5 * rng.normal(size=(400, 24))
    np.save(folder / "contrast_features.npy", contrast.astype(np.float32))
    triplets = simulate_triplets(vice, 30_000, seed=0)
    fold = object_disjoint_folds(triplets, things.N_OBJECTS, n_folds=5, seed=0)[0]
    np.save(folder / "train.npy", fold.train[:-2000])
    np.save(folder / "val.npy", fold.train[-2000:])
    np.save(folder / "test.npy", fold.test)
    monkeypatch.setattr(things, "triplets", lambda split="all", source=None: triplets)


FIXTURES: dict[str, Callable[[Path, pytest.MonkeyPatch], None]] = {
    "own_model_files": own_model_files,
}


#: What a fresh shell of the recipe tests keeps from the test run: the cache the run uses
#: (CI's is empty and private), the offline switches of the models' libraries, and the import
#: path (a checkout tested with another checkout's environment imports its own code).
PASSED_THROUGH = ("GLOCAL_CACHE_DIR", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "PYTHONPATH")


def _activate(code: str, root: Path = REPO) -> str:
    """``source .venv/bin/activate`` as written when the checkout ``root`` has ``.venv``, else
    the environment that runs the tests."""
    if (root / ".venv" / "bin" / "activate").is_file():
        return code
    return code.replace("source .venv/bin/activate", f"source {Path(sys.prefix)}/bin/activate")


def plain_clone(target: Path) -> Path:
    """What a clone of this checkout holds (tracked files and untracked ones git does not
    ignore; no ``.venv``, caches or results), copied to ``target``, with no data folder beside
    it: the reader who clones the repository from a public host has no ``../shared``."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "-z"],
        capture_output=True,
        text=True,
    )
    if listed.returncode != 0:
        pytest.skip(f"{REPO} is not a git checkout: {listed.stderr.strip()}")
    for name in filter(None, listed.stdout.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(source.read_bytes())
    assert not (target.parent / "shared").exists()
    return target


def _local_paths(code: str, folder: Path, data_dir: Path) -> str:
    """/tmp/ paths into the test folder; the data mirror and cache of this test run."""
    from glocal.io import cache_dir

    code = _activate(code.replace("/tmp/", f"{folder}/"))
    code = re.sub(r"GLOCAL_DATA_DIR=\S+", f"GLOCAL_DATA_DIR={data_dir}", code)
    return re.sub(r"GLOCAL_CACHE_DIR=\S+", f"GLOCAL_CACHE_DIR={cache_dir()}", code)


# --- the tests -------------------------------------------------------------------------------


def test_every_block_says_how_it_is_tested() -> None:
    blocks = book_blocks()
    assert blocks, "book/*.md has no python or bash blocks"
    missing = [b.name for b in blocks if b.mode == "missing"]
    assert not missing, (
        f"code blocks without a '% book-test:' line before them: {missing}; add "
        "'% book-test: run' (or continue / skip: REASON) on the line before the block"
    )
    for b in blocks:
        assert b.mode != "skip" or len(b.note) > 10, f"{b.name}: a skip needs its reason"
        unknown = set(b.options) - {"with", "cwd", "shell"}
        assert not unknown, f"{b.name}: unknown book-test options {unknown}"
        assert b.options.get("with", next(iter(FIXTURES))) in FIXTURES, (
            f"{b.name}: no fixture {b.options['with']!r} in tests/test_book_snippets.py"
        )
        assert b.mode != "continue" or b.language == "python", f"{b.name}: continue is Python"
        assert b.options.get("cwd", "repo") == "repo", f"{b.name}: cwd=repo is the only choice"
        assert b.options.get("shell", "fresh") == "fresh", f"{b.name}: shell=fresh only"
        assert "shell" not in b.options or b.language == "bash", f"{b.name}: shell= is bash"


def test_every_block_shows_whether_the_tests_run_it() -> None:
    """The reader sees it too: each block is a ``{code-block}`` whose caption says "Run by the
    tests" (run, continue) or "Not run by the tests" (skip), matching the hidden marker."""
    wrong = [
        f"{b.name} ({b.mode}): {b.caption!r}"
        for b in book_blocks()
        if not b.caption.startswith(
            "Not run by the tests" if b.mode == "skip" else "Run by the tests"
        )
    ]
    assert not wrong, f"blocks whose visible caption does not match how they are tested: {wrong}"


def test_code_lines_fit_the_column() -> None:
    """No line of a chapter's code block hides behind a scrollbar (at most 90 characters)."""
    long = [
        f"{b.name}: {line}" for b in book_blocks() for line in b.code.splitlines() if len(line) > 90
    ]
    assert not long, long


def test_parse_blocks_reads_markers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "% book-test: skip: needs the network and a GPU\n```bash\necho no\n```\n\n"
        "% book-test: run with=own_model_files (a note)\n\n```python\nx = 1\n```\n"
        "```python\ny = 2\n```\n```json\n{}\n```\n"
        "% book-test: continue\n```{code-block} python\n"
        ':caption: "Run by the tests."\n\nz = 3\n```\n',
        encoding="utf-8",
    )
    blocks = parse_blocks(page)
    assert [b.mode for b in blocks] == ["skip", "run", "missing", "continue"]
    assert blocks[3].caption == "Run by the tests." and blocks[3].code == "z = 3\n"
    assert blocks[0].note == "needs the network and a GPU"
    assert blocks[1].options == {"with": "own_model_files"} and blocks[1].note == "a note"
    assert blocks[1].code == "x = 1\n" and blocks[1].line == 8


def _runs_here(block: Block) -> bool:
    return block.mode in ("run", "continue") and "shell" not in block.options


PAGES = sorted({b.page for b in book_blocks() if _runs_here(b)})
FRESH = [b for b in book_blocks() if b.options.get("shell") == "fresh"]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_page_blocks_run(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    """Run the page's blocks in order; a Python block continues the page's namespace on request."""
    blocks = [b for b in parse_blocks(BOOK / page) if _runs_here(b)]
    monkeypatch.setenv("GLOCAL_DATA_DIR", str(data_dir))
    bin_dir = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", bin_dir + os.pathsep + os.environ.get("PATH", ""))
    namespace: dict = {}
    prepared: set[str] = set()
    for block in blocks:
        folder = tmp_path / "work"
        folder.mkdir(exist_ok=True)
        fixture = block.options.get("with")
        if fixture and fixture not in prepared:
            FIXTURES[fixture](folder, monkeypatch)
            prepared.add(fixture)
        cwd = REPO if block.options.get("cwd") == "repo" else folder
        code = _local_paths(block.code, tmp_path, data_dir)
        monkeypatch.chdir(cwd)
        if block.language == "bash":
            proc = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", code],
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert proc.returncode == 0, (
                f"{block.name}: the shell block failed ({proc.returncode}):\n{code}\n"
                f"{proc.stderr[-3000:]}"
            )
            continue
        if block.mode == "run":
            namespace = {"__name__": "__book__"}
        try:
            exec(compile(code, block.name, "exec"), namespace)
        except Exception as err:  # noqa: BLE001 - report which block failed
            raise AssertionError(f"{block.name}: the Python block raised {err!r}") from err
    if page == "own_model.md":  # what the page says of its stand-in result
        table = namespace["table"].pivot_table(
            index="transform", columns="measurement", values="value", aggfunc="first"
        )
        assert (
            table.loc["gLocal", "neighbour_overlap"]
            > 0.75
            > table.loc["naive", "neighbour_overlap"]
        )
        leads = ["odd_one_out", "few_shot", "anomaly_detection", "rsa"]
        assert (table.loc["gLocal", leads] > table.loc["naive", leads]).all(), table


def _fresh_shell(code: str, cwd: Path, home: Path, **variables: str) -> subprocess.CompletedProcess:
    """``code`` in a new bash at ``cwd`` with nothing but HOME, a system PATH, the variables of
    :data:`PASSED_THROUGH` and ``variables`` (the way a reader pastes it: plain ``bash``, so
    the recipe itself must stop at the first failing command)."""
    env = {"HOME": os.environ.get("HOME", str(home)), "PATH": "/usr/local/bin:/usr/bin:/bin"}
    env.update({name: os.environ[name] for name in PASSED_THROUGH if name in os.environ})
    env.update(variables)
    return subprocess.run(
        ["bash", "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


@pytest.mark.slow
@pytest.mark.parametrize("where", ["repository", "plain clone"])
@pytest.mark.parametrize("block", FRESH, ids=[b.name for b in FRESH])
def test_shell_recipe_runs_from_a_fresh_shell(
    block: Block, where: str, tmp_path: Path, data_dir: Path
) -> None:
    """The recipe pasted into a new shell: it exits 0, writes every ``/tmp/`` path it names,
    and prints neither a traceback nor the kernel's TCP warning.

    Twice: at the root of this checkout, with ``GLOCAL_DATA_DIR`` given as a path relative to
    it (the recipe makes it absolute), and at the root of a plain clone that has no data folder
    beside it, the data given through the variable and the clone's own code imported.
    """
    variables = {}
    if where == "repository":
        root = REPO
        variables["GLOCAL_DATA_DIR"] = os.path.relpath(data_dir, REPO)
    else:
        root = plain_clone(tmp_path / "elsewhere" / "glocal")
        variables.update(GLOCAL_DATA_DIR=str(data_dir), PYTHONPATH=str(root))
    assert "set -euo pipefail" in block.code, f"{block.name}: a recipe stops at its first failure"
    code = _activate(block.code.replace("/tmp/", f"{tmp_path}/"), root)
    proc = _fresh_shell(code, root, tmp_path, **variables)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{block.name} failed ({proc.returncode}):\n{output[-3000:]}"
    assert "Traceback" not in output and "without encryption" not in output, output[-3000:]
    written = re.findall(r"/tmp/([\w.-]+)", block.code)
    assert written, f"{block.name}: the recipe writes nothing under /tmp/ to check"
    for name in written:
        path = tmp_path / name
        assert path.exists() and (path.is_file() or any(path.iterdir())), f"{path} is missing"


@pytest.mark.slow
@pytest.mark.parametrize("block", FRESH, ids=[b.name for b in FRESH])
def test_shell_recipe_stops_in_one_line_without_its_data_folder(
    block: Block, tmp_path: Path
) -> None:
    """``GLOCAL_DATA_DIR`` naming a folder that does not exist: the recipe stops before
    papermill with one line that names the variable and the folder, and exits non-zero."""
    missing = tmp_path / "no-such-data"
    code = _activate(block.code.replace("/tmp/", f"{tmp_path}/"))
    proc = _fresh_shell(code, REPO, tmp_path, GLOCAL_DATA_DIR=str(missing))
    assert proc.returncode != 0, proc.stdout + proc.stderr
    said = [line for line in proc.stderr.splitlines() if str(missing) in line]
    assert len(said) == 1 and "GLOCAL_DATA_DIR" in said[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert not list(tmp_path.glob("*.ipynb")), "papermill ran although the data folder is missing"


# --- what the pages quote from one place, and what the build writes for them ------------------

#: A build time typed into a page ("20 to 30 minutes ... on 2 cores", "~8 min on 2 cores").
TYPED_TIME = re.compile(
    r"\d+(?:\.\d+)?\s*(?:to\s*\d+(?:\.\d+)?\s*)?(?:minutes|min)\b[^\n]{0,60}\bcores?\b", re.I
)


@pytest.mark.parametrize("page", sorted(p.name for p in BOOK.glob("*.md")))
def test_pages_take_the_build_time_from_the_benchmark(page: str) -> None:
    """A page gives the quick build's time as ``{{ quick_time }}`` (read from the benchmark
    when the site is built), never as a number of its own."""
    typed = TYPED_TIME.findall((BOOK / page).read_text(encoding="utf-8"))
    assert not typed, f"book/{page} types a build time {typed}: write {{{{ quick_time }}}}"


def test_readme_quotes_the_benchmark_time() -> None:
    from companion.pipeline.book_build import book_substitutions, quick_build_time

    took = quick_build_time(REPO)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"{took['minutes']:.1f} minutes on {took['cores']} CPU cores" in readme
    assert f"{took['minutes']:.1f} minutes" in book_substitutions(REPO)["quick_time"]


def test_quick_build_time_reads_the_benchmark_or_says_what_is_wrong(tmp_path: Path) -> None:
    from companion.pipeline.book_build import QUICK_BENCHMARK, quick_build_time
    from glocal.errors import GlocalError

    bench = tmp_path / QUICK_BENCHMARK
    bench.parent.mkdir(parents=True)
    bench.write_text("vm, 4 CPUs, load 0.1; **Whole run 600 s (10.0 min)**\n", encoding="utf-8")
    assert quick_build_time(tmp_path) == {
        "seconds": 600.0, "minutes": 10.0, "cores": 4, "file": QUICK_BENCHMARK,
    }  # fmt: skip
    bench.write_text("the run took a while\n", encoding="utf-8")
    with pytest.raises(GlocalError, match="Whole run S s"):
        quick_build_time(tmp_path)


def test_method_page_folds_come_from_the_profiles() -> None:
    from companion.pipeline.book_build import book_substitutions
    from companion.pipeline.notebooks import notebook_parameters

    values = book_substitutions(REPO)
    quick = notebook_parameters("01_alignment_table", "quick")["selection"]
    assert values["cv_quick"] == str(quick["glocal"]["cv"])
    assert values["cv_paper"] == "3"  # no cv in the paper profile: GlocalSearchCV's default
    assert "{{ cv_quick }}" in (BOOK / "method.md").read_text(encoding="utf-8")


def test_citations_name_this_version() -> None:
    import yaml

    import glocal

    cff = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["version"] == glocal.__version__
    assert "2306.04507" in str(cff["preferred-citation"])
    assert f"version = {{{glocal.__version__}}}" in (BOOK / "citation.md").read_text("utf-8")


def _executed(path: Path, results: str, seconds: float | None) -> None:
    import json

    meta = {"papermill": {"parameters": {"profile": "quick", "results_dir": results},
                          "input_path": str(path.parent.parent / "nb" / path.name),
                          "end_time": "2026-01-02T03:04:05.678"}}  # fmt: skip
    if seconds is not None:
        meta["papermill"]["duration"] = seconds
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# A | page\n", "text"]}]
    path.write_text(json.dumps({"cells": cells, "metadata": meta, "nbformat": 4,
                                "nbformat_minor": 5}), encoding="utf-8")  # fmt: skip


def test_build_info_lists_run_times_versions_and_each_pages_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    import companion.pipeline.book_build as bb

    root, executed = tmp_path / "site", tmp_path / "executed"
    executed.mkdir(parents=True)
    results = tmp_path / "results" / "05_x"  # given relative to the notebook's folder
    results.mkdir(parents=True)
    (results / "table.csv").write_text("a,b\n1,2\n")
    (results / "figure.png").write_bytes(b"\x89PNG" + bytes(3000))
    (results / "items.csv").write_text("x\n" * 400)
    (results / "notes.txt").write_text("not a figure or table")
    _executed(executed / "05_x.ipynb", "../results/05_x", 183.4)
    _executed(executed / "06_y.ipynb", str(tmp_path / "nowhere"), None)
    monkeypatch.setattr(bb, "MAX_COPIED_BYTES", 500)
    records = bb.write_build_info(root, executed, ["05_x", "06_y"])

    files = {f["name"]: f for f in records["05_x"]["files"]}
    assert sorted(files) == ["figure.png", "items.csv", "table.csv"]
    assert [files[n]["copied"] for n in sorted(files)] == [False, False, True]
    copied = root / bb.PAGE_FILES / "05_x"
    assert sorted(p.name for p in copied.iterdir()) == ["table.csv"]
    assert (copied / "table.csv").read_text() == "a,b\n1,2\n"
    assert records["06_y"]["files"] == [] and records["06_y"]["seconds"] is None
    info = root / bb.BUILD_INFO
    runtimes = (info / "runtimes.md").read_text()
    assert (
        "| 5. [A \\| page](results/05_x.ipynb) | quick | 183 s (3.1 min) | 2026-01-02 03:04:05 |"
        in runtimes
    )
    assert "| 6. [A \\| page](results/06_y.ipynb) | quick | – |" in runtimes
    assert "| sum of the pages (run two at a time, they overlap) | | 183 s (3.1 min) | |" in (
        runtimes
    )
    versions = (info / "versions.md").read_text()
    assert "| `numpy` | " + np.__version__ + " |" in versions
    assert json.loads((info / "pages.json").read_text()) == records
    # a result file that is gone is gone from the site too; unchanged files keep their bytes
    before = (info / "versions.md").stat().st_mtime_ns
    (results / "table.csv").unlink()
    bb.write_build_info(root, executed, ["05_x", "06_y"])
    assert not (copied / "table.csv").exists()
    assert (info / "versions.md").stat().st_mtime_ns == before


def test_a_missing_file_names_the_data_variable_and_the_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What page 7 of the recipe lists for a transform it cannot find: the first clause of the
    error names ``GLOCAL_DATA_DIR`` and the cache folder searched."""
    from glocal import released

    monkeypatch.setenv("GLOCAL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GLOCAL_DATA_DIR", raising=False)
    reasons = {t.reason for t in released.locate_transforms(download=False)}
    assert len(reasons) == 12 and all(
        "GLOCAL_DATA_DIR (unset)" in r and str(tmp_path / "cache") in r for r in reasons
    ), reasons
    (tmp_path / "mirror").mkdir()
    monkeypatch.setenv("GLOCAL_DATA_DIR", str(tmp_path / "mirror"))
    (first, *_) = released.locate_transforms(download=False)
    assert f"GLOCAL_DATA_DIR={tmp_path / 'mirror'}" in first.reason, first.reason
