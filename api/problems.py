"""How the web app answers what goes wrong: a request id per request, problems in words, every 5xx logged.

Every answer carries an `X-Request-Id` header: the caller's own when it sent a sane one, else a new one.
A problem is a JSON body (`Problem`) for machines, or the problem page for a person's browser. A server
error never shows a traceback: its body and its log line carry the request id, so the two meet.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import HTTPException
from litestar.response import Response, Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import Message, Scope

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
#: What we accept from a caller or proxy as its request id; anything else (too long, spaces, quotes,
#: control characters) is replaced by our own, since the id is written into logs and headers.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=/-]{0,127}")
#: Paths machines call; everything else is a page a person may be looking at.
MACHINE_PATHS = ("/api/", "/webhooks/", "/slack/", "/metrics", "/healthz", "/readyz")
_LOGGED = "server_error_logged"
PAGE_HEADINGS = {
    400: "That request could not be read",
    404: "Not found",
    413: "That is too large",
    422: "That is not possible",
}


class FieldProblem(msgspec.Struct, omit_defaults=True):
    """One thing wrong with a request: which field (`key`), where it was (`source`), and what is wrong."""

    message: str
    key: str = ""
    source: str | None = None


class Problem(msgspec.Struct, omit_defaults=True):
    """The body of every error answer of the JSON API, the webhooks and the health checks."""

    status_code: int
    detail: str
    request_id: str
    errors: list[FieldProblem] | None = None


def request_id_of(scope: Scope) -> str:
    """This request's id, fixed on first use: the caller's `X-Request-Id` when sane, else a new one."""
    state: dict[str, Any] = scope.setdefault("state", {})
    found: str | None = state.get("request_id")
    if found:
        return found
    incoming = next(
        (value.decode("latin-1") for name, value in scope.get("headers", ()) if name == b"x-request-id"),
        "",
    )
    request_id = incoming if SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
    state["request_id"] = request_id
    return request_id


async def stamp_request_id(message: Message, scope: Scope) -> None:
    """before_send hook: the id goes on every answer, and a 5xx nobody logged yet gets its log line here."""
    if message["type"] != "http.response.start":
        return
    request_id = request_id_of(scope)
    message["headers"] = [
        *[(k, v) for k, v in message.get("headers", ()) if k.lower() != b"x-request-id"],
        (b"x-request-id", request_id.encode()),
    ]
    state: dict[str, Any] = scope.get("state", {})
    if message["status"] >= HTTP_500_INTERNAL_SERVER_ERROR and not state.get(_LOGGED):
        # A deliberate 5xx (readiness saying 503): no exception to show, but its id is on record.
        log.warning(
            "%s %s answered %s (request id %s)",
            scope.get("method", "-"),
            scope.get("path", "-"),
            message["status"],
            request_id,
            extra={"request_id": request_id},
        )


def wants_page(request: Request[Any, Any, Any]) -> bool:
    """A person's browser asking for a page, rather than a machine calling the API or a webhook."""
    path = request.scope.get("path", "")
    if path.startswith(MACHINE_PATHS):
        return False
    return "text/html" in request.headers.get("accept", "")


def problem_answer(
    request: Request[Any, Any, Any],
    status_code: int,
    detail: str,
    errors: list[FieldProblem] | None = None,
    heading: str | None = None,
) -> Response[Any]:
    """The answer to a problem: a `Problem` body, or the problem page for a browser."""
    request_id = request_id_of(request.scope)
    if wants_page(request):
        staff = getattr(request.state, "staff", None)
        heading = heading or PAGE_HEADINGS.get(status_code, "That is not possible")
        return Template(
            "problem.html",
            context={"staff": staff, "detail": detail, "heading": heading},
            status_code=status_code,
        )
    return Response(Problem(status_code, detail, request_id, errors or None), status_code=status_code)


def client_problem(request: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
    """Any HTTP error a handler or guard raised (401, 404, 405, 413, ...), with its detail in words."""
    if error.status_code >= HTTP_500_INTERNAL_SERVER_ERROR:
        return server_error(request, error)
    return problem_answer(request, error.status_code, str(error.detail))


def server_error(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    """An unexpected failure: logged with its traceback and the request id; the caller sees only the id."""
    request_id = request_id_of(request.scope)
    state: dict[str, Any] = request.scope.setdefault("state", {})
    state[_LOGGED] = True
    log.error(
        "%s %s failed (request id %s): %s",
        request.method,
        request.scope.get("path", "-"),
        request_id,
        error.__class__.__name__,
        exc_info=error,
        extra={"request_id": request_id},
    )
    status_code = (
        error.status_code
        if isinstance(error, HTTPException) and error.status_code >= HTTP_500_INTERNAL_SERVER_ERROR
        else HTTP_500_INTERNAL_SERVER_ERROR
    )
    detail = (
        "Something went wrong on our side, not with your request. "
        f"It is logged under request id {request_id}; quote it if you report this."
    )
    return problem_answer(request, status_code, detail, heading="Something went wrong")
