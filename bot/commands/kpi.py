"""The `kpi` command and plain KPI questions: ask the reports layer, answer with a chart and one sentence."""

from __future__ import annotations

import dataclasses
import importlib
import logging
import re
import time
from collections.abc import Mapping, Sequence
from datetime import date, datetime

from bot.commands.context import CommandContext
from bot.commands.questions import FUTURE_METRICS, KNOWN_VALUES, KpiQuestion, parse_question
from bot.replies import Button, Field, Image, Reply
from domain.messages.words import channel_words
from domain.staff import StaffIdentity
from domain.vocabulary import READ_REPORTED, Channel
from reports.answer import filters_in_words
from reports.everyday_names import everyday_names
from reports.library import remember_question
from reports.metrics import REGISTRY, Metric, dimension_words
from reports.periods import (
    PeriodSpec,
    TimeRange,
    comparison_basis,
    comparison_range,
    resolve_period,
    whole_of,
    zone,
)
from reports.query import Filter, MetricQuery
from storage.queries.clinics import clinics
from storage.queries.reports import dimension_names, names_fingerprint

log = logging.getLogger(__name__)

NOT_AVAILABLE = "KPI answers are not available in this build yet (the reports answer module is missing)."
OTHER_PERIODS = (PeriodSpec.last_n_days(7), PeriodSpec("this_month"), PeriodSpec("last_quarter"))


def parse_kpi(words: list[str], rest: str, today: date) -> KpiQuestion:
    question = parse_question(rest, today)
    assert question is not None  # require_metric raises instead
    return question


#: How long the names read from the database are reused before they are read again: a renamed clinic, or a
#: new segment or country among the customers, is understood within this many seconds. A clinic, service,
#: campaign, template or colleague added is understood at once (storage.queries.reports.names_fingerprint).
KNOWN_VALUES_TTL_SECONDS = 60.0
_known_cache: dict[str, tuple[float, tuple[int, ...], dict[str, dict[str, str]]]] = {}


async def known_values(ctx: CommandContext) -> dict[str, dict[str, str]]:
    """Dimension values that live in the database (clinics, services, campaigns...), by how people name
    them; every dimension, so a name the metric cannot be narrowed by is recognised and declined."""
    key = str(ctx.database.engine.url)
    cached = _known_cache.get(key)
    fingerprint = await names_fingerprint(ctx.database)
    if (
        cached is not None
        and cached[1] == fingerprint
        and time.monotonic() - cached[0] < KNOWN_VALUES_TTL_SECONDS
    ):
        return cached[2]
    found = {
        dimension: everyday_names(dimension, pairs)
        for dimension, pairs in (await dimension_names(ctx.database)).items()
    }
    _known_cache[key] = (time.monotonic(), fingerprint, found)
    return found


async def _with_database_values(question: KpiQuestion, ctx: CommandContext) -> KpiQuestion:
    """Re-read the question when words were left over: they may name a clinic, service or campaign
    (or one the metric is not kept by, which declines the question with the reason)."""
    if not question.ignored:
        return question
    database_values = await known_values(ctx)
    today = ctx.now().astimezone(zone(ctx.business_tz)).date()
    again = parse_question(question.text, today, known={**KNOWN_VALUES, **database_values})
    return again if again is not None else question


#: Nouns that say the next (or previous) word names a clinic: "for clinic Paris", "the Hamburg practice".
_PLACE_NOUN = r"(?:clinic|location|practice|branch|site|store|standort|praxis|filiale|klinik)"
#: Words before a place noun that name no place ("my clinic", "jede Praxis").
_NO_PLACE = frozenset(
    "my our your their this that each every all any which what the a one same other "
    "meine unsere eure jede jeder jedes alle welche welcher diese dieser der die das".split()
)


def unknown_place(
    text: str, ignored: Sequence[str], business_words: frozenset[str] = frozenset()
) -> str | None:
    """A word left unread that the question says is a clinic ("for clinic Paris", "at the Hamburg clinic",
    "der Praxis Altona"), as typed; None when no unread word is said as one. Only a clinic noun led by "for",
    "at", "in", "of" (or "the … clinic") says so: "by clinic ranked" is a split and a word about it, and "in
    Atlantis" alone may be anything ("in Summe"), so those stay ignored words."""
    for word in ignored:
        if word.lower() in _NO_PLACE or word.lower() in business_words:
            continue
        w = re.escape(word)
        said = re.search(
            rf"\b(?:for|at|in|of|from|bei|für|aus|der|des)\s+(?:the\s+|der\s+|dem\s+|die\s+)?"
            rf"(?<![-\w]){_PLACE_NOUN}\s+({w})\b"
            rf"|\b(?:the|der|die|das)\s+({w})\s+{_PLACE_NOUN}\b",
            text,
            re.IGNORECASE,
        )
        if said is not None:
            return said.group(1) or said.group(2)
    return None


async def _remember(
    ctx: CommandContext, who: StaffIdentity, query: MetricQuery, now: datetime, top: int | None
) -> None:
    """Keep the question for `report save NAME`; the answer does not depend on it, so a failure only logs."""
    try:
        await remember_question(ctx.database, who.staff_id, query, now, top=top)
    except Exception as error:  # the database may be busy or read-only; the person still gets the answer
        log.warning("could not remember the last question of staff %s: %s", who.staff_id, error)


def default_grain(question: KpiQuestion, time_range: TimeRange) -> str | None:
    """A time series for a period of several days, so the chart shows the shape, not a lone figure."""
    if question.grain is not None or question.dimension is not None:
        return question.grain
    days = (time_range.last_day - time_range.first_day).days + 1
    grain = "day" if 2 <= days <= 62 else "week" if 62 < days <= 200 else "month" if days > 200 else None
    return grain if grain in REGISTRY[question.metric].grains else None


def read_as(
    question: KpiQuestion,
    metric: Metric,
    time_range: TimeRange,
    names: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """How the question was read, in words; `names`: the answer's names for stored codes ("VIE": "Vienna")."""
    parts = [metric.label]
    if metric.name == "revenue":
        parts[0] += ", net of refunds"
    parts += [
        f"{time_range.label} so far" if time_range.ends_mid_day else time_range.label,
        time_range.timezone,
    ]
    if question.dimensions:
        parts.append("by " + " and ".join(dimension_words(d) for d in question.dimensions))
        if question.top is not None:
            parts[-1] += ", the highest" if question.top == 1 else f", the {question.top} highest"
    if limited := filters_in_words(question.filters, names or {}).strip():
        parts.append(limited)  # "for location Vienna", "for WhatsApp": the names people know, not codes
    if question.comparison is not None:
        # The compared dates and the rule that chose them, e.g. "vs the same days last month (1–15 Nov 2026)".
        compared = comparison_range(question.period, time_range, question.comparison)
        basis = comparison_basis(question.period, time_range, question.comparison)
        parts.append(f"vs {basis} ({compared.label})")
    return "Read as: " + ", ".join(parts)


def adjust_buttons(question: KpiQuestion, metric: Metric) -> tuple[Button, ...]:
    buttons = [
        Button(period_label(p), question.command_text(period=p))
        for p in OTHER_PERIODS
        if p != question.period
    ][:2]
    filtered = {f.dimension for f in question.filters}
    for dimension in [d for d in metric.dimensions if d not in question.dimensions and d not in filtered][:2]:
        buttons.append(Button(f"by {dimension_words(dimension)}", question.command_text(dimension=dimension)))
    if question.comparison is None:
        buttons.append(Button("vs previous", question.command_text(comparison="previous_period")))
        buttons.append(Button("vs last year", question.command_text(comparison="same_period_last_year")))
    else:
        buttons.append(Button("no comparison", question.command_text(comparison="")))
    buttons += [Button(REGISTRY[a].label, question.command_text(metric=a)) for a in question.alternatives]
    return tuple(buttons)


CHANNEL_VALUES = frozenset(c.value for c in Channel)

#: What a figure counts that another with similar words counts differently.
_TAGGED = (
    "This counts orders the shop tagged with the campaign (its link or code). `attribution last 30 days` and "
    "the Financial page credit an order to the last message sent in the 7 days before it instead, so their "
    "figures are larger."
)
CAVEATS = {"campaign_revenue": _TAGGED, "campaign_conversion": _TAGGED}


def read_caveat(filters: Sequence[Filter]) -> str:
    """What a count of messages read leaves out: channels whose providers never say a message was read."""
    asked = {v for f in filters if f.dimension == "channel" and f.operator in ("eq", "in") for v in f.values}
    silent = sorted(asked - READ_REPORTED)
    if asked and not silent:
        return ""
    if silent:
        names = " and ".join(channel_words(Channel(c)) if c in CHANNEL_VALUES else c for c in silent)
        verb = "never reports" if len(silent) == 1 else "never report"
        return (
            f"{names[:1].upper()}{names[1:]} {verb} when a message is read"
            f"{' (email opens are not tracked)' if 'email' in silent else ''}, so none is counted as read."
        )
    return "Only WhatsApp and the website chat report reads: SMS, email and Telegram messages never count as read."


def period_label(spec: PeriodSpec) -> str:
    return f"last {spec.n} days" if spec.kind == "last_n_days" else spec.kind.replace("_", " ")


async def run_kpi(question: KpiQuestion, who: StaffIdentity, ctx: CommandContext) -> Reply:
    try:
        answers = importlib.import_module("reports.answer")
    except ImportError:
        return Reply(NOT_AVAILABLE, title="KPI", kind="error")
    from reports.charts.cache import draw
    from reports.presentation import Presentation, present

    question = await _with_database_values(question, ctx)
    place = unknown_place(
        question.text, question.ignored, frozenset(ctx.settings.business_name.lower().split())
    )
    if place is not None:  # the whole business's figure would be read as this place's
        listed = ", ".join(f"{name} ({code})" for _, code, name in await clinics(ctx.database))
        return Reply(
            f"There is no clinic “{place}”, so I did not answer for the whole business instead; "
            + (
                f"the clinics are: {listed}."
                if listed
                else "no clinics are set up (`switchboard clinic add`)."
            ),
            kind="error",
        )
    metric = REGISTRY[question.metric]
    now = ctx.now()
    if metric.name in FUTURE_METRICS:  # "appointments today": the day's bookings, not those held so far
        question = dataclasses.replace(question, period=whole_of(question.period, now, ctx.business_tz))
    time_range = resolve_period(question.period, now, ctx.business_tz)
    query = MetricQuery(
        metrics=(metric.name,),
        period=question.period,
        grain=default_grain(question, time_range),  # type: ignore[arg-type]
        dimensions=question.dimensions,
        filters=question.filters,
        comparison=question.comparison,
    )
    settings = ctx.settings
    result = await answers.answer(
        ctx.database,
        query,
        now=now,
        business_tz=ctx.business_tz,
        locale=settings.business_locale,
        currency=settings.business_currency,
        top=question.top,
        business_name=settings.business_name,
    )
    await _remember(ctx, who, query, now, question.top)
    version = result.result.data_as_of.isoformat()
    # A ranking draws its N largest parts and says which ("by location, top 3 of 5"), as a report's chart does.
    chart = present(result, Presentation(top=question.top)) if question.top else result.chart
    png = await draw(chart, "png", version, ctx.chart_cache)
    reading = read_as(question, metric, time_range, result.result.names)
    # How it was read is the "Read as" field under the sentence; when the figure was guessed or others
    # were close, the sentence says it too, for where only the text goes (a notification, a fallback).
    notes = [reading] if (question.metric_guessed or question.alternatives) else []
    if question.period_assumed:
        notes.append("No period was given, so this is the last 30 complete days.")
    if question.ignored:
        notes.append(f"Ignored: {' '.join(question.ignored)}.")
    caveat = read_caveat(question.filters) if metric.name == "messages_read" else CAVEATS.get(metric.name, "")
    if caveat:
        notes.append(caveat)
    image = Image(f"{metric.name}.png", png, alt_text=result.summary)
    return Reply(
        "\n".join([result.summary, *notes]),
        title=metric.label,
        fields=(Field("Read as", reading.removeprefix("Read as: ")),),
        images=(image,),
        buttons=adjust_buttons(question, metric),
    )
