"""No import cycles between modules, nor between packages, counting every import: at the top, inside functions
and under TYPE_CHECKING (a cycle hidden in a late import is still a cycle: the two modules cannot be understood,
tested or moved apart). The graph is read from the source with ``ast``: nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("chaos", "services", "loadtest")


def modules() -> dict[str, Path]:
    """Every module's dotted name: its file (a package's own is its ``__init__.py``)."""
    found = {}
    for top in PACKAGES:
        for path in (ROOT / top).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the project's modules it imports. Importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``:
    an edge to each, unless the importer is inside that package."""
    mods = modules()

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for module, path in mods.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {t for a in node.names if (t := known(a.name))}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                for alias in node.names:
                    target = known(f"{base}.{alias.name}") if f"{base}.{alias.name}" in mods else known(base)
                    if target:
                        targets.add(target)
        for target in targets:
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                step = ".".join(parts[:i])
                if step in mods and step != module and not module.startswith(step + "."):
                    graph[module].add(step)
    return graph


def component(module: str) -> str:
    """A module's package for the package graph: ``chaos.engine.walk`` -> ``chaos.engine``; a module directly under
    a top package (``chaos.journal``) stands for itself."""
    return ".".join(module.split(".")[:2])


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        edges = packages.setdefault(component(module), set())
        for target in targets:
            packages.setdefault(component(target), set())
            if component(target) != component(module):
                edges.add(component(target))
    return packages


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                members = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.append(member)
                    if member == node:
                        break
                if len(members) > 1:
                    found.append(sorted(members))
    return sorted(found)


def test_the_graph_sees_late_and_type_checking_imports() -> None:
    graph = import_graph()
    assert "chaos.engine.toolkit_journal" in graph["chaos.engine.walk"]  # a top-level import
    assert "services.common.replication" in graph["services.recommender.app"]  # an import inside a function


# The two-module circles the architecture review found (issue 17), each closed by a late import: the first
# imports the second, never the other way round.
REVIEWED_PAIRS = [
    ("chaos.control_api", "chaos.workshop.routes"),
    ("chaos.workshop.exercise", "chaos.workshop.draft"),
    *((f"services.{service}.app", f"services.{service}.hot") for service in ("views", "recommender", "gateway")),
]


@pytest.mark.parametrize(("importer", "imported"), REVIEWED_PAIRS)
def test_the_reviewed_circles_stay_open(importer: str, imported: str) -> None:
    graph = import_graph()
    assert imported in graph[importer]  # the pair still exists: else this test checks nothing
    assert importer not in graph[imported]


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("level", ["module", "package"])
def test_no_import_cycles(level: str) -> None:
    graph = import_graph()
    if level == "package":
        graph = package_graph(graph)
    assert cycles(graph) == []
