"""Consent use-cases beyond the ledger (ledger.py): set a customer's communication preferences, audited."""

from __future__ import annotations

from datetime import datetime

from domain.audit import AuditEntry
from domain.consent.ports import PreferencesUnitOfWork
from domain.consent.preferences import CommunicationPreferences, UnknownCustomer, communication_preferences


async def set_preferences(
    uow: PreferencesUnitOfWork,
    customer_id: int,
    *,
    preferred_channel: str | None,
    quiet_hours_start: str | None,
    quiet_hours_end: str | None,
    marketing_max_per_week: int | None,
    actor: str,
    via: str,
    now: datetime,
) -> CommunicationPreferences:
    """Replace the customer's preferences once they are valid (PreferencesError), with their audit row."""
    preferences = communication_preferences(
        preferred_channel, quiet_hours_start, quiet_hours_end, marketing_max_per_week
    )
    async with uow:
        if not await uow.preferences.customer_exists(customer_id):
            raise UnknownCustomer(f"no customer {customer_id}")
        await uow.preferences.set(customer_id, preferences, now)
        uow.audit.record(
            AuditEntry(
                actor=actor,
                via=via,
                action="customer.preferences",
                target=f"customer:{customer_id}",
                # Everything set, so the audit log answers "who turned their marketing off, and when".
                detail={
                    "preferred": preferred_channel,
                    "quiet_hours": None
                    if preferences.quiet_hours_start is None or preferences.quiet_hours_end is None
                    else f"{preferences.quiet_hours_start:%H:%M}–{preferences.quiet_hours_end:%H:%M}",
                    "marketing_max_per_week": marketing_max_per_week,
                },
            )
        )
        await uow.commit()
    return preferences
