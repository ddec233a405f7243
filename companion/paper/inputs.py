"""Profile inputs: the :class:`Inputs` of a feature source (THINGS features, contrast set,
triplets) that :func:`load_inputs` gathers from the topic modules (``triplets``,
``text_features``, ``image_features``), and what a page says about its profile."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from companion.paper.image_features import _image_features, parse_source, reference_transform
from companion.paper.text_features import (
    TEXT_KINDS,
    TEXT_LABELS,
    TEXT_MODEL,
    TEXT_MODULE,
    contrast_text_features,
    things_text_features,
)
from companion.paper.triplets import TripletData, make_triplets
from glocal.errors import GlocalError

CHANCE = 1.0 / 3.0
#: Downstream tasks of the quick profile: held-out THINGS concepts labelled by their broadest
#: (coarse) or most specific (fine) THINGS category (see glocal.evaluation.categories).
THINGS_TASKS: dict[str, Literal["largest", "smallest", "drop"]] = {
    "things-coarse": "largest",
    "things-fine": "smallest",
}
#: What the smoke profile's pages say first: its numbers come from random weights.
SMOKE_NOTE = (
    "**Smoke profile: every number on this page comes from models with random weights on a "
    "generated miniature of the datasets, and means nothing.** The page only shows that the "
    "paper profile's code path runs end to end; run `make reproduce PROFILE=paper` for results."
)
SMOKE_NOTE_PLANTED = (
    "**Smoke profile: this page runs the controlled simulation at its smallest sizes only to "
    "show that it runs; its numbers are not results.** The `quick` and `paper` profiles run it "
    "at full size."
)
SMOKE_NOTE_RELEASED = (
    "**Smoke profile: the rest of this book's numbers come from random weights and mean "
    "nothing.** This page alone reads the released transform files themselves, as every "
    "profile does, so its numbers are the real ones."
)
SMOKE_NOTES = {"features": SMOKE_NOTE, "planted": SMOKE_NOTE_PLANTED,
               "released": SMOKE_NOTE_RELEASED}  # fmt: skip


@dataclass(frozen=True)
class Inputs:
    """Everything a notebook fits and measures: THINGS features, contrast set and triplets.

    ``features`` (1854, p) are in THINGS order; ``contrast`` (n, p) feeds the local term and
    ``contrast_eval`` (other items of the same kind) checks local structure off THINGS.
    """

    source: str
    label: str
    model: str
    module: str
    features: np.ndarray
    contrast: np.ndarray
    contrast_eval: np.ndarray
    triplets: TripletData
    #: False for a random-weight source (``random:MODEL:MODULE``, the smoke profile).
    pretrained: bool = True
    #: The released official transform of this model (image sources), applied beside the fits.
    reference: Any = None
    reference_note: str = ""

    def with_train_size(self, n: int) -> Inputs:
        """The same inputs with only the first ``n`` training triplets."""
        return replace(self, triplets=self.triplets.with_train_size(n))

    def describe(self) -> pd.DataFrame:
        """One row per input: what it is and how big."""
        t = self.triplets
        rows = [
            ("THINGS features", self.label, f"{self.features.shape[0]} × {self.features.shape[1]}"),
            ("contrast set (local term)", "fit", f"{len(self.contrast)} items"),
            ("contrast set (evaluation)", "held out", f"{len(self.contrast_eval)} items"),
            ("training triplets", t.source, f"{len(t.train):,} on {len(t.train_objects)} objects"),
            ("validation triplets", "early stopping", f"{len(t.val):,} on the same objects"),
            ("test triplets", "held-out objects", f"{len(t.test):,} on {len(t.heldout)} objects"),
            ("ceiling", t.ceiling_label, f"{t.ceiling:.4f}"),
        ]
        return pd.DataFrame(rows, columns=["input", "what", "size"])


def load_inputs(
    source: str,
    n_train: int | None = 300_000,
    n_val: int = 30_000,
    n_test: int | None = 50_000,
    n_contrast: int = 10_000,
    n_contrast_eval: int = 2_000,
    triplets: str = "auto",
    n_folds: int = 5,
    fold: int = 0,
    seed: int = 0,
    device: str = "auto",
    verbose: int = 0,
) -> Inputs:
    """The inputs of one feature source in the quick or paper profile.

    ``source="text:words"`` or ``"text:definitions"`` (quick): MiniLM features of the THINGS
    concepts, a contrast set of other English words from the encoder's vocabulary (``n_contrast``
    for the local term, ``n_contrast_eval`` more for evaluation), and triplets from
    :func:`make_triplets` (``triplets="auto"``: THINGS-data if cached, else simulated).
    ``source="MODEL:MODULE"`` (paper): that model's THINGS image features and ImageNet contrast
    features from the feature store and the real THINGS triplets (the modelling set, without
    the noise-ceiling triplets); anything missing raises :class:`DataUnavailableError` naming
    the input and the command that provides it. ``source="random:MODEL:MODULE"`` (smoke): the
    same with random weights, and ``triplets="auto"`` simulates the choices from VICE when the
    THINGS-data file is not cached. Image sources carry the model's released transform
    (:func:`reference_transform`) as ``reference``.
    """
    model, what, pretrained = parse_source(source)
    if model == "text":
        if what not in TEXT_KINDS:
            raise GlocalError(f"source {source!r}: the text kind must be one of {TEXT_KINDS}")
        features = things_text_features(what, device, verbose)
        pool = contrast_text_features(n_contrast + n_contrast_eval, seed, device, verbose)
        split = make_triplets(n_train, n_val, n_test, triplets, n_folds, fold, seed)
        return Inputs(
            source, TEXT_LABELS[what], TEXT_MODEL, TEXT_MODULE, features,
            pool[:n_contrast], pool[n_contrast:], split,
        )  # fmt: skip
    if triplets == "auto":  # pretrained models need the real choices; random ones simulate
        triplets = "things" if pretrained else "auto"
    features, contrast_pool = _image_features(
        model, what, n_contrast + n_contrast_eval, seed, pretrained, triplets == "things"
    )
    split = make_triplets(n_train, n_val, n_test, triplets, n_folds, fold, seed)
    reference, note = reference_transform(model, what)
    label = f"{model} / {what}" + ("" if pretrained else " (random weights)")
    return Inputs(
        source, label, model, what, features,
        contrast_pool[:n_contrast], contrast_pool[n_contrast:], split,
        pretrained, reference, note,
    )  # fmt: skip


def with_reference(inputs: Inputs, transforms: dict[str, Any]) -> dict[str, Any]:
    """``transforms`` plus ``"official"``, the model's released transform, when it has one.

    The paper's tables report the official transform beside glocal's own fits, on the same
    features; text sources (quick, tiny) have none, and get ``transforms`` unchanged.
    """
    if inputs.reference is None or "official" in transforms:
        return dict(transforms)
    return {**transforms, "official": inputs.reference}


#: How a page's numbers relate to the paper's, per profile (the Result box of every page).
SCOPES = {
    "paper": "the paper's setting: image features and the THINGS triplets",
    "quick": "a text-domain analogue (profile quick: MiniLM text features, triplets simulated "
    "from VICE), not the paper's image experiment",
    "smoke": "a generated miniature world (profile smoke): these numbers mean nothing",
    "tiny": "the smallest run (profile tiny): these numbers mean nothing",
}


def scope(profile: str) -> str:
    """What a page's numbers are evidence about in ``profile`` (:data:`SCOPES`)."""
    if profile not in SCOPES:
        raise GlocalError(f"profile {profile!r}: choose one of {sorted(SCOPES)}")
    return SCOPES[profile]


def profile_note(profile: str, page: str = "features") -> None:
    """Show the smoke profile's warning on a page; nothing in other profiles.

    ``page``: ``features`` (its numbers come from random weights), ``planted`` (the controlled
    simulation at its smallest sizes) or ``released`` (the released transforms themselves).
    """
    if page not in SMOKE_NOTES:
        raise GlocalError(f"page must be one of {sorted(SMOKE_NOTES)}, got {page!r}")
    if profile == "smoke":
        from companion.paper.plotting import say

        say(SMOKE_NOTES[page])
