"""Canned replies as agents look them up: by shortcut or title prefix, per team, and a conversation's facts."""

from __future__ import annotations

from sqlalchemy import func, or_, select

from domain.canned_replies.model import CannedReply, CustomerFacts
from storage.canned_replies import MAX_ID, canned_reply
from storage.database import Database
from storage.models import CannedReply as CannedReplyRow
from storage.models import ChatSession, Customer, Location


async def search_canned_replies(
    database: Database, text: str = "", *, team: str | None = None, limit: int = 50
) -> list[CannedReply]:
    """Replies whose shortcut or title starts with `text` (any case; a leading `/` is ignored), the exact
    shortcut first, then by shortcut. `team`: that team's and everyone's; None: all of them."""
    wanted = text.strip().lstrip("/").lower()
    query = select(CannedReplyRow)
    if wanted:
        query = query.where(
            or_(
                func.lower(CannedReplyRow.shortcut).startswith(wanted, autoescape=True),
                func.lower(CannedReplyRow.title).startswith(wanted, autoescape=True),
            )
        )
    if team is not None:
        query = query.where(or_(CannedReplyRow.team.is_(None), CannedReplyRow.team == team))
    query = query.order_by(CannedReplyRow.shortcut).limit(limit)
    async with database.read_sessions() as session:
        found = [canned_reply(row) for row in await session.scalars(query)]
    return sorted(found, key=lambda reply: reply.shortcut != wanted)


async def canned_reply_named(database: Database, shortcut: str) -> CannedReply | None:
    """The reply with exactly this shortcut (any case, with or without a leading `/`)."""
    query = select(CannedReplyRow).where(CannedReplyRow.shortcut == shortcut.strip().lstrip("/").lower())
    async with database.read_sessions() as session:
        row = await session.scalar(query)
    return None if row is None else canned_reply(row)


async def canned_reply_by_id(database: Database, reply_id: int) -> CannedReply | None:
    if not 0 < reply_id <= MAX_ID:
        return None
    async with database.read_sessions() as session:
        row = await session.get(CannedReplyRow, reply_id)
    return None if row is None else canned_reply(row)


async def canned_teams(database: Database) -> list[str]:
    """The teams that have canned replies of their own, by name."""
    query = select(CannedReplyRow.team).where(CannedReplyRow.team.is_not(None)).distinct()
    async with database.read_sessions() as session:
        return sorted(str(team) for team in await session.scalars(query))


async def conversation_customer(database: Database, chat_id: int) -> CustomerFacts | None:
    """What a conversation knows about its customer (name, contact details, home clinic), for filling."""
    if not 0 < chat_id <= MAX_ID:
        return None
    query = (
        select(Customer.name, Customer.email, Customer.phone_e164, Location.name)
        .join(ChatSession, ChatSession.customer_id == Customer.id)
        .outerjoin(Location, Location.id == Customer.home_location_id)
        .where(ChatSession.id == chat_id)
    )
    async with database.read_sessions() as session:
        row = (await session.execute(query)).first()
    if row is None:
        return None
    name, email, phone, clinic = row
    return CustomerFacts(name, email, phone, clinic)
