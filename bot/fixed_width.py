"""A Reply's table as fixed-width text lines, for chat front ends without a table widget (Slack, Telegram)."""

from __future__ import annotations

from bot.replies import Table


def table_lines(table: Table, budget: int) -> list[str]:
    """Header, rule and as many rows as fit in `budget` characters, then a note of how many were left out."""
    widths = [len(column) for column in table.columns]
    for row in table.rows:
        for index, cell in enumerate(row[: len(widths)]):
            widths[index] = max(widths[index], len(cell))

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(cells[: len(widths)])).rstrip()

    lines = [line(table.columns), "  ".join("-" * w for w in widths)]
    used = sum(len(x) + 1 for x in lines)
    room = budget - 40  # kept for the "more rows" note
    for shown, row in enumerate(table.rows):
        candidate = line(row)
        if used + len(candidate) + 1 > room:
            hidden = len(table.rows) - shown
            lines.append(f"… {hidden} more row{'s' if hidden != 1 else ''}")
            break
        lines.append(candidate)
        used += len(candidate) + 1
    return lines
