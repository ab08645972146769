"""Any chart or table as the rows a spreadsheet holds: the figures as shown, in the business's timezone,
with the unit (and currency) stated in each column's heading. CSV and XLSX come from the same rows.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, time
from typing import cast

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font

from reports.charts.formatting import format_value
from reports.charts.spec import ChartSpec, Unit
from reports.periods import Grain, zone
from reports.presentation import bucket_label

Cell = str | float | None


@dataclass(frozen=True)
class SheetRows:
    title: str
    heading: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    #: Under the table: period, timezone and freshness, so a file read alone still says what it is.
    footnote: str


def _unit_words(unit: Unit | None, currency: str | None) -> str:
    if unit == "currency":
        return f" ({currency})"
    if unit == "percent":
        return " (%)"
    if unit == "duration":
        return " (seconds)"
    return ""


def _figure(value: float | None, unit: Unit | None) -> float | None:
    if value is None:
        return None
    if unit == "percent":
        return round(value * 100, 2)  # stored as a fraction, shown as a percentage
    return round(value, 2) if unit == "currency" else round(value, 4)


def _day(moment: object, tz: str) -> str:
    if isinstance(moment, datetime):
        local = moment.astimezone(zone(tz))
        return (
            local.strftime("%Y-%m-%d %H:%M") if (local.hour, local.minute) != (0, 0) else f"{local:%Y-%m-%d}"
        )
    return str(moment)


def sheet_rows(spec: ChartSpec) -> SheetRows:
    """The chart's figures, one row per date, category or cohort; a single number is one row."""
    footnote = (
        f"{spec.period_label}, {spec.timezone}; figures as of "
        f"{spec.data_as_of.astimezone(zone(spec.timezone)):%Y-%m-%d %H:%M}"
    )
    if spec.subtitle and "," in spec.subtitle:
        # The rows are the chart's: when it draws only some values ("largest 8 of 33", a range), say so.
        footnote = f"{spec.subtitle}; {footnote}"
    if spec.kind == "kpi_tile" and spec.kpi is not None:
        suffix = _unit_words(spec.unit, spec.currency)
        value, previous = spec.kpi.value, spec.kpi.previous_value
        if spec.unit == "percent":  # a rate moves by points, as its tile says
            heading = "Change (points)"
            change = None if value is None or previous is None else round((value - previous) * 100, 2)
        else:
            heading = "Change (%)"
            change = None if spec.kpi.change_pct is None else round(spec.kpi.change_pct * 100, 2)
        return SheetRows(
            spec.title,
            (f"{spec.title}{suffix}", f"Before{suffix}", heading),
            ((_figure(value, spec.unit), _figure(previous, spec.unit), change),),
            footnote,
        )
    if spec.kind == "cohort_heatmap" and spec.heatmap is not None:
        suffix = _unit_words(spec.unit, spec.currency)
        return SheetRows(
            spec.title,
            ("Cohort", *(f"Month {c}{suffix}" for c in spec.heatmap_columns)),
            tuple(
                (cohort, *(_figure(v, spec.unit) for v in row))
                for cohort, row in zip(spec.categories, spec.heatmap, strict=True)
            ),
            footnote,
        )
    columns = tuple(f"{s.name}{_unit_words(s.unit or spec.unit, spec.currency)}" for s in spec.series)
    if spec.x_dates:
        first = "Date"
        labels: tuple[str, ...] = tuple(_day(x, spec.timezone) for x in spec.x_dates)
    elif spec.subtitle and spec.subtitle.startswith("each "):  # time buckets as categories (bars, tables)
        first = spec.subtitle.removeprefix("each ").split(",")[0].split()[0].capitalize()
        labels = spec.categories
    else:
        first = spec.subtitle.removeprefix("by ").split(",")[0].capitalize() if spec.subtitle else "Item"
        labels = spec.categories
    rows = tuple(
        (row_label, *(_figure(s.values[i], s.unit or spec.unit) for s in spec.series))
        for i, row_label in enumerate(labels)
    )
    return SheetRows(spec.title, (first, *columns), rows, footnote)


def as_csv(spec: ChartSpec) -> bytes:
    return sheet_csv(sheet_rows(spec))


def sheet_csv(sheet: SheetRows) -> bytes:
    """Rows as CSV: heading, rows, a blank line and the footnote; a cell that looks like a formula stays text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_csv_cell(h) for h in sheet.heading])
    for row in sheet.rows:
        writer.writerow(["" if cell is None else _csv_cell(cell) for cell in row])
    writer.writerow([])
    writer.writerow([_csv_cell(sheet.footnote)])
    # A byte-order mark so spreadsheet programs read accented clinic names and € as UTF-8.
    return ("\ufeff" + buffer.getvalue()).encode()


def _csv_cell(cell: str | float) -> str:
    if isinstance(cell, int):
        return str(cell)
    if isinstance(cell, float):
        return str(int(cell)) if cell.is_integer() and abs(cell) < 1e15 else repr(cell)
    # A label starting with = + - @ would run as a formula in a spreadsheet: keep it text.
    return f"'{cell}" if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def as_xlsx(spec: ChartSpec) -> bytes:
    return sheet_xlsx(sheet_rows(spec))


def sheet_xlsx(sheet: SheetRows) -> bytes:
    """Rows as one XLSX sheet, bold heading and the footnote under it; every text cell stays text."""
    book = Workbook()
    page = book.active
    assert page is not None  # a new workbook always has its first sheet
    page.title = _sheet_title(sheet.title)
    page.append([_xlsx_text(h) for h in sheet.heading])
    for row in sheet.rows:
        page.append([_xlsx_text(cell) for cell in row])
    # openpyxl takes a string starting with "=" for a formula: every text cell is text, nothing else.
    for line in page.iter_rows():
        for cell in line:
            if isinstance(cell.value, str):
                cell.data_type = "s"
                if "\n" in cell.value:  # two addresses on two lines show as two lines
                    cell.alignment = Alignment(wrap_text=True, vertical="top")
    for cell in page[1]:
        cell.font = Font(bold=True)
    page.append([])
    page.append([_xlsx_text(sheet.footnote)])
    page.cell(row=page.max_row, column=1).data_type = "s"  # a report's name may start with "="
    page.column_dimensions["A"].width = max(
        12, min(40, max((len(str(r[0])) for r in sheet.rows), default=10) + 2)
    )
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


#: The most characters an XLSX cell holds (longer text is cut there, and says so).
XLSX_CELL_LIMIT = 32_767


def _xlsx_text(cell: Cell) -> Cell:
    """Text as an XLSX cell may hold it: without the control characters the format forbids (a message can
    carry a form feed or an escape), and cut, saying so, past the cell limit."""
    if not isinstance(cell, str):
        return cell
    text = ILLEGAL_CHARACTERS_RE.sub("", cell)
    marker = " … (cut: the cell limit is 32,767 characters)"
    return text if len(text) <= XLSX_CELL_LIMIT else text[: XLSX_CELL_LIMIT - len(marker)] + marker


def _sheet_title(title: str) -> str:
    cleaned = "".join(" " if c in "[]:*?/\\" else c for c in title).strip()
    return (cleaned or "Report")[:31]


#: Rows of figures a chat or email delivery carries as text under its chart (the file has them all).
TEXT_ROWS = 25


def figures_text(spec: ChartSpec, *, rows: int = TEXT_ROWS) -> str:
    """The key figures as plain lines ("Berlin Mitte: €545.70"), formatted as the chart labels them, so a
    reader without the image (or a screen reader) has them; "… and N more" when cut."""
    if spec.kind == "kpi_tile" and spec.kpi is not None:
        line = f"{spec.title}: {_shown(spec.kpi.value, spec)}"
        if spec.kpi.previous_value is not None:
            line += f" (before: {_shown(spec.kpi.previous_value, spec)})"
        return line
    sheet = sheet_rows(spec)
    names = [s.name for s in spec.series]
    # Dates as people read them ("week of 2 Nov"), not as the attached sheet keeps them ("2026-11-02").
    days = _bucket_words(spec) if spec.x_dates else None
    lines = []
    for index, row in enumerate(sheet.rows[:rows]):
        label, *_ = row
        if days is not None:
            label = days[index]
        values = [spec.series[i].values[index] for i in range(len(spec.series))] if not spec.heatmap else []
        shown = ", ".join(
            f"{name}: {_shown(v, spec)}" if len(names) > 1 else _shown(v, spec)
            for name, v in zip(names, values, strict=True)
        )
        lines.append(f"{label}: {shown}" if shown else str(label))
    if len(sheet.rows) > rows:
        lines.append(f"… and {len(sheet.rows) - rows} more (in the attached file and on the dashboard)")
    if spec.x_dates and " · partial " in spec.period_label:  # "1–30 Nov 2026 · partial first week"
        partial = spec.period_label.split(" · ", 1)[1]
        lines.append(f"({partial[0].upper()}{partial[1:]}: fewer days than the others, so not a drop.)")
    return "\n".join(lines)


def _bucket_words(spec: ChartSpec) -> list[str]:
    """Each time bucket as the chart's own rows and bars name it ("w/c 2 Nov 2026", "Nov 2026", "Q3 2026"),
    by the spec's grain (a day where it has none)."""
    tz = zone(spec.timezone)
    grain = cast(Grain, spec.grain or "day")
    return [
        bucket_label(x if isinstance(x, datetime) else datetime.combine(x, time(), tz), grain, spec.timezone)
        for x in spec.x_dates
    ]


def _shown(value: float | None, spec: ChartSpec) -> str:
    return format_value(value, spec.unit, locale=spec.locale, currency=spec.currency)


def chunks(text: str, limit: int) -> list[str]:
    """`text` cut into pieces of at most `limit` characters, at line ends where it can be."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current:
        pieces.append(current)
    return pieces
