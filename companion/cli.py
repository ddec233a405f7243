"""Forwards to :mod:`companion.pipeline.cli`: installs made before the companion's split name
``companion.cli:register`` as their ``glocal reproduce`` entry point (``pip install -e .``
again updates them; remove this module once no such install is left)."""

from companion.pipeline.cli import register

__all__ = ["register"]
