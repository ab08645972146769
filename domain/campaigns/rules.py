"""Campaign rules: validating settings, choosing each recipient's channel, and turning a recipient into an outbox row."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from domain.campaigns.model import CampaignError
from domain.messages.send_decision import RECIPIENT_FIELDS
from domain.templates.model import SYSTEM_VARIABLES
from domain.vocabulary import (
    OUTBOUND_CHANNELS,
    CampaignStatus,
    Channel,
)

#: What a person may do to a campaign in each status; every page and bot offers only these.
ACTIONS_FOR_STATUS: Mapping[CampaignStatus, tuple[str, ...]] = {
    CampaignStatus.DRAFT: ("launch", "cancel"),
    CampaignStatus.SCHEDULED: ("launch", "cancel"),
    CampaignStatus.RUNNING: ("pause", "cancel"),
    CampaignStatus.PAUSED: ("resume", "cancel"),
}


def allowed_actions(status: CampaignStatus | str) -> tuple[str, ...]:
    """The actions a campaign in `status` takes: none once it is completed or cancelled."""
    return ACTIONS_FOR_STATUS.get(CampaignStatus(status), ())


def validate_channel_order(order: Sequence[str]) -> tuple[Channel, ...]:
    """The channel order as channels; raise CampaignError when it is empty, unknown or repeats itself."""
    try:
        channels = tuple(Channel(name) for name in order)
    except ValueError:
        channels = ()
    if not channels or any(c not in OUTBOUND_CHANNELS for c in channels):
        names = ", ".join(c.value for c in OUTBOUND_CHANNELS)
        raise CampaignError(f"The channel order must list one or more of {names}.")
    if len(set(channels)) != len(channels):
        raise CampaignError("The channel order names a channel more than once.")
    return channels


def validate_fallback(fallback_after_minutes: int | None, order: Sequence[Channel]) -> None:
    if fallback_after_minutes is None:
        return
    if fallback_after_minutes < 1:
        raise CampaignError("The fallback delay must be at least one minute.")
    if len(order) < 2:
        raise CampaignError("A fallback needs a second channel in the channel order.")


class SendTimeError(CampaignError):
    """A send time that cannot be used; `field` says which part ("day" or "time") is at fault."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def local_send_moment(day: date, clock: time, business_tz: str, now: datetime) -> datetime:
    """A send time typed in the business's timezone, as UTC; refused when past, or absent that day (DST)."""
    zone = ZoneInfo(business_tz)
    local = datetime.combine(day, clock, zone)
    round_trip = local.astimezone(UTC).astimezone(zone)
    if (round_trip.date(), round_trip.time()) != (day, clock):
        raise SendTimeError(
            f"{clock:%H:%M} does not exist on {day.day} {day:%b %Y} in {business_tz} (the clocks go forward).",
            "time",
        )
    moment = local.astimezone(UTC)
    if moment <= now:
        raise SendTimeError(
            f"{day.day} {day:%b %Y} {clock:%H:%M} ({business_tz}) has passed; pick a later time.", "day"
        )
    return moment


def missing_values(template_reads: Iterable[str], given: Mapping[str, object]) -> list[str]:
    """What a campaign's template reads that no customer record, system value or given value fills in."""
    return sorted(set(template_reads) - RECIPIENT_FIELDS - SYSTEM_VARIABLES - set(given))
