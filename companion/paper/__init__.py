"""The companion's paper experiments: what the result notebooks measure and draw.

Profile inputs, split by topic (``inputs``: the ``Inputs`` of a feature source and
``load_inputs``; ``triplets``: the object split and the triplets; ``text_features``: text
features and the contrast vocabulary; ``image_features``: feature sources, image feature
stores, downstream data and similarity sets), cached fits and the settings the search chooses
(``fits``), cross-fitting over the object-disjoint folds (``crossfit``), paired comparisons
(``comparisons``), measurement tables (``tables``), sweeps with intervals (``sweeps``), page
10's human judgement sets (``judgements``), page 11's distribution shift (``shift``, with its
text corruptions ``text_corruptions``), the controlled simulation (``scenarios``) and figures
and their theme (``plotting``).
"""
