"""Campaign rules: validating settings, choosing each recipient's channel, and turning a recipient into an outbox row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from domain.campaigns.model import CampaignError
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
