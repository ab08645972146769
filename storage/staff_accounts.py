"""Staff accounts from the command line: the first admin of a new installation, and anyone after."""

from __future__ import annotations

import getpass
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.video.model import ACTIVE_STATUSES
from domain.video.slots import WorkingSpan
from domain.video.working_hours import working_hours_words
from domain.vocabulary import Availability, ChatStatus, Role
from storage.database import Database
from storage.models import AuditLog, ChatSession, ClinicianHours, Location, StaffUser, VideoConsultation
from storage.models.base import utcnow

#: Enough to catch a typo (a name where the email goes, a missing domain); the sign-in link proves the rest.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class StaffAccountRefused(ValueError):
    """An account that cannot be saved as given; the message says why in words."""


def check_timezone(name: str) -> None:
    """A time zone people name ("Europe/Berlin"), or StaffAccountRefused saying so."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise StaffAccountRefused(f"{name!r} is not a time zone (use a name such as Europe/Berlin)") from None


async def _staff_row(session: AsyncSession, email: str) -> StaffUser:
    """The staff member with this (lower-cased) email, or StaffAccountRefused saying there is none."""
    row = await session.scalar(select(StaffUser).where(StaffUser.email == email))
    if row is None:
        raise StaffAccountRefused(f"there is no staff member {email} (switchboard staff list shows them)")
    return row


async def _clinic(session: AsyncSession, said: str) -> Location:
    """The clinic named by its code ("BER") or its name ("Berlin Mitte"), in any case."""
    wanted = " ".join(said.split()).casefold()
    clinics = list(await session.scalars(select(Location).order_by(Location.code)))
    found = [c for c in clinics if wanted in (c.code.casefold(), " ".join(c.name.split()).casefold())]
    if len(found) == 1:
        return found[0]
    if found:  # one clinic's code is another's name
        coded = next((c for c in found if c.code.casefold() == wanted), None)
        if coded is not None:
            return coded
    listed = ", ".join(f"{c.code} ({c.name})" for c in clinics) or "none yet"
    raise StaffAccountRefused(f"there is no clinic {said!r}; the clinics are: {listed}")


@dataclass(frozen=True)
class SavedStaff:
    staff_id: int
    email: str
    name: str
    role: Role
    created: bool
    timezone: str = "UTC"
    #: Their clinic's name, or None when they belong to none.
    clinic: str | None = None


def operator() -> str:
    """Who ran the command, for the audit log."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (a container's DynamicUser, say)
        return "cli"


async def save_staff(
    database: Database,
    email: str,
    name: str | None,
    role: Role | None,
    *,
    actor: str,
    timezone: str | None = None,
    business_timezone: str = "UTC",
    clinic: str | None = None,
) -> SavedStaff:
    """Add a staff member, or update the name and role of the one with this email (reactivating them); a name,
    role, time zone or clinic left out keeps what a known one had. Someone new is an agent in their clinic's
    zone, else in the business's: their working hours are read in it. `clinic` is a clinic's code or name;
    "" takes them out of theirs."""
    email = email.strip().lower()
    if timezone is not None:
        check_timezone(timezone)
    name = " ".join((name or "").split())
    if not _EMAIL.fullmatch(email) or len(email) > 254:
        raise StaffAccountRefused(f"{email!r} is not an email address")
    if len(name) > 200:
        raise StaffAccountRefused("give the staff member's name (1 to 200 characters) with --name")
    async with database.sessions() as session:
        location = await _clinic(session, clinic) if clinic else None
        row = await session.scalar(select(StaffUser).where(StaffUser.email == email))
        created = row is None
        if row is None:
            if not name:
                raise StaffAccountRefused("give the staff member's name (1 to 200 characters) with --name")
            row = StaffUser(
                email=email,
                name=name,
                role=(role or Role.AGENT).value,
                active=True,
                timezone=timezone or (location.timezone if location else business_timezone),
            )
            session.add(row)
        else:
            row.name, row.role, row.active = name or row.name, (role.value if role else row.role), True
            row.timezone = timezone or row.timezone
        if clinic is not None:
            row.location_id = location.id if location else None
        await session.flush()
        clinic_name = (
            location.name
            if location
            else await session.scalar(select(Location.name).where(Location.id == row.location_id))
            if row.location_id
            else None
        )
        session.add(
            AuditLog(
                actor=actor,
                via="cli",
                action="staff.add" if created else "staff.update",
                target=f"staff:{row.id}",
                detail={"email": email, "role": row.role, "clinic": clinic_name, "timezone": row.timezone},
            )
        )
        await session.commit()
        return SavedStaff(row.id, email, row.name, Role(row.role), created, row.timezone, clinic_name)


@dataclass(frozen=True)
class ListedStaff:
    email: str
    name: str
    role: str
    active: bool
    slack_user_id: str | None
    telegram_user_id: int | None
    clinic: str | None = None


async def list_staff(database: Database) -> list[ListedStaff]:
    async with database.read_sessions() as session:
        rows = await session.execute(
            select(
                StaffUser.email,
                StaffUser.name,
                StaffUser.role,
                StaffUser.active,
                StaffUser.slack_user_id,
                StaffUser.telegram_user_id,
                Location.name,
            )
            .outerjoin(Location, Location.id == StaffUser.location_id)
            .order_by(StaffUser.email)
        )
        return [ListedStaff(*row) for row in rows.all()]


_SLACK_ID = re.compile(r"[UW][A-Z0-9]{2,31}")
_SLACK_TEAM = re.compile(r"[TE][A-Z0-9]{2,31}")


async def link_staff(
    database: Database,
    email: str,
    *,
    slack_user_id: str | None = None,
    slack_team_id: str | None = None,
    telegram_user_id: int | None = None,
    actor: str,
) -> str:
    """Tie a staff member to their Slack or Telegram account (the bots then answer them with their role's
    rights); "" (or 0) unlinks it. What changed, in words."""
    email = email.strip().lower()
    if slack_user_id and not _SLACK_ID.fullmatch(slack_user_id):
        raise StaffAccountRefused(
            f"{slack_user_id!r} is no Slack member id (it looks like U01ABCDEF: in Slack, their profile's ⋮ "
            "menu, Copy member ID; the bot's refusal names it too)"
        )
    if slack_team_id and not _SLACK_TEAM.fullmatch(slack_team_id):
        raise StaffAccountRefused(f"{slack_team_id!r} is no Slack workspace id (it looks like T01ABCDEF)")
    async with database.sessions() as session:
        row = await _staff_row(session, email)
        said: list[str] = []
        if slack_user_id is not None:
            await _not_linked_to_another(
                session, row.id, StaffUser.slack_user_id, slack_user_id, "Slack member"
            )
            row.slack_user_id = slack_user_id or None
            if slack_team_id is not None:
                row.slack_team_id = slack_team_id or None
            said.append(f"Slack {slack_user_id}" if slack_user_id else "Slack unlinked")
        if telegram_user_id is not None:
            await _not_linked_to_another(
                session, row.id, StaffUser.telegram_user_id, telegram_user_id, "Telegram user"
            )
            row.telegram_user_id = telegram_user_id or None
            said.append(f"Telegram {telegram_user_id}" if telegram_user_id else "Telegram unlinked")
        if not said:
            raise StaffAccountRefused("say what to link: --slack MEMBER_ID or --telegram USER_ID")
        session.add(
            AuditLog(
                actor=actor,
                via="cli",
                action="staff.link",
                target=f"staff:{row.id}",
                detail={"email": email, "changed": said},
            )
        )
        await session.commit()
        return f"{row.name} <{email}>: " + ", ".join(said)


async def _not_linked_to_another(
    session: AsyncSession, staff_id: int, column: Any, value: str | int, what: str
) -> None:
    """One account of Slack or Telegram answers to one staff member (unlinking, "" or 0, always may)."""
    if not value:
        return
    holder = await session.scalar(select(StaffUser.email).where(column == value, StaffUser.id != staff_id))
    if holder:
        raise StaffAccountRefused(f"{what} {value} is linked to {holder} already")


async def deactivate_staff(database: Database, email: str, *, actor: str) -> str:
    """Someone who left: they can no longer sign in or use the bots (their history keeps their name);
    `staff add` with their email brings them back."""
    email = email.strip().lower()
    async with database.sessions() as session:
        row = await _staff_row(session, email)
        if not row.active:
            return f"{row.name} <{email}> was deactivated already"
        if row.role == Role.ADMIN.value:
            others = await session.scalar(
                select(func.count())
                .select_from(StaffUser)
                .where(StaffUser.role == Role.ADMIN.value, StaffUser.active.is_(True), StaffUser.id != row.id)
            )
            if not others:
                raise StaffAccountRefused(f"{email} is the last admin: add another admin first")
        row.active = False
        row.availability = Availability.AWAY.value
        # Their live conversations go back to the queue, for someone who is here to take.
        handed_back = await session.execute(
            update(ChatSession)
            .where(
                ChatSession.assigned_staff_id == row.id,
                ChatSession.status.in_(
                    (ChatStatus.OPEN.value, ChatStatus.PENDING.value, ChatStatus.SNOOZED.value)
                ),
            )
            .values(assigned_staff_id=None)
            .execution_options(synchronize_session=False)
        )
        back = int(getattr(handed_back, "rowcount", 0) or 0)
        session.add(
            AuditLog(actor=actor, via="cli", action="staff.deactivate", target=f"staff:{row.id}",
                     detail={"email": email})
        )  # fmt: skip
        await session.commit()
        freed = f"; {back} conversation{'s' if back != 1 else ''} went back to the queue" if back else ""
        return f"{row.name} <{email}> can no longer sign in or use the bots{freed}"


@dataclass(frozen=True)
class StaffHours:
    name: str
    email: str
    timezone: str
    spans: tuple[WorkingSpan, ...]
    #: Consultations booked with them from now on (they stay when the hours change).
    booked_ahead: int = 0


async def working_hours_of(database: Database, email: str) -> StaffHours:
    """A staff member's working hours (the spans their free video times come from)."""
    email = email.strip().lower()
    async with database.read_sessions() as session:
        row = await _staff_row(session, email)
        spans = await session.execute(
            select(ClinicianHours.weekday, ClinicianHours.starts, ClinicianHours.ends)
            .where(ClinicianHours.staff_id == row.id)
            .order_by(ClinicianHours.weekday, ClinicianHours.starts)
        )
        return StaffHours(row.name, email, row.timezone, tuple(WorkingSpan(*span) for span in spans.all()))


async def set_working_hours(
    database: Database, email: str, spans: Sequence[WorkingSpan], *, actor: str, timezone: str | None = None
) -> StaffHours:
    """Replace a staff member's working hours with `spans` (none: they take no video consultations), read in
    `timezone` when given (it becomes theirs), else in theirs; audited. Consultations already booked stay; the
    free times follow the new hours from now on."""
    email = email.strip().lower()
    if timezone is not None:
        check_timezone(timezone)
    async with database.sessions() as session:
        row = await _staff_row(session, email)
        if timezone is not None:
            row.timezone = timezone
        if not row.active and spans:
            raise StaffAccountRefused(
                f"{email} was removed; `switchboard staff add {email}` brings them back first"
            )
        before = await session.execute(
            select(ClinicianHours.weekday, ClinicianHours.starts, ClinicianHours.ends).where(
                ClinicianHours.staff_id == row.id
            )
        )
        had = [WorkingSpan(*span) for span in before.all()]
        await session.execute(delete(ClinicianHours).where(ClinicianHours.staff_id == row.id))
        session.add_all(
            ClinicianHours(staff_id=row.id, weekday=s.weekday, starts=s.starts, ends=s.ends) for s in spans
        )
        session.add(
            AuditLog(
                actor=actor,
                via="cli",
                action="staff.hours",
                target=f"staff:{row.id}",
                detail={
                    "email": email,
                    "before": working_hours_words(had),
                    "after": working_hours_words(spans),
                    "timezone": row.timezone,
                },
            )
        )
        booked = await session.scalar(
            select(func.count()).where(
                VideoConsultation.staff_id == row.id,
                VideoConsultation.scheduled_at >= utcnow(),
                VideoConsultation.status.in_([s.value for s in ACTIVE_STATUSES]),
            )
        )
        await session.commit()
        return StaffHours(row.name, email, row.timezone, tuple(spans), int(booked or 0))
