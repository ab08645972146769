"""What every command handler is given besides the command: the running system and the clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from domain.clock import Clock, utc_now
from domain.consent.model import ConsentPolicy
from reports.charts.cache import ChartCache
from storage.database import Database
from storage.unit_of_work import SqlUnitOfWork
from storage.units import UnitsOfWork
from switchboard.policies import business_consent_policy, business_csat_policy
from switchboard.settings import Settings


@dataclass
class CommandContext:
    """The container's parts a command needs; `clock` is replaceable so tests read a fixed "now"."""

    settings: Settings
    database: Database
    #: The container's one chart cache (a fresh one when a test builds a context on its own).
    chart_cache: ChartCache = field(default_factory=ChartCache)
    clock: Clock = utc_now
    #: The container's units of work (built from the database when a test builds a context on its own).
    units: UnitsOfWork | None = None

    def __post_init__(self) -> None:
        if self.units is None:
            self.units = UnitsOfWork(
                self.database,
                self.settings.business_timezone,
                csat_policy=business_csat_policy(self.settings),
            )

    @property
    def uow(self) -> UnitsOfWork:
        """Every kind of unit of work the commands' use-cases take."""
        assert self.units is not None  # set in __post_init__
        return self.units

    def unit_of_work(self, *, read_only: bool = False) -> SqlUnitOfWork:
        return self.uow.general(read_only=read_only)

    def now(self) -> datetime:
        return self.clock()

    def consent_policy(self) -> ConsentPolicy:
        """The same consent rules (and unsubscribe links) the worker and the API plan with."""
        return business_consent_policy(self.settings)

    @property
    def business_tz(self) -> str:
        return self.settings.business_timezone
