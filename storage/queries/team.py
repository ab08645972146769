"""Who is on duty: the team's working hours on a weekday by clinic, and who takes live chat now."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time

from sqlalchemy import func, select

from domain.video.slots import zone_of
from domain.vocabulary import Role
from storage.database import Database
from storage.models import ChatSession, ClinicianHours, Location, StaffUser
from storage.queries.chats import OPEN_STATUSES

#: Staff who work with patients and conversations; viewers read figures only.
WORKING_ROLES = (Role.AGENT.value, Role.MANAGER.value, Role.ADMIN.value)


@dataclass(frozen=True)
class TeamMember:
    staff_id: int
    name: str
    location: str | None
    timezone: str
    #: "online" or "away" (`away`/`back`): whether new conversations are assigned to them now.
    availability: str
    #: Their working hours on the weekday asked, in their own time zone, earliest first.
    hours: tuple[tuple[time, time], ...]
    #: Open conversations assigned to them now (as their `chat list mine`).
    conversations: int
    #: Their working hours on each weekday (Monday 0) that has some, in their own time zone.
    week: Mapping[int, tuple[tuple[time, time], ...]] = field(default_factory=dict)

    def outside_hours(self, now: datetime) -> bool:
        """Whether `now` falls outside their working hours, read on their own clock and weekday (a clinician
        in New York on Sunday evening while it is Monday in Berlin); never for someone with no hours at all
        (live chat only)."""
        if not self.week:
            return False
        local = now.astimezone(zone_of(self.timezone))
        return not any(a <= local.time() < b for a, b in self.week.get(local.weekday(), ()))


async def team_on(database: Database, weekday: int, *, location_code: str | None = None) -> list[TeamMember]:
    """Every active agent, manager and admin, and anyone else with working hours, with their hours on `weekday`
    (Monday 0) and their open conversations, by clinic and name; only the clinic's with `location_code`."""
    async with database.read_sessions() as session:
        people = (
            await session.execute(
                select(
                    StaffUser.id,
                    StaffUser.name,
                    Location.name,
                    StaffUser.timezone,
                    StaffUser.availability,
                    StaffUser.role,
                )
                .outerjoin(Location, Location.id == StaffUser.location_id)
                .where(
                    StaffUser.active.is_(True),
                    *([Location.code == location_code] if location_code is not None else []),
                )
                .order_by(Location.name, StaffUser.name, StaffUser.id)
            )
        ).all()
        weeks: dict[int, dict[int, list[tuple[time, time]]]] = defaultdict(lambda: defaultdict(list))
        for staff_id, day, starts, ends in await session.execute(
            select(
                ClinicianHours.staff_id, ClinicianHours.weekday, ClinicianHours.starts, ClinicianHours.ends
            ).order_by(ClinicianHours.staff_id, ClinicianHours.weekday, ClinicianHours.starts)
        ):
            weeks[staff_id][day].append((starts, ends))
        spans = {staff_id: week[weekday] for staff_id, week in weeks.items() if weekday in week}
        held: dict[int | None, int] = {
            staff_id: count
            for staff_id, count in await session.execute(
                select(ChatSession.assigned_staff_id, func.count())
                .where(ChatSession.status.in_(OPEN_STATUSES), ChatSession.assigned_staff_id.is_not(None))
                .group_by(ChatSession.assigned_staff_id)
            )
        }
    return [
        TeamMember(
            id,
            name,
            location,
            zone,
            availability,
            tuple(spans.get(id, ())),
            int(held.get(id, 0)),
            {day: tuple(hours) for day, hours in weeks.get(id, {}).items()},
        )
        for id, name, location, zone, availability, role in people
        if role in WORKING_ROLES or id in spans
    ]
