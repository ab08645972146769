"""A customer's orders (with payments and refunds) and appointments (with video consultations)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate
from zoneinfo import ZoneInfo

from domain.video.model import DEFAULT_NO_SHOW_AFTER
from storage.seeding.catalogue import (
    CLINICS,
    IN_PERSON_SERVICES,
    PRODUCT_LINES,
    RULE_CHANNELS,
    VIDEO_SERVICES,
    Row,
)
from storage.seeding.people import APPOINTMENT_RATE, ORDER_RATE, Customer
from storage.seeding.plan import weighted
from storage.seeding.video import consultation_links
from storage.seeding.world import World, poisson

#: Where orders come from when no campaign prompted them.
_SOURCES = (("web", 0.58), ("in_clinic", 0.16), ("phone", 0.05), ("whatsapp", 0.08), ("email", 0.05),
            ("sms", 0.03), ("telegram", 0.02), ("chat", 0.03))  # fmt: skip
_SOURCE_NAMES, _SOURCE_WEIGHTS = zip(*_SOURCES, strict=True)
_SOURCE_CUMULATIVE = tuple(accumulate(_SOURCE_WEIGHTS))
_ATTRIBUTION = timedelta(hours=72)
_FAILURES = ("card_declined", "insufficient_funds", "expired_card", "authentication_required")
#: How late a video call starts and how long it overruns, at most.
_VIDEO_LATE_MINUTES, _VIDEO_OVERRUN_MINUTES = 7, 8


@dataclass(frozen=True)
class Touch:
    """A campaign message that reached the customer, for attributing the orders that follow it."""

    at: datetime
    campaign_id: int
    channel: str


def _money(amount_minor: int, locale: str) -> str:
    euros, cents = divmod(amount_minor, 100)
    return f"{euros},{cents:02d} €" if locale == "de" else f"€{euros}.{cents:02d}"


def _notify(world: World, rng: random.Random, customer: Customer, rule: str, template: str, at: datetime,
            key: str, variables: dict[str, object], ref: str) -> None:  # fmt: skip
    if at >= world.calendar.end_at:
        return
    channel = customer.reachable_on(RULE_CHANNELS[rule], at)
    if channel is None:
        return
    row = world.messenger.outbound(
        rng, customer, channel, at, source="notification", key=key, template=template,
        variables={"first_name": customer.first_name, **variables}, source_ref=ref,
    )  # fmt: skip
    world.messenger.emit(row)


def orders(world: World, rng: random.Random, customer: Customer, touches: list[Touch]) -> None:
    calendar = world.calendar
    count = poisson(rng, world.expected(ORDER_RATE[customer.segment], customer, calendar.online_cumulative))
    for _ in range(count):
        index = calendar.pick_day(
            rng, calendar.online_cumulative, customer.active_from, customer.active_until
        )
        if index is None:
            continue
        source = weighted(rng, _SOURCE_NAMES, _SOURCE_CUMULATIVE)
        moment = (
            world.clinic_moment(rng, customer, index)
            if source == "in_clinic"
            else world.online_moment(rng, customer, index)
        )
        at = world.after_signup(customer, moment, rng)
        if at is None:
            continue
        touch = None
        if source != "in_clinic":
            # The latest campaign message in the 72 hours before the order, if any.
            recent = next((t for t in reversed(touches) if t.at < at <= t.at + _ATTRIBUTION), None)
            touch = recent if recent is not None and rng.random() < 0.3 else None
        place_order(world, rng, customer, at, touch.channel if touch else source, touch)
    for touch in touches:
        if rng.random() < (0.06 if customer.segment == "vip" else 0.03):
            at = touch.at + timedelta(minutes=rng.randint(5, 48 * 60))
            if at < calendar.end_at - timedelta(minutes=2):
                place_order(world, rng, customer, at, touch.channel, touch)


def _basket(rng: random.Random, customer: Customer) -> int:
    weights = [share * (2.5 if line in customer.tags else 1.0) for line, _low, _high, share in PRODUCT_LINES]
    total = 0
    for _ in range(rng.choices((1, 2, 3), (0.6, 0.3, 0.1))[0]):
        _line, low, high, _share = rng.choices(PRODUCT_LINES, weights)[0]
        total += rng.randrange(low // 100, high // 100 + 1) * 100 - 10
    return total


def place_order(world: World, rng: random.Random, customer: Customer, at: datetime, source: str,
                touch: Touch | None) -> None:  # fmt: skip
    """One order from checkout to delivery (or failure), with its payments, refund and notifications."""
    end = world.calendar.end_at
    order_id = world.ids.next("orders")
    number = f"NW-{at:%y%m}-{order_id:07d}"
    amount = _basket(rng, customer)
    row: Row = {
        "id": order_id, "order_number": number, "customer_id": customer.id, "location_id": customer.clinic.id,
        "status": "pending", "source_channel": source, "campaign_id": touch.campaign_id if touch else None,
        "amount_minor": amount, "currency": "EUR", "created_at": at, "paid_at": None, "shipped_at": None,
    }  # fmt: skip
    world.sink.add("orders", row)
    ref = f"order:{order_id}"
    variables: dict[str, object] = {
        "order_number": number,
        "amount": _money(amount, customer.locale),
        "tracking_url": f"https://track.northwind.example/{number}",
        "payment_url": f"https://northwind.example/pay/{number}",
    }
    method = "card_present" if source == "in_clinic" else rng.choice(("card", "card", "paypal", "sepa"))
    paid_at = _payments(world, rng, customer, order_id, at, amount, method, variables, ref)
    if paid_at is None:
        row["status"] = "cancelled" if at + timedelta(days=2) < end else "pending"
        return
    row.update(status="paid", paid_at=paid_at)
    _notify(world, rng, customer, "order_confirmation", "order_confirmation", paid_at + timedelta(seconds=5),
            f"order.created:{ref}", variables, ref)  # fmt: skip
    delivered_at = paid_at
    if source != "in_clinic":
        shipped_at = paid_at + timedelta(minutes=rng.randint(180, 40 * 60))
        if shipped_at >= end:
            return
        row.update(status="shipped", shipped_at=shipped_at)
        _notify(world, rng, customer, "order_shipped", "order_shipped", shipped_at, f"order.shipped:{ref}",
                variables, ref)  # fmt: skip
        delivered_at = shipped_at + timedelta(hours=rng.randint(30, 100))
        if delivered_at >= end:
            return
    row["status"] = "delivered"
    if rng.random() < 0.04:
        _refund(world, rng, row, delivered_at)


def _payments(world: World, rng: random.Random, customer: Customer, order_id: int, at: datetime, amount: int,
              method: str, variables: dict[str, object], ref: str) -> datetime | None:  # fmt: skip
    """Payment attempts; the time the order was paid, or None when it never was."""
    end = world.calendar.end_at

    def payment(status: str, when: datetime, reason: str | None = None) -> None:
        world.sink.add(
            "payments",
            {"id": world.ids.next("payments"), "order_id": order_id, "status": status, "method": method,
             "amount_minor": amount, "currency": "EUR", "failure_reason": reason, "created_at": when},
        )  # fmt: skip

    first = at + timedelta(seconds=rng.randint(10, 90))
    if first >= end or (end - at < timedelta(hours=1) and rng.random() < 0.5):
        payment("pending", min(first, end - timedelta(seconds=1)))
        return None
    if rng.random() < 0.05:
        payment("failed", first, rng.choice(_FAILURES))
        _notify(world, rng, customer, "payment_failed", "payment_failed", first + timedelta(seconds=30),
                f"payment.failed:{ref}", variables, ref)  # fmt: skip
        if rng.random() >= 0.8:
            return None
        first += timedelta(minutes=rng.randint(10, 30 * 60))
        if first >= end:
            return None
    payment("succeeded", first)
    return first


def _refund(world: World, rng: random.Random, order: Row, delivered_at: datetime) -> None:
    at = delivered_at + timedelta(days=rng.randint(2, 20), minutes=rng.randrange(600))
    if at >= world.calendar.end_at:
        return
    amount = int(order["amount_minor"])
    full = rng.random() < 0.6
    if full:
        order["status"] = "refunded"
    refund_amount = amount if full else max(100, amount * rng.randint(20, 50) // 100)
    world.sink.add(
        "refunds",
        {"id": world.ids.next("refunds"), "order_id": order["id"], "payment_id": None,
         "amount_minor": refund_amount, "currency": "EUR",
         "reason": rng.choice(("customer_request", "damaged_in_transit", "allergic_reaction", "wrong_item")),
         "created_at": at},
    )  # fmt: skip


_REPLIES_TO_REMINDER = ("C", "C", "Yes, see you tomorrow", "R", "Can I come 30 minutes later?")


def appointments(world: World, rng: random.Random, customer: Customer) -> None:
    calendar = world.calendar
    rate = APPOINTMENT_RATE[customer.segment]
    video_share = 0.7 if "video-first" in customer.tags else 0.22
    for _ in range(poisson(rng, world.expected(rate, customer, calendar.clinic_cumulative))):
        index = calendar.pick_day(
            rng, calendar.clinic_cumulative, customer.active_from, customer.active_until
        )
        if index is not None:
            _appointment(world, rng, customer, index, rng.random() < video_share)
    if customer.segment != "lapsed":
        for _ in range(poisson(rng, rate / 30 * 12)):  # already booked for the coming two weeks
            index = calendar.days + rng.randrange(14)
            if calendar.day(index).weekday() != 6:
                _appointment(world, rng, customer, index, rng.random() < video_share)


def _appointment(world: World, rng: random.Random, customer: Customer, index: int, video: bool) -> None:
    end = world.calendar.end_at
    service = rng.choice(VIDEO_SERVICES if video else IN_PERSON_SERVICES)
    scheduled_at = world.clinic_moment(rng, customer, index)
    lead = timedelta(
        hours=rng.choice((2, 20, 30, 50, 74, 120, 170, 240, 340, 500)), minutes=rng.randrange(60)
    )
    created_at = max(scheduled_at - lead, customer.created_at + timedelta(minutes=rng.randint(2, 30)))
    if created_at >= min(scheduled_at, end - timedelta(minutes=5)):
        return
    agents = world.agents_by_clinic[customer.clinic.id]
    if video and rng.random() < 0.4:
        agents = world.agents_by_clinic[rng.choice(CLINICS).id]
    staff_id = rng.choice(agents)
    # A visit counts as over (completed or missed) only once even a late, overrunning video call has ended.
    over_by = timedelta(
        minutes=service.duration_minutes + (_VIDEO_LATE_MINUTES + _VIDEO_OVERRUN_MINUTES if video else 0)
    )
    past = scheduled_at + over_by < end
    draw = rng.random()
    status = ("no_show" if draw < 0.1 else "cancelled" if draw < 0.17 else "completed") if past else "booked"
    appointment_id = world.ids.next("appointments")
    ref = f"appointment:{appointment_id}"
    row: Row = {
        "id": appointment_id, "customer_id": customer.id, "service_id": service.id, "staff_id": staff_id,
        "location_id": world.agent_clinic[staff_id], "kind": "video" if video else "in_person",
        "status": status, "scheduled_at": scheduled_at, "duration_minutes": service.duration_minutes,
        "price_minor": service.price_minor, "currency": "EUR", "created_at": created_at,
    }  # fmt: skip
    world.sink.add("appointments", row)
    # A video consultation is held by a clinician of the customer's clinic, online.
    clinic = f"{customer.clinic.name} (online)" if video else customer.clinic.name
    local = scheduled_at.astimezone(ZoneInfo(customer.timezone))
    when = local.strftime("%d.%m. %H:%M") if customer.locale == "de" else f"{local.day} {local:%b, %H:%M}"
    variables: dict[str, object] = {
        "service": service.name_for(customer.locale),
        "clinic": clinic,
        "appointment_time": when,
    }
    _notify(world, rng, customer, "appointment_booked", "appointment_booked", created_at + timedelta(seconds=20),
            f"appointment.booked:{ref}", variables, ref)  # fmt: skip
    _reminder(world, rng, customer, row, variables, ref)
    if status == "completed" and rng.random() < 0.3:
        _notify(world, rng, customer, "csat_after_visit", "csat_survey",
                scheduled_at + timedelta(minutes=service.duration_minutes + 120),
                f"appointment.completed:{ref}", {"clinic": clinic}, ref)  # fmt: skip
    if video:
        _video_room(world, rng, row)


def _reminder(world: World, rng: random.Random, customer: Customer, appointment: Row,
              variables: dict[str, object], ref: str) -> None:  # fmt: skip
    scheduled_at: datetime = appointment["scheduled_at"]
    at = scheduled_at - timedelta(minutes=1440)
    cancelled_early = appointment["status"] == "cancelled" and rng.random() < 0.6
    if at <= appointment["created_at"] or at >= world.calendar.end_at or cancelled_early:
        return
    channel = customer.reachable_on(RULE_CHANNELS["appointment_reminder_24h"], at)
    if channel is None:
        return
    messenger = world.messenger
    row = messenger.outbound(
        rng, customer, channel, at, source="notification", key=f"appointment.reminder:{ref}",
        template="appointment_reminder", variables={"first_name": customer.first_name, **variables}, source_ref=ref,
    )  # fmt: skip
    reply = None
    if channel != "email" and rng.random() < 0.35:
        body = rng.choice(_REPLIES_TO_REMINDER)
        reply = messenger.reply(rng, customer, row, timedelta(minutes=rng.randint(1, 240)), body)
        if reply is not None and body.startswith(("C", "Yes")) and appointment["status"] == "booked":
            appointment["status"] = "confirmed"
    messenger.emit(row)
    if reply is not None:
        messenger.emit(reply)


_VIDEO_STATUS = {"completed": "completed", "no_show": "no_show", "cancelled": "cancelled",
                 "booked": "scheduled", "confirmed": "scheduled"}  # fmt: skip


def _video_room(world: World, rng: random.Random, appointment: Row) -> None:
    scheduled_at: datetime = appointment["scheduled_at"]
    duration = int(appointment["duration_minutes"])
    status = _VIDEO_STATUS[str(appointment["status"])]
    started_at = ended_at = None
    if status == "completed":
        started_at = scheduled_at + timedelta(seconds=rng.randint(-120, _VIDEO_LATE_MINUTES * 60))
        ended_at = started_at + timedelta(minutes=duration + rng.randint(-5, _VIDEO_OVERRUN_MINUTES))
    consultation_id = world.ids.next("video_consultations")
    links = consultation_links(world.seed, consultation_id, f"{rng.getrandbits(64):016x}")
    joined = started_at if status == "completed" else None
    world.sink.add(
        "video_consultations",
        {"id": consultation_id, "appointment_id": appointment["id"],
         "customer_id": appointment["customer_id"], "staff_id": appointment["staff_id"], "status": status,
         "scheduled_at": scheduled_at, "started_at": started_at, "ended_at": ended_at,
         "created_at": appointment["created_at"], "duration_minutes": duration, **links, "version": 1,
         "confirmed_at": None, "patient_joined_at": joined, "clinician_joined_at": joined,
         "no_show_at": scheduled_at + DEFAULT_NO_SHOW_AFTER if status == "no_show" else None,
         "no_show_by": "system" if status == "no_show" else None, "rebook_offered_at": None},
    )  # fmt: skip
