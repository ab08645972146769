"""What every command handler is given besides the command: the running system and the clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from domain.clock import Clock, utc_now
from domain.consent.model import ConsentPolicy
from reports.charts.cache import ChartCache
from storage.database import Database
from storage.unit_of_work import SqlUnitOfWork
from switchboard.policies import business_consent_policy
from switchboard.settings import Settings


@dataclass
class CommandContext:
    """The container's parts a command needs; `clock` is replaceable so tests read a fixed "now"."""

    settings: Settings
    database: Database
    #: The container's one chart cache (a fresh one when a test builds a context on its own).
    chart_cache: ChartCache = field(default_factory=ChartCache)
    clock: Clock = utc_now

    def unit_of_work(self, *, read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.database, read_only=read_only, business_tz=self.settings.business_timezone)

    def now(self) -> datetime:
        return self.clock()

    def consent_policy(self) -> ConsentPolicy:
        """The same consent rules (and unsubscribe links) the worker and the API plan with."""
        return business_consent_policy(self.settings)

    @property
    def business_tz(self) -> str:
        return self.settings.business_timezone
