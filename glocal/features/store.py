"""The feature store: one HDF5 file of features, labels, ids and provenance per extraction.

Layout of ``CACHE/features/MODEL/MODULE/DATASET/SPLIT.h5`` (MODEL may contain ``/``, as the
official transforms' folders do; random-weight models get ``@random-seedN``):

- ``features`` (n, dim) float32 or float16, chunked by rows;
- ``labels`` (n,) int64 (-1: unlabelled); ``ids`` (n,) utf-8 strings; ``classes`` optional;
- attributes: ``provenance`` (JSON: model, module, weights, preprocessing, library versions,
  source, image count, creation time ...), ``n_done`` (rows written) and ``complete``.

An extraction writes ``SPLIT.h5.partial`` and renames it to ``SPLIT.h5`` when complete, so a
finished store is never half-written and an interrupted one resumes from ``n_done``.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from glocal.errors import GlocalError
from glocal.io import cache_dir

FORMAT = "glocal-features/1"
PARTIAL_SUFFIX = ".partial"
DTYPES = ("float32", "float16")


def cache_root() -> Path:
    """The folder that holds feature stores: ``glocal.io.cache_dir() / "features"``."""
    return cache_dir() / "features"


def store_path(
    model_id: str,
    module: str,
    dataset: str,
    split: str,
    root: str | os.PathLike | None = None,
) -> Path:
    """Where the store for (model, module, dataset, split) lives under ``root`` (the cache)."""
    for label, value in (("module", module), ("dataset", dataset), ("split", split)):
        if not value or "/" in value or "\\" in value or value in (".", ".."):
            raise GlocalError(f"feature store: {label} {value!r} must be a plain name without '/'")
    parts = model_id.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise GlocalError(f"feature store: model id {model_id!r} is not a valid folder name")
    base = Path(root) if root is not None else cache_root()
    return base.joinpath(*parts, module, dataset, f"{split}.h5")


def partial_path(path: str | os.PathLike) -> Path:
    """The in-progress file beside a store: ``SPLIT.h5.partial``."""
    path = Path(path)
    return path.with_name(path.name + PARTIAL_SUFFIX)


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as err:  # pragma: no cover - h5py is in the features extra
        raise GlocalError("the feature store needs h5py: pip install 'glocal[features]'") from err
    return h5py


def read_provenance(path: str | os.PathLike) -> dict[str, Any]:
    """The provenance record of a store or partial store, with ``n_done`` and ``complete``."""
    h5py = _h5py()
    with h5py.File(path, "r") as fh:
        if fh.attrs.get("format") != FORMAT:
            raise GlocalError(
                f"{path} is not a glocal feature store (format {fh.attrs.get('format')!r})"
            )
        record = json.loads(fh.attrs["provenance"])
        record["n_done"] = int(fh.attrs["n_done"])
        record["complete"] = bool(fh.attrs["complete"])
        if "features" in fh:
            record["dim"] = int(fh["features"].shape[1])
    return record


@dataclass(frozen=True)
class FeatureStore:
    """A finished feature file: ``features()``, ``labels()``, ``ids()`` and ``metadata``."""

    path: Path
    metadata: dict[str, Any]

    @classmethod
    def open(cls, path: str | os.PathLike) -> FeatureStore:
        """Open a finished store; a missing, foreign or unfinished file is a ``GlocalError``."""
        path = Path(path)
        if not path.is_file():
            hint = (
                " (an unfinished extraction exists: rerun it to resume)"
                if partial_path(path).is_file()
                else ""
            )
            raise GlocalError(f"feature store {path} does not exist{hint}")
        try:
            metadata = read_provenance(path)
        except OSError as err:
            raise GlocalError(f"feature store {path} is not a readable HDF5 file ({err})") from err
        if not metadata["complete"]:
            raise GlocalError(
                f"feature store {path} is incomplete; rerun the extraction to finish it"
            )
        return cls(path, metadata)

    def __repr__(self) -> str:
        m = self.metadata
        return (
            f"FeatureStore({str(self.path)!r}, model={m['model']!r}, module={m['module']!r}, "
            f"n={m['n_items']}, dim={m.get('dim')})"
        )

    @property
    def n(self) -> int:
        """Number of items."""
        return int(self.metadata["n_items"])

    @property
    def dim(self) -> int:
        """Feature dimension."""
        return int(self.metadata["dim"])

    def features(self, dtype: str | np.dtype | None = None) -> np.ndarray:
        """The (n, dim) feature matrix, in the stored dtype unless ``dtype`` is given."""
        with _h5py().File(self.path, "r") as fh:
            array = fh["features"][...]
        return array if dtype is None else array.astype(dtype, copy=False)

    def labels(self) -> np.ndarray:
        """Integer labels (n,); -1 where the source had none."""
        with _h5py().File(self.path, "r") as fh:
            return fh["labels"][...]

    def ids(self) -> list[str]:
        """Item ids (file paths relative to the source, THINGS uniqueIDs, indices)."""
        with _h5py().File(self.path, "r") as fh:
            return [s.decode() if isinstance(s, bytes) else str(s) for s in fh["ids"][...]]

    def classes(self) -> list[str] | None:
        """Class names indexed by label, when the source had them."""
        with _h5py().File(self.path, "r") as fh:
            if "classes" not in fh:
                return None
            return [s.decode() if isinstance(s, bytes) else str(s) for s in fh["classes"][...]]

    def apply(self, transform: Any) -> np.ndarray:
        """``transform.transform(features)`` after :func:`check_compatible`."""
        check_compatible(self, transform)
        return transform.transform(self.features(np.float32))


def load_features(path: str | os.PathLike, transform: Any = None) -> np.ndarray:
    """The float32 features of a finished store; with ``transform``, checked against it first."""
    store = FeatureStore.open(path)
    if transform is not None:
        check_compatible(store, transform)
    return store.features(np.float32)


def _transform_source(transform: Any) -> tuple[str | None, str | None, str]:
    metadata = dict(getattr(transform, "metadata_", None) or {})
    model, module = metadata.get("model"), metadata.get("module")
    where = metadata.get("path") or "the transform"
    if (model is None or module is None) and metadata.get("path"):
        from glocal.features.models import find_by_transform_path

        config = find_by_transform_path(metadata["path"])
        if config is not None:
            model, module = model or config.name, module or config.module
    return model, module, str(where)


def check_compatible(
    store_or_metadata: FeatureStore | dict[str, Any] | str | os.PathLike, transform: Any
) -> None:
    """Raise ``GlocalError`` unless ``transform`` was fit on features like these.

    Compares the feature dimension with ``transform.weights_.shape[0]`` and, when the
    transform's ``metadata_`` names them ("model", "module", or an official
    ``NAME/MODULE/transform.npz`` path), the model and module. Features from random weights
    only warn, since the transform may have been fit on them on purpose.
    """
    if isinstance(store_or_metadata, FeatureStore):
        meta, label = store_or_metadata.metadata, str(store_or_metadata.path)
    elif isinstance(store_or_metadata, dict):
        meta, label = store_or_metadata, "these features"
    else:
        store = FeatureStore.open(store_or_metadata)
        meta, label = store.metadata, str(store.path)
    weights = getattr(transform, "weights_", None)
    if weights is None:
        raise GlocalError("check_compatible: the transform is not fitted (no weights_)")
    model, module, where = _transform_source(transform)
    feature_key = f"{meta.get('model')}/{meta.get('module')}"
    if model is not None and model != meta.get("model"):
        raise GlocalError(
            f"{where} was fit on {model}/{module} features but {label} come from {feature_key}; "
            f"use the transform for {meta.get('model')} or extract features with --model {model}"
        )
    if module is not None and module != meta.get("module"):
        raise GlocalError(
            f"{where} was fit on module {module!r} of {model} but {label} come from module "
            f"{meta.get('module')!r}; extract features of module {module!r}"
        )
    dim = meta.get("dim")
    if dim is not None and int(dim) != int(weights.shape[0]):
        raise GlocalError(
            f"{where} expects {weights.shape[0]} features but {label} ({feature_key}) have {dim}; "
            "the transform belongs to another model or module"
        )
    if meta.get("weights") == "random" and model is not None:
        warnings.warn(
            f"{label} come from a randomly initialised {meta.get('model')}, while {where} "
            "was presumably fit on pretrained features",
            UserWarning,
            stacklevel=2,
        )


# writing (used by glocal.features.extract) ----------------------------------------------------


def create_partial(
    path: Path,
    provenance: dict[str, Any],
    ids: list[str],
    classes: list[str] | None,
) -> None:
    """Start a new ``.partial`` store (replacing any old one): ids, empty labels, provenance."""
    h5py = _h5py()
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(ids)
    with h5py.File(path, "w") as fh:
        fh.attrs["format"] = FORMAT
        fh.attrs["provenance"] = json.dumps(provenance, sort_keys=True)
        fh.attrs["n_done"] = 0
        fh.attrs["complete"] = False
        fh.create_dataset("ids", data=np.array(ids, dtype=object), dtype=h5py.string_dtype())
        fh.create_dataset("labels", shape=(n,), dtype=np.int64, fillvalue=-1)
        if classes is not None:
            fh.create_dataset(
                "classes", data=np.array(classes, dtype=object), dtype=h5py.string_dtype()
            )


def write_chunk(
    path: Path, start: int, features: np.ndarray, labels: np.ndarray, dtype: str, chunk_rows: int
) -> None:
    """Write rows ``start:start+len(features)`` and advance ``n_done`` (then flush to disk)."""
    h5py = _h5py()
    with h5py.File(path, "r+") as fh:
        n = fh["labels"].shape[0]
        if "features" not in fh:
            dim = features.shape[1]
            fh.create_dataset(
                "features", shape=(n, dim), dtype=dtype, chunks=(max(1, min(chunk_rows, n)), dim)
            )
        stop = start + len(features)
        fh["features"][start:stop] = features.astype(dtype, copy=False)
        fh["labels"][start:stop] = labels
        fh.attrs["n_done"] = stop
        fh.flush()


def finish_partial(path: Path, final: Path, extra: dict[str, Any]) -> None:
    """Mark a fully written partial store complete and rename it onto ``final`` atomically."""
    h5py = _h5py()
    with h5py.File(path, "r+") as fh:
        record = json.loads(fh.attrs["provenance"])
        record.update(extra)
        fh.attrs["provenance"] = json.dumps(record, sort_keys=True)
        fh.attrs["complete"] = True
        fh.flush()
    os.replace(path, final)
