"""Which module imports which: no cycles, the library never imports the companion, and the
companion uses the library's public API only.

Every import counts, at module level or inside a function (a call-time import is a dependency
too). ``python tests/test_imports.py`` prints the graph.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("glocal", "companion")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def imports() -> dict[str, set[str]]:
    """For every module of the two packages, the modules of the two packages it imports."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                # ``from pkg import name`` imports the submodule pkg.name when there is one
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]  # fmt: skip
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


def test_no_module_imports_itself_through_others():
    assert _cycles(imports()) == []


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


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
