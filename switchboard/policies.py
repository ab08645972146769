"""The business's rules built from settings: consent (quiet hours, unsubscribe links) for every sender."""

from __future__ import annotations

from domain.consent.model import ConsentPolicy
from domain.consent.unsubscribe import UnsubscribeLinks
from domain.conversations.csat import CsatLinks, CsatPolicy
from switchboard.settings import Settings


def business_consent_policy(settings: Settings) -> ConsentPolicy:
    """The business's consent rules; customers without a timezone are treated as in the business's."""
    return ConsentPolicy(
        marketing_requires_opt_in=settings.marketing_requires_opt_in,
        default_timezone=settings.business_timezone,
        unsubscribe_links=business_unsubscribe_links(settings),
    )


def business_unsubscribe_links(settings: Settings) -> UnsubscribeLinks:
    """One-click unsubscribe links under the public URL, signed with the session secret."""
    return UnsubscribeLinks(settings.public_url, settings.session_secret.get_secret_value())


def business_csat_policy(settings: Settings) -> CsatPolicy:
    """CSAT surveys on resolve (SWITCHBOARD_CSAT_SURVEYS), their email links signed with the session secret."""
    links = CsatLinks(settings.public_url, settings.session_secret.get_secret_value())
    return CsatPolicy(business_consent_policy(settings), links, enabled=settings.csat_surveys)
