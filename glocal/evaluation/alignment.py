"""Alignment with human odd-one-out choices: triplet similarities and odd-one-out accuracy.

The functions live in the core (:mod:`glocal.scoring`, which the fitter scores with); this
module is their place among the evaluations. Representational similarity analysis lives in
:mod:`glocal.evaluation.rsa`.
"""

from __future__ import annotations

# re-exported (``name as name``); no ``__all__``, so that the API reference lists each
# function once, under glocal.scoring
from glocal.scoring import answered_correctly as answered_correctly
from glocal.scoring import odd_one_out_accuracy as odd_one_out_accuracy
from glocal.scoring import triplet_correct as triplet_correct
from glocal.scoring import triplet_similarities as triplet_similarities
