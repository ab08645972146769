"""`retention by cohort [PERIOD]` and `attribution [PERIOD]`: the cross-system analyses the dashboard shows,
answered for any period with the chart the customer and financial pages draw."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date

from babel.dates import format_skeleton

from bot.commands.context import CommandContext
from bot.commands.parsing import FILLER_WORDS, ParseError
from bot.commands.periods import find_period
from bot.commands.wording import plain_words
from bot.replies import Image, Reply, Table
from domain.staff import StaffIdentity
from reports.answer import history_start
from reports.charts.cache import draw
from reports.charts.formatting import format_value
from reports.insight import (
    campaign_attribution,
    cohort_heatmap_chart,
    cohort_retention,
    cost_revenue_chart,
    cost_vs_revenue,
)
from reports.library import remember_unsaveable
from reports.metrics import REGISTRY
from reports.periods import PeriodSpec, TimeRange, format_day_range, zone
from storage.queries.reports import campaign_names

log = logging.getLogger(__name__)

RETENTION_USAGE = "retention by cohort [PERIOD]   e.g. retention by cohort this year"
ATTRIBUTION_USAGE = "attribution [PERIOD]   e.g. attribution last quarter"
#: Campaign rows a chat answer lists (the financial page lists them all).
CAMPAIGN_ROWS = 10


@dataclass(frozen=True)
class ShowAnalysis:
    period: PeriodSpec
    #: A question that named no period ("what is our ROI?"): the answer says which it took.
    period_assumed: bool = False
    #: Words of the question the analysis cannot honour ("by clinic", "for Berlin", "vs last month").
    not_read: tuple[str, ...] = ()

    def assumed_words(self, what: str) -> str:
        said = ""
        if self.period_assumed:
            taken = (
                "the last 30 days"
                if self.period.kind == "last_n_days"
                else "the " + self.period.kind.replace("_", " ")
            )
            said += f"\nNo period was given, so this is {taken}."
        if self.not_read:
            said += f"\nNot read: {' '.join(self.not_read)} ({what})."
        return said


#: Words before a typed analysis's period that say nothing ("attribution report for last month").
_BEFORE_PERIOD = ("report", "rate", "for", "over", "during", "the", "im", "für")


def _period(text: str, today: date, default: PeriodSpec, usage: str) -> PeriodSpec:
    words = text.lower().split()
    while words and words[0] in _BEFORE_PERIOD:
        words = words[1:]
    phrase = " ".join(words)
    if not phrase:
        return default
    try:
        found = find_period(phrase, today)
    except ValueError as error:
        raise ParseError(f"{str(error)[:1].upper()}{str(error)[1:]}.", usage) from None
    if (
        found is None
        or phrase[: found.start].strip()
        or phrase[found.end :].strip()
        or not isinstance(found.value, PeriodSpec)
    ):
        raise ParseError(f"I cannot read “{text.strip()}” as a period.", usage)
    return found.value


def parse_retention(words: list[str], rest: str, today: date) -> ShowAnalysis:
    text = rest.strip()
    for lead in ("by cohorts", "by cohort", "cohorts", "cohort"):
        if text.lower().startswith(lead):
            text = text[len(lead) :]
            break
    return _typed(text, today, "retention", PeriodSpec("last_quarter"), RETENTION_USAGE)


def parse_attribution(words: list[str], rest: str, today: date) -> ShowAnalysis:
    return _typed(rest, today, "attribution", PeriodSpec.last_n_days(30), ATTRIBUTION_USAGE)


def _typed(text: str, today: date, name: str, default: PeriodSpec, usage: str) -> ShowAnalysis:
    """A typed analysis's words: its period, or a period and words it cannot honour ("attribution last
    quarter by clinic"), said back as the question in words would; words that hold no period are refused."""
    try:
        return ShowAnalysis(_period(text, today, default, usage))
    except ParseError:
        asked = analysis_question(f"{name} {text}", today)
        if asked is None or asked[1].period_assumed:
            raise
        return asked[1]


_OR_VS = r"(?:vs\.?|versus|against|compared (?:to|with)|and|gegen|gegenüber|und|im vergleich zu[rm]?)"
#: Questions the attribution answers (what the messages cost against the revenue they brought), in English
#: and German. "attributed revenue" and "campaign revenue" stay KPI figures.
_ATTRIBUTION_ASKED = re.compile(
    r"\b(?:roi|return on (?:investment|spend|ad spend|(?:our )?(?:messages|messaging|campaigns|marketing))"
    r"|attribution|rendite"
    rf"|(?:costs?|spend|spending|kosten|ausgaben) {_OR_VS} (?:the )?(?:revenue|sales|income|umsatz|umsätze|ertrag|einnahmen)"
    rf"|(?:revenue|sales|income|umsatz|ertrag|einnahmen) {_OR_VS} (?:the )?(?:costs?|spend|kosten|ausgaben)"
    r"|(?:led|lead|leading|leads) to (?:orders|sales|purchases|revenue)"
    r"|what did (?:it|they|(?:our |the )?(?:messages|campaigns|sms|texts|emails|mailings)) bring(?: in)?"
    r"|was (?:haben|hat) (?:uns )?(?:die |unsere )?(?:nachrichten|kampagnen|sms|e-mails|mailings) (?:uns )?gebracht)\b"
)
#: Words around an analysis asked in words that ask nothing of it ("what's our ROI", "show me the cohorts").
_ANALYSIS_FILLER = frozenset(
    "what's whats our we us how much many did do does it they brought bring in on of from cohort cohorts "
    "which messages message led lead to orders the a an was were wie hoch ist sind unsere unser uns die der "
    "das zeig zeige mir bitte please pls tell me show see look at customer customers kunden nach for over "
    "during since für im seit report rate".split()
)
#: Questions the retention by cohort answers.
_RETENTION_ASKED = re.compile(r"\b(?:cohorts?|kohorten?|retention|kundenbindung)\b")


def analysis_question(text: str, today: date) -> tuple[str, ShowAnalysis] | None:
    """ "ROI last quarter", "costs vs revenue by channel", "Kosten gegen Umsatz letzten Monat", "retention by
    cohort this year": the analysis asked for (`attribution` or `retention`) and its period, or None."""
    phrase = " ".join(text.lower().split())
    asked = _ATTRIBUTION_ASKED.search(phrase)
    name, default, usage = "attribution", PeriodSpec.last_n_days(30), ATTRIBUTION_USAGE
    if asked is None:
        asked = _RETENTION_ASKED.search(phrase)
        name, default, usage = "retention", PeriodSpec("last_quarter"), RETENTION_USAGE
    if asked is None:
        return None
    # Every mention of either analysis is its name, not a word left over ("cohort retention for last year").
    own_split = re.sub(r"\b(?:by|nach|per|pro)\s+(?:cohorts?|kohorten?)\b", " ", phrase)  # "by cohort"
    cut_out = _RETENTION_ASKED.sub(" ", _ATTRIBUTION_ASKED.sub(" ", own_split))
    rest = plain_words(cut_out)  # "letzten Monat": "last month"
    try:
        found = find_period(rest, today)
    except ValueError as error:  # "ROI from 1 March to 5 February": said, not swapped for a default
        raise ParseError(f"{str(error)[:1].upper()}{str(error)[1:]}.", usage) from None
    if found is not None and isinstance(found.value, PeriodSpec):
        period, assumed, rest = found.value, False, f"{rest[: found.start]} {rest[found.end :]}"
    else:
        period, assumed = default, True
    rest = re.sub(r"\bso far\b", " ", rest)
    left = tuple(
        word
        for word in re.findall(r"[\w'’.-]+", rest)
        if word.strip(".'’-") and word.strip(".'’-") not in FILLER_WORDS | _ANALYSIS_FILLER
    )
    return name, ShowAnalysis(period, period_assumed=assumed, not_read=left)


async def run_retention(command: ShowAnalysis, who: StaffIdentity, ctx: CommandContext) -> Reply:
    await _not_a_report("retention by cohort", "retention by cohort PERIOD", "Customer", ctx, who)
    insight = await cohort_retention(ctx.database, command.period, now=ctx.now(), business_tz=ctx.business_tz)
    spec = cohort_heatmap_chart(insight, ctx.settings.business_locale)
    png = await draw(spec, "png", insight.computed_at.isoformat(), ctx.chart_cache)
    months = insight.result.months
    rows = tuple(
        (
            str(format_skeleton("yMMM", r.cohort, locale=ctx.settings.business_locale)),  # as the heatmap
            str(r.customers),
            *("—" if share is None else f"{share:.0%}" for share in r.retention),
        )
        for r in insight.result.rows
    )
    return Reply(
        insight.summary
        + await _records_note(ctx, insight.range)
        + command.assumed_words("retention by cohort is the whole business's"),
        title="Retention by cohort",
        images=(Image("cohort-retention.png", png, alt_text=insight.summary),),
        table=Table(("First order in", "Customers", *(f"+{k}" for k in range(1, months + 1))), rows)
        if rows
        else None,
    )


async def _records_note(ctx: CommandContext, time_range: TimeRange) -> str:
    """ "The records start on 11 Jun 2026, so this counts from then." when the period begins before the
    first order (the analyses count orders), as every figure's answer says it."""
    first = await history_start(ctx.database, REGISTRY["orders"])
    if first is None:
        return ""
    began = first.astimezone(zone(ctx.business_tz)).date()
    if time_range.first_day >= began:
        return ""
    said = format_day_range(began, began)
    if time_range.last_day < began:
        return f"\nThere are no figures for then: the records start on {said}."
    return f"\nThe records start on {said}, so this counts from then."


async def _not_a_report(name: str, command: str, page: str, ctx: CommandContext, who: StaffIdentity) -> None:
    """`report save` after an analysis refuses, rather than saving the figure asked before it."""
    try:
        await remember_unsaveable(
            ctx.database,
            who.staff_id,
            f"the {name} is an analysis, not a figure: `{command}` asks it again, and the dashboard's {page} "
            "page keeps it",
            ctx.now(),
        )
    except Exception as error:  # the answer does not depend on it
        log.warning("could not note the last answer of staff %s: %s", who.staff_id, error)


async def run_attribution(command: ShowAnalysis, who: StaffIdentity, ctx: CommandContext) -> Reply:
    await _not_a_report("attribution", "attribution PERIOD", "Financial", ctx, who)
    currency, locale = ctx.settings.business_currency, ctx.settings.business_locale
    costs = await cost_vs_revenue(
        ctx.database,
        command.period,
        now=ctx.now(),
        business_tz=ctx.business_tz,
        currency=currency,
        locale=locale,
    )
    attribution = await campaign_attribution(
        ctx.database,
        command.period,
        now=ctx.now(),
        business_tz=ctx.business_tz,
        currency=currency,
        locale=locale,
    )
    spec = cost_revenue_chart(costs, locale)
    png = await draw(spec, "png", costs.computed_at.isoformat(), ctx.chart_cache)
    shown = attribution.result.by_campaign[:CAMPAIGN_ROWS]
    names = await campaign_names(ctx.database, (r.key for r in shown))
    campaigns = tuple(
        (
            names.get(r.key, r.key),
            str(r.attributed_orders),
            format_value(r.attributed_revenue, "currency", locale=locale, currency=currency),
            "—" if r.conversion_rate is None else format_value(r.conversion_rate, "percent", locale=locale),
        )
        for r in shown
    )
    return Reply(
        f"{attribution.summary} {costs.summary}"
        + await _records_note(ctx, attribution.range)
        + command.assumed_words("the attribution is the whole business's, one period at a time"),
        title="Attribution",
        images=(Image("attribution.png", png, alt_text=costs.summary),),
        table=Table(("Campaign", "Orders", "Revenue", "Conversion"), campaigns) if campaigns else None,
    )
