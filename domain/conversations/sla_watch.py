"""The worker's SLA pass: store each warning and breach once, then tell the team's Slack channel about it.

Safe in several workers at once: an event is keyed by (conversation, target, due time, kind) so a second
writer adds nothing, and an alert is claimed (alerted_at set and committed) before it is posted, so two
workers never post the same one. A failed post releases the claim and the next pass tries again; a worker
killed between the claim and the post loses that one alert rather than risk posting it twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from domain.conversations.sla import (
    BusinessHours,
    PolicyError,
    SlaAlert,
    SlaChat,
    SlaFinding,
    SlaPolicy,
    alert_text,
    findings_at,
    policy_for,
)
from domain.transaction import Transaction

log = logging.getLogger(__name__)

#: A breach due longer ago than this is stored but no longer worth a Slack message (the worker was down, or
#: it is the demo's history): alerts are news; the KPIs count it either way.
ALERT_BREACHES_FOR = timedelta(hours=24)


class SlaStore(Protocol):
    async def policies(self) -> list[SlaPolicy]: ...

    async def chats_on_the_clock(self, limit: int, after: int = 0) -> list[SlaChat]:
        """Up to `limit` open and pending conversations with an id above `after`, in id order, with what
        their clocks need (snoozed ones are set aside)."""

    async def record(self, findings: Sequence[SlaFinding], at: datetime) -> int:
        """Store each finding unless already stored (a first-response or resolution breach also unless one
        is stored for the same clock with another due time, after a policy edit); how many were new."""

    async def alerts_to_send(self, now: datetime, breaches_since: datetime, limit: int) -> list[SlaAlert]:
        """Events not yet posted: warnings still ahead of their due time, breaches due since `breaches_since`."""

    async def claim_alert(self, event_id: int, at: datetime) -> bool:
        """Mark the event alerted at `at`, unless someone already did; whether this caller got it."""

    async def release_alert(self, event_id: int, claimed_at: datetime) -> None:
        """Undo this caller's claim after a failed post, so the next pass tries again."""


class SlaUnitOfWork(Transaction, Protocol):
    @property
    def sla(self) -> SlaStore: ...


class SlaAlertPoster(Protocol):
    """Where alerts go (the team's Slack channel); raises when the message did not get there."""

    async def post(self, text: str, team: str | None) -> None: ...


@dataclass(frozen=True)
class SlaPassResult:
    recorded: int
    alerted: int
    failed: int


class PolicyHours:
    """Each policy's business hours per timezone, read once per pass; a policy that cannot be read is
    left out (logged), so one bad row does not stop the others."""

    def __init__(self, policies: Sequence[SlaPolicy]) -> None:
        self._policies = {p.policy_id: p for p in policies}
        self._read: dict[tuple[int, str], BusinessHours | None] = {}

    def hours(self, policy_id: int | None, timezone: str) -> BusinessHours | None:
        policy = self._policies.get(policy_id) if policy_id is not None else None
        if policy is None:
            return None
        key = (policy.policy_id, timezone)
        if key not in self._read:
            try:
                self._read[key] = BusinessHours.read(timezone, policy.business_hours, policy.holidays)
            except PolicyError as error:
                log.warning("SLA policy %s cannot be read: %s", policy.name, error)
                self._read[key] = None
        return self._read[key]


def findings_for(
    chats: Sequence[SlaChat], policies: Sequence[SlaPolicy], now: datetime, hours: PolicyHours
) -> list[SlaFinding]:
    found: list[SlaFinding] = []
    for chat in chats:
        policy = policy_for(policies, chat.location_id)
        if policy is None:
            continue
        business = hours.hours(policy.policy_id, chat.timezone)
        if business is not None:
            found += findings_at(chat, policy, business, now)
    return found


async def watch_slas(
    open_uow: Callable[[], SlaUnitOfWork],
    poster: SlaAlertPoster | None,
    now: datetime,
    dashboard_url: str,
    *,
    limit: int = 5000,
    show_customer_name: bool = True,
) -> SlaPassResult:
    """One pass: store new warnings and breaches of every live conversation (`limit` at a time, one
    transaction each), then post the alerts not yet posted (when a channel is configured: `poster` None
    stores events only). `show_customer_name` False names the customer "Customer 42" in alerts."""
    async with open_uow() as uow:
        policies = await uow.sla.policies()
    if not any(p.enabled for p in policies):
        return SlaPassResult(0, 0, 0)
    hours = PolicyHours(policies)
    recorded, after = 0, 0
    while True:
        async with open_uow() as uow:
            chats = await uow.sla.chats_on_the_clock(limit, after)
            recorded += await uow.sla.record(findings_for(chats, policies, now, hours), now)
            await uow.commit()
        if len(chats) < limit:
            break
        after = chats[-1].chat_id
    if poster is None:
        return SlaPassResult(recorded, 0, 0)
    alerted = failed = 0
    async with open_uow() as uow:
        alerts = await uow.sla.alerts_to_send(now, now - ALERT_BREACHES_FOR, limit=200)
    for alert in alerts:
        if not show_customer_name:
            # SWITCHBOARD_SLACK_CUSTOMER_FIELDS leaves the name out of Slack: the alert says who by number.
            alert = replace(alert, customer_name=f"Customer {alert.customer_id}")
        # A policy changed or removed since the event was stored: count plain minutes in its timezone.
        business = hours.hours(alert.policy_id, alert.timezone) or BusinessHours(alert.timezone, {})
        text = alert_text(alert, business, now, dashboard_url)
        async with open_uow() as uow:
            claimed = await uow.sla.claim_alert(alert.event_id, now)
            await uow.commit()
        if not claimed:
            continue
        try:
            await poster.post(text, alert.team)
        except Exception as error:  # any failure to post: release the claim, the next pass retries
            log.warning("SLA alert %s not posted: %s", alert.event_id, error)
            async with open_uow() as uow:
                await uow.sla.release_alert(alert.event_id, now)
                await uow.commit()
            failed += 1
        else:
            alerted += 1
    return SlaPassResult(recorded, alerted, failed)
