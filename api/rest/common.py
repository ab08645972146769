"""What every JSON API route shares: bearer-token authentication, the container, and 422 errors."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Response
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from switchboard.wiring import Container


def bearer_matches(authorization: str | None, expected: str) -> bool:
    """`Authorization: Bearer <expected>`, compared in constant time; an empty ``expected`` matches nothing.
    Stray whitespace around either side (a token pasted with its newline) does not count."""
    scheme, _, given = (authorization or "").strip().partition(" ")
    expected = expected.strip()
    return (
        scheme.lower() == "bearer"
        and bool(expected)
        and hmac.compare_digest(given.strip().encode(), expected.encode())
    )


def require_api_token(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """Guard: `Authorization: Bearer <SWITCHBOARD_API_TOKEN>`, compared in constant time."""
    expected = connection.app.state.settings.api_token.get_secret_value()
    if not bearer_matches(connection.headers.get("authorization"), expected):
        raise NotAuthorizedException(
            "a valid bearer token is required (Authorization: Bearer <SWITCHBOARD_API_TOKEN>)"
        )


def container_of(request: Request[Any, Any, Any]) -> Container:
    container: Container = request.app.state.container
    return container


class Unprocessable(HTTPException):
    """The request is well-formed but cannot be done as asked; `detail` says what is wrong."""

    status_code = HTTP_422_UNPROCESSABLE_ENTITY


def api_actor(request: Request[Any, Any, Any]) -> str:
    return request.headers.get("x-switchboard-actor", "api")[:120] or "api"


def validation_failed(
    request: Request[Any, Any, Any], error: ValidationException
) -> Response[dict[str, Any]]:
    """Malformed requests answer 422 and name each field that is wrong, not a bare 400."""
    return Response(
        {
            "status_code": 422,
            "detail": "the request is not valid: " + str(error.detail),
            "errors": error.extra,
        },
        status_code=HTTP_422_UNPROCESSABLE_ENTITY,
    )
