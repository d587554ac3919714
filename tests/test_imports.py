"""The project's import graph, read with :mod:`ast`: no circles, pages and Streamlit kept on top.

Every project module outside ``tests/`` is parsed (nothing is imported), and each import it
contains, at module level or inside a function, becomes an edge to the project module it
loads; ``from pkg import name`` counts as an import of ``pkg.name`` when that is a module.
The test fails on an import cycle between project modules, on an import of a page from
outside the user interface, and on an import of Streamlit from below it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "storage", "models", "services", "pages", "benchmarks")
ENTRY_POINTS = ("streamlit_app.py", "server.py")
#: The user interface: the pages, the router that lists them and the web server around them.
UI = ("pages", "streamlit_app", "server")
#: Layers that must work without Streamlit (command line, benchmarks, tests).
NO_STREAMLIT = ("core", "storage", "models", "services")
#: Imports allowed despite the rules above, each with its reason.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("benchmarks.bench_eda", "pages.ui"): (
        "times a page's first render: warms the database handle the page caches, so that "
        "opening the database is not measured"
    ),
}


def module_name(path: Path, root: Path = ROOT) -> str:
    """Dotted name of a project file (``storage/db.py`` -> ``storage.db``)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_files(root: Path = ROOT) -> list[Path]:
    """Every project source file outside ``tests/``."""
    files = [root / name for name in ENTRY_POINTS if (root / name).is_file()]
    for package in PACKAGES:
        files.extend(sorted((root / package).rglob("*.py")))
    return files


def imported_modules(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """Project modules loaded by the imports anywhere in ``tree``.

    Args:
        tree: Parsed source of ``module``.
        module: Dotted name of the importing module.
        is_package: Whether ``module`` is a package's ``__init__``.
        known: Dotted names of every project module.

    Returns:
        The imported project modules, with the packages their import runs first.
    """
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    loaded: set[str] = set()
    for target in targets:
        parts = target.split(".")
        loaded.update(
            name
            for name in (".".join(parts[:i]) for i in range(1, len(parts) + 1))
            if name in known
        )
    loaded.discard(module)
    return loaded


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".")
    package = package if is_package else package[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """``{module: project modules it imports}`` for every project module."""
    files = {module_name(path, root): path for path in project_files(root)}
    known = set(files)
    return {
        module: imported_modules(
            ast.parse(path.read_text(), str(path)), module, path.name == "__init__.py", known
        )
        for module, path in files.items()
    }


def raw_imports(root: Path = ROOT) -> dict[str, set[str]]:
    """``{module: every top-level package name it imports}`` (third-party ones included)."""
    out: dict[str, set[str]] = {}
    for path in project_files(root):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names.add(node.module.split(".")[0])
        out[module_name(path, root)] = names
    return out


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle through each group of modules that import each other, as a closed path.

    Args:
        graph: ``{module: modules it imports}``.

    Returns:
        Paths such as ``["a", "b", "a"]``; empty when the graph has no cycle.
    """
    cycles = []
    for component in _strongly_connected(graph):
        start = min(component)
        if len(component) > 1 or start in graph.get(start, ()):
            cycles.append(_cycle_through(graph, start, component))
    return sorted(cycles)


def _strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[set[str]]:
    # Tarjan's algorithm, iterative so that deep import chains need no recursion.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    components.append(component)
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return components


def _cycle_through(
    graph: Mapping[str, Iterable[str]], start: str, component: set[str]
) -> list[str]:
    # Breadth-first within the component: the shortest way from ``start`` back to itself.
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph.get(node, ())):
                if child not in component or child in previous:
                    continue
                previous[child] = node
                if child == start:
                    path = [start]
                    while path[-1] != start or len(path) == 1:
                        path.append(previous[path[-1]])
                    return path[::-1]
                following.append(child)
        frontier = following
    raise AssertionError(f"{start} is on no cycle")


def _in(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in prefixes)


def test_no_import_cycles_between_project_modules() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_pages_are_imported_only_by_the_user_interface() -> None:
    offenders = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        for target in targets
        if _in(target, ("pages",)) and not _in(module, UI) and (module, target) not in EXCEPTIONS
    )
    assert not offenders, "\n".join(offenders)


def test_no_streamlit_below_the_user_interface() -> None:
    offenders = sorted(
        module
        for module, names in raw_imports().items()
        if "streamlit" in names and _in(module, NO_STREAMLIT)
    )
    assert not offenders, f"these modules import streamlit: {offenders}"


def test_the_cycle_finder_reports_a_cycle_as_a_path() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["e", "e"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_function_level_and_relative_imports_are_edges(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("def f():\n    from pkg import high\n")
    (package / "high.py").write_text("from . import low\n")
    (package / "other.py").write_text("import pkg.low\nfrom pkg.high import f as g\n")
    known = {"pkg", "pkg.low", "pkg.high", "pkg.other"}
    edges = {
        name: imported_modules(
            ast.parse((tmp_path / f"{name.replace('.', '/')}.py").read_text()), name, False, known
        )
        for name in ("pkg.low", "pkg.high", "pkg.other")
    }
    assert edges == {
        "pkg.low": {"pkg", "pkg.high"},
        "pkg.high": {"pkg", "pkg.low"},
        "pkg.other": {"pkg", "pkg.low", "pkg.high"},
    }
    assert find_cycles(edges) == [["pkg.high", "pkg.low", "pkg.high"]]
