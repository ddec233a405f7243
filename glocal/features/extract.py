"""``extract_features``: run a model over a source into a resumable, provenance-stamped store.

Concurrency: a writer holds ``glocal.io.file_lock(final)`` (the file ``SPLIT.h5.lock``) from
before it loads the model until the finished store has been renamed into place, and re-checks
for a finished store after acquiring it. Of two processes asking for the same store, one
extracts, the other waits and then returns the store the first one wrote.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import multiprocessing
import os
import platform
import time
import warnings
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glocal._device import resolve_device
from glocal._params import verbose_level
from glocal.errors import DamagedCacheWarning, GlocalError
from glocal.features.encoder import FeatureModel, load_model
from glocal.features.models import ModelConfig, get_config
from glocal.features.sources import Source, resolve_source
from glocal.features.store import (
    DTYPES,
    REEXTRACT,
    FeatureStore,
    create_partial,
    finish_partial,
    model_folder,
    partial_path,
    read_provenance,
    store_path,
    verified_rows,
    write_chunk,
)
from glocal.io import check_writable, file_lock

#: Provenance fields that must agree for a finished store to be reused as is.
IDENTITY_KEYS = (
    "model",
    "module",
    "weights",
    "seed",
    "config_sha256",
    "dtype",
    "dataset",
    "split",
    "n_items",
    "source_sha256",
    "source_digest",
)
#: ... and for an unfinished store to be continued (mixing these within a file is wrong).
RESUME_KEYS = IDENTITY_KEYS + ("preprocessing", "versions", "autocast")

VERSION_PACKAGES = (
    "glocal",
    "torch",
    "torchvision",
    "open_clip_torch",
    "timm",
    "sentence-transformers",
    "transformers",
    "numpy",
    "h5py",
    "pillow",
)


def library_versions() -> dict[str, str]:
    """Installed versions of the packages that shape the features (missing ones left out)."""
    versions = {"python": platform.python_version()}
    for package in VERSION_PACKAGES:
        try:
            versions[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


class _Items(torch.utils.data.Dataset):
    """Items ``start..n-1`` of a source, preprocessed, as (index, input, label)."""

    def __init__(self, source: Source, preprocess: Any, start: int):
        self.source, self.preprocess, self.start = source, preprocess, start

    def __len__(self) -> int:
        return len(self.source) - self.start

    def __getitem__(self, k: int) -> tuple[int, Any, int]:
        index = self.start + k
        item, label = self.source.get(index)
        return index, (self.preprocess(item) if self.preprocess is not None else item), label


def _differences(want: dict[str, Any], have: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    return [k for k in keys if want.get(k) != have.get(k)]


_DIGEST_KINDS = {
    "content": "the image files' contents differ",
    "stat": "the image files' sizes or modification times differ",
    "texts": "the texts differ",
}


def _describe_change(key: str, stored: Any, asked: Any) -> str:
    """One phrase saying what changed between a stored provenance value and the asked one."""
    if key == "source_digest":
        kind = str(asked).partition(":")[0]
        why = _DIGEST_KINDS.get(kind, f"its {kind} digest differs")
        return f"the source changed since the extraction ({why}: stored {stored}, now {asked})"
    if key == "config_sha256":
        return f"the model config changed (sha256 stored {stored}, now {asked})"
    if key == "source_sha256":
        return f"the source's items changed (sha256 of the ids stored {stored}, now {asked})"
    return f"{key}: stored {stored!r}, asked {asked!r}"


def _reusable(final: Path, plan: dict[str, Any]) -> tuple[FeatureStore, list[str]]:
    """Open (and verify) the finished store at ``final``; list how it differs from ``plan``."""
    store = FeatureStore.open(final)
    changes = [
        _describe_change(k, store.metadata.get(k), plan.get(k))
        for k in _differences(plan, store.metadata, IDENTITY_KEYS)
    ]
    return store, changes


def _reuse_or_refuse(final: Path, plan: dict[str, Any]) -> FeatureStore:
    """The finished store at ``final`` if it matches ``plan``; else a ``GlocalError`` saying
    what changed and to pass ``--overwrite``."""
    store, changes = _reusable(final, plan)
    if changes:
        raise GlocalError(
            f"feature store {final} is stale or was made with other settings: "
            f"{'; '.join(changes)}; {REEXTRACT} (or write to another out path)"
        )
    return store


def _signature(path: Path) -> tuple[int, int, int] | None:
    """Inode, mtime and size of ``path``: tells whether another process replaced it."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _auto_workers(source: Source, batch_size: int) -> int:
    if source.kind == "text" or len(source) <= batch_size:
        return 0
    return max(0, min(8, (os.cpu_count() or 1) - 1))


@dataclass(frozen=True)
class ExtractionPlan:
    """What one extraction writes: the model config and weights, the source, the store path
    and the provenance fields every store of these items must agree on (``record``)."""

    config: ModelConfig
    source: Source
    pretrained: bool
    seed: int
    final: Path
    record: dict[str, Any]
    ids: list[str]
    loaded: FeatureModel | None = None

    @property
    def model_id(self) -> str:
        """The store's model folder: the name, plus ``@random-seedN`` for random weights."""
        return model_folder(self.config.name, self.pretrained, self.seed)


def plan_extraction(
    model: str | ModelConfig | FeatureModel,
    source: str | os.PathLike | Source,
    *,
    out: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    module: str | None = None,
    pretrained: bool = True,
    seed: int = 0,
    split: str | None = None,
    dataset: str | None = None,
    dtype: str = "float32",
) -> ExtractionPlan:
    """Resolve the model, source and store path of an extraction without running it."""
    if dtype not in DTYPES:
        raise GlocalError(f"dtype {dtype!r} is not one of {DTYPES}")
    src = resolve_source(source, split=split)
    loaded = model if isinstance(model, FeatureModel) else None
    if loaded is not None:
        config, pretrained, seed = loaded.config, loaded.pretrained, loaded.seed
    else:
        config = model if isinstance(model, ModelConfig) else get_config(str(model), module)
    if config.input != src.kind:
        raise GlocalError(
            f"model {config.key!r} takes {config.input} input but source {src.name!r} holds "
            f"{src.kind}s; pick a {src.kind} model"
        )
    model_id = model_folder(config.name, pretrained, seed)
    dataset_name = dataset or src.name
    split_name = split or src.split
    final = (
        Path(out)
        if out is not None
        else store_path(model_id, config.module, dataset_name, split_name, root=cache_dir)
    )
    ids = src.ids()
    record: dict[str, Any] = {
        "model": config.name,
        "module": config.module,
        "weights": "pretrained" if pretrained else "random",
        "seed": None if pretrained else seed,
        "config": _config_json(config),
        "config_sha256": hashlib.sha256(_config_json(config).encode()).hexdigest(),
        "dtype": dtype,
        "dataset": dataset_name,
        "split": split_name,
        "n_items": len(ids),
        "source": src.describe(),
        "source_sha256": src.fingerprint(),
        "source_digest": src.content_digest(),
    }
    return ExtractionPlan(config, src, pretrained, seed, final, record, ids, loaded)


def finished_store(plan: ExtractionPlan) -> FeatureStore | None:
    """The finished store of ``plan`` when it exists and matches; None when absent.

    A store made from other items or settings raises :class:`GlocalError` saying what changed.
    """
    if not plan.final.exists():
        return None
    return _reuse_or_refuse(plan.final, plan.record)


def extract_features(
    model: str | ModelConfig | FeatureModel,
    source: str | os.PathLike | Source,
    *,
    out: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    module: str | None = None,
    pretrained: bool = True,
    seed: int = 0,
    split: str | None = None,
    dataset: str | None = None,
    batch_size: int = 64,
    num_workers: int | None = None,
    device: str | torch.device = "auto",
    amp: bool | None = None,
    dtype: str = "float32",
    chunk_size: int = 1024,
    overwrite: bool = False,
    verbose: int = 1,
    progress: bool | None = None,
) -> FeatureStore:
    """Extract features of ``model`` for every item of ``source`` into a feature store.

    Items are written in chunks: an interruption loses at most the current chunk, and a rerun
    resumes. A finished store is returned as is unless ``overwrite=True``. Large sources can be
    split into shards that run as tasks of the execution engine:
    :func:`glocal.features.extract_sharded`.

    Parameters
    ----------
    model : str, ModelConfig or FeatureModel
        A registered name (with ``module``), a ``ModelConfig`` or a loaded ``FeatureModel``.
    source : str, path-like or Source
        A :class:`Source` or a spec string (see ``glocal.features.sources.SOURCE_FORMS``).
    out : str, path-like or None, default=None
        The ``.h5`` file to write; default ``MODEL/MODULE/DATASET/SPLIT.h5`` under
        ``cache_dir``, or under ``CACHE/features`` without it (CACHE: ``$GLOCAL_CACHE_DIR`` or
        the user cache).
    cache_dir : str, path-like or None, default=None
        The folder of the default ``out``.
    module : str or None, default=None
        The module of a model given by name (None: its first registered module).
    pretrained : bool, default=True
        Load the pretrained weights; ``False``: random weights initialised from ``seed`` (the
        store's model folder is then ``NAME@random-seedN``). A loaded ``FeatureModel`` keeps
        its own weights, ``pretrained`` and ``seed``.
    seed : int, default=0
        Seed of the random weights.
    split : str or None, default=None
        Split name of the store (None: the source's); passed on to
        :func:`glocal.features.resolve_source` for a spec string.
    dataset : str or None, default=None
        Dataset name of the store (None: the source's name).
    batch_size : int, default=64
        Items per forward pass.
    num_workers : int or None, default=None
        Data-loader worker processes (None: none for text sources and sources of at most one
        batch, else one fewer than the CPU cores, at most 8); a daemonic process uses none.
    device : str or torch.device, default="auto"
        Torch device the model is loaded on (``"auto"``: CUDA when present).
    amp : bool or None, default=None
        fp16 autocast on CUDA (None: on there); never used on other devices.
    dtype : {"float32", "float16"}, default="float32"
        Storage dtype of the features.
    chunk_size : int, default=1024
        Rows written per commit, rounded down to a multiple of ``batch_size`` (at least one
        batch).
    overwrite : bool, default=False
        Extract again even when a finished store exists (an unfinished one starts over).
    verbose : int, default=1
        0: quiet; 1 or more: a progress bar.
    progress : bool or None, default=None
        Deprecated name of ``verbose`` (``True`` is 1): accepted for one release, with a
        :class:`FutureWarning`.

    Returns
    -------
    FeatureStore
        The finished :class:`FeatureStore`.

    Raises
    ------
    GlocalError
        For ``batch_size`` or ``chunk_size`` below 1, an unknown ``dtype``, model or module,
        a source spec that is not understood, a model whose input (image or text) is not the
        source's, a finished store at the path made from other items or settings (without
        ``overwrite``), a store path that cannot be written, or a device that is not available.
    """
    verbose = verbose_level(verbose, progress, "extract_features")
    if batch_size < 1 or chunk_size < 1:
        raise GlocalError("batch_size and chunk_size must be positive")
    plan = plan_extraction(
        model, source, out=out, cache_dir=cache_dir, module=module, pretrained=pretrained,
        seed=seed, split=split, dataset=dataset, dtype=dtype,
    )  # fmt: skip
    final, record = plan.final, plan.record
    if final.exists() and not overwrite:
        return _reuse_or_refuse(final, record)  # finished stores are read without the lock

    seen = _signature(final)
    if out is not None:
        what = "feature store (out / --out)"
    elif cache_dir is not None:
        what = "feature store (cache_dir / --out folder)"
    else:
        what = "feature store (in the cache; set GLOCAL_CACHE_DIR to a writable folder)"
    check_writable(final, what)  # before the model loads: a read-only cache fails at once
    torch_device = resolve_device(device)  # an absent device fails before the lock is taken
    new_folder = _first_missing(final.parent)
    try:
        store = _extract_under_lock(plan, seen, overwrite, torch_device, {
            "batch_size": batch_size, "chunk_size": chunk_size, "num_workers": num_workers,
            "amp": amp, "dtype": dtype, "progress": bool(verbose),
        })  # fmt: skip
    except BaseException:
        _remove_empty_folders(final.parent, new_folder)  # a failure leaves no folder behind
        raise
    return store if store is not None else FeatureStore.open(final)


def _extract_under_lock(
    plan: ExtractionPlan,
    seen: tuple[int, int, int] | None,
    overwrite: bool,
    torch_device: torch.device,
    options: dict[str, Any],
) -> FeatureStore | None:
    """Extract ``plan`` under the store's lock; the finished store when another process
    wrote it meanwhile, else None.

    A failure removes the lock file and a partial store without rows: nothing is left that
    the next run would need.
    """
    final, record, config = plan.final, plan.record, plan.config
    with file_lock(final, remove_on_error=True):
        # someone else may have finished this store while we waited for the lock
        if final.exists() and (not overwrite or _signature(final) != seen):
            if not overwrite:
                return _reuse_or_refuse(final, record)
            # overwrite=True, but another process rewrote the store while we waited: a match
            # is as fresh as ours would be
            with contextlib.suppress(GlocalError):
                store, changes = _reusable(final, record)
                if not changes:
                    return store
        try:
            fmodel = plan.loaded or load_model(
                config, pretrained=plan.pretrained, device=torch_device, seed=plan.seed
            )
            _extract_locked(
                fmodel, plan.source, final, record, plan.ids, overwrite=overwrite, **options
            )
        except BaseException:
            _drop_rowless_partial(partial_path(final))
            raise
    return None


def _first_missing(folder: Path) -> Path | None:
    """The outermost of ``folder`` and its parents that does not exist yet (None: all do)."""
    missing = None
    for path in (folder, *folder.parents):
        if path.exists():
            break
        missing = path
    return missing


def _remove_empty_folders(folder: Path, outermost: Path | None) -> None:
    """Remove ``folder`` and its parents up to ``outermost`` while they are empty."""
    if outermost is None:
        return
    for path in (folder, *folder.parents):
        try:
            path.rmdir()  # only when empty: another writer's files keep it
        except OSError:
            return
        if path == outermost:
            return


def _drop_rowless_partial(partial: Path) -> None:
    """Remove a partial store that holds no rows (or cannot be read): nothing to resume."""
    if not partial.exists():
        return
    try:
        rows = read_provenance(partial)["n_done"]
    except (OSError, KeyError, ValueError, GlocalError):
        rows = 0
    if rows == 0:
        partial.unlink(missing_ok=True)


def _extract_locked(
    fmodel: FeatureModel,
    src: Source,
    final: Path,
    plan: dict[str, Any],
    ids: list[str],
    *,
    overwrite: bool,
    batch_size: int,
    chunk_size: int,
    num_workers: int | None,
    amp: bool | None,
    dtype: str,
    progress: bool,
) -> None:
    """Write (or resume) ``final``'s partial store and publish it; the caller holds the lock."""
    use_amp = bool(amp if amp is not None else fmodel.device.type == "cuda")
    use_amp = use_amp and fmodel.device.type == "cuda"
    record = {
        **plan,
        **fmodel.provenance(),
        "autocast": "float16" if use_amp else None,
        "versions": library_versions(),
        "device": _device_name(fmodel.device),
    }

    partial = partial_path(final)
    start = _resume_point(partial, record) if not overwrite else 0
    if start == 0:
        create_partial(partial, record, ids, src.classes)

    rows = max(batch_size, chunk_size // batch_size * batch_size)
    n = len(ids)
    workers = _auto_workers(src, batch_size) if num_workers is None else num_workers
    if workers and multiprocessing.current_process().daemon:
        workers = 0  # a daemonic process (e.g. a Dask worker) cannot start loader processes
    loader = torch.utils.data.DataLoader(
        _Items(src, fmodel.preprocess, start),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=fmodel.device.type == "cuda",
        collate_fn=_collate_text if src.kind == "text" else None,
    )
    label = f"{fmodel.config.key} on {plan['dataset']}/{plan['split']}"
    bar = _progress_bar(n, start, label, src.kind, progress)
    began = time.perf_counter()
    pending_feats: list[np.ndarray] = []
    pending_labels: list[np.ndarray] = []
    committed = start
    try:
        for indices, inputs, labels in loader:
            feats = fmodel.encode(inputs, amp=use_amp)
            pending_feats.append(feats.numpy())
            pending_labels.append(np.asarray(labels, dtype=np.int64))
            bar.update(len(indices))
            done = int(indices[-1]) + 1
            if done - committed >= rows or done == n:
                write_chunk(
                    partial,
                    committed,
                    np.concatenate(pending_feats),
                    np.concatenate(pending_labels),
                    dtype,
                    rows,
                )
                committed = done
                pending_feats, pending_labels = [], []
    finally:
        bar.close()
    if committed != n:  # pragma: no cover - the loader always covers start..n-1
        raise GlocalError(f"extraction stopped at {committed} of {n} items")
    seconds = time.perf_counter() - began
    finish_partial(
        partial,
        final,
        {
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "resumed_from": start,
            "seconds": round(seconds, 3),
            "items_per_second": round((n - start) / seconds, 3) if seconds > 0 else None,
        },
    )


#: ModelConfig fields that document a model but do not change its features: editing them must
#: not make the stores already extracted with it stale.
DESCRIPTIVE_FIELDS = ("notes", "variant_of")


def _config_json(config: ModelConfig) -> str:
    fields = {k: v for k, v in config.to_dict().items() if k not in DESCRIPTIVE_FIELDS}
    return json.dumps(fields, sort_keys=True)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def _collate_text(batch: list[tuple[int, str, int]]) -> tuple[list[int], list[str], list[int]]:
    indices, texts, labels = zip(*batch, strict=True)
    return list(indices), list(texts), list(labels)


def _resume_point(partial: Path, record: dict[str, Any]) -> int:
    """Rows already written to a matching ``.partial`` file; 0 (start over) otherwise."""
    if not partial.exists():
        return 0
    try:
        have = read_provenance(partial)
    except (OSError, KeyError, ValueError, GlocalError):
        warnings.warn(f"{partial} is unreadable; starting the extraction over", stacklevel=3)
        return 0
    diff = _differences(record, have, RESUME_KEYS)
    if diff:
        warnings.warn(
            f"{partial} was started with different {', '.join(diff)}; starting over", stacklevel=3
        )
        return 0
    try:
        return verified_rows(partial)
    except (GlocalError, OSError, KeyError, ValueError) as err:
        warnings.warn(
            f"{partial} cannot be resumed: {err}; starting the extraction over",
            DamagedCacheWarning,
            stacklevel=3,
        )
        return 0


def _progress_bar(n: int, start: int, label: str, kind: str, enabled: bool) -> Any:
    from tqdm import tqdm

    unit = "img" if kind == "image" else "text"
    return tqdm(total=n, initial=start, desc=label, unit=unit, disable=not enabled, smoothing=0.1)
