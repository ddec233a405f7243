"""``python -m companion``: the same as ``glocal reproduce``."""

from companion.pipeline.runner import main

if __name__ == "__main__":  # Dask's local workers import this module again
    raise SystemExit(main())
