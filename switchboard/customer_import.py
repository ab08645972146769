"""`switchboard import customers FILE.csv`: the file read as a stream (any size), checked row by row, merged
into the database a batch at a time, with an error file listing each rejected row and its reason."""

from __future__ import annotations

import asyncio
import codecs
import csv
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import available_timezones

from domain.clock import utc_now
from domain.customers.importing import (
    ColumnMap,
    ColumnsRefused,
    ImportRow,
    Rejected,
    RowRules,
    header_and_rows,
    read_row,
)
from storage.customer_import import (
    BATCH_ROWS,
    CustomerImport,
    ImportCounts,
    ImportDefaults,
    known_customers,
)
from storage.database import Database

log = logging.getLogger(__name__)

#: Rows read between two turns of the event loop, in which the batch being written takes its next step.
YIELD_EVERY_ROWS = 64
#: Longer lines than this are no customer row (a binary file, a missing quote swallowing the file).
MAX_FIELD_BYTES = 64 * 1024


class ImportRefused(ValueError):
    """The file cannot be imported as it is; nothing was written. The message says what to do."""


@dataclass(frozen=True)
class ImportOptions:
    path: Path
    default_region: str
    timezone: str
    locale: str
    encoding: str = "utf-8-sig"
    columns: Mapping[str, str] | None = None
    dry_run: bool = False
    errors_path: Path | None = None
    source: str = "import"
    actor: str = "cli"
    via: str = "cli"


@dataclass(frozen=True)
class ImportResult:
    counts: ImportCounts
    rows: int
    rejected: int
    errors_path: Path | None
    ignored_columns: tuple[str, ...]
    dry_run: bool

    def summary(self) -> str:
        c = self.counts
        would = "would be " if self.dry_run else ""
        parts = [
            f"{_many(self.rows, 'row')} read",
            f"{'would create' if self.dry_run else 'created'} {_many(c.created, 'customer')}",
            f"{'would update' if self.dry_run else 'updated'} {c.updated:,}",
            f"unchanged {c.unchanged:,}",
            f"{_many(c.merged_in_file, 'row')} merged into an earlier row of the file",
            f"{_many(c.consents_recorded, 'consent change')} {would}recorded",
            f"{_many(c.tags_added, 'tag')} {would}added",
        ]
        if c.preferences_set:
            parts.append(f"{_many(c.preferences_set, 'preferred channel')} {would}set")
        text = ("dry run, nothing written: " if self.dry_run else "") + "; ".join(parts)
        if self.rejected:
            text += f"\n{_many(self.rejected, 'row')} rejected, each with its reason in {self.errors_path}"
        if self.ignored_columns:
            text += f"\ncolumns not imported: {', '.join(self.ignored_columns)} (map one with --map 'COLUMN=field')"
        return text


def _many(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def check_encoding(path: Path, encoding: str) -> None:
    """Decode the whole file once before anything is written, so a wrong encoding changes nothing."""
    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    except LookupError:
        raise ImportRefused(f"unknown encoding {encoding!r} (try utf-8, cp1252 or latin-1)") from None
    line = 1
    try:
        with path.open("rb") as raw:
            while chunk := raw.read(1 << 20):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as error:
                    line += chunk[: max(0, error.start)].count(b"\n")
                    raise
                line += chunk.count(b"\n")
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ImportRefused(
            f"line {line} of {path.name} is not {encoding}: save the file as UTF-8, or name its encoding "
            "with --encoding (cp1252 for Excel on Windows, latin-1); nothing was imported"
        ) from None


async def import_customers(
    database: Database,
    options: ImportOptions,
    progress: Callable[[int, int], None] | None = None,
    *,
    detect_columns: bool = True,
) -> ImportResult:
    """`detect_columns=False`: only `options.columns` say which column fills which field."""
    path = options.path
    if not path.is_file():
        raise ImportRefused(f"there is no file {path}")
    size = path.stat().st_size
    check_encoding(path, options.encoding)
    errors_path = options.errors_path or path.with_name(path.stem + ".errors.csv")
    rules = RowRules(
        default_region=options.default_region,
        imported_at=utc_now(),
        default_source=options.source[:32],
        known_timezones=frozenset(available_timezones()),
    )
    csv.field_size_limit(MAX_FIELD_BYTES)
    with path.open(encoding=options.encoding, newline="") as handle:
        reader = csv.reader(handle, dialect_of(handle))
        try:
            header, lines = header_and_rows(reader)
            columns = ColumnMap.from_header(header, options.columns, detect=detect_columns)
        except (ColumnsRefused, csv.Error) as error:
            raise ImportRefused(str(error)) from None
        known = await known_customers(database)
        defaults = ImportDefaults(options.timezone, options.locale, path.name)
        rejected = 0
        rows = 0
        errors_file = None
        errors_writer = None
        try:
            async with (
                CustomerImport(database, known, defaults, dry_run=options.dry_run) as run,
                _BatchWriter(run) as writer,
            ):
                batch: list[ImportRow] = []
                for line_number, values in _numbered(lines, reader):
                    rows += 1
                    if rows % YIELD_EVERY_ROWS == 0:
                        await asyncio.sleep(0)  # the batch being written goes on to its next statement
                    outcome = (
                        read_row(line_number, values, columns, rules)
                        if not isinstance(values, str)
                        else Rejected(line_number, values)
                    )
                    if isinstance(outcome, Rejected):
                        rejected += 1
                        if errors_writer is None:
                            # In the file's own encoding, so that the fixed rows import with the same --encoding.
                            errors_file = errors_path.open(
                                "w", encoding=options.encoding, errors="replace", newline=""
                            )
                            errors_writer = csv.writer(errors_file)
                            errors_writer.writerow(["line", "reason", *header])
                        errors_writer.writerow(
                            [outcome.line, outcome.reason, *([] if isinstance(values, str) else values)]
                        )
                        continue
                    batch.append(outcome)
                    if len(batch) >= BATCH_ROWS:
                        await writer.apply(batch)
                        batch = []
                        if progress is not None:
                            progress(os.lseek(handle.fileno(), 0, os.SEEK_CUR), size)  # read ahead a little
                await writer.apply(batch)
                await writer.finish()
                await run.record_run(options.actor, rejected, options.via)
                counts = run.counts
        finally:
            if errors_file is not None:
                errors_file.close()
    if progress is not None:
        progress(size, size)
    if not rejected and errors_path.exists() and errors_file is None:
        os.unlink(errors_path)  # an error file from an earlier run of the same file would mislead
    return ImportResult(
        counts, rows, rejected, errors_path if rejected else None, columns.ignored, options.dry_run
    )


class _BatchWriter:
    """Writes one batch while the next is read: the database's own work (SQLite's runs in aiosqlite's
    thread, PostgreSQL's in its server) overlaps checking the next rows, which is mostly `phonenumbers`.
    Batches are still written one after another, in the file's order, so a row always finds every
    customer an earlier row created."""

    def __init__(self, run: CustomerImport) -> None:
        self.run = run
        self._writing: asyncio.Task[ImportCounts] | None = None

    async def __aenter__(self) -> _BatchWriter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        writing, self._writing = self._writing, None
        if writing is None:
            return
        # Reading failed or was cancelled: the batch in hand is abandoned with its transaction.
        if not writing.done():
            writing.cancel()
        try:
            await writing
        except asyncio.CancelledError:
            if not writing.cancelled():
                raise  # this task itself was cancelled meanwhile
        except Exception:
            # Reading's own error is the one raised; this one is logged rather than lost.
            log.warning("the batch being written when the import stopped failed too", exc_info=True)

    async def apply(self, batch: list[ImportRow]) -> None:
        await self.finish()
        if batch:
            self._writing = asyncio.create_task(self.run.apply(batch))

    async def finish(self) -> None:
        """Waits for the batch being written; its error, if any, is raised here."""
        writing, self._writing = self._writing, None
        if writing is not None:
            await writing


def _numbered(lines: Iterator[list[str]], reader: Any) -> Iterator[tuple[int, list[str] | str]]:
    """(line number, values), or (line number, why the line cannot be read) for a malformed line."""
    while True:
        try:
            values = next(lines)
        except StopIteration:
            return
        except csv.Error as error:
            yield reader.line_num, f"the line cannot be read as CSV: {error}"
            continue
        if not any(value.strip() for value in values):
            continue  # a blank line
        yield reader.line_num, values


def dialect_of(handle: TextIO) -> type[csv.Dialect]:
    """Commas, or the semicolons a German Excel writes, told from the first line."""
    first = handle.readline()
    handle.seek(0)
    return _Semicolons if first.count(";") > first.count(",") else csv.excel


class _Semicolons(csv.excel):
    delimiter = ";"
