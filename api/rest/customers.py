"""/api/customers/{id}: preferences (preferred channel, quiet hours, marketing cap) and the consent ledger."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post, put
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody
from sqlalchemy import select

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
from domain.audit import AuditEntry
from domain.consent.ledger import record_consent
from domain.vocabulary import OUTBOUND_CHANNELS, Channel, ConsentStatus
from storage.inbox import ConversationUnitOfWork
from storage.models import CommunicationPreference, ConsentRecord, Customer, CustomerConsent


class PreferencesIn(msgspec.Struct):
    preferred_channel: Annotated[str | None, documented_enum(OUTBOUND_CHANNELS, nullable=True)] = None
    quiet_hours_start: str | None = None  # "21:00", local to the customer
    quiet_hours_end: str | None = None
    marketing_max_per_week: Annotated[int, msgspec.Meta(ge=0, le=50)] | None = None


class ConsentIn(msgspec.Struct):
    channel: Annotated[str, documented_enum(Channel)]
    status: Annotated[str, documented_enum(ConsentStatus)]
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"\S")] = "api"
    detail: str | None = None


def _clock(value: str | None, name: FromPath[str]) -> time | None:
    if value is None:
        return None
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise Unprocessable(f"{name} must be a time like 21:00, got {value!r}") from None


async def _preferences_json(session: Any, customer_id: FromPath[int]) -> dict[str, Any]:
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFoundException(f"no customer {customer_id}")
    preference = await session.get(CommunicationPreference, customer_id)
    consents = (
        await session.scalars(select(CustomerConsent).where(CustomerConsent.customer_id == customer_id))
    ).all()
    ledger = (
        await session.scalars(
            select(ConsentRecord)
            .where(ConsentRecord.customer_id == customer_id)
            .order_by(ConsentRecord.recorded_at, ConsentRecord.id)
        )
    ).all()
    return {
        "customer_id": customer_id,
        "timezone": customer.timezone,
        "preferred_channel": preference.preferred_channel if preference else None,
        "quiet_hours": None
        if not preference or preference.quiet_hours_start is None
        else {
            "start": preference.quiet_hours_start.isoformat("minutes"),
            "end": preference.quiet_hours_end.isoformat("minutes") if preference.quiet_hours_end else None,
        },
        "marketing_max_per_week": preference.marketing_max_per_week if preference else None,
        "consent": {
            c.channel: {"status": c.status, "source": c.source, "since": c.changed_at.isoformat()}
            for c in consents
        },
        "ledger": [
            {
                "channel": r.channel,
                "status": r.status,
                "source": r.source,
                "detail": r.detail,
                "at": r.recorded_at.isoformat(),
            }
            for r in ledger
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
        async with container_of(request).database.read_sessions() as session:
            return await _preferences_json(session, customer_id)

    @put("/{customer_id:int}/preferences", responses=problems(404, body=True))
    async def set_preferences(
        self, request: Request[Any, Any, Any], customer_id: FromPath[RowId], data: JSONBody[PreferencesIn]
    ) -> dict[str, Any]:
        if data.preferred_channel is not None and data.preferred_channel not in {
            c.value for c in OUTBOUND_CHANNELS
        }:
            raise Unprocessable("preferred_channel must be one of sms, email, whatsapp, telegram")
        start, end = (
            _clock(data.quiet_hours_start, "quiet_hours_start"),
            _clock(data.quiet_hours_end, "quiet_hours_end"),
        )
        if (start is None) != (end is None):
            raise Unprocessable("give both quiet_hours_start and quiet_hours_end, or neither")
        container = container_of(request)
        async with container.unit_of_work() as uow:
            if await uow.session.get(Customer, customer_id) is None:
                raise NotFoundException(f"no customer {customer_id}")
            preference = await uow.session.get(CommunicationPreference, customer_id)
            if preference is None:
                preference = CommunicationPreference(customer_id=customer_id)
                uow.session.add(preference)
            preference.preferred_channel = data.preferred_channel
            preference.quiet_hours_start, preference.quiet_hours_end = start, end
            preference.marketing_max_per_week = data.marketing_max_per_week
            preference.updated_at = datetime.now(UTC)
            uow.audit.record(
                AuditEntry(
                    actor=api_actor(request),
                    via="api",
                    action="customer.preferences",
                    target=f"customer:{customer_id}",
                    detail={"preferred": data.preferred_channel},
                )
            )
            await uow.commit()
        async with container.database.read_sessions() as session:
            return await _preferences_json(session, customer_id)

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
        async with container.database.read_sessions() as session:
            if await session.get(Customer, customer_id) is None:
                raise NotFoundException(f"no customer {customer_id}")
        recorded = await record_consent(
            ConversationUnitOfWork(container.unit_of_work()),
            customer_id,
            channel,
            status,
            data.source,
            (data.detail or "")[:255] or None,
            datetime.now(UTC),
        )
        assert recorded is not None  # recorded unconditionally: skip_if_unchanged is off
        return {
            "record_id": recorded.record_id,
            "status": recorded.status.value,
            "previous": recorded.previous.value if recorded.previous else None,
        }
