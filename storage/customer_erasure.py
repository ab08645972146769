"""Erasing one customer's personal data at their request (GDPR art. 17), keeping every figure the same.

The customer row stays, renamed "Erased customer ID" and without phone, email, chat ids or external
reference, because orders, appointments, messages and the consent ledger point at it: revenue, delivery
rates, campaign results and active-customer counts do not move. What goes:

- the text of every message to and from them (body, subject, payload, provider error text, and their
  address on each), including messages from their addresses that were never tied to a customer, and every
  turn of their conversations (staff replies too: they are about the patient), conversation subjects and
  survey comments, and the files they sent;
- tags, preferences, the website chat's visitor tokens, and the patient's video link;
- the values in business events about them, except our own record ids;
- the raw body of applied webhooks that carry any address they used (the rows stay, so that a provider's
  retry is still recognised and applied once).

The consent ledger stays, as the legal record of what they agreed to and when. Their addresses and name in
its notes are replaced, and every channel gets one more entry, opted out by the erasure, so that nothing is
sent to the row again (the worker's last check before a send reads it). Those entries are not counted as
opt-outs. Planned messages are suppressed; a message a worker is handing to a provider at this moment makes
the erasure wait (nothing is changed, the operator runs it again a minute later). Erasing again erases what
reached the row since, such as a message that arrived while the first erasure ran.

Copies in the staff chats (Slack threads, the staff bot's Telegram posts) are overwritten afterwards by
switchboard/erasure_copies.py, from `staff_copies`. Copies elsewhere are not reached: provider logs,
backups, and customer lists uploaded on the dashboard (deleted after a day). docs/operations.md says so.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote_plus

from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.counting import counted
from domain.vocabulary import OUTBOUND_CHANNELS, ConsentStatus, Direction, MessageStatus, Provider
from storage.customer_export import NoSuchCustomer
from storage.database import Database
from storage.models import (
    AuditLog,
    BusinessEvent,
    ChatAttachment,
    ChatMessage,
    ChatSession,
    ChatSlackThread,
    ChatTelegramPost,
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
from storage.partitions import message_creation_times
from storage.sql import insert_for, table_of

#: What erased text reads as, wherever it was.
ERASED = "(erased)"
#: Why a planned message did not go.
ERASED_REASON = "customer_erased"
#: The consent ledger's source for the withdrawal an erasure records (not counted as an opt-out).
ERASURE_SOURCE = "erasure"
#: The keys of business event values that are our own record ids, kept so the event still joins.
OUR_RECORD_IDS = frozenset(
    {"appointment_id", "order_id", "payment_id", "refund_id", "consultation_id", "campaign_id", "session_id"}
)
#: Webhooks blanked per transaction (outside the erasure's own, so it holds no lock over a scan of them).
WEBHOOK_BATCH = 500
#: The audit entries of an erasure (one per run) and of what it did outside the database (staff chats,
#: Twilio).
ERASE_ACTION = "customer.erase"
COPIES_ACTION = "customer.erase.copies"
WEBHOOKS_ACTION = "customer.erase.webhooks"
#: A Twilio Message SID (SMS or MMS): the only ids sent to Twilio's API in a URL.
TWILIO_MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-fA-F]{32}")


class ErasureRefused(RuntimeError):
    """The customer cannot be erased right now; nothing was changed. The message says why and what to do."""


@dataclass
class Erasure:
    customer_id: int
    erased_at: datetime
    #: Erased before: this run erased what reached the row since.
    again: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    #: Webhooks not applied (failed or waiting) that mention their addresses: kept, they may be someone
    #: else's.
    unapplied_webhooks_kept: int = 0
    #: Twilio's ids (SM...) of every SMS to or from them, tied to them or found by their numbers, with those
    #: an earlier run could not delete: Twilio keeps each in the account's logs until it is deleted
    #: (switchboard/erasure_copies.py).
    twilio_records: list[str] = field(default_factory=list)

    def summary(self) -> str:
        done = ", ".join(_counted(count, name) for name, count in self.counts.items() if count)
        when = f"{self.erased_at:%Y-%m-%d %H:%M} UTC"
        if self.again:
            lines = [
                f"customer {self.customer_id} was already erased on {when}; "
                + (f"erased what reached them since: {done}" if done else "nothing new to erase")
            ]
        else:
            lines = [f"erased customer {self.customer_id}: {done or 'nothing but the profile'}"]
        if self.unapplied_webhooks_kept:
            lines.append(
                f"{counted(self.unapplied_webhooks_kept, 'webhook')} not applied yet (failed or waiting) mention their "
                "phone, email or chat id and were kept: they may be someone else's; replayed, theirs would "
                "come back as a new contact"
            )
        if not self.again:
            lines.append(
                "not reached: WhatsApp's copies at Meta, your mail relay's logs, and existing backups"
            )
        return "\n".join(lines)


#: How each count reads in the summary, one and many.
_WORDS = {
    "planned_messages_withdrawn": ("planned message withdrawn", "planned messages withdrawn"),
    "messages": ("message", "messages"),
    "files": ("file", "files"),
    "conversation_turns": ("conversation turn", "conversation turns"),
    "tags": ("tag", "tags"),
    "preferences": ("preference", "preferences"),
    "chat_widget_visitors": ("chat widget visitor", "chat widget visitors"),
    "business_events": ("business event", "business events"),
    "channels_closed": ("channel closed in the consent ledger", "channels closed in the consent ledger"),
    "webhooks": ("applied webhook blanked", "applied webhooks blanked"),
}


def _counted(count: int, name: str) -> str:
    one, many = _WORDS.get(name, (name, name))
    return f"{count} {one if count == 1 else many}"


async def _addresses(session: AsyncSession, customer: Customer) -> list[str]:
    """Every address they used (the profile's, and those on their messages: a number they changed since)
    in every form it takes in text we keep (webhooks are raw bodies, form-encoded or JSON)."""
    cc = CustomerCommunication
    used = set(
        await session.scalars(
            select(case((cc.direction == Direction.INBOUND.value, cc.from_address), else_=cc.to_address))
            .where(cc.customer_id == customer.id)
            .distinct()
        )
    )
    used |= {customer.phone_e164, customer.email, customer.whatsapp_id}
    if customer.telegram_chat_id is not None:
        used.add(str(customer.telegram_chat_id))
    found: set[str] = set()
    for address in used:
        if not address or address == ERASED:
            continue
        found.add(address)
        if address.startswith("+"):
            found |= {address.lstrip("+"), quote_plus(address)}
        if "@" in address:
            found |= {address.lower(), quote_plus(address.lower())}
    # Longest first, so that "+4915..." is replaced before "4915...".
    return sorted((a for a in found if len(a) >= 5), key=len, reverse=True)


def _scrub(text: str | None, addresses: list[str]) -> str | None:
    if not text:
        return text
    for address in addresses:
        text = re.sub(re.escape(address), ERASED, text, flags=re.IGNORECASE)
    return text


def _kept_event_values(payload: dict[str, Any] | None) -> dict[str, Any]:
    """Our own record ids (consultation_id, order_id...) stay so the event still joins; the rest goes."""
    return {
        key: value
        for key, value in (payload or {}).items()
        if key in OUR_RECORD_IDS and isinstance(value, int) and not isinstance(value, bool)
    }


async def erase_customer(
    database: Database, customer_id: int, *, actor: str, now: datetime, via: str = "cli"
) -> Erasure:
    """Erases the customer in one transaction, audited, then blanks the applied webhooks that name them.
    Raises NoSuchCustomer or ErasureRefused (then nothing changed)."""
    # The searches that read whole tables (messages by address) run first, in a read that takes no lock.
    async with database.read_sessions() as session:
        found = await session.get(Customer, customer_id)
        if found is None:
            raise NoSuchCustomer(f"no customer has id {customer_id}")
        addresses = await _addresses(session, found)
        untied = await _untied_messages(session, addresses)
    async with database.sessions() as session:
        customer = await session.get(Customer, customer_id, with_for_update=True)
        if customer is None:
            raise NoSuchCustomer(f"no customer has id {customer_id}")
        again = customer.erased_at is not None
        erasure = Erasure(customer_id, customer.erased_at or now, again=again)
        addresses = sorted({*addresses, *await _addresses(session, customer)}, key=len, reverse=True)
        words = [*addresses, *([customer.name] if not again and len(customer.name) >= 3 else [])]
        await _stop_messages(session, erasure, now)
        # Found now, while their numbers are known, and kept in this transaction's audit entry with what an
        # earlier run left: an SMS from their number never tied to them cannot be found again afterwards.
        erasure.twilio_records = list(
            dict.fromkeys(
                [
                    *await _twilio_records(session, customer_id, untied),
                    *await _twilio_pending(session, customer_id),
                ]
            )
        )
        await _erase_messages(session, erasure, untied, words)
        await _erase_conversations(session, erasure)
        await _erase_profile_extras(session, erasure)
        await _close_consent(session, erasure, words, now)
        if not again:
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
                via=via,
                action=ERASE_ACTION,
                target=f"customer:{customer_id}",
                detail={**erasure.counts, "again": again, "twilio_records": erasure.twilio_records},
            )
        )
        await session.commit()
    await _blank_webhooks(database, erasure, addresses)
    if erasure.counts["webhooks"] or erasure.unapplied_webhooks_kept:
        detail = {"blanked": erasure.counts["webhooks"], "kept": erasure.unapplied_webhooks_kept}
        await _audit(database, customer_id, actor, WEBHOOKS_ACTION, detail, via)
    return erasure


@dataclass(frozen=True)
class StaffCopies:
    """Where the staff chats hold copies of a customer's conversations."""

    #: (channel id, root ts) of each conversation's Slack thread.
    slack_threads: list[tuple[str, str]]
    #: (chat id, message id) of each post the staff bot sent agents in Telegram.
    telegram_posts: list[tuple[int, int]]


async def staff_copies(database: Database, customer_id: int) -> StaffCopies:
    async with database.read_sessions() as session:
        chats = select(ChatSession.id).where(ChatSession.customer_id == customer_id)
        threads = await session.execute(
            select(ChatSlackThread.channel_id, ChatSlackThread.thread_ts)
            .where(ChatSlackThread.session_id.in_(chats), ChatSlackThread.thread_ts.is_not(None))
            .order_by(ChatSlackThread.session_id)
        )
        posts = await session.execute(
            select(ChatTelegramPost.telegram_chat_id, ChatTelegramPost.message_id)
            .where(ChatTelegramPost.session_id.in_(chats))
            .order_by(ChatTelegramPost.id)
        )
        return StaffCopies(
            [(channel, str(ts)) for channel, ts in threads.all()],
            [(int(chat), int(message)) for chat, message in posts.all()],
        )


async def _twilio_records(session: AsyncSession, customer_id: int, untied: list[int]) -> list[str]:
    cc = CustomerCommunication
    sids = await session.scalars(
        select(cc.provider_message_id)
        .where(
            cc.provider == Provider.TWILIO.value,
            cc.provider_message_id.is_not(None),
            or_(cc.customer_id == customer_id, cc.id.in_(untied)),
        )
        .order_by(cc.id)
    )
    return [sid for sid in dict.fromkeys(sids) if sid and TWILIO_MESSAGE_SID.fullmatch(sid)]


async def _twilio_pending(session: AsyncSession, customer_id: int) -> list[str]:
    """The Twilio records still to delete as the latest run left them: all it found, if it stopped before
    its Twilio pass wrote what it did (`customer.erase`), else those the pass could not delete
    (`customer.erase.copies`)."""
    latest = (
        await session.execute(
            select(AuditLog.action, AuditLog.detail)
            .where(
                AuditLog.action.in_([ERASE_ACTION, COPIES_ACTION]),
                AuditLog.target == f"customer:{customer_id}",
            )
            .order_by(AuditLog.id.desc())
            .limit(1)
        )
    ).first()
    if latest is None:
        return []
    found = (latest.detail or {}).get("twilio_records" if latest.action == ERASE_ACTION else "twilio_pending")
    return [str(sid) for sid in found or [] if TWILIO_MESSAGE_SID.fullmatch(str(sid))]


async def record_copies_erased(
    database: Database, customer_id: int, actor: str, counts: dict[str, Any], via: str = "cli"
) -> None:
    await _audit(database, customer_id, actor, COPIES_ACTION, counts, via)


async def _audit(
    database: Database, customer_id: int, actor: str, action: str, detail: dict[str, Any], via: str
) -> None:
    """An audit entry of its own, for a step after the erasure's transaction."""
    async with database.sessions() as session:
        session.add(
            AuditLog(actor=actor, via=via, action=action, target=f"customer:{customer_id}", detail=detail)
        )
        await session.commit()


async def _stop_messages(session: AsyncSession, erasure: Erasure, now: datetime) -> None:
    cc = CustomerCommunication
    # Withdraw first, then look for sends under way: on PostgreSQL a worker's claim and this update wait on
    # the same row lock, so a message is either withdrawn here or counted as being sent below. Suppressed,
    # as an opt-out withdraws them: a late receipt of an earlier attempt is still applied.
    withdrawn = list(
        await session.scalars(
            update(cc)
            .where(cc.customer_id == erasure.customer_id, cc.status == MessageStatus.PLANNED.value)
            .values(status=MessageStatus.SUPPRESSED.value, status_reason=ERASED_REASON, next_attempt_at=None)
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
            f"customer {erasure.customer_id} has {counted(sending, 'message')} being handed to a provider "
            "right now; "
            "nothing was erased: run the erase again in a minute"
        )
    created = await message_creation_times(session, withdrawn)
    for message_id in withdrawn:
        session.add(
            MessageStatusEvent(
                communication_id=message_id,
                message_created_at=created[message_id],
                status=MessageStatus.SUPPRESSED.value,
                source="erasure",
                occurred_at=now,
                detail="Withdrawn: the customer's data was erased before it was sent.",
            )
        )
    erasure.counts["planned_messages_withdrawn"] = len(withdrawn)


async def _untied_messages(session: AsyncSession, addresses: list[str]) -> list[int]:
    """Messages from or to their addresses that were never tied to a customer (a STOP from a number we did
    not know yet, mail from before they were a customer). No index serves this: it reads the table."""
    cc = CustomerCommunication
    exact = [a for a in addresses if a.startswith("+") or "@" in a]
    if not exact:
        return []
    return list(
        await session.scalars(
            select(cc.id).where(
                cc.customer_id.is_(None), cc.from_address.in_(exact) | cc.to_address.in_(exact)
            )
        )
    )


async def _erase_messages(
    session: AsyncSession, erasure: Erasure, untied: list[int], words: list[str]
) -> None:
    cc = CustomerCommunication
    inbound = cc.direction == Direction.INBOUND.value
    ids = [
        *await session.scalars(select(cc.id).where(cc.customer_id == erasure.customer_id, cc.body != ERASED))
    ]
    ids += untied
    for start in range(0, len(ids), WEBHOOK_BATCH):
        await session.execute(
            update(cc)
            .where(cc.id.in_(ids[start : start + WEBHOOK_BATCH]))
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
    erasure.counts["messages"] = len(ids)
    # Provider error texts name the number or address they could not reach.
    await _scrub_details(session, cc, cc.customer_id == erasure.customer_id, words, column="status_reason")
    await _scrub_details(
        session,
        MessageStatusEvent,
        MessageStatusEvent.communication_id.in_(select(cc.id).where(cc.customer_id == erasure.customer_id)),
        words,
    )


async def _scrub_details(
    session: AsyncSession, model: Any, whose: Any, words: list[str], *, column: str = "detail"
) -> None:
    """Replaces their addresses and name wherever a free-text `column` of `model`'s rows (`whose`) has them."""
    if not words:
        return
    text = getattr(model, column)
    notes = await session.execute(select(model.id, text).where(whose, text.is_not(None)))
    for row_id, note in notes.all():
        scrubbed = _scrub(note, words)
        if scrubbed != note:
            await session.execute(
                update(model)
                .where(model.id == row_id)
                .values({column: scrubbed})
                .execution_options(synchronize_session=False)
            )


async def _erase_conversations(session: AsyncSession, erasure: Erasure) -> None:
    """Every turn and file of their conversations. The conversations keep their status and times: closing
    them here would count as resolutions in the live-chat figures; agents resolve them as usual."""
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
        .where(ChatMessage.session_id.in_(theirs), ChatMessage.body != ERASED)
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


async def _erase_profile_extras(session: AsyncSession, erasure: Erasure) -> None:
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


async def _close_consent(session: AsyncSession, erasure: Erasure, words: list[str], now: datetime) -> None:
    """The ledger keeps its history; every channel not yet closed by an erasure gets a withdrawal by it."""
    customer_id = erasure.customer_id
    await _scrub_details(session, ConsentRecord, ConsentRecord.customer_id == customer_id, words)
    closed = set(
        await session.scalars(
            select(CustomerConsent.channel).where(
                CustomerConsent.customer_id == customer_id,
                CustomerConsent.status == ConsentStatus.OPTED_OUT.value,
                CustomerConsent.source == ERASURE_SOURCE,
            )
        )
    )
    channels = [channel.value for channel in OUTBOUND_CHANNELS if channel.value not in closed]
    for channel in channels:
        record = ConsentRecord(
            customer_id=customer_id,
            channel=channel,
            status=ConsentStatus.OPTED_OUT.value,
            source=ERASURE_SOURCE,
            detail="Withdrawn: the customer's data was erased at their request.",
            recorded_at=now,
        )
        session.add(record)
        await session.flush()
        upsert = insert_for(session, table_of(CustomerConsent)).values(
            customer_id=customer_id,
            channel=channel,
            status=ConsentStatus.OPTED_OUT.value,
            source=ERASURE_SOURCE,
            record_id=record.id,
            changed_at=now,
        )
        await session.execute(
            upsert.on_conflict_do_update(
                index_elements=["customer_id", "channel"],
                set_={
                    name: upsert.excluded[name] for name in ("status", "source", "record_id", "changed_at")
                },
            )
        )
    erasure.counts["channels_closed"] = len(channels)


async def _blank_webhooks(database: Database, erasure: Erasure, addresses: list[str]) -> None:
    """Applied webhooks naming them keep their row (a provider's retry is still applied once) but lose their
    body. Found by a read that takes no lock, then blanked a batch at a time. Unapplied ones are counted and
    kept: a bare number in a raw body may be part of someone else's message."""
    if not addresses:
        return
    body = func.lower(WebhookInbox.body)
    mentions = or_(*(body.contains(address.lower(), autoescape=True) for address in addresses))
    async with database.read_sessions() as session:
        found = (
            await session.execute(
                select(WebhookInbox.id, WebhookInbox.status).where(mentions, WebhookInbox.body != ERASED)
            )
        ).all()
    applied = [row.id for row in found if row.status in ("applied", "ignored")]
    erasure.unapplied_webhooks_kept = len(found) - len(applied)
    for start in range(0, len(applied), WEBHOOK_BATCH):
        async with database.sessions() as session:
            await session.execute(
                update(WebhookInbox)
                .where(WebhookInbox.id.in_(applied[start : start + WEBHOOK_BATCH]))
                .values(body=ERASED)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
    erasure.counts["webhooks"] = len(applied)


async def last_erasure(database: Database, customer_id: int) -> dict[str, dict[str, Any]]:
    """The audit details of the customer's latest erasure, by action (`customer.erase`, and the
    `customer.erase.webhooks` and `customer.erase.copies` steps after it): what the page says it did."""
    target = f"customer:{customer_id}"
    async with database.read_sessions() as session:
        started = await session.scalar(
            select(func.max(AuditLog.id)).where(AuditLog.target == target, AuditLog.action == ERASE_ACTION)
        )
        if started is None:
            return {}
        rows = (
            await session.execute(
                select(AuditLog.action, AuditLog.detail, AuditLog.occurred_at)
                .where(
                    AuditLog.target == target,
                    AuditLog.id >= started,
                    AuditLog.action.in_((ERASE_ACTION, WEBHOOKS_ACTION, COPIES_ACTION)),
                )
                .order_by(AuditLog.id)
            )
        ).all()
    found: dict[str, dict[str, Any]] = {}
    for action, detail, occurred_at in rows:
        found.setdefault(action, {**(detail or {}), "_at": occurred_at})
    return found
