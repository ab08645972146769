"""The no-show rate by service, clinician, location and reminder channel equals a recount from the raw rows,
from the raw facts and from the rollups, on both engines."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.commands.questions import parse_question
from reports.periods import TimeRange
from reports.query import MetricQuery, run_query
from reports.rollups import rebuild_rollups
from storage.analytics.facts import SETTLED_AFTER
from storage.database import Database
from storage.models import (
    Appointment,
    AutomatedNotification,
    BusinessEvent,
    Customer,
    CustomerCommunication,
    Location,
    Service,
    StaffUser,
    VideoConsultation,
)

TZ = "Europe/Berlin"
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
SENT = {"queued", "sent", "delivered", "read", "failed", "undelivered"}
#: September to November in the business's own days, so the day rollups can answer it.
PERIOD = TimeRange(
    datetime(2026, 9, 1, tzinfo=ZoneInfo(TZ)).astimezone(UTC),
    datetime(2026, 12, 1, tzinfo=ZoneInfo(TZ)).astimezone(UTC),
    "Sep to Nov",
    TZ,
)


async def _build_clinic(database: Database) -> None:
    """Two clinics, three clinicians, three services and 240 appointments over the period: some no-shows,
    some cancelled, reminders as the event feed keys them ("appointment.reminder:appointment:{id}") and
    video reminders as domain.video.reminders records them ("video-reminder:{consultation}:..." business
    events a rule turned into messages). Some reminders were suppressed (they went nowhere), some are
    keyed for another consultation (they must not count), some appointments got two (the later counts).
    A third of the feed's reminders are posted as "appointment.reminder" events a rule turned into messages."""
    rng = random.Random(7)
    async with database.sessions() as session:
        clinics = [Location(code=c, name=c, country="DE", timezone=TZ) for c in ("BER", "HAM")]
        services = [
            Service(code=code, name=code, kind=kind, duration_minutes=30, price_minor=5000, currency="EUR")
            for code, kind in (("SKIN", "in_person"), ("SKIN-VIDEO", "video"), ("NUTRI-VIDEO", "video"))
        ]
        session.add_all([*clinics, *services])
        await session.flush()
        staff = [
            StaffUser(email=f"{n}@clinic.example", name=n, role="agent", location_id=clinics[i % 2].id)
            for i, n in enumerate(("Dr. Anna Vogel", "Dr. Ben Roth", "Dr. Cem Aydin"))
        ]
        customers = [Customer(name=f"Patient {i}", timezone=TZ) for i in range(40)]
        rule = AutomatedNotification(name="video_reminder", event_type="video.reminder", template_name="v")
        clinic_rule = AutomatedNotification(
            name="appointment_reminder", event_type="appointment.reminder", template_name="a"
        )
        session.add_all([*staff, *customers, rule, clinic_rule])
        await session.flush()
        for _ in range(240):
            service, clinician, customer = rng.choice(services), rng.choice(staff), rng.choice(customers)
            at = PERIOD.start + timedelta(minutes=30 * rng.randrange(0, 91 * 48))
            status = rng.choices(["completed", "no_show", "cancelled", "booked"], [6, 3, 1, 1])[0]
            appointment = Appointment(
                customer_id=customer.id,
                service_id=service.id,
                staff_id=clinician.id if rng.random() < 0.95 else None,
                location_id=clinician.location_id,
                kind=service.kind,
                status=status,
                scheduled_at=at,
                duration_minutes=30,
                price_minor=5000,
                currency="EUR",
            )
            session.add(appointment)
            await session.flush()
            if rng.random() < 0.6:  # a day-before reminder through the event feed
                channel = rng.choice(["sms", "whatsapp", "email"])
                sent = rng.choice(["delivered", "delivered", "sent", "failed", "suppressed"])
                key = f"appointment.reminder:appointment:{appointment.id}"
                if appointment.id % 3:  # sent under the key
                    session.add(_message(customer.id, channel, sent, at - timedelta(days=1), None, key))
                else:  # posted as an event under the key, which the clinic's rule turned into the message
                    feed_event = BusinessEvent(
                        event_type="appointment.reminder",
                        idempotency_key=key,
                        customer_id=customer.id,
                        payload={},
                        occurred_at=at - timedelta(days=1),
                    )
                    session.add(feed_event)
                    await session.flush()
                    session.add(
                        _message(customer.id, channel, sent, at - timedelta(days=1),
                                 f"{clinic_rule.id}:{feed_event.id}", f"rule:{clinic_rule.id}:{feed_event.id}")
                    )  # fmt: skip
            if service.kind != "video":
                continue
            video = VideoConsultation(
                appointment_id=appointment.id,
                customer_id=customer.id,
                staff_id=appointment.staff_id,
                status={"booked": "scheduled"}.get(status, status),
                room_url="https://meet.example/r",
                scheduled_at=at,
            )
            session.add(video)
            await session.flush()
            for minutes in rng.sample([1440, 120], rng.randint(0, 2)):
                keyed_for = video.id + 100_000 if rng.random() < 0.1 else video.id
                event = BusinessEvent(
                    event_type="video.reminder",
                    idempotency_key=f"video-reminder:{keyed_for}:1:{minutes}",
                    customer_id=customer.id,
                    payload={},
                    occurred_at=at - timedelta(minutes=minutes),
                )
                session.add(event)
                await session.flush()
                channel = rng.choice(["telegram", "whatsapp", "sms"])
                sent = rng.choice(["delivered", "read", "queued", "suppressed"])
                session.add(
                    _message(
                        customer.id, channel, sent, at - timedelta(minutes=minutes), f"{rule.id}:{event.id}"
                    )
                )
        await session.commit()


def _message(
    customer_id: int, channel: str, status: str, at: datetime, source_ref: str | None, key: str | None = None
) -> CustomerCommunication:
    return CustomerCommunication(
        customer_id=customer_id,
        channel=channel,
        provider=channel,
        direction="outbound",
        source="notification",
        source_ref=source_ref or key,
        idempotency_key=key,
        to_address="x",
        body="A reminder",
        status=status,
        created_at=at,
    )


async def _recount(database: Database, dimension: str) -> dict[str, tuple[int, int]]:
    """(no-shows, due) per dimension value, from plain selects and Python."""
    async with database.read_sessions() as session:
        appointments = list(await session.scalars(select(Appointment)))
        services = {s.id: s.code for s in await session.scalars(select(Service))}
        staff = {s.id: s.name for s in await session.scalars(select(StaffUser))}
        locations = {loc.id: loc.code for loc in await session.scalars(select(Location))}
        videos = {v.appointment_id: v.id for v in await session.scalars(select(VideoConsultation))}
        events = {e.id: e for e in await session.scalars(select(BusinessEvent))}
        messages = list(
            await session.scalars(
                select(CustomerCommunication).where(CustomerCommunication.source == "notification")
            )
        )
    by_customer: dict[int | None, list[CustomerCommunication]] = defaultdict(list)
    for message in messages:
        by_customer[message.customer_id].append(message)

    def reminder_channel(appointment: Appointment) -> str:
        video = videos.get(appointment.id)
        reminders = []
        for message in by_customer[appointment.customer_id]:
            if message.direction != "outbound" or message.status not in SENT:
                continue
            if message.idempotency_key == f"appointment.reminder:appointment:{appointment.id}":
                reminders.append(message)
                continue
            event_id = (message.source_ref or "").partition(":")[2]
            event = events.get(int(event_id)) if event_id.isdigit() else None
            if (
                event is not None
                and event.event_type == "appointment.reminder"
                and event.idempotency_key == f"appointment.reminder:appointment:{appointment.id}"
            ):
                reminders.append(message)
                continue
            if (
                video is not None
                and event is not None
                and event.event_type == "video.reminder"
                and event.idempotency_key.startswith(f"video-reminder:{video}:")
            ):
                reminders.append(message)
        if not reminders:
            return "none"
        return max(reminders, key=lambda m: (m.created_at, m.id)).channel

    def value_of(appointment: Appointment) -> str:
        if dimension == "service":
            return services[appointment.service_id]
        if dimension == "staff":
            return staff[appointment.staff_id] if appointment.staff_id else "(none)"
        if dimension == "location":
            return locations[appointment.location_id] if appointment.location_id else "(none)"
        return reminder_channel(appointment)

    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for appointment in appointments:
        at = appointment.scheduled_at
        if appointment.status not in ("completed", "no_show") or not PERIOD.start <= at < PERIOD.end:
            continue
        cell = counts[value_of(appointment)]
        cell[0] += appointment.status == "no_show"
        cell[1] += 1
    return {value: (n, d) for value, (n, d) in counts.items()}


async def _answer(database: Database, dimension: str, *, rollups: bool) -> dict[str, float | None]:
    result = await run_query(
        database,
        MetricQuery(("no_show_rate",), PERIOD, dimensions=(dimension,)),
        # Asked once the period has settled (appointments keep changing for two days after): the rollups answer.
        now=NOW + SETTLED_AFTER,
        business_tz=TZ,
        prefer_rollups=rollups,
    )
    assert result.source == ("rollup" if rollups else "raw")
    return {str(s.dimension_value): s.total for s in result.series}


@pytest.fixture
async def seeded(database: Database) -> Database:
    await _build_clinic(database)
    return database


@pytest.mark.parametrize("dimension", ["service", "staff", "location", "reminder_channel"])
async def test_no_show_rate_by_dimension_matches_a_recount(seeded: Database, dimension: str) -> None:
    expected = await _recount(seeded, dimension)
    assert len(expected) >= 2, f"the data splits by {dimension}"
    raw = await _answer(seeded, dimension, rollups=False)
    assert set(raw) == set(expected)
    for value, (no_shows, due) in expected.items():
        assert raw[value] == pytest.approx(no_shows / due), value
    await rebuild_rollups(seeded, grains=("day", "month"), business_tz=TZ)
    assert await _answer(seeded, dimension, rollups=True) == pytest.approx(raw)


async def test_the_reminder_channel_is_the_last_reminder_that_went_out(seeded: Database) -> None:
    counted = await _recount(seeded, "reminder_channel")
    answered = await _answer(seeded, "reminder_channel", rollups=False)
    assert {"telegram", "whatsapp", "sms", "email", "none"} <= set(counted), "every kind of reminder is there"
    assert "none" in answered, "appointments without a reminder have their own row, 'none'"
    assert "(none)" not in answered
    # The suppressed reminders went nowhere, so SMS counts only reminders that were handed over.
    for channel in answered:
        assert channel in {"none", "sms", "whatsapp", "email", "telegram"}


def test_the_bot_reads_no_show_rate_by_clinician_and_by_reminder_channel() -> None:
    today = date(2026, 12, 1)
    by_clinician = parse_question("no-show rate by clinician last month", today)
    assert by_clinician is not None and by_clinician.metric == "no_show_rate"
    assert by_clinician.dimension == "staff"
    by_channel = parse_question("no-show rate by reminder channel this quarter", today)
    assert by_channel is not None and by_channel.dimension == "reminder_channel"
    # "channel" is the channel the reminder went on, the only channel a no-show rate has.
    by_plain_channel = parse_question("no-show rate by channel this quarter", today)
    assert by_plain_channel is not None and by_plain_channel.dimension == "reminder_channel"
    reminded = parse_question("no-show rate for patients reminded on whatsapp last quarter", today)
    assert reminded is not None and [(f.dimension, f.value) for f in reminded.filters] == [
        ("reminder_channel", "whatsapp")
    ]
    unreminded = parse_question("appointments without a reminder last month", today)
    assert unreminded is not None and [(f.dimension, f.value) for f in unreminded.filters] == [
        ("reminder_channel", "none")
    ]
    messages = parse_question("messages sent by channel this quarter", today)
    assert messages is not None and messages.dimension == "channel"
    by_location = parse_question("no show rate per clinic last 90 days", today)
    assert by_location is not None and by_location.dimension == "location"


async def test_the_highest_part_of_a_rate_says_when_it_was_counted_from_few(seeded: Database) -> None:
    """ "highest Telegram (from only 4)": a rate of a handful of appointments is said to be one."""
    from reports.answer import FEW, answer

    for dimension in ("reminder_channel", "service"):
        expected = await _recount(seeded, dimension)
        reply = await answer(
            seeded,
            MetricQuery(("no_show_rate",), PERIOD, dimensions=(dimension,)),
            now=NOW,
            business_tz=TZ,
        )
        leader = reply.result.series[0]
        _no_shows, due = expected[str(leader.dimension_value)]
        assert leader.total_basis == due
        said = f"(from only {due})"
        assert (said in reply.summary) == (due < FEW), reply.summary


async def test_how_many_no_shows_is_answered_with_the_counts_beside_the_rate(seeded: Database) -> None:
    """ "how many no-shows last month?": the rate says the no-shows and the appointments due it counts."""
    from reports.answer import answer

    by_service = await _recount(seeded, "service")
    no_shows, due = (sum(n for n, _ in by_service.values()), sum(d for _, d in by_service.values()))
    assert no_shows >= 2 and due > no_shows
    reply = await answer(seeded, MetricQuery(("no_show_rate",), PERIOD), now=NOW, business_tz=TZ)
    assert (
        f": {100 * no_shows / due:.1f}% ({no_shows} no-shows of {due} appointments due)" in reply.summary
    ), reply.summary
