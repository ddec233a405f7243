"""Sphinx extension: show a docstring verbatim when it is not valid reStructuredText.

glocal's docstrings are written as plain text (``name: description`` lines, formulas such as
``|A ∩ B|``). Most of them are also valid reStructuredText, and those are rendered normally.
One that is not (an unexpected indentation, a ``|...|`` read as a substitution) would make the
build warn, and the build treats every warning as an error. Such a docstring is shown as a
literal block instead, exactly as written, and listed in the build log. No text is dropped, and
no link or image comes from a docstring, so nothing that the warnings-as-errors rule protects
is hidden by this.
"""

from __future__ import annotations

import re
from typing import Any

from docutils import nodes
from docutils.core import publish_doctree
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

# Sphinx roles and directives are unknown to plain docutils; neutralise them for the check.
_ROLE = re.compile(r":(?:[\w-]+:)?[\w-]+:`")
_DIRECTIVE = re.compile(r"^(\s*)\.\. [\w:-]+::", re.MULTILINE)
_SETTINGS = {"report_level": 2, "halt_level": 5, "warning_stream": False}


def _is_valid_rst(text: str) -> bool:
    probe = _DIRECTIVE.sub(r"\1.. comment", _ROLE.sub("`", text))
    doctree = publish_doctree(probe, settings_overrides=_SETTINGS)
    messages = [*doctree.findall(nodes.system_message), *doctree.transform_messages]
    problems = [*doctree.findall(nodes.problematic), *doctree.findall(nodes.substitution_reference)]
    return not problems and not any(m["level"] >= 2 for m in messages)


def _process(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    text = "\n".join(lines)
    if not text.strip() or _is_valid_rst(text):
        return
    logger.info("[verbatim_docstrings] %s: not valid reStructuredText, shown verbatim", name)
    lines[:] = ["::", ""] + [f"    {line}" if line else "" for line in lines] + [""]


def setup(app: Sphinx) -> dict[str, Any]:
    # After napoleon (priority 500), which turns Google/NumPy sections into reStructuredText.
    app.connect("autodoc-process-docstring", _process, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
