"""`GET /metrics`: the operational figures in Prometheus text format (aggregates only, no customer data)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Request, get
from litestar.response import Response

from switchboard.wiring import Container

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


@get("/metrics", name="metrics", exclude_from_auth=True, include_in_schema=False)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    container: Container = request.app.state.container
    await container.metrics.refresh(container.database, datetime.now(UTC))
    return Response(container.metrics.exposition(), media_type=PROMETHEUS_TEXT)
