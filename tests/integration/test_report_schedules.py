"""Scheduled reports: exactly one delivery per (schedule, due time, destination), however many schedulers race."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, column, func, select, table, text

from api.sandbox.config import SandboxConfig
from api.sandbox.server import RunningSandbox, run_sandbox
from reports.destinations import ChannelCheck, EmailDestination, RenderedReport, TelegramDestination
from reports.scheduler import DEFAULT_LEASE, LeaseTooShort, ScheduleRunner, delivery_key
from reports.schedules import ScheduleError, next_due, plan_runs
from storage import migrate
from storage.database import Database
from storage.models import AuditLog, CustomReport, ReportDelivery, ReportSchedule
from storage.models.base import UtcDateTime
from storage.schedules import DueSchedule, SqlScheduleStore

DUE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # Monday 08:00 in Europe/Berlin
CREDENTIALS = SandboxConfig()


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with run_sandbox(replace(CREDENTIALS, port=0, smtp_port=0, send_status_webhooks=False)) as running:
        yield running


async def add_schedule(
    database: Database,
    *,
    cron: str = "0 8 * * mon",
    policy: str = "deliver_late_once",
    next_due_at: datetime = DUE,
    destination: str = "424242",
    kind: str = "telegram",
) -> int:
    async with database.sessions() as session:
        # Only the columns every schema version has: some tests add schedules to a downgraded database.
        owner_id = (
            await session.execute(
                text(
                    "INSERT INTO staff_users (email, name, role, timezone, locale, active, created_at) "
                    "VALUES ('maria@northwind.example', 'Maria', 'manager', 'UTC', 'en', :active, :created) "
                    "RETURNING id"
                ).bindparams(bindparam("active", True), bindparam("created", DUE, type_=UtcDateTime()))
            )
        ).scalar_one()
        report = CustomReport(
            slug="weekly-revenue",
            name="Weekly revenue",
            owner_id=owner_id,
            definition={"query": {"metrics": ["revenue"]}},
        )
        session.add(report)
        await session.flush()
        schedule = ReportSchedule(
            report_id=report.id,
            owner_id=owner_id,
            cron=cron,
            timezone="Europe/Berlin",
            destination_kind=kind,
            destination=destination,
            missed_run_policy=policy,
            next_due_at=next_due_at,
        )
        session.add(schedule)
        await session.commit()
        return schedule.id


async def render(schedule: DueSchedule, due_at: datetime, late: bool) -> RenderedReport:
    from reports.charts.render import render_png
    from reports.charts.spec import ChartSpec, KpiTile

    spec = ChartSpec(
        kind="kpi_tile",
        title=schedule.report_name,
        period_label=f"week to {due_at:%d %b %Y}",
        data_as_of=due_at,
        unit="count",
        kpi=KpiTile(value=42.0),
    )
    return RenderedReport(
        schedule.report_name,
        "42 things happened.",
        render_png(spec),
        b"a,b\n1,2\n",
        due_at,
        late,
        schedule.report_slug,
        schedule.timezone,
    )


def runner(database: Database, sandbox: RunningSandbox, now: datetime, worker: str) -> ScheduleRunner:
    return ScheduleRunner(
        database=database,
        render=render,
        destinations={
            "telegram": TelegramDestination(CREDENTIALS.telegram_bot_token, sandbox.base_url),
            "email": EmailDestination(
                "127.0.0.1", sandbox.smtp_port, None, None, "reports@northwind.example"
            ),
        },
        worker_id=worker,
        clock=lambda: now,
        retry_base=timedelta(seconds=0),
    )


def photos(sandbox: RunningSandbox) -> list[dict[str, object]]:
    return [c for c in sandbox.state.telegram_calls if str(c["method"]).lower() == "sendphoto"]


async def test_three_schedulers_racing_deliver_each_due_run_exactly_once(
    database_url: str, sandbox: RunningSandbox
) -> None:
    databases = [Database.connect(database_url) for _ in range(3)]
    try:
        await add_schedule(databases[0])
        now = DUE + timedelta(seconds=20)
        runners = [runner(db, sandbox, now, f"scheduler-{i}") for i, db in enumerate(databases)]
        for _round in range(3):  # three ticks each, all at once
            await asyncio.gather(*(r.tick() for r in runners))
        assert len(photos(sandbox)) == 1
        async with databases[0].sessions() as session:
            deliveries = (await session.scalars(select(ReportDelivery))).all()
            schedule = (await session.scalars(select(ReportSchedule))).one()
        assert [(d.status, d.due_at, d.late) for d in deliveries] == [("delivered", DUE, False)]
        assert schedule.next_due_at == DUE + timedelta(days=7)
    finally:
        for db in databases:
            await db.dispose()


async def test_runs_missed_while_down_are_delivered_late_once(
    database: Database, sandbox: RunningSandbox
) -> None:
    await add_schedule(database, cron="0 8 * * *")  # daily
    now = DUE + timedelta(days=3, hours=2)  # three days of downtime
    await runner(database, sandbox, now, "s1").tick()
    assert len(photos(sandbox)) == 1
    caption = str(photos(sandbox)[0]["params"].get("caption", ""))
    assert "late delivery of the run due 26 Nov 2026, 08:00 CET" in caption
    async with database.sessions() as session:
        rows = await session.execute(
            select(ReportDelivery.status, func.count()).group_by(ReportDelivery.status)
        )
    assert dict(rows.all()) == {"delivered": 1, "skipped": 3}


async def test_skip_policy_drops_missed_runs(database: Database, sandbox: RunningSandbox) -> None:
    await add_schedule(database, cron="0 8 * * *", policy="skip")
    await runner(database, sandbox, DUE + timedelta(days=2, hours=1), "s1").tick()
    assert photos(sandbox) == []


async def test_failed_deliveries_are_retried_then_reported_to_the_owner(
    database: Database, sandbox: RunningSandbox
) -> None:
    await add_schedule(database, destination="not-a-chat-id")
    told: list[str] = []

    async def notify(schedule: DueSchedule, error: str) -> None:
        told.append(f"{schedule.owner_email}: {error}")

    scheduler = runner(database, sandbox, DUE + timedelta(seconds=5), "s1")
    scheduler.notify_owner = notify
    for _ in range(scheduler.max_attempts + 1):
        await scheduler.tick()
    async with database.sessions() as session:
        delivery = (await session.scalars(select(ReportDelivery))).one()
        audit = (await session.scalars(select(AuditLog))).one()
    assert (delivery.status, delivery.attempts) == ("failed", scheduler.max_attempts)
    assert "chat id" in (delivery.error or "")
    assert audit.action == "report.delivery_failed"
    assert told and told[0].startswith("maria@northwind.example")


async def test_a_report_that_cannot_be_made_for_its_schedule_fails_at_once_with_words_for_its_owner(
    database: Database, sandbox: RunningSandbox
) -> None:
    """It was tried four times and its owner told to "check the destination", which was fine."""
    from reports.saved import ReportDefinitionError
    from reports.scheduled_delivery import report_failure_email

    await add_schedule(database)
    told: list[tuple[DueSchedule, str]] = []

    async def notify(schedule: DueSchedule, error: str) -> None:
        told.append((schedule, error))

    async def cannot_be_made(schedule: DueSchedule, due_at: datetime, late: bool) -> RenderedReport:
        raise ReportDefinitionError("Messages sent cannot be split by location")

    scheduler = runner(database, sandbox, DUE + timedelta(seconds=5), "s1")
    scheduler.render, scheduler.notify_owner = cannot_be_made, notify
    await scheduler.tick()
    await scheduler.tick()
    async with database.sessions() as session:
        delivery = (await session.scalars(select(ReportDelivery))).one()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert delivery.error == (
        "the report cannot be made for this schedule: Messages sent cannot be split by location"
    )
    [(schedule, error)] = told
    email = report_failure_email(schedule, error, "reports@northwind.example", public_url="http://sb")
    assert email is not None
    body = email.get_content()
    assert "Sending it again cannot help" in body and "Check the destination" not in body
    assert not photos(sandbox)


def test_due_times_follow_the_recipients_timezone_across_dst() -> None:
    before_switch = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
    assert next_due("0 8 * * *", "Europe/Berlin", before_switch) == datetime(2026, 3, 28, 7, 0, tzinfo=UTC)
    assert next_due("0 8 * * *", "Europe/Berlin", datetime(2026, 3, 28, 7, 0, tzinfo=UTC)) == datetime(
        2026, 3, 29, 6, 0, tzinfo=UTC
    )
    plan = plan_runs("0 8 * * *", "Europe/Berlin", DUE, DUE + timedelta(minutes=1), "deliver_late_once")
    assert plan.deliver == [(DUE, False)] and plan.skip == []


@pytest.mark.parametrize(
    ("cron", "timezone", "message"),
    [("every monday", "UTC", "invalid cron expression"), ("0 8 * * *", "Mars/Olympus", "unknown timezone")],
)
def test_bad_schedules_are_explained(cron: str, timezone: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        next_due(cron, timezone, DUE)


def test_a_lease_that_does_not_outlast_a_destination_refuses_to_start() -> None:
    slow = TelegramDestination(CREDENTIALS.telegram_bot_token, timeout_seconds=120)
    with pytest.raises(LeaseTooShort) as refused:
        ScheduleRunner(
            database=None,  # type: ignore[arg-type]  # refused before it is used
            render=render,
            destinations={"telegram": slow},
            lease=timedelta(seconds=60),
        )
    assert str(refused.value) == (
        "the report scheduler's claim lease (60 s) must be longer than the time each destination may take "
        "to deliver, but telegram allows 2 min; a worker could still be sending when another takes the run "
        "over and sends it again"
    )
    assert DEFAULT_LEASE.total_seconds() > slow.timeout_seconds  # the defaults start


async def test_every_attempt_at_an_email_run_carries_the_runs_message_id(
    database: Database, sandbox: RunningSandbox
) -> None:
    schedule_id = await add_schedule(database, kind="email", destination="board@northwind.example")
    await runner(database, sandbox, DUE + timedelta(seconds=5), "s1").tick()
    async with database.read_sessions() as session:
        schedule = await SqlScheduleStore(session).get(schedule_id)
    assert schedule is not None
    key = delivery_key(schedule, DUE)
    assert [e.message_id for e in sandbox.state.emails] == [f"<{key}@northwind.example>"]
    assert key.startswith(f"report-{schedule_id}-20261123T070000Z-")
    # A copy sent again for the same run (a worker died after the mailbox took it) is the same message.
    again = await render(schedule, DUE, False)
    email = EmailDestination(
        "127.0.0.1", sandbox.smtp_port, None, None, "Reports <reports@northwind.example>"
    )
    await email.deliver(schedule.destination, replace(again, delivery_key=key))
    assert len(sandbox.state.emails) == 1 and sandbox.state.email_copies[f"<{key}@northwind.example>"] == 2


async def test_a_run_stuck_in_claimed_before_the_upgrade_is_delivered_after_it(
    database_url: str, sandbox: RunningSandbox
) -> None:
    """Before leases, a worker that died after its claim left the run `claimed` forever."""
    await migrate.downgrade(database_url, "0003")
    database = Database.connect(database_url)
    try:
        schedule_id = await add_schedule(database, next_due_at=DUE + timedelta(days=7))
        async with database.sessions() as session:
            # The table as 0003 had it (the model's has columns added since, with defaults of their own).
            then = table(
                "report_deliveries",
                *(
                    column(name)
                    for name in ("schedule_id", "destination", "status", "claimed_by", "attempts", "late")
                ),
                column("due_at", UtcDateTime()),
                column("claimed_at", UtcDateTime()),
            )
            await session.execute(
                then.insert().values(
                    schedule_id=schedule_id,
                    due_at=DUE,
                    destination="424242",
                    status="claimed",
                    claimed_by="died:1",
                    attempts=0,
                    late=False,
                    claimed_at=DUE + timedelta(seconds=3),
                )
            )
            await session.commit()
        await database.dispose()
        await migrate.upgrade(database_url)
        database = Database.connect(database_url)
        await runner(database, sandbox, DUE + timedelta(hours=2), "s1").tick()
        assert len(photos(sandbox)) == 1
        async with database.read_sessions() as session:
            delivery = (await session.scalars(select(ReportDelivery))).one()
        assert (delivery.status, delivery.claimed_by, delivery.attempts) == ("delivered", "s1", 1)
        assert delivery.error == "Taken over from died:1, which stopped before sending it."
    finally:
        await migrate.upgrade(database_url)
        await database.dispose()


def _long_report(png: bytes | None) -> RenderedReport:
    """A report whose figures run far past Slack's 3,000 and Telegram's 1,024/4,096 character limits."""
    figures = "\n".join(f"Clinic number {i:03d} of the Northwind group: €{i * 1000:,}.00" for i in range(200))
    return RenderedReport(
        "Revenue by clinic",
        "Revenue was €19,900,000.00.",
        png,
        None,
        DUE,
        False,
        "revenue-by-clinic",
        "Europe/Berlin",
        figures=figures,
    )


def _tile_png() -> bytes:
    from reports.charts.render import render_png
    from reports.charts.spec import ChartSpec, KpiTile

    return render_png(
        ChartSpec(
            kind="kpi_tile",
            title="Revenue",
            period_label="week",
            data_as_of=DUE,
            unit="count",
            kpi=KpiTile(1.0),
        )
    )


async def test_long_figures_are_split_under_each_channels_limits_and_nothing_is_lost(
    sandbox: RunningSandbox,
) -> None:
    from reports.destinations import SLACK_TEXT_LIMIT, SlackDestination

    png = _tile_png()
    report = _long_report(png)
    slack = SlackDestination(CREDENTIALS.slack_bot_token, f"{sandbox.base_url}/slack/api/")
    await slack.deliver("C0SWITCHBOARD", report)
    posts = [m for m in sandbox.state.slack.messages if m.channel == "C0SWITCHBOARD"]
    assert len(posts) >= 3 and posts[0].files and all(len(m.text) <= SLACK_TEXT_LIMIT for m in posts)
    said = "\n".join(m.text for m in posts)
    assert all(f"Clinic number {i:03d}" in said for i in range(200))

    telegram = TelegramDestination(CREDENTIALS.telegram_bot_token, sandbox.base_url)
    await telegram.deliver("5550001", report)
    await telegram.close()
    calls = [
        c for c in sandbox.state.telegram_calls if str(c["method"]).lower() in ("sendphoto", "sendmessage")
    ]
    texts = [str(c["params"].get("caption") or c["params"].get("text") or "") for c in calls]
    assert str(calls[0]["method"]).lower() == "sendphoto" and len(texts[0]) <= 1024
    assert all(len(t) <= 4096 for t in texts) and all(
        f"Clinic number {i:03d}" in "\n".join(texts) for i in range(200)
    )


async def test_a_chart_that_cannot_be_drawn_still_delivers_the_figures_as_text(
    sandbox: RunningSandbox,
) -> None:
    report = _long_report(None)
    email = EmailDestination("127.0.0.1", sandbox.smtp_port, None, None, "reports@northwind.example")
    await email.deliver("board@northwind.example", report)
    (stored,) = sandbox.state.emails
    assert "could not be drawn" in stored.text and "Clinic number 199" in stored.text
    assert b"image/png" not in stored.raw

    telegram = TelegramDestination(CREDENTIALS.telegram_bot_token, sandbox.base_url)
    await telegram.deliver("5550001", report)
    await telegram.close()
    methods = {str(c["method"]).lower() for c in sandbox.state.telegram_calls}
    assert "sendphoto" not in methods and "sendmessage" in methods


async def test_slack_and_telegram_deliveries_end_with_buttons_to_redraw_by_another_split(
    sandbox: RunningSandbox,
) -> None:
    from dataclasses import replace

    from reports.destinations import REDRAW_PROMPT, SlackDestination
    from reports.redraw import parse_redraw, redraws

    offered = redraws("revenue-by-clinic", {"query": {"metrics": ["revenue"], "dimensions": ["location"]}})
    report = replace(_long_report(None), redraws=offered)
    slack = SlackDestination(CREDENTIALS.slack_bot_token, f"{sandbox.base_url}/slack/api/")
    await slack.deliver("C0SWITCHBOARD", report)
    last = [m for m in sandbox.state.slack.messages if m.channel == "C0SWITCHBOARD"][-1]
    assert last.text == REDRAW_PROMPT
    actions = next(b for b in last.blocks if b["type"] == "actions")
    assert [e["value"] for e in actions["elements"]] == [r.command for r in offered]

    telegram = TelegramDestination(CREDENTIALS.telegram_bot_token, sandbox.base_url)
    await telegram.deliver("5550001", report)
    await telegram.close()
    sent = [c for c in sandbox.state.telegram_calls if str(c["method"]).lower() == "sendmessage"]
    markups = [c["params"].get("reply_markup") for c in sent]
    assert all(m is None for m in markups[:-1]) and markups[-1] is not None  # under the last piece only
    keyboard = markups[-1] if isinstance(markups[-1], dict) else json.loads(str(markups[-1]))
    pressed = [parse_redraw(b["callback_data"]) for b in keyboard["inline_keyboard"][0]]
    assert pressed == [r.command for r in offered]


async def test_a_chart_goes_to_a_slack_channel_named_by_its_name(sandbox: RunningSandbox) -> None:
    """`to #switchboard`: uploads need the channel's id, which the first message's answer gives."""
    from reports.destinations import SlackDestination

    png = _tile_png()
    slack = SlackDestination(CREDENTIALS.slack_bot_token, f"{sandbox.base_url}/slack/api/")
    await slack.deliver("#switchboard", _long_report(png))
    posts = [m for m in sandbox.state.slack.messages if m.channel == "C0SWITCHBOARD"]
    assert posts[0].text.startswith("Revenue by clinic") and any(m.files for m in posts)
    assert "Clinic number 199" in "\n".join(m.text for m in posts)


async def test_a_slack_channel_the_bot_cannot_see_is_named_in_words(sandbox: RunningSandbox) -> None:
    """The delivery log and the owner's email said "(url: http://…/chat.postMessage, status: 200) The server
    responded with: {'ok': False, 'error': 'channel_not_found'}"."""
    from reports.destinations import DeliveryFailed, SlackDestination

    slack = SlackDestination(CREDENTIALS.slack_bot_token, f"{sandbox.base_url}/slack/api/")
    with pytest.raises(DeliveryFailed) as failed:
        await slack.deliver("#management", _long_report(_tile_png()))
    said = str(failed.value)
    assert said.startswith("Slack delivery to #management failed: Slack has no channel #management"), said
    assert "{" not in said and "http" not in said


async def test_announcing_a_schedule_posts_in_the_channel_refuses_one_the_bot_cannot_see_and_survives_no_answer(
    sandbox: RunningSandbox,
) -> None:
    from reports.destinations import announce_in_slack

    api, token = f"{sandbox.base_url}/slack/api/", CREDENTIALS.slack_bot_token
    assert (
        await announce_in_slack(token, api, "#switchboard", "Ada scheduled the report here.")
        == ChannelCheck()
    )
    [posted] = [m for m in sandbox.state.slack.messages if m.channel == "C0SWITCHBOARD"]
    assert posted.text == "Ada scheduled the report here."

    missing = await announce_in_slack(token, api, "#management", "Ada scheduled the report here.")
    assert missing.refused is not None and missing.refused.startswith("Slack has no channel #management")
    revoked = await announce_in_slack("xoxb-not-ours", api, "#switchboard", "Ada scheduled the report here.")
    assert revoked.refused is not None and "token" in revoked.refused, revoked
    not_set_up = await announce_in_slack("", api, "#switchboard", "Ada scheduled the report here.")
    assert not_set_up.refused is not None and "SWITCHBOARD_SLACK_BOT_TOKEN" in not_set_up.refused

    with socket.socket() as closed:  # a port nobody answers on: Slack "down", the schedule is kept unchecked
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/api/"
    silent = await announce_in_slack(token, dead, "#switchboard", "Ada scheduled the report here.")
    assert silent.refused is None and silent.unchecked
    assert len([m for m in sandbox.state.slack.messages if m.channel == "C0SWITCHBOARD"]) == 1


async def test_a_mailbox_that_does_not_exist_fails_the_run_at_once_in_words(
    database: Database, sandbox: RunningSandbox
) -> None:
    """A 5xx from the mail server (no such mailbox) cannot change on a retry: the run fails on its first
    attempt, says what the server said, not the library's exception, and the owner hears once."""
    sandbox.state.opt_out("ghost@northwind.example")  # the sandbox's relay refuses it: 550 5.1.1
    await add_schedule(database, kind="email", destination="ghost@northwind.example")
    told: list[str] = []

    async def notify(schedule: DueSchedule, error: str) -> None:
        told.append(error)

    scheduler = runner(database, sandbox, DUE + timedelta(seconds=5), "s1")
    scheduler.notify_owner = notify
    for _ in range(3):
        await scheduler.tick()
    async with database.sessions() as session:
        delivery = (await session.scalars(select(ReportDelivery))).one()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert delivery.error == (
        "email to ghost@northwind.example failed: the mail server refused it: Recipient address rejected: "
        "User unknown (5.1.1)"
    )
    assert told == [delivery.error]
    assert sandbox.state.emails == []
