"""The demo's live-chat SLA policies (a default and one clinic's own) and the breaches of its seeded history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from domain.conversations.sla import BusinessHours, SlaMetric, SlaPolicy, policy_for
from storage.models import ChatSession
from storage.seeding.writer import IdSequence, RowSink
from storage.sla import chats_with_their_clinic

Row = dict[str, Any]

#: Public holidays both policies close on (Germany's, around the demo's calendar).
HOLIDAYS = [
    "2025-01-01", "2025-04-18", "2025-04-21", "2025-05-01", "2025-10-03", "2025-12-24", "2025-12-25",
    "2025-12-26", "2025-12-31", "2026-01-01", "2026-04-03", "2026-04-06", "2026-05-01", "2026-10-03",
    "2026-12-24", "2026-12-25", "2026-12-26", "2026-12-31", "2027-01-01",
]  # fmt: skip
WEEKDAY = [["08:00", "12:30"], ["13:30", "18:00"]]
DEFAULT_HOURS = {day: WEEKDAY for day in ("mon", "tue", "wed", "thu", "fri")} | {"sat": [["09:00", "13:00"]]}
#: Berlin Mitte (location 1) keeps longer hours without a lunch break and answers faster.
MITTE_HOURS = {day: [["08:00", "20:00"]] for day in ("mon", "tue", "wed", "thu", "fri")} | {
    "sat": [["10:00", "16:00"]]
}
MITTE_LOCATION = 1
#: Chats per query while the history's breaches are worked out.
CHUNK = 20_000


def sla_policy_rows(created_at: datetime) -> list[Row]:
    common = {"warn_before_minutes": 5, "holidays": HOLIDAYS, "enabled": True, "created_at": created_at}
    return [
        {
            "id": 1,
            "name": "Standard",
            "location_id": None,
            "first_response_minutes": 15,
            "next_response_minutes": 30,
            "resolution_minutes": 8 * 60,
            "business_hours": DEFAULT_HOURS,
            **common,
        },
        {
            "id": 2,
            "name": "Berlin Mitte",
            "location_id": MITTE_LOCATION,
            "first_response_minutes": 10,
            "next_response_minutes": 20,
            "resolution_minutes": 6 * 60,
            "business_hours": MITTE_HOURS,
            **common,
        },
    ]


def _policies(rows: list[Row]) -> list[SlaPolicy]:
    return [
        SlaPolicy(
            r["id"],
            r["name"],
            r["first_response_minutes"],
            r["next_response_minutes"],
            r["resolution_minutes"],
            r["warn_before_minutes"],
            r["business_hours"],
            r["holidays"],
            r["location_id"],
            r["enabled"],
        )
        for r in rows
    ]


async def seed_sla_history(
    connection: AsyncConnection, sink: RowSink, ids: IdSequence, policy_rows: list[Row], end_at: datetime
) -> None:
    """A breach for each seeded conversation answered or resolved after its due time (or not by the seed's
    end), recorded at the due time and counted as already posted to Slack, so the demo starts quiet.
    Next responses are not worked out for the history (they need every turn); the worker times them live."""
    policies = _policies(policy_rows)
    hours: dict[tuple[int, str], BusinessHours] = {}
    last_id = 0
    while True:
        rows = (
            await connection.execute(
                chats_with_their_clinic()
                .where(ChatSession.id > last_id)
                .order_by(ChatSession.id)
                .limit(CHUNK)
            )
        ).all()
        if not rows:
            return
        last_id = rows[-1][0]
        for chat_id, started_at, first_response_at, closed_at, staff_id, location_id, timezone in rows:
            policy = policy_for(policies, location_id)
            if policy is None or timezone is None:
                continue
            key = (policy.policy_id, timezone)
            if key not in hours:
                hours[key] = BusinessHours.read(timezone, policy.business_hours, policy.holidays)
            for metric, done in (
                (SlaMetric.FIRST_RESPONSE, first_response_at),
                (SlaMetric.RESOLUTION, closed_at),
            ):
                target = policy.target(metric)
                due = None if target is None else hours[key].add_minutes(started_at, target)
                if due is None:
                    continue
                due = due.replace(microsecond=0)
                if due < end_at and (done is None or done > due):
                    sink.add(
                        "chat_sla_events",
                        {
                            "id": ids.next("chat_sla_events"),
                            "session_id": chat_id,
                            "metric": metric.value,
                            "kind": "breach",
                            "due_at": due,
                            "occurred_at": due,
                            "staff_id": staff_id,
                            "policy_id": policy.policy_id,
                            "alerted_at": due,
                        },
                    )
                    if sink.full:
                        await sink.flush(connection)
