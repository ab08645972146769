"""Dialog tables for `rule list|enable|disable`, run through the console layer on a seeded database."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select, update

from bot.commands.context import CommandContext
from bot.console import ask
from storage.database import Database
from storage.models import AuditLog, AutomatedNotification, MessageTemplate
from storage.seeding import SeedPlan, seed_database
from storage.seeding.catalogue import NOTIFICATION_RULES
from tests.e2e.test_dialogs import AGENT, MANAGER, VIEWER, _context, run_dialog

#: The seeder's catalogue's rules, all on; a few customers are enough for these commands.
RULES = len(NOTIFICATION_RULES)
PLAN = SeedPlan(customers=12, days=3, seed=5, end_date=date(2026, 11, 20))


@pytest.fixture
async def seeded(database: Database) -> CommandContext:
    await seed_database(database, PLAN)
    return _context(database)


async def rule_states(ctx: CommandContext) -> dict[str, bool]:
    async with ctx.database.read_sessions() as session:
        rows = (
            await session.execute(select(AutomatedNotification.name, AutomatedNotification.enabled))
        ).all()
    return {name: enabled for name, enabled in rows}


async def audit_rows(ctx: CommandContext) -> list[tuple[str, str, str | None, str, dict[str, object]]]:
    async with ctx.database.read_sessions() as session:
        rows = await session.scalars(select(AuditLog).order_by(AuditLog.id))
        return [(a.actor, a.action, a.target, a.via, dict(a.detail or {})) for a in rows]


async def test_viewer_lists_the_rules_but_may_not_switch_them(seeded: CommandContext) -> None:
    table = [
        (VIEWER, "rule list", "answer", f"{RULES} notification rules, {RULES} on"),
        (VIEWER, "rules", "answer", "appointment_reminder_24h"),
        (VIEWER, "rule list", "answer", "1 day before"),
        (VIEWER, "rule list", "answer", "2 h after"),
        (VIEWER, "rule list", "answer", "whatsapp, email, sms"),
        (VIEWER, "help rule", "help", "rule disable NAME"),
        (VIEWER, "rule disable welcome", "denied", "needs the manager role"),
        (AGENT, "rule enable welcome", "denied", "needs the manager role"),
    ]
    await run_dialog(seeded, table)
    assert all((await rule_states(seeded)).values())
    assert await audit_rows(seeded) == []


async def test_manager_disables_and_enables_a_rule_with_an_audit_trail(seeded: CommandContext) -> None:
    table = [
        (MANAGER, "rule disable csat_after_visit", "answer", "Rule csat_after_visit is off"),
        (MANAGER, "rule disable csat_after_visit", "answer", "already off; nothing changed"),
        (VIEWER, "rule list", "answer", f"{RULES} notification rules, {RULES - 1} on"),
        (MANAGER, "rule enable CSAT after visit", "answer", "is on: from now on, appointment.completed"),
    ]
    await run_dialog(seeded, table)
    states = await rule_states(seeded)
    assert states["csat_after_visit"] is True and all(states.values())
    async with seeded.database.read_sessions() as session:
        rule_id = await session.scalar(
            select(AutomatedNotification.id).where(AutomatedNotification.name == "csat_after_visit")
        )
    target = f"notification_rule:{rule_id}"
    assert await audit_rows(seeded) == [
        (MANAGER, "notification_rule.update", target, "cli", {"enabled": False}),
        (MANAGER, "notification_rule.update", target, "cli", {"enabled": True}),
    ]


async def test_manager_disabling_leaves_the_rule_off_in_the_database(seeded: CommandContext) -> None:
    reply = await ask(seeded, "rule disable appointment_reminder_24h", as_email=MANAGER)
    assert reply.kind == "answer" and "already planned still go out" in reply.text
    assert [b.command for b in reply.buttons] == ["rule enable appointment_reminder_24h"]
    assert (await rule_states(seeded))["appointment_reminder_24h"] is False


async def test_unknown_names_and_refusals_are_explained_and_change_nothing(seeded: CommandContext) -> None:
    async with seeded.database.sessions() as session:
        await session.execute(
            update(AutomatedNotification)
            .where(AutomatedNotification.name == "payment_failed")
            .values(enabled=False)
        )
        await session.execute(
            update(MessageTemplate).where(MessageTemplate.name == "payment_failed").values(status="archived")
        )
        await session.commit()
    table = [
        (MANAGER, "rule disable order_confirmaton", "error", "Did you mean order_confirmation?"),
        (MANAGER, "rule enable zzz", "error", "no notification rule “zzz”. Rules: order_confirmation"),
        (MANAGER, "rule enable", "error", "Usage: rule enable NAME"),
        (
            MANAGER,
            "rule enable payment_failed",
            "error",
            "There is no active template named 'payment_failed'",
        ),
    ]
    await run_dialog(seeded, table)
    assert (await rule_states(seeded))["payment_failed"] is False
    assert sum(not on for on in (await rule_states(seeded)).values()) == 1
    assert await audit_rows(seeded) == []
