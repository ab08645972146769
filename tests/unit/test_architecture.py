"""The domain stays pure: no framework or I/O library may be imported anywhere under domain/."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = {
    "sqlalchemy",
    "litestar",
    "slack_bolt",
    "slack_sdk",
    "aiogram",
    "aiohttp",
    "httpx",
    "aiosmtplib",
    "matplotlib",
    "asyncpg",
    "aiosqlite",
    "api",
    "bot",
    "storage",
    "switchboard",
}
DOMAIN = Path(__file__).resolve().parents[2] / "domain"


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_domain_imports_no_framework_or_io_library() -> None:
    offenders = {
        str(path.relative_to(DOMAIN.parent)): sorted(imported_roots(path) & FORBIDDEN)
        for path in DOMAIN.rglob("*.py")
        if imported_roots(path) & FORBIDDEN
    }
    assert offenders == {}


def test_the_check_itself_catches_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from sqlalchemy import select\nimport aiohttp.web\n")
    assert imported_roots(sample) & FORBIDDEN == {"sqlalchemy", "aiohttp"}


# --- the one-way house: edges read through read models and write through use-cases ---------------------

ROOT = DOMAIN.parent
#: The edges: the HTTP app (pages, JSON API, webhooks) and the staff chat (commands, front ends).
EDGES = ("api", "bot")
#: What an edge may never import (ruff's banned-api list says the same, so editors flag it at once).
EDGE_FORBIDDEN = ("sqlalchemy", "storage.models")
#: Our own top-level packages, the nodes of the import graph.
PACKAGES = ("api", "bot", "domain", "providers", "reports", "storage", "switchboard")


def imported_modules(path: Path) -> set[str]:
    """Every module named by an absolute import anywhere in the file (also inside functions)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def forbidden_in(path: Path) -> list[str]:
    return sorted(
        name
        for name in imported_modules(path)
        if any(name == banned or name.startswith(banned + ".") for banned in EDGE_FORBIDDEN)
    )


def test_edges_import_neither_sqlalchemy_nor_the_models() -> None:
    offenders = {
        str(path.relative_to(ROOT)): forbidden_in(path)
        for edge in EDGES
        for path in (ROOT / edge).rglob("*.py")
        if forbidden_in(path)
    }
    assert offenders == {}


def test_the_edge_check_catches_a_model_import_inside_a_function(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def page():\n    from storage.models import Customer\n    from sqlalchemy.orm import aliased\n"
    )
    assert {"sqlalchemy.orm", "storage.models"} <= set(forbidden_in(sample))


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Nodes under `if TYPE_CHECKING:`: annotations only, never executed, so no cycle at run time."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(inner) for statement in node.body for inner in ast.walk(statement)}
    return skipped


def import_graph(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports, wherever in the file (a function-level import is
    still a dependency: moving an import into a function hides a cycle, it does not remove it)."""
    modules = {
        _module_name(path, root): path
        for package in packages
        for path in (root / package).rglob("*.py")
        if "migrations" not in path.parts
    }

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        skipped = _type_checking_only(tree)
        targets: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets |= {
                    f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                    for alias in node.names
                }
        graph[module] = {found for target in targets if (found := resolve(target)) not in (None, module)}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_no_module_imports_itself_round_a_cycle() -> None:
    assert import_cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    package = tmp_path / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "orders.py").write_text("from shop.invoices import total\n")
    (package / "invoices.py").write_text("def total():\n    from shop.orders import anything\n")
    (package / "typed.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from shop.invoices import total\n"
    )
    graph = import_graph(tmp_path, ("shop",))
    assert import_cycles(graph) == [["shop.invoices", "shop.orders"]]
    assert graph["shop.typed"] == set()
