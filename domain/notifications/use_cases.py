"""Notification use-cases: record a business event once, manage the rules, turn pending events into outbox rows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from domain.audit import AuditEntry
from domain.clock import utc_now
from domain.consent.model import ConsentPolicy, SendDecision
from domain.delivery.outbox import OutboxEntry
from domain.messages.model import StoredTemplate
from domain.messages.pricing import DEFAULT_PRICE_BOOK, PriceBook
from domain.messages.send_decision import OutboxPlanner
from domain.messages.words import channel_words
from domain.notifications.model import (
    BusinessEvent,
    NotificationError,
    NotificationRule,
    NotificationRuleChanges,
    NotificationRuleDraft,
    NotificationRuleNotFound,
    ProcessingReport,
    RecordedEvent,
)
from domain.notifications.ports import NotificationRuleUnitOfWork, NotificationUnitOfWork
from domain.notifications.rules import (
    ANSWERED_ALREADY,
    ANSWERED_ON,
    APPOINTMENT_AT,
    TOO_LATE,
    channel_order,
    describe_offset,
    due_at,
    rule_name_key,
    validate_event,
    validate_rule,
    validate_rule_changes,
)
from domain.templates.model import TemplateError
from domain.templates.rendering import plain_value
from domain.vocabulary import OUTBOUND_CHANNELS, Channel, MessageCategory, MessageSource, MessageStatus

DEFAULT_EVENT_BATCH = 200


async def record_event(
    uow: NotificationUnitOfWork,
    event_type: str,
    idempotency_key: str,
    customer_id: int | None,
    payload: Mapping[str, Any],
    occurred_at: datetime | None = None,
) -> RecordedEvent:
    """Store a business event once per idempotency key; a repeat returns the first one and triggers nothing."""
    validate_event(event_type, idempotency_key, payload)
    try:
        plain_value("payload", dict(payload))
    except TemplateError as error:
        raise NotificationError(str(error)) from None
    async with uow:
        recorded = await uow.notifications.add_event(
            event_type, idempotency_key, customer_id, payload, occurred_at or utc_now()
        )
        await uow.commit()
    return recorded


async def list_notification_rules(uow: NotificationRuleUnitOfWork) -> list[NotificationRule]:
    async with uow:
        return await uow.notifications.all_rules()


async def create_notification_rule(
    uow: NotificationRuleUnitOfWork,
    draft: NotificationRuleDraft,
    *,
    actor: str = "system",
    via: str = "system",
) -> NotificationRule:
    """Store a new rule once it is valid, its template is active and no other rule has its name."""
    draft = replace(draft, name=draft.name.strip())
    validate_rule(draft)
    async with uow:
        await _require_template(uow, draft.template_name, draft.category, draft.channel_order)
        others = await uow.notifications.all_rules()
        same_name = next((r for r in others if rule_name_key(r.name) == rule_name_key(draft.name)), None)
        if same_name is not None:
            raise NotificationError(f"A notification rule named '{same_name.name}' already exists.")
        _refuse_twin(NotificationRule(0, **vars(draft)), others)
        rule = await uow.notifications.add_rule(draft)
        if rule is None:
            raise NotificationError(f"A notification rule named '{draft.name}' already exists.")
        _audit(uow, actor, via, "notification_rule.create", rule, vars(draft))
        await uow.commit()
    return rule


async def update_notification_rule(
    uow: NotificationRuleUnitOfWork,
    rule_id: int,
    changes: NotificationRuleChanges,
    *,
    actor: str = "system",
    via: str = "system",
) -> NotificationRule:
    """Change a rule's template, channels, offset, category or switch; a rule switched on needs its template."""
    validate_rule_changes(changes)
    async with uow:
        before = await _existing_rule(uow, rule_id)
        rule = changes.applied_to(before)
        switched_on = rule.enabled and not before.enabled
        # Checked for what changes: a rule left as it was keeps working (a bot's `rule enable` of a rule already
        # on, or one whose template lost a channel's variant, which the planner skips).
        if changes.template_name is not None or changes.category is not None or switched_on:
            await _require_template(uow, rule.template_name, rule.category)
        if changes.template_name is not None or changes.channel_order is not None:
            await _require_template(uow, rule.template_name, rule.category, rule.channel_order)
        if (
            changes.template_name is not None
            or changes.offset_minutes is not None
            or changes.channel_order is not None
            or switched_on
        ):
            _refuse_twin(rule, await uow.notifications.all_rules())
        await uow.notifications.save_rule(rule)
        _audit(uow, actor, via, "notification_rule.update", rule, vars(changes))
        await uow.commit()
    return rule


async def delete_notification_rule(
    uow: NotificationRuleUnitOfWork, rule_id: int, *, actor: str = "system", via: str = "system"
) -> None:
    """Remove a rule; messages it already planned stay in the outbox."""
    async with uow:
        rule = await _existing_rule(uow, rule_id)
        await uow.notifications.delete_rule(rule.id)
        fields = {"name": rule.name, "event_type": rule.event_type}
        _audit(uow, actor, via, "notification_rule.delete", rule, fields)
        await uow.commit()


async def _existing_rule(uow: NotificationRuleUnitOfWork, rule_id: int) -> NotificationRule:
    rule = await uow.notifications.rule(rule_id, for_update=True)
    if rule is None:
        raise NotificationRuleNotFound(f"There is no notification rule with id {rule_id}.")
    return rule


def _may_share_a_channel(one: tuple[Channel, ...], other: tuple[Channel, ...]) -> bool:
    """Whether two rules' messages could go on one channel: an empty order is the customer's own, any channel."""
    return not one or not other or bool(set(one) & set(other))


def _refuse_twin(rule: NotificationRule, rules: list[NotificationRule]) -> None:
    """Two switched-on rules sending one template for one event at one time on a channel both may take would
    send each customer the message twice. A reminder a day before and another two hours before (one
    template) are two rules, and so are one by email and one by SMS (each rule sends one message)."""
    if not rule.enabled:
        return
    twin = next(
        (
            r
            for r in rules
            if r.id != rule.id
            and r.enabled
            and (r.event_type, r.template_name, r.offset_minutes)
            == (rule.event_type, rule.template_name, rule.offset_minutes)
            and _may_share_a_channel(r.channel_order, rule.channel_order)
        ),
        None,
    )
    if twin is not None:
        raise NotificationError(
            f"The rule '{twin.name}' already sends '{rule.template_name}' for {rule.event_type} "
            f"{describe_offset(rule.offset_minutes)} on a channel this one may take: a second would send each "
            "customer the message twice. Change that rule, or switch it off first."
        )


async def _require_template(
    uow: NotificationRuleUnitOfWork,
    template_name: str,
    category: MessageCategory,
    channel_order: tuple[Channel, ...] = (),
) -> None:
    """The template must be in use, and written for each channel the rule names; a marketing template goes
    out only as marketing (its consent, quiet hours and caps), whatever the rule would call it."""
    variants = await uow.templates.variants(template_name)
    if not variants:
        raise NotificationError(f"There is no active template named '{template_name}'.")
    written = {v.template.channel for v in variants}
    unwritten = [c for c in channel_order if c not in written]
    if unwritten:
        has = ", ".join(channel_words(c) for c in OUTBOUND_CHANNELS if c in written)
        raise NotificationError(
            f"The template '{template_name}' has no {channel_words(unwritten[0])} message (it is written for "
            f"{has}): choose its channels, or write it for {channel_words(unwritten[0])} first."
        )
    if category is MessageCategory.TRANSACTIONAL and any(
        v.template.category is MessageCategory.MARKETING for v in variants
    ):
        raise NotificationError(
            f"The template '{template_name}' is written for marketing, so a rule that sends it must be "
            "marketing too (held to marketing consent, quiet hours and caps)."
        )


def _audit(
    uow: NotificationRuleUnitOfWork,
    actor: str,
    via: str,
    action: str,
    rule: NotificationRule,
    fields: Mapping[str, object],
) -> None:
    """Record the change with the fields that were set, as plain JSON values."""
    detail = {
        name: [str(v) for v in value] if isinstance(value, tuple) else value
        for name, value in fields.items()
        if value is not None
    }
    target = f"notification_rule:{rule.id}"
    uow.audit.record(AuditEntry(actor=actor, via=via, action=action, target=target, detail=detail))


async def process_pending_events(
    uow_factory: Callable[[], NotificationUnitOfWork],
    now: datetime | None = None,
    *,
    policy: ConsentPolicy | None = None,
    price_book: PriceBook = DEFAULT_PRICE_BOOK,
    batch_size: int = DEFAULT_EVENT_BATCH,
) -> ProcessingReport:
    """Turn every pending event into outbox rows per matching enabled rule, batch by batch.

    Each batch's rows and the events' processed marks commit together, so an event is handled exactly
    once; the idempotency key (rule, event, customer, channel) makes even a replayed batch harmless.
    """
    now = now or utc_now()
    policy = policy or ConsentPolicy()
    events = planned = suppressed = 0
    reasons: Counter[str] = Counter()
    while True:
        async with uow_factory() as uow:
            batch: list[BusinessEvent] = await uow.notifications.pending_events(batch_size)
            if not batch:
                break
            entries = await _entries_for(uow, batch, now, policy, price_book)
            inserted = await uow.outbox_writer.add_many(entries, now)
            await uow.notifications.mark_processed([event.id for event in batch], now)
            await uow.commit()
        events += len(batch)
        planned += inserted[MessageStatus.PLANNED]
        suppressed += inserted[MessageStatus.SUPPRESSED]
        reasons.update(e.status_reason for e in entries if e.status_reason)
        if len(batch) < batch_size:
            break
    return ProcessingReport(events, planned, suppressed, dict(reasons))


async def _entries_for(
    uow: NotificationUnitOfWork,
    batch: list[BusinessEvent],
    now: datetime,
    policy: ConsentPolicy,
    price_book: PriceBook,
) -> list[OutboxEntry]:
    rules: dict[str, list[NotificationRule]] = {}
    for rule in await uow.notifications.rules_for(sorted({e.event_type for e in batch})):
        rules.setdefault(rule.event_type, []).append(rule)
    customer_ids = sorted({e.customer_id for e in batch if e.customer_id is not None})
    recipients = {
        r.customer_id: r
        for r in await uow.recipients.by_ids(customer_ids, channels=OUTBOUND_CHANNELS, now=now)
    }
    templates: dict[str, list[StoredTemplate]] = {}
    entries: list[OutboxEntry] = []
    for event in batch:
        recipient = recipients.get(event.customer_id) if event.customer_id is not None else None
        if recipient is None:
            continue  # nobody to notify; the event is still marked processed
        for rule in rules.get(event.event_type, []):
            if rule.template_name not in templates:
                templates[rule.template_name] = await uow.templates.variants(rule.template_name)
            planner = OutboxPlanner(
                source=MessageSource.NOTIFICATION,
                source_ref=f"{rule.id}:{event.id}",
                category=rule.category,
                templates=templates[rule.template_name],
                variables={**event.payload, "event_type": event.event_type},
                policy=policy,
                price_book=price_book,
            )
            order = channel_order(rule, recipient)
            try:
                due = due_at(rule, event, now)
            except NotificationError as error:
                entries.append(planner.suppress(recipient, order[0], _bad_event(error)))
                continue
            if due is None:
                entries.append(planner.suppress(recipient, order[0], _too_late(event)))
            else:
                entry = planner.plan(recipient, order, due)
                answered = event.payload.get(ANSWERED_ON)
                if entry.status is MessageStatus.PLANNED and answered and entry.channel == answered:
                    entry = planner.suppress(
                        recipient, entry.channel, _answered_already(event, entry.channel)
                    )
                entries.append(entry)
    return entries


def _answered_already(event: BusinessEvent, channel: Channel) -> SendDecision:
    return SendDecision(
        "suppress",
        ANSWERED_ALREADY,
        f"Not sent: the customer was answered about this {event.event_type} event on {channel_words(channel)} "
        "already, in their conversation.",
    )


def _too_late(event: BusinessEvent) -> SendDecision:
    if event.payload.get(APPOINTMENT_AT) is not None:
        why = (
            f"the appointment it is about had already begun when the {event.event_type} event was processed."
        )
    else:
        why = (
            f"it was due before the {event.event_type} event it is about, which had happened by then (a rule "
            f"sends before an event only when the event carries {APPOINTMENT_AT})."
        )
    return SendDecision("suppress", TOO_LATE, f"Not sent: {why}")


def _bad_event(error: NotificationError) -> SendDecision:
    return SendDecision("suppress", "bad_event", f"Not sent: {error}")
