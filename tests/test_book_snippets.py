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


def _activate(code: str) -> str:
    """``source .venv/bin/activate`` as written when the checkout has ``.venv``, else the
    environment that runs the tests."""
    if (REPO / ".venv" / "bin" / "activate").is_file():
        return code
    return code.replace("source .venv/bin/activate", f"source {Path(sys.prefix)}/bin/activate")


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
        leads = ["odd_one_out", "few_shot", "anomaly_detection"]
        assert (table.loc["gLocal", leads] > table.loc["naive", leads]).all(), table
        assert table.loc["naive", "rsa"] > table.loc["gLocal", "rsa"], table


@pytest.mark.slow
@pytest.mark.parametrize("block", FRESH, ids=[b.name for b in FRESH])
def test_shell_recipe_runs_from_a_fresh_shell(block: Block, tmp_path: Path) -> None:
    """The recipe pasted into a new shell at the repository root: it exits 0, writes every
    ``/tmp/`` path it names, and prints neither a traceback nor the kernel's TCP warning."""
    code = _activate(block.code.replace("/tmp/", f"{tmp_path}/"))
    env = {"HOME": os.environ.get("HOME", str(tmp_path)), "PATH": "/usr/local/bin:/usr/bin:/bin"}
    env.update({name: os.environ[name] for name in PASSED_THROUGH if name in os.environ})
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{block.name} failed ({proc.returncode}):\n{output[-3000:]}"
    assert "Traceback" not in output and "without encryption" not in output, output[-3000:]
    written = re.findall(r"/tmp/([\w.-]+)", block.code)
    assert written, f"{block.name}: the recipe writes nothing under /tmp/ to check"
    for name in written:
        path = tmp_path / name
        assert path.exists() and (path.is_file() or any(path.iterdir())), f"{path} is missing"
