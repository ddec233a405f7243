"""The companion's paper experiments: what the result notebooks measure and draw.

Profile inputs (``inputs``), cached fits and the settings the search chooses (``fits``),
cross-fitting over the object-disjoint folds (``crossfit``), paired comparisons
(``comparisons``), measurement tables (``tables``), sweeps with intervals (``sweeps``), page
10's human judgement sets (``judgements``), page 11's distribution shift (``shift``), the
controlled simulation (``scenarios``) and figures and their theme (``plotting``).
"""
