"""Liveness and readiness: is the process up, and can it do its job (database reachable, schema at head)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request, get
from litestar.openapi import ResponseSpec
from litestar.response import Response
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from storage import migrate
from switchboard.wiring import Container


@dataclass(frozen=True)
class Readiness:
    ready: bool
    database: str
    schema: str
    detail: str = ""


@get("/healthz", name="healthz", exclude_from_auth=True)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/readyz",
    name="readyz",
    exclude_from_auth=True,
    responses={
        HTTP_503_SERVICE_UNAVAILABLE: ResponseSpec(
            data_container=Readiness, description="Not ready: the database is unreachable or not migrated."
        )
    },
)
async def readyz(request: Request[Any, Any, Any]) -> Response[Readiness]:
    container: Container = request.app.state.container
    try:
        await container.database.ping()
    except Exception as error:  # any failure to reach the database means not ready
        reason = str(error).splitlines()[0][:200] if str(error) else error.__class__.__name__
        return Response(
            Readiness(False, "unreachable", "unknown", reason), status_code=HTTP_503_SERVICE_UNAVAILABLE
        )
    current = await migrate.current_revision(container.database.engine)
    head = migrate.head_revision()
    if current != head and migrate.is_newer_than_this_release(current):
        # A newer release migrated the database during a rolling upgrade; its migrations are safe with this
        # code, so this process keeps serving until it is replaced.
        return Response(
            Readiness(
                True, "ok", f"at {current}, newer than this release's {head} (a newer release is rolling out)"
            ),
            status_code=HTTP_200_OK,
        )
    if current != head:
        return Response(
            Readiness(False, "ok", f"at {current or 'nothing'}, head is {head}", "run `switchboard migrate`"),
            status_code=HTTP_503_SERVICE_UNAVAILABLE,
        )
    return Response(Readiness(True, "ok", f"at head {head}"), status_code=HTTP_200_OK)
