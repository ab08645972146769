"""Staff accounts from the command line: the first admin of a new installation, and anyone after."""

from __future__ import annotations

import getpass
import re
from dataclasses import dataclass

from sqlalchemy import select

from domain.vocabulary import Role
from storage.database import Database
from storage.models import AuditLog, StaffUser

#: Enough to catch a typo (a name where the email goes, a missing domain); the sign-in link proves the rest.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class StaffAccountRefused(ValueError):
    """An account that cannot be saved as given; the message says why in words."""


@dataclass(frozen=True)
class SavedStaff:
    staff_id: int
    email: str
    name: str
    role: Role
    created: bool


def operator() -> str:
    """Who ran the command, for the audit log."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (a container's DynamicUser, say)
        return "cli"


async def save_staff(database: Database, email: str, name: str, role: Role, *, actor: str) -> SavedStaff:
    """Add a staff member, or update the name and role of the one with this email (reactivating them)."""
    email = email.strip().lower()
    name = " ".join(name.split())
    if not _EMAIL.fullmatch(email) or len(email) > 254:
        raise StaffAccountRefused(f"{email!r} is not an email address")
    if not name or len(name) > 200:
        raise StaffAccountRefused("give the staff member's name (1 to 200 characters) with --name")
    async with database.sessions() as session:
        row = await session.scalar(select(StaffUser).where(StaffUser.email == email))
        created = row is None
        if row is None:
            row = StaffUser(email=email, name=name, role=role.value, active=True)
            session.add(row)
        else:
            row.name, row.role, row.active = name, role.value, True
        await session.flush()
        session.add(
            AuditLog(
                actor=actor,
                via="cli",
                action="staff.add" if created else "staff.update",
                target=f"staff:{row.id}",
                detail={"email": email, "role": role.value},
            )
        )
        await session.commit()
        return SavedStaff(row.id, email, name, role, created)


async def list_staff(database: Database) -> list[tuple[str, str, str, bool]]:
    async with database.read_sessions() as session:
        rows = await session.execute(
            select(StaffUser.email, StaffUser.name, StaffUser.role, StaffUser.active).order_by(
                StaffUser.email
            )
        )
        return [(email, name, role, active) for email, name, role, active in rows.all()]
