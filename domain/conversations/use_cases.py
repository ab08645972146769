"""Receiving webhooks exactly once, handling what customers write, and replaying webhooks that failed."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from domain.consent.keywords import KeywordAction, interpret_keyword, keyword_reply
from domain.consent.ledger import ConsentChange
from domain.conversations.model import (
    KEYWORD_SOURCE,
    OUTBOX_REPLY_CHANNELS,
    REPLY_WINDOW,
    CustomerMessage,
    InboundResult,
    UnknownMessage,
    WebhookDelivery,
    WebhookOutcome,
)
from domain.conversations.ports import InboundUnitOfWork, WebhookReader
from domain.delivery.outbox import OutboxEntry
from domain.vocabulary import Channel, ConsentStatus, MessageCategory, MessageSource

log = logging.getLogger(__name__)

CONSENT_FOR: dict[KeywordAction, ConsentStatus] = {
    KeywordAction.OPT_OUT: ConsentStatus.OPTED_OUT,
    KeywordAction.OPT_IN: ConsentStatus.OPTED_IN,
}


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class InboundPolicy:
    """What inbound handling needs to know about the business."""

    business_name: str


async def receive_webhook(
    open_uow: Callable[[], InboundUnitOfWork],
    delivery: WebhookDelivery,
    reader: WebhookReader,
    policy: InboundPolicy,
    clock: Callable[[], datetime] = utc_now,
) -> WebhookOutcome:
    """Stores a verified webhook and applies it in one transaction, once per (provider, dedupe key).

    When applying fails, the transaction rolls back and the webhook is kept as failed in a fresh one,
    so the provider gets its 2xx (and stops retrying) and `replay_failed_webhooks` can try again.
    """
    now = clock()
    try:
        async with open_uow() as uow:
            inbox_id = await uow.inbox.add(delivery, now)
            if inbox_id is None:
                return WebhookOutcome(duplicate=True)
            outcome = await apply_webhook(uow, delivery, reader, policy, now)
            await uow.inbox.mark_applied(inbox_id, now)
            await uow.commit()
            return outcome
    except Exception as error:  # whatever went wrong, keep the webhook for replay rather than lose it
        reason = describe(error)
        log.exception(
            "webhook %s/%s %s failed: %s", delivery.provider, delivery.kind, delivery.dedupe_key, reason
        )
        async with open_uow() as uow:
            await uow.inbox.record_failure(delivery, reason, now)
            await uow.commit()
        return WebhookOutcome(failed=True, error=reason)


async def replay_failed_webhooks(
    open_uow: Callable[[], InboundUnitOfWork],
    reader: WebhookReader,
    policy: InboundPolicy,
    limit: int = 100,
    clock: Callable[[], datetime] = utc_now,
) -> tuple[int, int]:
    """Applies failed inbox rows again; returns (replayed, still failing)."""
    async with open_uow() as uow:
        pending = await uow.inbox.failed(limit)
    replayed = still_failing = 0
    for stored in pending:
        now = clock()
        try:
            async with open_uow() as uow:
                if not await uow.inbox.claim_for_replay(stored.id):
                    continue
                await apply_webhook(uow, stored.delivery, reader, policy, now)
                await uow.inbox.mark_applied(stored.id, now)
                await uow.commit()
            replayed += 1
        except Exception as error:  # keep it failed, with the latest reason
            still_failing += 1
            log.warning("replay of webhook %s still fails: %s", stored.id, describe(error))
            async with open_uow() as uow:
                await uow.inbox.record_failure(stored.delivery, describe(error), now)
                await uow.commit()
    return replayed, still_failing


async def apply_webhook(
    uow: InboundUnitOfWork,
    delivery: WebhookDelivery,
    reader: WebhookReader,
    policy: InboundPolicy,
    now: datetime,
) -> WebhookOutcome:
    """Applies what one webhook says inside the caller's transaction (no commit here)."""
    contents = reader.read(delivery)
    outcome = WebhookOutcome()
    if contents.sender_user_id is not None and await uow.conversations.is_staff_telegram_user(
        contents.sender_user_id
    ):
        outcome.staff_update = True
        return outcome
    for receipt in contents.receipts:
        result = await uow.outbox.apply_receipt(receipt)
        if result.message_id is None:
            raise UnknownMessage(
                f"{receipt.provider} receipt for unknown message {receipt.provider_message_id}"
            )
        outcome.receipts_applied += int(result.applied)
    for message in contents.messages:
        outcome.inbound.append(await handle_customer_message(uow, message, policy, now))
    return outcome


async def handle_customer_message(
    uow: InboundUnitOfWork, incoming: CustomerMessage, policy: InboundPolicy, now: datetime
) -> InboundResult:
    """Records what a customer wrote, acts on consent keywords, and notes it as a reply to us."""
    message = incoming.message
    store = uow.conversations
    customer_id: int | None = None
    if incoming.link_customer_id is not None:
        customer_id = await store.link_telegram_chat(incoming.link_customer_id, message.from_address)
    if customer_id is None:
        customer_id = await store.find_customer(message.channel, message.from_address)
    action = interpret_keyword(message.body)
    replied_to = None
    if customer_id is not None and action is None:
        replied_to = await store.latest_outbound(customer_id, message.channel, now - REPLY_WINDOW)
    communication_id = await store.record_inbound(message, customer_id, replied_to)
    if communication_id is None:
        return InboundResult(None, customer_id)  # already recorded: a provider retry in a new envelope
    if customer_id is not None and action is None:
        await store.append_to_chat(customer_id, message.channel, communication_id, message.body, now)
    elif customer_id is not None and action is not None:
        # A keyword is answered automatically and is no agent's work; an agent already talking with the
        # customer sees it in the conversation, with what it changed.
        note = KEYWORD_NOTES[action].format(channel=CHANNEL_NAMES.get(message.channel, message.channel.value))
        await store.note_in_open_chat(customer_id, message.channel, communication_id, message.body, note, now)
    if replied_to is not None:
        await store.mark_replied(replied_to, now)
    if action is None:
        return InboundResult(communication_id, customer_id)
    status = CONSENT_FOR.get(action)
    if status is not None and customer_id is not None:
        await uow.consent.record(
            ConsentChange(
                customer_id=customer_id,
                channel=message.channel,
                status=status,
                source=KEYWORD_SOURCE.get(message.channel, "keyword"),
                detail=keyword_word(message.body),
                at=now,
            )
        )
    reply = keyword_reply(action, policy.business_name, message.channel)
    if message.channel in OUTBOX_REPLY_CHANNELS:
        await store.enqueue(
            OutboxEntry(
                customer_id=customer_id,
                channel=message.channel,
                source=MessageSource.SYSTEM,
                source_ref=f"keyword:{message.provider_message_id}"[:64],
                category=MessageCategory.TRANSACTIONAL,
                to_address=message.from_address,
                body=reply,
                send_at=now,
                payload={"explanation": f"confirms the {action.value} keyword the customer sent"},
            ),
            now,
        )
    return InboundResult(communication_id, customer_id, action, reply)


#: What a keyword did, as a note in the customer's open conversation.
KEYWORD_NOTES: dict[KeywordAction, str] = {
    KeywordAction.OPT_OUT: "The customer opted out of {channel} with a keyword; nothing more goes to them on "
    "{channel} until they opt in again. The confirmation was sent automatically.",
    KeywordAction.OPT_IN: "The customer opted in to {channel} again with a keyword; the confirmation was sent "
    "automatically.",
    KeywordAction.HELP: "The customer asked for help with a keyword; the standard help reply was sent automatically.",
}
CHANNEL_NAMES = {
    Channel.SMS: "SMS",
    Channel.WHATSAPP: "WhatsApp",
    Channel.TELEGRAM: "Telegram",
    Channel.EMAIL: "email",
}


def keyword_word(text: str) -> str:
    """The keyword as the customer sent it, normalised: "STOP", "/start"."""
    words = unicodedata.normalize("NFKC", text).split()
    if not words:
        return ""
    word = words[0]
    return (word.split("@", 1)[0].casefold() if word.startswith("/") else word.upper().rstrip(".!?"))[:255]


def describe(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{error.__class__.__name__}: {text}"[:500]
