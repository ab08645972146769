"""Refuses, before any handler runs, input that nothing behind the web app can hold.

PostgreSQL text cannot hold a NUL character and its integers stop at 64 bits; JSON nested thousands
deep exhausts the parser's recursion. Each used to surface as a server error from deep inside a
handler (or worse, only on one engine). This middleware answers them at the edge, in words:

- a NUL character in the path, the query string, a form or a JSON body: 422;
- a whole number beyond 64 bits in a query value, a form value or a JSON body: 422;
- an integer path parameter beyond 64 bits: 404 (no row can have that id);
- JSON nested deeper than MAX_JSON_DEPTH: 400, checked before anything parses it;
- a JSON body whose values are not of the types its operation documents: 422, once the route's guards
  have let the request in (`strict_body_types`). Litestar converts bodies leniently (1.0 for an id, a
  number of seconds for a date), which the OpenAPI document does not promise.

Provider webhooks and Slack events are left alone: their signatures cover the exact bytes, and a
signed body we cannot read is kept for replay by the webhook routes instead of refused.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from litestar import Request
from litestar.enums import ScopeType
from litestar.exceptions import ClientException, NotFoundException, ValidationException
from litestar.middleware import ASGIMiddleware
from litestar.status_codes import HTTP_413_REQUEST_ENTITY_TOO_LARGE, HTTP_422_UNPROCESSABLE_ENTITY
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

#: The database's integer range (PostgreSQL BIGINT, SQLite INTEGER).
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: Our request bodies are a few levels deep (an audience filter inside a campaign); 32 is generous.
MAX_JSON_DEPTH = 32
#: Litestar's own limit on a request body, which this check must not widen.
MAX_BODY_BYTES = 10_000_000
#: Routes whose raw body is verified and kept as sent (see the module docstring).
RAW_BODY_PATHS = ("/webhooks/", "/slack/")

_JSON_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?')
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_WHOLE_NUMBER = re.compile(r"[+-]?\d+")
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class Unprocessable(ClientException):
    status_code = HTTP_422_UNPROCESSABLE_ENTITY


def beyond_64_bits(number: str) -> bool:
    """Whether a whole number written in decimal lies outside the database's integer range.

    Compared as text: Python refuses to convert numbers of more than 4,300 digits, and a caller may send one.
    """
    negative = number.startswith("-")
    digits = number.lstrip("+-").lstrip("0") or "0"
    limit = str(-INT64_MIN if negative else INT64_MAX)
    return len(digits) > len(limit) or (len(digits) == len(limit) and digits > limit)


def shown(value: str) -> str:
    """A caller's value as a message quotes it: short, so a megabyte of digits is not sent back."""
    return value if len(value) <= 24 else value[:20] + "…"


NUL_MESSAGE = "text cannot contain the NUL character (\\u0000 or %00)"


def check_text(name: str, value: str) -> None:
    if "\x00" in value or "\x00" in name:
        raise Unprocessable(f"{shown(name) or 'a field'}: {NUL_MESSAGE}")
    if _WHOLE_NUMBER.fullmatch(value) and beyond_64_bits(value):
        raise Unprocessable(
            f"{shown(name)}: {shown(value)} is too large; whole numbers here are between "
            f"{INT64_MIN} and {INT64_MAX}"
        )


def check_path(scope: Scope) -> None:
    path = scope.get("path", "")
    if "\x00" in path:
        raise Unprocessable(f"the address: {NUL_MESSAGE}")
    segments = set(path.split("/"))
    for name, value in (scope.get("path_params") or {}).items():
        if not isinstance(value, int) or isinstance(value, bool):
            continue
        if not INT64_MIN <= value <= INT64_MAX:
            raise NotFoundException(f"nothing has {name} {shown(str(value))}: ids go up to {INT64_MAX}")
        # Python reads " 9\f", "+9", "0_9" and "٩" as 9; an id in an address is written in plain digits.
        if str(value) not in segments:
            raise NotFoundException(f"{name} must be written in plain digits, like /{value}")


def check_form(body: bytes) -> None:
    for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        check_text(name, value)


def check_json(body: bytes) -> None:
    """Depth, NUL characters and 64-bit integers, from the tokens alone: nothing is parsed before it passes."""
    depth = 0
    for token in _JSON_TOKEN.finditer(body):
        text = token.group()
        first = text[:1]
        if first in (b"[", b"{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise ClientException(
                    f"the JSON body is nested more than {MAX_JSON_DEPTH} levels deep; "
                    "nothing here needs that many"
                )
        elif first in (b"]", b"}"):
            depth -= 1
        elif first == b'"':
            if _ESCAPED_NUL.search(text):
                raise Unprocessable(f"the JSON body: {NUL_MESSAGE}")
        elif text.lstrip(b"-").isdigit() and beyond_64_bits(text.decode()):
            raise Unprocessable(
                f"the JSON body: {shown(text.decode())} is too large; whole numbers here are between "
                f"{INT64_MIN} and {INT64_MAX}"
            )


def documented_body_type(scope: Scope) -> type | None:
    """The type of the handler's `data` (its JSON body), or None when it reads the body itself."""
    handler = scope.get("route_handler")
    data = handler.parsed_fn_signature.parameters.get("data") if handler is not None else None
    return data.annotation if data is not None and isinstance(data.annotation, type) else None


def check_types(body: bytes, documented: type) -> None:
    """The body decoded strictly as the documented type, so it is exactly what the document says."""
    try:
        msgspec.json.decode(body, type=documented, strict=True)
    except msgspec.ValidationError as error:  # before DecodeError, of which it is a kind
        message, _, where = str(error).partition(" - at `$")
        key = where.rstrip("`").lstrip(".")
        raise ValidationException(
            f"{key or 'the body'}: {message}", extra=[{"message": message, "key": key, "source": "body"}]
        ) from None
    except msgspec.DecodeError:
        return  # not JSON at all: the handler's own parsing says so


async def strict_body_types(request: Request[Any, Any, Any]) -> None:
    """before_request hook: runs after the guards (a caller without a token hears 401 first). Only for
    handlers that take a `data` body: the webhooks read theirs raw, and reading it here would starve them."""
    documented = documented_body_type(request.scope)
    if documented is not None and body_kind(request.scope) == "json":
        check_types(await request.body(), documented)


def body_kind(scope: Scope) -> str | None:
    """How this middleware reads the request's body: as "json", as "form", or not at all (None)."""
    if scope.get("method") not in _BODY_METHODS:
        return None
    content_type = next((v for k, v in scope.get("headers", ()) if k == b"content-type"), b"")
    media_type = content_type.split(b";")[0].strip().lower()
    if media_type == b"application/json" or media_type.endswith(b"+json"):
        return "json"
    if media_type == b"application/x-www-form-urlencoded":
        return "form"
    return None


async def read_body(receive: Receive) -> tuple[bytes, list[ReceiveMessage]]:
    """The whole body, and the messages it came in (to hand on unchanged)."""
    messages: list[ReceiveMessage] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":  # the client went away; the handler will see that too
            return b"".join(chunks), messages
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_BODY_BYTES:
            raise ClientException(
                f"the body is larger than {MAX_BODY_BYTES // 1_000_000} MB",
                status_code=HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        if not message.get("more_body", False):
            return b"".join(chunks), messages


def replaying(messages: list[ReceiveMessage], receive: Receive) -> Receive:
    """A receive that gives the handler the body already read, then whatever comes next."""
    pending = list(messages)

    async def receive_again() -> Any:
        if pending:
            return pending.pop(0)
        return await receive()

    return receive_again


class BadInputGuard(ASGIMiddleware):
    """The checks of the module docstring, on every HTTP route but the raw-body ones."""

    scopes = (ScopeType.HTTP,)
    exclude_path_pattern = tuple(f"^{re.escape(path)}" for path in RAW_BODY_PATHS)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        check_path(scope)
        query = scope.get("query_string", b"").decode("latin-1")
        for name, value in parse_qsl(query, keep_blank_values=True):
            check_text(name, value)
        kind = body_kind(scope)
        if kind is None:
            await next_app(scope, receive, send)
            return
        body, messages = await read_body(receive)
        if b"\x00" in body:
            raise Unprocessable(f"the body: {NUL_MESSAGE}")
        (check_json if kind == "json" else check_form)(body)
        await next_app(scope, replaying(messages, receive), send)
