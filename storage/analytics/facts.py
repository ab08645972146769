"""The fact tables analytics reads, their dimensions, and each KPI's numerator and denominator as SQL.

A dimension name is a key of a fixed table per source, mapped to a column (and the joins it needs);
a metric name maps to measures here. Nothing a person types ever becomes an identifier.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Literal

from sqlalchemy import BigInteger, Float, String, and_, cast, exists, func, literal, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.sql.selectable import FromClause

from domain.consent.sources import IMPORTED_FROM
from domain.vocabulary import Direction, MessageStatus, OrderStatus
from storage.models import (
    Appointment,
    BulkMessaging,
    BusinessEvent,
    ChatSession,
    ChatSlaEvent,
    ConsentRecord,
    Customer,
    CustomerCommunication,
    Location,
    MessageTemplate,
    Order,
    Refund,
    Service,
    StaffUser,
    VideoConsultation,
)

NO_VALUE = "(none)"

#: A column of a mapped class or any SQL expression.
Expr = ColumnElement[Any] | InstrumentedAttribute[Any]

#: Orders that count as sales: money was taken (a later full refund nets the order to zero).
COUNTED_ORDER_STATUSES = (
    OrderStatus.PAID.value,
    OrderStatus.SHIPPED.value,
    OrderStatus.DELIVERED.value,
    OrderStatus.REFUNDED.value,
)
#: Outbound messages that were handed to a provider, whatever happened after.
SENT_STATUSES = tuple(
    s.value
    for s in (
        MessageStatus.QUEUED,
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.READ,
        MessageStatus.FAILED,
        MessageStatus.UNDELIVERED,
    )
)
DELIVERED_STATUSES = (MessageStatus.DELIVERED.value, MessageStatus.READ.value)
FAILED_STATUSES = (MessageStatus.FAILED.value, MessageStatus.UNDELIVERED.value, MessageStatus.DEAD.value)


class SecondsBetween(FunctionElement[float]):
    """Seconds from the first timestamp to the second, written per dialect."""

    type = Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(SecondsBetween, "sqlite")
def _seconds_between_sqlite(element: SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    earlier, later = list(element.clauses)
    return (
        f"((julianday({compiler.process(later, **kw)}) - julianday({compiler.process(earlier, **kw)}))"
        " * 86400.0)"
    )


@compiles(SecondsBetween, "postgresql")
def _seconds_between_postgres(element: SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    earlier, later = list(element.clauses)
    return f"EXTRACT(EPOCH FROM ({compiler.process(later, **kw)} - {compiler.process(earlier, **kw)}))"


class EventIdOf(FunctionElement[int]):
    """The business event id in a notification message's source_ref ("{rule id}:{event id}"); NULL (or 0 on
    SQLite) when the reference has another shape."""

    type = BigInteger()
    inherit_cache = True
    name = "event_id_of"


@compiles(EventIdOf, "sqlite")
def _event_id_of_sqlite(element: EventIdOf, compiler: SQLCompiler, **kw: Any) -> str:
    (reference,) = list(element.clauses)
    text = compiler.process(reference, **kw)
    return f"CAST(substr({text}, instr({text}, ':') + 1) AS INTEGER)"


@compiles(EventIdOf, "postgresql")
def _event_id_of_postgres(element: EventIdOf, compiler: SQLCompiler, **kw: Any) -> str:
    (reference,) = list(element.clauses)
    text = compiler.process(reference, **kw)
    return f"CASE WHEN {text} ~ '^[0-9]+:[0-9]{{1,18}}$' THEN CAST(split_part({text}, ':', 2) AS BIGINT) END"


@dataclass(frozen=True)
class Join:
    """A table joined (outer) onto a fact table to reach a dimension's column."""

    target: FromClause
    on: ColumnElement[bool]


@dataclass(frozen=True)
class FactSource:
    """A fact table: when each fact happened, which rows count at all, and its dimensions."""

    name: str
    table: FromClause
    time_column: Expr
    id_column: Expr
    condition: ColumnElement[bool] | None
    dimensions: Mapping[str, tuple[Expr, tuple[str, ...]]]
    joins: Mapping[str, Join] = field(default_factory=dict)

    def dimension(self, name: str) -> ColumnElement[Any]:
        column, _ = self.dimensions[name]
        return func.coalesce(cast(column, String), NO_VALUE)

    def joins_for(self, dimension_names: tuple[str, ...]) -> list[Join]:
        wanted: list[str] = []
        for name in dimension_names:
            for join in self.dimensions[name][1]:
                if join not in wanted:
                    wanted.append(join)
        return [self.joins[j] for j in wanted]


def _dims(
    **columns: tuple[ColumnElement[Any], tuple[str, ...]],
) -> Mapping[str, tuple[ColumnElement[Any], tuple[str, ...]]]:
    return MappingProxyType(columns)


def _alias(model: Any, name: str) -> FromClause:
    table: FromClause = model.__table__
    return table.alias(name)


_order_customer = _alias(Customer, "order_customer")
_order_location = _alias(Location, "order_location")
_order_campaign = _alias(BulkMessaging, "order_campaign")
_message_customer = _alias(Customer, "message_customer")
_message_campaign = _alias(BulkMessaging, "message_campaign")
_message_template = _alias(MessageTemplate, "message_template")
_consent_customer = _alias(Customer, "consent_customer")
_home_location = _alias(Location, "home_location")
_appointment_location = _alias(Location, "appointment_location")
_appointment_service = _alias(Service, "appointment_service")
_appointment_staff = _alias(StaffUser, "appointment_staff")
_video_staff = _alias(StaffUser, "video_staff")
_chat_staff = _alias(StaffUser, "chat_staff")

ORDERS = FactSource(
    name="orders",
    table=Order.__table__,
    time_column=Order.created_at,
    id_column=Order.id,
    condition=Order.status.in_(COUNTED_ORDER_STATUSES),
    dimensions=MappingProxyType(
        {
            "source_channel": (Order.source_channel, ()),
            "location": (_order_location.c.code, ("location",)),
            "country": (_order_customer.c.country, ("customer",)),
            "segment": (_order_customer.c.segment, ("customer",)),
            "campaign": (_order_campaign.c.slug, ("campaign",)),
            "currency": (Order.currency, ()),
        }
    ),
    joins=MappingProxyType(
        {
            "customer": Join(_order_customer, Order.customer_id == _order_customer.c.id),
            "location": Join(_order_location, Order.location_id == _order_location.c.id),
            "campaign": Join(_order_campaign, Order.campaign_id == _order_campaign.c.id),
        }
    ),
)

CUSTOMERS = FactSource(
    name="customers",
    table=Customer.__table__,
    time_column=Customer.created_at,
    id_column=Customer.id,
    condition=None,
    dimensions=MappingProxyType(
        {
            "segment": (Customer.segment, ()),
            "country": (Customer.country, ()),
            "location": (_home_location.c.code, ("location",)),
        }
    ),
    joins=MappingProxyType(
        {"location": Join(_home_location, Customer.home_location_id == _home_location.c.id)}
    ),
)

#: What the "reminder channel" of an appointment says when no reminder went out for it.
NO_REMINDER = "none"
_reminder = _alias(CustomerCommunication, "reminder")
_reminder_event = _alias(BusinessEvent, "reminder_event")
_reminded_video = _alias(VideoConsultation, "reminded_video")
#: A video consultation's reminder: a "video.reminder" business event keyed "video-reminder:{id}:..." that a
#: notification rule turned into the message (domain.video.reminders).
_VIDEO_REMINDER = exists(
    select(literal(1))
    .select_from(_reminder_event.join(_reminded_video, _reminded_video.c.appointment_id == Appointment.id))
    .where(
        _reminder_event.c.id == EventIdOf(_reminder.c.source_ref),
        _reminder_event.c.event_type == "video.reminder",
        _reminder_event.c.idempotency_key.like(
            literal("video-reminder:") + cast(_reminded_video.c.id, String) + literal(":%")
        ),
    )
)
#: The clinic system's reminder that a rule made: an "appointment.reminder" business event posted under the
#: key "appointment.reminder:appointment:{id}" and turned into the message by a notification rule.
_FEED_EVENT_REMINDER = exists(
    select(literal(1))
    .select_from(_reminder_event)
    .where(
        _reminder_event.c.id == EventIdOf(_reminder.c.source_ref),
        _reminder_event.c.event_type == "appointment.reminder",
        _reminder_event.c.idempotency_key
        == literal("appointment.reminder:appointment:") + cast(Appointment.id, String),
    )
    .correlate_except(_reminder_event)
)
#: The channel the appointment's last reminder went out on (handed to a provider, whatever came after):
#: a video reminder, or the clinic system's reminder: a message sent under the key
#: "appointment.reminder:appointment:{id}" (the demo's), or one a rule made of an event posted under it.
#: Read per appointment through the customer's message timeline index.
LAST_REMINDER_CHANNEL = func.coalesce(
    select(_reminder.c.channel)
    .where(
        _reminder.c.customer_id == Appointment.customer_id,
        _reminder.c.direction == Direction.OUTBOUND.value,
        _reminder.c.source == "notification",
        _reminder.c.status.in_(SENT_STATUSES),
        or_(
            _reminder.c.idempotency_key
            == literal("appointment.reminder:appointment:") + cast(Appointment.id, String),
            _VIDEO_REMINDER,
            _FEED_EVENT_REMINDER,
        ),
    )
    .order_by(_reminder.c.created_at.desc(), _reminder.c.id.desc())
    .limit(1)
    .correlate(Appointment.__table__)
    .scalar_subquery(),
    NO_REMINDER,
)

APPOINTMENTS = FactSource(
    name="appointments",
    table=Appointment.__table__,
    time_column=Appointment.scheduled_at,
    id_column=Appointment.id,
    condition=Appointment.status != "cancelled",
    dimensions=MappingProxyType(
        {
            "service": (_appointment_service.c.code, ("service",)),
            "staff": (_appointment_staff.c.name, ("staff",)),
            "location": (_appointment_location.c.code, ("location",)),
            "kind": (Appointment.kind, ()),
            "reminder_channel": (LAST_REMINDER_CHANNEL, ()),
        }
    ),
    joins=MappingProxyType(
        {
            "service": Join(_appointment_service, Appointment.service_id == _appointment_service.c.id),
            "staff": Join(_appointment_staff, Appointment.staff_id == _appointment_staff.c.id),
            "location": Join(_appointment_location, Appointment.location_id == _appointment_location.c.id),
        }
    ),
)

VIDEO_CONSULTATIONS = FactSource(
    name="video_consultations",
    table=VideoConsultation.__table__,
    time_column=VideoConsultation.scheduled_at,
    id_column=VideoConsultation.id,
    condition=VideoConsultation.status != "cancelled",
    dimensions=MappingProxyType({"staff": (_video_staff.c.name, ("staff",))}),
    joins=MappingProxyType({"staff": Join(_video_staff, VideoConsultation.staff_id == _video_staff.c.id)}),
)

MESSAGES = FactSource(
    name="messages",
    table=CustomerCommunication.__table__,
    time_column=CustomerCommunication.created_at,
    id_column=CustomerCommunication.id,
    condition=CustomerCommunication.direction == Direction.OUTBOUND.value,
    dimensions=MappingProxyType(
        {
            "channel": (CustomerCommunication.channel, ()),
            "provider": (CustomerCommunication.provider, ()),
            "campaign": (_message_campaign.c.slug, ("campaign",)),
            "template": (_message_template.c.name, ("template",)),
            "category": (CustomerCommunication.category, ()),
            "message_source": (CustomerCommunication.source, ()),
            "segment": (_message_customer.c.segment, ("customer",)),
            "country": (_message_customer.c.country, ("customer",)),
            "currency": (CustomerCommunication.currency, ()),
        }
    ),
    joins=MappingProxyType(
        {
            "campaign": Join(_message_campaign, CustomerCommunication.campaign_id == _message_campaign.c.id),
            "template": Join(_message_template, CustomerCommunication.template_id == _message_template.c.id),
            "customer": Join(_message_customer, CustomerCommunication.customer_id == _message_customer.c.id),
        }
    ),
)

#: What customers wrote to us (replies, questions, keywords), when it arrived, on every channel.
INBOUND_MESSAGES = FactSource(
    name="inbound_messages",
    table=CustomerCommunication.__table__,
    time_column=CustomerCommunication.created_at,
    id_column=CustomerCommunication.id,
    condition=CustomerCommunication.direction == Direction.INBOUND.value,
    dimensions=MappingProxyType(
        {
            "channel": (CustomerCommunication.channel, ()),
            "campaign": (_message_campaign.c.slug, ("campaign",)),
            "segment": (_message_customer.c.segment, ("customer",)),
            "country": (_message_customer.c.country, ("customer",)),
        }
    ),
    joins=MappingProxyType(
        {
            "campaign": Join(_message_campaign, CustomerCommunication.campaign_id == _message_campaign.c.id),
            "customer": Join(_message_customer, CustomerCommunication.customer_id == _message_customer.c.id),
        }
    ),
)

#: An opt-out made here, in the period it was recorded. An erasure closes every channel in the ledger
#: (storage/customer_erasure.py), and a customer list's "no" is what the customer said elsewhere, before
#: (storage/customer_import.py): neither is an opt-out.
COUNTED_OPT_OUT: ColumnElement[bool] = and_(
    ConsentRecord.status == "opted_out",
    ConsentRecord.source != "erasure",
    ~func.coalesce(ConsentRecord.detail, "").startswith(IMPORTED_FROM, autoescape=True),
)
#: How long after a campaign's message an opt-out on its channel counts as that campaign's unsubscribe.
OPT_OUT_WINDOW = timedelta(days=7)
_opted_after = _alias(CustomerCommunication, "opted_after")
_opted_after_campaign = _alias(BulkMessaging, "opted_after_campaign")
#: The campaign an opt-out is credited to, as a campaign's page credits it (storage/campaigns.py): the one
#: whose message the customer was sent last on that channel within OPT_OUT_WINDOW before opting out; NULL
#: (no campaign) when none was. Each opt-out goes to one campaign at most, so the split adds up.
OPT_OUT_CAMPAIGN = (
    select(_opted_after_campaign.c.slug)
    .select_from(
        _opted_after.join(_opted_after_campaign, _opted_after_campaign.c.id == _opted_after.c.campaign_id)
    )
    .where(
        _opted_after.c.customer_id == ConsentRecord.customer_id,
        _opted_after.c.channel == ConsentRecord.channel,
        _opted_after.c.direction == Direction.OUTBOUND.value,
        _opted_after.c.sent_at.is_not(None),
        _opted_after.c.sent_at <= ConsentRecord.recorded_at,
        SecondsBetween(_opted_after.c.sent_at, ConsentRecord.recorded_at) < OPT_OUT_WINDOW.total_seconds(),
    )
    .order_by(_opted_after.c.sent_at.desc(), _opted_after.c.id.desc())
    .limit(1)
    .correlate(ConsentRecord.__table__)
    .scalar_subquery()
)

OPT_OUTS = FactSource(
    name="opt_outs",
    table=ConsentRecord.__table__,
    time_column=ConsentRecord.recorded_at,
    id_column=ConsentRecord.id,
    condition=COUNTED_OPT_OUT,
    dimensions=MappingProxyType(
        {
            "channel": (ConsentRecord.channel, ()),
            "segment": (_consent_customer.c.segment, ("customer",)),
            "country": (_consent_customer.c.country, ("customer",)),
            "campaign": (OPT_OUT_CAMPAIGN, ()),
        }
    ),
    joins=MappingProxyType(
        {"customer": Join(_consent_customer, ConsentRecord.customer_id == _consent_customer.c.id)}
    ),
)

CHATS = FactSource(
    name="chats",
    table=ChatSession.__table__,
    time_column=ChatSession.started_at,
    id_column=ChatSession.id,
    condition=None,
    dimensions=MappingProxyType(
        {"channel": (ChatSession.channel, ()), "staff": (_chat_staff.c.name, ("staff",))}
    ),
    joins=MappingProxyType({"staff": Join(_chat_staff, ChatSession.assigned_staff_id == _chat_staff.c.id)}),
)

_breach_chat = _alias(ChatSession, "breach_chat")
_breach_staff = _alias(StaffUser, "breach_staff")

#: Live-chat SLA breaches (chat_sla_events of kind breach), when they were recorded.
SLA_BREACHES = FactSource(
    name="sla_breaches",
    table=ChatSlaEvent.__table__,
    time_column=ChatSlaEvent.occurred_at,
    id_column=ChatSlaEvent.id,
    condition=ChatSlaEvent.kind == "breach",
    dimensions=MappingProxyType(
        {"channel": (_breach_chat.c.channel, ("chat",)), "staff": (_breach_staff.c.name, ("staff",))}
    ),
    joins=MappingProxyType(
        {
            "chat": Join(_breach_chat, ChatSlaEvent.session_id == _breach_chat.c.id),
            "staff": Join(_breach_staff, ChatSlaEvent.staff_id == _breach_staff.c.id),
        }
    ),
)

#: Sources whose facts keep changing around their own time: an appointment is booked, moved or cancelled
#: ahead of it, and marked done or missed after it. A rollup bucket of theirs answers only once it ended
#: SETTLED_AFTER ago (nearer and future buckets are read raw), and every refresh recounts their buckets of
#: the days before that (reports/rollups.py), so what a rollup answers has settled.
UNSETTLED_SOURCES = frozenset({"appointments", "video_consultations"})
SETTLED_AFTER = timedelta(days=2)

SOURCES: Mapping[str, FactSource] = MappingProxyType(
    {
        s.name: s
        for s in (
            ORDERS,
            CUSTOMERS,
            APPOINTMENTS,
            VIDEO_CONSULTATIONS,
            MESSAGES,
            INBOUND_MESSAGES,
            OPT_OUTS,
            CHATS,
            SLA_BREACHES,
        )
    }
)

Aggregate = Literal["sum", "count", "count_distinct", "returning"]


@dataclass(frozen=True)
class Measure:
    """One aggregate over a source: sum/count/distinct count of `value` over the rows meeting `condition`.

    `key` names the measure so that metrics sharing it (orders for AOV and conversion) compute it once.
    `returning` counts distinct customers who had a counted order in an earlier bucket.
    """

    key: str
    source: str
    aggregate: Aggregate
    value: Expr | None = None
    condition: ColumnElement[bool] | None = None

    @property
    def additive(self) -> bool:
        return self.aggregate in ("sum", "count")


@dataclass(frozen=True)
class MetricMeasures:
    """A metric as numerator and optional denominator (value = numerator / denominator)."""

    numerator: Measure
    denominator: Measure | None = None

    @property
    def measures(self) -> tuple[Measure, ...]:
        return (self.numerator,) if self.denominator is None else (self.numerator, self.denominator)

    @property
    def additive(self) -> bool:
        return all(m.additive for m in self.measures)


_refunded_minor = (
    select(func.coalesce(func.sum(Refund.amount_minor), 0))
    .where(Refund.order_id == Order.id)
    .correlate(Order.__table__)
    .scalar_subquery()
)
#: An order's revenue after refunds, in major units (amounts are stored in minor units).
NET_ORDER_AMOUNT = (Order.amount_minor - _refunded_minor) / literal(100.0)
_sent = CustomerCommunication.status.in_(SENT_STATUSES)

_REVENUE = Measure("net_revenue", "orders", "sum", NET_ORDER_AMOUNT)
_ORDERS = Measure("orders", "orders", "count")
_CAMPAIGN_ORDERS = Measure("campaign_orders", "orders", "count", condition=Order.campaign_id.is_not(None))
_MESSAGES_SENT = Measure("messages_sent", "messages", "count", condition=_sent)
_CAMPAIGN_MESSAGES = Measure(
    "campaign_messages_sent",
    "messages",
    "count",
    condition=and_(_sent, CustomerCommunication.campaign_id.is_not(None)),
)
_CHATS_ANSWERED = Measure(
    "chats_answered", "chats", "count", condition=ChatSession.first_response_at.is_not(None)
)
_CHATS_CLOSED = Measure("chats_closed", "chats", "count", condition=ChatSession.closed_at.is_not(None))
#: CSAT reads the customers' answers to the survey: a score with the time it was given.
_CSAT_ANSWERED = and_(ChatSession.csat_score.is_not(None), ChatSession.csat_answered_at.is_not(None))
#: A conversation with no SLA target breached (so far, for one still open).
_NO_SLA_BREACH = ~exists().where(ChatSlaEvent.session_id == ChatSession.id, ChatSlaEvent.kind == "breach")


def _no_breach_of(metric: str) -> Any:
    """A conversation with no breach of this one target (first_response, resolution) recorded."""
    return ~exists().where(
        ChatSlaEvent.session_id == ChatSession.id,
        ChatSlaEvent.kind == "breach",
        ChatSlaEvent.metric == metric,
    )


_APPOINTMENTS_DUE = Measure(
    "appointments_due", "appointments", "count", condition=Appointment.status.in_(("completed", "no_show"))
)

METRIC_MEASURES: Mapping[str, MetricMeasures] = MappingProxyType(
    {
        "revenue": MetricMeasures(_REVENUE),
        "orders": MetricMeasures(_ORDERS),
        "average_order_value": MetricMeasures(_REVENUE, _ORDERS),
        # A customer list's patients came before the import: not new that day (storage/customer_import.py).
        "new_customers": MetricMeasures(
            Measure("new_customers", "customers", "count", condition=Customer.imported_at.is_(None))
        ),
        "active_customers": MetricMeasures(
            Measure("active_customers", "orders", "count_distinct", Order.customer_id)
        ),
        "returning_customers": MetricMeasures(
            Measure("returning_customers", "orders", "returning", Order.customer_id)
        ),
        "appointments": MetricMeasures(Measure("appointments", "appointments", "count")),
        "no_show_rate": MetricMeasures(
            Measure("no_shows", "appointments", "count", condition=Appointment.status == "no_show"),
            _APPOINTMENTS_DUE,
        ),
        "video_consultations": MetricMeasures(Measure("video_consultations", "video_consultations", "count")),
        "messages_sent": MetricMeasures(_MESSAGES_SENT),
        "messages_received": MetricMeasures(Measure("messages_received", "inbound_messages", "count")),
        "messages_delivered": MetricMeasures(
            Measure(
                "messages_delivered",
                "messages",
                "count",
                condition=CustomerCommunication.status.in_(DELIVERED_STATUSES),
            )
        ),
        "messages_read": MetricMeasures(
            Measure("messages_read", "messages", "count", condition=CustomerCommunication.status == "read")
        ),
        "messages_failed": MetricMeasures(
            Measure(
                "messages_failed",
                "messages",
                "count",
                condition=CustomerCommunication.status.in_(FAILED_STATUSES),
            )
        ),
        "delivery_rate": MetricMeasures(
            Measure(
                "messages_delivered",
                "messages",
                "count",
                condition=CustomerCommunication.status.in_(DELIVERED_STATUSES),
            ),
            _MESSAGES_SENT,
        ),
        "reply_rate": MetricMeasures(
            Measure(
                "messages_replied",
                "messages",
                "count",
                condition=and_(_sent, CustomerCommunication.replied_at.is_not(None)),
            ),
            _MESSAGES_SENT,
        ),
        "opt_out_rate": MetricMeasures(Measure("opt_outs", "opt_outs", "count"), _MESSAGES_SENT),
        "opt_outs": MetricMeasures(Measure("opt_outs", "opt_outs", "count")),
        "cost_per_message": MetricMeasures(
            Measure(
                "sent_cost",
                "messages",
                "sum",
                func.coalesce(CustomerCommunication.cost_micros, 0) / literal(1_000_000.0),
                _sent,
            ),
            _MESSAGES_SENT,
        ),
        "communication_cost": MetricMeasures(
            Measure(
                "communication_cost",
                "messages",
                "sum",
                func.coalesce(CustomerCommunication.cost_micros, 0) / literal(1_000_000.0),
                # What a provider took: a planned message's estimate, or one given up before any provider
                # had it, costs nothing (the channel pages count cost the same way, when it is sent).
                CustomerCommunication.sent_at.is_not(None),
            )
        ),
        "conversations": MetricMeasures(Measure("chats", "chats", "count")),
        "first_response_time": MetricMeasures(
            Measure(
                "first_response_seconds",
                "chats",
                "sum",
                SecondsBetween(ChatSession.started_at, ChatSession.first_response_at),
                ChatSession.first_response_at.is_not(None),
            ),
            _CHATS_ANSWERED,
        ),
        "resolution_time": MetricMeasures(
            Measure(
                "resolution_seconds",
                "chats",
                "sum",
                SecondsBetween(ChatSession.started_at, ChatSession.closed_at),
                ChatSession.closed_at.is_not(None),
            ),
            _CHATS_CLOSED,
        ),
        "csat": MetricMeasures(
            Measure("csat_points", "chats", "sum", ChatSession.csat_score, _CSAT_ANSWERED),
            Measure("csat_ratings", "chats", "count", condition=_CSAT_ANSWERED),
        ),
        "sla_breaches": MetricMeasures(Measure("sla_breaches", "sla_breaches", "count")),
        "sla_met_rate": MetricMeasures(
            Measure("chats_within_sla", "chats", "count", condition=_NO_SLA_BREACH),
            Measure("chats", "chats", "count"),
        ),
        "first_response_within_sla": MetricMeasures(
            Measure("chats_first_response_met", "chats", "count", condition=_no_breach_of("first_response")),
            Measure("chats", "chats", "count"),
        ),
        "resolution_within_sla": MetricMeasures(
            Measure("chats_resolution_met", "chats", "count", condition=_no_breach_of("resolution")),
            Measure("chats", "chats", "count"),
        ),
        "campaign_conversion": MetricMeasures(_CAMPAIGN_ORDERS, _CAMPAIGN_MESSAGES),
        "campaign_revenue": MetricMeasures(
            Measure("campaign_revenue", "orders", "sum", NET_ORDER_AMOUNT, Order.campaign_id.is_not(None))
        ),
    }
)

#: Metrics computed by their own query rather than from measures (they compare two periods).
SPECIAL_METRICS = frozenset({"churn_rate"})
