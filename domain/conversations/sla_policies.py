"""Admins write SLA policies: targets in business minutes, business hours per weekday (split shifts), holidays.

What an admin types on the dashboard is read here into the stored shape the SLA clock reads
(`domain/conversations/sla.py`): "08:00-12:30, 13:30-18:00" for a weekday, dates one per line or comma
separated. Anything that cannot be read is refused in words naming the field; nothing half-read is saved.
Every create and change is audited (`sla.policy.create`, `sla.policy.update`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from domain.audit import AuditEntry, AuditTrail
from domain.conversations.sla import WEEKDAYS, PolicyError, read_holidays, read_week
from domain.transaction import Transaction

#: The longest target (60 days of business minutes) and warning an admin may set.
MAX_TARGET_MINUTES = 60 * 24 * 60
MAX_WARN_MINUTES = 24 * 60
MAX_HOLIDAYS = 400
_SPAN = re.compile(r"^\s*(\d{1,2}:\d{2})\s*(?:-|–|—|to)\s*(\d{1,2}:\d{2})\s*$")
DAY_NAMES = dict(
    zip(WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"), strict=True)
)


@dataclass(frozen=True)
class SlaPolicyDraft:
    """A policy as the form gives it: text, to be read and checked."""

    name: str
    location: str = ""  # a clinic's code; empty: the default policy
    first_response: str = ""
    next_response: str = ""
    resolution: str = ""
    warn_before: str = "10"
    hours: Mapping[str, str] = field(default_factory=dict)  # "mon" -> "08:00-12:30, 13:30-18:00"
    holidays: str = ""
    enabled: bool = True


@dataclass(frozen=True)
class CheckedPolicy:
    """A policy in the stored shape (sla_policies), read and checked."""

    name: str
    location: str | None
    first_response_minutes: int | None
    next_response_minutes: int | None
    resolution_minutes: int | None
    warn_before_minutes: int
    business_hours: dict[str, list[list[str]]]
    holidays: list[str]
    enabled: bool

    def as_values(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "first_response_minutes": self.first_response_minutes,
            "next_response_minutes": self.next_response_minutes,
            "resolution_minutes": self.resolution_minutes,
            "warn_before_minutes": self.warn_before_minutes,
            "business_hours": self.business_hours,
            "holidays": self.holidays,
            "enabled": self.enabled,
        }


def _minutes(text: str, what: str, *, most: int, allow_empty: bool = True) -> int | None:
    cleaned = text.strip().removesuffix("min").strip()
    if not cleaned:
        if allow_empty:
            return None
        raise PolicyError(f"Give {what} in minutes.")
    if not (cleaned.isascii() and cleaned.isdigit()) or not 0 <= int(cleaned) <= most:
        raise PolicyError(
            f"{what.capitalize()} is a whole number of minutes from 0 to {most:,}; “{text.strip()}” is not."
        )
    return int(cleaned)


def read_day(day: str, text: str) -> list[list[str]]:
    """ "08:00-12:30, 13:30-18:00" as [["08:00", "12:30"], ["13:30", "18:00"]]; empty: closed that day."""
    spans: list[list[str]] = []
    for part in text.split(","):
        if not part.strip():
            continue
        found = _SPAN.match(part)
        if found is None:
            raise PolicyError(f"{DAY_NAMES[day]}: “{part.strip()}” is not a span like 08:00-12:30.")
        spans.append([found.group(1).zfill(5), found.group(2).zfill(5)])
    try:
        read_week({day: spans})  # the clock's own reading: times that exist, no span starting at 24:00
    except PolicyError as error:
        raise PolicyError(str(error).replace(f"{day}:", f"{DAY_NAMES[day]}:", 1)) from None
    return spans


def read_days(text: str) -> list[str]:
    """Holidays typed one per line (or with commas): ISO dates, sorted, each once."""
    days = [d for d in re.split(r"[\s,;]+", text) if d]
    if len(days) > MAX_HOLIDAYS:
        raise PolicyError(f"At most {MAX_HOLIDAYS} holidays.")
    for day in days:
        try:
            read_holidays([day])
        except PolicyError:
            raise PolicyError(f"Holidays: “{day[:20]}” is not a date like 2026-12-25.") from None
    return sorted(d.isoformat() for d in read_holidays(days))


def check_policy(draft: SlaPolicyDraft) -> CheckedPolicy:
    name = " ".join(draft.name.split())[:64]
    if not name:
        raise PolicyError("Give the policy a name.")
    first = _minutes(draft.first_response, "the first-response target", most=MAX_TARGET_MINUTES)
    following = _minutes(draft.next_response, "the next-response target", most=MAX_TARGET_MINUTES)
    resolution = _minutes(draft.resolution, "the resolution target", most=MAX_TARGET_MINUTES)
    if first is None and following is None and resolution is None:
        raise PolicyError("Set at least one target (first response, next response or resolution).")
    warn = _minutes(draft.warn_before, "the warning", most=MAX_WARN_MINUTES, allow_empty=False) or 0
    week = {day: read_day(day, draft.hours.get(day, "")) for day in WEEKDAYS}
    # No hours on any day means around the clock (stored as no week at all, as the clock reads it).
    hours = {day: spans for day, spans in week.items() if spans} if any(week.values()) else {}
    holidays = read_days(draft.holidays)
    location = draft.location.strip()[:32] or None
    return CheckedPolicy(name, location, first, following, resolution, warn, hours, holidays, draft.enabled)


def draft_of(values: Mapping[str, Any], location: str | None) -> SlaPolicyDraft:
    """A stored policy as the form shows it, to edit."""

    def text(minutes: Any) -> str:
        return "" if minutes is None else str(minutes)

    # Stored keys may be spelled "Monday" or "MON" (the clock reads the first three letters): so does this.
    stored = {str(k).strip().lower()[:3]: v for k, v in (values.get("business_hours") or {}).items()}
    return SlaPolicyDraft(
        name=str(values.get("name", "")),
        location=location or "",
        first_response=text(values.get("first_response_minutes")),
        next_response=text(values.get("next_response_minutes")),
        resolution=text(values.get("resolution_minutes")),
        warn_before=text(values.get("warn_before_minutes", 10)),
        hours={day: ", ".join(f"{a}-{b}" for a, b in stored.get(day) or ()) for day in WEEKDAYS},
        holidays="\n".join(str(d) for d in values.get("holidays") or ()),
        enabled=bool(values.get("enabled", True)),
    )


# --- the use-case -----------------------------------------------------------------------------------------


class SlaPolicyStore(Protocol):
    async def location_id(self, code: str) -> int | None: ...

    async def taken_by(self, name: str, location_id: int | None) -> tuple[int | None, int | None]:
        """The ids of the policies already named `name` and already holding `location_id` (None: no one;
        the default policy "holds" no location, so any number of policies may be defaults)."""

    async def exists(self, policy_id: int) -> bool: ...

    async def enabled_default(self) -> tuple[int, str] | None:
        """The switched-on policy with no clinic (id, name), if there is one."""

    async def add(self, values: Mapping[str, Any], location_id: int | None, at: datetime) -> int:
        """The new policy's id; PolicyError when someone saved one by that name or for that clinic just now."""

    async def update(self, policy_id: int, values: Mapping[str, Any], location_id: int | None) -> bool:
        """False when there is no such policy."""


class SlaPolicyUnitOfWork(Transaction, Protocol):
    @property
    def sla_policies(self) -> SlaPolicyStore: ...

    @property
    def audit(self) -> AuditTrail: ...


async def save_sla_policy(
    uow: SlaPolicyUnitOfWork,
    policy_id: int | None,
    draft: SlaPolicyDraft,
    *,
    actor: str,
    via: str,
    now: datetime,
) -> int:
    """Create (`policy_id` None) or change a policy; its id. PolicyError says in words what cannot be saved;
    LookupError when the policy to change does not exist. Takes effect at the SLA watcher's next pass."""
    checked = check_policy(draft)
    async with uow:
        store = uow.sla_policies
        if policy_id is not None and not await store.exists(policy_id):
            raise LookupError(f"There is no SLA policy {policy_id}.")
        location_id = None
        if checked.location is not None:
            location_id = await store.location_id(checked.location)
            if location_id is None:
                raise PolicyError(f"There is no clinic with the code “{checked.location}”.")
        named, holding = await store.taken_by(checked.name, location_id)
        if named is not None and named != policy_id:
            raise PolicyError(f"Another policy is already called “{checked.name}”.")
        if holding is not None and holding != policy_id:
            raise PolicyError("That clinic already has its own policy: change that one instead.")
        if location_id is None and checked.enabled:
            default = await store.enabled_default()
            if default is not None and default[0] != policy_id:
                raise PolicyError(
                    f"“{default[1]}” is already the default policy: give this one a clinic, switch it off, "
                    f"or change “{default[1]}” instead."
                )
        values = checked.as_values()
        if policy_id is None:
            policy_id = await store.add(values, location_id, now)
            action = "sla.policy.create"
        elif not await store.update(policy_id, values, location_id):
            raise LookupError(f"There is no SLA policy {policy_id}.")
        else:
            action = "sla.policy.update"
        uow.audit.record(
            AuditEntry(actor, via, action, f"sla_policy:{policy_id}", {**values, "location_id": location_id})
        )
        await uow.commit()
    return policy_id
