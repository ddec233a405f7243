"""Python syntax trees, parsed one thread at a time: CPython 3.11's ``ast.parse`` is not
thread-safe (two searches started side by side in one process failed with "AST constructor
recursion depth mismatch")."""

from __future__ import annotations

import ast
import threading

_LOCK = threading.Lock()


def parse(source: str | bytes) -> ast.Module:
    """``ast.parse(source)`` (bytes honour a coding line), never in two threads at once."""
    with _LOCK:
        return ast.parse(source)
