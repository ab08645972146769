"""What a campaign is: its audience definition, its settings and progress, and the recipients it reaches."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.vocabulary import OUTBOUND_CHANNELS, CampaignStatus, Channel, MessageCategory, MessageStatus

#: Bounds on an audience definition, so a stored filter can never turn into an unbounded query.
MAX_AUDIENCE_VALUES = 1_000
MAX_TAGS_ALL = 20
MAX_VALUE_LENGTH = 64

_LIST_FIELDS = ("segments", "tags_any", "tags_all", "exclude_tags", "countries", "locales", "locations")
_TIME_FIELDS = ("created_before", "created_after", "visited_since", "not_visited_since")
_CHANNEL_FIELDS = ("has_channel", "opted_in_on")
_KNOWN_FIELDS = frozenset((*_LIST_FIELDS, *_TIME_FIELDS, *_CHANNEL_FIELDS, "campaign_type"))


class CampaignError(ValueError):
    """A campaign cannot be created or moved as asked; the message is meant for the staff member."""


class AudienceError(CampaignError):
    """An audience definition is malformed; it names the offending field."""


@dataclass(frozen=True)
class Audience:
    """Which customers a campaign targets. Empty lists mean "no restriction"; all given filters must hold.

    ``has_channel`` keeps customers with an address on at least one of the listed channels;
    ``opted_in_on`` those who have opted in (their current consent) on at least one of the listed channels.
    ``locations`` are location codes: customers whose home clinic is one of them.
    ``visited_since`` keeps customers with a completed appointment at or after that moment;
    ``not_visited_since`` those with none since then (including those never seen).
    ``campaign_type`` is not a filter: it names the kind of campaign for the per-type frequency cap.
    """

    segments: tuple[str, ...] = ()
    tags_any: tuple[str, ...] = ()
    tags_all: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    locales: tuple[str, ...] = ()
    locations: tuple[str, ...] = ()
    created_before: datetime | None = None
    created_after: datetime | None = None
    visited_since: datetime | None = None
    not_visited_since: datetime | None = None
    has_channel: tuple[Channel, ...] = ()
    opted_in_on: tuple[Channel, ...] = ()
    campaign_type: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Audience:
        """Validate a stored or submitted definition; raise AudienceError naming every problem."""
        if not isinstance(data, Mapping):
            raise AudienceError("The audience must be an object of filters.")
        problems = [f"'{name}' is not an audience filter." for name in sorted(set(data) - _KNOWN_FIELDS)]
        values: dict[str, Any] = {}
        for name in _LIST_FIELDS:
            if name in data:
                values[name] = _text_list(name, data[name], problems)
        if len(values.get("tags_all", ())) > MAX_TAGS_ALL:
            problems.append(f"'tags_all' may name at most {MAX_TAGS_ALL} tags.")
        for name in _TIME_FIELDS:
            if data.get(name) is not None:
                values[name] = _moment(name, data[name], problems)
        for name in _CHANNEL_FIELDS:
            if name in data:
                values[name] = _channels(name, data[name], problems)
        campaign_type = data.get("campaign_type")
        if campaign_type is not None:
            if not isinstance(campaign_type, str) or not 0 < len(campaign_type) <= MAX_VALUE_LENGTH:
                problems.append("'campaign_type' must be a short piece of text.")
            else:
                values["campaign_type"] = campaign_type
        visited, unseen = values.get("visited_since"), values.get("not_visited_since")
        if visited is not None and unseen is not None and visited >= unseen:
            problems.append(
                "'not_visited_since' must be after 'visited_since': nobody visited since a day and not since "
                "an earlier one."
            )
        if problems:
            raise AudienceError(" ".join(problems))
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            name: list(getattr(self, name)) for name in _LIST_FIELDS if getattr(self, name)
        }
        for name in _TIME_FIELDS:
            moment: datetime | None = getattr(self, name)
            if moment is not None:
                data[name] = moment.isoformat()
        for name in _CHANNEL_FIELDS:
            channels: tuple[Channel, ...] = getattr(self, name)
            if channels:
                data[name] = [c.value for c in channels]
        if self.campaign_type is not None:
            data["campaign_type"] = self.campaign_type
        return data


def _text_list(name: str, value: object, problems: list[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]  # a single value is a common way to write a one-item list
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        problems.append(f"'{name}' must be a list of text values.")
        return ()
    if len(value) > MAX_AUDIENCE_VALUES:
        problems.append(f"'{name}' may hold at most {MAX_AUDIENCE_VALUES:,} values.")
    if any(not v or len(v) > MAX_VALUE_LENGTH for v in value):
        problems.append(f"Every value of '{name}' must be 1 to {MAX_VALUE_LENGTH} characters long.")
    return tuple(dict.fromkeys(value))


def _moment(name: str, value: object, problems: list[str]) -> datetime | None:
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        problems.append(f"'{name}' must be an ISO date-time such as 2026-01-31T00:00:00+00:00.")
        return None
    if moment.tzinfo is None:
        problems.append(f"'{name}' needs a time zone offset.")
        return None
    return moment


def _channels(field_name: str, value: object, problems: list[str]) -> tuple[Channel, ...]:
    names = _text_list(field_name, value, problems)
    try:
        channels = tuple(Channel(name) for name in names)
    except ValueError:
        problems.append(f"'{field_name}' may only name {_outbound_names()}.")
        return ()
    if any(channel not in OUTBOUND_CHANNELS for channel in channels):
        problems.append(f"'{field_name}' may only name {_outbound_names()}.")
    return channels


def _outbound_names() -> str:
    return ", ".join(c.value for c in OUTBOUND_CHANNELS)


@dataclass(frozen=True)
class CampaignDraft:
    """What staff fill in to create a campaign."""

    slug: str
    name: str
    template_name: str
    channel_order: tuple[Channel, ...]
    audience: Mapping[str, Any] = field(default_factory=dict)
    variables: Mapping[str, Any] = field(default_factory=dict)
    category: MessageCategory = MessageCategory.MARKETING
    fallback_after_minutes: int | None = None
    respect_quiet_hours: bool = True
    scheduled_at: datetime | None = None
    created_by: int | None = None


@dataclass(frozen=True)
class Campaign:
    """A stored campaign with its planning progress."""

    id: int
    slug: str
    name: str
    status: CampaignStatus
    category: MessageCategory
    template_name: str
    channel_order: tuple[Channel, ...]
    audience: Audience
    variables: Mapping[str, Any]
    fallback_after_minutes: int | None
    respect_quiet_hours: bool
    scheduled_at: datetime | None
    planning_cursor: int
    planning_done: bool
    planned_count: int
    excluded_count: int
    launched_at: datetime | None = None


@dataclass(frozen=True)
class PlanningProgress:
    """Where planning a campaign stands after a batch."""

    campaign_id: int
    cursor: int
    planned: int  # rows this batch added as planned
    excluded: int  # rows this batch added as suppressed
    done: bool
    total_planned: int = 0
    total_excluded: int = 0
    running: bool = True  # False when the campaign is paused, cancelled or not yet launched


@dataclass(frozen=True)
class RenderedSample:
    """The message the first recipient of a preview would get."""

    customer_id: int
    channel: Channel
    to_address: str
    body: str
    subject: str | None = None


@dataclass(frozen=True)
class CampaignPreview:
    """What launching would do, computed without writing anything."""

    recipients: int
    planned: int
    exclusions: Mapping[str, int]
    per_channel: Mapping[Channel, int]
    estimated_cost_micros: int
    currency: str
    deferred: int
    sample: RenderedSample | None
    #: Planned messages by the language of the template variant each gets ("de"): what each language's read.
    per_language: Mapping[str, int] = field(default_factory=dict)
    #: Planned messages to recipients who read a language the template has no message in, by (their language,
    #: the language of the message they get): ("de", "en"): 12 German readers get the English message.
    in_another_language: Mapping[tuple[str, str], int] = field(default_factory=dict)


@dataclass(frozen=True)
class CampaignProgress:
    """How a campaign's messages are getting on, from the outbox itself."""

    campaign_id: int
    status: CampaignStatus
    by_status: Mapping[str, int]
    suppressed_by_reason: Mapping[str, int]
    #: Recipients who opted out of the channel after this campaign's message reached them (its unsubscribes).
    opted_out: int
    #: Why messages failed or were not delivered, in the provider's words (or ours after retries).
    failed_by_reason: Mapping[str, int] = field(default_factory=dict)
    #: What providers charged for the messages handed to them so far, per currency (micros).
    cost_micros: Mapping[str, int] = field(default_factory=dict)
    #: When the first message still waiting is due to go (a recipient's quiet hours, a later send time).
    next_send_at: datetime | None = None
    #: Recipients whose message was not delivered and who wait for the fallback to the next channel, and when
    #: the first of them is due to be tried there.
    fallbacks_waiting: int = 0
    next_fallback_at: datetime | None = None
    #: Recipients whose message has no delivery confirmed yet: past the delay, they go on to the next channel.
    unconfirmed: int = 0
    fallback_after_minutes: int | None = None

    def count(self, status: str) -> int:
        return self.by_status.get(status, 0)

    @property
    def replies(self) -> int:
        """Messages recipients wrote back (attributed to the campaign; not among its messages)."""
        return self.count(MessageStatus.RECEIVED.value)

    def sent_by_stage(self) -> list[tuple[str, int]]:
        """The campaign's own messages by where they are, in words, in the order a message goes (every
        status but a reply's has its words)."""
        return [(words, self.count(status)) for status, words in PROGRESS_WORDS.items() if self.count(status)]

    def failure_reasons(self, most: int) -> list[tuple[str, int]]:
        """The `most` commonest reasons messages were not delivered, commonest first (ties by their words)."""
        return sorted(self.failed_by_reason.items(), key=lambda item: (-item[1], item[0]))[:most]


#: A campaign message's status as its progress says it, in the order a message goes.
PROGRESS_WORDS = {
    MessageStatus.PLANNED.value: "waiting to be sent",
    MessageStatus.SENDING.value: "being sent",
    MessageStatus.QUEUED.value: "handed to the provider",
    MessageStatus.SENT.value: "sent (no receipt yet)",
    MessageStatus.DELIVERED.value: "delivered",
    MessageStatus.READ.value: "read",
    MessageStatus.UNDELIVERED.value: "not delivered",
    MessageStatus.FAILED.value: "failed",
    MessageStatus.DEAD.value: "given up after retries",
    MessageStatus.SUPPRESSED.value: "held back (an opt-out, missing consent or a limit)",
    MessageStatus.CANCELLED.value: "cancelled",
}


@dataclass(frozen=True)
class FallbackCandidate:
    """A recipient whose latest message of a campaign has not been delivered in time."""

    customer_id: int
    channel: Channel


def channels_after(order: Sequence[Channel], channel: Channel) -> tuple[Channel, ...]:
    """The channels a fallback may still try once ``channel`` has failed."""
    if channel not in order:
        return ()
    return tuple(order[order.index(channel) + 1 :])


#: Why recipients were left out of a campaign, as staff read it: "12 customers never gave …".
EXCLUSION_WORDS = {
    "no_address": "have no address on any of the chosen channels",
    "opted_out": "opted out of these messages",
    "no_consent": "never gave marketing consent on the chosen channels",
    "whatsapp_window_closed_needs_template": "are outside WhatsApp's 24-hour window and the template is not "
    "an approved WhatsApp template",
    "frequency_cap_channel": "already had as many messages on that channel as the frequency cap allows",
    "frequency_cap_campaign_type": "already had as many campaigns of this kind as the cap allows",
    "business_no_marketing_on_channel": "would get it on a channel the business sends no marketing on "
    "(its limit is 0)",
    "business_no_campaign_type": "would get a kind of campaign the business sends none of (its limit is 0)",
    "customer_marketing_limit": "asked for no marketing, or for less than they already had this week",
    "no_template": "have a language or channel the template has no variant for",
    "template_error": "could not have the template filled in for them",
    "already_in_campaign": "are already in this campaign",
}


@dataclass(frozen=True)
class FallbacksWaiting:
    #: Recipients whose message failed or was not delivered, and when the first of them failed.
    failed: int
    #: Recipients whose message was handed on or sent but has no delivery confirmed yet.
    unconfirmed: int
    failed_since: datetime | None


def fallbacks_waiting_words(
    progress: CampaignProgress, now: datetime, moment: Callable[[datetime], str]
) -> str | None:
    """ "6 recipients whose messages were not delivered wait to be tried on the next channel, the first at
    21:17.": why a campaign with nothing left to send is still running; None when nobody may go on."""
    said = []
    waiting = progress.fallbacks_waiting
    if waiting:
        due = progress.next_fallback_at
        when = (
            "as soon as the worker gets to it" if due is None or due <= now else f"the first at {moment(due)}"
        )
        who = (
            "1 recipient whose message was" if waiting == 1 else f"{waiting:,} recipients whose messages were"
        )
        verb = "waits" if waiting == 1 else "wait"
        said.append(f"{who} not delivered {verb} to be tried on the next channel, {when}.")
    unconfirmed = progress.unconfirmed
    if unconfirmed and progress.fallback_after_minutes:
        said.append(
            f"{unconfirmed:,} {'has' if unconfirmed == 1 else 'have'} no delivery confirmed yet; any still "
            f"unconfirmed {progress.fallback_after_minutes} minutes after going out are tried on the next "
            "channel."
        )
    return " ".join(said) or None
