"""The one send decision every outgoing message takes, one-off or bulk: channel, consent, template,
rendering and cost. Campaigns, notification rules and a staff member's chat reply all plan through it."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2 import meta

from domain.consent.model import ConsentPolicy, RecipientFacts, SendDecision, SendRequest
from domain.consent.rules import NO_ADDRESS, NO_CONSENT, OPTED_OUT, decide
from domain.delivery.outbox import OutboxEntry
from domain.messages.model import Recipient, StoredTemplate
from domain.messages.pricing import DEFAULT_PRICE_BOOK, PriceBook, estimate_cost
from domain.messages.segments import sms_shape
from domain.templates.model import SYSTEM_VARIABLES, MessageTemplate, TemplateError
from domain.templates.nameless import named_for_whatsapp
from domain.templates.rendering import parse_template, plain_value, render_template
from domain.templates.selection import BY_LANGUAGE, language_of, said_in, select_template, whatsapp_components
from domain.vocabulary import (
    Channel,
    MessageCategory,
    MessageSource,
    MessageStatus,
)

NO_TEMPLATE = "no_template"
TEMPLATE_ERROR = "template_error"
NO_CHANNEL = "no_channel"
#: Render results kept per planner; recipients sharing the values a template reads share one rendering.
RENDER_CACHE_SIZE = 50_000
#: What a template may read about its recipient (see Recipient.template_variables).
RECIPIENT_FIELDS = frozenset({"first_name", "name", "locale"})
#: Decisions kept per planner, keyed by everything the decision depends on.
DECISION_CACHE_SIZE = 50_000


@dataclass(frozen=True)
class ChannelChoice:
    """The channel a recipient gets, or why none will do (``channel`` None, the reason in ``decision``)."""

    channel: Channel | None
    decision: SendDecision
    tried: Channel | None  # the channel the exclusion is recorded on


def choose_channel(
    recipient: Recipient,
    order: Sequence[Channel],
    decide_on: Callable[[Recipient, Channel], SendDecision],
) -> ChannelChoice:
    """The first channel in ``order`` on which the decision is not "suppress".

    When none qualifies, the exclusion reports the most telling reason, the first of its kind: the
    customer's own opt-out, then any other rule, then marketing never consented to, then a missing
    address. "Opted out of email" says more than "never asked on WhatsApp", which says more than "no
    Telegram chat", about why the customer was not reached.
    """
    chosen: tuple[Channel, SendDecision] | None = None
    for channel in order:
        decision = decide_on(recipient, channel)
        if decision.verdict != "suppress":
            return ChannelChoice(channel, decision, channel)
        if chosen is None or _telling(decision.reason) < _telling(chosen[1].reason):
            chosen = (channel, decision)
    if chosen is None:
        return ChannelChoice(None, SendDecision("suppress", NO_CHANNEL, "Not sent: no channel is set."), None)
    return ChannelChoice(None, chosen[1], chosen[0])


def _telling(reason: str) -> int:
    """How much a suppression reason says about the customer (lower says more)."""
    return {OPTED_OUT: 0, NO_CONSENT: 2, NO_ADDRESS: 3}.get(reason, 1)


@dataclass(frozen=True, slots=True)
class _Rendering:
    body: str
    subject: str | None
    payload: dict[str, object]
    segments: int | None
    encoding: str | None
    cost_micros: int


class OutboxPlanner:
    """Turns recipients into outbox entries for one campaign or notification rule.

    Holds what is the same for every recipient (templates per channel and locale, the policy, prices)
    and caches renderings keyed by the values each template actually reads, so a million recipients
    with a few thousand distinct first names cost a few thousand renders.
    """

    def __init__(
        self,
        *,
        source: MessageSource,
        source_ref: str,
        category: MessageCategory,
        templates: Sequence[StoredTemplate],
        variables: Mapping[str, Any],
        policy: ConsentPolicy,
        price_book: PriceBook = DEFAULT_PRICE_BOOK,
        campaign_id: int | None = None,
        campaign_type: str | None = None,
        respect_quiet_hours: bool = True,
    ) -> None:
        self.source = source
        self.source_ref = source_ref
        self.category = category
        self.policy = policy
        self.price_book = price_book
        self.campaign_id = campaign_id
        self.campaign_type = campaign_type
        self.respect_quiet_hours = respect_quiet_hours
        self._variables = dict(variables)
        self._variables.pop("campaign_type", None)
        self._stored = tuple(templates)
        self._by_template = {stored.template: stored for stored in self._stored}
        self._selected: dict[tuple[Channel, str], StoredTemplate | None] = {}
        self._reads: dict[int, tuple[str, ...] | None] = {}
        self._system_reads: dict[int, tuple[str, ...]] = {}
        self._decisions: dict[tuple[object, ...], SendDecision] = {}
        self._choices: dict[tuple[object, ...], ChannelChoice] = {}
        self._renderings: dict[tuple[object, ...], _Rendering] = {}
        self._said: dict[str, dict[str, object]] = {}

    def template_for(self, channel: Channel, locale: str) -> StoredTemplate | None:
        key = (channel, locale)
        if key not in self._selected:
            chosen = select_template(
                [s.template for s in self._stored], _template_name(self._stored), channel, locale
            )
            self._selected[key] = None if chosen is None else self._by_template[chosen]
        return self._selected[key]

    def decide(self, recipient: Recipient, channel: Channel, at: datetime) -> SendDecision:
        """The consent decision for ``recipient`` on ``channel`` at ``at``, or a missing-template exclusion."""
        stored = self.template_for(channel, recipient.locale)
        if stored is None:
            return SendDecision("suppress", NO_TEMPLATE, f"Not sent: there is no {channel.value} template.")
        facts = None
        key: tuple[object, ...]
        if recipient.is_plain:
            # Without consents, counts or chats the decision depends only on these, so most of a big
            # audience shares a handful of decisions.
            key = (stored.id, at, channel in recipient.addresses, recipient.timezone, recipient.quiet_hours)
        else:
            facts = recipient.facts(channel)
            key = (stored.id, at, facts)
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._decide_now(stored, channel, facts or recipient.facts(channel), at)
            if len(self._decisions) >= DECISION_CACHE_SIZE:
                self._decisions.clear()
            self._decisions[key] = decision
        return decision

    def _decide_now(
        self, stored: StoredTemplate, channel: Channel, facts: RecipientFacts, at: datetime
    ) -> SendDecision:
        request = SendRequest(
            channel=channel,
            category=self.category,
            campaign_type=self.campaign_type,
            uses_approved_template=stored.template.whatsapp_name is not None,
        )
        decision = decide(request, facts, self.policy, at)
        if decision.verdict == "defer" and not self.respect_quiet_hours:
            return SendDecision("send", decision.reason, "Allowed: this campaign ignores quiet hours.")
        return decision

    def plan(self, recipient: Recipient, order: Sequence[Channel], at: datetime) -> OutboxEntry:
        """The outbox entry for ``recipient``: planned on the first usable channel, else suppressed with why."""
        choice = self._choice(recipient, order, at)
        if choice.channel is None:
            return self._suppressed(recipient, choice.tried or order[0], choice.decision)
        stored = self.template_for(choice.channel, recipient.locale)
        assert stored is not None  # decide() suppresses channels without a template
        try:
            rendering = self._render(stored, recipient)
        except TemplateError as error:
            failed = SendDecision("suppress", TEMPLATE_ERROR, f"Not sent: {error}")
            return self._suppressed(recipient, choice.channel, failed)
        send_at = choice.decision.send_at if choice.decision.verdict == "defer" else at
        to_address = recipient.addresses[choice.channel]
        cost = rendering.cost_micros
        if choice.channel is Channel.SMS and rendering.segments is not None:
            # The rendering is shared by recipients in many countries; the price is the destination's.
            cost = rendering.segments * self.price_book.sms_segment_price(to_address)
        return OutboxEntry(
            customer_id=recipient.customer_id,
            channel=choice.channel,
            source=self.source,
            source_ref=self.source_ref,
            category=self.category,
            to_address=to_address,
            body=rendering.body,
            subject=rendering.subject,
            template_id=stored.id,
            campaign_id=self.campaign_id,
            send_at=send_at,
            segments=rendering.segments,
            encoding=rendering.encoding,
            cost_micros=cost,
            currency=self.price_book.currency,
            payload=rendering.payload,  # shared by every entry with this rendering; never mutated
        )

    def _choice(self, recipient: Recipient, order: Sequence[Channel], at: datetime) -> ChannelChoice:
        if not recipient.is_plain:
            return choose_channel(recipient, order, lambda r, c: self.decide(r, c, at))
        # A plain recipient's choice depends only on these (see decide), so a big audience shares a few.
        key = (
            tuple(order),
            at,
            recipient.locale,
            recipient.timezone,
            recipient.quiet_hours,
            tuple(recipient.addresses),
        )
        choice = self._choices.get(key)
        if choice is None:
            choice = choose_channel(recipient, order, lambda r, c: self.decide(r, c, at))
            if len(self._choices) >= DECISION_CACHE_SIZE:
                self._choices.clear()
            self._choices[key] = choice
        return choice

    def suppress(self, recipient: Recipient, channel: Channel, decision: SendDecision) -> OutboxEntry:
        return self._suppressed(recipient, channel, decision)

    def _suppressed(self, recipient: Recipient, channel: Channel, decision: SendDecision) -> OutboxEntry:
        return OutboxEntry(
            customer_id=recipient.customer_id,
            channel=channel,
            source=self.source,
            source_ref=self.source_ref,
            category=self.category,
            to_address=recipient.addresses.get(channel, ""),
            body="",
            status=MessageStatus.SUPPRESSED,
            status_reason=decision.reason,
            campaign_id=self.campaign_id,
            payload={"explanation": decision.explanation},
        )

    def _render(self, stored: StoredTemplate, recipient: Recipient) -> _Rendering:
        reads = self._template_reads(stored)
        system = self._system_values(stored, recipient)
        if reads is None:
            return self._render_now(stored.template, self._variables_for(stored, recipient, system))
        # Campaign variables are the same for everyone, so only what the template reads from the
        # recipient (and a per-recipient link, when it has one) tells two renderings apart.
        key = (stored.id, *(getattr(recipient, name) for name in reads), *system.values())
        rendering = self._renderings.get(key)
        if rendering is None:
            rendering = self._render_now(stored.template, self._variables_for(stored, recipient, system))
            if len(self._renderings) >= RENDER_CACHE_SIZE:
                self._renderings.clear()
            self._renderings[key] = rendering
        return rendering

    def _variables_for(
        self, stored: StoredTemplate, recipient: Recipient, system: Mapping[str, str]
    ) -> dict[str, object]:
        """What the template reads: the request's values in the template's language, then the recipient's."""
        values = self._said.get(stored.template.locale)
        if values is None:
            values = self._said[stored.template.locale] = said_in(self._variables, stored.template.locale)
        return {**values, **recipient.template_variables(), **system}

    def _system_values(self, stored: StoredTemplate, recipient: Recipient) -> dict[str, str]:
        """The values Switchboard supplies that this template reads: today the one-click unsubscribe link."""
        reads = self._system_reads.get(stored.id)
        if reads is None:
            everything = template_reads(stored.template) or _all_reads(stored.template)
            reads = self._system_reads[stored.id] = tuple(n for n in everything if n in SYSTEM_VARIABLES)
        if not reads:
            return {}
        links = self.policy.unsubscribe_links
        if links is None:
            raise TemplateError(
                "The template has an unsubscribe link, but no unsubscribe links can be made here "
                "(the public URL and secret are not configured)."
            )
        return {"unsubscribe_url": links.url(recipient.customer_id, stored.template.channel)}

    def _template_reads(self, stored: StoredTemplate) -> tuple[str, ...] | None:
        """The recipient fields a template's output depends on, or None when it may vary between renders."""
        if stored.id not in self._reads:
            reads = template_reads(stored.template)
            self._reads[stored.id] = (
                None if reads is None else tuple(n for n in reads if n in RECIPIENT_FIELDS)
            )
        return self._reads[stored.id]

    def _render_now(self, template: MessageTemplate, variables: Mapping[str, object]) -> _Rendering:
        payload: dict[str, object] = {}
        if template.whatsapp_name is not None:
            # Meta fills the name into the text it approved and refuses an empty parameter: the body we keep
            # reads the word the patient reads.
            language = template.whatsapp_language or template.locale
            variables = named_for_whatsapp(
                variables, template.whatsapp_params, language, language_of(language)
            )
            payload["whatsapp_template"] = {
                "name": template.whatsapp_name,
                "language": language,
                "components": whatsapp_components(template, variables),
            }
        rendered = render_template(template, variables)
        if rendered.html_body is not None:
            payload["html_body"] = rendered.html_body
        segments = encoding = None
        if template.channel is Channel.SMS:
            shape = sms_shape(rendered.body)
            segments, encoding = shape.segments, shape.encoding
        cost = estimate_cost(
            template.channel,
            rendered.body,
            self.price_book,
            category=template.category,
            is_template=template.whatsapp_name is not None,
        )
        return _Rendering(rendered.body, rendered.subject, payload, segments, encoding, cost)


def template_reads(template: MessageTemplate) -> tuple[str, ...] | None:
    """Every variable ``template`` reads, sorted; None when its output can differ for the same values.

    Jinja's ``random`` filter is the one built-in whose output is not a function of the inputs.
    """
    sources = _sources(template)
    if any("random" in source for source in sources):
        return None
    return _all_reads(template)


def _all_reads(template: MessageTemplate) -> tuple[str, ...]:
    names: set[str] = set(template.whatsapp_params)
    for source in _sources(template):
        names |= meta.find_undeclared_variables(parse_template(source))
    return tuple(sorted(names))


def _sources(template: MessageTemplate) -> list[str]:
    return [s for s in (template.body, template.subject, template.html_body) if s is not None]


def check_variables(variables: Mapping[str, Any]) -> None:
    """Campaign variables must be plain data a template may see, and never what Switchboard fills in."""
    table = variables.get(BY_LANGUAGE, {})
    if not isinstance(table, Mapping) or not all(
        isinstance(words, Mapping) and all(isinstance(value, str) for value in words.values())
        for words in table.values()
    ):
        raise TemplateError(
            f'{BY_LANGUAGE} gives values per language: {{"de": {{"offer": "20 % Rabatt"}}}} (texts only).'
        )
    for code, words in table.items():
        if code != "*" and not re.fullmatch(r"[a-z]{2,3}", str(code)):
            raise TemplateError(
                f"“{code}” in {BY_LANGUAGE} is not a language: write its code in small letters ({language_of(str(code)) or 'de'})."
            )
        alone = sorted(set(words) - set(variables))
        if alone:
            raise TemplateError(
                f"{alone[0]} is given for “{code}” only: give {alone[0]} for the other languages too."
            )
    named = set(variables).union(*(words for words in table.values()))
    taken = sorted(SYSTEM_VARIABLES & named)
    if taken:
        raise TemplateError(
            f"{', '.join(taken)} is filled in by Switchboard for each recipient; leave it out of the variables."
        )
    for name, value in variables.items():
        plain_value(name, value)


def _template_name(stored: Sequence[StoredTemplate]) -> str:
    return stored[0].template.name if stored else ""
