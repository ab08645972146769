"""What every JSON API route shares: bearer-token authentication, the container, bounded ids, and errors.

Every operation documents the problems it can answer (`problems(...)`) with their `Problem` body, and
every integer it takes is bounded to the database's 64-bit range (`RowId`, `QueryInt`, `BodyInt`).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Annotated, Any

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.params import KwargDefinition, Parameter
from litestar.response import Response
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from api.bad_input import INT64_MAX, INT64_MIN
from api.problems import FieldProblem, Problem, problem_answer
from providers.webhook_bodies import bearer_matches as bearer_matches  # shared with the email webhook
from switchboard.wiring import Container

#: The name of the bearer-token security scheme in the OpenAPI document.
BEARER = "bearer"
API_SECURITY: list[dict[str, list[str]]] = [{BEARER: []}]

#: An id in a path: any whole number the database can hold; one that names nothing answers 404.
RowId = Annotated[int, Parameter(ge=INT64_MIN, le=INT64_MAX, description="a 64-bit id")]
#: An optional whole-number filter in a query string.
QueryInt = Annotated[int | None, Parameter(ge=INT64_MIN, le=INT64_MAX, required=False)]
#: An id in a JSON body.
BodyId = Annotated[int, msgspec.Meta(ge=1, le=INT64_MAX)]


def documented_enum(values: Iterable[str | Enum], *, nullable: bool = False) -> KwargDefinition:
    """Documents a text field's allowed values in the OpenAPI document without enforcing them there:
    the handler refuses any other value itself (422), with a message naming the choices."""
    allowed: list[str | None] = [v.value if isinstance(v, Enum) else v for v in values]
    return KwargDefinition(schema_extra={"enum": [*allowed, *([None] if nullable else [])]})


PROBLEM_DESCRIPTIONS = {
    400: "The request cannot be read (malformed JSON, or JSON nested too deep).",
    401: "A valid bearer token is required (Authorization: Bearer <SWITCHBOARD_API_TOKEN>).",
    404: "Nothing has that name or id.",
    413: "The body is too large.",
    422: "The request is not valid, or cannot be done as asked; `detail` says why and `errors` names each field.",
}


def problems(*codes: int, body: bool = False) -> dict[int, ResponseSpec]:
    """The error answers of an API operation: 400, 401 and 422 always, 413 with a body, and `codes`."""
    wanted = {400, 401, 422, *codes, *((413,) if body else ())}
    return {
        code: ResponseSpec(
            data_container=Problem, description=PROBLEM_DESCRIPTIONS[code], generate_examples=False
        )
        for code in sorted(wanted)
    }


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


def validation_failed(request: Request[Any, Any, Any], error: ValidationException) -> Response[Any]:
    """Malformed requests answer 422 and name each field that is wrong, not a bare 400."""
    found = error.extra if isinstance(error.extra, list) else []
    fields = [
        FieldProblem(str(e.get("message", "")), str(e.get("key", "")), e.get("source"))
        for e in found
        if isinstance(e, dict)
    ]
    said = "; ".join(f"{f.key}: {f.message}" if f.key else f.message for f in fields)
    detail = "the request is not valid: " + (said or str(error.detail))
    return problem_answer(request, HTTP_422_UNPROCESSABLE_ENTITY, detail, fields)


def _exact_bounds(value: Any) -> Any:
    """Litestar writes numeric bounds as floats, and 2**63 - 1 becomes 2**63 on the way; put them back."""
    if isinstance(value, dict):
        fixed = {}
        for key, item in value.items():
            if key in ("maximum", "minimum") and isinstance(item, float) and item.is_integer():
                item = max(INT64_MIN, min(INT64_MAX, int(item)))
            fixed[key] = _exact_bounds(item)
        return fixed
    if isinstance(value, list):
        return [_exact_bounds(item) for item in value]
    return value


class ExactJsonRenderPlugin(JsonRenderPlugin):
    """/api/schema/openapi.json with whole-number bounds written exactly (see `_exact_bounds`)."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return self.render_json(request, _exact_bounds(openapi_schema))
