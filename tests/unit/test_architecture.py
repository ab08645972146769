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
