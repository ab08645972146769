"""The facts, policy and verdict of a send decision."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from types import MappingProxyType
from typing import Literal

from domain.consent.unsubscribe import UnsubscribeLinks
from domain.vocabulary import Channel, ConsentStatus, MessageCategory

Verdict = Literal["send", "defer", "suppress"]


@dataclass(frozen=True)
class QuietHours:
    """Local wall-clock hours in which marketing waits; ``start`` after ``end`` wraps past midnight."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("Quiet hours are local wall-clock times and carry no time zone.")

    def contains(self, local: time) -> bool:
        """Whether the wall-clock time ``local`` is quiet; the end itself is no longer quiet."""
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True)
class ChannelConsent:
    """What the customer last said about hearing from us on one channel; ``status`` None means never asked."""

    status: ConsentStatus | None = None
    source: str | None = None  # e.g. "SMS keyword STOP", "checkout form"
    changed_at: datetime | None = None


@dataclass(frozen=True)
class SendRequest:
    """A message someone wants to send to one customer."""

    channel: Channel
    category: MessageCategory
    campaign_type: str | None = None  # e.g. "promotion", "reactivation"; caps count per type
    uses_approved_template: bool = False  # WhatsApp: an approved template, allowed outside the 24 h window


@dataclass(frozen=True)
class RecipientFacts:
    """What we know about the customer at the moment of deciding."""

    consent: ChannelConsent = ChannelConsent()
    has_address: bool = True
    timezone: str | None = None  # IANA name; None falls back to the policy's time zone
    quiet_hours: QuietHours | None = None  # None falls back to the policy's default
    marketing_sent_on_channel_24h: int = 0
    marketing_sent_on_channel_7d: int = 0
    marketing_sent_of_campaign_type_7d: int = 0
    last_inbound_whatsapp_at: datetime | None = None
    #: Marketing they got in the last 7 days on every channel, and the most they want a week (None: no
    #: limit of their own, set on the customer's page or through the API).
    marketing_sent_7d: int = 0
    marketing_max_per_week: int | None = None


@dataclass(frozen=True)
class FrequencyCap:
    """Most marketing messages one customer may get on a channel; None means no limit."""

    per_24h: int | None = None
    per_7d: int | None = None


def _no_overrides() -> Mapping[Channel, FrequencyCap]:
    return MappingProxyType({})


def _no_type_caps() -> Mapping[str, int]:
    return MappingProxyType({})


@dataclass(frozen=True)
class ConsentPolicy:
    """The business's rules for reaching customers."""

    marketing_requires_opt_in: bool = False
    transactional_ignores_quiet_hours: bool = True
    default_quiet_hours: QuietHours = QuietHours(time(21, 0), time(8, 0))
    default_timezone: str = "UTC"
    channel_cap: FrequencyCap = FrequencyCap(per_24h=1, per_7d=3)
    channel_caps: Mapping[Channel, FrequencyCap] = field(default_factory=_no_overrides)
    campaign_type_cap_7d: int | None = 1
    campaign_type_caps_7d: Mapping[str, int] = field(default_factory=_no_type_caps)
    whatsapp_window: timedelta = timedelta(hours=24)
    #: How a customer withdraws consent from a message: the one-click link Switchboard puts into every
    #: template that reads ``unsubscribe_url`` (and into email headers). None: no link can be made.
    unsubscribe_links: UnsubscribeLinks | None = None

    def cap_for_channel(self, channel: Channel) -> FrequencyCap:
        return self.channel_caps.get(channel, self.channel_cap)

    def cap_for_campaign_type(self, campaign_type: str) -> int | None:
        return self.campaign_type_caps_7d.get(campaign_type, self.campaign_type_cap_7d)


@dataclass(frozen=True)
class SendDecision:
    """The verdict on one send request, with a stable reason code and a sentence for people."""

    verdict: Verdict
    reason: str
    explanation: str
    send_at: datetime | None = None  # UTC; only for "defer"
