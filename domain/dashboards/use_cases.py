"""Saving a staff member's dashboard layout: which KPIs their executive dashboard shows, over which period."""

from __future__ import annotations

from collections.abc import Sequence

from domain.dashboards.ports import DashboardUnitOfWork

#: The layout a staff member's executive dashboard is saved under.
LAYOUT_NAME = "default"


async def save_dashboard_layout(
    uow: DashboardUnitOfWork, staff_id: int, metrics: Sequence[str], period: str, choices: Sequence[str]
) -> None:
    """Keeps the chosen metrics that are on offer, in the order `choices` lists them.

    A layout is a personal view, not a business change, so it is not audited (as before).
    """
    layout = [{"kind": "kpi", "metric": m} for m in choices if m in metrics]
    async with uow:
        await uow.layouts.save(staff_id, LAYOUT_NAME, "executive", layout, period)
        await uow.commit()
