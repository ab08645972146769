"""Setting a customer's communication preferences with a fake unit of work: the rules, then one audited commit."""

from __future__ import annotations

from datetime import UTC, datetime, time
from types import TracebackType
from typing import Any, Self

import pytest

from domain.audit import AuditEntry
from domain.consent.preferences import (
    CommunicationPreferences,
    PreferencesError,
    UnknownCustomer,
    communication_preferences,
)
from domain.consent.use_cases import set_preferences
from domain.vocabulary import Channel

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
EVENINGS = {"quiet_hours_start": "21:00", "quiet_hours_end": "08:00"}


class FakePreferencesUow:
    """Customers 1 and 2 exist; preferences and audit entries are kept only when committed."""

    def __init__(self) -> None:
        self.kept: dict[int, tuple[CommunicationPreferences, datetime]] = {}
        self.audited: list[AuditEntry] = []
        self.commits = 0

    @property
    def preferences(self) -> Self:
        return self

    @property
    def audit(self) -> Self:
        return self

    async def __aenter__(self) -> Self:
        self._kept: dict[int, tuple[CommunicationPreferences, datetime]] = {}
        self._entries: list[AuditEntry] = []
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._kept, self._entries = {}, []

    async def commit(self) -> None:
        self.commits += 1
        self.kept.update(self._kept)
        self.audited += self._entries

    async def customer_exists(self, customer_id: int) -> bool:
        return customer_id in (1, 2)

    async def set(self, customer_id: int, preferences: CommunicationPreferences, at: datetime) -> None:
        self._kept[customer_id] = (preferences, at)

    def record(self, entry: AuditEntry) -> None:
        self._entries.append(entry)


async def set_for(uow: FakePreferencesUow, customer_id: int = 1, **given: Any) -> CommunicationPreferences:
    values = {
        "preferred_channel": None,
        "quiet_hours_start": None,
        "quiet_hours_end": None,
        "marketing_max_per_week": None,
        **given,
    }
    return await set_preferences(uow, customer_id, actor="front-desk", via="api", now=NOW, **values)


async def test_preferences_are_kept_with_their_audit_row_in_one_commit() -> None:
    uow = FakePreferencesUow()
    kept = await set_for(uow, preferred_channel="whatsapp", marketing_max_per_week=2, **EVENINGS)
    assert kept == CommunicationPreferences(Channel.WHATSAPP, time(21), time(8), 2)
    assert uow.kept == {1: (kept, NOW)}
    assert uow.commits == 1
    assert uow.audited == [
        AuditEntry(
            "front-desk",
            "api",
            "customer.preferences",
            "customer:1",
            {"preferred": "whatsapp", "quiet_hours": "21:00–08:00", "marketing_max_per_week": 2},
        )
    ]


async def test_no_preferences_at_all_is_a_choice_too() -> None:
    uow = FakePreferencesUow()
    assert await set_for(uow, 2) == CommunicationPreferences()
    assert (uow.commits, uow.audited[0].detail) == (
        1,
        {"preferred": None, "quiet_hours": None, "marketing_max_per_week": None},
    )


async def test_an_unknown_customer_is_refused_and_nothing_is_kept() -> None:
    uow = FakePreferencesUow()
    with pytest.raises(UnknownCustomer, match="no customer 9"):
        await set_for(uow, 9, preferred_channel="sms")
    assert (uow.commits, uow.kept, uow.audited) == (0, {}, [])


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ({"preferred_channel": "chat"}, "preferred_channel must be one of sms, email, whatsapp, telegram"),
        ({"preferred_channel": "carrier pigeon", "quiet_hours_start": "late"}, "preferred_channel"),
        (
            {"quiet_hours_start": "9pm", "quiet_hours_end": "08:00"},
            "quiet_hours_start must be a time like 21:00",
        ),
        (
            {"quiet_hours_start": "21:00", "quiet_hours_end": "25:00"},
            "quiet_hours_end must be a time like 21:00",
        ),
        ({"quiet_hours_start": "21:00"}, "give both quiet_hours_start and quiet_hours_end, or neither"),
        ({"quiet_hours_end": "08:00"}, "give both"),
        ({"marketing_max_per_week": 51}, "marketing_max_per_week must be between 0 and 50"),
        ({"marketing_max_per_week": -1}, "between 0 and 50"),
    ],
)
async def test_invalid_preferences_are_refused_before_anything_is_written(
    given: dict[str, Any], said: str
) -> None:
    uow = FakePreferencesUow()
    with pytest.raises(PreferencesError, match=said):
        await set_for(uow, **given)
    assert (uow.commits, uow.kept, uow.audited) == (0, {}, [])


def test_quiet_hours_read_as_wall_clock_times() -> None:
    read = communication_preferences(None, "22:30", "07:15", 0)
    assert (read.quiet_hours_start, read.quiet_hours_end, read.marketing_max_per_week) == (
        time(22, 30),
        time(7, 15),
        0,
    )
