"""The fault suite's summary: each fault test adds its counts, and the run ends with one line per test and a total.

`make faults` runs this folder on PostgreSQL (as CI does); the last line is what README quotes.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

#: (test name, counts) in the order the tests finished.
RESULTS: list[tuple[str, Counter[str]]] = []
FIGURES = ("sent", "received", "duplicates", "lost", "in_doubt", "missed", "stuck", "drift", "5xx")


def record_fault_figures(test: str, **counts: int) -> None:
    RESULTS.append((test, Counter(counts)))


def summary_line(counts: Counter[str]) -> str:
    return " ".join(f"{name}={counts[name]:,}" for name in FIGURES)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not RESULTS:
        return
    total: Counter[str] = Counter()
    terminalreporter.section("fault suite")
    for test, counts in RESULTS:
        total.update(counts)
        terminalreporter.write_line(f"{test}: {summary_line(counts)}")
    terminalreporter.write_line(f"faults total: {summary_line(total)}")
