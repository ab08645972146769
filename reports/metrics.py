"""The KPI registry: every metric a person can ask for, its meaning, unit, dimensions and grains.

Names typed by people (in chat, in a saved report) are only ever looked up here; nothing outside
this table reaches SQL as an identifier.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.vocabulary import OUTBOUND_CHANNELS, Channel, MessageCategory, MessageSource, SalesChannel
from reports.periods import GRAINS, Grain
from storage.database import Database
from storage.models import KpiMetric

Unit = Literal["currency", "percent", "count", "duration", "number"]
Aggregation = Literal["sum", "count", "count_distinct", "ratio", "average"]
MetricDirection = Literal["up_is_good", "down_is_good", "neutral"]


class UnknownName(ValueError):
    """A metric, dimension, grain or operator name that is not in the registry; the message lists the allowed."""

    def __init__(self, what: str, name: str, allowed: Iterable[str]) -> None:
        self.what = what
        self.name = name
        self.allowed = tuple(sorted(allowed))
        closest = difflib.get_close_matches(name.lower().strip(), self.allowed, n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(repr(c) for c in closest)}?" if closest else ""
        shown = name if len(name) <= 60 else name[:57] + "..."
        super().__init__(f"unknown {what} {shown!r}.{hint} Allowed: {', '.join(self.allowed)}.")


@dataclass(frozen=True)
class Metric:
    """One KPI; ratios are stored as fractions (0.25 is 25%), durations in seconds, money in major units."""

    name: str
    label: str
    description: str
    unit: Unit
    aggregation: Aggregation
    source: str
    dimensions: tuple[str, ...]
    grains: tuple[Grain, ...]
    direction: MetricDirection
    target: float | None = None
    synonyms: tuple[str, ...] = ()
    #: A rate's counts in words, said beside it ("9 no-shows of 133 appointments due"): what is counted (empty
    #: when the whole's noun says it) and what it is out of, each singular and plural.
    out_of: tuple[str, str, str, str] | None = None

    @property
    def is_additive(self) -> bool:
        """Whether bucket values add up to the period's value (distinct counts and churn do not)."""
        return self.aggregation in ("sum", "count", "ratio", "average")


ALL_GRAINS: tuple[Grain, ...] = GRAINS
ORDER_DIMENSIONS = ("source_channel", "location", "country", "segment", "campaign")
MESSAGE_DIMENSIONS = (
    "channel",
    "provider",
    "campaign",
    "template",
    "category",
    "message_source",
    "segment",
    "country",
)
#: "reminder_channel": the channel the appointment's last reminder went out on ("none" without one).
#: A dimension's name as people read it, where its stored name is not that ("kind": video or in the clinic).
DIMENSION_NAMES = {"kind": "appointment type"}


def dimension_words(name: str) -> str:
    """ "source_channel" → "source channel", "kind" → "appointment type": a split as answers say it (a
    two-way split's joined name too: "location_and_kind" → "location and appointment type")."""
    return " and ".join(DIMENSION_NAMES.get(part, part.replace("_", " ")) for part in name.split("_and_"))


APPOINTMENT_DIMENSIONS = ("service", "staff", "location", "kind", "reminder_channel")
CHAT_DIMENSIONS = ("channel", "staff")


def _pairs(values: Iterable[str]) -> list[tuple[str, str]]:
    return [(value, value.replace("_", " ")) for value in values]


#: The values of the dimensions whose values are fixed words rather than rows of the database (those are
#: storage.queries.reports.dimension_names): what a filter on them may name.
FIXED_VALUES: Mapping[str, list[tuple[str, str]]] = MappingProxyType(
    {
        "channel": _pairs(c.value for c in Channel),
        "reminder_channel": _pairs([*(c.value for c in OUTBOUND_CHANNELS), "none"]),
        "source_channel": _pairs(s.value for s in SalesChannel),
        "category": _pairs(c.value for c in MessageCategory),
        "message_source": _pairs(s.value for s in MessageSource),
    }
)


def _metric(
    name: str,
    label: str,
    description: str,
    unit: Unit,
    aggregation: Aggregation,
    source: str,
    dimensions: tuple[str, ...],
    direction: MetricDirection,
    *,
    grains: tuple[Grain, ...] = ALL_GRAINS,
    target: float | None = None,
    synonyms: tuple[str, ...] = (),
    out_of: tuple[str, str, str, str] | None = None,
) -> Metric:
    if unit == "currency":
        # Every row of money carries its currency; answers keep currencies apart (reports.money).
        dimensions = (*dimensions, "currency")
    return Metric(
        name,
        label,
        description,
        unit,
        aggregation,
        source,
        dimensions,
        grains,
        direction,
        target,
        synonyms,
        out_of,
    )


_METRICS: tuple[Metric, ...] = (
    _metric(
        "revenue",
        "Revenue",
        "Net revenue of orders placed in the period (paid, shipped, delivered or refunded orders, "
        "minus their refunds), in major currency units; refunds count against the order's own date.",
        "currency",
        "sum",
        "orders",
        ORDER_DIMENSIONS,
        "up_is_good",
        synonyms=("sales", "turnover", "income", "net revenue"),
    ),
    _metric(
        "orders",
        "Orders",
        "Orders placed in the period that were paid (pending and cancelled orders are left out).",
        "count",
        "count",
        "orders",
        ORDER_DIMENSIONS,
        "up_is_good",
        synonyms=("order count", "purchases"),
    ),
    _metric(
        "average_order_value",
        "Average order value",
        "Revenue divided by orders for the period.",
        "currency",
        "ratio",
        "orders",
        ORDER_DIMENSIONS,
        "up_is_good",
        synonyms=("aov", "basket size"),
    ),
    _metric(
        "new_customers",
        "New customers",
        "Customers whose record was created in the period (not those a customer list brought in).",
        "count",
        "count",
        "customers",
        ("segment", "country", "location"),
        "up_is_good",
        synonyms=("signups", "new clients"),
    ),
    _metric(
        "active_customers",
        "Active customers",
        "Distinct customers with at least one paid order in the period.",
        "count",
        "count_distinct",
        "orders",
        ORDER_DIMENSIONS,
        "up_is_good",
        synonyms=("buyers", "active clients"),
    ),
    _metric(
        "returning_customers",
        "Returning customers",
        "Distinct customers with a paid order in the period who had a paid order before it began.",
        "count",
        "count_distinct",
        "orders",
        ORDER_DIMENSIONS,
        "up_is_good",
        synonyms=("repeat customers",),
    ),
    _metric(
        "churn_rate",
        "Churn rate",
        "Share of customers with a paid order in the previous equally long period who placed none in this one.",
        "percent",
        "ratio",
        "orders",
        (),
        "down_is_good",
        grains=("month", "quarter"),
        synonyms=("churn", "attrition"),
        out_of=("", "", "customer of the period before", "customers of the period before"),
    ),
    _metric(
        "appointments",
        "Appointments",
        "Appointments scheduled to take place in the period, cancelled ones left out.",
        "count",
        "count",
        "appointments",
        APPOINTMENT_DIMENSIONS,
        "up_is_good",
        synonyms=("bookings", "visits"),
    ),
    _metric(
        "no_show_rate",
        "No-show rate",
        "No-shows divided by appointments that were due and not cancelled (completed or no-show).",
        "percent",
        "ratio",
        "appointments",
        APPOINTMENT_DIMENSIONS,
        "down_is_good",
        target=0.05,
        synonyms=("no shows", "missed appointments"),
        out_of=("no-show", "no-shows", "appointment due", "appointments due"),
    ),
    _metric(
        "video_consultations",
        "Video consultations",
        "Video consultations scheduled in the period, cancelled ones left out.",
        "count",
        "count",
        "video_consultations",
        ("staff",),
        "up_is_good",
        synonyms=("video calls", "teleconsultations", "video consults", "video consultation", "video visits"),
    ),
    _metric(
        "messages_sent",
        "Messages sent",
        "Outbound messages created in the period that were handed to a provider.",
        "count",
        "count",
        "messages",
        MESSAGE_DIMENSIONS,
        "neutral",
        synonyms=("sent", "outbound messages", "sends", "send volume", "messages out", "volume sent"),
    ),
    _metric(
        "messages_received",
        "Messages received",
        "Messages customers sent us in the period by SMS, email, WhatsApp and Telegram (replies, questions, "
        "keywords such as STOP); what they write in the website chat is in its conversations.",
        "count",
        "count",
        "inbound_messages",
        ("channel", "campaign", "segment", "country"),
        "neutral",
        synonyms=(
            "received messages",
            "inbound messages",
            "incoming messages",
            "messages in",
            "replies received",
        ),
    ),
    _metric(
        "messages_delivered",
        "Messages delivered",
        "Outbound messages created in the period that reached the recipient (delivered or read).",
        "count",
        "count",
        "messages",
        MESSAGE_DIMENSIONS,
        "up_is_good",
        synonyms=("delivered",),
    ),
    _metric(
        "messages_read",
        "Messages read",
        "Outbound messages created in the period with a read receipt (only WhatsApp and the website chat send "
        "them: SMS, Telegram and email, whose opens are not tracked, never count as read).",
        "count",
        "count",
        "messages",
        MESSAGE_DIMENSIONS,
        "up_is_good",
        synonyms=("read", "opened"),
    ),
    _metric(
        "messages_failed",
        "Messages failed",
        "Outbound messages created in the period that failed, were undelivered or were given up on.",
        "count",
        "count",
        "messages",
        MESSAGE_DIMENSIONS,
        "down_is_good",
        synonyms=("failed", "failures", "bounces"),
    ),
    _metric(
        "delivery_rate",
        "Delivery rate",
        "Messages delivered divided by messages sent.",
        "percent",
        "ratio",
        "messages",
        MESSAGE_DIMENSIONS,
        "up_is_good",
        target=0.95,
        synonyms=("deliverability",),
        out_of=("", "", "message sent", "messages sent"),
    ),
    _metric(
        "reply_rate",
        "Reply rate",
        "Sent messages that got a reply, divided by messages sent.",
        "percent",
        "ratio",
        "messages",
        MESSAGE_DIMENSIONS,
        "up_is_good",
        synonyms=("response rate", "replies"),
        out_of=("", "", "message sent", "messages sent"),
    ),
    _metric(
        "opt_out_rate",
        "Opt-out rate",
        "Opt-outs recorded in the period divided by messages sent in it.",
        "percent",
        "ratio",
        "messages",
        ("channel", "segment", "country", "campaign"),
        "down_is_good",
        synonyms=("unsubscribe rate", "unsubscribes rate"),
        out_of=("opt-out", "opt-outs", "message sent", "messages sent"),
    ),
    _metric(
        "opt_outs",
        "Opt-outs",
        "Customers opting out of a channel in the period (STOP, an unsubscribe link, a blocked bot, or told "
        "to staff), each time they did; by campaign, each is the campaign whose message reached them last on "
        "that channel in the 7 days before.",
        "count",
        "count",
        "opt_outs",
        ("channel", "segment", "country", "campaign"),
        "down_is_good",
        synonyms=("opt outs", "unsubscribes", "unsubscribed customers"),
    ),
    _metric(
        "cost_per_message",
        "Cost per message",
        "Provider cost of sent messages divided by messages sent, in major currency units.",
        "currency",
        "ratio",
        "messages",
        MESSAGE_DIMENSIONS,
        "down_is_good",
        synonyms=("message cost", "unit cost"),
    ),
    _metric(
        "communication_cost",
        "Communication cost",
        "Provider cost of outbound messages created in the period and handed to a provider, in major currency units.",
        "currency",
        "sum",
        "messages",
        MESSAGE_DIMENSIONS,
        "down_is_good",
        synonyms=(
            "messaging cost",
            "provider cost",
            "spend",
            "cost",
            "costs",
            "comms cost",
            "comms costs",
            "communication costs",
            "messaging costs",
        ),
    ),
    _metric(
        "conversations",
        "Conversations",
        "Conversations started in the period, on every channel (website chat, WhatsApp, Telegram, SMS, email), "
        "whether the customer wrote first or staff opened them.",
        "count",
        "count",
        "chats",
        CHAT_DIMENSIONS,
        "up_is_good",
        synonyms=("conversations started", "chats started", "new conversations", "new chats"),
    ),
    _metric(
        "first_response_time",
        "First response time",
        "Average seconds from a chat's start to the first staff answer, over chats started in the period.",
        "duration",
        "average",
        "chats",
        CHAT_DIMENSIONS,
        "down_is_good",
        synonyms=("response time", "frt"),
    ),
    _metric(
        "resolution_time",
        "Resolution time",
        "Average seconds from a chat's start to its closing, over closed chats started in the period.",
        "duration",
        "average",
        "chats",
        CHAT_DIMENSIONS,
        "down_is_good",
        synonyms=("time to resolution", "handling time"),
    ),
    _metric(
        "csat",
        "Customer satisfaction (1–5)",
        "Average satisfaction score (1–5) of rated chats started in the period.",
        "number",
        "average",
        "chats",
        CHAT_DIMENSIONS,
        "up_is_good",
        target=4.5,
        synonyms=("customer satisfaction", "satisfaction", "csat score"),
    ),
    _metric(
        "sla_breaches",
        "SLA breaches",
        "Live-chat SLA targets (first response, next response, resolution) missed, counted when the miss "
        "was recorded; a first response and a resolution count once per conversation (a resolution once "
        "more each time it is reopened), a next response once per time the customer waited.",
        "count",
        "count",
        "sla_breaches",
        CHAT_DIMENSIONS,
        "down_is_good",
        synonyms=("breaches", "sla breach", "missed slas", "sla misses", "breached slas"),
    ),
    _metric(
        "sla_met_rate",
        "SLA met rate",
        "Chats started in the period with no SLA target breached, divided by chats started in the period; "
        "chats no SLA policy covers count as met.",
        "percent",
        "ratio",
        "chats",
        CHAT_DIMENSIONS,
        "up_is_good",
        target=0.9,
        synonyms=("sla", "sla compliance", "sla met", "sla rate", "sla attainment", "met sla rate"),
        out_of=("", "", "chat", "chats"),
    ),
    _metric(
        "first_response_within_sla",
        "First response within SLA",
        "Chats started in the period whose first response met its SLA target (no first-response breach "
        "recorded), divided by chats started in the period; chats no policy times count as met.",
        "percent",
        "ratio",
        "chats",
        CHAT_DIMENSIONS,
        "up_is_good",
        target=0.9,
        synonyms=("first response sla", "first response within sla", "frt sla", "first responses on time"),
        out_of=("", "", "chat", "chats"),
    ),
    _metric(
        "resolution_within_sla",
        "Resolution within SLA",
        "Chats started in the period whose resolution met its SLA target (no resolution breach recorded, "
        "including after a reopening), divided by chats started in the period; chats no policy times count "
        "as met.",
        "percent",
        "ratio",
        "chats",
        CHAT_DIMENSIONS,
        "up_is_good",
        target=0.9,
        synonyms=("resolution sla", "resolution within sla", "resolved within sla", "resolutions on time"),
    ),
    _metric(
        "campaign_conversion",
        "Campaign conversion",
        "Paid orders the shop tagged with a campaign (its link or code) divided by that campaign's messages sent, "
        "in the period.",
        "percent",
        "ratio",
        "orders",
        ("campaign",),
        "up_is_good",
        synonyms=("conversion rate", "campaign conversion rate", "conversion", "conversions"),
    ),
    _metric(
        "campaign_revenue",
        "Campaign revenue",
        "Net revenue of paid orders placed in the period that the shop tagged with a campaign (its link or code).",
        "currency",
        "sum",
        "orders",
        ("campaign", "source_channel", "location"),
        "up_is_good",
        synonyms=("attributed revenue",),
    ),
)

REGISTRY: Mapping[str, Metric] = MappingProxyType({m.name: m for m in _METRICS})
_SYNONYMS: Mapping[str, str] = MappingProxyType(
    {s: m.name for m in _METRICS for s in (*m.synonyms, m.label.lower())}
)


def get_metric(name: str) -> Metric:
    """The metric called `name` (or one of its synonyms); UnknownName lists the allowed names otherwise."""
    key = name.strip().lower()
    metric = REGISTRY.get(key) or REGISTRY.get(_SYNONYMS.get(key, ""))
    if metric is None:
        raise UnknownName("metric", name, REGISTRY)
    return metric


async def sync_registry(session: AsyncSession) -> int:
    """Mirror the registry into kpi_metrics (insert or update by name); returns how many rows changed.

    The caller commits: this is one step of whatever use-case runs it.
    """
    existing = {row.name: row for row in await session.scalars(select(KpiMetric))}
    changed = 0
    for metric in REGISTRY.values():
        fields = {
            "label": metric.label,
            "description": metric.description,
            "unit": metric.unit,
            "aggregation": metric.aggregation,
            "source": metric.source,
            "dimensions": list(metric.dimensions),
            "grains": list(metric.grains),
            "direction": metric.direction,
            "target": metric.target,
        }
        row = existing.get(metric.name)
        if row is None:
            session.add(KpiMetric(name=metric.name, **fields))
            changed += 1
        elif any(getattr(row, key) != value for key, value in fields.items()):
            for key, value in fields.items():
                setattr(row, key, value)
            changed += 1
    await session.flush()
    return changed


async def mirror_definitions(database: Database) -> int:
    """`switchboard migrate`: the KPI definitions live in code; kpi_metrics mirrors them for reports and
    the dashboard, in one transaction."""
    async with database.write_turn(), database.sessions() as session:
        changed = await sync_registry(session)
        await session.commit()
    return changed
