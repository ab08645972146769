"""`switchboard import customers FILE.csv`: the file read as a stream (any size), checked row by row, merged
into the database a batch at a time, with an error file listing each rejected row and its reason."""

from __future__ import annotations

import asyncio
import codecs
import csv
import itertools
import logging
import multiprocessing
import os
import re
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import aclosing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import available_timezones

from domain.clock import utc_now
from domain.counting import counted
from domain.customers.importing import (
    CONSENT_FIELDS,
    ColumnMap,
    ColumnsRefused,
    ImportRow,
    PhoneReading,
    Rejected,
    RowRules,
    header_and_rows,
    normalise_phones,
    read_row,
    row_country,
)
from storage.customer_import import (
    BATCH_ROWS,
    CustomerImport,
    ImportCounts,
    ImportDefaults,
    known_customers,
)
from storage.database import Database
from storage.private_files import new_private_file
from switchboard import helper_process

log = logging.getLogger(__name__)

#: Rows read between two turns of the event loop, in which the batch being written takes its next step.
YIELD_EVERY_ROWS = 64
#: Longer lines than this are no customer row (a binary file, a missing quote swallowing the file).
MAX_FIELD_BYTES = 64 * 1024
#: Files from this size on have their phone numbers read in a worker process, a batch ahead (_PhonesAhead):
#: about 25,000 rows, a couple of seconds, against the process's start of a few tenths of one.
AHEAD_FROM_BYTES = 2 * 1024 * 1024
#: Batches whose numbers are being read while this process merges the one before.
BATCHES_AHEAD = 2


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
    #: Whether the file has a consent column for any channel.
    gives_consent: bool = True
    #: Rows imported without a part of them (a phone number that is none), listed in the error file too.
    left_out: int = 0

    def summary(self, *, marketing_requires_opt_in: bool = False) -> str:
        """What happened, in words; its first line stands alone (the upload page shows only that)."""
        c = self.counts
        would = "would be " if self.dry_run else ""
        parts = [
            f"{counted(self.rows, 'row')} read",
            f"{'would create' if self.dry_run else 'created'} {counted(c.created, 'customer')}",
            f"{'would update' if self.dry_run else 'updated'} {c.updated:,}",
            f"unchanged {c.unchanged:,}",
            f"{counted(c.merged_in_file, 'row')} merged into an earlier row of the file",
            f"{counted(c.consents_recorded, 'consent change')} {would}recorded",
            f"{counted(c.tags_added, 'tag')} {would}added",
        ]
        if c.preferences_set:
            parts.append(f"{counted(c.preferences_set, 'preferred channel')} {would}set")
        if c.without_address:
            parts.append(
                f"{c.without_address:,} {'yes' if c.without_address == 1 else 'yeses'} or preferred "
                f"{'channel' if c.without_address == 1 else 'channels'} "
                f"{would or ('was ' if c.without_address == 1 else 'were ')}left out: given for "
                "a channel the customer has no number or address for"
            )
        text = ("dry run, nothing written: " if self.dry_run else "") + "; ".join(parts)
        if marketing_requires_opt_in and not self.gives_consent and c.created:
            # A sentence of its own on the first line: the upload page shows only that line.
            text += (
                f". The file says nothing about consent, so campaigns {'would' if self.dry_run else 'will'} not "
                f"reach {'the new customers' if c.created != 1 else 'the new customer'} until they opt in "
                "(reminders and other service messages still go)."
            )
        listed = []
        if self.rejected:
            listed.append(f"{counted(self.rejected, 'row')} rejected")
        if self.left_out:
            imported = "would be imported" if self.dry_run else "imported"
            listed.append(f"{counted(self.left_out, 'row')} {imported} in part")
        if listed:
            each = "with its reason" if self.rejected + self.left_out == 1 else "each with its reason"
            text += f"\n{' and '.join(listed)}, {each} in {self.errors_path}"
        if c.other_details_lines:
            text += "\n" + other_details_words(sorted(c.other_details_lines), would_be=self.dry_run)
        if self.ignored_columns:
            text += f"\ncolumns not imported: {', '.join(self.ignored_columns)} (map one with --map 'COLUMN=field')"
        return text


def other_details_words(lines: list[int], *, would_be: bool = False, shown: int = 10) -> str:
    """Lines that named another phone number, email or patient number than the customer has, stored or from an
    earlier line of the file: the one held is kept."""
    named = ", ".join(f"{line:,}" for line in lines[:shown])
    if len(lines) > shown:
        named += f" and {len(lines) - shown:,} more"
    one = len(lines) == 1
    return (
        f"{'line' if one else 'lines'} {named} {'names' if one else 'name'} another phone number, email or "
        f"patient number than the customer has (on file or from an earlier line): the one held "
        f"{'would be' if would_be else 'was'} kept, the other not imported"
    )


def check_encoding(path: Path, encoding: str) -> None:
    """Decode the whole file once before anything is written, so a wrong encoding changes nothing.

    Two mistakes are told apart from a plain wrong encoding, since following the plain advice would garble
    names: a UTF-8 file with a line from elsewhere (an Excel row pasted in), where `--encoding cp1252` would
    read every other accent as two letters ("Ã¼" for "ü"); and a whole UTF-8 file named cp1252 or Latin-1,
    which decodes without an error into exactly that. Both are read off the file as UTF-8 decodes it: a line
    before the first one UTF-8 cannot read that holds a letter only UTF-8 writes so."""
    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    except LookupError:
        raise ImportRefused(f"unknown encoding {encoding!r} (try utf-8, cp1252 or latin-1)") from None
    as_utf8 = codecs.getincrementaldecoder("utf-8")(errors="strict")
    single_byte = codecs.lookup(encoding).name in SINGLE_BYTE
    line = 1
    utf8_line = 0  # the first line, before any UTF-8 cannot read, with a letter beyond ASCII
    utf8_fails = False  # whether UTF-8 cannot read the file
    try:
        with path.open("rb") as raw:
            first = True
            while chunk := raw.read(1 << 20):
                body = chunk[3:] if first and chunk.startswith(codecs.BOM_UTF8) else chunk
                skipped, first = len(chunk) - len(body), False
                readable = len(body)  # how much of the chunk UTF-8 reads
                if not utf8_fails:
                    try:
                        as_utf8.decode(body)
                    except UnicodeDecodeError as error:
                        utf8_fails, readable = True, max(0, error.start)
                    if not utf8_line and (letter := _BEYOND_ASCII.search(body, 0, readable)):
                        utf8_line = line + chunk[: skipped + letter.start()].count(b"\n")
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as error:
                    line += chunk[: max(0, error.start)].count(b"\n")
                    raise
                line += chunk.count(b"\n")
            decoder.decode(b"", final=True)
            if not utf8_fails:
                as_utf8.decode(b"", final=True)
    except UnicodeDecodeError:
        if utf8_line and utf8_line < line and not single_byte:
            raise ImportRefused(
                f"line {line} of {path.name} is not UTF-8, though the lines before it are (line {utf8_line} "
                "has letters written in UTF-8): the file mixes two encodings. Retype that line's accented "
                "letters, or save the whole file again as UTF-8 from the program that made it; --encoding "
                "cp1252 would misread the UTF-8 lines (ü as Ã¼). Nothing was imported"
            ) from None
        raise ImportRefused(
            f"line {line} of {path.name} is not {ENCODING_NAMES.get(encoding, encoding)}: save the file as UTF-8, "
            "or name its encoding "
            "with --encoding (cp1252 for Excel on Windows, latin-1); nothing was imported"
        ) from None
    if single_byte and utf8_line and not utf8_fails:
        raise ImportRefused(
            f"{path.name} is UTF-8 (line {utf8_line} has letters written so), which "
            f"{ENCODING_NAMES.get(encoding, encoding)} would misread (ü as Ã¼): import it without --encoding. "
            "Nothing was imported"
        )


#: Encodings where every byte is a letter, so a UTF-8 file decodes in them without an error, garbled.
SINGLE_BYTE = {"cp1252", "latin-1", "iso8859-1", "iso8859-15", "cp850", "mac-roman"}
#: A byte beyond ASCII: in what UTF-8 reads without an error, a letter UTF-8 writes.
_BEYOND_ASCII = re.compile(rb"[\x80-\xff]")


#: Encodings as people name them (utf-8-sig is UTF-8 that may start with Excel's byte order mark).
ENCODING_NAMES = {"utf-8-sig": "UTF-8", "utf-8": "UTF-8", "cp1252": "cp1252", "latin-1": "Latin-1"}


async def import_customers(
    database: Database,
    options: ImportOptions,
    progress: Callable[[int, int], None] | None = None,
    *,
    detect_columns: bool = True,
) -> ImportResult:
    """`detect_columns=False`: only `options.columns` say which column fills which field."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        # A program without `if __name__ == "__main__":` is run again by each process it starts (Python's
        # spawn): here, by the phone-number reader. Stopping this second run makes that reader fail to
        # start, and the first run reads the numbers itself: the file is imported once.
        raise RuntimeError(
            "import_customers was called while a helper process was starting: start the program from "
            '`if __name__ == "__main__":`'
        )
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
        dialect = dialect_of(handle)
        reader = csv.reader(handle, dialect)
        try:
            header, lines = header_and_rows(reader)
            columns = ColumnMap.from_header(header, options.columns, detect=detect_columns)
        except (ColumnsRefused, csv.Error) as error:
            raise ImportRefused(str(error)) from None
        known = await known_customers(database)
        defaults = ImportDefaults(options.timezone, options.locale, path.name)
        rejected = 0
        left_out = 0
        rows = 0
        errors_file = None
        errors_writer = None
        try:
            where = partial(os.lseek, handle.fileno(), 0, os.SEEK_CUR)
            async with (
                CustomerImport(database, known, defaults, dry_run=options.dry_run) as run,
                _BatchWriter(run) as writer,
                _PhonesAhead(options.default_region, columns, size) as phones,
                aclosing(phones.read(_numbered(lines, reader), where)) as read,
            ):
                batch: list[ImportRow] = []
                async for line_number, values, phone in read:
                    rows += 1
                    if rows % YIELD_EVERY_ROWS == 0:
                        await asyncio.sleep(0)  # the batch being written goes on to its next statement
                    outcome = (
                        read_row(line_number, values, columns, rules, phone)
                        if not isinstance(values, str)
                        else Rejected(line_number, values)
                    )
                    listed = outcome.reason if isinstance(outcome, Rejected) else outcome.left_out
                    if listed is not None:
                        if isinstance(outcome, Rejected):
                            rejected += 1
                        else:
                            left_out += 1
                        if errors_writer is None:
                            # In the file's own encoding and separator (a German Excel's semicolons), so
                            # that the fixed rows open in the same program and import with the same options.
                            errors_file = os.fdopen(
                                new_private_file(errors_path),
                                "w",
                                encoding=options.encoding,
                                errors="replace",
                                newline="",
                            )
                            errors_writer = csv.writer(errors_file, dialect)
                            errors_writer.writerow(["line", "reason", *columns.rows_to_fix_header(header)])
                        errors_writer.writerow(
                            [line_number, listed, *([] if isinstance(values, str) else values)]
                        )
                    if isinstance(outcome, Rejected):
                        continue
                    batch.append(outcome)
                    if len(batch) >= BATCH_ROWS:
                        await writer.apply(batch)
                        batch = []
                        if progress is not None:
                            progress(phones.position(), size)
                await writer.apply(batch)
                await writer.finish()
                await run.record_run(options.actor, rejected, options.via, left_out=left_out)
                counts = run.counts
        finally:
            if errors_file is not None:
                errors_file.close()
    if progress is not None:
        progress(size, size)
    if errors_file is None and errors_path.exists():
        os.unlink(errors_path)  # an error file from an earlier run of the same file would mislead
    return ImportResult(
        counts,
        rows,
        rejected,
        errors_path if errors_file is not None else None,
        columns.ignored,
        options.dry_run,
        gives_consent=bool(CONSENT_FIELDS.keys() & columns.fields.keys()),
        left_out=left_out,
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


class _PhonesAhead:
    """Reads the file a batch ahead and has a worker process check that batch's phone numbers meanwhile
    (`phonenumbers` is most of a row's checking), so this process merges rows while the other reads
    numbers: on a machine with two cores or more, for a file big enough to repay starting the process.
    Should the process fail (killed, or not allowed), the numbers are read here, as for a small file."""

    def __init__(self, default_region: str, columns: ColumnMap, file_size: int) -> None:
        self.default_region = default_region
        self.columns = columns
        self.wanted = file_size >= AHEAD_FROM_BYTES and _cores() > 1 and "phone" in columns.fields
        self._pool: ProcessPoolExecutor | None = None
        #: The batches read, their numbers being checked, and how far the file was read then; oldest first.
        self._ahead: deque[
            tuple[list[tuple[int, list[str] | str]], asyncio.Future[list[PhoneReading | None]], int]
        ] = deque()
        self._where: Callable[[], int] = lambda: 0
        #: How far the file was read when the batch whose rows are being handed out was (None: read here).
        self._handed_to: int | None = None

    async def __aenter__(self) -> _PhonesAhead:
        if self.wanted:
            try:
                # Spawned, not forked: this process runs an event loop and the database driver's threads.
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=helper_process.started,
                )
            except (OSError, ImportError) as error:  # no semaphores (/dev/shm), say
                log.warning("phone numbers are read in this process: no worker process (%s)", error)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._drop_ahead()  # the import stopped early: what was read ahead is not wanted
        if self._pool is not None:
            # Waits for the batch being checked, if any (a tenth of a second), so no process is left.
            await asyncio.to_thread(self._pool.shutdown, wait=True, cancel_futures=True)

    def position(self) -> int:
        """How far into the file the rows handed out so far go, in bytes (a little more: reading buffers)."""
        return self._where() if self._handed_to is None else self._handed_to

    async def read(
        self, numbered: Iterator[tuple[int, list[str] | str]], where: Callable[[], int]
    ) -> AsyncGenerator[tuple[int, list[str] | str, PhoneReading | None], None]:
        """(line number, values or why the line cannot be read, its phone number read ahead or None).
        `where` says how far the file has been read."""
        self._where = where
        if self._pool is None:
            for line_number, values in numbered:
                yield line_number, values, None
            return
        ahead = self._ahead
        loop = asyncio.get_running_loop()
        while True:
            chunk = list(itertools.islice(numbered, BATCH_ROWS))
            if chunk:
                numbers = [
                    ("", "")
                    if isinstance(values, str)
                    else (self.columns.value(values, "phone"), row_country(values, self.columns))
                    for _, values in chunk
                ]
                try:
                    reading = loop.run_in_executor(self._pool, normalise_phones, numbers, self.default_region)
                except (BrokenProcessPool, OSError) as error:  # it broke since the last batch
                    reading = loop.create_future()
                    reading.set_exception(BrokenProcessPool(str(error)))
                ahead.append((chunk, reading, where()))
            elif not ahead:
                return  # the file is read and every batch handed out
            if chunk and len(ahead) < BATCHES_AHEAD:
                continue  # read further ahead first
            lines, reading, self._handed_to = ahead.popleft()
            try:
                phones: list[PhoneReading | None] = await reading
            except (BrokenProcessPool, OSError) as error:
                log.warning("checking phone numbers in another process failed, reading them here: %s", error)
                pool, self._pool = self._pool, None
                pool.shutdown(wait=False, cancel_futures=True)
                later = [line for pending, _, _ in ahead for line in pending]
                self._drop_ahead()
                self._handed_to = None
                for line_number, values in [*lines, *later]:
                    yield line_number, values, None
                for line_number, values in numbered:
                    yield line_number, values, None
                return
            for (line_number, values), phone in zip(lines, phones, strict=True):
                yield line_number, values, phone

    def _drop_ahead(self) -> None:
        """Forget the batches read ahead: their readings are cancelled, or their outcome taken (so a worker
        that died is not reported again as an error nobody retrieved)."""
        for _, reading, _ in self._ahead:
            if reading.done() and not reading.cancelled():
                reading.exception()
            else:
                reading.cancel()
        self._ahead.clear()


def _cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


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
