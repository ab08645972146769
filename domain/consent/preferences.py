"""A customer's communication preferences (preferred channel, quiet hours, marketing cap) and their rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from domain.vocabulary import OUTBOUND_CHANNELS, Channel

#: The most marketing messages a week a customer may ask for.
MAX_MARKETING_PER_WEEK = 50


class PreferencesError(ValueError):
    """The preferences cannot be kept as given; the message says which field and why."""


class UnknownCustomer(LookupError):
    """No customer has the id the preferences are for."""


@dataclass(frozen=True)
class CommunicationPreferences:
    """How and when a customer wants to hear from us; None leaves it to the business's defaults."""

    preferred_channel: Channel | None = None
    quiet_hours_start: time | None = None  # local to the customer; both or neither
    quiet_hours_end: time | None = None
    marketing_max_per_week: int | None = None


def communication_preferences(
    preferred_channel: str | None,
    quiet_hours_start: str | None,
    quiet_hours_end: str | None,
    marketing_max_per_week: int | None,
) -> CommunicationPreferences:
    """The preferences as given ("21:00" for times), or a PreferencesError naming the first field that is wrong."""
    if preferred_channel is not None and preferred_channel not in {c.value for c in OUTBOUND_CHANNELS}:
        raise PreferencesError("preferred_channel must be one of sms, email, whatsapp, telegram")
    start = _clock(quiet_hours_start, "quiet_hours_start")
    end = _clock(quiet_hours_end, "quiet_hours_end")
    if (start is None) != (end is None):
        raise PreferencesError("give both quiet_hours_start and quiet_hours_end, or neither")
    if start is not None and start == end:
        raise PreferencesError(
            "quiet_hours_start and quiet_hours_end are the same time: give neither for none"
        )
    if marketing_max_per_week is not None and not 0 <= marketing_max_per_week <= MAX_MARKETING_PER_WEEK:
        raise PreferencesError(f"marketing_max_per_week must be between 0 and {MAX_MARKETING_PER_WEEK}")
    return CommunicationPreferences(
        Channel(preferred_channel) if preferred_channel is not None else None,
        start,
        end,
        marketing_max_per_week,
    )


def _clock(value: str | None, name: str) -> time | None:
    if value is None:
        return None
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise PreferencesError(f"{name} must be a time like 21:00, got {value!r}") from None
