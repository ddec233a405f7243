"""``extract_features``: run a model over a source into a resumable, provenance-stamped store."""

from __future__ import annotations

import datetime
import json
import os
import platform
import time
import warnings
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glocal._device import resolve_device
from glocal.errors import GlocalError
from glocal.features.encoder import FeatureModel, load_model
from glocal.features.models import ModelConfig, get_config
from glocal.features.sources import Source, resolve_source
from glocal.features.store import (
    DTYPES,
    FeatureStore,
    create_partial,
    finish_partial,
    partial_path,
    read_provenance,
    store_path,
    write_chunk,
)

#: Provenance fields that must agree for a finished store to be reused as is.
IDENTITY_KEYS = (
    "model",
    "module",
    "weights",
    "seed",
    "config",
    "dtype",
    "dataset",
    "split",
    "n_items",
    "source_sha256",
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


def _auto_workers(source: Source, batch_size: int) -> int:
    if source.kind == "text" or len(source) <= batch_size:
        return 0
    return max(0, min(8, (os.cpu_count() or 1) - 1))


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
    progress: bool = True,
) -> FeatureStore:
    """Extract features of ``model`` for every item of ``source`` into a feature store.

    model: a registered name (with ``module``), a ``ModelConfig`` or a loaded ``FeatureModel``.
    source: a :class:`Source` or a spec string (see ``glocal.features.sources.SOURCE_FORMS``).
    out: the ``.h5`` file to write; default ``CACHE/features/MODEL/MODULE/DATASET/SPLIT.h5``
        under ``cache_dir`` (default ``$GLOCAL_CACHE_DIR`` or the user cache).
    pretrained, seed: weights to load (``False``: random weights initialised from ``seed``).
    dtype: ``float32`` or ``float16`` storage. amp: fp16 autocast on CUDA (default: on there).
    chunk_size: rows written per commit; an interruption loses at most the current chunk,
        and a rerun resumes. A finished store is returned as is unless ``overwrite=True``.
    Returns the finished :class:`FeatureStore`.
    """
    if dtype not in DTYPES:
        raise GlocalError(f"dtype {dtype!r} is not one of {DTYPES}")
    if batch_size < 1 or chunk_size < 1:
        raise GlocalError("batch_size and chunk_size must be positive")
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
    model_id = config.name if pretrained else f"{config.name}@random-seed{seed}"
    dataset_name = dataset or src.name
    split_name = split or src.split
    final = (
        Path(out)
        if out is not None
        else store_path(model_id, config.module, dataset_name, split_name, root=cache_dir)
    )
    ids = src.ids()
    plan: dict[str, Any] = {
        "model": config.name,
        "module": config.module,
        "weights": "pretrained" if pretrained else "random",
        "seed": None if pretrained else seed,
        "config": _config_json(config),
        "dtype": dtype,
        "dataset": dataset_name,
        "split": split_name,
        "n_items": len(ids),
        "source": src.describe(),
        "source_sha256": src.fingerprint(),
    }
    if final.exists() and not overwrite:
        store = FeatureStore.open(final)
        diff = _differences(plan, store.metadata, IDENTITY_KEYS)
        if diff:
            shown = "; ".join(
                f"{k}: stored {store.metadata.get(k)!r}, asked {plan[k]!r}" for k in diff
            )
            raise GlocalError(
                f"feature store {final} already exists for different settings ({shown}); "
                "pass overwrite=True (--overwrite) or another out path"
            )
        return store

    fmodel = loaded or load_model(
        config, pretrained=pretrained, device=resolve_device(device), seed=seed
    )
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
    loader = torch.utils.data.DataLoader(
        _Items(src, fmodel.preprocess, start),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=fmodel.device.type == "cuda",
        collate_fn=_collate_text if src.kind == "text" else None,
    )
    bar = _progress_bar(
        n, start, f"{config.key} on {dataset_name}/{split_name}", src.kind, progress
    )
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
    return FeatureStore.open(final)


def _config_json(config: ModelConfig) -> str:
    return json.dumps(config.to_dict(), sort_keys=True)


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
    return int(have["n_done"])


def _progress_bar(n: int, start: int, label: str, kind: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    unit = "img" if kind == "image" else "text"
    return tqdm(total=n, initial=start, desc=label, unit=unit, disable=not enabled, smoothing=0.1)
