"""`GET /metrics`: the operational figures in Prometheus text format (aggregates only, no customer data)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Response

from api.rest.common import bearer_matches
from domain.clock import utc_now
from switchboard.wiring import Container

#: Prometheus' text format; Litestar adds "; charset=utf-8" to a text type itself.
PROMETHEUS_TEXT = "text/plain; version=0.0.4"


@get("/metrics", name="metrics", exclude_from_auth=True, include_in_schema=False)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    container: Container = request.app.state.container
    token = container.settings.metrics_token.get_secret_value()
    if token.strip():
        if not bearer_matches(request.headers.get("authorization"), token):
            return Response(
                b"metrics need Authorization: Bearer <SWITCHBOARD_METRICS_TOKEN>\n",
                status_code=401,
                media_type="text/plain",
                headers={"WWW-Authenticate": "Bearer"},
            )
    await container.metrics.refresh(container.database, utc_now())
    return Response(container.metrics.exposition(), media_type=PROMETHEUS_TEXT)
