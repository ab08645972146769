"""Importing a customer list on the dashboard (managers): upload a CSV, choose which column fills which field,
check it (a dry run that reports what would change), import it with a progress bar, and download the rows
that were rejected with their reasons. The command line (`switchboard import customers`) does the same for
files larger than the page takes."""

from __future__ import annotations

import csv
import io
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from api.auth import requires_role
from api.pages.common import Formats, StaffPages, container_of, page, staff_of, utc_now
from domain.customers.importing import FIELD_WORDS
from domain.vocabulary import Role
from storage.customer_import import past_imports
from storage.import_uploads import RUNNING, STALE_AFTER, find_upload, save_upload, start_run
from switchboard.customer_import import dialect_of
from switchboard.import_uploads import field_choices, file_columns, start_upload_run

PATH = "/communication/customers/import"
#: The largest file the page takes (about 120,000 rows, a check of about 12 s); larger ones go through the
#: command line, which shows its progress in the terminal.
MAX_FILE_BYTES = 10 * 1024 * 1024
ENCODINGS = {"utf-8-sig": "UTF-8", "cp1252": "Windows (Excel, cp1252)", "latin-1": "Latin-1 (ISO 8859-1)"}
#: Rejected rows shown on the page; the download has them all.
SHOWN_REJECTED = 50


class CustomerImportPages(StaffPages):
    @get(PATH, name="customer_import", guards=[requires_role(Role.MANAGER)])
    async def upload_page(self, request: Request[Any, Any, Any]) -> Template:
        return await self._upload_form(request)

    async def _upload_form(self, request: Request[Any, Any, Any], error: str | None = None) -> Template:
        container = container_of(request)
        settings = container.settings
        region = settings.phone_region
        formats = Formats.of(request)
        earlier = [(formats.moment(past.at), past) for past in await past_imports(container.database)]
        return page(
            request,
            "communication/customer_import.html",
            "communication",
            None,
            upload=None,
            region=region,
            encodings=ENCODINGS,
            max_mb=MAX_FILE_BYTES // (1024 * 1024),
            earlier=earlier,
            business_tz=formats.timezone,
            error=error,
        )

    @post(
        PATH,
        name="customer_import_upload",
        guards=[requires_role(Role.MANAGER)],
        status_code=303,
        request_max_body_size=MAX_FILE_BYTES + 64 * 1024,
    )
    async def upload(self, request: Request[Any, Any, Any]) -> Redirect | Template:
        container, staff = container_of(request), staff_of(request)
        form = await request.form()
        upload = form.get("file")
        region = str(form.get("region", "")).strip().upper()[:2]
        encoding = str(form.get("encoding", ""))
        if not isinstance(upload, UploadFile) or not upload.filename:
            return await self._refused(request, "Choose the CSV file to import.")
        if encoding not in ENCODINGS:
            return await self._refused(request, "Choose the file's encoding.")
        if len(region) != 2 or not region.isalpha():
            return await self._refused(
                request, "Give the country whose numbers lack a +code, as two letters (DE)."
            )
        content = await upload.read()
        if not content:
            return await self._refused(request, f"{upload.filename} is empty.")
        if len(content) > MAX_FILE_BYTES:
            return await self._refused(
                request,
                f"{upload.filename} is over {MAX_FILE_BYTES // (1024 * 1024)} MB: import it on the server with "
                "switchboard import customers (docs/operations.md, Bringing your customers in).",
            )
        token = await save_upload(
            container.database,
            file_name=upload.filename,
            content=content,
            encoding=encoding,
            region=region,
            created_by=staff.email,
            now=utc_now(),
        )
        return Redirect(f"{PATH}/{token}", status_code=303)

    async def _refused(self, request: Request[Any, Any, Any], error: str) -> Template:
        template = await self._upload_form(request, error)
        template.status_code = 400
        return template

    @get(f"{PATH}/{{token:str}}", name="customer_import_file", guards=[requires_role(Role.MANAGER)])
    async def file_page(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Template:
        return await self._file(request, token)

    async def _file(
        self,
        request: Request[Any, Any, Any],
        token: str,
        error: str | None = None,
        chosen: dict[str, str] | None = None,
    ) -> Template:
        container = container_of(request)
        upload = await find_upload(container.database, token)
        if upload is None:
            raise NotFoundException("this upload is gone: uploads are kept for a day; upload the file again")
        columns = file_columns(upload.content, upload.encoding, chosen or upload.mapping or None)
        now = utc_now()
        running = upload.status in RUNNING and upload.updated_at > now - STALE_AFTER
        stopped = upload.status in RUNNING and not running
        rejected_rows: list[list[str]] = []
        if upload.error_csv:
            errors = io.StringIO(upload.error_csv.decode(upload.encoding, errors="replace"))
            reader = csv.reader(errors, dialect_of(errors))  # written with the file's own separator
            next(reader, None)
            for row in reader:
                if len(rejected_rows) == SHOWN_REJECTED:
                    break
                rejected_rows.append(row[:2])
        template = page(
            request,
            "communication/customer_import.html",
            "communication",
            None,
            upload=upload,
            columns=columns,
            fields=field_choices(),
            field_words=FIELD_WORDS,
            running=running,
            stopped=stopped,
            percent=int(100 * upload.progress_bytes / upload.size_bytes) if upload.size_bytes else 100,
            rejected_rows=rejected_rows,
            # Rows imported without their number are listed with the rejected ones; the page explains them
            # only when some are there.
            any_left_out=any(len(row) > 1 and row[1].startswith("imported without") for row in rejected_rows),
            encodings=ENCODINGS,
            error=error,
        )
        if error:
            template.status_code = 400
        return template

    @post(
        f"{PATH}/{{token:str}}",
        name="customer_import_run",
        guards=[requires_role(Role.MANAGER)],
        status_code=303,
    )
    async def run(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Redirect | Template:
        container, staff = container_of(request), staff_of(request)
        upload = await find_upload(container.database, token)
        if upload is None:
            raise NotFoundException("this upload is gone: uploads are kept for a day; upload the file again")
        form = await request.form()
        action = str(form.get("action", ""))
        header = file_columns(upload.content, upload.encoding, None).header
        chosen: dict[str, str] = {}
        fields = set(field_choices())
        for index, column in enumerate(header):
            value = str(form.get(f"column_{index}", ""))
            if value in fields:
                chosen[column] = value
        twice = sorted({f for f in chosen.values() if list(chosen.values()).count(f) > 1})
        if twice:
            return await self._file(
                request,
                token,
                f"Each field can come from one column only: {', '.join(twice)} is chosen twice.",
                chosen,
            )
        problem = file_columns(upload.content, upload.encoding, chosen).problem
        if problem:
            return await self._file(request, token, problem, chosen)
        if action not in {"check", "import"}:
            return await self._file(request, token, "Choose Check or Import.", chosen)
        status = "checking" if action == "check" else "importing"
        if not await start_run(container.database, token, status, chosen, utc_now()):
            return await self._file(request, token, "This file is being checked or imported already.", chosen)
        start_upload_run(
            container.database, container.settings, token, dry_run=action == "check", actor=staff.email
        )
        return Redirect(f"{PATH}/{token}", status_code=303)

    @get(
        f"{PATH}/{{token:str}}/rejected-rows.csv",
        name="customer_import_rejected",
        guards=[requires_role(Role.MANAGER)],
    )
    async def rejected(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Response[bytes]:
        upload = await find_upload(container_of(request).database, token)
        if upload is None or not upload.error_csv:
            raise NotFoundException("no rejected rows for this upload")
        stem = upload.file_name.rsplit(".", 1)[0][:80] or "customers"
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)
        charset = "utf-8" if upload.encoding == "utf-8-sig" else upload.encoding
        return Response(
            upload.error_csv,
            media_type="text/csv",
            encoding=charset,  # Litestar adds the one charset itself: the file's
            headers={"Content-Disposition": f'attachment; filename="{safe}.rows-to-fix.csv"'},
        )
