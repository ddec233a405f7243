"""The feature store: one HDF5 file of features, labels, ids and provenance per extraction.

Layout of ``CACHE/features/MODEL/MODULE/DATASET/SPLIT.h5`` (MODEL may contain ``/``, as the
official transforms' folders do; random-weight models get ``@random-seedN``):

- ``features`` (n, dim) float32 or float16, chunked by rows;
- ``labels`` (n,) int64 (-1: unlabelled); ``ids`` (n,) utf-8 strings; ``classes`` optional;
- attributes: ``provenance`` (JSON: model, module, weights, preprocessing, library versions,
  source, digests of the source and the model config, creation time ...), ``n_done`` (rows
  written), ``complete`` and, once complete, ``sha256`` (JSON: the sha256 of every dataset the
  store serves, ``features``, ``labels``, ``ids`` and ``classes``, and of its ``provenance``,
  checked by :meth:`FeatureStore.open`).

An extraction writes ``SPLIT.h5.partial`` and renames it to ``SPLIT.h5`` when complete, so a
finished store is never half-written. The partial file records each chunk it has written
(rows and the sha256 of their bytes, the dataset ``written``), so an interrupted extraction
resumes from ``n_done`` only after checking that the rows before it are there and intact
(:func:`verified_rows`). Writers hold the inter-process lock ``SPLIT.h5.lock``
(``glocal.io.file_lock``) while they touch the partial file (see ``glocal.features.extract``).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from glocal.errors import GlocalError
from glocal.io import cache_dir

FORMAT = "glocal-features/3"
#: The layout whose checksums cover features, labels and ids only (not classes, provenance):
#: read, and verified on what it covers.
FEATURES_ONLY_FORMATS = ("glocal-features/2",)
#: Earlier layouts that can be read but not trusted (no checksums): re-extract them.
OLD_FORMATS = ("glocal-features/1",)
#: A partial store's record of its written chunks: (start, stop, sha256 of their bytes).
WRITTEN = "written"
_WRITTEN_DTYPE = np.dtype([("start", "<i8"), ("stop", "<i8"), ("sha256", "S64")])
PARTIAL_SUFFIX = ".partial"
DTYPES = ("float32", "float16")
REQUIRED_DATASETS = ("features", "labels", "ids")
#: Rows are hashed in blocks of about this many bytes (bounded memory for large stores).
HASH_BLOCK_BYTES = 32 * 2**20
REEXTRACT = "re-extract it with --overwrite (CLI) or overwrite=True"


def cache_root() -> Path:
    """The folder that holds feature stores: ``glocal.io.cache_dir() / "features"``."""
    return cache_dir() / "features"


def model_folder(name: str, pretrained: bool = True, seed: int = 0) -> str:
    """A model's folder in the feature store: its name, or ``NAME@random-seedN`` for the random
    weights drawn with ``seed``."""
    return name if pretrained else f"{name}@random-seed{seed}"


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
    """The provenance record of a store or partial store, with ``n_done`` and ``complete``.

    Adds ``dim`` (when features exist), ``format`` and ``sha256`` (the recorded checksums,
    None before completion). A file that is not HDF5 raises ``OSError``; a foreign or damaged
    glocal file raises ``GlocalError``.
    """
    h5py = _h5py()
    with h5py.File(path, "r") as fh:
        found = fh.attrs.get("format")
        if found != FORMAT and found not in (*FEATURES_ONLY_FORMATS, *OLD_FORMATS):
            raise GlocalError(f"{path} is not a glocal feature store (format {found!r})")
        try:
            record = json.loads(fh.attrs["provenance"])
            record["n_done"] = int(fh.attrs["n_done"])
            record["complete"] = bool(fh.attrs["complete"])
            sums = fh.attrs.get("sha256")
            record["sha256"] = json.loads(sums) if sums is not None else None
        except (KeyError, TypeError, ValueError) as err:
            raise GlocalError(
                f"feature store {path}: its attributes are damaged ({type(err).__name__}: {err}); "
                f"{REEXTRACT}"
            ) from err
        if not isinstance(record, dict):
            raise GlocalError(f"feature store {path}: the provenance is not a record; {REEXTRACT}")
        record["format"] = str(found)
        if "features" in fh and len(fh["features"].shape) == 2:
            record["dim"] = int(fh["features"].shape[1])
    return record


def _digest(dataset: Any) -> str:
    """sha256 of a dataset's values: raw bytes of numbers in row blocks, utf-8 of strings."""
    digest = hashlib.sha256()
    n = dataset.shape[0] if dataset.shape else 0
    if dataset.dtype.kind in "OSU":
        for start in range(0, n, 65536):
            for value in dataset[start : start + 65536]:
                text = value if isinstance(value, bytes) else str(value).encode("utf-8")
                digest.update(len(text).to_bytes(8, "little") + text)
        return digest.hexdigest()
    row_bytes = max(1, int(np.prod(dataset.shape[1:], dtype=np.int64)) * dataset.dtype.itemsize)
    rows = max(1, HASH_BLOCK_BYTES // row_bytes)
    for start in range(0, n, rows):
        digest.update(np.ascontiguousarray(dataset[start : start + rows]).data)
    return digest.hexdigest()


def checksums(fh: Any) -> dict[str, str]:
    """sha256 of every dataset of an open store (see :func:`_digest`) and of its provenance."""
    sums = {name: _digest(fh[name]) for name in fh if name != WRITTEN}
    sums["provenance"] = hashlib.sha256(_text(fh.attrs["provenance"])).hexdigest()
    return sums


def _text(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _check_contents(path: Path, metadata: dict[str, Any]) -> None:
    """Raise a ``GlocalError`` naming the store unless its datasets exist and match their sums."""
    if metadata["format"] in OLD_FORMATS or not metadata.get("sha256"):
        raise GlocalError(
            f"feature store {path} has no checksum (format {metadata['format']!r}, written by an "
            f"older glocal), so it cannot be verified; {REEXTRACT}"
        )
    with _h5py().File(path, "r") as fh:
        missing = [name for name in REQUIRED_DATASETS if name not in fh]
        if missing:
            raise GlocalError(
                f"feature store {path} lacks the dataset(s) {missing} (it needs "
                f"{list(REQUIRED_DATASETS)}); the file is damaged or was not written by glocal; "
                f"{REEXTRACT}"
            )
        n = int(metadata.get("n_items", fh["labels"].shape[0]))
        shapes = {name: fh[name].shape for name in REQUIRED_DATASETS}
        if (
            len(shapes["features"]) != 2
            or any(shape[:1] != (n,) for shape in shapes.values())
            or metadata["n_done"] != n
        ):
            raise GlocalError(
                f"feature store {path}: dataset shapes {shapes} do not match its {n} items; "
                f"{REEXTRACT}"
            )
        try:
            actual = checksums(fh)
        except OSError as err:  # a damaged chunk index or chunk
            raise GlocalError(
                f"feature store {path} cannot be read ({err}); the file is damaged; {REEXTRACT}"
            ) from err
    expected = metadata["sha256"]
    covered = (
        REQUIRED_DATASETS
        if metadata["format"] in FEATURES_ONLY_FORMATS
        else set(actual) | set(expected)
    )
    bad = sorted(name for name in covered if actual.get(name) != expected.get(name))
    if bad:
        raise GlocalError(
            f"feature store {path}: the bytes of {', '.join(bad)} do not match the sha256 "
            f"recorded when it was written (the file is corrupted); {REEXTRACT}"
        )


@dataclass(frozen=True)
class FeatureStore:
    """A finished feature file: ``features()``, ``labels()``, ``ids()`` and ``metadata``."""

    path: Path
    metadata: dict[str, Any]

    @classmethod
    def open(cls, path: str | os.PathLike, verify: bool = True) -> FeatureStore:
        """Open a finished store; a missing, foreign, unfinished or corrupted file is a
        ``GlocalError``. ``verify`` re-hashes features, labels and ids against the sums
        recorded at writing (about 0.05 s for 10k × 768 float32)."""
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
            raise GlocalError(
                f"feature store {path} is not a readable HDF5 file ({err}); {REEXTRACT}"
            ) from err
        if not metadata["complete"]:
            raise GlocalError(
                f"feature store {path} is incomplete; rerun the extraction to finish it"
            )
        if verify:
            _check_contents(path, metadata)
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

    def features(self, dtype: npt.DTypeLike | None = None) -> np.ndarray:
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
    """Start a new ``.partial`` store (replacing any old one): ids, empty labels, provenance.

    The caller holds the store's lock (``glocal.io.file_lock`` on the final path): opening
    with "w" truncates the file, which must never happen under another writer.
    """
    h5py = _h5py()
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(ids)
    with _writing(path, "create") as fh:
        fh.attrs["format"] = FORMAT
        fh.attrs["provenance"] = json.dumps(provenance, sort_keys=True)
        fh.attrs["n_done"] = 0
        fh.attrs["complete"] = False
        fh.create_dataset("ids", data=np.array(ids, dtype=object), dtype=h5py.string_dtype())
        fh.create_dataset("labels", shape=(n,), dtype=np.int64, fillvalue=-1)
        fh.create_dataset(WRITTEN, shape=(0,), maxshape=(None,), dtype=_WRITTEN_DTYPE)
        if classes is not None:
            fh.create_dataset(
                "classes", data=np.array(classes, dtype=object), dtype=h5py.string_dtype()
            )


def _rows_sha256(features: np.ndarray, labels: np.ndarray) -> bytes:
    """sha256 (hex) of rows as stored: the features' bytes, then the int64 labels' bytes."""
    digest = hashlib.sha256(np.ascontiguousarray(features).data)
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).data)
    return digest.hexdigest().encode()


@contextmanager
def _writing(path: Path, what: str) -> Iterator[Any]:
    """The partial store at ``path`` open for writing (``what``: "create" truncates it); an
    OSError that names no file (h5py's, a full disk) is raised as one naming the file."""
    from glocal.io import NotWritableError

    try:
        with _h5py().File(path, "w" if what == "create" else "r+") as fh:
            yield fh
    except GlocalError:
        raise
    except OSError as err:
        if err.filename is not None:
            raise
        raise NotWritableError(
            f"cannot write feature store {path} ({what}): {' '.join(str(err).split())}; "
            "free space on its disk or choose another location"
        ) from err


def write_chunk(
    path: Path, start: int, features: np.ndarray, labels: np.ndarray, dtype: str, chunk_rows: int
) -> None:
    """Write rows ``start:start+len(features)``, record them in ``written`` and advance
    ``n_done`` (then flush to disk). Chunks are written in order: ``start`` is ``n_done``."""
    with _writing(path, "chunk") as fh:
        n = fh["labels"].shape[0]
        done = int(fh.attrs["n_done"])
        if start != done:
            raise GlocalError(
                f"feature store {path}: a chunk starting at row {start} follows {done} written "
                f"rows; {REEXTRACT}"
            )
        if "features" not in fh:
            dim = features.shape[1]
            fh.create_dataset(
                "features", shape=(n, dim), dtype=dtype, chunks=(max(1, min(chunk_rows, n)), dim)
            )
        stop = start + len(features)
        stored = features.astype(fh["features"].dtype, copy=False)
        fh["features"][start:stop] = stored
        fh["labels"][start:stop] = labels
        written = fh[WRITTEN]
        k = written.shape[0]
        written.resize((k + 1,))
        written[k] = (start, stop, _rows_sha256(stored, labels))
        fh.attrs["n_done"] = stop
        fh.flush()


def verified_rows(path: Path, rehash: bool = True) -> int:
    """The rows of a partial store that are written and intact (its ``n_done``): its chunk
    record covers rows 0..n_done without gaps and (``rehash``) each chunk's rows still have
    their recorded sha256. A :class:`GlocalError` says what does not add up."""
    with _h5py().File(path, "r") as fh:
        if WRITTEN not in fh:
            raise GlocalError("it has no record of its written rows (an older glocal wrote it)")
        done, n = int(fh.attrs["n_done"]), fh["labels"].shape[0]
        chunks = fh[WRITTEN][...]
        stop = int(chunks["stop"][-1]) if len(chunks) else 0
        contiguous = all(int(chunks["start"][i]) == (int(chunks["stop"][i - 1]) if i else 0)
                         for i in range(len(chunks)))  # fmt: skip
        if not contiguous or stop != done or not 0 <= done <= n:
            raise GlocalError(
                f"its counter says {done} of {n} rows are written but its chunks cover rows "
                f"0..{stop}{'' if contiguous else ' with gaps'}"
            )
        if done and "features" not in fh:
            raise GlocalError(f"its counter says {done} rows are written but it has no features")
        for start, end, expected in chunks if rehash else ():
            rows = slice(int(start), int(end))
            if _rows_sha256(fh["features"][rows], fh["labels"][rows]) != expected:
                raise GlocalError(f"rows {start}..{end - 1} do not match their recorded sha256")
    return done


def finish_partial(path: Path, final: Path, extra: dict[str, Any]) -> None:
    """Check that every row is written, record the checksums, mark a partial store complete
    and rename it onto ``final`` atomically."""
    try:
        done = verified_rows(path, rehash=False)  # the rows since the resume were ours
    except GlocalError as err:
        raise GlocalError(f"feature store {path} cannot be finished: {err}; {REEXTRACT}") from None
    with _writing(path, "finish") as fh:
        n = fh["labels"].shape[0]
        if done != n:
            raise GlocalError(
                f"feature store {path} cannot be finished: {done} of {n} rows are written"
            )
        record = json.loads(fh.attrs["provenance"])
        record.update(extra)
        fh.attrs["provenance"] = json.dumps(record, sort_keys=True)
        del fh[WRITTEN]  # bookkeeping of the partial file: the finished store serves the rest
        fh.attrs["sha256"] = json.dumps(checksums(fh), sort_keys=True)
        fh.attrs["complete"] = True
        fh.flush()
    os.replace(path, final)
