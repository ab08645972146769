"""`send`: a one-off message to one customer — preview first, then enqueue through the outbox on confirm."""

from __future__ import annotations

import secrets
import shlex
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.commands.context import CommandContext
from bot.commands.masking import mask_address
from bot.commands.parsing import (
    ParseError,
    RecipientRef,
    normalise,
    recipient_ref,
    split_variables,
    take_flag,
)
from bot.commands.templates import shape_fields
from bot.replies import Button, Field, Reply
from domain.dates_said import day_month_time_zone
from domain.messages.sending import (
    MessagePreview,
    MessageRequest,
    MessageRequestError,
    preview_message,
    send_message,
)
from domain.messages.words import channel_words
from domain.staff import StaffIdentity
from domain.vocabulary import OUTBOUND_CHANNELS, Channel, MessageCategory, MessageStatus
from storage.queries.customers import CustomerName, customers_by_reference

USAGE = 'send [CHANNEL] to RECIPIENT (template NAME [var=value ...] | text "...") [confirm]'
_CHANNELS = {c.value for c in OUTBOUND_CHANNELS}


@dataclass(frozen=True)
class SendMessage:
    recipient: RecipientRef
    channel: Channel | None = (
        None  # None: their preferred channel, then those they opted in on, then the rest
    )
    template: str | None = None
    text: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    confirm: bool = False
    ref: str | None = None  # ties a confirmation to its preview, so pressing Confirm twice sends once

    def command_text(
        self, *, recipient: str | None = None, confirm: bool = False, ref: str | None = None
    ) -> str:
        parts = [
            "send",
            self.channel.value if self.channel else "preferred",
            "to",
            recipient or self.recipient.text,
        ]
        if self.template:
            parts += [
                "template",
                self.template,
                *(f"{k}={shlex.quote(v)}" for k, v in self.variables.items()),
            ]
        else:
            parts += ["text", shlex.quote(self.text or "")]
        if confirm:
            parts += ["confirm", f"ref={ref or self.ref}"]
        return " ".join(parts)


def parse_send(words: list[str], rest: str, today: date) -> SendMessage:
    words = list(words)
    confirm = take_flag(words, "confirm", "--confirm")
    channel: Channel | None = None
    if words and normalise(words[0]) in _CHANNELS | {"preferred"}:
        first = normalise(words.pop(0))
        channel = None if first == "preferred" else Channel(first)
    if words and normalise(words[0]) == "to":
        words.pop(0)  # "send sms to #12 …"; "send #12 …" says the same
    lowered = [normalise(w) for w in words]
    cut = next((i for i, w in enumerate(lowered) if w in ("template", "text")), None)
    if not words or cut == 0:
        raise ParseError("Say who to send to: `send sms to #12 template welcome`.", USAGE)
    if cut is None:
        raise ParseError('Say what to send: `template NAME` or `text "..."`.', USAGE)
    recipient = recipient_ref(" ".join(words[:cut]))
    kind, body = lowered[cut], words[cut + 1 :]
    body, variables = split_variables(body)
    ref = variables.pop("ref", None)
    if kind == "template":
        if len(body) != 1:
            raise ParseError("Name one template, then its variables as name=value.", USAGE)
        return SendMessage(
            recipient, channel, template=body[0], variables=variables, confirm=confirm, ref=ref
        )
    text = " ".join(body).strip()
    if not text:
        raise ParseError('Give the text in quotes: text "Your results are ready".', USAGE)
    return SendMessage(recipient, channel, text=text, confirm=confirm, ref=ref)


async def find_customers(ctx: CommandContext, ref: RecipientRef) -> list[CustomerName]:
    """Only who matches (id and name): the send use-case reads the one customer's full record itself."""
    return await customers_by_reference(ctx.database, ref.kind, ref.value)


def message_request(command: SendMessage, customer: CustomerName, ref: str, business: str) -> MessageRequest:
    return MessageRequest(
        customer_id=customer.id,
        channel=command.channel,
        template=command.template,
        body=command.text,
        # Typed text has no subject line; an email gets a plain one naming the business.
        subject=f"A message from {business}" if command.text else None,
        variables=dict(command.variables),
        request_id=f"bot-{ref}",
    )


async def run_send(command: SendMessage, who: StaffIdentity, ctx: CommandContext) -> Reply:
    customers = await find_customers(ctx, command.recipient)
    if not customers:
        return Reply(f"No customer matches {command.recipient.text}.", kind="error")
    if len(customers) > 1:
        buttons = tuple(Button(c.label, command.command_text(recipient=f"#{c.id}")) for c in customers[:5])
        return Reply(
            f"{len(customers)} customers match “{command.recipient.value}”; pick one.",
            buttons=buttons,
            private=True,
        )
    customer = customers[0]
    ref = command.ref or secrets.token_hex(6)
    request = message_request(command, customer, ref, ctx.settings.business_name)
    policy = ctx.consent_policy()
    try:
        if not command.confirm:
            preview = await preview_message(ctx.uow.messaging(), request, ctx.now(), policy)
            return preview_reply(
                command, customer, preview, ref, ctx.now(), ctx.business_tz, ctx.settings.business_locale
            )
        result = await send_message(
            ctx.uow.messaging(), request, actor=who.email, via=who.via, now=ctx.now(), policy=policy
        )
    except MessageRequestError as error:
        why = str(error).removeprefix("Not sent: ").rstrip(".")
        hint = (
            f" `template show {command.template}` lists the values it needs, given as name=value."
            if command.template and "variable" in why
            else ""
        )
        return Reply(f"Cannot send: {why[:1].lower()}{why[1:]}.{hint}", kind="error")
    if result.status is MessageStatus.SUPPRESSED:
        return Reply(
            f"Not sending to #{customer.id} {customer.name}. {result.explanation}",
            title="Not sent",
            private=True,
        )
    if result.duplicate:
        return Reply(
            "This message was already queued by an earlier confirmation; nothing new was sent.", private=True
        )
    return Reply(
        f"Queued {a_message_on(result.preview.channel)} to #{customer.id} {customer.name}.",
        title="Message queued",
        private=True,
    )


def preview_reply(
    command: SendMessage,
    customer: CustomerName,
    preview: MessagePreview,
    ref: str,
    now: datetime,
    business_tz: str = "UTC",
    locale: str = "en",
) -> Reply:
    decision = preview.decision
    if decision is not None and decision.verdict == "suppress":
        return Reply(
            f"Not sending to #{customer.id} {customer.name}. {decision.explanation}",
            title="Not sent",
            private=True,
        )
    fields = [
        Field(
            "To",
            f"#{customer.id} {customer.name} ({mask_address(preview.to_address, preview.channel.value)})",
        ),
        Field("Channel", channel_words(preview.channel.value)),
    ]
    if preview.subject:
        fields.append(Field("Subject", preview.subject))
    category = MessageCategory.CONVERSATIONAL if command.text else MessageCategory.TRANSACTIONAL
    fields += shape_fields(
        preview.channel,
        preview.text,
        category,
        preview.uses_whatsapp_template,
        preview.to_address,
        locale=locale,
    )
    later = decision.send_at if decision is not None and decision.verdict == "defer" else None
    if later is not None and later > now + timedelta(minutes=1):
        local = later.astimezone(ZoneInfo(business_tz))
        fields.append(Field("Sends", f"{day_month_time_zone(local)}, after the customer's quiet hours"))
    buttons = (
        Button(
            "Confirm", command.command_text(recipient=f"#{customer.id}", confirm=True, ref=ref), "primary"
        ),
        Button("Cancel", "cancel", "danger"),
    )
    return Reply(
        preview.text,
        title="Send this message?",
        fields=tuple(fields),
        buttons=buttons,
        confirm=True,
        private=True,
    )


@dataclass(frozen=True)
class CancelPending:
    pass


def parse_cancel(words: list[str], rest: str, today: date) -> CancelPending:
    return CancelPending()


async def run_cancel(command: CancelPending, who: StaffIdentity, ctx: CommandContext) -> Reply:
    return Reply("Cancelled; nothing was sent or changed.", private=True)


def a_message_on(channel: Channel) -> str:
    """A message on `channel` as a sentence names it: "an email", "an SMS", "a WhatsApp message"."""
    if channel is Channel.EMAIL:
        return "an email"
    if channel is Channel.SMS:
        return "an SMS"
    return f"a {channel_words(channel.value)} message"
