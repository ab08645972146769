"""Read models for the chat widget: keys, visitors, whether anyone is online, and a visitor's turns.

A visitor's turns are their website-chat rows in `customer_communications`, in id order: what they wrote,
and our replies once handed to the widget. A reply still waiting for its hand-over holds back the turns
after it, so a stream that resumes after an id never skips one that was sent late.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from domain.vocabulary import ROLE_RANK, Availability, Channel, Direction, MessageStatus, Role
from domain.widget.model import Visitor, WidgetKey, WidgetTurn, client_id_of, token_hash
from storage.database import Database
from storage.models import ChatWidgetKey, CustomerCommunication, StaffUser
from storage.widget import SqlVisitors

CC = CustomerCommunication
#: Replies not yet handed to the widget: they hold back what comes after them.
WAITING = (MessageStatus.PLANNED.value, MessageStatus.SENDING.value, MessageStatus.QUEUED.value)
#: Replies the widget shows.
SHOWN = (MessageStatus.SENT.value, MessageStatus.DELIVERED.value, MessageStatus.READ.value)


@dataclass(frozen=True)
class TurnPage:
    """Turns after a position, and the position to ask from next time."""

    turns: list[WidgetTurn]
    position: int


def _key(row: ChatWidgetKey) -> WidgetKey:
    origins = tuple(str(o) for o in (row.allowed_origins or []) if isinstance(o, str))
    return WidgetKey(row.id, row.key, row.name, origins, row.location_id, bool(row.enabled))


async def widget_key(database: Database, key: str) -> WidgetKey | None:
    if not key or len(key) > 64:
        return None
    async with database.read_sessions() as session:
        row = await session.scalar(select(ChatWidgetKey).where(ChatWidgetKey.key == key))
    return None if row is None else _key(row)


async def widget_keys(database: Database) -> list[WidgetKey]:
    async with database.read_sessions() as session:
        rows = await session.scalars(select(ChatWidgetKey).order_by(ChatWidgetKey.id))
        return [_key(row) for row in rows]


async def visitor_by_token(database: Database, token: str | None) -> Visitor | None:
    if not token or len(token) > 200:
        return None
    async with database.read_sessions() as session:
        return await SqlVisitors(session).visitor(token_hash(token))


async def agents_online(database: Database) -> int:
    """Active staff who take conversations (agent and up) and are at work now."""
    roles = [role.value for role in Role if ROLE_RANK[role] >= ROLE_RANK[Role.AGENT]]
    async with database.read_sessions() as session:
        count = await session.scalar(
            select(func.count(StaffUser.id)).where(
                StaffUser.active.is_(True),
                StaffUser.availability == Availability.ONLINE.value,
                StaffUser.role.in_(roles),
            )
        )
    return int(count or 0)


async def visitor_turns(
    database: Database, customer_id: int, *, after: int = 0, limit: int = 100
) -> TurnPage:
    """The turns after position `after`, oldest first, stopping before a reply still being handed over."""
    query = (
        select(CC.id, CC.direction, CC.body, CC.status, CC.created_at, CC.sent_at, CC.provider_message_id)
        .where(CC.customer_id == customer_id, CC.channel == Channel.CHAT.value, CC.id > after)
        .order_by(CC.id)
        .limit(limit)
    )
    async with database.read_sessions() as session:
        rows = (await session.execute(query)).all()
    turns: list[WidgetTurn] = []
    position = after
    for message_id, direction, body, status, created_at, sent_at, provider_message_id in rows:
        mine = direction == Direction.INBOUND.value
        if not mine and status in WAITING:
            break
        position = message_id
        if mine or status in SHOWN:
            turns.append(
                WidgetTurn(
                    message_id,
                    mine,
                    body or "",
                    sent_at or created_at,
                    status,
                    client_id_of(provider_message_id) if mine else None,
                )
            )
    return TurnPage(turns, position)


async def recent_turns(database: Database, customer_id: int, *, limit: int = 50) -> TurnPage:
    """The last `limit` turns a returning visitor sees, and the position their live stream starts from."""
    async with database.read_sessions() as session:
        ids = list(
            await session.scalars(
                select(CC.id)
                .where(CC.customer_id == customer_id, CC.channel == Channel.CHAT.value)
                .order_by(CC.id.desc())
                .limit(limit)
            )
        )
    start = min(ids) - 1 if ids else 0
    return await visitor_turns(database, customer_id, after=start, limit=limit)
