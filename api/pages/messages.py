"""Communication pages for single messages: the message log with its detail, templates with live preview and
the automated notification rules that send them."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from litestar import Request, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template
from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import aliased

from api.pages.common import Formats, StaffPages, container_of, page, utc_now
from domain.messages.sending import MessagePreview, MessageRequest, MessageRequestError, preview_message
from domain.notifications.rules import describe_channel_order, describe_offset
from domain.notifications.use_cases import list_notification_rules
from domain.vocabulary import OUTBOUND_CHANNELS, Channel, Direction, MessageStatus
from storage.database import Database
from storage.models import BulkMessaging, Customer, CustomerCommunication, MessageStatusEvent, MessageTemplate

PAGE_SIZE = 50
CC = CustomerCommunication


#: At most this many customers are listed (and their messages shown) when a customer search matches several.
CUSTOMER_MATCHES = 20


@dataclass(frozen=True)
class MessageFilters:
    channel: str | None
    status: str | None
    direction: str | None
    customer_id: int | None
    customer: str
    before: int | None

    @classmethod
    def parse(cls, params: dict[str, str]) -> MessageFilters:
        """Unknown or malformed filter values are dropped rather than failing the page."""

        def one_of(name: str, allowed: list[str]) -> str | None:
            value = params.get(name) or None
            return value if value in allowed else None

        def number(name: str) -> int | None:
            value = (params.get(name) or "").strip().lstrip("#")
            return int(value) if value.isdigit() and len(value) < 19 else None

        return cls(
            one_of("channel", [c.value for c in Channel]),
            one_of("status", [s.value for s in MessageStatus]),
            one_of("direction", [d.value for d in Direction]),
            number("customer_id"),
            " ".join((params.get("customer") or "").split())[:100],
            number("before"),
        )

    def query_for(self, before: int) -> str:
        kept = {
            "channel": self.channel,
            "status": self.status,
            "direction": self.direction,
            "customer_id": self.customer_id,
            "customer": self.customer or None,
        }
        return urlencode({**{k: v for k, v in kept.items() if v is not None}, "before": before})


@dataclass(frozen=True)
class CustomerMatch:
    id: int
    name: str


@dataclass(frozen=True)
class CustomerSearch:
    """Who the customer filter found: none, one, or several (at most CUSTOMER_MATCHES, `more` if there are others)."""

    text: str
    matches: tuple[CustomerMatch, ...]
    more: bool

    @property
    def ids(self) -> list[int]:
        return [m.id for m in self.matches]


def customer_condition(text: str) -> ColumnElement[bool]:
    """Name, email or phone containing `text` (case-insensitive), or `#123` for a customer number.

    The text only ever travels as a bound parameter; LIKE wildcards in it are escaped.
    """
    compact = text.replace(" ", "")
    if re.fullmatch(r"#\d{1,18}", compact):
        return Customer.id == int(compact[1:])
    conditions = [
        Customer.name.icontains(text, autoescape=True),
        Customer.email.icontains(text, autoescape=True),
    ]
    if compact.isdigit() and len(compact) < 19:
        conditions.append(Customer.id == int(compact))
    digits = re.sub(r"[\s().\-/]", "", text)
    # Numbers are stored as E.164 (+4915...); a national 0151... is matched without its leading zeros.
    number = digits.lstrip("+").lstrip("0")
    if re.fullmatch(r"\+?\d+", digits) and len(number) >= 3:
        conditions.append(Customer.phone_e164.contains(number, autoescape=True))
    return or_(*conditions)


async def find_customers(database: Database, text: str) -> CustomerSearch:
    async with database.read_sessions() as session:
        rows = (
            await session.execute(
                select(Customer.id, Customer.name)
                .where(customer_condition(text))
                .order_by(Customer.name, Customer.id)
                .limit(CUSTOMER_MATCHES + 1)
            )
        ).all()
    matches = tuple(CustomerMatch(id, name) for id, name in rows[:CUSTOMER_MATCHES])
    return CustomerSearch(text, matches, len(rows) > CUSTOMER_MATCHES)


@dataclass(frozen=True)
class MessageRow:
    id: int
    created: str
    customer_id: int | None
    customer: str
    channel: str
    direction: str
    status: str
    reason: str
    text: str


def _snippet(text: str | None, length: int = 90) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= length else text[: length - 1] + "…"


async def latest_messages(
    database: Database, filters: MessageFilters, formats: Formats, customers: list[int] | None = None
) -> tuple[list[MessageRow], int | None]:
    """Newest first by time (ties by id), one page; the second value is the `before` id of the next page.

    `customers` narrows to those customers (from a search). The next page starts after the last
    message shown, at its time and id, so paging stays exact however many messages share a moment.
    """
    query = (
        select(CC, Customer.name)
        .outerjoin(Customer, Customer.id == CC.customer_id)
        .order_by(CC.created_at.desc(), CC.id.desc())
        .limit(PAGE_SIZE + 1)
    )
    for column, value in (
        (CC.channel, filters.channel),
        (CC.status, filters.status),
        (CC.direction, filters.direction),
        (CC.customer_id, filters.customer_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if customers is not None:
        query = query.where(CC.customer_id.in_(customers))
    if filters.before is not None:
        after = aliased(CC)
        moment = select(after.created_at).where(after.id == filters.before).scalar_subquery()
        query = query.where(
            or_(CC.created_at < moment, and_(CC.created_at == moment, CC.id < filters.before))
        )
    async with database.read_sessions() as session:
        rows = (await session.execute(query)).all()
    shown = [
        MessageRow(
            m.id,
            formats.moment(m.created_at),
            m.customer_id,
            name or "—",
            m.channel,
            m.direction,
            m.status,
            (m.status_reason or m.error_code or "").replace("_", " "),
            _snippet(m.subject or m.body),
        )
        for m, name in rows[:PAGE_SIZE]
    ]
    return shown, (shown[-1].id if len(rows) > PAGE_SIZE else None)


def why(message: CustomerCommunication) -> str:
    """The one sentence that says why a message is where it is."""
    explanation = (message.payload or {}).get("explanation")
    if isinstance(explanation, str) and explanation:
        return explanation
    if message.status_reason:
        reason = message.status_reason.replace("_", " ")
        code = f" (error {message.error_code})" if message.error_code else ""
        return f"Status {message.status}: {reason}{code}."
    if message.error_code:
        return f"The provider reported error {message.error_code}."
    return f"The message is {message.status}; nothing unusual was recorded."


async def message_detail(database: Database, message_id: int, formats: Formats) -> dict[str, Any]:
    async with database.read_sessions() as session:
        message = await session.get(CC, message_id)
        if message is None:
            raise NotFoundException(f"There is no message {message_id}.")
        customer = await session.get(Customer, message.customer_id) if message.customer_id else None
        campaign = await session.get(BulkMessaging, message.campaign_id) if message.campaign_id else None
        template = await session.get(MessageTemplate, message.template_id) if message.template_id else None
        events = list(
            await session.scalars(
                select(MessageStatusEvent)
                .where(MessageStatusEvent.communication_id == message_id)
                .order_by(MessageStatusEvent.occurred_at, MessageStatusEvent.id)
            )
        )
    facts = [
        ("Customer", f"#{customer.id} {customer.name}" if customer else "—"),
        ("Channel", f"{message.channel} via {message.provider}"),
        ("Direction", message.direction),
        ("Source", message.source + (f" ({campaign.slug})" if campaign else "")),
        ("Category", message.category),
        ("Template", f"{template.name} ({template.locale})" if template else "—"),
        ("Status", message.status),
        ("Created", formats.moment(message.created_at)),
        ("Sent", formats.moment(message.sent_at)),
        ("Delivered", formats.moment(message.delivered_at)),
        ("Read", formats.moment(message.read_at)),
        ("Attempts", str(message.attempts)),
    ]
    if message.segments:
        facts.append(("SMS", f"{message.segments} segment(s), {message.encoding}"))
    if message.cost_micros is not None:
        facts.append(("Cost", formats.money_micros(message.cost_micros, message.currency)))
    history = [
        {
            "when": formats.moment(e.occurred_at),
            "status": e.status,
            "source": e.source,
            "error_code": e.error_code or "",
            "detail": e.detail or "",
        }
        for e in events
    ]
    return {
        "message": message,
        "customer_id": customer.id if customer else None,
        "facts": facts,
        "history": history,
        "why": why(message),
    }


@dataclass(frozen=True)
class PreviewForm:
    template: str
    channel: str
    locale: str
    variables: str

    def variable_values(self) -> dict[str, str]:
        values = {}
        for number, line in enumerate(self.variables.splitlines(), start=1):
            if not line.strip():
                continue
            key, equals, value = line.partition("=")
            if not equals or not key.strip():
                raise MessageRequestError(f"line {number} is not key=value: {line.strip()[:60]!r}")
            values[key.strip()] = value.strip()
        return values


async def template_variants(database: Database) -> dict[str, list[MessageTemplate]]:
    async with database.read_sessions() as session:
        rows = await session.scalars(
            select(MessageTemplate).order_by(
                MessageTemplate.name, MessageTemplate.channel, MessageTemplate.locale
            )
        )
        grouped: dict[str, list[MessageTemplate]] = defaultdict(list)
        for row in rows:
            grouped[row.name].append(row)
    return dict(grouped)


@dataclass(frozen=True)
class RuleRow:
    """One automated notification rule as the templates page shows it, in the words `rule list` uses."""

    name: str
    event: str
    template: str
    channels: str
    offset: str
    enabled: bool


async def notification_rule_rows(request: Request[Any, Any, Any]) -> list[RuleRow]:
    rules = await list_notification_rules(container_of(request).notification_uow(read_only=True))
    return [
        RuleRow(
            r.name,
            r.event_type,
            r.template_name,
            describe_channel_order(r.channel_order),
            describe_offset(r.offset_minutes),
            r.enabled,
        )
        for r in rules
    ]


async def template_preview(request: Request[Any, Any, Any], form: PreviewForm) -> MessagePreview:
    container = container_of(request)
    message = MessageRequest(
        customer_id=None,
        channel=Channel(form.channel) if form.channel else None,
        template=form.template,
        variables=form.variable_values(),
        locale=form.locale.strip() or None,
    )
    return await preview_message(container.messaging_uow(), message, utc_now(), container.consent_policy())


class MessagePages(StaffPages):
    @get("/communication/messages", name="messages")
    async def messages(self, request: Request[Any, Any, Any]) -> Template:
        filters = MessageFilters.parse(dict(request.query_params))
        database = container_of(request).database
        search = await find_customers(database, filters.customer) if filters.customer else None
        rows, next_before = (
            await latest_messages(
                database, filters, Formats.of(request), customers=search.ids if search else None
            )
            if search is None or search.matches
            else ([], None)
        )
        return page(
            request,
            "communication/messages.html",
            "communication",
            "messages",
            filters=filters,
            search=search,
            rows=rows,
            next_query=filters.query_for(next_before) if next_before else None,
            channels=[c.value for c in Channel],
            statuses=[s.value for s in MessageStatus],
            directions=[d.value for d in Direction],
        )

    @get("/communication/messages/{message_id:int}", name="message")
    async def message(self, request: Request[Any, Any, Any], message_id: FromPath[int]) -> Template:
        detail = await message_detail(container_of(request).database, message_id, Formats.of(request))
        return page(request, "communication/message.html", "communication", "messages", **detail)

    @get("/communication/templates", name="templates")
    async def templates(self, request: Request[Any, Any, Any]) -> Template:
        variants = await template_variants(container_of(request).database)
        params = request.query_params
        chosen = params.get("template") or next(iter(variants), "")
        declared = sorted({str(v) for t in variants.get(chosen, []) for v in t.variables})
        form = PreviewForm(
            template=chosen,
            channel=params.get("channel") or "",
            locale=params.get("locale") or "en",
            variables=params.get("variables") or "\n".join(f"{name}=" for name in declared),
        )
        preview, error = None, None
        if "preview" in params and chosen:
            try:
                preview = await template_preview(request, form)
            except ValueError as problem:  # MessageRequestError, TemplateError and bad channel names
                error = str(problem)
        formats = Formats.of(request)
        return page(
            request,
            "communication/templates.html",
            "communication",
            "templates",
            variants=variants,
            form=form,
            channels=[c.value for c in OUTBOUND_CHANNELS],
            preview=preview,
            preview_cost=formats.money_micros(preview.estimated_cost_micros, preview.currency)
            if preview
            else None,
            error=error,
            rules=await notification_rule_rows(request),
        )
