"""Who a message goes to and with which template: the values every send decision works from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from domain.consent.model import ChannelConsent, QuietHours, RecipientFacts
from domain.conversations.newcomers import is_placeholder_name
from domain.templates.model import MessageTemplate
from domain.templates.nameless import NAMELESS
from domain.vocabulary import Channel, ConsentStatus

_NO_CHANNEL_COUNTS: Mapping[Channel, int] = MappingProxyType({})
_NO_CONSENTS: Mapping[Channel, ChannelConsent] = MappingProxyType({})
_UNKNOWN_CONSENT = ChannelConsent()


@dataclass(frozen=True)
class StoredTemplate:
    """A template variant as stored, with the id outbox rows refer to."""

    id: int
    template: MessageTemplate


@dataclass(slots=True)
class Recipient:
    """One customer with every fact the send decision and the template need, loaded in bulk per batch.

    Marketing counts leave out the campaign being planned, so re-planning a batch decides the same way.
    Treat it as a value; it is not declared frozen only because planning builds a million of them and a
    frozen dataclass costs several times as much to construct.
    """

    customer_id: int
    name: str
    locale: str
    timezone: str | None
    addresses: Mapping[Channel, str]
    consents: Mapping[Channel, ChannelConsent] = field(default_factory=lambda: _NO_CONSENTS)
    quiet_hours: QuietHours | None = None
    preferred_channel: Channel | None = None
    marketing_24h: Mapping[Channel, int] = field(default_factory=lambda: _NO_CHANNEL_COUNTS)
    marketing_7d: Mapping[Channel, int] = field(default_factory=lambda: _NO_CHANNEL_COUNTS)
    campaign_type_7d: int = 0
    last_inbound_whatsapp_at: datetime | None = None
    #: The customer's own limit on marketing a week, on every channel together (None: only the policy's).
    marketing_max_per_week: int | None = None

    @property
    def is_plain(self) -> bool:
        """No consent on record, no recent marketing, no limit of their own and no WhatsApp chat: true of
        most customers."""
        return (
            not self.consents
            and not self.marketing_7d
            and not self.marketing_24h
            and not self.campaign_type_7d
            and self.last_inbound_whatsapp_at is None
            and self.marketing_max_per_week is None
        )

    def reach_order(self, default: tuple[Channel, ...]) -> tuple[Channel, ...]:
        """The channels to try when nobody named one: their preferred channel, then those they opted in on,
        then the rest of ``default``; so a patient who said yes to SMS hears on SMS before WhatsApp."""
        preferred = (self.preferred_channel,) if self.preferred_channel in default else ()
        opted_in = tuple(
            c for c in default if self.consents.get(c, _UNKNOWN_CONSENT).status is ConsentStatus.OPTED_IN
        )
        return tuple(dict.fromkeys((*preferred, *opted_in, *default)))

    @property
    def first_name(self) -> str:
        """The name a message greets them by; `NAMELESS` for a first contact's made-up name ("SMS contact …4321")."""
        if is_placeholder_name(self.name):
            return NAMELESS
        parts = self.name.split()
        return parts[0] if parts else ""

    def facts(self, channel: Channel) -> RecipientFacts:
        """The consent decision's view of this customer on ``channel``."""
        return RecipientFacts(
            consent=self.consents.get(channel, _UNKNOWN_CONSENT),
            has_address=channel in self.addresses,
            timezone=self.timezone,
            quiet_hours=self.quiet_hours,
            marketing_sent_on_channel_24h=self.marketing_24h.get(channel, 0),
            marketing_sent_on_channel_7d=self.marketing_7d.get(channel, 0),
            marketing_sent_of_campaign_type_7d=self.campaign_type_7d,
            last_inbound_whatsapp_at=self.last_inbound_whatsapp_at,
            marketing_sent_7d=sum(self.marketing_7d.values()),
            marketing_max_per_week=self.marketing_max_per_week,
        )

    def template_variables(self) -> dict[str, object]:
        """What every template may use about its recipient (send_decision.RECIPIENT_FIELDS)."""
        name = NAMELESS if is_placeholder_name(self.name) else self.name
        return {"first_name": self.first_name, "name": name, "locale": self.locale}
