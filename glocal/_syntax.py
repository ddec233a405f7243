"""Python syntax trees that survive CPython 3.11's unsafe AST construction under threads.

Building a syntax tree's Python objects keeps a recursion counter in state that all threads
share; when another thread builds one at the same time (``ast.parse``, and so also NumPy's
``np.load``, which reads every ``.npy`` header with ``ast.literal_eval``), the check at the end
fails with ``SystemError: AST constructor recursion depth mismatch``. The quick and smoke builds
load cached fits in one thread while another hashes the fitting code, and hit it. The error
says nothing about the source, so :func:`parse` parses again.
"""

from __future__ import annotations

import ast
import threading
import time

_LOCK = threading.Lock()
#: Parses tried before the race is reported (each failure waits a little longer).
ATTEMPTS = 20


def parse(source: str | bytes) -> ast.Module:
    """``ast.parse(source)`` (bytes honour a coding line), one of our threads at a time, and
    parsed again when another thread's syntax tree broke the construction (see above)."""
    with _LOCK:
        for attempt in range(ATTEMPTS):
            try:
                return ast.parse(source)
            except SystemError as err:
                if "recursion depth mismatch" not in str(err) or attempt == ATTEMPTS - 1:
                    raise
                time.sleep(0.001 * (attempt + 1))
    raise AssertionError("unreachable")
