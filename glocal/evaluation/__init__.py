"""Evaluation of representations, one module per measurement.

``alignment`` (odd-one-out accuracy, RSA), ``neighbours`` (local structure), ``structure``
(global structure), ``few_shot``, ``anomaly``, ``categories`` (THINGS category tasks),
``shift`` (accuracy under distribution shift) and
``comparison`` (every measurement of a set of transforms in one table). The functions are also
exported from the top-level ``glocal`` package.
"""
