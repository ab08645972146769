"""Notification rules: when a message for an event is due, which channels to try, what the template sees."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.campaigns.model import CampaignError
from domain.campaigns.rules import validate_channel_order
from domain.clock import utc_now
from domain.consent.model import ConsentPolicy
from domain.messages.model import Recipient, StoredTemplate
from domain.messages.send_decision import RECIPIENT_FIELDS, OutboxPlanner, choose_channel
from domain.messages.words import channel_words
from domain.notifications.model import (
    BusinessEvent,
    NotificationError,
    NotificationRule,
    NotificationRuleChanges,
    NotificationRuleDraft,
)
from domain.templates.model import SYSTEM_VARIABLES
from domain.vocabulary import Channel, ConsentStatus, MessageCategory, MessageSource

#: Channels tried after the customer's preferred one and those they opted in on, cheapest reliable first.
DEFAULT_CHANNEL_ORDER: tuple[Channel, ...] = (Channel.WHATSAPP, Channel.SMS, Channel.EMAIL, Channel.TELEGRAM)
#: What a rule's template reads besides the event's payload: the recipient's details, the system's links and
#: the event's type.
FILLED_FOR_RULES = frozenset({*RECIPIENT_FIELDS, *SYSTEM_VARIABLES, "event_type"})
#: The payload field that anchors reminders; offsets count from it (e.g. -1440 = a day before).
APPOINTMENT_AT = "appointment_at"
TOO_LATE = "too_late"
#: The payload field naming the channel on which the customer was answered about the event already, in their
#: conversation (a patient who picked a new time by letter got "Done: …" with the link): a rule's message
#: that would go on that channel is not sent, since it would say the same again.
ANSWERED_ON = "answered_on"
ANSWERED_ALREADY = "answered_in_conversation"
MAX_EVENT_TYPE_LENGTH = 64
MAX_KEY_LENGTH = 128
#: What a rule's event type looks like: dot-separated parts such as ``order.created``.
RULE_EVENT_TYPE = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)+")
#: Rule names and template names share the width of their columns.
MAX_NAME_LENGTH = 64
#: A rule fires at most a week before or after its anchor.
MAX_OFFSET_MINUTES = 7 * 24 * 60
RULE_CATEGORIES: tuple[MessageCategory, ...] = (MessageCategory.TRANSACTIONAL, MessageCategory.MARKETING)


def validate_event(event_type: str, idempotency_key: str, payload: Mapping[str, Any]) -> None:
    _check_event_type_length(event_type)
    if not idempotency_key or len(idempotency_key) > MAX_KEY_LENGTH:
        raise NotificationError(f"The idempotency key must be 1 to {MAX_KEY_LENGTH} characters long.")
    if APPOINTMENT_AT in payload:
        anchor_of(payload, utc_now())


def _check_event_type_length(event_type: str) -> None:
    if not event_type or len(event_type) > MAX_EVENT_TYPE_LENGTH:
        raise NotificationError(f"The event type must be 1 to {MAX_EVENT_TYPE_LENGTH} characters long.")


def validate_rule(draft: NotificationRuleDraft) -> None:
    """Everything about a new rule that can be checked without storage; the template's existence is not."""
    if not draft.name.strip() or not draft.event_type.strip():
        raise NotificationError("A notification rule needs a name and an event type.")
    if len(draft.name) > MAX_NAME_LENGTH:
        raise NotificationError(f"The rule name must be at most {MAX_NAME_LENGTH} characters long.")
    validate_rule_event_type(draft.event_type)
    validate_rule_changes(
        NotificationRuleChanges(
            draft.template_name, draft.channel_order, draft.offset_minutes, draft.category
        )
    )


def validate_rule_changes(changes: NotificationRuleChanges) -> None:
    """The fields a change sets; unchanged ones are left alone so that an old rule can still be switched off."""
    if changes.template_name is not None and not 0 < len(changes.template_name.strip()) <= MAX_NAME_LENGTH:
        raise NotificationError(f"The template name must be 1 to {MAX_NAME_LENGTH} characters long.")
    if changes.channel_order:
        rule_channel_order(changes.channel_order)
    if changes.offset_minutes is not None and abs(changes.offset_minutes) > MAX_OFFSET_MINUTES:
        raise NotificationError(
            f"The offset must be between {-MAX_OFFSET_MINUTES} and {MAX_OFFSET_MINUTES} minutes "
            "(negative is before the appointment or event, positive after)."
        )
    if changes.category is not None:
        rule_category(changes.category)


def validate_rule_event_type(event_type: str) -> None:
    """Rules are stricter than events: an event type a rule names must look like ``order.created``."""
    _check_event_type_length(event_type)
    if not RULE_EVENT_TYPE.fullmatch(event_type):
        raise NotificationError(
            f"The event type '{event_type}' must look like 'order.created': lower-case letters, digits "
            "and underscores, in two or more parts joined by dots."
        )


def rule_channel_order(names: Sequence[str]) -> tuple[Channel, ...]:
    """A rule's channel order; empty means the customer's own (Recipient.reach_order)."""
    if not names:
        return ()
    try:
        return validate_channel_order(names)
    except CampaignError as error:
        raise NotificationError(str(error)) from None


def rule_category(name: str) -> MessageCategory:
    if name not in RULE_CATEGORIES:
        allowed = " or ".join(c.value for c in RULE_CATEGORIES)
        raise NotificationError(f"A notification rule's category must be {allowed}, not '{name}'.")
    return MessageCategory(name)


def anchor_of(payload: Mapping[str, Any], default: datetime) -> datetime:
    """The moment offsets count from: the payload's appointment time when there is one, else ``default``."""
    value = payload.get(APPOINTMENT_AT)
    if value is None:
        return default
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        raise NotificationError(f"'{APPOINTMENT_AT}' must be an ISO date-time with a time zone.") from None
    if moment.tzinfo is None:
        raise NotificationError(f"'{APPOINTMENT_AT}' needs a time zone offset.")
    return moment.astimezone(UTC)


def due_at(rule: NotificationRule, event: BusinessEvent, now: datetime) -> datetime | None:
    """When the rule's message should go out; None when it would arrive after the thing it is about.

    A reminder whose moment has passed but whose appointment is still ahead goes out now (booked late);
    one for an appointment already begun is pointless.
    """
    anchor = anchor_of(event.payload, event.occurred_at)
    due = anchor + timedelta(minutes=rule.offset_minutes)
    if due >= now:
        return due
    if rule.offset_minutes < 0 and anchor <= now:
        return None
    return now


def channel_order(rule: NotificationRule, recipient: Recipient) -> tuple[Channel, ...]:
    """The rule's own order, or the customer's: preferred channel, those they opted in on, the default order."""
    if rule.channel_order:
        return rule.channel_order
    return recipient.reach_order(DEFAULT_CHANNEL_ORDER)


#: Why a rule's message takes the channel reaching_channel names, in staff's words (see ``reaching_channel``).
REACH_REASONS: dict[str, str] = {
    "preferred": "their preferred channel",
    "opted_in": "a channel they opted in on",
    "rule": "the channel the rule names first",
    "rule_next": "the first in the rule's order that reaches them",
    "default": "the first channel they can be reached on",
}
#: Why no channel will: a key of NOT_REACHED, said after "no message carries it: ".
NOT_REACHED: dict[str, str] = {
    "no_rule": "no notification rule sends it (is its rule switched on, under Templates?)",
    "unreachable": "no channel reaches them (no address or template for it, or they opted out)",
}


def reaching_channel(
    rule: NotificationRule | None,
    recipient: Recipient,
    templates: Sequence[StoredTemplate],
    policy: ConsentPolicy,
    at: datetime,
) -> tuple[Channel | None, str]:
    """The channel ``rule``'s message to ``recipient`` would take at ``at``, and why (a key of REACH_REASONS;
    of NOT_REACHED when none would): the choice the rule's planner makes (domain.notifications.use_cases),
    so an address, an opt-out, a missing template variant or WhatsApp's 24-hour window count as they will."""
    if rule is None:
        return None, "no_rule"
    planner = OutboxPlanner(
        source=MessageSource.NOTIFICATION,
        source_ref="",
        category=rule.category,
        templates=templates,
        variables={},
        policy=policy,
    )
    order = channel_order(rule, recipient)
    chosen = choose_channel(recipient, order, lambda r, c: planner.decide(r, c, at)).channel
    if chosen is None:
        return None, "unreachable"
    if rule.channel_order:
        return chosen, "rule" if chosen == order[0] else "rule_next"
    if chosen == recipient.preferred_channel:
        return chosen, "preferred"
    consent = recipient.consents.get(chosen)
    if consent is not None and consent.status is ConsentStatus.OPTED_IN:
        return chosen, "opted_in"
    return chosen, "default"


def told_sentence(whom: str, what: str, channel: str | None, why: str) -> str:
    """Staff told where a message goes: "Greta Gruber is sent the link on SMS, a channel they opted in on.";
    with no channel, why none: "No message will carry the link to Greta Gruber: no channel reaches them …"."""
    if not channel:
        return f"No message will carry {what} to {whom}: {NOT_REACHED.get(why, NOT_REACHED['unreachable'])}."
    return f"{whom[:1].upper()}{whom[1:]} is sent {what} {told_words(channel, why)}."


def told_words(channel: str, why: str) -> str:
    """Where a message goes, for a sentence "… is sent the link {told_words}": "on SMS, a channel they
    opted in on". With no channel there is no such sentence: `told_sentence` says why none."""
    try:
        words = channel_words(Channel(channel))
    except ValueError:
        words = channel
    reason = REACH_REASONS.get(why)
    return f"on {words}, {reason}" if reason else f"on {words}"


def describe_offset(minutes: int) -> str:
    """A rule's offset as staff read it: "at the event", "1 day before", "2 h 30 min after"."""
    if minutes == 0:
        return "at the event"
    days, rest = divmod(abs(minutes), 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = (
        f"{days} day{'s' if days != 1 else ''}" if days else "",
        f"{hours} h" if hours else "",
        f"{mins} min" if mins else "",
    )
    return " ".join(part for part in parts if part) + (" before" if minutes < 0 else " after")


def describe_channel_order(order: Sequence[Channel]) -> str:
    """The channels a rule tries, in order, by name; when it names none, the customer's own order."""
    return ", ".join(channel_words(channel) for channel in order) or "preferred, then opted in"


#: The units a rule's offset is written in on the dashboard, in minutes.
OFFSET_UNITS: dict[str, int] = {"minutes": 1, "hours": 60, "days": 24 * 60}


def offset_minutes_of(amount: str, unit: str, direction: str) -> int:
    """A rule's offset from the form's three fields ("1", "days", "before" is -1440), checked in words."""
    if unit not in OFFSET_UNITS or direction not in ("before", "after"):
        raise NotificationError("Choose minutes, hours or days, and before or after.")
    text = amount.strip() or "0"
    if not (text.isascii() and text.isdigit()) or len(text) > 6:
        raise NotificationError(
            f"The offset must be a whole number of {unit}, such as 2 (not '{amount[:20]}')."
        )
    minutes = int(text) * OFFSET_UNITS[unit] * (-1 if direction == "before" else 1)
    if abs(minutes) > MAX_OFFSET_MINUTES:
        raise NotificationError(
            f"A rule sends at most {MAX_OFFSET_MINUTES // OFFSET_UNITS['days']} days before or after the event "
            f"(not {describe_offset(minutes)})."
        )
    return minutes


def offset_parts(minutes: int) -> tuple[int, str, str]:
    """The form's three fields for an offset, in the largest unit that writes it exactly: -1440 is 1 day before."""
    if minutes == 0:
        return 0, "minutes", "after"
    unit = next(name for name in ("days", "hours", "minutes") if minutes % OFFSET_UNITS[name] == 0)
    return abs(minutes) // OFFSET_UNITS[unit], unit, "before" if minutes < 0 else "after"


def check_before_anchor(offset_minutes: int, event_type: str, carries_anchor: bool | None) -> None:
    """A rule sending before its event needs the event to carry APPOINTMENT_AT: counted back from the moment
    the event happened, its message is always too late. ``carries_anchor``: what the latest events of the
    type showed (None: none has arrived yet, so nothing can be said)."""
    if offset_minutes < 0 and carries_anchor is False:
        raise NotificationError(
            f"The latest {event_type} events carry no {APPOINTMENT_AT}, so a message before them would always "
            f"be too late and never sent: choose after, or have your system send {APPOINTMENT_AT} with the event."
        )


#: What tells rule names apart as people say them: not case, underscores, dashes or spaces.
_NAME_SEPARATORS = re.compile(r"[\s_\-]+")


def rule_name_key(name: str) -> str:
    """A rule's name as people say it: "Order_Confirmation", "order confirmation" and "order-confirmation" are one."""
    return _NAME_SEPARATORS.sub(" ", name.casefold()).strip()
