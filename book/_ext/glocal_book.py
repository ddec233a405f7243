"""Sphinx extension: how the glocal book shows notebooks, tables and the API reference.

- Adds ``static/glocal.css``: wide tables scroll inside the text column instead of being cut
  off, numbers are right-aligned, and printed lines wrap.
- Folds the cell that papermill injects (tag ``injected-parameters``) behind a toggle, as the
  notebooks' own parameter and set-up cells are folded by their ``hide-input`` tag: the
  parameters stay one click away, the analysis code stays visible.
- Adds ``{glued-table} tab_NAME``: a table a notebook glued (``companion.paper.plotting.show(...,
  name=NAME)``) with a ``:name:`` and a caption, numbered "Table N.M" as figures are numbered
  "Figure N.M" (it is ``{glue:figure}`` whose node Sphinx counts as a table).
- Shows a module constant's ``#:`` comment as its description: napoleon would read a first
  line with a colon ("The paper's transforms. ``naive``: the official probe") as "type:
  description" and swap them; the type comes from the annotation anyway.
- Leaves out of the API reference the members a class inherits from another package but that
  appear on the class itself (scikit-learn's ``set_fit_request`` and friends, which scikit-learn
  generates for every estimator and whose docstrings refer to scikit-learn's own glossary).
- Ends every result page with a section "Files and run time": how long papermill ran the
  notebook and download links to the figures (PNG, SVG) and tables (CSV) it saved, from the
  ``pages.json`` that ``companion.pipeline.book_build`` writes before each build.
- Sets the MyST substitutions the pages quote from one place (``{{ quick_time }}``, the
  folds of the searches per profile: ``companion.pipeline.book_build.book_substitutions``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.config import Config
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


#: Written by ``companion.pipeline.book_build.write_build_info`` (paths relative to the book's
#: root).
PAGES_JSON = "book/results/build/pages.json"
PAGE_FILES = "book/results/files"
RESULT_PREFIX = "book/results/"


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{max(1, round(n / 2**10))} kB"


def _page_records(app: Sphinx) -> dict[str, Any]:
    path = Path(app.srcdir) / PAGES_JSON
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def _files_section(app: Sphinx, doctree: nodes.document) -> None:
    """Append "Files and run time" to a result page (before Sphinx collects its downloads and
    its table of contents: priority 400 < 500)."""
    docname = app.env.docname
    if not docname.startswith(RESULT_PREFIX):
        return
    name = docname[len(RESULT_PREFIX) :]
    record = _page_records(app).get(name)
    top = doctree.next_node(nodes.section)
    if record is None or top is None:
        return
    section = nodes.section(ids=["files-and-run-time"], names=["files and run time"])
    section += nodes.title("", "Files and run time")
    seconds, end = record.get("seconds"), record.get("end_time")
    if isinstance(seconds, (int, float)):
        ran = (
            f"Papermill ran this page's notebook in {seconds:.0f} s"
            + (f" ({seconds / 60:.1f} min)" if seconds >= 120 else "")
            + f" in the {record.get('profile')} profile"
            + (f", finishing {end[:16].replace('T', ' ')} UTC" if end else "")
            + " (a notebook whose cache key did not change keeps the time of its last run; "
            "every page's time is in the table of the reproduce page)."
        )
    else:
        ran = "Papermill recorded no run time for this notebook."
    section += nodes.paragraph("", ran)
    files = record.get("files") or []
    if not files:
        section += nodes.paragraph("", "The notebook saved no CSV, PNG or SVG files.")
    else:
        section += nodes.paragraph(
            "", "The figures (PNG, SVG) and tables (CSV) the notebook saved, as files:"
        )
        items = nodes.bullet_list()
        for file in files:
            para = nodes.paragraph()
            if file.get("copied"):
                ref = addnodes.download_reference(
                    "", "", refdoc=docname, refdomain="", reftype="download",
                    refexplicit=True, refwarn=False,
                    reftarget=f"/{PAGE_FILES}/{name}/{file['name']}",
                )  # fmt: skip
                ref += nodes.literal("", file["name"])
                para += ref
                para += nodes.Text(f" ({_size(file['bytes'])})")
            else:
                para += nodes.literal("", file["name"])
                para += nodes.Text(f" ({_size(file['bytes'])}, too large for the site; a run ")
                para += nodes.Text("writes it to ")
                para += nodes.literal("", file["path"])
                para += nodes.Text(")")
            items += nodes.list_item("", para)
        section += items
    top += section


def _substitutions(app: Sphinx, config: Config) -> None:
    from companion.pipeline.book_build import book_substitutions

    config.myst_substitutions = {**book_substitutions(app.srcdir), **config.myst_substitutions}


def _add_static(app: Sphinx) -> None:
    app.config.html_static_path.append(str(STATIC))


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", _add_static)
    app.connect("config-inited", _substitutions)
    app.connect("doctree-read", _files_section, priority=400)
    app.add_css_file("glocal.css")
    app.add_post_transform(FoldInjectedParameters)
    app.add_enumerable_node(glued_table, "table", html=(_visit_glued_table, _depart_glued_table))
    app.add_directive("glued-table", _glued_table_directive())
    app.connect("autodoc-skip-member", _skip_foreign_members)
    app.connect("autodoc-process-docstring", _data_docstring_as_description, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
