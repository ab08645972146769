"""/api/events: business events (order.created, appointment.booked, ...) that trigger automated notifications."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from litestar import Controller, Request, post
from litestar.params import JSONBody

from api.rest.common import Unprocessable, container_of, require_api_token
from domain.notifications.model import NotificationError
from domain.notifications.use_cases import record_event
from storage.notifications import SqlNotificationUnitOfWork


@dataclass
class EventIn:
    type: str
    idempotency_key: str
    customer_id: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None


class EventsController(Controller):
    path = "/api/events"
    guards = [require_api_token]
    tags = ["events"]

    @post("/", status_code=202)
    async def record(self, request: Request[Any, Any, Any], data: JSONBody[EventIn]) -> dict[str, Any]:
        """Stores the event once per idempotency key; matching notification rules queue their messages shortly."""
        if data.occurred_at is not None and data.occurred_at.tzinfo is None:
            raise Unprocessable("occurred_at needs a timezone offset, e.g. 2026-11-24T09:30:00+01:00")
        container = container_of(request)
        try:
            recorded = await record_event(
                SqlNotificationUnitOfWork(
                    container.database, business_tz=container.settings.business_timezone
                ),
                data.type,
                data.idempotency_key,
                data.customer_id,
                data.payload,
                data.occurred_at,
            )
        except (NotificationError, ValueError) as error:
            raise Unprocessable(str(error)) from None
        return {"id": recorded.event.id, "created": recorded.created, "type": recorded.event.event_type}
