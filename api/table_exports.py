"""Any dashboard table downloaded as CSV or XLSX, with its figures exactly as the page shows them.

A page lists its tables' downloads with the `table_downloads(ID)` macro (templates/macros/exports.html),
which links to the page itself with `?table=ID&format=csv|xlsx`. This middleware lets the page's own
handler answer that request, with its own sign-in, role and filter checks, then turns the named table of
the HTML it rendered into the file. So a download can never show more than the page, nor differ from it:
the same figures, in the business's timezone and locale, with the currency as the page writes it.

Pages with more rows than they show (the message log, a channel's failures, the campaign list) keep their
own downloads, which carry every row up to their stated limits.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from reports.exports import Cell, SheetRows, sheet_csv, sheet_xlsx

#: The pages whose tables can be downloaded (the dashboard; never the API, webhooks or the widget).
PAGE_PREFIXES = ("/communication/", "/analytics/")
FORMATS = {
    "csv": b"text/csv; charset=utf-8",
    "xlsx": b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
#: A table id as the templates write them: letters, digits, dashes and underscores.
TABLE_ID = re.compile(r"[a-z][a-z0-9_-]{0,63}")
#: Routes under the page prefixes that are not pages: live event streams and files, never buffered here.
NOT_PAGES = re.compile(r"/events$|/attachments/|/media/|\.[a-z0-9]{2,4}$")
#: A figure written without grouping or units ("12", "-3", "4.5") is stored as a number, so a spreadsheet can
#: add it up; anything else ("€1,234.50", "12 %", "3 min") stays text, exactly as shown.
PLAIN_NUMBER = re.compile(r"-?(0|[1-9]\d{0,14})(\.\d{1,6})?")


class _Tables(HTMLParser):
    """The rows of the table with one id, its caption, and the page's first heading."""

    def __init__(self, wanted: str) -> None:
        super().__init__(convert_charrefs=True)
        self.wanted = wanted
        self.depth = 0  # nesting depth inside the wanted table (0: outside it)
        self.found = False
        self.caption: list[str] = []
        self.heading: list[str] = []
        self.rows: list[list[str]] = []
        self.header_rows = 0
        #: Columns whose heading says `data-no-export` (buttons such as "Remove"): left out of the file.
        self.skipped: set[int] = set()
        self._in: str | None = None  # "caption", "h1" or "cell"
        self._in_head = False
        self._cell: list[str] = []
        self._h1_done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            if self.depth:
                self.depth += 1
            elif not self.found and dict(attrs).get("id") == self.wanted:
                self.found, self.depth = True, 1
            return
        if tag == "h1" and not self._h1_done:
            self._in = "h1"
        if self.depth != 1:
            return
        if tag == "caption":
            self._in = "caption"
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr":
            self.rows.append([])
            if self._in_head:
                self.header_rows += 1
        elif tag in ("td", "th") and self.rows:
            self._in, self._cell = "cell", []
            if self._in_head and "data-no-export" in dict(attrs):
                self.skipped.add(len(self.rows[-1]))
        elif tag in ("br", "li") and self._in == "cell" and self._cell:
            self._cell.append(LINE_BREAK)  # two addresses on two lines stay two lines in the file

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.depth:
            self.depth -= 1
        elif tag == "h1" and self._in == "h1":
            self._in, self._h1_done = None, True
        elif tag == "caption" and self._in == "caption":
            self._in = None
        elif tag == "thead":
            self._in_head = False
        elif tag in ("td", "th") and self._in == "cell" and self.depth == 1:
            lines = "".join(self._cell).split(LINE_BREAK)
            self.rows[-1].append("\n".join(folded for line in lines if (folded := " ".join(line.split()))))
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "cell" and self.depth == 1:  # text of a table inside the cell is not the cell's
            self._cell.append(data)
        elif self._in == "caption":
            self.caption.append(data)
        elif self._in == "h1":
            self.heading.append(data)


#: Where a cell's text had a line break (`<br>`, a list item); its other whitespace is the markup's.
LINE_BREAK = "\x00"


def table_sheet(html: str, table_id: str, *, page: str, timezone: str) -> SheetRows | None:
    """The table `table_id` of a rendered page as sheet rows (None: the page has no such table)."""
    parser = _Tables(table_id)
    parser.feed(html)
    parser.close()
    if not parser.found:
        return None
    rows = [[cell for i, cell in enumerate(row) if i not in parser.skipped] for row in parser.rows]
    # The header row, when the table has one (<thead>); the rest are its rows, empty ones left out, and so is
    # a placeholder row of one cell across a wider table ("No messages in that period.").
    heading = tuple(rows[0]) if parser.header_rows else ()
    body = [row for row in rows[parser.header_rows :] if row and not (len(row) == 1 and len(heading) > 1)]
    width = max([len(heading), *(len(r) for r in body)], default=0)
    title = " ".join("".join(parser.caption).split()) or " ".join("".join(parser.heading).split())
    now = datetime.now(UTC).astimezone(ZoneInfo(timezone))
    return SheetRows(
        title or "Table",
        heading + ("",) * (width - len(heading)),
        tuple(tuple(_cell(text) for text in row) + ("",) * (width - len(row)) for row in body),
        f"{title or 'Table'}, as shown on {page} at {now:%Y-%m-%d %H:%M} ({timezone}).",
    )


def _cell(text: str) -> Cell:
    return float(text) if PLAIN_NUMBER.fullmatch(text) else text


class TableExports(ASGIMiddleware):
    """Answers `?table=ID&format=csv|xlsx` on a dashboard page with that table of the page as a file."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        asked = _asked(scope)
        if asked is None:
            await next_app(scope, receive, send)
            return
        table_id, ext = asked
        kept = [
            (k, v)
            for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            if k not in ("table", "format")
        ]
        inner: Any = {**scope, "query_string": urlencode(kept).encode("latin-1")}
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await next_app(inner, receive, capture)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-length",)]
        content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
        body = b"".join(chunks)
        if start.get("status") != 200 or not content_type.startswith(b"text/html"):
            # Not a page (a redirect to sign in, a refusal, a problem): answer exactly as the page did.
            await _send(send, start.get("status", 500), headers, body)
            return
        app_state = scope["app"].state
        sheet = table_sheet(
            body.decode("utf-8", "replace"),
            table_id,
            page=scope["path"],
            timezone=app_state.settings.business_timezone,
        )
        if sheet is None:
            plain = [(k, v) for k, v in headers if k.lower() != b"content-type"]
            text = f"This page has no table “{table_id}” to download.".encode()
            await _send(send, 404, [*plain, (b"content-type", b"text/plain; charset=utf-8")], text)
            return
        file = sheet_csv(sheet) if ext == "csv" else sheet_xlsx(sheet)
        stem = f"{scope['path'].strip('/').replace('/', '-')}-{table_id}"
        headers = [(k, v) for k, v in headers if k.lower() != b"content-type"]
        headers += [
            (b"content-type", FORMATS[ext]),
            (b"content-disposition", f'attachment; filename="{stem}.{ext}"'.encode()),
        ]
        await _send(send, 200, headers, file)


def _asked(scope: Scope) -> tuple[str, str] | None:
    """(table id, format) when a dashboard page is asked for one of its tables, else None."""
    path = scope["path"]
    if scope.get("method") != "GET" or not path.startswith(PAGE_PREFIXES) or NOT_PAGES.search(path):
        return None
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    table_id, ext = query.get("table"), query.get("format")
    if table_id is None or ext not in FORMATS or not TABLE_ID.fullmatch(table_id):
        return None
    return table_id, str(ext)


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
