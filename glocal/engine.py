"""The execution engine: Dask distributed (a local cluster by default, any scheduler by address).

Work that outgrows one process (the hyper-parameter search's fits, sharded feature extraction)
is submitted here as tasks. ``Engine()`` starts a ``LocalCluster`` sized to the machine (one
worker per GPU when CUDA is present, else one single-threaded worker per core) and closes it on
exit; ``Engine("tcp://host:8786")`` or ``$GLOCAL_SCHEDULER`` uses a running cluster (SLURM via
dask-jobqueue, Kubernetes, ``dask scheduler`` + ``dask worker``); ``Engine("serial")`` runs
every task in this process, in submission order, without Dask.
"""

from __future__ import annotations

import ast
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack
from typing import Any

from glocal._syntax import parse
from glocal.errors import GlocalError

ENV_SCHEDULER = "GLOCAL_SCHEDULER"
SERIAL = "serial"
#: A log level above every record: Dask's own logs stay off the terminal.
_SILENT = logging.CRITICAL + 1
#: What a scheduler address looks like: ``PROTOCOL://HOST:PORT`` or ``HOST:PORT``.
_ADDRESS = re.compile(
    r"^(?:(?:tcp|tls|ucx|ws|wss)://)?\[?[A-Za-z0-9_.:-]+\]?:\d{1,5}$|^inproc://\S+$"
)


def check_scheduler(address: str, where: str = "scheduler") -> str:
    """``address`` if it is ``"serial"`` or looks like a Dask scheduler address, else a
    :class:`GlocalError` naming ``where`` the value came from and the accepted forms."""
    if address == SERIAL or _ADDRESS.match(address):
        return address
    raise GlocalError(
        f"{where} {address!r} is not a scheduler address: give 'serial', "
        "'tcp://HOST:PORT' (e.g. tcp://127.0.0.1:8786, as `dask scheduler` prints it) or "
        f"HOST:PORT, or leave it unset for a local cluster"
    )


class UnguardedScriptWarning(UserWarning):
    """The default engine runs serially: the calling script has no ``__main__`` guard."""


def unguarded_main_line() -> int | None:
    """The line of the running script that called us from module level outside an
    ``if __name__ == "__main__":`` block, or None.

    A local cluster starts worker processes that import the main script again; a call at
    the script's module level would then run again in every worker (and fail there).
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path:
        return None  # interactive sessions and notebooks are not re-imported by workers
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == "__main__":
            break
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return None
    line = frame.f_lineno
    try:
        # bytes: the parser honours the script's coding line (PEP 263), as Python did
        with open(path, "rb") as fh:
            tree = parse(fh.read())
    except (OSError, SyntaxError, ValueError):
        return None  # not Python source (a .pyc, a zip): nothing to say
    for node in tree.body:
        if isinstance(node, ast.If) and _is_main_guard(node.test):
            if node.lineno <= line <= (node.end_lineno or node.lineno):
                return None
    return line


def _is_main_guard(test: ast.expr) -> bool:
    if not isinstance(test, ast.Compare) or len(test.ops) != 1:
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    texts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return isinstance(test.ops[0], ast.Eq) and len(names) == 1 and len(texts) == 1


class _Done:
    """A finished task of the serial engine, with the interface of a Dask future."""

    def __init__(self, fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any], key: str):
        self.key = key
        self._value, self._error = None, None
        try:
            self._value = fn(*(_value_of(a) for a in args), **{
                k: _value_of(v) for k, v in kwargs.items()})  # fmt: skip
        except Exception as err:  # re-raised by result(), as a Dask future does
            self._error = err

    def result(self) -> Any:
        """The task's return value (or its exception, raised)."""
        if self._error is not None:
            raise self._error
        return self._value

    def done(self) -> bool:
        """Always True: serial tasks run when submitted."""
        return True


def _identity(value: Any) -> Any:
    return value


def _value_of(arg: Any) -> Any:
    return arg.result() if isinstance(arg, _Done) else arg


def _gpu_count() -> int:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


#: Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which makes glibc map and unmap every
#: large temporary: a torch fit then ran three times slower in a worker than in this process
#: (10.5 s vs 30.7 s for the same fit, measured here). glocal's clusters start without it.
_SLOW_FOR_TORCH = ("MALLOC_TRIM_THRESHOLD_",)


def worker_environment() -> dict[str, Any]:
    """Dask's environment for new worker processes, without what slows torch down."""
    import dask

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    return {k: v for k, v in environ.items() if k not in _SLOW_FOR_TORCH}


def _local_cluster(n_workers: int | None, threads_per_worker: int) -> Any:
    """A LocalCluster: one worker per GPU (each sees only its GPU), else one per core group."""
    import dask
    from distributed import LocalCluster, Nanny, Scheduler, SpecCluster

    gpus = _gpu_count()
    # read when the workers start, inside this block; non-daemonic workers may start processes
    # of their own (the data loaders of a feature extraction)
    settings = {
        "distributed.nanny.pre-spawn-environ": worker_environment(),
        "distributed.worker.daemon": False,
    }
    with dask.config.set(settings):
        if gpus and n_workers is None:
            workers = {
                f"gpu-{i}": {
                    "cls": Nanny,
                    "options": {
                        "nthreads": threads_per_worker,
                        "env": {"CUDA_VISIBLE_DEVICES": str(i)},
                    },
                }
                for i in range(gpus)
            }
            scheduler = {"cls": Scheduler, "options": {"dashboard_address": ":0"}}
            return SpecCluster(workers=workers, scheduler=scheduler, silence_logs=_SILENT)
        count = n_workers or max(1, (os.cpu_count() or 1) // threads_per_worker)
        return LocalCluster(
            n_workers=count, threads_per_worker=threads_per_worker, processes=True,
            dashboard_address=":0", silence_logs=_SILENT,
        )  # fmt: skip


class Engine:
    """Run tasks on Dask (or serially); use as a context manager.

    Parameters
    ----------
    scheduler : str or None, default=None
        None: ``$GLOCAL_SCHEDULER`` if set, else a new LocalCluster; ``"serial"``: no Dask,
        tasks run in this process; an address such as ``"tcp://host:8786"``: that cluster.
    n_workers : int or None, default=None
        Workers of a new LocalCluster (default: one per GPU, else ``cores // threads``).
    threads_per_worker : int, default=1
        Threads per worker of a new LocalCluster (torch uses this many threads per task).
    """

    def __init__(
        self,
        scheduler: str | None = None,
        *,
        n_workers: int | None = None,
        threads_per_worker: int = 1,
    ):
        if scheduler is None and os.environ.get(ENV_SCHEDULER):
            scheduler = check_scheduler(os.environ[ENV_SCHEDULER], f"${ENV_SCHEDULER}")
        elif scheduler is not None:
            check_scheduler(scheduler)
        if n_workers is not None and n_workers < 1:
            raise GlocalError(f"n_workers must be at least 1, got {n_workers}")
        if threads_per_worker < 1:
            raise GlocalError(f"threads_per_worker must be at least 1, got {threads_per_worker}")
        self.scheduler = scheduler
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self.client: Any = None
        self._cluster: Any = None
        self._quiet = ExitStack()

    @property
    def serial(self) -> bool:
        """True when tasks run in this process without Dask."""
        return self.scheduler == SERIAL

    def __enter__(self) -> Engine:
        if self.scheduler is None:
            line = unguarded_main_line()
            if line is not None:
                script = str(sys.modules["__main__"].__file__)
                warnings.warn_explicit(
                    f"glocal runs these tasks serially: line {line} of {script} starts them at "
                    "the script's top level, and a local cluster's workers would run the "
                    "script again; put that code under `if __name__ == '__main__':` to use "
                    "a local cluster",
                    UnguardedScriptWarning,
                    filename=script,
                    lineno=line,
                )
                self.scheduler = SERIAL
        if self.serial:
            return self
        self._quiet.enter_context(_QuietDaskLogs())
        try:
            from distributed import Client
        except ImportError as err:  # pragma: no cover - distributed is a dependency
            raise GlocalError(
                "the engine needs Dask: pip install 'dask[distributed]' (or use scheduler='serial')"
            ) from err
        if self.scheduler is None:
            self._cluster = _local_cluster(self.n_workers, self.threads_per_worker)
            self.client = Client(self._cluster)
        else:
            try:
                self.client = Client(self.scheduler, timeout="20s")
                self.client.wait_for_workers(1, timeout=120)
            except (OSError, TimeoutError) as err:
                self._quiet.close()
                raise GlocalError(
                    f"cannot use the Dask scheduler at {self.scheduler!r} ({err}); start it "
                    f"(`dask scheduler`) and at least one worker (`dask worker ADDRESS`), check "
                    f"the address, or unset {ENV_SCHEDULER}"
                ) from err
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.client is not None:
                self.client.close()
                self.client = None
            if self._cluster is not None:
                self._cluster.close()
                self._cluster = None
        except Exception:  # noqa: BLE001 - a lost cluster cannot be closed cleanly
            self.client = self._cluster = None
        finally:
            self._quiet.close()

    def describe(self) -> str:
        """One line: where the tasks run."""
        if self.serial:
            return "serial (this process)"
        if self.client is None:
            return f"not started ({self.scheduler or 'LocalCluster'})"
        workers = self.client.scheduler_info().get("workers", {})
        kind = "LocalCluster" if self._cluster is not None else self.scheduler
        return f"Dask {kind} with {len(workers)} workers"

    def put(self, value: Any, key: str) -> Any:
        """``value`` as a task result that other tasks take: sent to the cluster once, and
        recomputed from the task graph if the worker holding it is lost (scattered data would
        be lost with it)."""
        if self.serial:
            return value
        with warnings.catch_warnings():
            # Dask warns about any graph over 10 MB; sending the data once is the point here
            warnings.filterwarnings("ignore", message="Sending large graph")
            return self.client.submit(_identity, value, key=key, pure=False)

    def submit(self, fn: Callable[..., Any], *args: Any, key: str, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` as a task named ``key``; futures among the arguments are
        waited for (their results are passed in)."""
        if self.serial:
            return _Done(fn, args, kwargs, key)
        return self.client.submit(fn, *args, key=key, pure=False, **kwargs)

    def results(self, futures: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
        """``(name, result)`` of each of ``futures`` (by name) as it finishes.

        A task's own exception is raised as it is; a failure of the cluster (a lost
        scheduler, workers that keep dying) becomes one :class:`GlocalError` that names the
        scheduler, how many tasks had finished, and what to do.
        """
        name_of = {id(future): name for name, future in futures.items()}
        finished = 0
        try:
            for future in self.as_completed(futures.values()):
                result = future.result()
                finished += 1
                yield name_of[id(future)], result
        except Exception as err:
            if self.serial or isinstance(err, GlocalError) or not _is_cluster_failure(err):
                raise  # a task's own error (a user's mistake, a full disk) is reported as is
            where = self.scheduler or "the local cluster"
            raise GlocalError(
                f"the Dask cluster ({where}) failed after {finished} of {len(futures)} tasks "
                f"({type(err).__name__}: {' '.join(str(err).split())[:200]}); the finished "
                "tasks' results are cached: check that the scheduler and its workers are "
                "running (`dask scheduler`, `dask worker ADDRESS`) and run again"
            ) from None

    def as_completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        """The futures in the order they finish (submission order when serial)."""
        if self.serial:
            yield from futures
            return
        from distributed import as_completed

        # on this engine's own client's loop: Dask's default is the newest client of the
        # process, which may be another thread's engine, closed while these futures run
        yield from as_completed(list(futures), loop=self.client.loop)


def _is_cluster_failure(err: BaseException) -> bool:
    """True for Dask's errors about the cluster itself (not a task's own exception)."""
    import asyncio
    import concurrent.futures

    from distributed.client import FutureCancelledError
    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker

    kinds = (FutureCancelledError, CommClosedError, KilledWorker, asyncio.CancelledError,
             concurrent.futures.CancelledError, OSError, TimeoutError)  # fmt: skip
    if isinstance(err, OSError) and err.filename is not None:
        return False  # a file the task read or wrote, not the cluster
    return isinstance(err, kinds)


class _QuietDaskLogs:
    """Keep Dask's own log records (worker restarts, lost connections: tracebacks of dozens
    of lines) off the terminal while the engine runs; failures reach the user as one line."""

    NAMES = ("distributed", "tornado")

    def __enter__(self) -> None:
        self.levels = {}
        for name in self.NAMES:
            logger = logging.getLogger(name)
            self.levels[name] = logger.level
            logger.setLevel(_SILENT)

    def __exit__(self, *exc: object) -> None:
        for name, level in self.levels.items():
            logging.getLogger(name).setLevel(level)
