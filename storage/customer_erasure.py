"""Erasing one customer's personal data at their request (GDPR art. 17), keeping every figure the same.

The customer row stays, renamed "Erased customer ID" and without phone, email, chat ids or external
reference, because orders, appointments, messages and the consent ledger point at it: revenue, delivery
rates, campaign results and active-customer counts do not move. What goes:

- the text of every message to and from them (body, subject, payload; their address on each message) and of
  every turn of their conversations (staff replies too: they are about the patient), conversation subjects
  and survey comments, and the files they sent; their open conversations are closed;
- tags, preferences, the website chat's visitor tokens, and the patient's video link;
- the values in business events about them, except our own record ids;
- the raw webhooks already applied that carry their phone number, email or chat id.

The consent ledger stays, as the legal record of what they agreed to and when. Any mention of their
addresses in its notes is replaced, and one more entry per channel they had consented on says that the
erasure withdrew it. Planned messages are cancelled; a message a worker is handing to a provider at this
moment makes the erasure wait (nothing is changed, the operator runs it again a minute later).

Copies outside the database are not reached: Slack threads and Telegram posts of their conversations,
provider logs, backups. docs/operations.md says so.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote_plus

from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.vocabulary import Channel, ChatStatus, ConsentStatus, Direction, MessageStatus
from storage.customer_export import NoSuchCustomer
from storage.database import Database
from storage.models import (
    AuditLog,
    BusinessEvent,
    ChatAttachment,
    ChatMessage,
    ChatSession,
    ChatWidgetVisitor,
    CommunicationPreference,
    ConsentRecord,
    Customer,
    CustomerCommunication,
    CustomerConsent,
    CustomerTag,
    MessageStatusEvent,
    VideoConsultation,
    WebhookInbox,
)
from storage.sql import insert_for, table_of

#: What erased text reads as, wherever it was.
ERASED = "(erased)"
#: Why a planned message did not go.
ERASED_REASON = "customer_erased"
#: The consent ledger's source for the withdrawal an erasure records.
ERASURE_SOURCE = "erasure"


class ErasureRefused(RuntimeError):
    """The customer cannot be erased right now; nothing was changed. The message says why and what to do."""


@dataclass
class Erasure:
    customer_id: int
    erased_at: datetime
    already: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    #: Failed webhooks that mention the customer, kept for replay (an operator decides).
    failed_webhooks_kept: int = 0

    def summary(self) -> str:
        if self.already:
            return f"customer {self.customer_id} was already erased on {self.erased_at:%Y-%m-%d %H:%M} UTC"
        done = ", ".join(_counted(count, name) for name, count in self.counts.items() if count) or "nothing"
        lines = [f"erased customer {self.customer_id}: {done}"]
        if self.failed_webhooks_kept:
            lines.append(
                f"{self.failed_webhooks_kept} failed webhook(s) waiting for replay mention them and were kept: "
                "`switchboard webhooks replay` applies them once their fault is fixed (they arrive as a new "
                "contact)"
            )
        lines.append(
            "not reached: copies in Slack threads and Telegram posts, provider logs, and existing backups"
        )
        return "\n".join(lines)


#: How each count reads in the summary, one and many.
_WORDS = {
    "planned_messages_cancelled": ("planned message cancelled", "planned messages cancelled"),
    "messages": ("message", "messages"),
    "files": ("file", "files"),
    "conversation_turns": ("conversation turn", "conversation turns"),
    "conversations_closed": ("open conversation closed", "open conversations closed"),
    "tags": ("tag", "tags"),
    "preferences": ("preference", "preferences"),
    "chat_widget_visitors": ("chat widget visitor", "chat widget visitors"),
    "business_events": ("business event", "business events"),
    "consents_withdrawn": ("consent withdrawn", "consents withdrawn"),
    "webhooks": ("applied webhook deleted", "applied webhooks deleted"),
}


def _counted(count: int, name: str) -> str:
    one, many = _WORDS.get(name, (name, name))
    return f"{count} {one if count == 1 else many}"


def _addresses(customer: Customer) -> list[str]:
    """Every way their phone, email and chat ids can appear in text we keep (webhooks are raw bodies)."""
    found: set[str] = set()
    if customer.phone_e164:
        found |= {customer.phone_e164, customer.phone_e164.lstrip("+"), quote_plus(customer.phone_e164)}
    if customer.email:
        found |= {customer.email, quote_plus(customer.email)}
    if customer.whatsapp_id:
        found.add(customer.whatsapp_id)
    if customer.telegram_chat_id is not None:
        found.add(str(customer.telegram_chat_id))
    # Longest first, so that "+4915..." is replaced before "4915...".
    return sorted((a for a in found if len(a) >= 5), key=len, reverse=True)


def _scrub(text: str | None, addresses: list[str]) -> str | None:
    if not text:
        return text
    for address in addresses:
        text = text.replace(address, ERASED)
    return text


def _kept_event_values(payload: dict[str, Any] | None) -> dict[str, Any]:
    """Our own record ids (consultation_id, order_id...) stay so the event still joins; the rest goes."""
    return {
        key: value
        for key, value in (payload or {}).items()
        if key.endswith("_id") and isinstance(value, int) and not isinstance(value, bool)
    }


async def erase_customer(database: Database, customer_id: int, *, actor: str, now: datetime) -> Erasure:
    """Erases the customer in one transaction, audited; raises NoSuchCustomer or ErasureRefused."""
    async with database.sessions() as session:
        customer = await session.get(Customer, customer_id, with_for_update=True)
        if customer is None:
            raise NoSuchCustomer(f"no customer has id {customer_id}")
        if customer.erased_at is not None:
            return Erasure(customer_id, customer.erased_at, already=True)
        erasure = Erasure(customer_id, now)
        addresses = _addresses(customer)
        await _stop_messages(session, erasure)
        await _erase_messages(session, erasure, addresses)
        await _erase_conversations(session, erasure)
        await _erase_profile_extras(session, erasure, addresses)
        await _close_consent(session, erasure, addresses)
        await _forget_webhooks(session, erasure, addresses)
        customer.name = f"Erased customer {customer_id}"
        customer.phone_e164 = None
        customer.email = None
        customer.whatsapp_id = None
        customer.telegram_chat_id = None
        customer.external_ref = None
        customer.erased_at = now
        session.add(
            AuditLog(
                actor=actor,
                via="cli",
                action="customer.erase",
                target=f"customer:{customer_id}",
                detail={**erasure.counts, "failed_webhooks_kept": erasure.failed_webhooks_kept},
            )
        )
        await session.commit()
    return erasure


async def _stop_messages(session: AsyncSession, erasure: Erasure) -> None:
    cc = CustomerCommunication
    # Cancel first, then look for sends under way: on PostgreSQL a worker's claim and this update wait on
    # the same row lock, so a message is either cancelled here or counted as being sent below.
    cancelled = list(
        await session.scalars(
            update(cc)
            .where(cc.customer_id == erasure.customer_id, cc.status == MessageStatus.PLANNED.value)
            .values(status=MessageStatus.CANCELLED.value, status_reason=ERASED_REASON, next_attempt_at=None)
            .returning(cc.id)
        )
    )
    sending = await session.scalar(
        select(func.count())
        .select_from(cc)
        .where(cc.customer_id == erasure.customer_id, cc.status == MessageStatus.SENDING.value)
    )
    if sending:
        await session.rollback()
        raise ErasureRefused(
            f"customer {erasure.customer_id} has {sending} message(s) being handed to a provider right now; "
            "nothing was erased: run the erase again in a minute"
        )
    for message_id in cancelled:
        session.add(
            MessageStatusEvent(
                communication_id=message_id,
                status=MessageStatus.CANCELLED.value,
                source="erasure",
                occurred_at=erasure.erased_at,
                detail="Cancelled: the customer's data was erased before it was sent.",
            )
        )
    erasure.counts["planned_messages_cancelled"] = len(cancelled)


async def _erase_messages(session: AsyncSession, erasure: Erasure, addresses: list[str]) -> None:
    cc = CustomerCommunication
    mine = cc.customer_id == erasure.customer_id
    inbound = cc.direction == Direction.INBOUND.value
    done = await session.execute(
        update(cc)
        .where(mine)
        .values(
            body=ERASED,
            subject=None,
            payload=None,
            # Their address is the sender of what they wrote and the recipient of what we sent.
            to_address=case((inbound, cc.to_address), else_=ERASED),
            from_address=case((inbound, ERASED), else_=cc.from_address),
        )
        .execution_options(synchronize_session=False)
    )
    erasure.counts["messages"] = done.rowcount  # type: ignore[attr-defined]
    await _scrub_details(
        session,
        MessageStatusEvent,
        MessageStatusEvent.communication_id.in_(select(cc.id).where(mine)),
        addresses,
    )


async def _scrub_details(session: AsyncSession, model: Any, whose: Any, addresses: list[str]) -> None:
    """Replaces their addresses wherever the free-text `detail` of `model`'s rows (`whose`) mentions them."""
    if not addresses:
        return
    notes = await session.execute(select(model.id, model.detail).where(whose, model.detail.is_not(None)))
    for row_id, detail in notes.all():
        scrubbed = _scrub(detail, addresses)
        if scrubbed != detail:
            await session.execute(
                update(model)
                .where(model.id == row_id)
                .values(detail=scrubbed)
                .execution_options(synchronize_session=False)
            )


async def _erase_conversations(session: AsyncSession, erasure: Erasure) -> None:
    theirs = select(ChatSession.id).where(ChatSession.customer_id == erasure.customer_id)
    turns = select(ChatMessage.id).where(ChatMessage.session_id.in_(theirs))
    files = await session.execute(
        delete(ChatAttachment)
        .where(ChatAttachment.message_id.in_(turns))
        .execution_options(synchronize_session=False)
    )
    erasure.counts["files"] = files.rowcount  # type: ignore[attr-defined]
    written = await session.execute(
        update(ChatMessage)
        .where(ChatMessage.session_id.in_(theirs))
        .values(body=ERASED)
        .execution_options(synchronize_session=False)
    )
    erasure.counts["conversation_turns"] = written.rowcount  # type: ignore[attr-defined]
    await session.execute(
        update(ChatSession)
        .where(ChatSession.customer_id == erasure.customer_id)
        .values(subject=None, csat_comment=None)
        .execution_options(synchronize_session=False)
    )
    # Nobody can be answered any more: their open conversations leave the agents' queues.
    closed = await session.execute(
        update(ChatSession)
        .where(ChatSession.customer_id == erasure.customer_id, ChatSession.status != ChatStatus.CLOSED.value)
        .values(status=ChatStatus.CLOSED.value, closed_at=erasure.erased_at, snoozed_until=None)
        .execution_options(synchronize_session=False)
    )
    erasure.counts["conversations_closed"] = closed.rowcount  # type: ignore[attr-defined]


async def _erase_profile_extras(session: AsyncSession, erasure: Erasure, addresses: list[str]) -> None:
    customer_id = erasure.customer_id
    for name, model in (
        ("tags", CustomerTag),
        ("preferences", CommunicationPreference),
        ("chat_widget_visitors", ChatWidgetVisitor),
    ):
        gone = await session.execute(
            delete(model).where(model.customer_id == customer_id).execution_options(synchronize_session=False)
        )
        erasure.counts[name] = gone.rowcount  # type: ignore[attr-defined]
    await session.execute(
        update(VideoConsultation)
        .where(VideoConsultation.customer_id == customer_id)
        .values(link_token=None)
        .execution_options(synchronize_session=False)
    )
    events = await session.execute(
        select(BusinessEvent.id, BusinessEvent.payload).where(BusinessEvent.customer_id == customer_id)
    )
    for event_id, payload in events.all():
        kept = _kept_event_values(payload)
        if kept != (payload or {}):
            await session.execute(
                update(BusinessEvent)
                .where(BusinessEvent.id == event_id)
                .values(payload=kept)
                .execution_options(synchronize_session=False)
            )
            erasure.counts["business_events"] += 1


async def _close_consent(session: AsyncSession, erasure: Erasure, addresses: list[str]) -> None:
    """The ledger keeps its history; each channel they had opted in to gets a withdrawal by the erasure."""
    customer_id = erasure.customer_id
    await _scrub_details(session, ConsentRecord, ConsentRecord.customer_id == customer_id, addresses)
    opted_in = list(
        await session.scalars(
            select(CustomerConsent.channel).where(
                CustomerConsent.customer_id == customer_id,
                CustomerConsent.status == ConsentStatus.OPTED_IN.value,
            )
        )
    )
    for channel in sorted(opted_in):
        record = ConsentRecord(
            customer_id=customer_id,
            channel=Channel(channel).value,
            status=ConsentStatus.OPTED_OUT.value,
            source=ERASURE_SOURCE,
            detail="Withdrawn: the customer's data was erased at their request.",
            recorded_at=erasure.erased_at,
        )
        session.add(record)
        await session.flush()
        upsert = insert_for(session, table_of(CustomerConsent)).values(
            customer_id=customer_id,
            channel=channel,
            status=ConsentStatus.OPTED_OUT.value,
            source=ERASURE_SOURCE,
            record_id=record.id,
            changed_at=erasure.erased_at,
        )
        await session.execute(
            upsert.on_conflict_do_update(
                index_elements=["customer_id", "channel"],
                set_={
                    name: upsert.excluded[name] for name in ("status", "source", "record_id", "changed_at")
                },
            )
        )
    erasure.counts["consents_withdrawn"] = len(opted_in)


async def _forget_webhooks(session: AsyncSession, erasure: Erasure, addresses: list[str]) -> None:
    """Applied webhooks naming them go (they were only kept against provider retries); failed ones stay."""
    if not addresses:
        return
    mentions = or_(*(WebhookInbox.body.contains(address, autoescape=True) for address in addresses))
    gone = await session.execute(
        delete(WebhookInbox)
        .where(WebhookInbox.status.in_(("applied", "ignored")), mentions)
        .execution_options(synchronize_session=False)
    )
    erasure.counts["webhooks"] = gone.rowcount  # type: ignore[attr-defined]
    erasure.failed_webhooks_kept = (
        await session.scalar(
            select(func.count())
            .select_from(WebhookInbox)
            .where(WebhookInbox.status.not_in(("applied", "ignored")), mentions)
        )
        or 0
    )
