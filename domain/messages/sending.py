"""Sending one message to one customer: preview it, decide whether it may go, and put it in the outbox.

The bots' `send` command and the JSON API both come here, and a message goes through exactly the
same rules as a campaign message (the campaign planner renders and decides for both). Free text
typed by staff is sent as it is: it is never rendered as a template, so it cannot become template code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from domain.audit import AuditEntry, AuditTrail
from domain.consent.model import ConsentPolicy, SendDecision, SendRequest
from domain.consent.rules import decide
from domain.delivery.outbox import OutboxEntry
from domain.delivery.ports import Choices, OutboundFile
from domain.messages.model import Recipient, StoredTemplate
from domain.messages.pricing import DEFAULT_PRICE_BOOK, PriceBook, estimate_cost
from domain.messages.segments import MAX_SMS_CHARACTERS, sms_shape
from domain.messages.send_decision import OutboxPlanner, choose_channel
from domain.templates.model import MessageTemplate, TemplateError
from domain.templates.rendering import render_template
from domain.templates.selection import said_in, select_template
from domain.templates.trial import run_trial
from domain.transaction import Transaction
from domain.vocabulary import (
    OUTBOUND_CHANNELS,
    REPLY_ONLY_CHANNELS,
    Channel,
    MessageCategory,
    MessageSource,
    MessageStatus,
)

#: When no channel is named, try the customer's preferred channel, then those they opted in on, then these.
FALLBACK_ORDER: tuple[Channel, ...] = (Channel.WHATSAPP, Channel.SMS, Channel.EMAIL, Channel.TELEGRAM)
MAX_FREE_TEXT = 4096


class MessageRequestError(ValueError):
    """A request that cannot be sent or previewed as asked; the message says what to fix."""


@dataclass(frozen=True)
class MessageRequest:
    customer_id: int | None
    channel: Channel | None = None
    template: str | None = None
    body: str | None = None
    subject: str | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    locale: str | None = None
    #: None: the template's own category, or conversational for typed text.
    category: MessageCategory | None = None
    request_id: str = ""
    #: A file sent with typed words (a live-chat reply's image or PDF), by its signed public link.
    attachment: OutboundFile | None = None
    #: A pick-one question the channel may show as a list to tap (a CSAT score on WhatsApp).
    choices: Choices | None = None
    #: The customer's email this answers (its Message-ID): an email reply threads under it.
    in_reply_to: str | None = None

    def check(self) -> None:
        if (self.template is None) == (self.body is None):
            raise MessageRequestError("give either a template name or a body, not both and not neither")
        if self.body is not None and not self.body.strip():
            raise MessageRequestError("the body is empty")
        if self.body is not None and len(self.body) > MAX_FREE_TEXT:
            raise MessageRequestError(f"the body is {len(self.body)} characters; at most {MAX_FREE_TEXT}")
        if self.channel is not None and self.channel not in OUTBOUND_CHANNELS and not self.answers_a_chat:
            allowed = ", ".join(c.value for c in OUTBOUND_CHANNELS)
            raise MessageRequestError(
                f"messages cannot be pushed on {self.channel.value}; use one of {allowed}"
            )

    @property
    def answers_a_chat(self) -> bool:
        """A conversational reply on a channel that only carries replies (the website chat)."""
        return self.channel in REPLY_ONLY_CHANNELS and self.category is MessageCategory.CONVERSATIONAL


@dataclass(frozen=True)
class MessagePreview:
    channel: Channel
    text: str
    subject: str | None
    html: str | None
    encoding: str | None
    segments: int | None
    characters: int
    estimated_cost_micros: int
    currency: str
    template: str | None
    decision: SendDecision | None = None
    to_address: str = ""
    uses_whatsapp_template: bool = False


@dataclass(frozen=True)
class SendResult:
    message_id: int | None
    status: MessageStatus
    reason: str | None
    explanation: str
    preview: MessagePreview
    duplicate: bool = False


class MessageLookup(Protocol):
    async def by_idempotency_key(self, key: str) -> tuple[int, str, str | None] | None: ...


class SendingUnitOfWork(Transaction, Protocol):
    @property
    def recipients(self) -> Any: ...

    @property
    def templates(self) -> Any: ...

    @property
    def outbox_writer(self) -> Any: ...

    @property
    def messages(self) -> MessageLookup: ...

    @property
    def audit(self) -> AuditTrail: ...


async def preview_message(
    uow: SendingUnitOfWork,
    request: MessageRequest,
    now: datetime,
    policy: ConsentPolicy,
    price_book: PriceBook = DEFAULT_PRICE_BOOK,
) -> MessagePreview:
    """What the message would say, cost and whether it may go now (when a customer is named)."""
    request.check()
    async with uow:
        recipient = await _recipient(uow, request, now)
        variants = await _variants(uow, request)
    return await _trial_preview(request, recipient, variants, now, policy, price_book)


async def preview_in_transaction(
    uow: SendingUnitOfWork,
    request: MessageRequest,
    now: datetime,
    policy: ConsentPolicy,
    price_book: PriceBook = DEFAULT_PRICE_BOOK,
) -> MessagePreview:
    """`preview_message` inside a transaction the caller has opened (a use-case that previews, then sends)."""
    request.check()
    recipient = await _recipient(uow, request, now)
    variants = await _variants(uow, request)
    return await _trial_preview(request, recipient, variants, now, policy, price_book)


async def _trial_preview(
    request: MessageRequest,
    recipient: Recipient | None,
    variants: list[StoredTemplate],
    now: datetime,
    policy: ConsentPolicy,
    price_book: PriceBook,
) -> MessagePreview:
    try:
        # The variables were just typed, so the render is a trial: off the event loop, within a time limit.
        entry, decision = await run_trial(
            lambda: _compose(request, recipient, variants, now, policy, price_book)
        )
    except TemplateError as error:
        raise MessageRequestError(str(error)) from None
    return _preview(entry, request, decision, price_book)


async def send_message(
    uow: SendingUnitOfWork,
    request: MessageRequest,
    *,
    actor: str,
    via: str,
    now: datetime,
    policy: ConsentPolicy,
    price_book: PriceBook = DEFAULT_PRICE_BOOK,
) -> SendResult:
    """Queues the message (or records why it may not go); a repeated request id queues nothing new."""
    _check_sendable(request)
    async with uow:
        result = await queue_message(
            uow, request, actor=actor, via=via, now=now, policy=policy, price_book=price_book
        )
        if not result.duplicate:
            await uow.commit()
    return result


def _check_sendable(request: MessageRequest) -> None:
    request.check()
    if request.customer_id is None:
        raise MessageRequestError("name the customer to send to (customer_id)")
    if not request.request_id:
        raise MessageRequestError("a request id is needed so that a retried send is not sent twice")


async def queue_message(
    uow: SendingUnitOfWork,
    request: MessageRequest,
    *,
    actor: str,
    via: str,
    now: datetime,
    policy: ConsentPolicy,
    price_book: PriceBook = DEFAULT_PRICE_BOOK,
) -> SendResult:
    """`send_message` inside a transaction the caller has opened and commits (with what else it writes).

    A repeated request id (`duplicate`) queues and audits nothing.
    """
    _check_sendable(request)
    recipient = await _recipient(uow, request, now)
    assert recipient is not None
    variants = await _variants(uow, request)
    entry, decision = _compose(request, recipient, variants, now, policy, price_book)
    preview = _preview(entry, request, decision, price_book)
    known = await uow.messages.by_idempotency_key(entry.idempotency_key)
    inserted = 0 if known is not None else sum((await uow.outbox_writer.add_many([entry], now)).values())
    if known is None and not inserted:
        # A concurrent request with the same id stored it first (on PostgreSQL, between our look-up and
        # our insert): this one is the repeat, and neither queues nor audits anything.
        known = await uow.messages.by_idempotency_key(entry.idempotency_key)
        assert known is not None
    if known is None:
        stored = await uow.messages.by_idempotency_key(entry.idempotency_key)
        assert stored is not None
        action = "message.send" if entry.status == MessageStatus.PLANNED else "message.suppressed"
        uow.audit.record(
            AuditEntry(
                actor=actor,
                via=via,
                action=action,
                target=f"customer:{recipient.customer_id}",
                detail={
                    "message_id": stored[0],
                    "channel": entry.channel.value,
                    "template": request.template,
                    "reason": entry.status_reason,
                },
            )
        )
    else:
        stored = known
    message_id, status, reason = stored
    return SendResult(
        message_id, MessageStatus(status), reason, decision.explanation, preview, known is not None
    )


async def _recipient(uow: SendingUnitOfWork, request: MessageRequest, now: datetime) -> Recipient | None:
    if request.customer_id is None:
        return None
    channels = (*OUTBOUND_CHANNELS, *REPLY_ONLY_CHANNELS) if request.answers_a_chat else OUTBOUND_CHANNELS
    found: Sequence[Recipient] = await uow.recipients.by_ids(
        [request.customer_id], channels=channels, now=now
    )
    if not found:
        raise MessageRequestError(f"there is no customer {request.customer_id}")
    return found[0]


async def _variants(uow: SendingUnitOfWork, request: MessageRequest) -> list[StoredTemplate]:
    if request.template is None:
        return []
    variants: list[StoredTemplate] = await uow.templates.variants(request.template)
    if not variants:
        raise MessageRequestError(f"there is no active template named {request.template!r}")
    if request.channel is not None and not any(v.template.channel == request.channel for v in variants):
        have = ", ".join(sorted({v.template.channel.value for v in variants}))
        raise MessageRequestError(
            f"template {request.template!r} has no {request.channel.value} variant (it has: {have})"
        )
    return variants


def _order(request: MessageRequest, recipient: Recipient | None) -> tuple[Channel, ...]:
    if request.channel is not None:
        return (request.channel,)
    return recipient.reach_order(FALLBACK_ORDER) if recipient is not None else FALLBACK_ORDER


def _compose(
    request: MessageRequest,
    recipient: Recipient | None,
    variants: list[StoredTemplate],
    now: datetime,
    policy: ConsentPolicy,
    price_book: PriceBook,
) -> tuple[OutboxEntry, SendDecision]:
    order = _order(request, recipient)
    if request.template is not None:
        return _compose_from_template(request, recipient, variants, order, now, policy, price_book)
    return _compose_free_text(request, recipient, order, now, policy, price_book)


def _compose_from_template(
    request: MessageRequest,
    recipient: Recipient | None,
    variants: list[StoredTemplate],
    order: tuple[Channel, ...],
    now: datetime,
    policy: ConsentPolicy,
    price_book: PriceBook,
) -> tuple[OutboxEntry, SendDecision]:
    planner = OutboxPlanner(
        source=MessageSource.MANUAL,
        source_ref=request.request_id or "preview",
        category=request.category or variants[0].template.category,
        templates=variants,
        variables=request.variables,
        policy=policy,
        price_book=price_book,
    )
    if recipient is None:
        channel = order[0] if request.channel else variants[0].template.channel
        chosen = select_template(
            [v.template for v in variants], variants[0].template.name, channel, request.locale or "en"
        )
        assert chosen is not None
        return _render_without_customer(request, chosen, price_book, policy), SendDecision(
            "send", "ok", "Preview only."
        )
    entry = planner.plan(recipient, order, now)
    if entry.status == MessageStatus.SUPPRESSED:
        if entry.status_reason == "template_error":
            raise MessageRequestError(
                str(entry.payload.get("explanation", "the template could not be rendered"))
            )
        decision = SendDecision(
            "suppress", entry.status_reason or "", str(entry.payload.get("explanation", ""))
        )
        return entry, decision
    decision = planner.decide(recipient, entry.channel, now)
    return entry, decision


def _render_without_customer(
    request: MessageRequest, template: MessageTemplate, price_book: PriceBook, policy: ConsentPolicy
) -> OutboxEntry:
    links = policy.unsubscribe_links
    system = {"unsubscribe_url": links.example()} if links is not None else {}
    try:
        rendered = render_template(template, {**said_in(request.variables, template.locale), **system})
    except TemplateError as error:
        raise MessageRequestError(str(error)) from None
    shape = sms_shape(rendered.body) if template.channel == Channel.SMS else None
    return OutboxEntry(
        customer_id=None,
        channel=template.channel,
        source=MessageSource.MANUAL,
        source_ref="preview",
        category=request.category or template.category,
        to_address="",
        body=rendered.body,
        subject=rendered.subject,
        segments=shape.segments if shape else None,
        encoding=shape.encoding if shape else None,
        cost_micros=estimate_cost(
            template.channel,
            rendered.body,
            price_book,
            category=template.category,
            is_template=template.whatsapp_name is not None,
        ),
        currency=price_book.currency,
        payload={"html_body": rendered.html_body} if rendered.html_body else {},
    )


def _compose_free_text(
    request: MessageRequest,
    recipient: Recipient | None,
    order: tuple[Channel, ...],
    now: datetime,
    policy: ConsentPolicy,
    price_book: PriceBook,
) -> tuple[OutboxEntry, SendDecision]:
    body = request.body or ""
    category = request.category or MessageCategory.CONVERSATIONAL

    def decide_on(candidate: Recipient, channel: Channel) -> SendDecision:
        return decide(SendRequest(channel=channel, category=category), candidate.facts(channel), policy, now)

    if recipient is None:
        channel = order[0]
        decision = SendDecision("send", "ok", "Preview only.")
    else:
        choice = choose_channel(recipient, order, decide_on)
        channel = choice.channel or choice.tried or order[0]
        decision = choice.decision
    if channel == Channel.SMS and len(body) > MAX_SMS_CHARACTERS:
        raise MessageRequestError(
            f"an SMS can be at most {MAX_SMS_CHARACTERS} characters; this is {len(body)}"
        )
    if channel == Channel.EMAIL and not request.subject:
        raise MessageRequestError("an email needs a subject")
    shape = sms_shape(body) if channel == Channel.SMS else None
    suppressed = decision.verdict == "suppress"
    entry = OutboxEntry(
        customer_id=recipient.customer_id if recipient else None,
        channel=channel,
        source=MessageSource.MANUAL,
        source_ref=request.request_id or "preview",
        category=category,
        to_address=(recipient.addresses.get(channel, "") if recipient else ""),
        body="" if suppressed else body,
        subject=request.subject if channel == Channel.EMAIL else None,
        status=MessageStatus.SUPPRESSED if suppressed else MessageStatus.PLANNED,
        status_reason=decision.reason if suppressed else None,
        send_at=decision.send_at if decision.verdict == "defer" else now,
        segments=shape.segments if shape else None,
        encoding=shape.encoding if shape else None,
        cost_micros=estimate_cost(
            channel,
            body,
            price_book,
            category=category,
            is_template=False,
            to_address=recipient.addresses.get(channel) if recipient else None,
        ),
        currency=price_book.currency,
        payload=({"explanation": decision.explanation} if suppressed else _extras(request)),
    )
    return entry, decision


def _extras(request: MessageRequest) -> dict[str, object]:
    """What a typed message carries beside its words: a file, a pick-one list."""
    extras: dict[str, object] = {}
    if request.attachment is not None:
        extras["attachment"] = request.attachment.as_payload()
    if request.choices is not None:
        extras["choices"] = request.choices.as_payload()
    if request.in_reply_to:
        extras["in_reply_to"] = request.in_reply_to
    return extras


def _preview(
    entry: OutboxEntry, request: MessageRequest, decision: SendDecision | None, price_book: PriceBook
) -> MessagePreview:
    text = entry.body or str(entry.payload.get("preview_text") or request.body or "")
    html = entry.payload.get("html_body")
    return MessagePreview(
        channel=entry.channel,
        text=text,
        subject=entry.subject,
        html=html if isinstance(html, str) else None,
        encoding=entry.encoding,
        segments=entry.segments,
        characters=len(text),
        estimated_cost_micros=entry.cost_micros or 0,
        currency=entry.currency or price_book.currency,
        template=request.template,
        decision=decision,
        to_address=entry.to_address,
        uses_whatsapp_template="whatsapp_template" in entry.payload,
    )
