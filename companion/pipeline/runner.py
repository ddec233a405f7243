"""Run the result notebooks with papermill (cached by a content key) and build the book."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from companion.pipeline.notebooks import (
    Notebook,
    cache_key,
    check_parameters_cell,
    discover,
    load_parameters,
    notebook_code,
    own_parameters,
    read_notebook,
    select,
)
from glocal.errors import GlocalError
from glocal.io import absolute_env_paths, atomic_path, file_lock


@dataclass(frozen=True)
class Layout:
    """Where the runner reads and writes, all derived from the repository root by default."""

    root: Path
    notebooks_dir: Path
    executed_dir: Path
    results_dir: Path
    build_dir: Path

    @classmethod
    def create(
        cls,
        profile: str,
        root: str | os.PathLike | None = None,
        notebooks_dir: str | os.PathLike | None = None,
        executed_dir: str | os.PathLike | None = None,
        results_dir: str | os.PathLike | None = None,
        build_dir: str | os.PathLike | None = None,
    ) -> Layout:
        """Defaults: notebooks/, notebooks/executed/PROFILE, results/PROFILE, _build."""
        base = Path(root or Path.cwd()).resolve()

        def pick(value: str | os.PathLike | None, default: Path) -> Path:
            return Path(value).resolve() if value is not None else default

        notebooks = pick(notebooks_dir, base / "notebooks")
        return cls(
            root=base,
            notebooks_dir=notebooks,
            executed_dir=pick(executed_dir, notebooks / "executed" / profile),
            results_dir=pick(results_dir, base / "results" / profile),
            build_dir=pick(build_dir, base / "_build"),
        )


@dataclass
class Report:
    """What one reproduce run did: notebooks run or skipped, seconds each, the book's index,
    and the preparation of the profile's inputs (``companion.pipeline.plan.PrepareReport``)."""

    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    index: Path | None = None
    prepare: Any = None


def key_path(output: Path) -> Path:
    """``NN_slug.key.json`` beside the executed ``NN_slug.ipynb``."""
    return output.with_name(f"{output.stem}.key.json")


def _key_record(output: Path) -> dict[str, Any] | None:
    """The key recorded beside ``output``; None when either file is missing or unreadable."""
    record = key_path(output)
    if not (output.is_file() and record.is_file()):
        return None
    try:
        value = json.loads(record.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, OSError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def is_current(output: Path, key: dict[str, Any]) -> bool:
    """True when ``output`` is the file its run wrote for the cache key ``key``.

    The key record holds the sha256 of the executed notebook it describes, so a truncated or
    edited output (or one copied from another run) is not current and runs again.
    """
    record = _key_record(output)
    return (
        record is not None
        and record.get("key") == key["key"]
        and record.get("output_sha256") == _sha256(output)
    )


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def parameters_for(notebook: Notebook, profile: str, layout: Layout) -> dict[str, Any]:
    """What papermill injects: ``profile``, ``results_dir`` (results/PROFILE/NN_slug, an
    absolute path, so that it names the same folder whatever folder the kernel runs in) and
    ``overrides``, the profile's resolved parameters (:func:`load_parameters`)."""
    return {
        "profile": profile,
        "results_dir": str((layout.results_dir / notebook.name).resolve()),
        "overrides": load_parameters(notebook, profile),
    }


def _check_parameter_names(notebook: Notebook, profile: str, params: dict[str, Any]) -> None:
    """The parameters cell defines what the runner injects, and the notebook uses every
    parameter its own profile file sets (a misspelt name would otherwise pass unnoticed)."""
    import papermill

    _local_files_without_chdir()  # inspect_notebook reads through the same local handler
    known = papermill.inspect_notebook(str(notebook.path))
    missing = [name for name in params if name not in known]
    if missing:
        raise GlocalError(
            f"the parameters cell of {notebook.path} does not define {', '.join(missing)}, "
            f"which the runner sets; define {', '.join(missing)} there (see DEVELOPERS.md)"
        )
    code = notebook_code(read_notebook(notebook.path))
    unused = [name for name in own_parameters(notebook, profile) if not re.search(
        rf"\b{re.escape(name)}\b", code)]  # fmt: skip
    if unused:
        raise GlocalError(
            f"profile file {notebook.profile_file} sets {', '.join(unused)}, which "
            f"{notebook.path} never uses; fix the name or remove it"
        )


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def _local_files_without_chdir() -> None:
    """Make papermill read and write local files where their paths say, without ``os.chdir``.

    papermill's local file handler changes the process's folder, around every read and write
    (each cell's start and end), to the folder it saw when a run began, then back; with
    notebooks running in threads one thread's "back" undoes another's change, and the process
    was left in another folder (in CI: the repository root, where an earlier run in the same
    process had started). The handler only changes folder when a run has told it one
    (``cwd``), so it is told none: every path the runner passes is absolute.
    """
    from papermill.iorw import papermill_io

    handler = papermill_io.get_handler("local")
    handler.cwd = lambda new_path: None  # what papermill calls before each run
    handler._cwd = None  # a folder told before (an earlier run in this process) is forgotten


def execute(notebook: Notebook, params: dict[str, Any], output: Path, kernel: str) -> None:
    """Run ``notebook`` with papermill into ``output`` (temp file, then rename).

    On failure ``output`` is not written; the partial run is kept as ``NN_slug.failed.ipynb``
    and a :class:`GlocalError` names the notebook, cell and exception.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    _local_files_without_chdir()
    failed = output.with_name(f"{output.stem}.failed.ipynb")
    with atomic_path(output) as tmp:
        try:
            papermill.execute_notebook(
                str(notebook.path.resolve()),
                str(tmp.resolve()),
                parameters=params,
                kernel_name=kernel,
                progress_bar=False,
                log_output=False,
                # The kernel's folder, given to the kernel itself (nbclient's resources path).
                # Not papermill's cwd=, an os.chdir of the whole process that threads running
                # notebooks at once undo for each other (see _run_job).
                resources={"metadata": {"path": str(notebook.path.parent.resolve())}},
            )
        except PapermillExecutionError as err:
            os.replace(tmp, failed)
            raise GlocalError(
                f"notebook {notebook.path} failed in cell [{err.exec_count}] (cell index "
                f"{err.cell_index}): {err.ename}: {_first_line(err.evalue)}; the partial run is "
                f"in {failed}"
            ) from err
        except Exception as err:  # a dead kernel, a timeout, an unreadable notebook
            raise GlocalError(
                f"notebook {notebook.path} could not be run: {type(err).__name__}: "
                f"{_first_line(str(err))}"
            ) from err
    failed.unlink(missing_ok=True)


def _write_key(output: Path, key: dict[str, Any], notebook: Notebook, seconds: float) -> None:
    record = {
        **key,
        "notebook": str(notebook.path),
        "seconds": round(seconds, 2),
        "executed_at": time.time(),
        "output_sha256": _sha256(output),
    }
    with atomic_path(key_path(output)) as tmp:
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class _Job:
    notebook: Notebook
    params: dict[str, Any]
    key: dict[str, Any]
    output: Path
    force: bool = False
    #: When the run that planned this job began (``time.time()``).
    since: float = 0.0


def _done_elsewhere(job: _Job) -> bool:
    """True when the output is current and need not run: without ``force``, or with it when
    another run executed the notebook after this run began."""
    record = _key_record(job.output)
    if record is None or not is_current(job.output, job.key):
        return False
    executed_at = record.get("executed_at")
    return not job.force or (isinstance(executed_at, (int, float)) and executed_at >= job.since)


def remove_leftovers(output: Path) -> list[Path]:
    """Remove the temp files that a killed run left beside ``output``; return them.

    These are :func:`glocal.io.atomic_path`'s ``.NN_slug.ipynb.RANDOM.ipynb`` (the executed
    notebook being written) and ``.NN_slug.key.json.RANDOM.json`` (its key record). Every run
    writes them only while holding the notebook's lock, so the caller must hold it too: then
    no other run is writing one of them, and any that exist are a dead run's.
    """
    patterns = [
        re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]+{re.escape(target.suffix)}")
        for target in (output, key_path(output))
    ]
    try:
        names = os.listdir(output.parent)
    except FileNotFoundError:
        return []
    removed = []
    for name in names:
        if any(pattern.fullmatch(name) for pattern in patterns):
            path = output.parent / name
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _run_job(job: _Job, kernel: str) -> float | None:
    """Execute one notebook and record its key; return the seconds it took.

    Runs hold the notebook's lock (``NN_slug.ipynb.lock``) while executing it, so a second run
    of the same notebook (another ``glocal reproduce``) waits, then finds the key current and
    returns None instead of executing it again or deleting the first run's output. Holding
    it, a run first removes the temp files of a run that was killed (:func:`remove_leftovers`).

    Several of these run at once in threads, so nothing here may change or depend on the
    process's working folder (one folder shared by all threads): every path is absolute, and
    each kernel is told its own folder (:func:`execute`).
    """
    with file_lock(job.output):
        remove_leftovers(job.output)
        if _done_elsewhere(job):
            return None
        # From here the old output is stale: without a key it never counts as current.
        key_path(job.output).unlink(missing_ok=True)
        start = time.perf_counter()
        try:
            execute(job.notebook, job.params, job.output, kernel)
        except BaseException:
            job.output.unlink(missing_ok=True)  # a failed re-run leaves no executed notebook
            raise
        seconds = time.perf_counter() - start
        _write_key(job.output, job.key, job.notebook, seconds)
    return seconds


def _plan(
    profile: str, layout: Layout, only: list[str] | None, force: bool
) -> tuple[list[str], list[_Job]]:
    """Split the selected notebooks into current ones and jobs; check all input first."""
    since = time.time()
    current: list[str] = []
    jobs: list[_Job] = []
    for nb in select(discover(layout.notebooks_dir), only):
        params = parameters_for(nb, profile, layout)
        key = cache_key(nb, params)
        output = layout.executed_dir / f"{nb.name}.ipynb"
        if not force and is_current(output, key):
            current.append(nb.name)
            continue
        check_parameters_cell(read_notebook(nb.path), nb.path)
        _check_parameter_names(nb, profile, params)
        jobs.append(_Job(nb, params, key, output, force=force, since=since))
    return current, jobs


def run_notebooks(
    profile: str,
    layout: Layout,
    only: list[str] | None = None,
    force: bool = False,
    jobs: int = 1,
) -> Report:
    """Run the selected notebooks whose cache key changed (all with ``force``).

    Every profile, key and parameters cell is checked before the first kernel starts, and no
    kernel starts when every key is current. With ``jobs > 1`` that many notebooks run at once;
    after a failure no new one starts, and the first failure is raised.
    """
    if jobs < 1:
        raise GlocalError(f"--jobs {jobs}: expected a positive number of parallel notebooks")
    _local_files_without_chdir()  # before the plan's first read of a notebook through papermill
    current, todo = _plan(profile, layout, only, force)
    report = Report(skipped=current)
    if not todo:
        return report
    # Kernels run in notebooks/: a relative GLOCAL_DATA_DIR given here would point elsewhere.
    absolute_env_paths()
    from companion.pipeline.kernel import kernel_name

    kernel = kernel_name()
    bar = tqdm(total=len(todo), desc=f"notebooks ({profile})", unit="nb", file=sys.stderr)

    def done(job: _Job, seconds: float | None) -> None:
        name = job.notebook.name
        if seconds is None:
            report.skipped.append(name)
            tqdm.write(f"{name} is up to date (another run executed it)", file=sys.stderr)
        else:
            report.ran.append(name)
            report.seconds[name] = seconds
            tqdm.write(f"ran {name} in {seconds:.1f} s -> {job.output}", file=sys.stderr)
        bar.update()

    try:
        if jobs == 1:
            for job in todo:
                bar.set_postfix_str(job.notebook.name)
                done(job, _run_job(job, kernel))
        else:
            with _threads(kernel_threads(jobs)):
                _run_parallel(todo, kernel, jobs, done)
    finally:
        bar.close()
    report.ran.sort()
    report.skipped.sort()
    return report


def _run_parallel(
    todo: list[_Job], kernel: str, jobs: int, done: Callable[[_Job, float | None], None]
) -> None:
    """Run ``todo`` in ``jobs`` threads (each notebook has its own kernel process)."""
    failures: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(_run_job, job, kernel): job for job in todo}
        for future in as_completed(futures):
            try:
                done(futures[future], future.result())
            except BaseException as err:  # stop starting new notebooks, then report the first
                failures.append(err)
                for pending in futures:
                    pending.cancel()
    errors = [err for err in failures if not isinstance(err, CancelledError)]
    if errors:
        raise errors[0]


def reproduce(
    profile: str = "quick",
    only: list[str] | None = None,
    force: bool = False,
    book: bool = True,
    run: bool = True,
    layout: Layout | None = None,
    jobs: int = 1,
    prepare: bool = True,
) -> Report:
    """Prepare the inputs of ``profile``, run its notebooks (cached) and build the book from
    their executed copies.

    A profile with an entry in ``notebooks/profiles/prepare.json`` (paper, smoke) is prepared
    first (:mod:`companion.pipeline.plan`): data fetched, missing feature stores extracted in
    shards on one Dask engine, notebook 01's searches and fits run; the notebooks then submit
    their own searches to the same engine (``$GLOCAL_SCHEDULER`` is set to it while they run).
    """
    layout = layout or Layout.create(profile)
    if run and prepare:
        from companion.pipeline.plan import load_settings

        settings = load_settings(layout.notebooks_dir, profile)
        if settings is not None:
            with _prepared(profile, layout, only, settings) as prep:
                report = run_notebooks(profile, layout, only, force, jobs)
                report.prepare = prep
        else:
            report = run_notebooks(profile, layout, only, force, jobs)
    else:
        report = run_notebooks(profile, layout, only, force, jobs) if run else Report()
    if book:
        from companion.pipeline.book_build import build_book

        report.index = build_book(
            layout.root, layout.executed_dir, layout.build_dir, profile=profile, force=force
        )
    return report


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def kernel_threads(jobs: int, cores: int | None = None) -> int | None:
    """CPU threads for each of ``jobs`` notebook kernels running at once: the cores shared out
    (at least 1); None (each kernel keeps the default) for one job or when the thread count is
    already set in the environment (``OMP_NUM_THREADS`` and friends, or a profile's ``threads``).

    Each kernel's torch otherwise starts one thread per core, and kernels running at once
    oversubscribe the cores.
    """
    if jobs <= 1 or any(os.environ.get(name) for name in THREAD_VARIABLES):
        return None
    return max(1, (cores or os.cpu_count() or 1) // jobs)


@contextlib.contextmanager
def _threads(threads: int | None) -> Iterator[None]:
    """Run this process, and the kernels and workers it starts, on ``threads`` CPU threads."""
    if not threads:
        yield
        return
    import torch

    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    before = torch.get_num_threads()
    os.environ.update({name: str(threads) for name in THREAD_VARIABLES})
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _prepared(profile: str, layout: Layout, only: list[str] | None, settings: Any) -> Iterator[Any]:
    """Start the engine, prepare the profile's inputs on it, and keep it (and
    ``$GLOCAL_SCHEDULER`` pointing at it) for the notebooks; close it afterwards."""
    from companion.pipeline.plan import make_plan, prepare
    from glocal.engine import ENV_SCHEDULER, Engine

    logging.getLogger("distributed").setLevel(logging.ERROR)
    began = time.perf_counter()
    with _threads(settings.threads), Engine(settings.scheduler) as engine:
        previous = os.environ.get(ENV_SCHEDULER)
        if not engine.serial:
            os.environ[ENV_SCHEDULER] = engine.client.scheduler.address
        try:
            print(f"prepare ({profile}): engine {engine.describe()}", file=sys.stderr)
            plan = make_plan(profile, layout.notebooks_dir, layout.executed_dir, only=only)
            prep = prepare(plan, engine)
            parts = ", ".join(f"{k} {v:.1f} s" for k, v in prep.seconds.items())
            print(
                f"prepare ({profile}): {len(prep.fetched)} files fetched, "
                f"{len(prep.extracted)} feature stores extracted ({prep.items} items); {parts}; "
                f"{time.perf_counter() - began:.1f} s",
                file=sys.stderr,
            )
            yield prep
        finally:
            if previous is None:
                os.environ.pop(ENV_SCHEDULER, None)
            else:
                os.environ[ENV_SCHEDULER] = previous


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m companion``: the same as ``glocal reproduce``."""
    from glocal.cli import main as cli_main

    return cli_main(["reproduce", *(sys.argv[1:] if argv is None else argv)])
