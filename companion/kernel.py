"""Deprecated: ``python -m companion.kernel`` is ``python -m companion.pipeline.kernel``."""

from __future__ import annotations

import warnings

if __name__ == "__main__":
    warnings.warn(
        "python -m companion.kernel is deprecated; run python -m companion.pipeline.kernel",
        DeprecationWarning,
        stacklevel=1,
    )
    from companion.pipeline.kernel import kernel_name

    print(kernel_name())
