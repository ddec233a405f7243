"""THINGS helpers: concepts, categories, human embedding, triplets and images, in canonical order.

The canonical object order is the row order of ``things_concepts.tsv``: object i of every
triplet file, row i of the VICE embedding and of the category matrix. Every helper checks its
data against that order and fails loudly on a mismatch.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from glocal import data
from glocal.errors import GlocalError

N_OBJECTS = 1854
DEFINITION = "Definition (from WordNet, Google, or Wikipedia)"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
SPLITS = ("train", "test", "all")
SPLIT_SEED = 0
TEST_SIZE = 0.1


@lru_cache(maxsize=8)
def _read_tsv(path: str, stamp: tuple[int, int]) -> pd.DataFrame:
    # keep_default_na=False: words such as "null" or "nan" are not missing values
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def _table(name: str) -> tuple[pd.DataFrame, Path]:
    path = data.fetch(name)
    stat = path.stat()
    return _read_tsv(str(path), (stat.st_mtime_ns, stat.st_size)).copy(), path


def _numeric(frame: pd.DataFrame) -> pd.DataFrame:
    for column in frame.columns:
        converted = pd.to_numeric(frame[column].replace("", np.nan), errors="coerce")
        filled = frame[column].replace("", np.nan).notna()
        if filled.any() and converted[filled].notna().all():
            frame[column] = converted
    return frame


def concepts() -> pd.DataFrame:
    """The 1854 THINGS concepts in canonical order: all columns of ``things_concepts.tsv``.

    Adds ``definition`` (a copy of the WordNet/Google/Wikipedia definition). ``uniqueID`` is
    unique (``Word`` is not: THINGS has homonyms such as bow x3). The order is checked against
    ``item_names.tsv``.
    """
    frame, path = _table("things/concepts")
    if len(frame) != N_OBJECTS:
        raise GlocalError(f"{path}: expected {N_OBJECTS} concept rows, found {len(frame)}")
    ids = frame["uniqueID"]
    if (ids == "").any() or not ids.is_unique:
        raise GlocalError(f"{path}: column 'uniqueID' must be non-empty and unique")
    items, items_path = _table("things/item_names")
    if items["uniqueID"].tolist() != ids.tolist():
        row = int(np.flatnonzero(items["uniqueID"].to_numpy() != ids.to_numpy())[0])
        raise GlocalError(
            f"object order mismatch: row {row} is {ids.iloc[row]!r} in {path} but "
            f"{items['uniqueID'].iloc[row]!r} in {items_path}"
        )
    frame = _numeric(frame)
    frame["definition"] = frame[DEFINITION]
    return frame


def _key(text: str) -> str:
    return text.strip().lower().replace(" ", "_").replace("-", "_")


def categories() -> pd.DataFrame:
    """Object x category membership: 1854 rows (index ``uniqueID``, canonical order), 53 int 0/1.

    The file's ``Word`` column holds a uniqueID-like key with spaces for underscores, and plain
    words for 15 homonym groups (bat, baton, ...). Rows are matched to concepts by that key
    (against ``uniqueID``, else ``Word``) together with the definition, so homonyms are told
    apart; the trailing totals row is dropped after checking it equals the column sums.
    """
    raw, path = _table("things/categories")
    table = concepts()
    rows = raw[raw["Word"].str.strip() != ""]
    totals = raw[raw["Word"].str.strip() == ""]
    cat_columns = [c for c in raw.columns[2:] if c.strip() and not c.startswith("Unnamed")]
    matrix = rows[cat_columns].replace("", "0")
    try:
        values = matrix.astype(float).to_numpy()
    except ValueError as err:
        raise GlocalError(f"{path}: category columns must hold 0, 1 or nothing ({err})") from err
    if not np.isin(values, (0, 1)).all():
        raise GlocalError(f"{path}: category columns must hold 0 or 1 (empty = 0)")
    if len(totals) == 1:
        sums = totals[cat_columns].replace("", "0").astype(float).to_numpy()[0]
        if not np.array_equal(sums, values.sum(axis=0)):
            raise GlocalError(f"{path}: the totals row does not match the column sums")
    by_id = {_key(u): i for i, u in enumerate(table["uniqueID"])}
    by_word = {
        (_key(w), d.strip()): i
        for i, (w, d) in enumerate(zip(table["Word"], table[DEFINITION], strict=True))
    }
    definitions = [d.strip() for d in table[DEFINITION]]
    order = np.full(len(rows), -1)
    for r, (word, definition) in enumerate(zip(rows["Word"], rows[DEFINITION], strict=True)):
        index = by_id.get(_key(word))
        if index is None or definitions[index] != definition.strip():
            index = by_word.get((_key(word), definition.strip()), -1)
        if index < 0:
            raise GlocalError(
                f"{path}: row {r} (Word {word!r}) matches no concept of things_concepts.tsv by "
                "uniqueID (or Word) and definition; the files are from different releases"
            )
        order[r] = index
    if len(rows) != N_OBJECTS or len(set(order.tolist())) != N_OBJECTS:
        raise GlocalError(
            f"{path}: expected one row for each of the {N_OBJECTS} concepts, found {len(rows)} "
            f"rows covering {len(set(order.tolist()))} concepts"
        )
    result = np.zeros((N_OBJECTS, len(cat_columns)), dtype=np.int64)
    result[order] = values.astype(np.int64)
    index = pd.Index(table["uniqueID"], name="uniqueID")
    return pd.DataFrame(result, index=index, columns=[c.strip() for c in cat_columns])


def human_embedding() -> np.ndarray:
    """The VICE human object embedding, float32 (1854, 42); row i = concept i."""
    path = data.fetch("human/vice_embedding")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise GlocalError(f"{path} is not a readable .npy array ({err})") from err
    if array.ndim != 2 or array.shape[0] != N_OBJECTS:
        raise GlocalError(f"{path}: expected shape ({N_OBJECTS}, d), got {array.shape}")
    if not np.isfinite(array).all():
        raise GlocalError(f"{path}: the embedding holds NaN or infinite values")
    return array.astype(np.float32, copy=False)


NOISE_CEILING_COLUMN = "noise_ceiling"


def noise_ceiling_rows(path: str | os.PathLike) -> np.ndarray:
    """Boolean mask of the rows of a THINGS-data triplet CSV that belong to the noise-ceiling
    set (``noise_ceiling`` = 1): triplets shown to many participants to estimate the human
    noise ceiling, which the paper leaves out of its 4.57M-triplet modelling set."""
    path = Path(path)
    with open(path, encoding="utf-8-sig") as fh:
        header = fh.readline()
    sep = "\t" if "\t" in header else ","
    columns = [c.strip().strip('"') for c in header.strip().split(sep)]
    if NOISE_CEILING_COLUMN not in columns:
        raise GlocalError(
            f"THINGS triplet file {path}: no column {NOISE_CEILING_COLUMN!r} (found {columns}); "
            "the noise-ceiling rows cannot be told apart"
        )
    frame = pd.read_csv(path, sep=sep, encoding="utf-8-sig", skipinitialspace=True,
                        usecols=lambda c: c.strip().strip('"') == NOISE_CEILING_COLUMN)  # fmt: skip
    values = pd.to_numeric(frame.iloc[:, 0], errors="coerce").fillna(0).to_numpy()
    return values.astype(np.int64) == 1


def triplets(
    split: str, source: str | os.PathLike | None = None, exclude_noise_ceiling: bool = False
) -> np.ndarray:
    """THINGS odd-one-out triplets, int64 (n, 3) of 0-based (similar, similar, odd) indices.

    ``exclude_noise_ceiling`` drops the noise-ceiling rows (:func:`noise_ceiling_rows`) before
    the split: the paper's modelling set.

    ``split``: ``train`` or ``test`` (a seeded random 90/10 split, ``glocal.triplets.random_split``
    with ``test_size=0.1, seed=0``; the paper's train_90/test_10 files are not public at a pinned
    location, so this split is glocal's own, not the paper's), or ``all``. ``source`` is a
    THINGS-data CSV to use instead of the registry file. Splits are cached as ``.npy`` files under
    ``cache_dir()/derived``, keyed by the CSV's sha256.
    """
    from glocal.io import save_npy
    from glocal.triplets import load_things_csv, random_split, validate_triplets

    if split not in SPLITS:
        raise GlocalError(f"unknown triplet split {split!r}; choose one of {SPLITS}")
    if source is None:
        entry = next(e for e in data.registry() if e.name == "things/triplets")
        sha = entry.served.sha256
    else:
        source = Path(source)
        if not source.is_file():
            raise GlocalError(f"THINGS triplet file {source} does not exist")
        sha = data.sha256sum(source)
    stem = f"things_triplets_{sha[:16] if sha else 'unpinned'}_seed{SPLIT_SEED}"
    if exclude_noise_ceiling:
        stem += "_modelling"
    cached = data.cache_dir() / "derived" / f"{stem}_{split}.npy"
    if sha and cached.is_file():
        return validate_triplets(np.load(cached), N_OBJECTS, where=str(cached))
    csv = data.fetch("things/triplets") if source is None else source
    every = load_things_csv(csv, n_objects=N_OBJECTS)
    if exclude_noise_ceiling:
        every = every[~noise_ceiling_rows(csv)]
    parts = random_split(every, test_size=TEST_SIZE, seed=SPLIT_SEED)
    chosen = {"all": every, "train": parts.train, "test": parts.test}
    if sha:
        for name, array in chosen.items():
            save_npy(data.cache_dir() / "derived" / f"{stem}_{name}.npy", array)
    return chosen[split]


def reference_images(images_root: str | os.PathLike | None = None) -> list[Path]:
    """One reference image per concept, in canonical order.

    ``images_root`` holds one folder per concept named by ``uniqueID`` (a root holding an
    ``object_images`` folder is accepted too); None uses the registry's THINGS image folder.
    The reference image of a concept is the first image file of its folder in sorted file-name
    order (in the THINGS release ``<uniqueID>_01b.jpg``).
    """
    root = data.fetch("things/images") if images_root is None else Path(images_root).expanduser()
    if not root.is_dir():
        raise GlocalError(f"THINGS image folder {root} does not exist")
    ids = concepts()["uniqueID"].tolist()
    if not (root / ids[0]).is_dir() and (root / "object_images").is_dir():
        root = root / "object_images"
    missing = [u for u in ids if not (root / u).is_dir()]
    if missing:
        raise GlocalError(
            f"THINGS image folder {root}: {len(missing)} of {len(ids)} concept folders are "
            f"missing (named by uniqueID), e.g. {', '.join(missing[:5])}; point images_root at "
            "the unpacked object_images folder of the THINGS database"
        )
    images = []
    for u in ids:
        files = sorted(
            p
            for p in (root / u).iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise GlocalError(f"THINGS image folder {root / u} holds no image files")
        images.append(files[0])
    return images
