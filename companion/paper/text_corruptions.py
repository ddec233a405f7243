"""Seeded character-level corruptions of text (typos) at a stated share of edited characters."""

from __future__ import annotations

import string
from collections.abc import Sequence

import numpy as np

from glocal.errors import GlocalError

#: The kinds of edit: swap two adjacent characters, delete one, insert a letter, substitute one.
TEXT_CORRUPTIONS = ("swap", "delete", "insert", "substitute")
LETTERS = string.ascii_lowercase


def n_edits(length: int, severity: float) -> int:
    """Edits made to a text of ``length`` characters: ``round(severity · length)``, at least 1
    when ``severity > 0`` (a short word still changes), and never more than the text allows
    (swaps need two characters each, deletions leave one)."""
    if not 0.0 <= severity <= 1.0:
        raise GlocalError(f"severity must lie in [0, 1] (share of characters), got {severity}")
    if severity == 0 or length == 0:
        return 0
    return max(1, int(round(severity * length)))


def _stream(kind: str, severity: float, index: int, seed: int) -> np.random.Generator:
    key = [seed, TEXT_CORRUPTIONS.index(kind), int(round(severity * 10_000)), index]
    return np.random.default_rng(key)


def corrupt_text(text: str, kind: str, severity: float, rng: np.random.Generator) -> str:
    """``text`` with :func:`n_edits` edits of one ``kind`` at distinct, non-overlapping places.

    ``swap`` exchanges two adjacent, different characters; ``delete`` removes a character;
    ``insert`` puts a random lower-case letter before a character (or at the end);
    ``substitute`` replaces a character by a different lower-case letter. The Damerau
    (optimal string alignment) distance between the result and ``text`` is the number of
    edits, so ``severity`` is the share of characters edited. Fewer edits are made when the
    text has too few places (a swap needs two different neighbours; a deletion leaves at least
    one character).

    Parameters
    ----------
    text : str
        The text to corrupt.
    kind : {"swap", "delete", "insert", "substitute"}
        The kind of edit.
    severity : float
        Share of the characters to edit, in [0, 1].
    rng : numpy.random.Generator
        Where the places and letters come from.

    Returns
    -------
    str
        The corrupted text.

    Raises
    ------
    GlocalError
        For an unknown ``kind`` or a ``severity`` outside [0, 1].
    """
    if kind not in TEXT_CORRUPTIONS:
        raise GlocalError(f"unknown text corruption {kind!r}; choose one of {TEXT_CORRUPTIONS}")
    chars = list(text)
    k = n_edits(len(chars), severity)
    if k == 0:
        return text
    if kind == "swap":
        places = [i for i in range(len(chars) - 1) if chars[i] != chars[i + 1]]
        chosen: list[int] = []
        for i in rng.permutation(places).tolist():
            if len(chosen) == k:
                break
            if all(abs(i - j) > 1 for j in chosen):  # disjoint pairs
                chosen.append(i)
        for i in chosen:
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        return "".join(chars)
    if kind == "delete":
        k = min(k, len(chars) - 1)
        drop = set(rng.choice(len(chars), size=k, replace=False).tolist())
        return "".join(c for i, c in enumerate(chars) if i not in drop)
    if kind == "insert":
        places = sorted(rng.choice(len(chars) + 1, size=min(k, len(chars) + 1),
                                   replace=False).tolist())  # fmt: skip
        for i in reversed(places):
            chars.insert(i, LETTERS[int(rng.integers(len(LETTERS)))])
        return "".join(chars)
    for i in rng.choice(len(chars), size=min(k, len(chars)), replace=False).tolist():
        options = [c for c in LETTERS if c != chars[i].lower()]
        chars[i] = options[int(rng.integers(len(options)))]
    return "".join(chars)


def corrupt_texts(texts: Sequence[str], kind: str, severity: float, seed: int = 0) -> list[str]:
    """Every text corrupted by :func:`corrupt_text`, text i with its own generator seeded by
    (``seed``, kind, severity, i): the same call gives the same texts, and a text's corruption
    does not depend on the others."""
    if kind not in TEXT_CORRUPTIONS:
        raise GlocalError(f"unknown text corruption {kind!r}; choose one of {TEXT_CORRUPTIONS}")
    n_edits(1, severity)  # checks the severity
    return [corrupt_text(t, kind, severity, _stream(kind, severity, i, seed))
            for i, t in enumerate(texts)]  # fmt: skip
