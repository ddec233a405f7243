"""Human similarity judgements beyond THINGS: SimLex-999 word pairs and three image sets.

- **SimLex-999** (Hill, Reichart & Korhonen 2015): 999 English word pairs with the mean human
  rating of their similarity (0-10; genuine similarity, not relatedness). Registry entry
  ``human/simlex999``; :func:`simlex999`.
- **Three image sets** whose human matrices the official gLocal code correlates with models'
  (RSA), in the layouts its readers (LukasMut/gLocal ``data/multi_arrangement.py``,
  ``free_arrangement.py``, ``peterson.py``) expect; :func:`similarity_judgements`. Images are
  in the order of their sorted file names, as the official readers list them.

  ``multi-arrangement`` (Cichy et al. 2019; registry ``human/multi-arrangement``)
      ``ROOT/images/*.jpg`` (the 118 images) and ``ROOT/sim_judgements/judgments_general.mat``
      with the variable ``judgments``: one dissimilarity matrix per participant,
      (participants, 118, 118). The group matrix is their mean.
  ``free-arrangement/set1``, ``/set2`` (King et al. 2019; ``human/free-arrangement``)
      ``ROOT/images/SET/*.jpg``, ``ROOT/images/stimulus_category_labels.txt`` (the official
      reader's list of stimuli; not needed here) and ``ROOT/sim_judgements/BEHAVIOR.mat`` with
      the struct ``BEHAVIOR.SET.pairwisedistances``: one row of pairwise distances per
      participant, (participants, n(n-1)/2), in ``pdist`` order (pairs i < j, row by row).
  ``peterson/CATEGORY`` (Peterson et al. 2016, 2018; ``human/peterson``)
      for the categories animals, automobiles, fruits, furniture, various and vegetables:
      ``ROOT/CATEGORY/images/*.jpg|png`` and in ``ROOT/CATEGORY/sim_judgements/`` either a
      ``.mat`` file whose name contains "sim" holding one variable whose name contains "sim"
      (the mean similarity matrix, n x n), or a ``.pickle`` of ``{"IMAGE_A,IMAGE_B": [ratings]}``
      (each pair's ratings, 0-10; image names carry the image's 1-based number). Peterson's
      matrices are similarities; there is one matrix for the group only.
"""

from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from glocal.errors import GlocalError

SIMLEX = "human/simlex999"
#: The image sets: set name -> (registry entry of its folder, the family's loader).
FAMILIES = {
    "multi-arrangement": "human/multi-arrangement",
    "free-arrangement": "human/free-arrangement",
    "peterson": "human/peterson",
}
FREE_ARRANGEMENT_SETS = ("set1", "set2")
PETERSON_CATEGORIES = ("animals", "automobiles", "fruits", "furniture", "various", "vegetables")
#: Every image set by name, in the official code's order.
SIMILARITY_SETS: tuple[str, ...] = (
    "multi-arrangement",
    *(f"free-arrangement/{s}" for s in FREE_ARRANGEMENT_SETS),
    *(f"peterson/{c}" for c in PETERSON_CATEGORIES),
)
IMAGE_FOLDER, JUDGEMENTS_FOLDER = "images", "sim_judgements"
MAXIMUM_RATING = 10.0


# --- SimLex-999 --------------------------------------------------------------------------------


def _simlex_fail(path: Path, line: int, what: str) -> GlocalError:
    return GlocalError(
        f"SimLex-999 file {path}, line {line}: {what}; expected tab-separated 'word 1, word 2, "
        "mean rating (0-10)' after '#' comment lines (the registry file human/simlex999), or the "
        "original SimLex-999.txt with columns word1, word2 and SimLex999; replace the file with "
        "`glocal data fetch human/simlex999`"
    )


def read_simlex(path: str | os.PathLike) -> pd.DataFrame:
    """Read a SimLex-999 file: one row per pair, columns ``word1``, ``word2``, ``similarity``.

    Two layouts are read: the registry's copy (lines starting with ``#`` are comments, then
    ``word<TAB>word<TAB>rating``) and the original ``SimLex-999.txt`` (a header line naming
    ``word1``, ``word2`` and ``SimLex999`` among other columns). Words are kept as written
    (SimLex's are lower case); ratings must be numbers in [0, 10]; an ordered pair may occur once
    (SimLex-999 rates *sly - strange* and *strange - sly* separately).

    Raises
    ------
    GlocalError
        Naming the file, the line and the field of the first malformed line, and the fix.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise GlocalError(f"SimLex-999 file {path} cannot be read ({err})") from err
    columns = (0, 1, 2)
    rows: list[tuple[str, str, float]] = []
    seen: dict[tuple[str, str], int] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")]
        if not rows and "word1" in fields and "SimLex999" in fields:  # the original header
            columns = (fields.index("word1"), fields.index("word2"), fields.index("SimLex999"))
            continue
        if len(fields) <= max(columns):
            raise _simlex_fail(path, number, f"{len(fields)} tab-separated fields")
        word1, word2, value = (fields[c] for c in columns)
        for name, word in (("word 1", word1), ("word 2", word2)):
            if not word:
                raise _simlex_fail(path, number, f"field {name!r} is empty")
        try:
            rating = float(value)
        except ValueError:
            raise _simlex_fail(path, number, f"field 'rating' is {value!r}, not a number") from None
        if not 0.0 <= rating <= MAXIMUM_RATING:
            raise _simlex_fail(path, number, f"field 'rating' is {rating}, outside [0, 10]")
        key = (word1.lower(), word2.lower())  # ordered: SimLex rates sly-strange and strange-sly
        if key in seen:
            raise _simlex_fail(path, number, f"the pair {word1}-{word2} repeats line {seen[key]}")
        seen[key] = number
        rows.append((word1, word2, rating))
    if not rows:
        raise _simlex_fail(path, len(lines), "no word pairs")
    return pd.DataFrame(rows, columns=["word1", "word2", "similarity"])


def simlex999(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """SimLex-999: 999 word pairs with the mean human similarity rating (0-10).

    Read from ``path``, else from the registry file ``human/simlex999`` (checksummed; the
    offline mirror, the cache, or a download). Columns ``word1``, ``word2``, ``similarity``.

    Examples
    --------
    >>> pairs = simlex999()  # doctest: +SKIP
    >>> pairs.iloc[1].tolist()  # doctest: +SKIP
    ['smart', 'intelligent', 9.2]
    """
    if path is None:
        from glocal import data

        path = data.fetch(SIMLEX)
    return read_simlex(path)


# --- the image sets ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SimilarityJudgements:
    """One image set's human judgements: the images and the matrix over them.

    Attributes
    ----------
    name : str
        The set (one of :data:`SIMILARITY_SETS`).
    root : Path
        The folder of its family (the registry entry's folder).
    ids : tuple of str
        Each image's path relative to ``root`` (POSIX), in the matrix's row order; the item ids
        of a feature store of the family's images.
    matrix : ndarray of shape (n, n)
        The group's matrix (only the pairs i < j are meaningful).
    kind : {"dissimilarity", "similarity"}
        What ``matrix`` holds.
    subjects : ndarray of shape (s, n(n-1)/2) or None
        Each participant's pair values in ``pdist`` order, when the set has them.
    source : str
        The file the judgements were read from.
    """

    name: str
    root: Path
    ids: tuple[str, ...]
    matrix: np.ndarray = field(repr=False)
    kind: str
    subjects: np.ndarray | None = field(default=None, repr=False)
    source: str = ""

    @property
    def images(self) -> list[Path]:
        """The image files, in the matrix's row order."""
        return [self.root / i for i in self.ids]

    def __len__(self) -> int:
        return len(self.ids)


def _set_error(name: str, root: Path, what: str) -> GlocalError:
    family = name.split("/")[0]
    return GlocalError(
        f"{name} at {root}: {what}; lay the set out as the official gLocal reader does (see "
        f"glocal.data.human) or get it as `glocal data fetch {FAMILIES[family]}` describes"
    )


def _images(folder: Path, name: str, root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if not folder.is_dir():
        raise _set_error(name, root, f"no folder {folder.relative_to(root)}/")
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(suffixes))
    if len(found) < 3:
        raise _set_error(
            name, root,
            f"{folder} holds {len(found)} images ({'|'.join(suffixes)}); at least 3 are needed",
        )  # fmt: skip
    return found


def _loadmat(path: Path, name: str, root: Path) -> dict[str, Any]:
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    if not path.is_file():
        raise _set_error(name, root, f"no file {path.relative_to(root)}")
    try:
        return loadmat(path, simplify_cells=True)
    except (MatReadError, NotImplementedError, ValueError, OSError, TypeError) as err:
        raise GlocalError(
            f"{name}: {path} is not a MATLAB file scipy.io.loadmat reads ({err}); a v7.3 (HDF5) "
            "file must be saved again with -v7"
        ) from err


def _field(value: Any, keys: tuple[str, ...], path: Path) -> Any:
    """``value[k1][k2]...``, failing with the path of fields that is missing."""
    for depth, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            have = sorted(k for k in value if not k.startswith("__")) if isinstance(
                value, dict) else type(value).__name__  # fmt: skip
            raise GlocalError(
                f"{path}: no field {'.'.join(keys[: depth + 1])!r} (found {have}); the file is "
                "not the one the official reader expects"
            )
        value = value[key]
    return value


def _numeric(value: Any, path: Path, what: str, ndim: int) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "biuf" or array.ndim != ndim:
        raise GlocalError(
            f"{path}: field {what!r} must be a numeric {ndim}-D array, got {array.dtype} of "
            f"shape {array.shape}"
        )
    return array.astype(np.float64)


def _relative(paths: list[Path], root: Path) -> tuple[str, ...]:
    return tuple(p.relative_to(root).as_posix() for p in paths)


def _condensed(matrices: np.ndarray) -> np.ndarray:
    rows, cols = np.triu_indices(matrices.shape[-1], 1)
    return matrices[:, rows, cols]


def _square(pairs: np.ndarray, n: int) -> np.ndarray:
    matrix = np.zeros((n, n))
    rows, cols = np.triu_indices(n, 1)
    matrix[rows, cols] = pairs
    matrix[cols, rows] = pairs
    return matrix


def multi_arrangement(root: str | os.PathLike) -> SimilarityJudgements:
    """The multi-arrangement set of Cichy et al. (2019): 118 images, one RDM per participant."""
    root, name = Path(root), "multi-arrangement"
    images = _images(root / IMAGE_FOLDER, name, root, (".jpg",))
    path = root / JUDGEMENTS_FOLDER / "judgments_general.mat"
    judgments = _numeric(_field(_loadmat(path, name, root), ("judgments",), path), path,
                         "judgments", 3)  # fmt: skip
    n = len(images)
    if judgments.shape[1:] != (n, n):
        raise GlocalError(
            f"{path}: field 'judgments' has shape {judgments.shape}, but {root / IMAGE_FOLDER} "
            f"holds {n} images; expected (participants, {n}, {n})"
        )
    subjects = _condensed(judgments)
    return SimilarityJudgements(name, root, _relative(images, root),
                                _square(subjects.mean(axis=0), n), "dissimilarity", subjects,
                                str(path))  # fmt: skip


def free_arrangement(root: str | os.PathLike, stimulus_set: str = "set1") -> SimilarityJudgements:
    """One stimulus set of the free-arrangement data of King et al. (2019)."""
    root = Path(root)
    if stimulus_set not in FREE_ARRANGEMENT_SETS:
        raise GlocalError(
            f"free-arrangement: stimulus_set must be one of {FREE_ARRANGEMENT_SETS}, got "
            f"{stimulus_set!r}"
        )
    name = f"free-arrangement/{stimulus_set}"
    images = _images(root / IMAGE_FOLDER / stimulus_set, name, root, (".jpg",))
    path = root / JUDGEMENTS_FOLDER / "BEHAVIOR.mat"
    keys = ("BEHAVIOR", stimulus_set, "pairwisedistances")
    distances = _numeric(_field(_loadmat(path, name, root), keys, path), path, ".".join(keys), 2)
    n = len(images)
    if distances.shape[1] != n * (n - 1) // 2:
        raise GlocalError(
            f"{path}: field {'.'.join(keys)!r} has {distances.shape[1]} pairs per participant, "
            f"but {root / IMAGE_FOLDER / stimulus_set} holds {n} images ({n * (n - 1) // 2} "
            "pairs)"
        )
    return SimilarityJudgements(name, root, _relative(images, root),
                                _square(distances.mean(axis=0), n), "dissimilarity", distances,
                                str(path))  # fmt: skip


class _RatingsUnpickler(pickle.Unpickler):
    """Unpickles plain data only (dicts, lists, strings, numbers, NumPy scalars and arrays):
    a data file cannot run code."""

    ALLOWED = {
        ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"), ("numpy", "ndarray"),
    }  # fmt: skip

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not plain data")


def _pickled_ratings(path: Path, images: list[Path], name: str) -> np.ndarray:
    """The mean rating of every pair of ``images`` from ``{"A,B": [ratings]}``."""
    try:
        with open(path, "rb") as fh:
            ratings = _RatingsUnpickler(fh).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError) as err:
        raise GlocalError(f"{name}: {path} is not a pickle of plain ratings ({err})") from err
    if not isinstance(ratings, dict):
        raise GlocalError(f"{path}: expected a dict 'IMAGE_A,IMAGE_B' -> ratings")
    number: dict[int, int] = {}
    for i, image in enumerate(images):
        in_name = re.findall(r"\d+", image.stem)
        if in_name:
            number.setdefault(int(in_name[-1]), i)
    by_name = {p.name: i for i, p in enumerate(images)} | {p.stem: i for i, p in
                                                           enumerate(images)}  # fmt: skip
    n = len(images)
    total, count = np.zeros((n, n)), np.zeros((n, n))
    for key, values in ratings.items():
        parts = str(key).split(",")
        index: list[int] = []
        for part in parts:
            part = part.strip()
            digits = re.findall(r"\d+", part)
            found = by_name.get(Path(part).name, by_name.get(Path(part).stem))
            if found is None and digits:
                found = number.get(int(digits[-1]))
            if found is not None:
                index.append(found)
        if len(parts) != 2 or len(index) != 2:
            raise GlocalError(
                f"{path}: key {key!r} does not name two images of {images[0].parent} (by file "
                "name or by the 1-based number in it)"
            )
        scores = np.atleast_1d(np.asarray(values, dtype=np.float64))
        if not len(scores) or not np.isfinite(scores).all():
            raise GlocalError(f"{path}: pair {key!r} has no finite ratings")
        i, j = index
        for a, b in ((i, j), (j, i)):
            total[a, b] += scores.sum()
            count[a, b] += len(scores)
    rows, cols = np.triu_indices(n, 1)
    missing = int((count[rows, cols] == 0).sum())
    if missing:
        raise GlocalError(f"{path}: {missing} of {len(rows)} image pairs have no rating")
    matrix = np.full((n, n), MAXIMUM_RATING)
    off = count > 0
    matrix[off] = total[off] / count[off]
    return matrix


def peterson(root: str | os.PathLike, category: str) -> SimilarityJudgements:
    """One category of the similarity judgements of Peterson et al. (2016, 2018)."""
    root = Path(root)
    if category not in PETERSON_CATEGORIES:
        raise GlocalError(
            f"peterson: category must be one of {PETERSON_CATEGORIES}, got {category!r}"
        )
    name = f"peterson/{category}"
    images = _images(root / category / IMAGE_FOLDER, name, root, (".jpg", ".png"))
    folder = root / category / JUDGEMENTS_FOLDER
    if not folder.is_dir():
        raise _set_error(name, root, f"no folder {category}/{JUDGEMENTS_FOLDER}/")
    mats = sorted(p for p in folder.iterdir() if "sim" in p.name.lower() and p.suffix == ".mat")
    pickles = sorted(folder.glob("*.pickle"))
    n = len(images)
    if mats:
        path = mats[0]
        content = _loadmat(path, name, root)
        keys = [k for k in content if "sim" in k.lower() and not k.startswith("__")]
        if len(keys) != 1:
            raise GlocalError(
                f"{path}: expected one variable whose name contains 'sim' (the similarity "
                f"matrix), found {keys or sorted(k for k in content if not k.startswith('__'))}"
            )
        matrix = _numeric(content[keys[0]], path, keys[0], 2)
    elif pickles:
        path = pickles[0]
        matrix = _pickled_ratings(path, images, name)
    else:
        raise _set_error(
            name, root,
            f"{folder} holds neither a '*sim*.mat' similarity matrix nor a '.pickle' of ratings",
        )  # fmt: skip
    if matrix.shape != (n, n):
        raise GlocalError(
            f"{path}: the similarity matrix has shape {matrix.shape}, but "
            f"{root / category / IMAGE_FOLDER} holds {n} images; expected ({n}, {n})"
        )
    return SimilarityJudgements(name, root, _relative(images, root), matrix, "similarity", None,
                                str(path))  # fmt: skip


def family_of(name: str) -> str:
    """The family (registry folder) of a set name: ``peterson/fruits`` -> ``peterson``."""
    if name not in SIMILARITY_SETS:
        raise GlocalError(
            f"unknown similarity set {name!r}; choose one of {', '.join(SIMILARITY_SETS)}"
        )
    return name.split("/")[0]


def similarity_judgements(
    name: str, root: str | os.PathLike | None = None, download: bool = True
) -> SimilarityJudgements:
    """The human judgements of one image set of :data:`SIMILARITY_SETS`.

    Parameters
    ----------
    name : str
        ``multi-arrangement``, ``free-arrangement/set1`` or ``/set2``, or
        ``peterson/CATEGORY``.
    root : str, path-like or None, default=None
        The family's folder (laid out as the module docstring says); None: the registry's
        folder (``human/multi-arrangement``, ``human/free-arrangement``, ``human/peterson``) in
        the offline mirror or the cache.
    download : bool, default=True
        Passed to :func:`glocal.data.fetch` (the sets cannot be downloaded automatically; a
        missing folder raises :class:`glocal.errors.DataUnavailableError` saying where to put
        it).

    Returns
    -------
    SimilarityJudgements

    Raises
    ------
    GlocalError
        For an unknown set, or a folder that is not laid out as described (naming the file,
        the field and what was expected).
    """
    family = family_of(name)
    if root is None:
        from glocal import data

        root = data.fetch(FAMILIES[family], download=download)
    if family == "multi-arrangement":
        return multi_arrangement(root)
    if family == "free-arrangement":
        return free_arrangement(root, name.split("/")[1])
    return peterson(root, name.split("/")[1])


def family_images(family: str, root: str | os.PathLike) -> list[Path]:
    """Every image of a family's sets (the items of its feature store), in sorted order."""
    root = Path(root)
    names = [n for n in SIMILARITY_SETS if n.split("/")[0] == family]
    if not names:
        raise GlocalError(f"unknown similarity-set family {family!r}; choose one of "
                          f"{', '.join(FAMILIES)}")  # fmt: skip
    found: set[Path] = set()
    for name in names:
        found.update(similarity_judgements(name, root).images)
    return sorted(found)
