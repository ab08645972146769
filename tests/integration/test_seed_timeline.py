"""The seeded history ends at the moment the seed runs, and every effect in it comes after its cause."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Date, DateTime, Select, String, cast, exists, func, literal, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from storage.database import Database
from storage.models import (
    Appointment,
    Base,
    BulkMessaging,
    ChatMessage,
    ChatSession,
    CommunicationPreference,
    ConsentRecord,
    Customer,
    CustomerCommunication,
    MessageTemplate,
    Order,
    Payment,
    Refund,
    VideoConsultation,
)
from storage.models.base import UtcDateTime
from storage.seeding import SEEDED_TABLES, SeedPlan, content_checksums, seed_database
from tests.integration.test_cli_and_health import assert_one_line_error, run_cli

#: Moments the seed is told it runs at: a Tuesday at 14:15 in Berlin, with the clinics open and half the
#: day still to come; and 00:40 UTC, when it is already tomorrow in Europe and still evening in New York.
MOMENTS = (
    datetime(2026, 11, 24, 13, 15, 27, 250_000, tzinfo=UTC),
    datetime(2026, 11, 25, 0, 40, 3, tzinfo=UTC),
)

#: Timestamp columns that say when something is planned for, not when it happened: they may lie ahead.
SCHEDULED_FOR: dict[tuple[str, str], str] = {
    ("appointments", "scheduled_at"): "customers book visits days ahead",
    ("video_consultations", "scheduled_at"): "a video room is booked with its appointment",
    ("clinician_time_claims", "starts_at"): "a booked consultation holds its clinician's time ahead",
    ("bulk_messaging", "scheduled_at"): "a campaign can be scheduled to launch later",
    ("customer_communications", "next_attempt_at"): "when a planned or retried message is due to go out",
    ("customer_communications", "claimed_until"): "a worker's claim on a message lasts until then",
    ("report_schedules", "next_due_at"): "the next run of a report schedule",
    ("business_intelligence", "period_end"): "the current period ends later",
    ("trend_analysis", "period_end"): "the current period ends later",
    ("analytics_data", "bucket_start"): "rollups count appointments booked ahead in the days they fall on",
}

CC = CustomerCommunication


moments = pytest.mark.parametrize("now", MOMENTS, ids=lambda moment: f"{moment:%H%M}UTC")


def _plan(now: datetime, seed: int = 23) -> SeedPlan:
    return SeedPlan(customers=500, days=45, seed=seed, end_date=now.date(), now=now)


async def _seed(url: str, plan: SeedPlan) -> None:
    database = Database.connect(url)
    try:
        await seed_database(database, plan)
    finally:
        await database.dispose()


def _at(moment: datetime) -> ColumnElement[datetime]:
    return literal(moment, UtcDateTime())


async def _later_than(database: Database, now: datetime) -> dict[str, str]:
    """Every happened-at column of every table holding a value after `now`: how many rows, and the latest.
    Date columns are the business's days (SeedPlan.business_tz): in the UTC evening its day is already the
    next one."""
    later: dict[str, str] = {}
    async with database.read_sessions() as session:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                if isinstance(column.type, UtcDateTime | DateTime):
                    if (table.name, column.name) in SCHEDULED_FOR:
                        continue
                    bound: Any = _at(now)
                elif isinstance(column.type, Date):
                    bound = literal(now.astimezone(ZoneInfo(SeedPlan.business_tz)).date(), Date())
                else:
                    continue
                count = await session.scalar(select(func.count()).select_from(table).where(column > bound))
                if count:
                    latest = await session.scalar(select(func.max(column)))
                    later[f"{table.name}.{column.name}"] = f"{count} rows, up to {latest}"
    return later


def test_the_allow_list_names_real_timestamp_columns() -> None:
    for table, column in SCHEDULED_FOR:
        assert isinstance(Base.metadata.tables[table].c[column].type, UtcDateTime), (table, column)


@moments
async def test_nothing_that_happened_is_dated_after_the_seed_ran(database: Database, now: datetime) -> None:
    await seed_database(database, _plan(now))
    assert await _later_than(database, now) == {}
    async with database.read_sessions() as session:
        for name in SEEDED_TABLES:
            table = Base.metadata.tables[name]
            assert await session.scalar(select(func.count()).select_from(table)), f"{name} is empty"
        # The history runs up to now: the newest message is hours old at most, not days.
        newest = await session.scalar(select(func.max(CC.created_at)))
    assert newest is not None and now - timedelta(hours=12) < newest <= now


@moments
async def test_what_lies_ahead_is_only_booked_or_planned(database: Database, now: datetime) -> None:
    await seed_database(database, _plan(now))
    async with database.read_sessions() as session:
        appointments = (await session.scalars(select(Appointment))).all()
        videos = (await session.scalars(select(VideoConsultation))).all()
        campaigns = (await session.scalars(select(BulkMessaging))).all()
    ahead = [a for a in appointments if a.scheduled_at > now]
    assert ahead, "no appointments booked ahead"
    assert {a.status for a in ahead} <= {"booked", "confirmed"}
    for appointment in appointments:
        if appointment.status in ("completed", "no_show"):
            assert appointment.scheduled_at + timedelta(minutes=appointment.duration_minutes) <= now
    for video in videos:
        if video.scheduled_at > now:
            assert (video.status, video.started_at, video.ended_at) == ("scheduled", None, None)
        if video.status == "completed":
            assert video.started_at is not None and video.ended_at is not None
            assert video.started_at < video.ended_at <= now
    for campaign in campaigns:
        if campaign.scheduled_at is not None and campaign.scheduled_at > now:
            assert campaign.status in ("draft", "scheduled"), campaign.slug
        if campaign.status == "completed":
            assert campaign.launched_at is not None and campaign.completed_at is not None
            assert campaign.created_at <= campaign.launched_at < campaign.completed_at <= now


def _appointment_ref() -> ColumnElement[str]:
    return literal("appointment:") + cast(Appointment.id, String)


def _order_ref() -> ColumnElement[str]:
    return literal("order:") + cast(Order.id, String)


def _causal_violations(now: datetime) -> dict[str, Select[Any]]:
    """Per rule, a query counting the seeded rows that break it (an effect dated before its cause)."""
    reply, question, later_numbered = aliased(CC), aliased(CC), aliased(CC)
    earlier_record = aliased(ConsentRecord)
    customer_message, staff_message = aliased(ChatMessage), aliased(ChatMessage)
    template = aliased(MessageTemplate)

    def count(*where: Any) -> Select[Any]:
        return select(func.count()).where(*where)

    def about_appointment(template_name: str, *where: Any) -> Select[Any]:
        return count(
            CC.source_ref == _appointment_ref(),
            CC.template_id == template.id,
            template.name == template_name,
            *where,
        ).select_from(CC, Appointment, template)

    def about_order(template_name: str, *where: Any) -> Select[Any]:
        return count(
            CC.source_ref == _order_ref(),
            CC.template_id == template.id,
            template.name == template_name,
            *where,
        ).select_from(CC, Order, template)

    return {
        # Messages and their receipts.
        "message sent before it was written": count(CC.sent_at < CC.created_at),
        "delivery receipt before the send": count(CC.delivered_at < CC.sent_at),
        "delivered without being sent": count(CC.delivered_at.is_not(None), CC.sent_at.is_(None)),
        "read before delivered": count(CC.read_at < CC.delivered_at),
        "failed before it was written": count(CC.failed_at < CC.created_at),
        "failed before it was sent": count(CC.failed_at < CC.sent_at),
        "replied before the message arrived": count(
            CC.replied_at.is_not(None),
            or_(CC.delivered_at.is_(None), CC.replied_at < func.coalesce(CC.read_at, CC.delivered_at)),
        ),
        "reply time without the customer's reply": count(
            CC.replied_at.is_not(None),
            ~exists().where(
                reply.customer_id == CC.customer_id,
                reply.channel == CC.channel,
                reply.direction == "inbound",
                reply.created_at == CC.replied_at,
            ),
        ),
        "staff answer with no customer message before it": count(
            CC.source == "manual",
            ~exists().where(
                question.customer_id == CC.customer_id,
                question.channel == CC.channel,
                question.direction == "inbound",
                question.created_at < CC.created_at,
            ),
        ),
        # Pages list a customer's messages newest first by id, as ids rise with time in a live system.
        "a customer's messages numbered out of time order": count(
            exists().where(
                later_numbered.customer_id == CC.customer_id,
                later_numbered.id > CC.id,
                later_numbered.created_at < CC.created_at,
            )
        ).select_from(CC),
        "message before the customer signed up": count(
            Customer.id == CC.customer_id, CC.created_at < Customer.created_at
        ).select_from(CC, Customer),
        "campaign message outside its campaign's run": count(
            BulkMessaging.id == CC.campaign_id,
            CC.source == "campaign",
            or_(
                CC.created_at < BulkMessaging.launched_at,
                CC.created_at > BulkMessaging.completed_at,
                CC.sent_at > BulkMessaging.completed_at,
            ),
        ).select_from(CC, BulkMessaging),
        # Notifications follow what they are about.
        "booking confirmation before the booking": about_appointment(
            "appointment_booked", CC.created_at < Appointment.created_at
        ),
        "reminder not between booking and visit": about_appointment(
            "appointment_reminder",
            or_(CC.created_at < Appointment.created_at, CC.created_at >= Appointment.scheduled_at),
        ),
        "visit survey before the visit": about_appointment(
            "csat_survey", or_(CC.created_at <= Appointment.scheduled_at, Appointment.status != "completed")
        ),
        "order confirmation before payment": about_order(
            "order_confirmation", or_(Order.paid_at.is_(None), CC.created_at < Order.paid_at)
        ),
        "shipping notice before shipping": about_order(
            "order_shipped", or_(Order.shipped_at.is_(None), CC.created_at < Order.shipped_at)
        ),
        "payment-failed notice before the order": about_order(
            "payment_failed", CC.created_at < Order.created_at
        ),
        # Orders, payments and refunds.
        "order before the customer signed up": count(
            Customer.id == Order.customer_id, Order.created_at < Customer.created_at
        ).select_from(Order, Customer),
        "paid before ordered": count(Order.paid_at < Order.created_at),
        "shipped before paid": count(
            Order.shipped_at.is_not(None), or_(Order.paid_at.is_(None), Order.shipped_at < Order.paid_at)
        ),
        "paid order without a payment time": count(
            Order.status.in_(("paid", "shipped", "delivered", "refunded")), Order.paid_at.is_(None)
        ),
        "paid time without a successful payment then": count(
            Order.paid_at.is_not(None),
            ~exists().where(
                Payment.order_id == Order.id,
                Payment.status == "succeeded",
                Payment.created_at == Order.paid_at,
            ),
        ),
        "payment before its order": count(
            Payment.order_id == Order.id, Payment.created_at < Order.created_at
        ).select_from(Payment, Order),
        "refund before the goods were paid and shipped": count(
            Refund.order_id == Order.id,
            or_(
                Order.paid_at.is_(None),
                Refund.created_at <= Order.paid_at,
                Refund.created_at <= func.coalesce(Order.shipped_at, Order.paid_at),
            ),
        ).select_from(Refund, Order),
        "refund before a payment of its order": count(
            exists().where(Payment.order_id == Refund.order_id, Payment.created_at >= Refund.created_at)
        ).select_from(Refund),
        # Appointments and video rooms.
        "appointment booked before the customer signed up": count(
            Customer.id == Appointment.customer_id, Appointment.created_at < Customer.created_at
        ).select_from(Appointment, Customer),
        "appointment booked after it began": count(Appointment.created_at >= Appointment.scheduled_at),
        "video room out of step with its appointment": count(
            VideoConsultation.appointment_id == Appointment.id,
            or_(
                VideoConsultation.scheduled_at != Appointment.scheduled_at,
                VideoConsultation.created_at > VideoConsultation.scheduled_at,
                VideoConsultation.ended_at < VideoConsultation.started_at,
            ),
        ).select_from(VideoConsultation, Appointment),
        # Chats: the customer writes first, staff answer after, the chat closes after its last message.
        "chat before the customer signed up": count(
            Customer.id == ChatSession.customer_id, ChatSession.started_at < Customer.created_at
        ).select_from(ChatSession, Customer),
        "chat answered before it started": count(ChatSession.first_response_at < ChatSession.started_at),
        "chat closed before its last message": count(ChatSession.closed_at < ChatSession.last_message_at),
        "closed chat without a closing time, or the reverse": count(
            (ChatSession.status == "closed") != ChatSession.closed_at.is_not(None)
        ),
        "chat message outside its chat": count(
            ChatMessage.session_id == ChatSession.id,
            or_(
                ChatMessage.created_at < ChatSession.started_at,
                ChatMessage.created_at > ChatSession.closed_at,
            ),
        ).select_from(ChatMessage, ChatSession),
        "chat's last message time is not its last message": count(
            ChatSession.last_message_at
            != select(func.max(ChatMessage.created_at))
            .where(ChatMessage.session_id == ChatSession.id)
            .scalar_subquery()
        ).select_from(ChatSession),
        "chat's first response is not its first staff message": count(
            func.coalesce(ChatSession.first_response_at, _at(now))
            != func.coalesce(
                select(func.min(staff_message.created_at))
                .where(staff_message.session_id == ChatSession.id, staff_message.author == "staff")
                .scalar_subquery(),
                _at(now),
            )
        ).select_from(ChatSession),
        "staff message with no customer message before it": count(
            ChatMessage.author == "staff",
            ~exists().where(
                customer_message.session_id == ChatMessage.session_id,
                customer_message.author == "customer",
                customer_message.created_at < ChatMessage.created_at,
            ),
        ).select_from(ChatMessage),
        # Consent: given at signup at the earliest, and the ledger written in time order.
        "consent recorded before the customer signed up": count(
            Customer.id == ConsentRecord.customer_id, ConsentRecord.recorded_at < Customer.created_at
        ).select_from(ConsentRecord, Customer),
        "consent ledger out of time order": count(
            exists().where(
                earlier_record.customer_id == ConsentRecord.customer_id,
                earlier_record.id < ConsentRecord.id,
                earlier_record.recorded_at > ConsentRecord.recorded_at,
            )
        ).select_from(ConsentRecord),
        # People and campaigns.
        "customer updated before created": count(Customer.updated_at < Customer.created_at),
        "preferences set before the customer signed up": count(
            Customer.id == CommunicationPreference.customer_id,
            CommunicationPreference.updated_at < Customer.created_at,
        ).select_from(CommunicationPreference, Customer),
        "campaign launched before it was created or completed before launch": count(
            or_(
                BulkMessaging.launched_at < BulkMessaging.created_at,
                BulkMessaging.completed_at < BulkMessaging.launched_at,
            )
        ),
    }


@moments
async def test_every_effect_comes_after_its_cause(database: Database, now: datetime) -> None:
    await seed_database(database, _plan(now))
    broken: dict[str, int] = {}
    async with database.read_sessions() as session:
        for rule, query in _causal_violations(now).items():
            found = int(await session.scalar(query) or 0)
            if found:
                broken[rule] = found
    assert broken == {}


async def test_each_consent_ledger_alternates_from_an_opt_in(database: Database) -> None:
    await seed_database(database, _plan(MOMENTS[0]))
    async with database.read_sessions() as session:
        records = (
            await session.execute(
                select(
                    ConsentRecord.customer_id,
                    ConsentRecord.channel,
                    ConsentRecord.status,
                    ConsentRecord.recorded_at,
                ).order_by(
                    ConsentRecord.customer_id,
                    ConsentRecord.channel,
                    ConsentRecord.recorded_at,
                    ConsentRecord.id,
                )
            )
        ).all()
    last: dict[tuple[int, str], tuple[str, datetime]] = {}
    for customer_id, channel, status, recorded_at in records:
        previous = last.get((customer_id, channel))
        if previous is None:
            assert status == "opted_in", (customer_id, channel)
        else:
            assert status != previous[0] and recorded_at > previous[1], (customer_id, channel)
        last[(customer_id, channel)] = (status, recorded_at)
    assert any(status == "opted_out" for status, _at in last.values())


async def test_a_seed_up_to_a_moment_is_the_same_on_every_run(
    database: Database, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    await seed_database(database, _plan(MOMENTS[0], seed=5))
    first = await content_checksums(database)
    other = _second_database(database, request, tmp_path)
    try:
        await seed_database(other, _plan(MOMENTS[0], seed=5), force=other is database)
        assert await content_checksums(other) == first
    finally:
        if other is not database:
            await other.dispose()


def _second_database(database: Database, request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """Another empty, migrated SQLite file; on PostgreSQL the same database, to be re-seeded with force."""
    if database.dialect != "sqlite":
        return database
    template: Path = request.getfixturevalue("sqlite_template")
    shutil.copy(template, tmp_path / "second.db")
    return Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'second.db'}")


def test_a_plan_refuses_a_now_outside_its_last_day() -> None:
    with pytest.raises(ValueError, match="not on its last day"):
        SeedPlan(customers=5, days=3, seed=1, end_date=date(2026, 11, 24), now=MOMENTS[1])
    with pytest.raises(ValueError, match="timezone-aware"):
        SeedPlan(customers=5, days=3, seed=1, end_date=date(2026, 11, 24), now=datetime(2026, 11, 24, 12))


def test_the_command_line_seeds_today_up_to_the_moment_it_runs(database_url: str) -> None:
    result = run_cli("seed", "--customers", "150", "--days", "4", database_url=database_url)
    finished = datetime.now(UTC)
    assert result.returncode == 0, result.stderr

    async def check() -> dict[str, str]:
        database = Database.connect(database_url)
        try:
            return await _later_than(database, finished)
        finally:
            await database.dispose()

    assert asyncio.run(check()) == {}


def test_the_command_line_refuses_an_end_date_in_the_future(database_url: str) -> None:
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    result = run_cli(
        "seed", "--customers", "5", "--days", "2", "--end-date", f"{tomorrow}", database_url=database_url
    )
    assert_one_line_error(result, f"--end-date {tomorrow} is in the future")


def test_the_command_line_seeds_a_past_day_to_its_end(database_url: str) -> None:
    result = run_cli(
        "seed", "--customers", "40", "--days", "5", "--end-date", "2026-11-01", database_url=database_url
    )
    assert result.returncode == 0, result.stderr

    async def by_command_and_by_plan() -> tuple[dict[str, tuple[int, str]], dict[str, tuple[int, str]]]:
        database = Database.connect(database_url)
        try:
            by_command = await content_checksums(database)
            plan = SeedPlan(customers=40, days=5, seed=1, end_date=date(2026, 11, 1))
            await seed_database(database, plan, force=True)
            return by_command, await content_checksums(database)
        finally:
            await database.dispose()

    by_command, by_plan = asyncio.run(by_command_and_by_plan())
    assert by_command == by_plan
