"""Which module imports which: no cycles between modules or between packages, the core never
imports the evaluations, the library never imports the companion, and the companion uses the
library's public API only.

Every import counts, at module level or inside a function (a call-time import is a dependency
too), and so does a name that ``glocal/__init__.py`` loads lazily (``from glocal import
few_shot`` imports glocal.evaluation.few_shot). ``python tests/test_imports.py`` prints the
module graph and the package graph.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("glocal", "companion")
#: The core, read bottom-up (DESIGN.md): it never imports glocal.evaluation.
CORE = (
    "glocal.losses", "glocal.scoring", "glocal._fit", "glocal.transform", "glocal.search",
    "glocal.engine", "glocal._params", "glocal._device",
)  # fmt: skip


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _lazy_exports() -> dict[str, str]:
    """``glocal/__init__.py``'s lazily loaded names: name -> the module that defines it."""
    tree = ast.parse((ROOT / "glocal" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "_EXPORTS":
            assert node.value is not None
            return ast.literal_eval(node.value)
    raise AssertionError("glocal/__init__.py has no _EXPORTS")


def imports() -> dict[str, set[str]]:
    """For every module of the two packages, the modules of the two packages it imports."""
    modules = _modules()
    lazy = _lazy_exports()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "glocal"
                and node.attr in lazy
            ):  # glocal.few_shot(...) after ``import glocal``
                found.add(lazy[node.attr])
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                # ``from pkg import name`` imports the submodule pkg.name when there is one,
                # and ``from glocal import name`` the module that defines a lazy export
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules
                           else lazy[a.name] if base == "glocal" and a.name in lazy
                           else base for a in node.names]  # fmt: skip
            else:
                continue
            found.update(t for t in targets if t.split(".")[0] in PACKAGES and t != name)
        graph[name] = {t if t in modules else t.rpartition(".")[0] for t in found}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def package(module: str) -> str:
    """The package a module belongs to: the glocal core, a subpackage of glocal (evaluation,
    data, features, commands), the companion, or (any other module of glocal) itself."""
    if module in CORE:
        return "glocal core"
    parts = module.split(".")
    if parts[0] != "glocal":
        return parts[0]
    if len(parts) > 1 and (ROOT / "glocal" / parts[1]).is_dir():
        return f"glocal.{parts[1]}"
    return module


def packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The package graph: which package imports which (modules grouped by :func:`package`)."""
    grouped: dict[str, set[str]] = {}
    for module, targets in graph.items():
        source = package(module)
        grouped.setdefault(source, set()).update(
            package(t) for t in targets if package(t) != source
        )
    return grouped


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for other in graph.get(todo.pop(), ()):
            if other not in seen:
                seen.add(other)
                todo.append(other)
    return seen


def test_no_module_imports_itself_through_others():
    assert _cycles(imports()) == []


def test_no_package_imports_itself_through_others():
    assert _cycles(packages(imports())) == []


def test_the_core_never_imports_the_evaluations():
    graph = imports()
    assert set(CORE) <= set(graph)  # every core module exists (a renamed one is not skipped)
    upward = {
        module: sorted(t for t in _reachable(graph, module) if t.startswith("glocal.evaluation"))
        for module in CORE
    }
    assert {m: t for m, t in upward.items() if t} == {}


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_an_upward_import_is_a_package_cycle():
    # the core imports an evaluation module that imports the core: no cycle of modules, one
    # of packages (as glocal._fit importing glocal.evaluation.alignment once was)
    graph = imports()
    graph["glocal._fit"] = graph["glocal._fit"] | {"glocal.evaluation.alignment"}
    assert _cycles(graph) == []
    assert ["glocal core", "glocal.evaluation"] in _cycles(packages(graph))
    # a call-time import counts, and so does a lazy export of glocal/__init__.py
    assert "glocal.evaluation.few_shot" in imports()["glocal.evaluation.categories"]


def test_the_library_never_imports_the_companion():
    graph = imports()
    assert not {m: t for m, t in graph.items() if m.startswith("glocal")
                and any(x.startswith("companion") for x in t)}  # fmt: skip


def test_the_companion_uses_the_public_api_only():
    private = {
        module: sorted(t for t in targets if t.startswith("glocal")
                       and any(part.startswith("_") for part in t.split(".")))
        for module, targets in imports().items()
        if module.startswith("companion")
    }  # fmt: skip
    assert {m: t for m, t in private.items() if t} == {}


if __name__ == "__main__":
    for module, targets in sorted(imports().items()):
        print(f"{module}: {', '.join(sorted(targets)) or '-'}")
    print("\npackages:")
    for source, targets in sorted(packages(imports()).items()):
        print(f"{source}: {', '.join(sorted(targets)) or '-'}")
    print(f"module cycles: {_cycles(imports())}; package cycles: {_cycles(packages(imports()))}")
