"""/api/customers/{id}: preferences (preferred channel, quiet hours, marketing cap) and the consent ledger."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post, put
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody

from api.rest.common import (
    API_SECURITY,
    RowId,
    Unprocessable,
    api_actor,
    container_of,
    documented_enum,
    problems,
    require_api_token,
)
from domain.clock import utc_now
from domain.consent.ledger import CustomerErased, record_consent
from domain.consent.preferences import MAX_MARKETING_PER_WEEK, PreferencesError, UnknownCustomer
from domain.consent.use_cases import set_preferences as set_customer_preferences
from domain.vocabulary import OUTBOUND_CHANNELS, Channel, ConsentStatus
from storage.database import Database
from storage.queries.customers import customer_erased, preferences_and_consent

#: Said when a change is asked for a customer erased at their request.
ERASED = "customer {} was erased at their request: nothing more is recorded about them"


class PreferencesIn(msgspec.Struct):
    preferred_channel: Annotated[str | None, documented_enum(OUTBOUND_CHANNELS, nullable=True)] = None
    quiet_hours_start: str | None = None  # "21:00", local to the customer
    quiet_hours_end: str | None = None
    marketing_max_per_week: Annotated[int, msgspec.Meta(ge=0, le=MAX_MARKETING_PER_WEEK)] | None = None


class ConsentIn(msgspec.Struct):
    channel: Annotated[str, documented_enum(Channel)]
    status: Annotated[str, documented_enum(ConsentStatus)]
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"\S")] = "api"
    detail: str | None = None


async def _preferences_json(database: Database, customer_id: int) -> dict[str, Any]:
    found = await preferences_and_consent(database, customer_id)
    if found is None:
        raise NotFoundException(f"no customer {customer_id}")
    return {
        "customer_id": customer_id,
        "timezone": found.timezone,
        "preferred_channel": found.preferred_channel,
        "quiet_hours": None
        if found.quiet_hours_start is None
        else {
            "start": found.quiet_hours_start.isoformat("minutes"),
            "end": found.quiet_hours_end.isoformat("minutes") if found.quiet_hours_end else None,
        },
        "marketing_max_per_week": found.marketing_max_per_week,
        "consent": {
            c.channel: {"status": c.status, "source": c.source, "since": c.changed_at.isoformat()}
            for c in found.consents
        },
        "ledger": [
            {
                "channel": r.channel,
                "status": r.status,
                "source": r.source,
                "detail": r.detail,
                "at": r.recorded_at.isoformat(),
            }
            for r in found.ledger
        ],
    }


class CustomersController(Controller):
    path = "/api/customers"
    guards = [require_api_token]
    security = API_SECURITY
    tags = ["customers"]

    @get("/{customer_id:int}/preferences", responses=problems(404))
    async def preferences(
        self, request: Request[Any, Any, Any], customer_id: FromPath[RowId]
    ) -> dict[str, Any]:
        return await _preferences_json(container_of(request).database, customer_id)

    @put("/{customer_id:int}/preferences", responses=problems(404, body=True))
    async def set_preferences(
        self, request: Request[Any, Any, Any], customer_id: FromPath[RowId], data: JSONBody[PreferencesIn]
    ) -> dict[str, Any]:
        container = container_of(request)
        if await customer_erased(container.database, customer_id):
            raise Unprocessable(ERASED.format(customer_id))
        try:
            await set_customer_preferences(
                container.units.preferences(),
                customer_id,
                preferred_channel=data.preferred_channel,
                quiet_hours_start=data.quiet_hours_start,
                quiet_hours_end=data.quiet_hours_end,
                marketing_max_per_week=data.marketing_max_per_week,
                actor=api_actor(request),
                via="api",
                now=utc_now(),
            )
        except PreferencesError as error:
            raise Unprocessable(str(error)) from None
        except UnknownCustomer:
            raise NotFoundException(f"no customer {customer_id}") from None
        return await _preferences_json(container.database, customer_id)

    @post("/{customer_id:int}/consent", status_code=201, responses=problems(404, body=True))
    async def consent(
        self, request: Request[Any, Any, Any], customer_id: FromPath[RowId], data: JSONBody[ConsentIn]
    ) -> dict[str, Any]:
        """Appends to the consent ledger (never overwrites) and updates the current state in one transaction."""
        try:
            channel, status = Channel(data.channel), ConsentStatus(data.status)
        except ValueError as error:
            raise Unprocessable(str(error)) from None
        if not data.source.strip() or len(data.source) > 32:
            raise Unprocessable("source is required (at most 32 characters), e.g. web_form or front_desk")
        container = container_of(request)
        erased = await customer_erased(container.database, customer_id)
        if erased is None:
            raise NotFoundException(f"no customer {customer_id}")
        if erased:
            raise Unprocessable(ERASED.format(customer_id))
        try:
            recorded = await record_consent(
                container.conversation_uow(),
                customer_id,
                channel,
                status,
                data.source,
                (data.detail or "")[:255] or None,
                utc_now(),
            )
        except CustomerErased:  # erased between the check above and the write
            raise Unprocessable(ERASED.format(customer_id)) from None
        assert recorded is not None  # recorded unconditionally: skip_if_unchanged is off
        return {
            "record_id": recorded.record_id,
            "status": recorded.status.value,
            "previous": recorded.previous.value if recorded.previous else None,
        }
