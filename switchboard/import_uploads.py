"""The dashboard's customer import (/communication/customers/import): the uploaded file's columns, and a check
or an import of it run in the web process that received the request, with its progress written to the
database every second so that any web process can show it."""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory

from domain.clock import utc_now
from domain.customers.importing import FIELD_NAMES, ColumnMap, ColumnsRefused, header_and_rows
from storage.database import Database
from storage.import_uploads import change_upload, find_upload
from switchboard.customer_import import (
    ImportOptions,
    ImportRefused,
    ImportResult,
    dialect_of,
    import_customers,
    other_details_words,
)
from switchboard.settings import Settings

log = logging.getLogger(__name__)

#: How much of the file the column step reads: the header and a few rows to show.
HEAD_BYTES = 64 * 1024
PREVIEW_ROWS = 5
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
#: Imports under way in this process: kept so the event loop does not drop them.
_RUNNING: set[asyncio.Task[None]] = set()


@dataclass(frozen=True)
class FileColumns:
    header: list[str]
    preview: list[list[str]]
    #: column -> field as the column names (or the choices made) say.
    chosen: dict[str, str] = field(default_factory=dict)
    problem: str | None = None
    #: Letters that do not read in the chosen encoding (shown as "�"): the file is in another one.
    garbled: bool = False


def for_the_page(message: str) -> str:
    """The command line's advice in the words of the upload page."""
    message = re.sub(r"(map (yours|one) )?with --map '[^']*'", "choose its field below", message)
    message = re.sub(r"--map [^:]*: ", "", message)
    return message.replace(
        "name its encoding with --encoding", "upload it again choosing its encoding under Encoding"
    )


def file_columns(content: bytes, encoding: str, mapping: dict[str, str] | None) -> FileColumns:
    """The header, the first rows, and which field each column fills (`mapping`: the page's choices)."""
    # Incrementally, not final: a letter cut in two at HEAD_BYTES is left out, not read as a "�".
    text = (
        codecs.getincrementaldecoder(encoding)(errors="replace").decode(content[:HEAD_BYTES]).lstrip("\ufeff")
    )
    head = io.StringIO(text)
    reader = csv.reader(head, dialect_of(head))  # the import's own comma-or-semicolon rule
    try:
        header, rows = header_and_rows(reader)
        preview: list[list[str]] = []
        for row in rows:
            if len(preview) == PREVIEW_ROWS:
                break
            preview.append(row)
    except (ColumnsRefused, csv.Error) as error:
        return FileColumns([], [], problem=for_the_page(str(error)))
    try:
        columns = ColumnMap.from_header(header, mapping, detect=mapping is None)
    except ColumnsRefused as error:
        try:
            found = ColumnMap.matched(header, mapping, detect=mapping is None)
        except ColumnsRefused:
            found = {}
        chosen = {header[index]: name for name, index in found.items()}
        return FileColumns(header, preview, chosen, for_the_page(str(error)))
    return FileColumns(
        header,
        preview,
        {header[index]: name for name, index in columns.fields.items()},
        garbled="\ufffd" in text,
    )


def upload_summary(result: ImportResult, marketing_requires_opt_in: bool) -> str:
    """The import's first line, and what of the file is listed below it to fix (the CLI names its file)."""
    text = result.summary(marketing_requires_opt_in=marketing_requires_opt_in).splitlines()[0]
    listed = []
    if result.rejected:
        listed.append(f"{result.rejected:,} {'row' if result.rejected == 1 else 'rows'} rejected")
    if result.left_out:
        rows = "row" if result.left_out == 1 else "rows"
        listed.append(f"{result.left_out:,} {rows} {'would be ' if result.dry_run else ''}imported in part")
    if listed:
        text = f"{text.rstrip('.')}. Rows to fix, listed below: {' and '.join(listed)}."
    if result.counts.other_details_lines:
        kept = other_details_words(sorted(result.counts.other_details_lines), would_be=result.dry_run)
        text = f"{text.rstrip('.')}. {kept[0].upper()}{kept[1:]}."
    return text


def field_choices() -> list[str]:
    return list(FIELD_NAMES)


def start_upload_run(
    database: Database, settings: Settings, token: str, *, dry_run: bool, actor: str
) -> None:
    task = asyncio.create_task(run_upload(database, settings, token, dry_run=dry_run, actor=actor))
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)


async def run_upload(
    database: Database, settings: Settings, token: str, *, dry_run: bool, actor: str
) -> None:
    """Checks (dry run) or imports the upload, writing progress, then the summary and the error file."""
    upload = await find_upload(database, token)
    if upload is None:
        return
    read = [0]

    def progress(done: int, _size: int) -> None:
        read[0] = done

    async def report() -> None:
        while True:
            await asyncio.sleep(1.0)
            await change_upload(database, token, progress_bytes=read[0], updated_at=utc_now())

    with TemporaryDirectory(prefix="switchboard-import-") as folder:
        # Named as uploaded: the consent ledger says "imported from <file>, line N".
        path = Path(folder) / (_UNSAFE.sub("_", upload.file_name).strip() or "customers.csv")
        path.write_bytes(upload.content)
        errors = Path(folder) / "rejected-rows.csv"
        options = ImportOptions(
            path=path,
            default_region=upload.region,
            timezone=settings.business_timezone,
            locale=settings.customer_language,
            encoding=upload.encoding,
            columns=upload.mapping or None,
            dry_run=dry_run,
            errors_path=errors,
            actor=actor,
            via="web",
        )
        reporter = asyncio.create_task(report())
        try:
            result = await import_customers(database, options, progress, detect_columns=not upload.mapping)
        except ImportRefused as refused:
            await change_upload(
                database, token, status="failed", summary=for_the_page(str(refused)), updated_at=utc_now()
            )
            return
        except Exception:
            log.exception("customer import %s stopped", token)
            await change_upload(
                database,
                token,
                status="failed",
                summary="The import stopped on an error and was logged. What was imported before it stays; "
                "importing the file again is safe (rows already in are left as they are).",
                updated_at=utc_now(),
            )
            return
        finally:
            reporter.cancel()
        await change_upload(
            database,
            token,
            status="checked" if dry_run else "imported",
            progress_bytes=upload.size_bytes,
            summary=upload_summary(result, settings.marketing_requires_opt_in),
            # The rows in the error file: rejected ones, and ones imported without a part of them.
            rejected=result.rejected + result.left_out,
            error_csv=errors.read_bytes() if result.errors_path is not None else None,
            updated_at=utc_now(),
        )
