"""Sphinx extension: how the glocal book shows notebooks, tables and the API reference.

- Adds ``static/glocal.css``: wide tables scroll inside the text column instead of being cut
  off, numbers are right-aligned, and printed lines wrap.
- Folds the cell that papermill injects (tag ``injected-parameters``) behind a toggle, as the
  notebooks' own parameter and set-up cells are folded by their ``hide-input`` tag: the
  parameters stay one click away, the analysis code stays visible.
- Adds ``{glued-table} tab_NAME``: a table a notebook glued (``companion.plotting.show(...,
  name=NAME)``) with a ``:name:`` and a caption, numbered "Table N.M" as figures are numbered
  "Figure N.M" (it is ``{glue:figure}`` whose node Sphinx counts as a table).
- Shows a module constant's ``#:`` comment as its description: napoleon would read a first
  line with a colon ("The paper's transforms. ``naive``: the official probe") as "type:
  description" and swap them; the type comes from the annotation anyway.
- Leaves out of the API reference the members a class inherits from another package but that
  appear on the class itself (scikit-learn's ``set_fit_request`` and friends, which scikit-learn
  generates for every estimator and whose docstrings refer to scikit-learn's own glossary).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform

STATIC = Path(__file__).parent / "static"
#: What the toggle of the folded papermill cell says.
INJECTED_PROMPTS = ("Show the parameters papermill injected", "Hide the injected parameters")


class FoldInjectedParameters(SphinxPostTransform):
    """Give papermill's injected-parameters cell the ``hide-input`` behaviour of myst-nb."""

    default_priority = 190  # before myst-nb's HideInputCells (199) turns hide_mode into HTML
    formats = ("html",)

    def run(self, **kwargs: Any) -> None:
        for node in self.document.findall(nodes.container):
            if node.get("nb_element") != "cell_code" or node.get("hide_mode"):
                continue
            if "tag_injected-parameters" in node.get("classes", []):
                node["hide_mode"] = "input"
                node["prompt_show"], node["prompt_hide"] = INJECTED_PROMPTS


def _skip_foreign_members(
    app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any
) -> bool | None:
    """Skip members defined outside glocal (e.g. scikit-learn's generated set_*_request)."""
    if what != "class":
        return None
    module = getattr(obj, "__module__", None) or ""
    qualname = getattr(obj, "__qualname__", "") or ""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    if module and not module.startswith(("glocal", "companion")) and callable(obj):
        return True
    if "RequestMethod" in qualname:
        return True
    return None


class glued_table(nodes.figure):  # noqa: N801 - docutils names node classes in lower case
    """A glued output numbered as a table (Sphinx's ``numfig_format["table"]``)."""


def _glued_table_directive() -> Any:
    from myst_nb.ext.glue.directives import PasteFigureDirective

    class GluedTable(PasteFigureDirective):
        """``{glue:figure}`` for a glued table: the same options, a table number."""

        def run(self) -> list[nodes.Node]:
            result = super().run()
            for node in result:
                if type(node) is nodes.figure:
                    # Re-class in place: the node is already registered under its :name:.
                    node.__class__ = glued_table
                    node["classes"].append("glued-table")
            return result

    return GluedTable


def _visit_glued_table(self: Any, node: nodes.Element) -> None:
    self.visit_figure(node)


def _depart_glued_table(self: Any, node: nodes.Element) -> None:
    self.depart_figure(node)


def _data_docstring_as_description(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Before napoleon (priority 400 < 500): a first sentence of its own leaves no inline type.

    Napoleon reads the first line of a data docstring as ``type: description`` when it holds
    a colon; a first sentence without one, on its own line, is read as the description.
    """
    if what != "data" or not lines:
        return
    head, dot, tail = lines[0].partition(". ")
    if dot and ":" in tail and ":" not in head:
        lines[0:1] = [head + ".", "", tail]


def _add_static(app: Sphinx) -> None:
    app.config.html_static_path.append(str(STATIC))


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", _add_static)
    app.add_css_file("glocal.css")
    app.add_post_transform(FoldInjectedParameters)
    app.add_enumerable_node(glued_table, "table", html=(_visit_glued_table, _depart_glued_table))
    app.add_directive("glued-table", _glued_table_directive())
    app.connect("autodoc-skip-member", _skip_foreign_members)
    app.connect("autodoc-process-docstring", _data_docstring_as_description, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
