"""Seeded message history: outbound rows with realistic receipts and costs, inbound replies, daily figures."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from domain.messages.pricing import SMS_PRICE_BY_COUNTRY
from domain.templates.selection import said_in
from storage.message_feed import SEGMENT_FIGURES, counted_bits, segment_figures, send_day
from storage.seeding.catalogue import BUSINESS_ADDRESS, PROVIDER_OF, Row, TemplateVariant
from storage.seeding.people import Customer
from storage.seeding.plan import Calendar, weighted
from storage.seeding.writer import IdSequence, RowSink

#: How outbound messages end up, per channel (delivered ~92%; only WhatsApp has read receipts: Telegram's Bot API,
#: SMS carriers and email never say a message was read, domain.vocabulary.READ_REPORTED).
STATUS_MIX: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "sms": (("delivered", "sent", "undelivered", "failed", "dead"), (0.925, 0.02, 0.035, 0.015, 0.005)),
    "whatsapp": (("read", "delivered", "sent", "failed", "dead"), (0.66, 0.28, 0.01, 0.045, 0.005)),
    "telegram": (("delivered", "failed", "dead"), (0.975, 0.02, 0.005)),
    "email": (("delivered", "sent", "failed", "dead"), (0.95, 0.015, 0.03, 0.005)),
}
ERRORS: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("sms", "undelivered"): (
        ("30003", "Unreachable destination handset"),
        ("30005", "Unknown destination handset"),
        ("30006", "Landline or unreachable carrier"),
    ),
    ("sms", "failed"): (("30007", "Message filtered by carrier"), ("30008", "Unknown error")),
    ("whatsapp", "failed"): (
        ("131026", "Message undeliverable"),
        ("131049", "Not delivered to maintain healthy ecosystem engagement"),
        ("131000", "Something went wrong"),
    ),
    ("telegram", "failed"): (("403", "Forbidden: bot was blocked by the user"),),
    ("email", "failed"): (("550", "5.1.1 Mailbox unavailable"), ("552", "5.2.2 Mailbox full")),
}
FAILED = frozenset({"failed", "undelivered", "dead"})
#: Median seconds from provider acceptance to the delivery receipt.
DELIVERY_SECONDS = {"sms": 4.0, "whatsapp": 1.5, "telegram": 0.6, "email": 2.0}
#: SMS price per segment in USD micros by destination country (the estimates' and the sandbox's).
SMS_PRICE = SMS_PRICE_BY_COUNTRY
#: WhatsApp price per message in USD micros by category (conversational replies are free).
WHATSAPP_PRICE = {"marketing": 61000, "transactional": 20000, "conversational": 0}
EMAIL_PRICE = 100
_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)

_LOG_DELIVERY_SECONDS = {channel: math.log(seconds) for channel, seconds in DELIVERY_SECONDS.items()}
_LOG_READ_SECONDS = math.log(1500)
_DEAD_AFTER = timedelta(minutes=31)

AnalyticsKey = tuple[date, str, str, int, int]
SENT, DELIVERED, READ, FAILED_AT, REPLIED, OPTED_OUT, COST = range(7)
#: Where each segment figure (storage.message_feed.SEGMENT_FIGURES) sits in a day's figures, after COST.
SEGMENT_AT = {name: COST + 1 + index for index, name in enumerate(SEGMENT_FIGURES)}
FIGURE_SLOTS = COST + 1 + len(SEGMENT_FIGURES)


def sms_segments(body: str) -> tuple[int, str]:
    """Segments and encoding the way carriers count them (GSM-7 160/153, UCS-2 70/67 code units)."""
    if _GSM7.issuperset(body):
        return (1 if len(body) <= 160 else math.ceil(len(body) / 153)), "GSM-7"
    units = len(body.encode("utf-16-le")) // 2
    return (1 if units <= 70 else math.ceil(units / 67)), "UCS-2"


class Messenger:
    """Builds message rows and keeps the daily communication figures in step with them."""

    def __init__(
        self,
        calendar: Calendar,
        ids: IdSequence,
        sink: RowSink,
        templates: Mapping[tuple[str, str, str], TemplateVariant],
    ) -> None:
        self.calendar = calendar
        self.ids = ids
        self.sink = sink
        self.templates = templates
        self.analytics: dict[AnalyticsKey, list[int]] = {}
        self._mix = {
            channel: (statuses, _accumulate(weights)) for channel, (statuses, weights) in STATUS_MIX.items()
        }
        self._messages = sink.buffers["customer_communications"]
        self._last_second = calendar.end_at - timedelta(seconds=1)
        self._zone = ZoneInfo(calendar.plan.business_tz)

    def outbound(
        self,
        rng: random.Random,
        customer: Customer,
        channel: str,
        at: datetime,
        *,
        source: str,
        key: str,
        template: str | None = None,
        variables: Mapping[str, Any] | None = None,
        body: str | None = None,
        category: str | None = None,
        campaign_id: int | None = None,
        source_ref: str | None = None,
    ) -> Row:
        """A message we sent: rendered, priced and carried to its final receipt, never past the seeded end."""
        message_id = self.ids.next("customer_communications")
        variant = self.templates[(template, channel, customer.locale)] if template else None
        subject = None
        if variant is not None:
            values = said_in(variables or {}, customer.locale)
            body = variant.body_format.format_map(values)
            if variant.subject is not None:
                subject = variant.subject.format_map(values)
            category = category or variant.category
        category = category or "conversational"
        row = self._base_row(message_id, customer, channel, at, "outbound", source, category, body or "")
        row["idempotency_key"] = key
        row["template_id"] = variant.id if variant else None
        row["campaign_id"] = campaign_id
        row["source_ref"] = source_ref
        row["to_address"] = customer.addresses[channel]
        row["from_address"] = BUSINESS_ADDRESS[channel]
        row["subject"] = subject
        self._deliver(rng, row, customer, category)
        return row

    def inbound(
        self,
        rng: random.Random,
        customer: Customer,
        channel: str,
        at: datetime,
        body: str,
        *,
        campaign_id: int | None = None,
        source_ref: str | None = None,
    ) -> Row:
        """A message a customer sent us."""
        message_id = self.ids.next("customer_communications")
        row = self._base_row(message_id, customer, channel, at, "inbound", "reply", "conversational", body)
        row["campaign_id"] = campaign_id
        row["source_ref"] = source_ref
        row["to_address"] = BUSINESS_ADDRESS[channel]
        row["from_address"] = customer.addresses[channel]
        row["provider_message_id"] = self._provider_id(rng, channel, message_id, customer)
        return row

    def reply(
        self, rng: random.Random, customer: Customer, sent: Row, after: timedelta, body: str
    ) -> Row | None:
        """The customer's answer to `sent`, `after` they saw it; None if it did not arrive or would be too late."""
        seen = sent["read_at"] or sent["delivered_at"]
        if seen is None or seen + after >= self.calendar.end_at:
            return None
        at = (seen + after).replace(microsecond=0)
        sent["replied_at"] = at
        return self.inbound(
            rng,
            customer,
            sent["channel"],
            at,
            body,
            campaign_id=sent["campaign_id"],
            source_ref=sent["source_ref"],
        )

    def emit(self, row: Row) -> None:
        """Queue the row for writing and, for outbound messages, count it in the day's figures.

        As the app counts (storage.message_feed): every figure on the business day the message was sent
        (or failed, or was written), each reached figure once, marked in the row's `counted` bits."""
        self._messages.append(row)
        if row["direction"] != "outbound":
            return
        day = send_day(row["sent_at"], row["failed_at"], row["created_at"], self._zone)
        key = (day, row["channel"], row["provider"], row["campaign_id"] or 0, row["template_id"] or 0)
        figures = self.analytics.get(key)
        if figures is None:
            figures = self.analytics[key] = [0] * FIGURE_SLOTS
        if row["sent_at"] is not None:
            figures[SENT] += 1
            figures[COST] += row["cost_micros"] or 0
            for name, amount in segment_figures(row["segments"], row["encoding"]).items():
                figures[SEGMENT_AT[name]] += amount
        if row["delivered_at"] is not None:
            figures[DELIVERED] += 1
        if row["read_at"] is not None:
            figures[READ] += 1
        if row["failed_at"] is not None:
            figures[FAILED_AT] += 1
        if row["replied_at"] is not None:
            figures[REPLIED] += 1
        row["counted"] = counted_bits(
            row["sent_at"], row["delivered_at"], row["read_at"], row["failed_at"], row["replied_at"]
        )

    def record_opt_out(self, at: datetime, channel: str, campaign_id: int = 0, template_id: int = 0) -> None:
        key = (at.astimezone(self._zone).date(), channel, PROVIDER_OF[channel], campaign_id, template_id)
        figures = self.analytics.setdefault(key, [0] * FIGURE_SLOTS)
        figures[OPTED_OUT] += 1

    def analytics_rows(self) -> list[Row]:
        """The accumulated figures as communication_analytics rows, in key order so ids are stable."""
        rows: list[Row] = []
        updated_at = self.calendar.end_at - timedelta(seconds=1)
        for index, (key, figures) in enumerate(sorted(self.analytics.items())):
            day, channel, provider, campaign_id, template_id = key
            rows.append(
                {
                    "id": index + 1,
                    "day": day,
                    "channel": channel,
                    "provider": provider,
                    "campaign_id": campaign_id,
                    "template_id": template_id,
                    "sent": figures[SENT],
                    "delivered": figures[DELIVERED],
                    "read": figures[READ],
                    "failed": figures[FAILED_AT],
                    "replied": figures[REPLIED],
                    "opted_out": figures[OPTED_OUT],
                    "cost_micros": figures[COST],
                    **{name: figures[at] for name, at in SEGMENT_AT.items()},
                    "updated_at": updated_at,
                }
            )
        return rows

    def _base_row(
        self,
        message_id: int,
        customer: Customer,
        channel: str,
        at: datetime,
        direction: str,
        source: str,
        category: str,
        body: str,
    ) -> Row:
        return {
            "id": message_id,
            "customer_id": customer.id,
            "channel": channel,
            "provider": PROVIDER_OF[channel],
            "direction": direction,
            "source": source,
            "source_ref": None,
            "category": category,
            "idempotency_key": None,
            "template_id": None,
            "campaign_id": None,
            "to_address": "",
            "from_address": None,
            "subject": None,
            "body": body,
            "payload": None,
            "status": "received",
            "status_reason": None,
            "error_code": None,
            "provider_message_id": None,
            "attempts": 0,
            "next_attempt_at": None,
            "claimed_by": None,
            "claimed_until": None,
            "handed_over_at": None,
            "segments": None,
            "encoding": None,
            "cost_micros": None,
            "currency": None,
            "created_at": at,
            "sent_at": None,
            "delivered_at": None,
            "read_at": None,
            "failed_at": None,
            "replied_at": None,
            "counted": 0,
        }

    def _deliver(self, rng: random.Random, row: Row, customer: Customer, category: str) -> None:
        channel = row["channel"]
        end = self.calendar.end_at
        last_second = self._last_second
        statuses, cumulative = self._mix[channel]
        status = weighted(rng, statuses, cumulative)
        row["attempts"] = 1
        if status == "dead":
            row["status"] = "dead"
            row["attempts"] = 5
            row["error_code"] = "timeout"
            row["status_reason"] = "provider did not answer; retries exhausted"
            # Given up on by now at the latest, but never before it was written.
            row["failed_at"] = max(row["created_at"], min(row["created_at"] + _DEAD_AFTER, last_second))
            return
        sent_at = row["created_at"] + timedelta(seconds=rng.randint(1, 20))
        if sent_at >= end:
            # Written in the last seconds before now: handed over at once rather than left for a worker.
            sent_at = row["created_at"]
        row["sent_at"] = sent_at
        row["provider_message_id"] = self._provider_id(rng, channel, row["id"], customer)
        self._price(row, customer, category)
        if status in FAILED:
            code, reason = rng.choice(ERRORS[(channel, status)])
            failed_at = sent_at + timedelta(seconds=rng.randint(2, 90))
            if failed_at < end:
                row["status"] = status
                row["error_code"] = code
                row["status_reason"] = reason
                row["failed_at"] = failed_at
            else:
                row["status"] = "sent"
            return
        row["status"] = "sent"
        if status == "sent":
            return
        latency = rng.lognormvariate(_LOG_DELIVERY_SECONDS[channel], 0.8)
        delivered_at = sent_at + timedelta(milliseconds=int(latency * 1000))
        if delivered_at >= end:
            return
        row["status"] = "delivered"
        row["delivered_at"] = delivered_at
        if status != "read":
            return
        read_at = delivered_at + timedelta(seconds=int(rng.lognormvariate(_LOG_READ_SECONDS, 1.4)))
        if read_at < end:
            row["status"] = "read"
            row["read_at"] = read_at

    def _price(self, row: Row, customer: Customer, category: str) -> None:
        channel = row["channel"]
        if channel == "sms":
            segments, encoding = sms_segments(row["body"])
            row["segments"] = segments
            row["encoding"] = encoding
            row["cost_micros"] = segments * SMS_PRICE[customer.clinic.country]
        elif channel == "whatsapp":
            row["cost_micros"] = WHATSAPP_PRICE[category]
        elif channel == "email":
            row["cost_micros"] = EMAIL_PRICE
        else:
            row["cost_micros"] = 0
        row["currency"] = "USD"

    @staticmethod
    def _provider_id(rng: random.Random, channel: str, message_id: int, customer: Customer) -> str:
        # The message id is part of every provider id, which makes them unique per provider by construction.
        if channel == "sms":
            return f"SM{message_id:010x}{rng.getrandbits(88):022x}"
        if channel == "whatsapp":
            return f"wamid.HBgL{message_id:012d}{rng.getrandbits(64):016X}"
        if channel == "telegram":
            return f"{customer.addresses['telegram']}:{message_id}"
        if channel == "email":
            return f"<{message_id}.{rng.getrandbits(48):012x}@mail.northwind.example>"
        return f"internal-{message_id}"


def _accumulate(weights: tuple[float, ...]) -> tuple[float, ...]:
    total = 0.0
    out: list[float] = []
    for weight in weights:
        total += weight
        out.append(total)
    return tuple(out)
