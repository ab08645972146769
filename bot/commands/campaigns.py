"""`campaign list|preview|launch|pause|resume|cancel|status`, through the campaign use-cases."""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date

from bot.commands.context import CommandContext
from bot.commands.kpi import known_values
from bot.commands.masking import mask_address
from bot.commands.parsing import ParseError, take_flag
from bot.commands.wording import day_and_time
from bot.replies import Button, Field, Reply, Table
from domain.campaigns import use_cases
from domain.campaigns.languages import not_in_their_language
from domain.campaigns.model import (
    EXCLUSION_WORDS,
    CampaignError,
    CampaignPreview,
    CampaignProgress,
    fallbacks_waiting_words,
)
from domain.campaigns.rules import allowed_actions
from domain.messages.words import channel_words, failure_words
from domain.staff import StaffIdentity
from domain.vocabulary import CampaignStatus
from reports.charts.formatting import format_value
from reports.everyday_names import plain
from reports.periods import zone
from storage.queries.campaigns import (
    CampaignOverview,
    campaign_count,
    campaign_overview,
    campaign_slugs,
    newest_campaign_overviews,
)


@dataclass(frozen=True)
class ListCampaigns:
    pass


@dataclass(frozen=True)
class CampaignAction:
    verb: str  # preview, launch, pause, resume, cancel, status
    slug: str
    confirm: bool = False


def parse_list(words: list[str], rest: str, today: date) -> ListCampaigns:
    return ListCampaigns()


def action_parser(verb: str) -> Callable[[list[str], str, date], CampaignAction]:
    """The parser of `campaign VERB SLUG [confirm]` for one verb."""

    def parse(words: list[str], rest: str, today: date) -> CampaignAction:
        words = list(words)
        confirm = take_flag(words, "confirm", "--confirm")
        if not words:
            raise ParseError("Name one campaign by its slug or its name.", f"campaign {verb} SLUG")
        return CampaignAction(verb, " ".join(words), confirm)

    return parse


async def campaign_row(ctx: CommandContext, slug: str) -> CampaignOverview | Reply:
    """The campaign `slug` names: its slug, or its name as people say it ("black friday": the latest one)."""
    row = await campaign_overview(ctx.database, slug) if " " not in slug else None
    if row is None and (named := await campaign_named(ctx, slug)) is not None:
        row = await campaign_overview(ctx.database, named)
    if row is not None:
        return row
    slugs = await campaign_slugs(ctx.database)
    close = difflib.get_close_matches(slug, slugs, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else " `campaign list` shows them all."
    return Reply(
        f"There is no campaign “{slug}”.{hint}",
        kind="error",
        buttons=tuple(Button(c, f"campaign status {c}") for c in close),
    )


async def campaign_named(ctx: CommandContext, words: str) -> str | None:
    """The slug of the campaign `words` name ("the Black Friday campaign"), or None."""
    names = (await known_values(ctx)).get("campaign", {})
    said = plain(words).strip(" ?!.")
    for candidate in (said, said.removeprefix("the "), said.removeprefix("our ")):
        if candidate in names:
            return names[candidate]
    return None


#: How many campaigns `campaign list` shows, newest first (a Slack message's table stays readable).
CAMPAIGNS_LISTED = 25


async def run_list(command: ListCampaigns, who: StaffIdentity, ctx: CommandContext) -> Reply:
    rows = await newest_campaign_overviews(ctx.database, limit=CAMPAIGNS_LISTED)
    if not rows:
        return Reply("There are no campaigns yet.", title="Campaigns")
    table = Table(
        ("Slug", "Name", "Status", "Planned", "Excluded"),
        tuple((r.slug, r.name, r.status, f"{r.planned_count:,}", f"{r.excluded_count:,}") for r in rows),
    )
    total = await campaign_count(ctx.database)
    said = (
        f"{len(rows)} campaigns, newest first."
        if total <= len(rows)
        else f"The newest {len(rows)} of {total:,} campaigns; the dashboard's campaign list has them all."
    )
    return Reply(said, title="Campaigns", table=table)


def money(micros: int, currency: str, locale: str) -> str:
    """An amount in micros as every answer writes money ("US$1.63", "€12.00")."""
    return format_value(micros / 1_000_000, "currency", locale=locale, currency=currency)


def estimated_cost(preview: CampaignPreview, locale: str) -> str:
    return money(preview.estimated_cost_micros, preview.currency, locale)


def preview_fields(preview: CampaignPreview, locale: str) -> tuple[Field, ...]:
    exclusions = "; ".join(
        f"{n:,} {EXCLUSION_WORDS.get(reason, reason.replace('_', ' '))}"
        for reason, n in sorted(preview.exclusions.items(), key=lambda item: -item[1])
    )
    channels = ", ".join(f"{channel_words(channel)} {n:,}" for channel, n in preview.per_channel.items())
    fields = [
        Field("Audience", f"{preview.recipients:,}"),
        Field("Will be sent", f"{preview.planned:,}"),
        Field("Excluded", exclusions or "none"),
        Field("Channels", channels or "—"),
        Field("Estimated cost", estimated_cost(preview, locale)),
    ]
    if preview.deferred:
        fields.append(Field("Waiting for quiet hours", f"{preview.deferred:,}"))
    if preview.sample is not None:
        sample = preview.sample
        fields.append(
            Field(
                "Sample",
                f"{channel_words(sample.channel.value)} to {mask_address(sample.to_address, sample.channel.value).removeprefix('Telegram ')}: {sample.body[:300]}",
            )
        )
    return tuple(fields)


CampaignAct = Callable[[CampaignAction, StaffIdentity, CommandContext, CampaignOverview], Awaitable[Reply]]


def _on_campaign(
    act: CampaignAct,
) -> Callable[[CampaignAction, StaffIdentity, CommandContext], Awaitable[Reply]]:
    """A campaign row's handler: find the campaign, refuse what its status does not allow, then `act`."""

    async def run(command: CampaignAction, who: StaffIdentity, ctx: CommandContext) -> Reply:
        found = await campaign_row(ctx, command.slug)
        if isinstance(found, Reply):
            return found
        allowed = allowed_actions(found.status)
        if command.verb not in ("preview", "status") and command.verb not in allowed:
            return Reply(
                _not_allowed(found.slug, found.status, command.verb, allowed),
                kind="error",
                buttons=_action_buttons(found.slug, allowed),
            )
        try:
            return await act(command, who, ctx, found)
        except CampaignError as error:
            return Reply(f"Campaign {found.slug}: {error}", kind="error")

    return run


def _not_allowed(slug: str, status: str, verb: str, allowed: tuple[str, ...]) -> str:
    then = f" It can be: {', '.join(allowed)}." if allowed else ""
    return f"Campaign {slug} is {status}, so it cannot be {_PAST[verb]}.{then}"


_PAST = {"launch": "launched", "pause": "paused", "resume": "resumed", "cancel": "cancelled"}
_BUTTON_LABEL = {"launch": "Launch…", "pause": "Pause", "resume": "Resume", "cancel": "Cancel…"}


def _action_buttons(slug: str, allowed: tuple[str, ...]) -> tuple[Button, ...]:
    """Only what this campaign's status allows, the way the campaign page offers it."""
    actions = [
        Button(_BUTTON_LABEL[verb], f"campaign {verb} {slug}", "primary" if verb != "cancel" else "danger")
        for verb in allowed
    ]
    return (*actions, Button("Status", f"campaign status {slug}"))


async def _status(
    command: CampaignAction, who: StaffIdentity, ctx: CommandContext, found: CampaignOverview
) -> Reply:
    slug = found.slug
    progress = await use_cases.campaign_progress(ctx.uow.campaigns(), found.id)
    by_status = ", ".join(f"{s} {n:,}" for s, n in progress.sent_by_stage()) or "nothing planned yet"
    failed = _why_not_delivered(progress)
    reasons = "; ".join(
        f"{failure_words(r)}: {n:,}" for r, n in sorted(progress.suppressed_by_reason.items())
    )
    fields: tuple[Field, ...] = (
        Field("Status", progress.status.value),
        Field("Messages", by_status),
        Field("Not delivered or failed because", failed or "—"),
        Field("Not sent because", reasons or "—"),
        Field("Replies", f"{progress.replies:,}"),
        Field("Opted out of its channel within 7 days", f"{progress.opted_out:,}"),
        Field(
            "Cost so far",
            " and ".join(
                money(micros, code, ctx.settings.business_locale)
                for code, micros in sorted(progress.cost_micros.items())
            )
            or "nothing sent yet",
        ),
    )
    if progress.next_send_at is not None and progress.count("planned"):
        when = (
            "as soon as the worker gets to it (it is due already)"
            if progress.next_send_at <= ctx.now()
            else f"{day_and_time(progress.next_send_at.astimezone(zone(ctx.business_tz)))} ({ctx.business_tz})"
        )
        fields = (*fields, Field("Next waiting message goes", when))
    waiting_fallbacks = fallbacks_waiting_words(
        progress,
        ctx.now(),
        lambda due: f"{day_and_time(due.astimezone(zone(ctx.business_tz)))} ({ctx.business_tz})",
    )
    if waiting_fallbacks:
        fields = (*fields, Field("Next channel", waiting_fallbacks))
    waiting = sum(progress.count(status) for status in ("planned", "sending", "queued", "sent"))
    still_going = progress.status is CampaignStatus.RUNNING and waiting > 0
    results: tuple[Button, ...] = ()
    if found.launched_at is not None:  # what it brought in, from the day it went out
        since = found.launched_at.astimezone(zone(ctx.business_tz)).date().isoformat()
        results = (
            Button("Revenue from it", f"kpi campaign_revenue since {since} campaign={slug}"),
            Button("Conversion", f"kpi campaign_conversion since {since} campaign={slug}"),
        )
    return Reply(
        f"Campaign {found.name} ({slug}) is {progress.status.value}. Messages: {by_status}.",
        title=f"Campaign {slug}",
        fields=fields,
        buttons=(*_action_buttons(slug, allowed_actions(progress.status))[:-1], *results),
        # "progress" asks the chat front end to keep this message updated in place until it changes.
        kind="progress" if still_going else "answer",
        progress_key=slug if still_going else None,
    )


def _why_not_delivered(progress: CampaignProgress) -> str:
    """The commonest reasons, then the rest, so the line adds up to the messages not delivered or failed."""
    shown = progress.failure_reasons(3)
    said = [f"{reason} {n:,}" for reason, n in shown]
    other = sum(progress.failed_by_reason.values()) - sum(n for _, n in shown)
    if other:
        said.append(f"other reasons {other:,}")
    return ", ".join(said)


async def _preview(
    command: CampaignAction, who: StaffIdentity, ctx: CommandContext, found: CampaignOverview
) -> Reply:
    """The preview, or for `launch`/`cancel` without `confirm` the question whether to go ahead."""
    slug, allowed = found.slug, allowed_actions(found.status)
    if command.verb == "preview" and "launch" not in allowed:
        return await _status(command, who, ctx, found)  # nothing left to launch: say how it went
    preview = await use_cases.preview_campaign(
        ctx.uow.campaigns(), found.id, now=ctx.now(), policy=ctx.consent_policy()
    )
    locale = ctx.settings.business_locale
    text = (
        f"Launching “{found.name}” would send it to {preview.planned:,} of {preview.recipients:,} recipients "
        f"for about {estimated_cost(preview, locale)}."
    ) + "".join(
        f"\n⚠ {note}"
        for note in not_in_their_language(found.template_name, preview.in_another_language, in_chat=True)
    )
    if command.verb == "preview":
        return Reply(
            text,
            title=f"Preview: {found.name}",
            fields=preview_fields(preview, locale),
            buttons=_action_buttons(slug, allowed),
        )
    if command.verb == "cancel":
        text = f"Cancel “{found.name}”? Every message still planned is dropped; sent ones stay sent."
    return Reply(
        text,
        title=f"{command.verb.capitalize()} “{found.name}”?",
        fields=preview_fields(preview, locale),
        confirm=True,
        private=True,
        buttons=(
            Button(
                f"Yes, {command.verb}",
                f"campaign {command.verb} {slug} confirm",
                "danger" if command.verb == "cancel" else "primary",
            ),
            Button("No", "cancel"),
        ),
    )


async def _launch(
    command: CampaignAction, who: StaffIdentity, ctx: CommandContext, found: CampaignOverview
) -> Reply:
    if not command.confirm:
        return await _preview(command, who, ctx, found)
    slug = found.slug
    campaign = await use_cases.launch_campaign(
        ctx.uow.campaigns(), found.id, ctx.now(), actor=who.email, via=who.via
    )
    return Reply(
        f"Campaign “{found.name}” is {campaign.status.value}. Its messages are planned in batches by the "
        f"scheduler; `campaign status {slug}` shows progress.",
        title="Launched",
        buttons=(Button("Status", f"campaign status {slug}"), Button("Pause", f"campaign pause {slug}")),
        kind="progress",
        progress_key=slug,
    )


async def _pause(
    command: CampaignAction, who: StaffIdentity, ctx: CommandContext, found: CampaignOverview
) -> Reply:
    slug = found.slug
    campaign = await use_cases.pause_campaign(ctx.uow.campaigns(), found.id, actor=who.email, via=who.via)
    return Reply(
        f"Campaign “{found.name}” is {campaign.status.value}; nothing more goes out until it is resumed.",
        buttons=(Button("Resume", f"campaign resume {slug}"),),
    )


async def _resume(
    command: CampaignAction, who: StaffIdentity, ctx: CommandContext, found: CampaignOverview
) -> Reply:
    campaign = await use_cases.resume_campaign(ctx.uow.campaigns(), found.id, actor=who.email, via=who.via)
    return Reply(f"Campaign “{found.name}” is {campaign.status.value} again.")


async def _cancel(
    command: CampaignAction, who: StaffIdentity, ctx: CommandContext, found: CampaignOverview
) -> Reply:
    if not command.confirm:
        return await _preview(command, who, ctx, found)
    cancelled = await use_cases.cancel_campaign(ctx.uow.campaigns(), found.id, actor=who.email, via=who.via)
    return Reply(f"Campaign “{found.name}” is cancelled; {cancelled:,} planned messages were dropped.")


#: One handler per command row.
run_status = _on_campaign(_status)
run_preview = _on_campaign(_preview)
run_launch = _on_campaign(_launch)
run_pause = _on_campaign(_pause)
run_resume = _on_campaign(_resume)
run_cancel = _on_campaign(_cancel)
