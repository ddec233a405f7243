"""Sharded extraction: a source's items in shards, each a task of the execution engine.

A large source (ImageNet, CIFAR, SUN397) is cut into shards of ``shard_size`` items. Each
shard is extracted by :func:`glocal.features.extract_features` into its own small store
(``SPLIT.h5.shards/NNNNN-of-MMMMM.h5``): written in resumable chunks, locked, finished by an
atomic rename. Shards run as tasks of :class:`glocal.engine.Engine` (one GPU per worker on a
multi-GPU machine, any Dask cluster by address, or serially), and a worker keeps its model
between shards. When every shard is finished they are joined into the one store that
:func:`extract_features` would have written (same path, same provenance, checksummed, renamed
into place atomically) and the shard files are removed. A killed run loses at most the chunk
each worker was writing: finished shards are kept, unfinished ones resume.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from glocal._params import verbose_level
from glocal.errors import DamagedCacheWarning, GlocalError
from glocal.features.encoder import FeatureModel, load_model
from glocal.features.extract import (
    ExtractionPlan,
    extract_features,
    finished_store,
    plan_extraction,
)
from glocal.features.models import ModelConfig
from glocal.features.sources import Source
from glocal.features.store import (
    REEXTRACT,
    FeatureStore,
    create_partial,
    finish_partial,
    partial_path,
    write_chunk,
)
from glocal.io import check_writable, file_lock

SHARDS_SUFFIX = ".shards"
#: Provenance fields taken from the first shard (what made the features, not which items).
MODEL_FIELDS = (
    "library", "architecture", "pretrained", "take", "input", "preprocessing", "autocast",
    "versions", "device",
)  # fmt: skip


class ShardSource(Source):
    """Items ``start..stop-1`` of another source, with its name, split, kind and classes."""

    def __init__(self, parent: Source, start: int, stop: int):
        if not 0 <= start < stop <= len(parent):
            raise GlocalError(f"shard [{start}, {stop}) is outside the {len(parent)} items")
        self.parent, self.start, self.stop = parent, start, stop
        self.name, self.split, self.kind = parent.name, parent.split, parent.kind
        self.classes = parent.classes

    def __len__(self) -> int:
        return self.stop - self.start

    def ids(self) -> list[str]:
        return self.parent.ids()[self.start : self.stop]

    def get(self, index: int) -> tuple[Any, int]:
        return self.parent.get(self.start + index)

    def describe(self) -> str:
        return f"items {self.start}..{self.stop - 1} of {self.parent.describe()}"

    def content_digest(self) -> str:
        whole = self.parent.content_digest()
        kind = whole.partition(":")[0]
        tag = hashlib.sha256(f"{whole}|{self.start}:{self.stop}".encode()).hexdigest()
        return f"{kind}:{tag}"


def shards_dir(final: str | os.PathLike) -> Path:
    """The folder beside a store that holds its shards: ``SPLIT.h5.shards``."""
    final = Path(final)
    return final.with_name(final.name + SHARDS_SUFFIX)


def drop_leftover_shards(final: str | os.PathLike) -> bool:
    """Remove the shards folder of a finished store; True when there was one.

    The join publishes the store first and removes its shards after, so a run killed in
    between leaves a finished store with a full copy of its features beside it; whoever next
    finds the store finished removes them.
    """
    folder = shards_dir(final)
    if not folder.exists() or not Path(final).is_file():
        return False
    shutil.rmtree(folder, ignore_errors=True)
    return True


def shard_ranges(n: int, shard_size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of every shard: ``ceil(n / shard_size)`` nearly equal parts."""
    if shard_size < 1:
        raise GlocalError(f"shard_size must be a positive number of items, got {shard_size}")
    k = max(1, math.ceil(n / shard_size))
    bounds = np.linspace(0, n, k + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def shard_path(final: Path, index: int, count: int) -> Path:
    """The store of shard ``index`` of ``count``."""
    return shards_dir(final) / f"{index:05d}-of-{count:05d}.h5"


#: The model a worker built for its last shard, reused by its next one.
_MODEL: dict[str, Any] = {}


def _model(config: ModelConfig, pretrained: bool, seed: int, device: str) -> FeatureModel:
    key = f"{config.to_dict()}|{pretrained}|{seed}|{device}"
    if _MODEL.get("key") != key:
        _MODEL.clear()
        _MODEL.update(key=key, model=load_model(config, pretrained=pretrained, device=device,
                                                seed=seed))  # fmt: skip
    return _MODEL["model"]


def extract_shard(
    config: ModelConfig,
    source: Source,
    start: int,
    stop: int,
    out: str,
    options: dict[str, Any],
) -> dict[str, Any]:
    """One task: extract items ``start..stop-1`` of ``source`` into the shard store ``out``.

    Returns the shard's path, item count and seconds (0 when it was already finished).
    """
    import torch

    began = time.perf_counter()
    threads = options.get("threads")
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        path = Path(out)
        done = path.is_file()
        fmodel = (
            None
            if done
            else _model(config, options["pretrained"], options["seed"], options["device"])
        )
        extract_features(
            fmodel if fmodel is not None else config,
            ShardSource(source, start, stop),
            out=path,
            pretrained=options["pretrained"],
            seed=options["seed"],
            batch_size=options["batch_size"],
            num_workers=options["num_workers"],
            device=options["device"],
            amp=options["amp"],
            dtype=options["dtype"],
            chunk_size=options["chunk_size"],
            verbose=0,
        )
    finally:
        torch.set_num_threads(previous)
    return {"path": str(out), "n": stop - start, "seconds": 0.0 if done else
            time.perf_counter() - began}  # fmt: skip


def _usable_shard(part: Path, plan: ExtractionPlan, rows: tuple[int, int]) -> bool:
    """True for a finished shard store holding its items; a damaged one is removed (with a
    :class:`~glocal.errors.DamagedCacheWarning`) so that it is extracted again."""
    if not part.is_file():
        return False
    start, stop = rows
    try:
        store = FeatureStore.open(part)
        if store.ids() == plan.ids[start:stop]:
            return True
        why = f"it does not hold items {start}..{stop - 1}"
    except GlocalError as err:  # the store's own advice (--overwrite) does not apply here
        why = str(err).replace(f"; {REEXTRACT}", "")
    with file_lock(part):
        part.unlink(missing_ok=True)
    warnings.warn(
        f"shard {part} of {plan.final} was removed and is extracted again: {why}",
        DamagedCacheWarning,
        stacklevel=3,
    )
    return False


def _join(plan: ExtractionPlan, parts: list[Path], dtype: str, chunk_size: int) -> FeatureStore:
    """Join finished shard stores into the plan's store (atomic rename), then drop them."""
    import h5py

    final = plan.final
    with file_lock(final):
        if final.exists():
            store = finished_store(plan)
            if store is not None:
                drop_leftover_shards(final)
                return store
        first = FeatureStore.open(parts[0])
        record = {**plan.record, **{k: first.metadata.get(k) for k in MODEL_FIELDS}}
        record["shards"] = len(parts)
        partial = partial_path(final)
        create_partial(partial, record, plan.ids, plan.source.classes)
        row, seconds = 0, 0.0
        for part in parts:
            store = FeatureStore.open(part)
            if store.ids() != plan.ids[row : row + store.n]:
                raise GlocalError(f"shard {part} does not hold items {row}.. of {final}; delete it")
            with h5py.File(part, "r") as fh:
                features, labels = fh["features"][...], fh["labels"][...]
            write_chunk(partial, row, features, labels, dtype, chunk_size)
            row += store.n
            seconds += float(store.metadata.get("seconds") or 0.0)
        if row != len(plan.ids):
            raise GlocalError(f"the shards of {final} hold {row} of {len(plan.ids)} items")
        finish_partial(partial, final, {
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "resumed_from": 0,
            "seconds": round(seconds, 3),
            "items_per_second": round(row / seconds, 3) if seconds > 0 else None,
        })  # fmt: skip
    drop_leftover_shards(final)
    return FeatureStore.open(final)


def extract_sharded(
    model: str | ModelConfig,
    source: str | os.PathLike | Source,
    *,
    shard_size: int = 10_000,
    engine: Any = None,
    scheduler: str | None = None,
    out: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    module: str | None = None,
    pretrained: bool = True,
    seed: int = 0,
    split: str | None = None,
    dataset: str | None = None,
    batch_size: int = 64,
    num_workers: int | None = None,
    device: str = "auto",
    amp: bool | None = None,
    dtype: str = "float32",
    chunk_size: int = 1024,
    verbose: int = 1,
    progress: bool | None = None,
) -> FeatureStore:
    """:func:`extract_features` with the items split into shards run on the execution engine.

    ``engine``: a started :class:`glocal.engine.Engine` to submit to (shared with other work);
    without it one is started for ``scheduler`` (None: ``$GLOCAL_SCHEDULER`` or a new
    LocalCluster, one worker per GPU or per core; ``"serial"``: this process). The result is the
    store :func:`extract_features` would write for the same arguments; a finished matching store
    is returned at once, a stale one raises (re-extract it with ``extract_features(...,
    overwrite=True)``).

    Finished shards are kept between runs: a rerun extracts only the missing ones, then joins
    them all and removes the shard files.

    Parameters
    ----------
    model : str or ModelConfig
        A registered name (with ``module``) or a ``ModelConfig``.
    source : str, path-like or Source
        A :class:`Source` or a spec string (see ``glocal.features.sources.SOURCE_FORMS``).
    shard_size : int, default=10_000
        Items per shard, at least 1: the items are cut into ``ceil(n / shard_size)`` nearly
        equal shards.
    engine : Engine or None, default=None
        A started engine to submit the shards to.
    scheduler : str or None, default=None
        Scheduler of the engine started without ``engine`` (see above).
    out : str, path-like or None, default=None
        The ``.h5`` file to write (default: as in :func:`extract_features`); the shards are
        written in the folder ``OUT.shards`` beside it.
    cache_dir : str, path-like or None, default=None
        The folder of the default ``out``.
    module : str or None, default=None
        The module of a model given by name (None: its first registered module).
    pretrained : bool, default=True
        Load the pretrained weights; ``False``: random weights initialised from ``seed``.
    seed : int, default=0
        Seed of the random weights.
    split : str or None, default=None
        Split name of the store (None: the source's), as in :func:`extract_features`.
    dataset : str or None, default=None
        Dataset name of the store (None: the source's name).
    batch_size : int, default=64
        Items per forward pass.
    num_workers : int or None, default=None
        Data-loader worker processes of each shard, as in :func:`extract_features`.
    device : str, default="auto"
        Torch device each task loads the model on (``"auto"``: CUDA when present).
    amp : bool or None, default=None
        fp16 autocast on CUDA (None: on there).
    dtype : {"float32", "float16"}, default="float32"
        Storage dtype of the features.
    chunk_size : int, default=1024
        Rows written per commit in each shard, as in :func:`extract_features`.
    verbose : int, default=1
        0: quiet; 1 or more: a progress bar over the items of all shards.
    progress : bool or None, default=None
        Deprecated name of ``verbose`` (``True`` is 1): accepted for one release, with a
        :class:`FutureWarning`.

    Returns
    -------
    FeatureStore
        The finished store, the one :func:`extract_features` would write.

    Raises
    ------
    GlocalError
        For an unknown ``dtype``, model or module, a source spec that is not understood, a
        model whose input (image or text) is not the source's, a stale finished store, a store
        path that cannot be written, ``shard_size`` below 1, or a shard store that does not
        hold its items.
    """
    verbose = verbose_level(verbose, progress, "extract_sharded")
    plan = plan_extraction(
        model, source, out=out, cache_dir=cache_dir, module=module, pretrained=pretrained,
        seed=seed, split=split, dataset=dataset, dtype=dtype,
    )  # fmt: skip
    store = finished_store(plan)
    if store is not None:
        drop_leftover_shards(plan.final)
        return store
    check_writable(plan.final, "feature store (in the cache; set GLOCAL_CACHE_DIR)")
    ranges = shard_ranges(len(plan.ids), shard_size)
    parts = [shard_path(plan.final, i, len(ranges)) for i in range(len(ranges))]
    options = {
        "pretrained": plan.pretrained, "seed": plan.seed, "batch_size": batch_size,
        "num_workers": num_workers, "device": device, "amp": amp, "dtype": dtype,
        "chunk_size": chunk_size,
    }  # fmt: skip
    todo = [i for i, part in enumerate(parts) if not _usable_shard(part, plan, ranges[i])]
    if todo:
        _run_shards(plan, ranges, parts, todo, options, engine, scheduler, bool(verbose))
    return _join(plan, parts, dtype, chunk_size)


def _run_shards(
    plan: ExtractionPlan,
    ranges: list[tuple[int, int]],
    parts: list[Path],
    todo: list[int],
    options: dict[str, Any],
    engine: Any,
    scheduler: str | None,
    progress: bool,
) -> None:
    """Submit the unfinished shards as tasks and wait for them, with a progress bar."""
    from contextlib import nullcontext

    from tqdm import tqdm

    from glocal.engine import Engine

    own = engine is None
    context: Any = nullcontext(engine) if not own else Engine(scheduler)
    label = f"{plan.config.key} on {plan.record['dataset']}/{plan.record['split']}"
    done_items = sum(b - a for i, (a, b) in enumerate(ranges) if i not in todo)
    unit = "img" if plan.source.kind == "image" else "text"
    bar = tqdm(total=len(plan.ids), initial=done_items, desc=label, unit=unit,
               disable=not progress, smoothing=0.1)  # fmt: skip
    try:
        with context as running:
            assert isinstance(running, Engine)
            threads = None if running.serial else running.threads_per_worker
            tag = hashlib.sha256(str(plan.final).encode()).hexdigest()[:12]
            source = running.put(plan.source, key=f"glocal-source-{tag}")
            futures = [
                running.submit(
                    extract_shard,
                    plan.config,
                    source,
                    ranges[i][0],
                    ranges[i][1],
                    str(parts[i]),
                    {**options, "threads": threads},
                    key=f"glocal-shard-{tag}-{i:05d}",
                )  # fmt: skip
                for i in todo
            ]
            for future in running.as_completed(futures):
                result = future.result()
                bar.update(result["n"])
                bar.set_postfix_str(Path(result["path"]).name)
    finally:
        bar.close()
