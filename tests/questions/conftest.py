"""Print the question corpus's shares at the end of the run."""

from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.questions.test_corpus import summary

    lines = summary()
    if lines:
        terminalreporter.write_sep("=", "question corpora")
        for line in lines:
            terminalreporter.write_line(line)
