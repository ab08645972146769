"""Dialog tables for every staff command, run through the console layer on a seeded database."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.commands.context import CommandContext
from bot.commands.templates import price_words
from bot.console import ask, render_reply, save_files
from domain.messages.pricing import DEFAULT_PRICE_BOOK
from storage.database import Database
from storage.models import AuditLog, BulkMessaging, CustomerCommunication, CustomerConsent, CustomReport
from storage.seeding import SeedPlan, seed_database
from switchboard.settings import Settings

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
PLAN = SeedPlan(customers=40, days=45, seed=3, end_date=date(2026, 11, 23))
PNG = b"\x89PNG\r\n\x1a\n"

ADMIN = "admin@northwind.example"
MANAGER = "markus.brandt@northwind.example"
AGENT = "lena.hoffmann@northwind.example"
VIEWER = "finance@northwind.example"


def _context(database: Database) -> CommandContext:
    return _context_at(database, NOW)


def _context_at(database: Database, now: datetime) -> CommandContext:
    return CommandContext(Settings(database_url=database.url), database, clock=lambda: now)


@pytest.fixture
async def seeded(database: Database) -> CommandContext:
    await seed_database(database, PLAN)
    async with database.sessions() as session:
        session.add(
            CustomReport(
                slug="weekly-revenue",
                name="Weekly revenue",
                definition={"query": {"metrics": ["revenue"], "period": "last_week", "grain": "day"}},
            )
        )
        session.add(
            CustomReport(slug="broken", name="Broken", definition={"query": {"metrics": ["profit; DROP"]}})
        )
        await session.commit()
    return _context(database)


async def _draft_campaign(ctx: CommandContext) -> str:
    async with ctx.database.read_sessions() as session:
        slug = await session.scalar(
            select(BulkMessaging.slug).where(BulkMessaging.status == "draft").limit(1)
        )
    if slug is None:
        pytest.skip("the seed plan has no draft campaign")
    return slug


async def _opted_out_of_sms(ctx: CommandContext) -> int:
    async with ctx.database.read_sessions() as session:
        found = await session.scalar(
            select(CustomerConsent.customer_id)
            .where(CustomerConsent.channel == "sms", CustomerConsent.status == "opted_out")
            .limit(1)
        )
    if found is None:
        pytest.skip("the seed plan has nobody opted out of SMS")
    return found


async def run_dialog(ctx: CommandContext, table: list[tuple[str, str, str, str]]) -> None:
    """Each row: (who, input, expected kind, fragment expected in the rendered reply)."""
    failures = []
    for who, text, kind, fragment in table:
        reply = await ask(ctx, text, as_email=who)
        shown = render_reply(reply)
        if reply.kind != kind or fragment.lower() not in shown.lower() or "Traceback" in shown:
            failures.append(
                f"{who} > {text!r}: kind {reply.kind}, expected {kind} with {fragment!r}\n{shown}"
            )
    assert not failures, "\n\n".join(failures)


async def test_read_commands_for_every_role(seeded: CommandContext) -> None:
    draft = await _draft_campaign(seeded)
    table = [
        (VIEWER, "help", "help", "commands you can use as viewer"),
        (VIEWER, "help send", "help", "agents, managers and admins"),
        (ADMIN, "help", "help", "campaign     new · list · preview · status · launch"),
        (VIEWER, "status", "answer", "Outbox"),
        (VIEWER, "customer find Florian", "answer", "•••"),
        (VIEWER, "customer find #²", "answer", "No customer"),
        (VIEWER, "customer show 1", "answer", "masked"),
        (VIEWER, "customer show 1 --full", "denied", "needs the agent role"),
        (AGENT, "customer show 1 --full", "answer", "(private)"),
        (VIEWER, "customer show 99999", "error", "no customer #99999"),
        (VIEWER, "customer prefs 1", "answer", "Why not sent"),
        (VIEWER, "customer show 1", "answer", "/communication/customers/1"),
        (AGENT, "customer prefs 1", "answer", "/communication/customers/1"),
        (VIEWER, "template list", "answer", "welcome"),
        (VIEWER, "template show welcome", "answer", "Variables"),
        (VIEWER, "template show welcom", "error", "did you mean welcome"),
        (VIEWER, "template preview welcome sms de first_name=Jana", "answer", "Segments"),
        (VIEWER, "campaign list", "answer", draft),
        (VIEWER, f"campaign preview {draft}", "answer", "Audience"),
        (VIEWER, f"campaign status {draft}", "answer", "draft"),
        (VIEWER, "campaign status no-such-campaign", "error", "no campaign"),
        (VIEWER, "report list", "answer", "weekly-revenue"),
        (VIEWER, "report run weekly-revenue", "answer", "Revenue"),
        (VIEWER, "report run broken", "error", "cannot run"),
        (VIEWER, "cancel", "answer", "nothing was sent"),
    ]
    await run_dialog(seeded, table)


async def test_permission_denials_for_each_role(seeded: CommandContext) -> None:
    draft = await _draft_campaign(seeded)
    table = [
        (VIEWER, "send sms to #1 template welcome clinic=Mitte", "denied", "needs the agent role"),
        (VIEWER, f"campaign launch {draft}", "denied", "needs the manager role"),
        (AGENT, f"campaign launch {draft} confirm", "denied", "needs the manager role"),
        (AGENT, f"campaign pause {draft}", "denied", "manager"),
        (AGENT, 'report schedule weekly-revenue "0 8 * * 1" to #ops', "denied", "manager"),
        (VIEWER, f"campaign cancel {draft}", "denied", "manager"),
    ]
    await run_dialog(seeded, table)
    async with seeded.database.read_sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AuditLog)) == 0


async def test_send_previews_then_enqueues_once_and_audits(seeded: CommandContext) -> None:
    preview = await ask(seeded, "send sms to #1 template welcome clinic=Mitte", as_email=AGENT)
    assert preview.confirm and preview.private and "Mitte" in preview.text
    assert {f.label for f in preview.fields} >= {"Encoding", "Segments", "Estimated cost"}
    confirm = next(b.command for b in preview.buttons if b.label == "Confirm")
    assert "•••" in render_reply(preview)  # the address is masked even in the private preview

    queued = await ask(seeded, confirm, as_email=AGENT)
    again = await ask(seeded, confirm, as_email=AGENT)
    assert "Queued" in queued.text and "already queued" in again.text
    async with seeded.database.read_sessions() as session:
        rows = list(
            await session.scalars(
                select(CustomerCommunication).where(
                    CustomerCommunication.source_ref.isnot(None), CustomerCommunication.status == "planned"
                )
            )
        )
        audit = list(await session.scalars(select(AuditLog)))
    assert len(rows) == 1 and rows[0].source == "manual" and rows[0].customer_id == 1
    # The preview's cost is what the queued message is priced at: the recipient's country's SMS price.
    shown = next(f.value for f in preview.fields if f.label == "Estimated cost")
    # Money as every answer writes it, to the fraction of a cent an SMS costs ("US$0.0875", not "0.0875 USD").
    assert shown == price_words(rows[0].cost_micros, "USD", seeded.settings.business_locale)
    assert shown.startswith(("US$", "$")) and "USD" not in shown
    assert next(f.value for f in preview.fields if f.label == "Channel") == "SMS"
    price = DEFAULT_PRICE_BOOK.sms_segment_price(rows[0].to_address)
    segments = next(f.value for f in preview.fields if f.label == "Segments")
    assert rows[0].cost_micros == int(segments) * price and price != DEFAULT_PRICE_BOOK.sms_per_segment
    assert [(a.actor, a.action, a.target, a.via) for a in audit] == [
        (AGENT, "message.send", "customer:1", "cli")
    ]


async def test_a_template_preview_prices_an_sms_to_the_business_s_own_country(seeded: CommandContext) -> None:
    for country, code in (("DE", "+49"), ("US", "+1")):
        ctx = CommandContext(
            Settings(database_url=seeded.database.url, business_country=country), seeded.database
        )
        preview = await ask(ctx, "template preview welcome sms de first_name=Jana", as_email=AGENT)
        fields = {f.label: f.value for f in preview.fields}
        price = DEFAULT_PRICE_BOOK.sms_segment_price(code) * int(fields["Segments"])
        assert (
            fields["Estimated cost"]
            == f"{price_words(price, 'USD', ctx.settings.business_locale)} (to a {code} number)"
        )


async def test_free_text_and_suppressed_sends(seeded: CommandContext) -> None:
    opted_out = await _opted_out_of_sms(seeded)
    table = [
        (AGENT, 'send email to #2 text "Your results are ready"', "answer", "Send this message?"),
        (AGENT, f"send sms to #{opted_out} template welcome clinic=Mitte", "answer", "opted out"),
        (AGENT, f"send sms to #{opted_out} template welcome clinic=Mitte confirm", "answer", "Not sending"),
        (AGENT, "send sms to #1 template no_such_template", "error", "no active template"),
        (AGENT, "send sms to #999999 template welcome", "error", "No customer matches"),
        (AGENT, "send sms #1", "error", "Usage"),
        # A value left out: said once ("Not sent: " twice and ".." before), with where the values are listed.
        (AGENT, "send sms #1 template welcome", "error", "`template show welcome` lists the values it needs"),
    ]
    await run_dialog(seeded, table)
    async with seeded.database.read_sessions() as session:
        planned = await session.scalar(
            select(func.count())
            .select_from(CustomerCommunication)
            .where(CustomerCommunication.status == "planned")
        )
    assert planned == 0


async def test_campaign_launch_needs_confirmation_then_pause_resume_cancel_are_audited(
    seeded: CommandContext,
) -> None:
    draft = await _draft_campaign(seeded)
    table = [
        (MANAGER, f"campaign launch {draft}", "answer", "Excluded"),
        (MANAGER, f"campaign status {draft}", "answer", "draft"),
        (MANAGER, f"campaign launch {draft} confirm", "progress", "running"),
        (MANAGER, f"campaign launch {draft} confirm", "error", "cannot be launched"),
        (MANAGER, f"campaign pause {draft}", "answer", "paused"),
        (MANAGER, f"campaign resume {draft}", "answer", "running again"),
        (ADMIN, f"campaign cancel {draft}", "answer", "Yes, cancel"),
        (ADMIN, f"campaign cancel {draft} confirm", "answer", "cancelled"),
    ]
    await run_dialog(seeded, table)
    async with seeded.database.read_sessions() as session:
        audit = [(a.actor, a.action) for a in await session.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert audit == [
        (MANAGER, "campaign.launch"),
        (MANAGER, "campaign.pause"),
        (MANAGER, "campaign.resume"),
        (ADMIN, "campaign.cancel"),
    ]


async def test_a_report_scheduled_to_a_slack_channel_says_so_there_and_one_the_bot_cannot_see_is_refused(
    seeded: CommandContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reports import schedule_check
    from reports.destinations import ChannelCheck

    told: list[str] = []

    async def slack(token: str, base_url: str, channel: str, text: str) -> ChannelCheck:
        told.append(text)
        if channel == "#nowhere":
            return ChannelCheck(refused="Slack has no channel #nowhere that the bot can see")
        return ChannelCheck()

    from storage.models import ReportSchedule

    monkeypatch.setattr(schedule_check, "announce_in_slack", slack)
    table = [
        (
            MANAGER,
            'report schedule weekly-revenue "0 8 * * 1" to #nowhere',
            "error",
            "Not scheduled: Slack has no channel #nowhere that the bot can see.",
        ),
        (
            MANAGER,
            'report schedule weekly-revenue "0 8 * * 1" to #management',
            "answer",
            "Said so in #management.",
        ),
    ]
    await run_dialog(seeded, table)
    assert len(told) == 2 and "every Monday at 08:00" in told[1]
    async with seeded.database.read_sessions() as session:
        kept = list(await session.scalars(select(ReportSchedule.destination)))
    assert kept == ["#management"]


async def test_report_schedule_is_stored_and_audited(seeded: CommandContext) -> None:
    table = [
        (MANAGER, 'report schedule weekly-revenue "0 8 * * 1" to #management', "answer", "first run"),
        (MANAGER, 'report schedule weekly-revenue "99 8 * * 1" to #management', "error", "cron"),
        (MANAGER, 'report schedule nope "0 8 * * 1" to ops@example.com', "error", "no saved report"),
        (
            MANAGER,
            "report schedule weekly-revenue every monday 8:00 to #management",
            "error",
            "This report already goes to #management every Monday at 08:00",
        ),
    ]
    await run_dialog(seeded, table)
    async with seeded.database.read_sessions() as session:
        actions = list(await session.scalars(select(AuditLog.action)))
    assert actions == ["report.schedule"]


async def test_report_save_keeps_the_question_just_answered(seeded: CommandContext) -> None:
    table = [
        (AGENT, "report save Too early", "error", "no question to save yet"),
        (AGENT, "revenue last 30 days by location vs previous", "answer", "Revenue"),
        (AGENT, "report save Revenue by clinic", "answer", "Saved “Revenue by clinic”"),
        (AGENT, "report save revenue BY clinic", "error", "already a report named"),
        (AGENT, "report list", "answer", "saved reports"),
        (AGENT, "report run Revenue by clinic", "answer", "Revenue"),
        (VIEWER, "report save Mine too", "denied", "needs the agent role"),
        (MANAGER, "report run revenue-by-clinic", "error", "no saved report"),  # the agent's own, not shared
    ]
    await run_dialog(seeded, table)
    async with seeded.database.read_sessions() as session:
        saved = await session.scalar(select(CustomReport).where(CustomReport.slug == "revenue-by-clinic"))
        actions = list(await session.scalars(select(AuditLog.action)))
    assert saved is not None and not saved.shared
    query = saved.definition["query"]
    assert query["metrics"] == ["revenue"] and query["dimensions"] == ["location"]
    assert query["period"] == {"kind": "last_n_days", "n": 30} and query["comparison"] == "previous_period"
    assert actions == ["report.save"]
    # Saved for everyone, a manager sees it too.
    await run_dialog(
        seeded,
        [
            (AGENT, "kpi orders this month", "answer", "Orders"),
            (AGENT, "report save Orders so far for everyone", "answer", "everyone"),
            (MANAGER, "report run orders-so-far", "answer", "Orders"),
        ],
    )


async def test_a_saved_ranking_keeps_its_n_and_a_question_without_one_keeps_none(
    seeded: CommandContext,
) -> None:
    await run_dialog(
        seeded,
        [
            (AGENT, "top 2 clinics by revenue last 30 days", "answer", "Revenue"),
            (AGENT, "report save Best two", "answer", "by location, top 2"),
            (AGENT, "revenue last 30 days by clinic", "answer", "Revenue"),
            (AGENT, "report save Every clinic", "answer", "by location)"),
        ],
    )
    async with seeded.database.read_sessions() as session:
        charts = {r.slug: r.definition.get("chart") for r in await session.scalars(select(CustomReport))}
    assert charts["best-two"] == {"kind": "auto", "sort": "largest", "top": 2}
    assert charts["every-clinic"] is None


async def test_kpi_answers_carry_a_png_and_a_summary(seeded: CommandContext) -> None:
    for text in (
        "revenue last 30 days by channel",
        "kpi orders this month vs last month",
        "no-show rate for video consultations this quarter",
    ):
        reply = await ask(seeded, text, as_email=VIEWER)
        assert reply.kind == "answer", reply.text
        assert reply.images and reply.images[0].content.startswith(PNG)
        assert reply.text.strip() and reply.buttons


async def test_kpi_without_a_period_says_how_it_was_read(seeded: CommandContext) -> None:
    reply = await ask(seeded, "revenue by channel", as_email=VIEWER)
    [reading] = [field.value for field in reply.fields if field.label == "Read as"]
    assert reading.startswith("Revenue, net of refunds") and "Europe/Berlin" in reading
    assert "No period was given" in reply.text and "Read as" not in reply.text  # said once, in the field
    assert any(b.command.startswith("kpi revenue") for b in reply.buttons)


async def test_messages_read_says_which_channels_never_report_reads(seeded: CommandContext) -> None:
    emails = await ask(seeded, "how many emails were opened last month?", as_email=VIEWER)
    assert "Email never reports when a message is read (email opens are not tracked)" in emails.text, (
        emails.text
    )
    every = await ask(seeded, "messages read last 30 days by channel", as_email=VIEWER)
    assert "Only WhatsApp and the website chat report reads" in every.text, every.text
    whatsapp = await ask(seeded, "whatsapp messages read last 30 days", as_email=VIEWER)
    assert "report" not in whatsapp.text, whatsapp.text  # WhatsApp's read receipts are counted: no caveat
    # Two attribution models, two sets of words: the KPI says which it counts.
    tagged = await ask(seeded, "attributed revenue by campaign last 30 days", as_email=VIEWER)
    assert "This counts orders the shop tagged with the campaign (its link or code)." in tagged.text, (
        tagged.text
    )


async def test_unknown_input_gets_suggestions_never_a_traceback(seeded: CommandContext) -> None:
    table = [
        (VIEWER, "blorp the flurb", "suggestion", "Commands:"),
        (VIEWER, "statuz", "answer", "Outbox"),
        (VIEWER, "campaign explode x", "error", "takes one of"),
        (VIEWER, "revenue last week by template", "suggestion", "can be split by"),
        (VIEWER, "", "help", "commands"),
        (VIEWER, "x" * 5000, "error", "too long"),
    ]
    await run_dialog(seeded, table)


async def test_an_unknown_staff_email_is_refused(seeded: CommandContext) -> None:
    from bot.console import UnknownStaff

    with pytest.raises(UnknownStaff):
        await ask(seeded, "help", as_email="nobody@example.com")


def test_save_files_writes_images(tmp_path: Path) -> None:
    from bot.replies import Image, Reply

    written = save_files(Reply("x", images=(Image("../a b.png", PNG, "chart"),)), tmp_path)
    assert [p.name for p in written] == [".._a_b.png"] and written[0].read_bytes() == PNG
    # The next question's chart of the same name is kept beside it, numbered, not written over it.
    again = save_files(Reply("x", images=(Image("../a b.png", b"second", "chart"),)), tmp_path)
    third = save_files(Reply("x", images=(Image("../a b.png", b"third", "chart"),)), tmp_path)
    assert [p.name for p in again + third] == [".._a_b-2.png", ".._a_b-3.png"]
    assert written[0].read_bytes() == PNG and again[0].read_bytes() == b"second"


def test_cli_ask_smoke(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env = {**os.environ, "SWITCHBOARD_DATABASE_URL": url}
    cli = [sys.executable, "-m", "switchboard.cli"]
    subprocess.run([*cli, "migrate"], env=env, check=True, capture_output=True, cwd=tmp_path)
    subprocess.run(
        [*cli, "seed", "--customers", "20", "--days", "10"],
        env=env,
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    done = subprocess.run(
        [*cli, "ask", "customer find a", "--as", VIEWER],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "Customers" in done.stdout and "•••" in done.stdout
    refused = subprocess.run(
        [*cli, "ask", "help", "--as", "nobody@example.com"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert refused.returncode == 2 and "no active staff member" in refused.stderr


def test_cli_ask_says_when_its_links_lead_to_no_app(tmp_path: Path) -> None:
    """A demo served on another port, asked from a shell without its SWITCHBOARD_PUBLIC_URL: the answer's
    links would lead nowhere, and `ask` says so; with an app answering there it says nothing."""
    import contextlib
    import http.server
    import socket
    import threading

    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    cli = [sys.executable, "-m", "switchboard.cli"]
    env = {**os.environ, "SWITCHBOARD_DATABASE_URL": url}
    subprocess.run([*cli, "migrate"], env=env, check=True, capture_output=True, cwd=tmp_path)
    seed = [*cli, "seed", "--customers", "5", "--days", "1"]
    subprocess.run(seed, env=env, check=True, capture_output=True, cwd=tmp_path)
    dead = subprocess.run(
        [*cli, "ask", "help"],
        env={**env, "SWITCHBOARD_PUBLIC_URL": f"http://127.0.0.1:{free_port}"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert dead.returncode == 0, dead.stderr
    assert f"Note: no app answers at http://127.0.0.1:{free_port} (SWITCHBOARD_PUBLIC_URL)" in dead.stderr

    class Healthy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = http.server.HTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        alive = subprocess.run(
            [*cli, "ask", "help"],
            env={**env, "SWITCHBOARD_PUBLIC_URL": f"http://127.0.0.1:{server.server_port}"},
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
    finally:
        server.shutdown()
    assert alive.returncode == 0 and "no app answers" not in alive.stderr, alive.stderr
    # Something that is not an app (a mail server's banner) is no app either, and no reason to crash.
    banner = socket.socket()
    banner.bind(("127.0.0.1", 0))
    banner.listen()

    def greet() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = banner.accept()
                conn.sendall(b"220 mail.example ESMTP\r\n")
                conn.close()

    threading.Thread(target=greet, daemon=True).start()
    try:
        smtp = subprocess.run(
            [*cli, "ask", "help"],
            env={**env, "SWITCHBOARD_PUBLIC_URL": f"http://127.0.0.1:{banner.getsockname()[1]}"},
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
    finally:
        banner.close()
    assert smtp.returncode == 0 and "Note: no app answers at" in smtp.stderr, smtp.stderr
    assert "Traceback" not in smtp.stderr
    elsewhere = subprocess.run(
        [*cli, "ask", "help"],
        env={**env, "SWITCHBOARD_PUBLIC_URL": "https://clinic.invalid"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert "no app answers" not in elsewhere.stderr, "a real address is doctor's to check, not ask's"


async def test_status_names_each_background_job_and_says_when_no_worker_runs(seeded: CommandContext) -> None:
    from reports.heartbeats import JobHealth, JobRecord, write_heartbeat

    nobody = render_reply(await ask(seeded, "status", as_email=VIEWER))
    assert "No worker is running" in nobody and "Start `switchboard worker`" in nobody
    assert "Delivery               not running" in nobody and "scheduler has reported" not in nobody

    second, minute = timedelta(seconds=1), timedelta(minutes=1)
    health = JobHealth(lambda: NOW)
    health.jobs.update(
        {
            "delivery": JobRecord(5, last_success_at=NOW - 4 * second),
            "rollups": JobRecord(
                60,
                last_success_at=NOW - 2 * 60 * minute,
                last_failure_at=NOW - 30 * second,
                failing_since=NOW - 10 * minute,
                last_error="OperationalError: database is locked",
            ),
        }
    )
    async with seeded.database.sessions() as session:
        await write_heartbeat(session, "clinic-1:812:worker", "worker", NOW - 4 * second, health, pid=812)
        await session.commit()
    await run_dialog(
        seeded,
        [
            (VIEWER, "status", "answer", "Delivery               ok, last success 4 s ago"),
            (
                VIEWER,
                "status",
                "answer",
                "Rollups                failing since 10 min: OperationalError: database is locked; "
                "last success 2 h ago",
            ),
            (VIEWER, "status", "answer", "Campaign planning      not running"),
            (VIEWER, "status", "answer", "1 worker process running; needs a look: campaign planning"),
            (VIEWER, "status", "answer", "clinic-1:812:worker  worker  running for 4 s, seen 4 s ago"),
        ],
    )
    later = render_reply(await ask(_context_at(seeded.database, NOW + 5 * minute), "status", as_email=VIEWER))
    assert "No worker is running (the last one reported 5 min ago)" in later
    assert "Delivery               not running (last reported 5 min ago)" in later


async def test_only_actions_a_campaign_allows_are_offered(seeded: CommandContext) -> None:
    async with seeded.database.read_sessions() as session:
        done = await session.scalar(
            select(BulkMessaging.slug).where(BulkMessaging.status == "completed").limit(1)
        )
    assert done is not None
    preview = await ask(seeded, f"campaign preview {done}", as_email=MANAGER)
    assert preview.kind == "answer" and "would send" not in preview.text
    assert not [b for b in preview.buttons if b.command.split()[1] in ("launch", "pause", "resume", "cancel")]
    launch = await ask(seeded, f"campaign launch {done}", as_email=MANAGER)
    assert (
        launch.kind == "error" and not launch.confirm and "completed, so it cannot be launched" in launch.text
    )
    draft = await _draft_campaign(seeded)
    offered = {
        b.command.split()[1]
        for b in (await ask(seeded, f"campaign preview {draft}", as_email=MANAGER)).buttons
    }
    assert offered == {"launch", "cancel", "status"}


async def test_a_named_metric_wins_over_a_command_noun_without_its_verb(seeded: CommandContext) -> None:
    await run_dialog(
        seeded,
        [
            (MANAGER, "campaign revenue last month by campaign", "answer", "Campaign revenue"),
            (MANAGER, "campaign fooo", "error", "takes one of"),
        ],
    )


async def test_reports_run_for_another_period_and_split_are_scheduled_in_words_and_unscheduled(
    seeded: CommandContext,
) -> None:
    table = [
        (VIEWER, "report run weekly-revenue for last month by clinic", "answer", "Revenue"),
        (VIEWER, "report run weekly-revenue by doctor", "error", "cannot be split by doctor"),
        (VIEWER, "report run weekly-revenue for the year of the dragon", "error", "as a period"),
        (
            MANAGER,
            "report schedule weekly-revenue every monday 8:00 to #management",
            "answer",
            "every Monday at 08:00",
        ),
        (MANAGER, "report schedule weekly-revenue every weekday 7:30 to me", "answer", MANAGER),
        (
            MANAGER,
            "report schedule weekly-revenue jeden Freitag um 17 Uhr to me",
            "answer",
            "every Friday at 17:00",
        ),
        (MANAGER, "report schedule weekly-revenue jeden Mo 8:00 to me", "answer", "every Monday at 08:00"),
        (MANAGER, "report schedule weekly-revenue Mo-Fr 7:30 to me", "error", "already goes to"),
        (
            MANAGER,
            "report schedule weekly-revenue every month on the 31st at 8:00 to me",
            "error",
            "not in every month",
        ),
        (MANAGER, "report unschedule weekly-revenue to #management", "answer", "Stopped 1 schedule"),
        (MANAGER, "report unschedule weekly-revenue to #management", "error", "no schedule to #management"),
        (AGENT, "report unschedule weekly-revenue", "denied", "manager"),
        # An address typed in capitals is the one stored in lower case.
        (MANAGER, f"report unschedule weekly-revenue to {MANAGER.upper()}", "answer", "Stopped 3 schedules"),
    ]
    await run_dialog(seeded, table)
    ran = await ask(seeded, "report run weekly-revenue for last month by clinic", as_email=VIEWER)
    assert ran.title == "Weekly revenue (for last month, by location)" and ran.images[0].content.startswith(
        PNG
    )
    assert [b.command for b in ran.buttons][:1] == ["report run weekly-revenue by source channel"]
    async with seeded.database.read_sessions() as session:
        actions = list(await session.scalars(select(AuditLog.action).order_by(AuditLog.id)))
    assert actions == [*["report.schedule"] * 4, *["report.unschedule"] * 4]  # one per schedule stopped


async def test_a_report_runs_split_two_ways_from_chat(seeded: CommandContext) -> None:
    await run_dialog(
        seeded,
        [
            (VIEWER, "report run weekly-revenue by clinic and clinic", "error", "named twice"),
            (VIEWER, "report run weekly-revenue by clinic, country and channel", "error", "at most 2"),
            (VIEWER, "report run weekly-revenue by clinic and doctor", "error", "cannot be split by doctor"),
        ],
    )
    ran = await ask(seeded, "report run weekly-revenue for last month by clinic and channel", as_email=VIEWER)
    assert ran.kind == "answer", ran.text
    assert ran.title == "Weekly revenue (for last month, by location and source channel)"
    assert ran.images[0].content.startswith(PNG)
    figures = ran.attachments[0].content.decode()
    pairs = figures.splitlines()[0].split(",")[1:]
    assert pairs and all(" · " in pair for pair in pairs), pairs  # a line per clinic and channel pair


async def test_a_question_splits_two_ways_and_its_buttons_keep_or_replace_the_split(
    seeded: CommandContext,
) -> None:
    await run_dialog(
        seeded,
        [
            (VIEWER, "appointments last 30 days by clinic and clinic", "error", "named twice"),
            (VIEWER, "orders last month by country, segment and channel", "error", "at most 2"),
            (VIEWER, "revenue last month by currency and clinic", "suggestion", "currency on its own"),
            (
                VIEWER,
                "appointments last 30 days by clinic and campaign",
                "suggestion",
                "cannot be split by campaign",
            ),
        ],
    )
    whole = await ask(seeded, "appointments last 30 days", as_email=VIEWER)
    split = await ask(seeded, "appointments last 30 days by kind and clinic", as_email=VIEWER)
    assert split.kind == "answer" and split.images[0].content.startswith(PNG), split.text
    assert {f.label: f.value for f in split.fields}["Read as"].endswith("by appointment type and location")
    # The same appointments, however they are split: the headline total is the one-figure answer's, and
    # the parts named after it add up to it.
    headline = re.compile(r"\(Europe/Berlin\): (\d+)")
    total = int(headline.findall(whole.text)[0])
    assert int(headline.findall(split.text)[0]) == total, (split.text, whole.text)
    named = re.split(r", | and ", split.text.split("(Europe/Berlin): ")[1].split(": ", 1)[1].rstrip("."))
    assert len(named) > 1, split.text
    if named[-1].endswith(" more"):  # the first five are named, then how many more
        assert len(named) == 6 and sum(int(p.rsplit(" ", 1)[1]) for p in named[:-1]) < total, split.text
    else:
        assert sum(int(p.rsplit(" ", 1)[1]) for p in named) == total, split.text
    commands = {b.label: b.command for b in split.buttons}
    assert commands["last 7 days"] == "kpi appointments last 7 days by kind and location"
    assert commands["by service"] == "kpi appointments last 30 days by service"  # another split alone
    again = await ask(seeded, commands["vs previous"], as_email=VIEWER)
    assert again.kind == "answer" and "by appointment type and location" in again.text + str(again.fields), (
        again.text
    )


async def test_retention_and_attribution_answer_with_their_chart_and_rows(seeded: CommandContext) -> None:
    retention = await ask(seeded, "retention by cohort this year", as_email=VIEWER)
    assert retention.kind == "answer" and retention.images[0].content.startswith(PNG), retention.text
    assert retention.table is not None and retention.table.columns[:2] == ("First order in", "Customers")
    assert sum(int(row[1]) for row in retention.table.rows) == int(
        retention.text.split()[1]
    )  # "Of N customers"
    attribution = await ask(seeded, "attribution last quarter", as_email=VIEWER)
    assert attribution.kind == "answer" and attribution.images[0].content.startswith(PNG), attribution.text
    assert "net of refunds" in attribution.text
    wrong = await ask(seeded, "attribution since the dawn of time", as_email=VIEWER)
    assert wrong.kind == "error" and "as a period" in wrong.text


@pytest.mark.parametrize(
    ("asked", "title", "same_as"),
    [
        ("what's our ROI last quarter?", "Attribution", "attribution last quarter"),
        ("costs vs revenue last quarter", "Attribution", "attribution last quarter"),
        ("Kosten gegen Umsatz letztes Quartal", "Attribution", "attribution last quarter"),
        ("which messages led to orders last quarter", "Attribution", "attribution last quarter"),
        ("show me retention by cohort this year", "Retention by cohort", "retention by cohort this year"),
        ("Kohorten dieses Jahr", "Retention by cohort", "retention by cohort this year"),
    ],
)
async def test_the_analyses_are_asked_for_in_words_as_managers_ask(
    seeded: CommandContext, asked: str, title: str, same_as: str
) -> None:
    """ "costs vs revenue" answered the cost alone ("Ignored: revenue."); "ROI" and "cohorts" were not
    understood: only the typed `attribution` and `retention by cohort` reached these answers."""
    said = await ask(seeded, asked, as_email=VIEWER)
    typed = await ask(seeded, same_as, as_email=VIEWER)
    assert said.kind == "answer" and said.title == title, (said.title, said.text)
    assert said.text == typed.text and said.table == typed.table


async def test_an_analysis_asked_without_a_period_says_which_it_took_and_figures_stay_kpis(
    seeded: CommandContext,
) -> None:
    roi = await ask(seeded, "what is our ROI?", as_email=VIEWER)
    assert roi.title == "Attribution" and roi.text.endswith(
        "No period was given, so this is the last 30 days."
    )
    # A figure that names revenue or cost stays that figure.
    for asked, title in (
        ("communication cost last month", "Communication cost"),
        ("attributed revenue last month", "Campaign revenue"),
        ("how much did Berlin bring in yesterday", "Revenue"),
    ):
        answer = await ask(seeded, asked, as_email=VIEWER)
        assert answer.title == title, (asked, answer.title, answer.text)
    # A typed command that names the word is that command, mistyped too; and what the analysis cannot honour
    # is said, not dropped.
    for typed in ("report save ROI", "reprot save ROI"):
        saved = await ask(seeded, typed, as_email=MANAGER)  # nothing asked yet: the command's own refusal
        assert saved.text.startswith("There is no question to save yet"), (typed, saved.text)
    split = await ask(seeded, "costs vs revenue by clinic last quarter", as_email=VIEWER)
    assert split.title == "Attribution" and split.text.endswith(
        "Not read: by clinic (the attribution is the whole business's, one period at a time)."
    )
    before = await ask(seeded, "ROI january 2020", as_email=VIEWER)  # before any order: no "Of 0 … (n/a)"
    assert before.text.startswith("No counted order was placed 1–31 Jan 2020 (Europe/Berlin)"), before.text
    assert "There are no figures for then: the records start on " in before.text and "n/a" not in before.text
    backwards = await ask(seeded, "ROI from 1 March 2026 to 5 February 2026", as_email=VIEWER)
    assert backwards.kind == "error" and "No period was given" not in backwards.text


async def test_a_campaign_is_created_in_one_line_counted_first_and_saved_on_confirm(
    seeded: CommandContext,
) -> None:
    line = "campaign new Winter check-up template welcome with clinic=Mitte to everyone on sms then email after 30 min"
    counted = await ask(seeded, line, as_email=MANAGER)  # money as every answer writes it, not "1.63 USD"
    assert re.search(r"for about US\$[\d,]+\.\d\d\. Save it as a draft\?", counted.text), counted.text
    assert re.fullmatch(
        r"US\$[\d,]+\.\d\d", next(f.value for f in counted.fields if f.label == "Estimated cost")
    )
    table = [
        (MANAGER, line, "answer", "Save it as a draft?"),
        (
            MANAGER,
            "campaign new Winter template welcome to everyone on sms",
            "error",
            "needs a value for clinic",
        ),
        (MANAGER, "campaign new Winter template nope to everyone on sms", "error", "no active template"),
        (
            MANAGER,
            "campaign new Winter template welcome with clinic=M to planet:mars on sms",
            "error",
            "not an audience",
        ),
        (
            MANAGER,
            "campaign new Winter template welcome with clinic=M to country:AQ on sms",
            "error",
            "No customer matches",
        ),
        (
            MANAGER,
            "campaign new Winter template welcome with clinic=M to everyone on pigeon",
            "error",
            "not a channel",
        ),
        (
            MANAGER,
            "campaign new Winter template welcome with clinic=M to everyone on sms at 2020-01-01 09:00",
            "error",
            "has passed",
        ),
        (AGENT, f"{line} confirm", "denied", "manager"),
    ]
    await run_dialog(seeded, table)
    async with seeded.database.read_sessions() as session:
        assert (
            await session.scalar(
                select(func.count()).select_from(BulkMessaging).where(BulkMessaging.slug.like("winter%"))
            )
            == 0
        )
    asked = await ask(seeded, line, as_email=MANAGER)
    planned = next(f.value for f in asked.fields if f.label == "Will be sent")
    saved = await ask(seeded, asked.buttons[0].command, as_email=MANAGER)
    assert saved.kind == "answer" and "winter-check-up" in saved.text, saved.text
    assert next(f.value for f in saved.fields if f.label == "Will be sent") == planned
    async with seeded.database.read_sessions() as session:
        stored = await session.scalar(select(BulkMessaging).where(BulkMessaging.slug == "winter-check-up"))
        actions = list(await session.scalars(select(AuditLog.action)))
    assert stored is not None and stored.status == "draft" and stored.channel_order == ["sms", "email"]
    assert stored.fallback_after_minutes == 30 and stored.variables == {"clinic": "Mitte"}
    assert actions == ["campaign.create"]


async def test_each_clinic_manager_gets_their_clinic_from_one_scheduled_report(
    seeded: CommandContext,
) -> None:
    from storage.models import Location, ReportSchedule
    from storage.schedules import SqlScheduleStore

    async with seeded.database.read_sessions() as session:
        code, name = (
            await session.execute(select(Location.code, Location.name).order_by(Location.id).limit(1))
        ).one()
    table = [
        (
            MANAGER,
            f"report schedule weekly-revenue every monday 8:00 to mitte@northwind.example for clinic {name}",
            "answer",
            f"only location {code}",
        ),
        (
            MANAGER,
            "report schedule weekly-revenue every monday 8:00 to x@northwind.example for clinic Atlantis",
            "error",
            "not a location we have",
        ),
        (
            MANAGER,
            "report schedule weekly-revenue every monday 8:00 to x@northwind.example for doctor Who",
            "error",
            "cannot be split by",
        ),
    ]
    await run_dialog(seeded, table)
    async with seeded.database.read_sessions() as session:
        schedule = await session.scalar(select(ReportSchedule))
        assert schedule is not None and schedule.filters == [
            {"dimension": "location", "operator": "in", "value": [code]}
        ]
        due = await SqlScheduleStore(session).get(schedule.id)
    assert due is not None and due.report_name == f"Weekly revenue (location {code})"
    assert due.definition["query"]["filters"] == [
        {"dimension": "location", "operator": "in", "value": [code]}
    ]
    assert due.recipient_filters == ({"dimension": "location", "operator": "in", "value": [code]},)

    # The redraw buttons a delivery carries keep the clinic; pressing one runs them for that clinic only.
    from reports.redraw import redraws

    button = redraws(due.report_slug, due.definition, due.recipient_filters)[0]
    assert button.command.endswith(f" only location {code}")
    redrawn = await ask(seeded, button.command, as_email=MANAGER)
    assert redrawn.kind == "answer" and f"only location {code}" in (redrawn.title or ""), redrawn.text
    assert all(b.command.endswith(f" only location {code}") for b in redrawn.buttons)
    refused = await ask(seeded, "report run weekly-revenue by country only clinic Atlantis", as_email=MANAGER)
    assert refused.kind == "error" and "not a location we have" in refused.text


async def test_a_one_line_campaign_can_aim_at_a_clinic_and_at_patients_not_seen_since_a_day(
    seeded: CommandContext,
) -> None:
    from zoneinfo import ZoneInfo

    from storage.models import Appointment, Customer, Location

    async with seeded.database.read_sessions() as session:
        code, location_id = (
            await session.execute(select(Location.code, Location.id).order_by(Location.id).limit(1))
        ).one()
        seen = select(Appointment.customer_id).where(
            Appointment.status == "completed",
            Appointment.scheduled_at >= datetime(2026, 9, 1, tzinfo=ZoneInfo(seeded.business_tz)),
        )
        expected = await session.scalar(
            select(func.count())
            .select_from(Customer)
            .where(
                Customer.home_location_id == location_id,
                Customer.phone_e164.is_not(None),
                Customer.id.not_in(seen),
            )
        )
    line = (
        f"campaign new Recall template welcome with clinic=Mitte to clinic:{code.lower()}, "
        "not-visited-since:2026-09-01 on sms"
    )
    asked = await ask(seeded, line, as_email=MANAGER)
    if expected:
        assert asked.kind == "answer" and f"of {expected:,} recipients" in asked.text, asked.text
    else:
        assert "No customer matches" in asked.text
    table = [
        (MANAGER, line.replace("2026-09-01", "1st of September"), "error", "is not a day"),
        (MANAGER, line.replace(f"clinic:{code.lower()}", "opted-in:pigeon"), "error", "not a channel"),
        (
            MANAGER,
            line.replace(f"clinic:{code.lower()}", "visited-since:2026-10-01"),
            "error",
            "must be after 'visited_since'",
        ),
    ]
    await run_dialog(seeded, table)


async def test_customer_find_reads_a_number_as_said_a_name_in_any_case_and_wildcards_as_letters(
    seeded: CommandContext,
) -> None:
    from storage.models import Customer

    async with seeded.database.read_sessions() as session:
        customer = (
            await session.execute(
                select(Customer.id, Customer.name, Customer.phone_e164)
                .where(Customer.phone_e164.like("+49%"), Customer.name.like("% %"))
                .order_by(Customer.id)
                .limit(1)
            )
        ).one()
        everyone = await session.scalar(select(func.count()).select_from(Customer))
    national = "0" + customer.phone_e164.removeprefix("+49")
    spoken = f"{national[:4]} {national[4:]}"  # "0151 2345678", as a patient reads it out
    surname = customer.name.split()[-1]
    table = [
        (AGENT, f"customer find {spoken}", "answer", f"#{customer.id} "),
        (AGENT, f"customer find {surname.upper()}", "answer", f"#{customer.id} "),
    ]
    await run_dialog(seeded, table)
    # "%" is a letter, not "anything": it finds no one rather than everyone.
    reply = render_reply(await ask(seeded, "customer find %", as_email=AGENT))
    assert "No customer matches" in reply and everyone
    # More than a page: "more than 10", never the 10 shown as if they were all (38 matched "Schmidt").
    from storage.models import Customer

    async with seeded.database.read_sessions() as session:
        names = list(await session.scalars(select(Customer.name)))
    common = max({n.split()[-1] for n in names}, key=lambda last: sum(last in n for n in names))
    matching = sum(common.lower() in n.lower() for n in names)
    said = (await ask(seeded, f"customer find {common}", as_email=AGENT)).text
    if matching > 10:
        assert said.startswith(f"More than 10 customers match “{common}”: the first 10"), said
    else:
        assert said.startswith(f"{matching} customer"), said


async def test_a_manager_asks_how_a_campaign_did_how_many_no_shows_and_this_month_against_the_last(
    seeded: CommandContext,
) -> None:
    async with seeded.database.read_sessions() as session:
        slug, name = (
            await session.execute(
                select(BulkMessaging.slug, BulkMessaging.name)
                .where(BulkMessaging.status == "completed", BulkMessaging.launched_at.is_not(None))
                .order_by(BulkMessaging.launched_at.desc())
                .limit(1)
            )
        ).one()
    for question in (f"how did the {name} campaign do?", f"campaign status {name.lower()}"):
        reply = await ask(seeded, question, as_email=MANAGER)
        assert reply.kind == "answer" and reply.title == f"Campaign {slug}", render_reply(reply)
        commands = [button.command for button in reply.buttons]
        assert any(
            c.startswith("kpi campaign_revenue since ") and c.endswith(f"campaign={slug}") for c in commands
        )
    revenue = await ask(seeded, next(c for c in commands if "campaign_revenue" in c), as_email=MANAGER)
    assert revenue.kind == "answer" and "Ignored" not in render_reply(revenue), render_reply(revenue)

    no_shows = await ask(seeded, "how many no-shows last month?", as_email=MANAGER)
    assert re.search(r": \d+\.\d% \(\d+ no-shows? of [\d,]+ appointments? due\)", no_shows.text), (
        no_shows.text
    )
    compared = await ask(seeded, "compare revenue this month with last month", as_email=MANAGER)
    assert "(the same days last month)" in compared.text, render_reply(compared)


async def test_a_campaign_value_with_spaces_is_quoted_in_one_line(seeded: CommandContext) -> None:
    line = 'campaign new Quoted template welcome with clinic="Berlin Mitte" to everyone on sms'
    asked = await ask(seeded, line, as_email=MANAGER)
    assert asked.kind == "answer" and "Save it as a draft?" in render_reply(asked), render_reply(asked)
    saved = await ask(seeded, asked.buttons[0].command, as_email=MANAGER)
    assert saved.kind == "answer", saved.text
    async with seeded.database.read_sessions() as session:
        stored = await session.scalar(select(BulkMessaging).where(BulkMessaging.slug == "quoted"))
    assert stored is not None and stored.variables == {"clinic": "Berlin Mitte"}
    unquoted = await ask(
        seeded,
        "campaign new Loose template welcome with clinic=Berlin Mitte to everyone on sms",
        as_email=MANAGER,
    )
    assert unquoted.kind == "error" and 'quote a value with spaces: offer="' in unquoted.text, unquoted.text


async def test_a_campaign_gives_german_messages_their_own_values(seeded: CommandContext) -> None:
    """`offer[de]=…` in `campaign new`, as in the wizard: the preview warns, with how many, where German messages
    would read a value typed once (not a code, which reads alike), and a value for one language alone, for a
    language the template is not written in, empty or misspelt, is refused."""
    english = 'campaign new Winter DE template seasonal_offer with offer="10% off" code=WINTER to country:DE on email'
    asked = await ask(seeded, english, as_email=MANAGER)
    assert asked.kind == "answer", asked.text
    planned = re.search(r"would send it to ([\d,]+) of", asked.text)
    assert planned is not None
    count = int(planned.group(1).replace(",", ""))  # everyone in Germany reads the German message
    many = count != 1
    assert (
        f"⚠ The {count:,} German message{'s' if many else ''} read{'' if many else 's'} offer (“10% off”) as "
        "written here: add offer[de]=… to the command for a German value."
    ) in asked.text, asked.text
    british = await ask(seeded, english.replace("country:DE", "country:GB"), as_email=MANAGER)
    assert british.kind == "answer" and "⚠" not in british.text, british.text

    both = english.replace("code=WINTER", 'code=WINTER offer[de]="10 % Rabatt"')
    translated = await ask(seeded, both, as_email=MANAGER)
    assert translated.kind == "answer" and "⚠" not in translated.text, translated.text
    saved = await ask(seeded, translated.buttons[0].command, as_email=MANAGER)
    assert saved.kind == "answer" and saved.text.endswith("nothing is sent until it is launched."), saved.text
    async with seeded.database.read_sessions() as session:
        stored = await session.scalar(select(BulkMessaging).where(BulkMessaging.slug == "winter-de"))
    assert stored is not None and stored.variables == {
        "offer": "10% off",
        "code": "WINTER",
        "by_language": {"de": {"offer": "10 % Rabatt"}},
    }

    refusals = {
        english.replace('offer="10% off"', 'offer[de]="10 % Rabatt"'): (
            "offer[de] has no value for the other languages: write offer=… as well"
        ),
        english.replace("code=WINTER", "code=WINTER offer[fr]=x"): (
            "has no French message (it is written in English and German)"
        ),
        english.replace("offer=", "ofer="): "reads code and offer, not ofer.",
        english.replace("code=WINTER", "code="): "code has no value: give it one",
        english.replace("code=WINTER", "code=WINTER code=SPRING"): "code is given twice; keep one.",
    }
    for line, words in refusals.items():
        refused = await ask(seeded, line, as_email=MANAGER)
        assert refused.kind == "error" and words in refused.text, (line, refused.text)


async def test_appointments_today_and_this_week_are_the_whole_days_booked(seeded: CommandContext) -> None:
    """At 10:30 the front desk asked "appointments today" and got the 0 held so far; the day's bookings
    were there. Recounted from the rows: every booking (not cancelled) of the whole day and week."""
    from storage.models import Appointment

    berlin = ZoneInfo("Europe/Berlin")
    today = NOW.astimezone(berlin).date()
    monday = today - timedelta(days=today.weekday())
    for text, first, days in (("appointments today", today, 1), ("Termine diese Woche", monday, 7)):
        start = datetime.combine(first, datetime.min.time(), berlin)
        end = datetime.combine(first + timedelta(days=days), datetime.min.time(), berlin)
        async with seeded.database.read_sessions() as session:
            booked = await session.scalar(
                select(func.count())
                .select_from(Appointment)
                .where(Appointment.status != "cancelled", Appointment.scheduled_at >= start)
                .where(Appointment.scheduled_at < end)
            )
        assert booked, "the seed books appointments ahead, or this test shows nothing"
        reply = await ask(seeded, text, as_email=VIEWER)
        assert reply.kind == "answer" and "so far" not in reply.text, reply.text
        assert f"(Europe/Berlin): {booked:,}." in reply.text, (text, booked, reply.text)


async def test_a_campaign_list_cut_short_says_of_how_many(
    seeded: CommandContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said "25 campaigns, newest first." when there were 27."""
    from bot.commands import campaigns

    async with seeded.database.read_sessions() as session:
        total = await session.scalar(select(func.count()).select_from(BulkMessaging))
    assert total and total > 1
    monkeypatch.setattr(campaigns, "CAMPAIGNS_LISTED", 1)
    reply = await ask(seeded, "campaign list", as_email=VIEWER)
    assert reply.text.startswith(f"The newest 1 of {total:,} campaigns"), reply.text


async def test_the_front_desk_asks_who_is_on_duty_and_the_roster_is_the_rows(seeded: CommandContext) -> None:
    from storage.models import ClinicianHours, Location, StaffUser

    today = seeded.now().astimezone(ZoneInfo(seeded.business_tz)).date()
    async with seeded.database.read_sessions() as session:
        rows = (
            await session.execute(
                select(StaffUser.name, Location.name, ClinicianHours.starts, ClinicianHours.ends)
                .join(ClinicianHours, ClinicianHours.staff_id == StaffUser.id)
                .outerjoin(Location, Location.id == StaffUser.location_id)
                .where(ClinicianHours.weekday == today.weekday(), StaffUser.active.is_(True))
            )
        ).all()
        online = await session.scalar(
            select(func.count()).where(
                StaffUser.active.is_(True),
                StaffUser.availability == "online",
                StaffUser.role.in_(("agent", "manager", "admin")),
            )
        )
    people, clinics = {r[0] for r in rows}, {r[1] for r in rows}
    for asked in ("who is on duty today?", "Wer hat heute Dienst?", "team"):
        reply = await ask(seeded, asked, as_email=AGENT)
        assert reply.kind == "answer" and reply.table is not None, asked
        if people:
            assert reply.text.startswith(
                f"{len(people)} {'person works' if len(people) == 1 else 'people work'} today at "
                f"{len(clinics)} clinic{'' if len(clinics) == 1 else 's'}."
            ), reply.text
        assert f"Taking live chat now: {online}" in reply.text
        # Online without hours today: "no hours (live chat only)", or "none on Mondays" when they have some
        # on other days.
        listed = {
            row[1]
            for row in reply.table.rows
            if row[2] != "no hours (live chat only)" and not row[2].startswith("none on ")
        }
        assert listed == people
        for name, _clinic, starts, ends in rows:
            row = next(r for r in reply.table.rows if r[1] == name)
            assert f"{starts:%H:%M}–{ends:%H:%M}" in row[2]


async def test_the_roster_of_one_clinic_on_a_day_said_in_words_is_its_rows(seeded: CommandContext) -> None:
    """ "wer hat übermorgen Dienst", a date and a clinic's name were no roster questions."""
    from storage.models import ClinicianHours, Location, StaffUser

    today = seeded.now().astimezone(ZoneInfo(seeded.business_tz)).date()
    after = today + timedelta(days=2)
    async with seeded.database.read_sessions() as session:
        code, clinic = (
            await session.execute(select(Location.code, Location.name).order_by(Location.id))
        ).first()
        people = set(
            await session.scalars(
                select(StaffUser.name)
                .join(ClinicianHours, ClinicianHours.staff_id == StaffUser.id)
                .join(Location, Location.id == StaffUser.location_id)
                .where(ClinicianHours.weekday == after.weekday(), StaffUser.active.is_(True))
                .where(Location.code == code)
            )
        )
        everyone = set(
            await session.scalars(
                select(StaffUser.name)
                .join(ClinicianHours, ClinicianHours.staff_id == StaffUser.id)
                .where(ClinicianHours.weekday == after.weekday(), StaffUser.active.is_(True))
            )
        )
    assert people and everyone > people, "the seed gives the clinic and another clinicians that day"
    for asked in (f"wer hat übermorgen in {clinic} Dienst?", f"team day after tomorrow {code.lower()}"):
        reply = await ask(seeded, asked, as_email=AGENT)
        assert reply.kind == "answer" and reply.table is not None, (asked, reply.text)
        assert {row[1] for row in reply.table.rows} == people, asked
        assert {row[0] for row in reply.table.rows} == {clinic}
        assert reply.text.startswith(f"{len(people)} people work at {clinic} on {after:%A}"), reply.text
    everywhere = await ask(seeded, f"who is on duty on {after.day} {after:%b}?", as_email=AGENT)
    assert everywhere.table is not None and {row[1] for row in everywhere.table.rows} == everyone
    unknown = await ask(seeded, "team tomorrow atlantis", as_email=AGENT)
    assert unknown.kind == "error" and unknown.text.startswith(
        "There is no clinic “atlantis”; the clinics are:"
    )
    assert f"{clinic} ({code})" in unknown.text
    passed = await ask(seeded, "team yesterday", as_email=AGENT)
    assert passed.kind == "error" and "has passed" in passed.text


async def test_a_customer_s_preferences_in_the_bot_say_the_business_s_rules_where_they_set_none(
    seeded: CommandContext,
) -> None:
    """The bot said "—" for quiet hours and the marketing limit while the business's rules held."""
    from storage.models import CommunicationPreference

    async with seeded.database.read_sessions() as session:
        customer_id = await session.scalar(
            select(CommunicationPreference.customer_id)
            .where(
                CommunicationPreference.quiet_hours_start.is_(None),
                CommunicationPreference.marketing_max_per_week.is_(None),
            )
            .order_by(CommunicationPreference.customer_id)
            .limit(1)
        )
    assert customer_id is not None, "the seed leaves some customers' preferences to the business"
    reply = await ask(seeded, f"customer prefs {customer_id}", as_email=AGENT)
    said = {field.label: field.value for field in reply.fields}
    assert said["Quiet hours"] == "21:00–08:00, the business's default", said
    assert said["Weekly marketing limit"] == (
        "none of their own; the business sends at most 1 a day and 3 a week on a channel"
    )


async def test_a_clinic_added_a_moment_ago_is_understood_in_a_question_at_once(
    seeded: CommandContext,
) -> None:
    """The names of clinics were read once a minute, so "who is on duty tomorrow in Altona?" right after
    `switchboard clinic add` was not a roster question."""
    from storage.models import Location

    asked = "wer hat morgen in Hamburg Altona Dienst?"
    before = await ask(seeded, asked, as_email=AGENT)  # reads (and keeps) the names as they are
    assert not (before.title or "").startswith("On duty at Hamburg Altona"), before.text
    async with seeded.database.sessions() as session:
        session.add(Location(code="HHA", name="Hamburg Altona", timezone="Europe/Berlin", country="DE"))
        await session.commit()
    after = await ask(seeded, asked, as_email=AGENT)
    assert (after.title or "").startswith("On duty at Hamburg Altona"), (after.title, after.text)


async def test_a_figure_for_a_clinic_there_is_not_is_refused_not_answered_for_everyone(
    seeded: CommandContext,
) -> None:
    from storage.models import Location

    async with seeded.database.read_sessions() as session:
        codes = list(await session.scalars(select(Location.code)))
    answer = await ask(seeded, "revenue last month for clinic Paris", as_email=VIEWER)
    assert answer.kind == "error" and answer.text.startswith(
        "There is no clinic “Paris”, so I did not answer for the whole business instead; the clinics are: "
    ), answer.text
    assert all(f"({code})" in answer.text for code in codes)
    assert answer.images == ()


async def test_a_period_before_the_records_has_no_figure_rather_than_zero(seeded: CommandContext) -> None:
    """ "Revenue, 1–31 Jan 2020: €0.00." read as a month with no sales; nothing was recorded then."""
    from storage.models import Order

    async with seeded.database.read_sessions() as session:
        first = await session.scalar(select(func.min(Order.created_at)))
    assert first is not None
    began = first.astimezone(ZoneInfo(seeded.business_tz)).date()
    answer = await ask(seeded, "revenue january 2020", as_email=VIEWER)
    assert answer.text.startswith(
        f"Revenue, 1–31 Jan 2020 (Europe/Berlin): no figures, as the records start on {began.day} "
        f"{began:%b %Y}."
    ), answer.text
    assert "€0.00" not in answer.text
    # The chart has gaps there, not a flat line at 0 (the review).
    from reports.answer import answer as answered
    from reports.periods import PeriodSpec
    from reports.query import MetricQuery

    january = await answered(
        seeded.database,
        MetricQuery(
            metrics=("revenue",),
            period=PeriodSpec("between", start_date=date(2020, 1, 1), end_date=date(2020, 1, 31)),
            grain="day",
        ),
        now=seeded.now(),
        business_tz=seeded.business_tz,
    )
    assert all(s.total is None and all(v is None for _, v in s.points) for s in january.result.series)
    # A period starting before the records, compared with the one before: said once, in one clause.
    month = date(began.year, began.month, 1)
    compared = await ask(seeded, f"revenue {month:%B %Y} vs previous", as_email=VIEWER)
    if began.day > 1:
        assert compared.text.count("the records start on") == 1, compared.text
        assert "so this counts from then, with nothing before it to compare with." in compared.text


async def test_report_save_after_an_analysis_refuses_rather_than_save_the_figure_asked_before(
    seeded: CommandContext,
) -> None:
    """ "what's our ROI last quarter?" then `report save Quarterly ROI` saved "No-show rate, today", the figure
    asked before it (the walk)."""
    from sqlalchemy import delete

    from storage.models import CustomReport

    assert (await ask(seeded, "no-show rate today", as_email=MANAGER)).kind == "answer"
    assert (await ask(seeded, "what's our ROI last quarter?", as_email=MANAGER)).title == "Attribution"
    refused = await ask(seeded, "report save Quarterly ROI", as_email=MANAGER)
    assert refused.kind == "error" and refused.text.startswith(
        "The last answer cannot be saved as a report: the attribution is an analysis, not a figure"
    ), refused.text
    async with seeded.database.read_sessions() as session:
        assert (
            await session.scalar(select(CustomReport.id).where(CustomReport.name == "Quarterly ROI")) is None
        )
    # A figure asked after it is saved as usual.
    assert (await ask(seeded, "revenue last month by clinic", as_email=MANAGER)).kind == "answer"
    saved = await ask(seeded, "report save Quarterly ROI", as_email=MANAGER)
    assert saved.kind == "answer", saved.text
    async with seeded.database.sessions() as session:  # the other tests' report lists stay as they were
        await session.execute(delete(CustomReport).where(CustomReport.name == "Quarterly ROI"))
        await session.commit()
