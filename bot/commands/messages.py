"""`send`: a one-off message to one customer — preview first, then enqueue through the outbox on confirm."""

from __future__ import annotations

import dataclasses
import secrets
import shlex
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from bot.commands.context import CommandContext
from bot.commands.identity import StaffIdentity
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
from domain.audit import AuditEntry
from domain.campaigns.model import Recipient, StoredTemplate
from domain.campaigns.rules import OutboxPlanner
from domain.consent.model import ConsentPolicy
from domain.delivery.outbox import OutboxEntry
from domain.templates.model import MessageTemplate as TemplateVariant
from domain.vocabulary import OUTBOUND_CHANNELS, Channel, MessageCategory, MessageSource, MessageStatus
from storage.campaigns import SqlTemplateCatalogue, insert_outbox_entries
from storage.models import Customer, CustomerCommunication
from storage.recipients import SqlRecipientDirectory

USAGE = 'send [CHANNEL] to RECIPIENT (template NAME [var=value ...] | text "...") [confirm]'
_CHANNELS = {c.value for c in OUTBOUND_CHANNELS}


@dataclass(frozen=True)
class SendMessage:
    recipient: RecipientRef
    channel: Channel | None = None  # None: the customer's preferred channel, then the others
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
    if not words or normalise(words[0]) != "to":
        raise ParseError("Say who to send to: `send sms to #12 template welcome`.", USAGE)
    words.pop(0)
    lowered = [normalise(w) for w in words]
    cut = next((i for i, w in enumerate(lowered) if w in ("template", "text")), None)
    if cut is None or cut == 0:
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


async def find_customers(ctx: CommandContext, ref: RecipientRef) -> list[Customer]:
    column = {"id": Customer.id, "phone": Customer.phone_e164, "email": func.lower(Customer.email)}
    if ref.kind == "name":
        condition = func.lower(Customer.name).contains(ref.value.lower())
    else:
        condition = column[ref.kind] == (int(ref.value) if ref.kind == "id" else ref.value)
    async with ctx.database.read_sessions() as session:
        return list(await session.scalars(select(Customer).where(condition).order_by(Customer.id).limit(6)))


def channel_order(command: SendMessage, recipient: Recipient) -> tuple[Channel, ...]:
    if command.channel is not None:
        return (command.channel,)
    preferred = recipient.preferred_channel
    first = (preferred,) if preferred in OUTBOUND_CHANNELS else ()
    return (*first, *(c for c in OUTBOUND_CHANNELS if c is not preferred))


def free_text_variants(text: str, order: tuple[Channel, ...], locale: str) -> list[StoredTemplate]:
    """A typed message as one-off template variants; raw blocks keep braces in it from being read as Jinja."""
    if "endraw" in text:
        raise ParseError("The text cannot contain the word 'endraw'.", USAGE)
    body = "{% raw %}" + text + "{% endraw %}"
    return [
        StoredTemplate(0, TemplateVariant("manual", channel, locale, body, MessageCategory.CONVERSATIONAL))
        for channel in order
    ]


async def plan_message(
    ctx: CommandContext, command: SendMessage, customer: Customer, ref: str
) -> tuple[OutboxEntry, str]:
    """The outbox entry this send would make (planned or suppressed with why) and its template's category."""
    now = ctx.now()
    async with ctx.unit_of_work(read_only=True) as uow:
        directory = SqlRecipientDirectory(uow.session)
        recipients = await directory.by_ids([customer.id], channels=tuple(OUTBOUND_CHANNELS), now=now)
        recipient = recipients[0]
        order = channel_order(command, recipient)
        if command.template:
            templates = await SqlTemplateCatalogue(uow.session).variants(command.template)
            if not templates:
                raise ParseError(f"There is no active template named “{command.template}”.", "template list")
            category = templates[0].template.category
        else:
            templates = free_text_variants(command.text or "", order, recipient.locale)
            category = MessageCategory.CONVERSATIONAL
    planner = OutboxPlanner(
        source=MessageSource.MANUAL,
        source_ref=ref,
        category=category,
        templates=templates,
        variables=command.variables,
        policy=ConsentPolicy(default_timezone=ctx.business_tz),
    )
    entry = planner.plan(recipient, order, now)
    if not command.template:
        entry = dataclasses.replace(entry, template_id=None)  # a typed text has no stored template
    return entry, category.value


async def run_send(command: SendMessage, who: StaffIdentity, ctx: CommandContext) -> Reply:
    customers = await find_customers(ctx, command.recipient)
    if not customers:
        return Reply(f"No customer matches {command.recipient.text}.", kind="error")
    if len(customers) > 1:
        buttons = tuple(
            Button(f"#{c.id} {c.name}", command.command_text(recipient=f"#{c.id}")) for c in customers[:5]
        )
        return Reply(
            f"{len(customers)} customers match “{command.recipient.value}”; pick one.",
            buttons=buttons,
            private=True,
        )
    customer = customers[0]
    ref = command.ref or secrets.token_hex(6)
    entry, category = await plan_message(ctx, command, customer, ref)
    if entry.status is MessageStatus.SUPPRESSED:
        explanation = str(entry.payload.get("explanation") or entry.status_reason)
        return Reply(
            f"Not sending to #{customer.id} {customer.name}. {explanation}", title="Not sent", private=True
        )
    if not command.confirm:
        later = entry.send_at if entry.send_at and entry.send_at > ctx.now() + timedelta(minutes=1) else None
        return preview_reply(command, customer, entry, category, ref, later)
    return await enqueue(command, who, ctx, customer, entry)


def preview_reply(
    command: SendMessage,
    customer: Customer,
    entry: OutboxEntry,
    category: str,
    ref: str,
    deferred_until: datetime | None,
) -> Reply:
    fields = [
        Field("To", f"#{customer.id} {customer.name} ({mask_address(entry.to_address)})"),
        Field("Channel", entry.channel.value),
    ]
    if entry.subject:
        fields.append(Field("Subject", entry.subject))
    fields += shape_fields(
        entry.channel, entry.body, MessageCategory(category), "whatsapp_template" in entry.payload
    )
    if deferred_until is not None:
        fields.append(Field("Sends", f"{deferred_until:%d %b %H:%M} UTC, after the customer's quiet hours"))
    buttons = (
        Button(
            "Confirm", command.command_text(recipient=f"#{customer.id}", confirm=True, ref=ref), "primary"
        ),
        Button("Cancel", "cancel", "danger"),
    )
    return Reply(
        entry.body,
        title="Send this message?",
        fields=tuple(fields),
        buttons=buttons,
        confirm=True,
        private=True,
    )


async def enqueue(
    command: SendMessage, who: StaffIdentity, ctx: CommandContext, customer: Customer, entry: OutboxEntry
) -> Reply:
    async with ctx.unit_of_work() as uow:
        # Checked first as well as by the insert's ON CONFLICT, whose RETURNING does not tell on every engine.
        existing = await uow.session.scalar(
            select(CustomerCommunication.id).where(
                CustomerCommunication.idempotency_key == entry.idempotency_key
            )
        )
        inserted = await insert_outbox_entries(uow.session, [entry], ctx.now()) if existing is None else None
        if not inserted:
            return Reply(
                "This message was already queued by an earlier confirmation; nothing new was sent.",
                private=True,
            )
        uow.audit.record(
            AuditEntry(
                actor=who.email,
                via=who.via,
                action="message.send",
                target=f"customer:{customer.id}",
                detail={
                    "channel": entry.channel.value,
                    "template": command.template,
                    "idempotency_key": entry.idempotency_key,
                },
            )
        )
        await uow.commit()
    return Reply(
        f"Queued a {entry.channel.value} message to #{customer.id} {customer.name}.",
        title="Message queued",
        private=True,
    )


@dataclass(frozen=True)
class CancelPending:
    pass


def parse_cancel(words: list[str], rest: str, today: date) -> CancelPending:
    return CancelPending()


async def run_cancel(command: CancelPending, who: StaffIdentity, ctx: CommandContext) -> Reply:
    return Reply("Cancelled; nothing was sent or changed.", private=True)
