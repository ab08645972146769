"""What every command handler is given besides the command: the running system and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from domain.consent.model import ConsentPolicy
from reports.charts.cache import ChartCache
from storage.database import Database
from storage.unit_of_work import SqlUnitOfWork
from switchboard.settings import Settings
from switchboard.wiring import business_consent_policy

#: One cache per process: every front end draws the same KPI charts, so they share the rendered PNGs.
_PROCESS_CHART_CACHE: ChartCache | None = None


def process_chart_cache() -> ChartCache:
    global _PROCESS_CHART_CACHE
    if _PROCESS_CHART_CACHE is None:
        _PROCESS_CHART_CACHE = ChartCache()
    return _PROCESS_CHART_CACHE


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class CommandContext:
    """The container's parts a command needs; `clock` is replaceable so tests read a fixed "now"."""

    settings: Settings
    database: Database
    chart_cache: ChartCache = field(default_factory=process_chart_cache)
    clock: Callable[[], datetime] = _utc_now
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_container(cls, container: Any, *, clock: Callable[[], datetime] | None = None) -> CommandContext:
        """Built from a switchboard.wiring.Container (typed Any so the bot does not import the wiring)."""
        return cls(container.settings, container.database, clock=clock or _utc_now, extras=container.extras)

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
