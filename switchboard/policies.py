"""The business's rules built from settings: consent (quiet hours, marketing limits, unsubscribe links) for every sender."""

from __future__ import annotations

from datetime import time

from domain.consent.model import ConsentPolicy, FrequencyCap, QuietHours
from domain.consent.unsubscribe import UnsubscribeLinks
from domain.conversations.csat import CsatLinks, CsatPolicy
from switchboard.settings import Settings, quiet_hours_window


def business_consent_policy(settings: Settings) -> ConsentPolicy:
    """The business's consent rules; customers without a timezone are treated as in the business's."""
    window = quiet_hours_window(settings.quiet_hours)
    return ConsentPolicy(
        marketing_requires_opt_in=settings.marketing_requires_opt_in,
        # Start equal to end is no quiet hours at all (QuietHours.contains).
        default_quiet_hours=QuietHours(*window) if window else QuietHours(time(0), time(0)),
        default_timezone=settings.business_timezone,
        channel_cap=FrequencyCap(per_24h=settings.marketing_per_day, per_7d=settings.marketing_per_week),
        campaign_type_cap_7d=settings.campaign_type_per_week,
        unsubscribe_links=business_unsubscribe_links(settings),
    )


def business_unsubscribe_links(settings: Settings) -> UnsubscribeLinks:
    """One-click unsubscribe links under the public URL, signed with the session secret."""
    return UnsubscribeLinks(settings.public_url, settings.session_secret.get_secret_value())


def business_csat_policy(settings: Settings) -> CsatPolicy:
    """CSAT surveys on resolve (SWITCHBOARD_CSAT_SURVEYS), their email links signed with the session secret."""
    links = CsatLinks(settings.public_url, settings.session_secret.get_secret_value())
    return CsatPolicy(business_consent_policy(settings), links, enabled=settings.csat_surveys)
