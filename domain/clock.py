"""The clock port: "now" is passed in wherever a rule depends on it, so tests read a fixed time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

#: What use-cases and front ends take to learn the time: a callable returning an aware UTC datetime.
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock (the one production passes in)."""
    return datetime.now(UTC)
