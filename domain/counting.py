"""A count with its noun, as every message and summary says one: "1 tag", "2,500 SMS records"."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """ "1 row", "3 rows"; `plural` where an "s" will not do ("2 consent ledger entries")."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"
