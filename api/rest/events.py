"""/api/events: business events (order.created, appointment.booked, ...) that trigger automated notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, post
from litestar.params import JSONBody, KwargDefinition

from api.rest.common import API_SECURITY, Unprocessable, container_of, problems, require_api_token
from domain.notifications.model import NotificationError
from domain.notifications.rules import MAX_EVENT_TYPE_LENGTH, MAX_KEY_LENGTH
from domain.notifications.use_cases import record_event

#: business_events.customer_id is a 32-bit column (customers.id is 64-bit); a larger id cannot be kept.
MAX_EVENT_CUSTOMER_ID = 2**31 - 1


class EventIn(msgspec.Struct):
    """A business event; lengths are checked by the domain, which names the limit (422)."""

    type: Annotated[str, KwargDefinition(min_length=1, max_length=MAX_EVENT_TYPE_LENGTH)]
    idempotency_key: Annotated[str, KwargDefinition(min_length=1, max_length=MAX_KEY_LENGTH)]
    customer_id: Annotated[int, msgspec.Meta(ge=1, le=MAX_EVENT_CUSTOMER_ID)] | None = None
    payload: dict[str, Any] = {}
    occurred_at: datetime | None = None


class EventsController(Controller):
    path = "/api/events"
    guards = [require_api_token]
    security = API_SECURITY
    tags = ["events"]

    @post("/", status_code=202, responses=problems(body=True))
    async def record(self, request: Request[Any, Any, Any], data: JSONBody[EventIn]) -> dict[str, Any]:
        """Stores the event once per idempotency key; matching notification rules queue their messages shortly."""
        if data.occurred_at is not None and data.occurred_at.tzinfo is None:
            raise Unprocessable("occurred_at needs a timezone offset, e.g. 2026-11-24T09:30:00+01:00")
        container = container_of(request)
        try:
            recorded = await record_event(
                container.notification_uow(),
                data.type,
                data.idempotency_key,
                data.customer_id,
                data.payload,
                data.occurred_at,
            )
        except (NotificationError, ValueError) as error:
            raise Unprocessable(str(error)) from None
        return {"id": recorded.event.id, "created": recorded.created, "type": recorded.event.event_type}
