"""Odd-one-out triplets: load, validate, split and simulate.

A triplet set is an int64 array of shape (n, 3) whose columns are (similar, similar, odd one
out), holding 0-based indices into the THINGS object order (rows of ``things_concepts.tsv``).
"""

from __future__ import annotations

import math
import numbers
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glocal.errors import GlocalError

THINGS_CSV_COLUMNS = ("image1", "image2", "image3", "choice")
_SIMULATE_CHUNK = 1 << 18
TEXT_SUFFIXES = (".txt", ".tsv", ".dat")


def validate_triplets(
    triplets: np.ndarray, n_objects: int | None = None, where: str = "triplets"
) -> np.ndarray:
    """Check a triplet array and return it as a C-contiguous int64 (n, 3) array.

    Parameters
    ----------
    triplets : array-like of shape (n, 3)
        Rows (similar, similar, odd one out) of 0-based object indices.
    n_objects : int or None
        Number of objects; indices must lie in ``[0, n_objects)`` (None: only non-negative).
    where : str
        What to call the array in error messages (a file name, an argument).

    Raises
    ------
    GlocalError
        For a wrong shape, a non-integer dtype, an empty set, indices out of range, or an
        object repeated within a triplet.
    """
    array = np.asarray(triplets)
    if array.ndim != 2 or array.shape[1] != 3:
        raise GlocalError(
            f"{where}: expected an integer array of shape (n, 3) with columns "
            f"(similar, similar, odd one out), got shape {array.shape}"
        )
    if array.shape[0] == 0:
        raise GlocalError(f"{where}: the triplet set is empty")
    if not np.issubdtype(array.dtype, np.integer):
        raise GlocalError(
            f"{where}: expected integer object indices, got dtype {array.dtype}; "
            "convert whole-number floats explicitly with .astype(int)"
        )
    array = np.ascontiguousarray(array, dtype=np.int64)
    low = array < 0
    high = array >= n_objects if n_objects is not None else np.zeros_like(low)
    if low.any() or high.any():
        row = int(np.flatnonzero((low | high).any(axis=1))[0])
        bound = f"[0, {n_objects})" if n_objects is not None else "non-negative"
        raise GlocalError(
            f"{where}: {int((low | high).any(axis=1).sum())} triplets have object indices "
            f"outside {bound}, first at row {row}: {array[row].tolist()} "
            "(indices are 0-based; 1-based files need 1 subtracted)"
        )
    repeated = (
        (array[:, 0] == array[:, 1]) | (array[:, 0] == array[:, 2]) | (array[:, 1] == array[:, 2])
    )
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        raise GlocalError(
            f"{where}: {int(repeated.sum())} triplets repeat an object, first at row {row}: "
            f"{array[row].tolist()}; a triplet needs three distinct objects"
        )
    return array


def load_triplets(path: str | os.PathLike, n_objects: int | None = None) -> np.ndarray:
    """Load triplets from ``.npy``, whitespace-separated text, or the THINGS-data CSV.

    Parameters
    ----------
    path : str or path
        ``.npy`` (an int array (n, 3)), ``.txt``/``.tsv``/``.dat`` (three 0-based integers
        per line), or a file whose header is the THINGS-data one (``image1, image2, image3,
        choice``: 1-based, whatever its suffix).
    n_objects : int or None
        Check the indices against this many objects (1854 for THINGS).

    Returns
    -------
    ndarray of shape (n, 3)
        int64 rows (similar, similar, odd one out), 0-based.
    """
    from glocal.io import load_npy

    path = Path(path)
    if not path.is_file():
        raise GlocalError(f"triplet file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        array = load_npy(path, f"triplet file {path}")
    elif suffix == ".csv" or _is_things_csv(path):
        return load_things_csv(path, n_objects=n_objects)
    elif suffix in TEXT_SUFFIXES:
        array = _load_text(path)
    else:
        raise GlocalError(
            f"triplet file {path}: unknown suffix {suffix!r}; use .npy, "
            f"{', '.join(TEXT_SUFFIXES)} (whitespace text, 0-based) or .csv (THINGS-data format)"
        )
    return validate_triplets(array, n_objects, where=f"triplet file {path}")


def _clean_name(name: object) -> str:
    """A column name without the BOM, quotes and spaces that spreadsheets add."""
    return str(name).strip().lstrip("\ufeff").strip().strip("\"'").strip()


def _is_things_column(name: object) -> bool:
    return _clean_name(name) in THINGS_CSV_COLUMNS


def _header_columns(line: str) -> tuple[str, list[str]]:
    """The separator (tab or comma) and the cleaned column names of a header line."""
    import csv

    sep = "\t" if "\t" in line else ","
    fields = next(csv.reader([line.rstrip("\r\n")], delimiter=sep, skipinitialspace=True), [])
    return sep, [_clean_name(field) for field in fields]


def _is_things_csv(path: Path) -> bool:
    """True when the first line of ``path`` is a THINGS-data header (any suffix)."""
    try:
        with open(path, "rb") as fh:
            line = fh.readline(1 << 16).decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return False
    return set(THINGS_CSV_COLUMNS) <= set(_header_columns(line)[1])


def _not_utf8(path: Path, where: str) -> GlocalError:
    """Name the first line of ``path`` that is not UTF-8 text."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as err:
                byte = raw[err.start]
                return GlocalError(
                    f"{where}: line {number} is not UTF-8 text (byte 0x{byte:02x} at column "
                    f"{err.start + 1}); save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
                )
    return GlocalError(f"{where} is not UTF-8 text; save the file as UTF-8")


def _load_text(path: Path) -> np.ndarray:
    where = f"triplet file {path}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy warns about empty files; we say it below
            array = np.loadtxt(path, dtype=np.int64, ndmin=2, encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise _not_utf8(path, where) from err
    except (ValueError, OverflowError) as err:
        raise GlocalError(
            f"{where}: expected three whitespace-separated integers per line "
            f"({' '.join(str(err).split())})"
        ) from err
    if array.size == 0:
        raise GlocalError(f"{where}: the triplet set is empty")
    return array


def _first_bad_value(path: Path, sep: str, where: str) -> GlocalError:
    """Name the first row whose THINGS columns do not hold whole numbers in int64's range."""
    import pandas as pd

    reader = pd.read_csv(
        path,
        sep=sep,
        encoding="utf-8-sig",
        skipinitialspace=True,
        usecols=_is_things_column,
        dtype=str,
        keep_default_na=False,
        chunksize=1 << 16,
    )
    limit = np.iinfo(np.int64).max
    with reader as chunks:
        for chunk in chunks:
            chunk.columns = [_clean_name(c) for c in chunk.columns]
            rows = chunk[list(THINGS_CSV_COLUMNS)].itertuples(index=False)
            for row, values in zip(chunk.index, rows, strict=True):
                for column, value in zip(THINGS_CSV_COLUMNS, values, strict=True):
                    text = str(value).strip()
                    if not re.fullmatch(r"[+-]?\d+", text) or abs(int(text)) > limit:
                        shown = repr(text) if text else "no value"
                        return GlocalError(
                            f"{where}: column '{column}' must hold whole numbers (1-based "
                            f"indices); data row {row + 1} holds {shown}; fix or remove that row"
                        )
    return GlocalError(
        f"{where}: columns {list(THINGS_CSV_COLUMNS)} must hold integers with no missing values"
    )


def load_things_csv(path: str | os.PathLike, n_objects: int | None = None) -> np.ndarray:
    """Load the THINGS-data odd-one-out file into (similar, similar, odd) 0-based triplets.

    The reported format has 1-based object indices in ``image1, image2, image3`` and a
    ``choice`` column holding the 1-based position (1, 2 or 3) of the image chosen as the odd
    one out; further columns are ignored. Comma- and tab-separated UTF-8 files are accepted,
    with or without a byte-order mark, quoted column names and spaces after the separators.

    Parameters
    ----------
    path : str or path-like
        The file.
    n_objects : int or None, default=None
        Number of objects; the 0-based indices must lie in ``[0, n_objects)`` (None: only
        non-negative).

    Returns
    -------
    ndarray of shape (n, 3)
        int64 rows (similar, similar, odd one out), 0-based: the two images not chosen, in
        file order, then the chosen one.

    Raises
    ------
    GlocalError
        For a missing, empty or non-UTF-8 file, a header without the columns ``image1``,
        ``image2``, ``image3`` and ``choice``, values that are not whole numbers, a ``choice``
        other than 1, 2 or 3, or triplets that fail :func:`validate_triplets` (indices out of
        range, an object repeated within a triplet).
    """
    import pandas as pd

    path = Path(path)
    where = f"THINGS triplet file {path}"
    if not path.is_file():
        raise GlocalError(f"{where} does not exist")
    with open(path, "rb") as fh:
        first = fh.readline(1 << 16)
    if not first.strip():
        raise GlocalError(
            f"{where} is empty or starts with a blank line; the first line must be the header "
            f"{', '.join(THINGS_CSV_COLUMNS)}"
        )
    try:
        sep, columns = _header_columns(first.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        raise _not_utf8(path, where) from err
    missing = [c for c in THINGS_CSV_COLUMNS if c not in columns]
    if missing:
        raise GlocalError(
            f"{where}: missing column(s) {missing}; found columns {columns}; "
            f"expected {list(THINGS_CSV_COLUMNS)} (1-based indices, choice = 1-based position "
            "of the odd one out)"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas warns before it fails on floats
            frame = pd.read_csv(
                path,
                sep=sep,
                encoding="utf-8-sig",
                skipinitialspace=True,
                usecols=_is_things_column,
                dtype=np.int64,
            )
    except UnicodeDecodeError as err:
        raise _not_utf8(path, where) from err
    except (ValueError, OverflowError) as err:
        raise _first_bad_value(path, sep, where) from err
    frame.columns = [_clean_name(c) for c in frame.columns]
    if len(frame) == 0:
        raise GlocalError(f"{where}: the triplet set is empty")
    images = frame[["image1", "image2", "image3"]].to_numpy() - 1
    choice = frame["choice"].to_numpy()
    bad = ~np.isin(choice, (1, 2, 3))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise GlocalError(
            f"{where}: column 'choice' must be the 1-based position (1, 2 or 3) "
            f"of the odd one out; row {row} holds {int(choice[row])}"
        )
    odd_position = choice - 1
    order = np.array([[1, 2, 0], [0, 2, 1], [0, 1, 2]])[odd_position]
    triplets = np.take_along_axis(images, order, axis=1)
    return validate_triplets(triplets, n_objects, where=f"{where} (after -1)")


def save_triplets(path: str | os.PathLike, triplets: np.ndarray) -> Path:
    """Save triplets as ``.npy`` (atomically) or whitespace text, chosen by the suffix.

    Parameters
    ----------
    path : str or path-like
        The file: ``.npy``, or ``.txt``, ``.tsv`` or ``.dat`` (in any case) for text with one
        triplet per line, as space-separated integers. Either is written atomically.
    triplets : array-like of shape (n, 3)
        Rows (similar, similar, odd one out) of 0-based object indices.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    GlocalError
        For an invalid triplet array (see :func:`validate_triplets`) or another suffix.
    """
    from glocal.io import atomic_write, save_npy

    triplets = validate_triplets(triplets)
    path = Path(path)
    if path.suffix.lower() == ".npy":
        return save_npy(path, triplets)
    if path.suffix.lower() in TEXT_SUFFIXES:
        return atomic_write(path, lambda tmp: np.savetxt(tmp, triplets, fmt="%d"))
    raise GlocalError(f"cannot save triplets to {path}: use a .npy or {TEXT_SUFFIXES} suffix")


@dataclass(frozen=True)
class TripletSplit:
    """A train/test partition of a triplet set.

    Returned by :func:`random_split` and :func:`object_disjoint_folds`.

    Attributes
    ----------
    train : ndarray of shape (n_train, 3)
        The training triplets.
    test : ndarray of shape (n_test, 3)
        The test triplets.
    n_dropped : int
        Triplets in neither set: in object-disjoint folds, those that mix test objects with
        others (0 for a random split).
    test_objects : ndarray or None
        Indices of the objects of an object-disjoint fold's test set (None for a random split).
    """

    train: np.ndarray
    test: np.ndarray
    n_dropped: int = 0
    test_objects: np.ndarray | None = None


def random_split(triplets: np.ndarray, test_size: float = 0.1, seed: int = 0) -> TripletSplit:
    """Split triplets at random into train and test sets (objects may be shared).

    Parameters
    ----------
    triplets : ndarray of shape (n, 3)
        The triplets to split.
    test_size : float
        Share of triplets in the test set, in (0, 1).
    seed : int
        Seeds the permutation.
    """
    triplets = validate_triplets(triplets)
    if not 0.0 < test_size < 1.0:
        raise GlocalError(f"test_size must lie in (0, 1), got {test_size}")
    order = np.random.default_rng(seed).permutation(len(triplets))
    n_test = int(round(test_size * len(triplets)))
    if n_test == 0 or n_test == len(triplets):
        raise GlocalError(
            f"test_size={test_size} leaves an empty train or test set for {len(triplets)} triplets"
        )
    return TripletSplit(train=triplets[order[n_test:]], test=triplets[order[:n_test]])


def object_disjoint_folds(
    triplets: np.ndarray, n_objects: int, n_folds: int = 5, seed: int = 0
) -> list[TripletSplit]:
    """Object-disjoint k-fold splits.

    Objects are dealt into ``n_folds`` groups at random. For fold f, ``test`` holds the triplets
    whose three objects all lie in group f, ``train`` those whose three objects all lie outside
    it; ``n_dropped`` counts the triplets that mix both and are used by neither.

    Parameters
    ----------
    triplets : ndarray of shape (n, 3)
        The triplets to split.
    n_objects : int
        Number of objects (1854 for THINGS); every object is dealt into a group.
    n_folds : int
        Number of folds (at least 2).
    seed : int
        Seeds the assignment of objects to groups (the groups do not depend on the triplets).

    Returns
    -------
    list of TripletSplit
        One split per fold, with ``test_objects`` the fold's group.
    """
    triplets = validate_triplets(triplets, n_objects)
    if n_folds < 2:
        raise GlocalError(f"n_folds must be at least 2, got {n_folds}")
    if n_folds > n_objects:
        raise GlocalError(f"n_folds={n_folds} exceeds the number of objects ({n_objects})")
    group = deal_into_groups(n_objects, n_folds, np.random.default_rng(seed))
    splits = []
    for fold in range(n_folds):
        test_objects = np.flatnonzero(group == fold)
        train = triplets_within(triplets, group != fold)
        test = triplets_within(triplets, group == fold)
        splits.append(
            TripletSplit(
                train=triplets[train],
                test=triplets[test],
                n_dropped=int(len(triplets) - train.sum() - test.sum()),
                test_objects=test_objects,
            )
        )
    return splits


def deal_into_groups(n: int, n_groups: int, rng: np.random.Generator) -> np.ndarray:
    """Deal ``n`` items into ``n_groups`` groups of (nearly) equal size at random.

    Returns the group of every item, shape (n,): a random permutation of
    ``0, 1, …, n_groups − 1, 0, 1, …`` drawn from ``rng``.
    """
    group = np.empty(n, dtype=np.int64)
    group[rng.permutation(n)] = np.arange(n) % n_groups
    return group


def triplets_within(triplets: np.ndarray, objects: np.ndarray) -> np.ndarray:
    """Which triplets have all three objects among ``objects`` (a boolean mask over objects)."""
    return np.asarray(objects, dtype=bool)[triplets].all(axis=1)


def simulate_triplets(
    embedding: np.ndarray,
    n: int,
    objects: np.ndarray | None = None,
    seed: int = 0,
    temperature: float = 1.0,
) -> np.ndarray:
    """Simulate human-like odd-one-out triplets from an embedding.

    Each triplet draws three distinct objects uniformly (from ``objects`` if given); the pair
    kept together is sampled from the softmax over the three pairwise dot products divided by
    ``temperature`` (the SPoSE/VICE choice model).

    Parameters
    ----------
    embedding : ndarray of shape (n_objects, d)
        Object embedding whose dot products model similarity (e.g. VICE).
    n : int
        Number of triplets.
    objects : array-like of int or None
        Draw only from these objects (default: all).
    seed : int
        Seeds the draws.
    temperature : float
        Softmax temperature of the choice (lower: more deterministic choices).

    Returns
    -------
    ndarray of shape (n, 3)
        Rows (similar, similar, odd one out).
    """
    from glocal.io import check_feature_matrix

    embedding = np.asarray(check_feature_matrix(embedding, "embedding"), dtype=np.float64)
    if not _integer(n) or n <= 0:
        raise GlocalError(f"n must be a positive integer, got {n!r}")
    if not _integer(seed) or seed < 0:
        raise GlocalError(
            f"seed must be an integer >= 0 (numpy's generators take no negative seeds), "
            f"got {seed!r}"
        )
    if (
        not (isinstance(temperature, numbers.Real) and math.isfinite(temperature))
        or temperature <= 0
    ):
        raise GlocalError(f"temperature must be a finite positive number, got {temperature}")
    pool = np.arange(len(embedding)) if objects is None else np.asarray(objects, dtype=np.int64)
    if pool.ndim != 1 or len(np.unique(pool)) != len(pool):
        raise GlocalError("objects: expected a 1-D array of distinct object indices")
    if len(pool) < 3:
        raise GlocalError(f"objects: need at least 3 objects to form triplets, got {len(pool)}")
    if pool.min() < 0 or pool.max() >= len(embedding):
        raise GlocalError(f"objects: indices must lie in [0, {len(embedding)})")
    rng = np.random.default_rng(seed)
    triples = pool[_distinct_triples(rng, len(pool), n)]
    uniform = rng.random(n)
    pair = np.empty(n, dtype=np.int64)
    for start in range(0, n, _SIMULATE_CHUNK):  # bounded memory for millions of triplets
        rows = slice(start, start + _SIMULATE_CHUNK)
        a, b, c = (embedding[triples[rows, i]] for i in range(3))
        # logits for keeping the pairs (a, b), (a, c), (b, c) together
        with np.errstate(over="ignore", invalid="ignore"):
            logits = np.stack([(a * b).sum(1), (a * c).sum(1), (b * c).sum(1)], axis=1)
            logits /= temperature
        if not np.isfinite(logits).all():
            # an overflow would turn every choice of these triplets into a coin toss
            raise GlocalError(
                f"simulate_triplets: the choice logits (dot products / temperature) overflow "
                f"for {int((~np.isfinite(logits)).any(axis=1).sum())} triplets (largest "
                f"|embedding| value {np.abs(embedding).max():.3g}, temperature {temperature:g}); "
                "raise the temperature (--temperature) or rescale the embedding"
            )
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        pair[rows] = (uniform[rows, None] > np.cumsum(probs, axis=1)[:, :2]).sum(axis=1)
    order = np.array([[0, 1, 2], [0, 2, 1], [1, 2, 0]])[pair]
    return np.take_along_axis(triples, order, axis=1)


def _integer(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _distinct_triples(rng: np.random.Generator, n_pool: int, n: int) -> np.ndarray:
    """Draw ``n`` triples of distinct positions in ``range(n_pool)`` without Python loops."""
    first = rng.integers(0, n_pool, size=n)
    second = rng.integers(0, n_pool - 1, size=n)
    second += second >= first
    third = rng.integers(0, n_pool - 2, size=n)
    low, high = np.minimum(first, second), np.maximum(first, second)
    third += third >= low
    third += third >= high
    return np.stack([first, second, third], axis=1)
