"""Staff identity: the active staff member behind an email, a Slack or Telegram account, or a session."""

from __future__ import annotations

from sqlalchemy import select

from domain.staff import StaffIdentity
from domain.vocabulary import Availability, Role
from storage.database import Database
from storage.models import StaffUser


def _identity(row: StaffUser | None, via: str) -> StaffIdentity | None:
    if row is None or not row.active:
        return None
    return StaffIdentity(row.id, row.name, row.email, Role(row.role), via)


async def staff_by_id(database: Database, staff_id: int, *, via: str = "web") -> StaffIdentity | None:
    async with database.read_sessions() as session:
        row = await session.get(StaffUser, staff_id)
    return _identity(row, via)


async def staff_by_email(database: Database, email: str, *, via: str = "cli") -> StaffIdentity | None:
    async with database.read_sessions() as session:
        row = await session.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()))
    return _identity(row, via)


async def staff_by_slack(database: Database, team_id: str | None, user_id: str) -> StaffIdentity | None:
    """Slack users are unique per workspace; a row without a team id matches any workspace."""
    query = select(StaffUser).where(StaffUser.slack_user_id == user_id)
    async with database.read_sessions() as session:
        rows = list(await session.scalars(query))
    exact = [r for r in rows if r.slack_team_id == team_id] or [r for r in rows if r.slack_team_id is None]
    return _identity(exact[0] if exact else None, "slack")


async def staff_by_telegram(database: Database, telegram_user_id: int) -> StaffIdentity | None:
    async with database.read_sessions() as session:
        row = await session.scalar(select(StaffUser).where(StaffUser.telegram_user_id == telegram_user_id))
    return _identity(row, "telegram")


async def first_admin(database: Database, *, via: str = "cli") -> StaffIdentity | None:
    """The console's default identity: the longest-standing active admin."""
    query = (
        select(StaffUser)
        .where(StaffUser.role == Role.ADMIN.value, StaffUser.active.is_(True))
        .order_by(StaffUser.id)
        .limit(1)
    )
    async with database.read_sessions() as session:
        row = await session.scalar(query)
    return _identity(row, via)


async def active_staff_members(database: Database, *, via: str = "web") -> list[StaffIdentity]:
    """Every active staff member (the sandbox's demo sign-in lists them)."""
    async with database.read_sessions() as session:
        rows = list(await session.scalars(select(StaffUser).where(StaffUser.active.is_(True))))
    return [identity for row in rows if (identity := _identity(row, via)) is not None]


async def staff_availability(database: Database, staff_id: int) -> Availability | None:
    """Whether the staff member is at work (given new conversations) or away; None for no such staff member."""
    async with database.read_sessions() as session:
        value = await session.scalar(select(StaffUser.availability).where(StaffUser.id == staff_id))
    return None if value is None else Availability(value)
