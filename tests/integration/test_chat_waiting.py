"""Which conversations wait on us: the customer wrote last and nobody answered (a note answers nobody), on
SQLite and PostgreSQL. The walk saw "Waiting 2m 37s" on a chat answered after 18 s, and "how many chats are
waiting" count every open one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.database import Database
from storage.models import ChatMessage, ChatSession, StaffUser
from storage.queries.chats import desk_counts, desk_queue, open_chats
from tests.integration.test_campaigns import add_customer

NOW = datetime.now(UTC).replace(microsecond=0)


async def test_only_conversations_whose_customer_wrote_last_wait_on_us(database: Database) -> None:
    async with database.sessions() as session:
        agent = StaffUser(email="lena@northwind.example", name="Lena", role="agent")
        session.add(agent)
        await session.commit()
        agent_id = agent.id
    customers = [await add_customer(database, f"Patient {n}", phone=f"+4915100000{n:03d}") for n in range(5)]
    turns = {
        "unanswered": [("customer", False, 30), ("customer", False, 20)],
        "answered": [("customer", False, 40), ("staff", False, 39)],
        "only a note": [("customer", False, 25), ("staff", True, 24)],
        "asked again": [("customer", False, 60), ("staff", False, 50), ("customer", False, 10)],
        # Resolved unanswered ("Thanks!"), reopened by the customer writing again 5 minutes ago: waiting since
        # then, not since the "Thanks!" (the review).
        "reopened": [("customer", False, 80), ("customer", False, 5)],
    }
    ids: dict[str, int] = {}
    async with database.sessions() as session:
        for customer_id, (name, said) in zip(customers, turns.items(), strict=True):
            chat = ChatSession(customer_id=customer_id, channel="sms", status="open",
                               started_at=NOW - timedelta(minutes=90), last_message_at=NOW,
                               assigned_staff_id=agent_id if name == "answered" else None,
                               reopened_at=NOW - timedelta(minutes=5) if name == "reopened" else None)  # fmt: skip
            session.add(chat)
            await session.flush()
            ids[name] = chat.id
            for author, note, minutes_ago in said:
                session.add(ChatMessage(session_id=chat.id, author=author, is_note=note, body=name,
                                        staff_id=agent_id if author == "staff" else None,
                                        created_at=NOW - timedelta(minutes=minutes_ago)))  # fmt: skip
        await session.commit()

    waiting = await desk_queue(database, "waiting", agent_id)
    # The longest waiting first: since the customer's oldest unanswered turn.
    assert [row.id for row in waiting] == [
        ids["unanswered"],
        ids["only a note"],
        ids["asked again"],
        ids["reopened"],
    ]
    assert (await desk_counts(database, agent_id))["waiting"] == 4
    since = {chat.id: chat.waiting_since for chat in await open_chats(database)}
    assert since[ids["answered"]] is None
    assert since[ids["unanswered"]] == NOW - timedelta(minutes=30)
    assert since[ids["asked again"]] == NOW - timedelta(minutes=10)
    assert since[ids["reopened"]] == NOW - timedelta(minutes=5)
    # The overview's open conversations name who holds each (its "Agent" column).
    agents = {chat.id: chat.agent for chat in await open_chats(database)}
    assert agents[ids["answered"]] == "Lena" and agents[ids["unanswered"]] is None


async def test_the_overview_s_live_rows_have_a_cell_for_each_column_and_name_the_agent(
    database: Database,
) -> None:
    """The overview's open table gained an Agent column; the live script rebuilds its rows from these cells."""
    from pathlib import Path

    from api.pages.chat import queue_snapshot
    from api.pages.common import Formats

    customer_id = await add_customer(database, "Patient Agent", phone="+4915100000999")
    async with database.sessions() as session:
        agent = StaffUser(email="jonas@northwind.example", name="Jonas Weber", role="agent")
        session.add(agent)
        await session.flush()
        session.add(ChatSession(customer_id=customer_id, channel="sms", status="open", started_at=NOW,
                                last_message_at=NOW, assigned_staff_id=agent.id))  # fmt: skip
        await session.commit()
    _, shown = await queue_snapshot(database, 0, None, Formats("Europe/Berlin", "en_GB", "EUR"))
    template = (Path(__file__).parents[2] / "api/templates/communication/chat.html").read_text()
    header = template.split("{% macro sessions_table", 1)[1].split("</thead>", 1)[0]
    columns = header.count('<th scope="col">')
    assert columns == 9 and '<th scope="col">Agent</th>' in header
    row = next(r for r in shown["rows"] if r["cells"][1]["text"] == "Patient Agent")
    assert len(row["cells"]) == columns and row["cells"][4]["text"] == "Jonas Weber"
