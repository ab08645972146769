"""`campaign new NAME template T [with k=v …] to AUDIENCE on CHANNEL [then FALLBACK [after N min]]
[at YYYY-MM-DD HH:MM] [confirm]`: the campaign wizard in one line. Without `confirm` it answers with the
count, every exclusion and the cost (writing nothing); with it, the draft is saved through the same checks
as the API and the wizard, ready for `campaign launch`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time

from bot.commands.campaigns import estimated_cost, preview_fields
from bot.commands.context import CommandContext
from bot.commands.parsing import ParseError
from bot.commands.wording import day_and_time
from bot.replies import Button, Field, Reply
from domain.campaigns import use_cases
from domain.campaigns.languages import (
    VALUE_NAME,
    not_in_their_language,
    same_in_every_language,
    template_languages,
    template_needs,
    unread_language,
    with_language_values,
)
from domain.campaigns.model import CampaignDraft, CampaignError
from domain.campaigns.rules import SendTimeError, local_send_moment, missing_values
from domain.staff import StaffIdentity
from domain.templates.selection import BY_LANGUAGE
from domain.vocabulary import OUTBOUND_CHANNELS, Channel
from reports.library import slug_for
from reports.periods import zone
from storage.queries.campaigns import campaign_id_by_slug
from storage.queries.templates import active_template_variants

USAGE = (
    "campaign new NAME template TEMPLATE [with key=value key[de]=value …] to AUDIENCE on CHANNEL [then FALLBACK "
    "[after N min]] [at YYYY-MM-DD HH:MM] [confirm]   AUDIENCE: everyone, or segment:X, country:DE, tag:X, "
    "not-tag:X, clinic:CODE, opted-in:CHANNEL, visited-since:YYYY-MM-DD, not-visited-since:YYYY-MM-DD "
    "joined by commas"
)
_GRAMMAR = re.compile(
    r"(?P<name>.+?)\s+template\s+(?P<template>\S+)"
    r"(?:\s+with\s+(?P<values>.+?))?"
    r"\s+to\s+(?P<audience>.+?)"
    r"\s+on\s+(?P<channel>\S+)"
    r"(?:\s+then\s+(?P<fallback>\S+)(?:\s+after\s+(?P<after>\d+)\s*(?:min|minutes)?)?)?"
    r"(?:\s+at\s+(?P<day>\d{4}-\d{2}-\d{2})\s+(?P<clock>\d{1,2}:\d{2}))?"
    r"(?:\s+(?P<confirm>confirm))?",
    re.IGNORECASE,
)
_AUDIENCE_KEYS = {
    "segment": "segments",
    "country": "countries",
    "tag": "tags_any",
    "not-tag": "exclude_tags",
    "clinic": "locations",
    "opted-in": "opted_in_on",
}
#: Audience terms that name a day (in the business's timezone), not a value.
_AUDIENCE_DAYS = {"visited-since": "visited_since", "not-visited-since": "not_visited_since"}


def campaign_slug(name: str) -> str:
    """The name's slug; "new" is the wizard's own address, so a campaign named New is new-campaign."""
    slug = slug_for(name) or "campaign"
    return "new-campaign" if slug in ("new", "new-report") else slug


@dataclass(frozen=True)
class NewCampaign:
    name: str
    template: str
    channels: tuple[Channel, ...]
    audience: dict[str, list[str]]
    variables: dict[str, str] = field(default_factory=dict)
    #: `offer[de]=…`: what the template's message in that language reads instead (domain.campaigns.languages).
    by_language: dict[str, dict[str, str]] = field(default_factory=dict)
    #: visited_since / not_visited_since: the day, the business's midnight of which the audience uses.
    visit_days: dict[str, date] = field(default_factory=dict)
    fallback_after: int | None = None
    day: date | None = None
    clock: time | None = None
    confirm: bool = False
    #: The command as typed without `confirm`, for the confirmation button.
    text: str = ""


def _channel(word: str) -> Channel:
    if word.lower() not in {c.value for c in OUTBOUND_CHANNELS}:
        raise ParseError(f"“{word}” is not a channel; use sms, email, whatsapp or telegram.", USAGE)
    return Channel(word.lower())


def parse_new(words: list[str], rest: str, today: date) -> NewCampaign:
    # What was quoted ("Berlin Mitte", "up to 20% off", "Mother's Day") is held aside while the grammar reads
    # the line, so its spaces and words ("to", "on") are not read as the grammar's; each part gets it back.
    held: list[str] = []

    def hold(word: str) -> str:
        if not any(c.isspace() for c in word):
            return word
        held.append(word)
        return f"\x00{len(held) - 1}\x00"

    def back(part: str, *, quoted: bool = False) -> str:
        def one(found: re.Match[str]) -> str:
            word = held[int(found.group(1))]
            return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"' if quoted else word

        return re.sub(r"\x00(\d+)\x00", one, part)

    text = " ".join(hold(w) for w in words)
    match = _GRAMMAR.fullmatch(text)
    if match is None:
        raise ParseError("Give the name, template, audience and channel.", USAGE)
    channels = [_channel(match["channel"])]
    if match["fallback"]:
        channels.append(_channel(match["fallback"]))
    audience: dict[str, list[str]] = {}
    visit_days: dict[str, date] = {}
    if match["audience"].strip().lower() not in ("everyone", "all", "all customers"):
        for term in back(match["audience"]).split(","):
            key, colon, value = term.strip().partition(":")
            key, value = key.lower(), value.strip()
            if colon and key in _AUDIENCE_DAYS and value:
                try:
                    visit_days[_AUDIENCE_DAYS[key]] = date.fromisoformat(value)
                except ValueError:
                    raise ParseError(f"“{value}” is not a day; write it as 2026-06-01.", USAGE) from None
                continue
            if not colon or key not in _AUDIENCE_KEYS or not value:
                raise ParseError(
                    f"“{term.strip()}” is not an audience; say segment:X, country:DE, tag:X, not-tag:X, "
                    "clinic:CODE, opted-in:CHANNEL, visited-since:DAY or not-visited-since:DAY.",
                    USAGE,
                )
            if key == "opted-in":
                value = _channel(value).value
            values = audience.setdefault(_AUDIENCE_KEYS[key], [])
            values.append(value.upper() if key in ("country", "clinic") else value)
    variables: dict[str, str] = {}
    by_language: dict[str, dict[str, str]] = {}
    for pair in (back(word) for word in (match["values"] or "").split()):  # offer="20% off": one value
        key, equals, value = pair.partition("=")
        named = VALUE_NAME.fullmatch(key)
        if not equals or named is None or named["name"] == BY_LANGUAGE:
            raise ParseError(
                f"“{pair}” is not a value; write key=value (no spaces around =), offer[de]=… for the German "
                'message, and quote a value with spaces: offer="20% off skin checks".',
                USAGE,
            )
        table = by_language.setdefault(named["language"].lower(), {}) if named["language"] else variables
        if named["name"] in table:
            raise ParseError(f"{key} is given twice; keep one.", USAGE)
        table[named["name"]] = value
    day = clock = None
    if match["day"]:
        try:
            day, clock = date.fromisoformat(match["day"]), time.fromisoformat(match["clock"].zfill(5))
        except ValueError:
            raise ParseError(f"“{match['day']} {match['clock']}” is not a date and time.", USAGE) from None
    confirm = bool(match["confirm"])
    typed = back(text[: match.start("confirm")].rstrip() if confirm else text, quoted=True)
    return NewCampaign(
        name=back(match["name"]).strip("\"“”'"),
        template=back(match["template"]),
        channels=tuple(channels),
        audience=audience,
        variables=variables,
        by_language=by_language,
        visit_days=visit_days,
        fallback_after=int(match["after"]) if match["after"] else (60 if match["fallback"] else None),
        day=day,
        clock=clock,
        confirm=confirm,
        text=f"campaign new {typed}",
    )


async def run_new(command: NewCampaign, who: StaffIdentity, ctx: CommandContext) -> Reply:
    variants = await active_template_variants(ctx.database)
    if command.template not in {v.name for v in variants}:
        names = ", ".join(sorted({v.name for v in variants})[:12])
        return Reply(f"There is no active template “{command.template}”; there are: {names}.", kind="error")
    languages = template_languages(variants, command.template)
    for language, words in sorted(command.by_language.items()):
        unread = unread_language(command.template, next(iter(words)), language, languages)
        if unread:
            return Reply(f"{unread[:1].upper()}{unread[1:]}", kind="error")
    try:
        variables = with_language_values(
            dict(command.variables),
            command.by_language,
            template=command.template,
            needs=template_needs(variants, command.template),
            in_chat=True,
        )
    except CampaignError as error:
        return Reply(str(error), kind="error")
    missing = missing_values(
        (n for v in variants if v.name == command.template for n in v.variables), command.variables
    )
    if missing:
        example = " ".join(f"{n}=…" for n in missing)
        return Reply(
            f"The template “{command.template}” needs a value for {', '.join(missing)}: add `with {example}` "
            "after the template.",
            kind="error",
        )
    scheduled_at: datetime | None = None
    if command.day is not None and command.clock is not None:
        try:
            scheduled_at = local_send_moment(command.day, command.clock, ctx.business_tz, ctx.now())
        except SendTimeError as error:
            return Reply(str(error), kind="error")
    draft = CampaignDraft(
        slug=campaign_slug(command.name),
        name=command.name,
        template_name=command.template,
        channel_order=command.channels,
        audience={
            **command.audience,
            **{
                key: datetime.combine(day, time(), zone(ctx.business_tz)).isoformat()
                for key, day in command.visit_days.items()
            },
            "has_channel": [c.value for c in command.channels],
        },
        variables=variables,
        fallback_after_minutes=command.fallback_after,
        scheduled_at=scheduled_at,
        created_by=who.staff_id,
    )
    try:
        preview = await use_cases.preview_draft(
            ctx.uow.campaigns(read_only=True), draft, now=ctx.now(), policy=ctx.consent_policy()
        )
    except CampaignError as error:
        return Reply(f"{error}", kind="error")
    when = (
        f" from {day_and_time(scheduled_at.astimezone(zone(ctx.business_tz)))} ({ctx.business_tz})"
        if scheduled_at
        else " when it is launched"
    )
    if preview.recipients == 0:
        return Reply(
            "No customer matches that audience with an address on those channels; nothing saved.",
            kind="error",
        )
    if preview.planned == 0:
        return Reply(
            f"All {preview.recipients:,} matching customers would be left out; nothing saved.",
            kind="error",
            fields=preview_fields(preview, ctx.settings.business_locale),
        )
    if not command.confirm:
        notes = not_in_their_language(command.template, preview.in_another_language, in_chat=True)
        notes += same_in_every_language(
            variables,
            variants,
            command.template,
            ctx.settings.business_locale,
            preview.per_language,
            in_chat=True,
        )
        return Reply(
            f"“{command.name}” would send it to {preview.planned:,} of {preview.recipients:,} recipients{when}, for "
            f"about {estimated_cost(preview, ctx.settings.business_locale)}. Save it as a draft?"
            + "".join(f"\n⚠ {note}" for note in notes),
            title=f"New campaign: {command.name}",
            fields=preview_fields(preview, ctx.settings.business_locale),
            confirm=True,
            private=True,
            buttons=(Button("Save draft", f"{command.text} confirm", "primary"), Button("No", "cancel")),
        )
    slug, number = draft.slug[:60], 2
    while await campaign_id_by_slug(ctx.database, slug) is not None:
        slug, number = f"{draft.slug[:56]}-{number}", number + 1
    try:
        campaign = await use_cases.create_campaign(
            ctx.uow.campaigns(),
            CampaignDraft(**{**draft.__dict__, "slug": slug}),
            ctx.now(),
            actor=who.email,
            via=who.via,
        )
    except CampaignError as error:
        return Reply(f"{error}", kind="error")
    return Reply(
        f"Saved “{campaign.name}” as a draft ({campaign.slug}); nothing is sent until it is launched"
        + (f", and then{when}." if scheduled_at else "."),
        title="Campaign saved",
        fields=(Field("Campaign", campaign.slug), Field("Will be sent", f"{preview.planned:,}")),
        buttons=(
            Button("Launch…", f"campaign launch {campaign.slug}", "primary"),
            Button("Preview", f"campaign preview {campaign.slug}"),
        ),
    )
