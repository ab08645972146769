"""The `sla` command and the SLA KPIs from the staff chat, on a seeded database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.commands.context import CommandContext
from bot.console import ask, render_reply
from storage.database import Database
from storage.models import ChatSession, ChatSlaEvent
from storage.seeding import SeedPlan, seed_database
from switchboard.settings import Settings

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
PLAN = SeedPlan(customers=40, days=45, seed=3, end_date=date(2026, 11, 23))
VIEWER = "finance@northwind.example"


@pytest.fixture
async def seeded(database: Database) -> CommandContext:
    await seed_database(database, PLAN)
    return CommandContext(Settings(database_url=database.url), database, clock=lambda: NOW)


async def test_sla_lists_the_policies_and_todays_breaches_by_conversation(seeded: CommandContext) -> None:
    quiet = render_reply(await ask(seeded, "sla", as_email=VIEWER))
    assert "• Standard (default): first response 15 min, next response 30 min, resolution 8 h" in quiet
    assert "Mon–Fri 08:00–12:30, 13:30–18:00; Sat 09:00–13:00; closed on 19 holidays" in quiet
    assert "• Berlin Mitte (Northwind Berlin Mitte only): first response 10 min" in quiet
    assert "No warnings or breaches today." in quiet

    async with seeded.database.sessions() as session:
        chat = await session.scalar(select(ChatSession).order_by(ChatSession.id).limit(1))
        assert chat is not None
        due = NOW - timedelta(minutes=20)
        session.add_all(
            [
                ChatSlaEvent(
                    session_id=chat.id, metric="first_response", kind="warning", due_at=due,
                    occurred_at=due - timedelta(minutes=4), staff_id=None, policy_id=1, alerted_at=None,
                ),
                ChatSlaEvent(
                    session_id=chat.id, metric="first_response", kind="breach", due_at=due,
                    occurred_at=due, staff_id=None, policy_id=1, alerted_at=due,
                ),
            ]
        )  # fmt: skip
        await session.commit()
    reply = await ask(seeded, "sla", as_email=VIEWER)
    assert reply.kind == "answer" and reply.table is not None
    assert "1 breach and 1 warning today." in reply.text
    assert [row[0] for row in reply.table.rows] == [str(chat.id), str(chat.id)]
    assert [row[4] for row in reply.table.rows] == ["breached", "warning"]
    assert reply.table.rows[0][3] == "first response" and reply.table.rows[0][5] == "24 Nov 10:10"

    week = await ask(seeded, "sla this week", as_email=VIEWER)
    assert week.kind == "answer" and "in the last 7 days" in week.text


async def test_sla_figures_come_from_kpi_questions(seeded: CommandContext) -> None:
    met = await ask(seeded, "kpi sla met rate this week", as_email=VIEWER)
    assert met.kind == "answer" and "SLA met rate" in met.text, met.text
    breaches = await ask(seeded, "kpi sla breaches last 30 days", as_email=VIEWER)
    assert breaches.kind == "answer" and "SLA breaches" in breaches.text, breaches.text
    # Named after `sla`, a figure is the figure (every word read: no detour through `kpi`) ...
    asked = await ask(seeded, "sla met rate", as_email=VIEWER)
    assert asked.kind == "answer" and "SLA met rate" in asked.text, asked.text
    # ... and what `sla` cannot read gets its usage, with how to ask for the figures.
    wrong = await ask(seeded, "sla month", as_email=VIEWER)
    assert wrong.kind == "error" and "kpi sla met rate this week" in render_reply(wrong)
