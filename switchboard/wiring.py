"""The one place that builds the running system from settings: database, unit of work and more as engines land."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.consent.model import ConsentPolicy
from domain.consent.unsubscribe import UnsubscribeLinks
from reports.performance import OperationalMetrics
from storage.campaigns import SqlCampaignUnitOfWork
from storage.database import Database
from storage.messages import SqlMessagingUnitOfWork
from storage.notifications import SqlNotificationUnitOfWork
from storage.unit_of_work import SqlUnitOfWork
from switchboard.settings import Settings


@dataclass
class Container:
    """Everything a process needs, built once at start-up and closed at shutdown."""

    settings: Settings
    database: Database
    metrics: OperationalMetrics = field(default_factory=OperationalMetrics)
    extras: dict[str, Any] = field(default_factory=dict)

    def unit_of_work(self, *, read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.database, read_only=read_only, business_tz=self.settings.business_timezone)

    def messaging_uow(self) -> SqlMessagingUnitOfWork:
        return SqlMessagingUnitOfWork(self.database, business_tz=self.settings.business_timezone)

    def campaign_uow(self, *, read_only: bool = False) -> SqlCampaignUnitOfWork:
        return SqlCampaignUnitOfWork(
            self.database, read_only=read_only, business_tz=self.settings.business_timezone
        )

    def notification_uow(self, *, read_only: bool = False) -> SqlNotificationUnitOfWork:
        return SqlNotificationUnitOfWork(
            self.database, read_only=read_only, business_tz=self.settings.business_timezone
        )

    def consent_policy(self) -> ConsentPolicy:
        return business_consent_policy(self.settings)

    def unsubscribe_links(self) -> UnsubscribeLinks:
        return business_unsubscribe_links(self.settings)

    async def close(self) -> None:
        for closer in reversed(self.extras.get("_closers", [])):
            await closer()
        await self.database.dispose()


def business_consent_policy(settings: Settings) -> ConsentPolicy:
    """The business's consent rules; customers without a timezone are treated as in the business's."""
    return ConsentPolicy(
        default_timezone=settings.business_timezone, unsubscribe_links=business_unsubscribe_links(settings)
    )


def business_unsubscribe_links(settings: Settings) -> UnsubscribeLinks:
    """One-click unsubscribe links under the public URL, signed with the session secret."""
    return UnsubscribeLinks(settings.public_url, settings.session_secret.get_secret_value())


def build_container(settings: Settings) -> Container:
    """Builds (without connecting) the container for `settings`."""
    settings.check_production_ready()
    return Container(settings=settings, database=Database.connect(settings.database_url))
