"""The project's import graph, read with :mod:`ast`: no circles, pages and Streamlit kept on top.

Every project module outside ``tests/`` is parsed (nothing is imported), and each import it
contains, at module level or inside a function, becomes an edge to the project module it
loads; ``from pkg import name`` counts as an import of ``pkg.name`` when that is a module.
The test fails on an import cycle between project modules, on an import of a page from
outside the user interface, on an import of Streamlit from below it, and on any import against
the direction of the layers (``docs/ARCHITECTURE.md``): ``core`` imports no other project
package, ``models`` and ``storage`` import only ``core``, ``services`` imports those three, and
the entry points (pages, the router, the web server) reach ``storage`` and ``models`` only
through ``services``. An import under ``if TYPE_CHECKING:`` or inside a function counts like
any other: it is the same dependency, only loaded later.
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
#: The project packages each part may import (its own included); a part is a module's first
#: name. Pages and the other entry points see ``services`` (and ``core``'s pure helpers), never
#: ``storage`` or ``models``; benchmarks time each layer by itself, so they may import any.
MAY_IMPORT: dict[str, tuple[str, ...]] = {
    "core": ("core",),
    "models": ("core", "models"),
    "storage": ("core", "storage"),
    "services": ("core", "models", "storage", "services"),
    "pages": ("core", "services", "pages"),
    "streamlit_app": ("core", "services", "pages"),
    "server": ("core", "services", "pages"),
    "benchmarks": ("core", "models", "storage", "services", "benchmarks"),
}
#: Imports allowed despite the rules above, each with its reason.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("benchmarks.bench_eda", "pages.ui"): (
        "times a page's first render: warms the database handle the page caches, so that "
        "opening the database is not measured"
    ),
    ("storage.cli", "services.cli"): (
        "keeps the documented command `python -m storage.cli`; the module only calls "
        "services.cli.main"
    ),
    ("storage.cli", "services"): "see (storage.cli, services.cli)",
    ("server", "storage"): (
        "the web server's session-cookie routes sign and redeem cookies "
        "(storage.sessions, storage.session_cookie)"
    ),
    ("server", "storage.sessions"): "see (server, storage)",
    ("server", "storage.session_cookie"): "see (server, storage)",
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


def layer_violations(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Every import against the direction of the layers (:data:`MAY_IMPORT`).

    Args:
        graph: ``{module: project modules it imports}``.

    Returns:
        ``"importer imports imported"`` per offending edge, sorted; edges listed in
        :data:`EXCEPTIONS` are left out.
    """
    offenders = []
    for module, targets in graph.items():
        allowed = MAY_IMPORT.get(module.split(".")[0])
        assert allowed is not None, f"{module} belongs to no layer: add its part to MAY_IMPORT"
        offenders.extend(
            f"{module} imports {target}"
            for target in targets
            if not _in(target, allowed) and (module, target) not in EXCEPTIONS
        )
    return sorted(offenders)


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


def test_every_import_follows_the_direction_of_the_layers() -> None:
    offenders = layer_violations(import_graph())
    assert not offenders, "imports against the layers:\n" + "\n".join(offenders)


def test_pages_reach_storage_and_models_only_through_services() -> None:
    offenders = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        for target in targets
        if _in(module, ("pages", "streamlit_app")) and _in(target, ("storage", "models"))
    )
    assert not offenders, "\n".join(offenders)


def test_layer_check_counts_type_checking_and_function_imports(tmp_path: Path) -> None:
    files = {
        "core/__init__.py": "",
        "core/pure.py": "from storage import db\n",
        "models/__init__.py": "",
        "models/inference.py": "from core import pure\n",
        "storage/__init__.py": "",
        "storage/db.py": "import core.pure\n\ndef f():\n    from services import records\n",
        "services/__init__.py": "",
        "services/records.py": "from storage.db import f\nfrom models import inference\n",
        "pages/__init__.py": "",
        "pages/history.py": (
            "from typing import TYPE_CHECKING\n\nfrom services import records\n\n"
            "if TYPE_CHECKING:\n    from storage.db import Database\n\n"
            "def page():\n    from models.inference import Classifier\n"
        ),
        "pages/report.py": "from services.records import read_patient\nfrom core import pure\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    assert layer_violations(import_graph(tmp_path)) == [
        "core.pure imports storage",
        "core.pure imports storage.db",
        "pages.history imports models",
        "pages.history imports models.inference",
        "pages.history imports storage",
        "pages.history imports storage.db",
        "storage.db imports services",
        "storage.db imports services.records",
    ]
