"""A small clinic with video consultations today and this week, their reminders and joins, for page tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

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
from storage.models.video import ClinicianHours, VideoJoin

BUSINESS_TZ = "Europe/Berlin"
HOSTILE = "<script>alert(1)</script>"
MANAGER = "manager@clinic.example"
AGENT = "agent@clinic.example"
VIEWER = "viewer@clinic.example"


@dataclass(frozen=True)
class VideoWorld:
    staff: dict[str, int]
    anna: int
    ben: int
    today_confirmed: int  # Anna, Clara, 10:00 today: reminders by WhatsApp (delivered) and SMS (not sent)
    today_no_show: int  # Ben, the hostile name, 11:00 today
    later_this_week: int  # Anna, Dan (New York), another day of this week
    next_week: int  # Anna, Clara, a week from today: in no list
    future_booked: int  # Anna, Clara, two days ahead at 15:00: a booking the actions can change
    past_done: int  # Anna, Clara, ten days ago: the patient came
    past_missed: int  # Ben, Dan, ten days ago: a no-show
    service_id: int
    customers: dict[str, int]


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), ZoneInfo(BUSINESS_TZ)).astimezone(UTC)


def other_day_this_week(today: date) -> date:
    return today + timedelta(days=1) if today.weekday() < 6 else today - timedelta(days=1)


def page_moment(real_now: datetime) -> datetime:
    """The world's "now" for page tests: 12:30 in Berlin today, or on Saturday when today is a Sunday.

    Then today's 10:00 and 11:00 consultations have begun and another day of this week is still to
    come, whenever the suite runs (a run at 00:20 on a Sunday once found both assumptions false).
    """
    today = real_now.astimezone(ZoneInfo(BUSINESS_TZ)).date()
    if today.weekday() == 6:
        today -= timedelta(days=1)
    return local(today, 12, 30)


async def build_video_world(database: Database, now: datetime | None = None) -> VideoWorld:
    now = now or datetime.now(UTC)
    today = now.astimezone(ZoneInfo(BUSINESS_TZ)).date()
    async with database.sessions() as session:
        clinic = Location(code="BER", name="Berlin Mitte", country="DE", timezone=BUSINESS_TZ)
        session.add(clinic)
        await session.flush()
        people = {
            MANAGER: StaffUser(email=MANAGER, name="Mia Manager", role="manager", timezone=BUSINESS_TZ),
            AGENT: StaffUser(email=AGENT, name="Alex Agent", role="agent", timezone=BUSINESS_TZ),
            VIEWER: StaffUser(email=VIEWER, name="Vera Viewer", role="viewer", timezone=BUSINESS_TZ),
            "anna@clinic.example": StaffUser(
                email="anna@clinic.example", name="Dr. Anna Vogel", role="agent", location_id=clinic.id
            ),
            "ben@clinic.example": StaffUser(
                email="ben@clinic.example", name="Dr. Ben Roth", role="agent", location_id=clinic.id
            ),
        }
        session.add_all(people.values())
        service = Service(
            code="SKIN-VIDEO",
            name="Video skin consultation",
            kind="video",
            duration_minutes=30,
            price_minor=6900,
            currency="EUR",
        )
        clara = Customer(name="Clara Klein", phone_e164="+4915100000011", timezone=BUSINESS_TZ)
        hostile = Customer(name=HOSTILE, phone_e164="+4915100000012", timezone=BUSINESS_TZ)
        dan = Customer(name="Dan Doe", phone_e164="+12125550100", timezone="America/New_York")
        session.add_all([service, clara, hostile, dan])
        await session.flush()
        anna, ben = people["anna@clinic.example"].id, people["ben@clinic.example"].id
        for weekday in range(7):
            for staff_id in (anna, ben):
                session.add(ClinicianHours(staff_id=staff_id, weekday=weekday, starts=time(8), ends=time(18)))

        async def consultation(customer: Customer, staff_id: int, at: datetime, status: str) -> int:
            appointment = Appointment(
                customer_id=customer.id,
                service_id=service.id,
                staff_id=staff_id,
                location_id=clinic.id,
                kind="video",
                status={"no_show": "no_show", "completed": "completed"}.get(status, "booked"),
                scheduled_at=at,
                duration_minutes=30,
                price_minor=6900,
                currency="EUR",
            )
            session.add(appointment)
            await session.flush()
            row = VideoConsultation(
                appointment_id=appointment.id,
                customer_id=customer.id,
                staff_id=staff_id,
                status=status,
                room_url=f"https://meet.example/room-{appointment.id}",
                room_name=f"room-{appointment.id}",
                scheduled_at=at,
                duration_minutes=30,
                link_token=f"patient-{appointment.id}-{'x' * 20}",
                clinician_token=f"clinician-{appointment.id}-{'y' * 20}",
            )
            if status == "no_show":
                row.no_show_at, row.no_show_by = at + timedelta(minutes=10), "system"
            session.add(row)
            await session.flush()
            return row.id

        confirmed = await consultation(clara, anna, local(today, 10), "confirmed")
        no_show = await consultation(hostile, ben, local(today, 11), "no_show")
        later = await consultation(dan, anna, local(other_day_this_week(today), 9, 30), "scheduled")
        next_week = await consultation(clara, anna, local(today + timedelta(days=7), 10), "scheduled")
        future = await consultation(clara, anna, local(today + timedelta(days=2), 15), "scheduled")
        # Ten days ago (in no list of this week): Anna's patient came, Ben's did not.
        past_done = await consultation(clara, anna, local(today - timedelta(days=10), 10), "completed")
        past_missed = await consultation(dan, ben, local(today - timedelta(days=10), 11), "no_show")
        session.add(VideoJoin(consultation_id=confirmed, who="patient", joined_at=local(today, 9, 55)))
        joined = await session.get(VideoConsultation, confirmed)
        assert joined is not None
        joined.patient_joined_at = local(today, 9, 55)

        rules = {
            minutes: AutomatedNotification(
                name=f"video_reminder_{minutes // 60}h",
                event_type="video.reminder",
                template_name="video_reminder",
                offset_minutes=-minutes,
            )
            for minutes in (1440, 120)
        }
        session.add_all(rules.values())
        await session.flush()

        async def reminder(consultation_id: int, customer: Customer, minutes: int, channel: str, status: str,
                           reason: str | None = None) -> None:  # fmt: skip
            event = BusinessEvent(
                event_type="video.reminder",
                idempotency_key=f"video-reminder:{consultation_id}:1:{minutes}",
                customer_id=customer.id,
                payload={"consultation_id": consultation_id},
                occurred_at=now - timedelta(days=1),
                processed_at=now - timedelta(days=1),
            )
            session.add(event)
            await session.flush()
            sent = status not in ("suppressed", "planned")
            session.add(
                CustomerCommunication(
                    customer_id=customer.id,
                    channel=channel,
                    provider={"sms": "twilio"}.get(channel, channel),
                    direction="outbound",
                    source="notification",
                    source_ref=f"{rules[minutes].id}:{event.id}",
                    idempotency_key=f"notification:{rules[minutes].id}:{event.id}:{customer.id}:{channel}",
                    to_address=customer.phone_e164 or "",
                    body="Your video consultation",
                    status=status,
                    status_reason=reason,
                    sent_at=now - timedelta(hours=20) if sent else None,
                )
            )

        await reminder(confirmed, clara, 1440, "whatsapp", "delivered")
        await reminder(confirmed, clara, 120, "sms", "suppressed", "Quiet hours until 08:00 Europe/Berlin.")
        await reminder(no_show, hostile, 1440, "sms", "delivered")
        await reminder(past_done, clara, 1440, "whatsapp", "read")
        await reminder(past_missed, dan, 1440, "telegram", "delivered")
        await session.commit()
        staff = {email: row.id for email, row in people.items()}
        customers = {"clara": clara.id, "hostile": hostile.id, "dan": dan.id}
    return VideoWorld(
        staff,
        anna,
        ben,
        confirmed,
        no_show,
        later,
        next_week,
        future,
        past_done,
        past_missed,
        service.id,
        customers,
    )


async def add_catalogue_rules(database: Database, *event_types: str) -> None:
    """The demo catalogue's notification rules for `event_types`, with their templates, switched on: what a
    fresh install has, so a booking or an offer is told the channel its message will really take."""
    from sqlalchemy import insert, select, update

    from storage.models import AutomatedNotification, MessageTemplate
    from storage.seeding.catalogue import notification_rows, template_rows

    now = datetime.now(UTC)
    async with database.sessions() as session:
        rules = [row for row in notification_rows(now, created_by=None) if row["event_type"] in event_types]
        wanted = {row["template_name"] for row in rules}
        have = set(
            await session.scalars(select(MessageTemplate.name).where(MessageTemplate.name.in_(wanted)))
        )
        rows, _ = template_rows(now)
        for row in rows:
            if row["name"] in wanted - have:
                await session.execute(
                    insert(MessageTemplate).values({k: v for k, v in row.items() if k != "id"})
                )
        known = set(await session.scalars(select(AutomatedNotification.name)))
        for row in rules:
            if row["name"] in known:
                await session.execute(
                    update(AutomatedNotification)
                    .where(AutomatedNotification.name == row["name"])
                    .values(enabled=True)
                )
            else:
                await session.execute(
                    insert(AutomatedNotification).values({k: v for k, v in row.items() if k != "id"})
                )
        await session.commit()
