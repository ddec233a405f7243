"""The execution engine: Dask distributed (a local cluster by default, any scheduler by address).

Work that outgrows one process (the hyper-parameter search's fits, sharded feature extraction)
is submitted here as tasks. ``Engine()`` starts a ``LocalCluster`` sized to the machine (one
worker per GPU when CUDA is present, else one single-threaded worker per core) and closes it on
exit; ``Engine("tcp://host:8786")`` or ``$GLOCAL_SCHEDULER`` uses a running cluster (SLURM via
dask-jobqueue, Kubernetes, ``dask scheduler`` + ``dask worker``); ``Engine("serial")`` runs
every task in this process, in submission order, without Dask.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from glocal.errors import GlocalError

ENV_SCHEDULER = "GLOCAL_SCHEDULER"
SERIAL = "serial"


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
            return SpecCluster(workers=workers, scheduler=scheduler, silence_logs=40)
        count = n_workers or max(1, (os.cpu_count() or 1) // threads_per_worker)
        return LocalCluster(
            n_workers=count, threads_per_worker=threads_per_worker, processes=True,
            dashboard_address=":0", silence_logs=40,
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
        if scheduler is None:
            scheduler = os.environ.get(ENV_SCHEDULER) or None
        if n_workers is not None and n_workers < 1:
            raise GlocalError(f"n_workers must be at least 1, got {n_workers}")
        if threads_per_worker < 1:
            raise GlocalError(f"threads_per_worker must be at least 1, got {threads_per_worker}")
        self.scheduler = scheduler
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self.client: Any = None
        self._cluster: Any = None

    @property
    def serial(self) -> bool:
        """True when tasks run in this process without Dask."""
        return self.scheduler == SERIAL

    def __enter__(self) -> Engine:
        if self.serial:
            return self
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
                raise GlocalError(
                    f"cannot use the Dask scheduler at {self.scheduler!r} ({err}); start it "
                    f"(`dask scheduler`) and at least one worker (`dask worker ADDRESS`), check "
                    f"the address, or unset {ENV_SCHEDULER}"
                ) from err
        return self

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

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

    def as_completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        """The futures in the order they finish (submission order when serial)."""
        if self.serial:
            yield from futures
            return
        from distributed import as_completed

        yield from as_completed(list(futures))
