"""The officially released gLocal transforms: availability, distance to a scaled identity,
singular value spectra, bias norms, and the byte-copy defect of the release."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from glocal import data
from glocal.data import Entry
from glocal.data._registry import get_entry
from glocal.errors import DataUnavailableError, GlocalError

TRANSFORM_PREFIX = "transform/"


@dataclass(frozen=True)
class ReleasedTransform:
    """One released transform: its registry name, where it is (or why not), how to get it."""

    name: str
    model: str
    module: str
    path: Path | None
    served_from: str
    reason: str = ""

    @property
    def available(self) -> bool:
        """Whether a verified local file is present."""
        return self.path is not None

    @property
    def fetch_command(self) -> str:
        """The shell command that fetches this transform (unpinned ones need the flag)."""
        flag = " --allow-unpinned" if "unpinned" in self.served_from else ""
        return f"glocal data fetch {self.name}{flag}"


def _transform_entries() -> list[Entry]:
    return [e for e in data.registry() if e.name.startswith(TRANSFORM_PREFIX) and e.model]


def _served_from(entry: Entry) -> str:
    if entry.override is not None:
        return f"override ({entry.served.url or entry.served.path})"
    return "release" if entry.pinned else "release (unpinned sha256)"


def locate_transforms(download: bool = False) -> list[ReleasedTransform]:
    """Every released transform of the registry, with its verified local path or the reason
    it is missing. Missing files never raise here; checksum mismatches do."""
    found = []
    for entry in _transform_entries():
        path, reason = None, ""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", data.UnpinnedDataWarning)
                path = data.fetch(entry.name, download=download)
        except DataUnavailableError as err:
            reason = str(err).split(";")[0]
        found.append(
            ReleasedTransform(
                entry.name, str(entry.model), str(entry.module), path, _served_from(entry), reason
            )
        )
    return found


def availability_table(transforms: list[ReleasedTransform]) -> pd.DataFrame:
    """One row per released transform: available or not, served from where, how to fetch it."""
    return pd.DataFrame(
        [
            {
                "model": t.model,
                "module": t.module,
                "available": t.available,
                "served_from": t.served_from,
                "path": str(t.path) if t.path else "",
                "fetch_command": t.fetch_command,
                "reason": t.reason,
            }
            for t in transforms
        ]
    )


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """All arrays of a transform npz, keyed by name (no pickles)."""
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def identity_distance(weights: np.ndarray) -> tuple[float, float]:
    """(β, ‖W − βI‖_F / ‖W‖_F) with β = tr(W)/p: 0 for a scaled identity, ≈ 1 for noise."""
    W = np.asarray(weights, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise GlocalError(f"weights: expected a square matrix, got shape {W.shape}")
    norm = np.linalg.norm(W)
    if norm == 0:
        raise GlocalError("weights: the zero matrix has no relative distance to a scaled identity")
    beta = float(np.trace(W) / len(W))
    return beta, float(np.linalg.norm(W - beta * np.eye(len(W))) / norm)


def singular_values(weights: np.ndarray) -> np.ndarray:
    """Singular values of W (float64), largest first.

    LAPACK runs on one thread: for matrices of this size threads gain little and, on a busy
    machine, oversubscribed OpenBLAS threads can make the call 20-60 times slower.
    """
    W = np.asarray(weights, dtype=np.float64)
    if W.ndim != 2:
        raise GlocalError(f"weights: expected a matrix, got shape {W.shape}")
    with threadpool_limits(limits=1, user_api="blas"):
        return np.linalg.svd(W, compute_uv=False)


def effective_rank(values: np.ndarray) -> float:
    """exp(entropy) of the normalised singular values (Roy & Vetterli): p for a flat spectrum."""
    s = np.asarray(values, dtype=np.float64)
    s = s[s > 0] / s.sum()
    return float(np.exp(-(s * np.log(s)).sum()))


def summarize_weights(
    arrays: dict[str, np.ndarray], values: np.ndarray | None = None
) -> dict[str, float]:
    """Numbers that describe one transform: dimension, β, distance to βI, spectrum, bias norm.

    ``values`` are W's singular values if already computed.
    """
    W = arrays["weights"]
    beta, distance = identity_distance(W)
    s = singular_values(W) if values is None else values
    bias = arrays.get("bias")
    W64 = W.astype(np.float64)
    return {
        "p": int(W.shape[0]),
        "beta": beta,
        "rel_dist_scaled_identity": distance,
        "rel_asymmetry": float(np.linalg.norm(W64 - W64.T) / np.linalg.norm(W64)),
        "sv_max": float(s[0]),
        "sv_min": float(s[-1]),
        "condition_number": float(s[0] / s[-1]) if s[-1] > 0 else float("inf"),
        "effective_rank_fraction": effective_rank(s) / len(s),
        "bias_norm": float(np.linalg.norm(bias)) if bias is not None else float("nan"),
        "bias_norm_per_sqrt_p": (
            float(np.linalg.norm(bias) / np.sqrt(len(bias))) if bias is not None else float("nan")
        ),
        "mean": float(arrays["mean"]),
        "std": float(arrays["std"]),
    }


@lru_cache(maxsize=32)
def _spectrum(path: str) -> np.ndarray:
    return singular_values(load_arrays(path)["weights"])


SUMMARY_COLUMNS = (
    "p", "beta", "rel_dist_scaled_identity", "rel_asymmetry", "sv_max", "sv_min",
    "condition_number", "effective_rank_fraction", "bias_norm", "bias_norm_per_sqrt_p", "mean",
    "std",
)  # fmt: skip


def transform_table(transforms: list[ReleasedTransform]) -> pd.DataFrame:
    """:func:`summarize_weights` for every available transform (unavailable ones get NaN)."""
    rows = []
    for t in transforms:
        row: dict[str, object] = {"model": t.model, "module": t.module, "available": t.available}
        row.update(dict.fromkeys(SUMMARY_COLUMNS, np.nan))
        if t.path is not None:
            row.update(summarize_weights(load_arrays(t.path), _spectrum(str(t.path))))
        rows.append(row)
    return pd.DataFrame(rows)


def spectra_table(transforms: list[ReleasedTransform]) -> pd.DataFrame:
    """Long table of singular values of every available transform: model, module, index (1 =
    largest), fraction (index / p), singular value, and value relative to the largest."""
    frames = []
    for t in transforms:
        if not t.available:
            continue
        s = _spectrum(str(t.path))
        frames.append(
            pd.DataFrame(
                {
                    "model": t.model,
                    "module": t.module,
                    "index": np.arange(1, len(s) + 1),
                    "fraction": np.arange(1, len(s) + 1) / len(s),
                    "singular_value": s,
                    "relative": s / s[0],
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _local_copy(rel_path: str) -> Path | None:
    """A file at ``rel_path`` in the offline mirror or the cache, if present (not verified)."""
    for root in (data.mirror_dir(), data.cache_dir()):
        if root is not None and (root / rel_path).is_file():
            return root / rel_path
    return None


def compare_files(a: str | Path, b: str | Path) -> dict[str, object]:
    """Byte and array identity of two transform files, and how far apart their weights are."""
    arrays_a, arrays_b = load_arrays(a), load_arrays(b)
    same_keys = sorted(arrays_a) == sorted(arrays_b)
    same_arrays = same_keys and all(
        arrays_a[k].shape == arrays_b[k].shape and np.array_equal(arrays_a[k], arrays_b[k])
        for k in arrays_a
    )
    Wa = arrays_a["weights"].astype(np.float64)
    Wb = arrays_b["weights"].astype(np.float64)
    rel = float(np.linalg.norm(Wa - Wb) / np.linalg.norm(Wb)) if Wa.shape == Wb.shape else np.nan
    sha_a, sha_b = data.sha256sum(a), data.sha256sum(b)
    return {
        "sha256_a": sha_a,
        "sha256_b": sha_b,
        "same_bytes": sha_a == sha_b,
        "same_arrays": bool(same_arrays),
        "weights_rel_diff": rel,
    }


def duplicate_report(download: bool = False) -> pd.DataFrame:
    """The release's byte copies, as the registry knows them, checked on the local files.

    For every registry entry whose released file duplicates another entry (e.g.
    ``transform/dinov2-vit-base-p14/norm`` = ``transform/dino-vit-base-p16/norm`` at the release
    commit) one row compares the released copy with its twin, and one compares it with the
    genuine file the registry serves instead (the override). ``registry_says_same`` is the
    registry's own sha256 comparison; the other columns come from the files, or are empty with
    a ``note`` when a file is not present.
    """
    rows = []
    for entry in data.registry():
        if not entry.duplicate_of or entry.override is None:
            continue
        release_copy = _local_copy(entry.release.path)
        if release_copy is not None and data.sha256sum(release_copy) != entry.release.sha256:
            release_copy = None  # not the released file: nothing to compare
        pairs = [(twin.strip(), get_entry(twin.strip())) for twin in entry.duplicate_of.split(",")]
        pairs.append((f"{entry.name} (genuine, served)", entry))
        for label, other in pairs:
            genuine = other is entry
            row: dict[str, object] = {
                "file_a": f"{entry.name} (release copy)",
                "file_b": label,
                "release_url_a": entry.release.url,
                "url_b": other.served.url,
                "registry_says_same": entry.release.sha256 == other.served.sha256,
            }
            try:
                other_path = data.fetch(other.name, download=download)
            except DataUnavailableError as err:
                other_path, row["note"] = None, str(err).split(";")[0]
            if release_copy is None:
                row["note"] = (
                    f"release copy not present: download {entry.release.url} to "
                    f"{data.cache_dir() / entry.release.path}"
                )
            if release_copy is not None and other_path is not None:
                row.update(compare_files(release_copy, other_path))
                row["note"] = "the registry serves this file instead of the copy" if genuine else ""
            rows.append(row)
    return pd.DataFrame(rows)
