"""The business's clinics from the command line: added, renamed, listed with how many staff each has."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select

from storage.database import Database
from storage.models import AuditLog, Location, StaffUser
from storage.staff_accounts import StaffAccountRefused, check_timezone

#: A clinic's short code, as reports and keys name it ("BER", "HH-ALTONA").
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")


@dataclass(frozen=True)
class SavedClinic:
    code: str
    name: str
    timezone: str
    country: str
    created: bool


@dataclass(frozen=True)
class ListedClinic:
    code: str
    name: str
    timezone: str
    country: str
    staff: int


async def save_clinic(
    database: Database,
    code: str,
    *,
    name: str | None,
    timezone: str | None,
    country: str | None,
    business_timezone: str,
    default_country: str = "",
    actor: str,
) -> SavedClinic:
    """Add a clinic, or change the name, zone or country of the one with this code; audited. A new clinic is
    in the business's zone unless told otherwise, and in `default_country` (its zone's) unless told otherwise."""
    code = code.strip().upper()
    if not _CODE.fullmatch(code):
        raise StaffAccountRefused(
            f"{code!r} is not a clinic code (letters, digits, - and _, up to 32, e.g. BER)"
        )
    name = " ".join((name or "").split())
    if len(name) > 120:
        raise StaffAccountRefused("give the clinic's name (1 to 120 characters) with --name")
    if timezone is not None:
        check_timezone(timezone)
    if country is not None and not re.fullmatch(r"[A-Za-z]{2}", country.strip()):
        raise StaffAccountRefused(f"{country!r} is not a country code (two letters, e.g. DE)")
    async with database.sessions() as session:
        row = await session.scalar(select(Location).where(func.upper(Location.code) == code))
        created = row is None
        if row is None:
            if not name:
                raise StaffAccountRefused("give the clinic's name (1 to 120 characters) with --name")
            zone = timezone or business_timezone
            row = Location(
                code=code,
                name=name,
                timezone=zone,
                country=(country or default_country or "ZZ").strip().upper(),
            )
            session.add(row)
        else:
            row.name = name or row.name
            row.timezone = timezone or row.timezone
            row.country = country.strip().upper() if country else row.country
        await session.flush()
        session.add(
            AuditLog(
                actor=actor,
                via="cli",
                action="clinic.add" if created else "clinic.update",
                target=f"location:{row.id}",
                detail={"code": row.code, "name": row.name, "timezone": row.timezone, "country": row.country},
            )
        )
        await session.commit()
        return SavedClinic(row.code, row.name, row.timezone, row.country, created)


async def list_clinics(database: Database) -> list[ListedClinic]:
    """Every clinic by code, with how many active staff belong to it."""
    async with database.read_sessions() as session:
        rows = await session.execute(
            select(
                Location.code, Location.name, Location.timezone, Location.country, func.count(StaffUser.id)
            )
            .outerjoin(StaffUser, (StaffUser.location_id == Location.id) & StaffUser.active.is_(True))
            .group_by(Location.id, Location.code, Location.name, Location.timezone, Location.country)
            .order_by(Location.code)
        )
        return [ListedClinic(*row) for row in rows.all()]
