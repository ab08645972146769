"""Reading KPI questions ("revenue last 30 days by channel vs previous") into a typed KpiQuestion.

Deterministic: metric names and synonyms come from the reports registry, dimension values from the
business vocabulary; nothing is guessed that the reply does not then say it assumed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from bot.commands.parsing import FILLER_WORDS, ParseError
from bot.commands.periods import (
    Comparison,
    Found,
    cut,
    find_comparison,
    find_grain,
    find_period,
    period_phrase,
)
from domain.vocabulary import AppointmentKind, Channel, MessageCategory, MessageSource, Provider, SalesChannel
from reports.metrics import REGISTRY, Metric
from reports.periods import Grain, PeriodSpec
from reports.query import Filter

KPI_USAGE = "kpi METRIC [period] [by DIMENSION] [for VALUE] [daily|weekly|monthly] [vs previous|last year]"
DEFAULT_PERIOD = PeriodSpec.last_n_days(30)

#: Words people use for a dimension, in order of preference; the first the metric has is taken.
DIMENSION_WORDS: Mapping[str, tuple[str, ...]] = {
    "channel": ("channel", "source_channel"),
    "sales channel": ("source_channel",),
    "source": ("source_channel", "message_source"),
    "location": ("location",),
    "clinic": ("location",),
    "store": ("location",),
    "country": ("country",),
    "segment": ("segment",),
    "campaign": ("campaign",),
    "template": ("template",),
    "provider": ("provider",),
    "category": ("category",),
    "service": ("service",),
    "treatment": ("service",),
    "staff": ("staff",),
    "agent": ("staff",),
    "doctor": ("staff",),
    "kind": ("kind",),
    "type": ("kind",),
}


def _values(names: list[str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    words = {name.replace("_", " "): name for name in names}
    return {**words, **(extra or {})}


#: Values of the dimensions that are fixed by the business vocabulary (the rest live in the database).
KNOWN_VALUES: Mapping[str, Mapping[str, str]] = {
    "kind": _values(
        [k.value for k in AppointmentKind],
        {
            "video consultations": "video",
            "video consultation": "video",
            "video calls": "video",
            "in clinic": "in_person",
            "in person visits": "in_person",
        },
    ),
    "channel": _values(
        [c.value for c in Channel], {"text": "sms", "text messages": "sms", "e mail": "email"}
    ),
    "source_channel": _values([s.value for s in SalesChannel], {"online": "web", "web shop": "web"}),
    "category": _values([c.value for c in MessageCategory]),
    "message_source": _values([s.value for s in MessageSource]),
    "provider": _values([p.value for p in Provider]),
    # ISO codes and everyday names of the currencies money is kept in (amounts are never added across them).
    "currency": {
        **{code.lower(): code for code in ("EUR", "USD", "GBP", "CHF")},
        "euro": "EUR",
        "euros": "EUR",
        "dollars": "USD",
        "us dollars": "USD",
        "pounds": "GBP",
        "sterling": "GBP",
        "francs": "CHF",
        "swiss francs": "CHF",
    },
}
_PREPOSITIONS = r"(?:for|on|via|from|at|in|through|over|with)\s+(?:the\s+)?"
#: Comparisons said in short: "yoy", "year over year", "mom", "month on month", "qoq", "week over week".
_SHORT_COMPARISON = re.compile(
    r"(?<![\w/])(yoy|y/y|mom|m/m|qoq|q/q|(year|quarter|month|week)\s+(?:over|on)\s+\2)(?![\w/])"
)
_SHORT_UNITS = {
    "yoy": "year",
    "y/y": "year",
    "mom": "month",
    "m/m": "month",
    "qoq": "quarter",
    "q/q": "quarter",
}
#: With no period given, a comparison naming a calendar unit ("vs last month", "mom") asks about that unit so far.
_UNIT_SO_FAR = {
    "week": PeriodSpec("this_week"),
    "month": PeriodSpec("this_month"),
    "quarter": PeriodSpec("this_quarter"),
}


@dataclass(frozen=True)
class KpiQuestion:
    """One KPI question, with what was assumed so the reply can say how it was read."""

    metric: str
    period: PeriodSpec = DEFAULT_PERIOD
    dimension: str | None = None
    filters: tuple[Filter, ...] = ()
    comparison: Comparison | None = None
    grain: Grain | None = None
    period_assumed: bool = False
    metric_guessed: bool = False
    alternatives: tuple[str, ...] = ()
    ignored: tuple[str, ...] = field(default=())
    text: str = field(default="", compare=False)  # as typed, to re-read with the database's values

    def command_text(self, **changes: object) -> str:
        """The `kpi` command that asks this question again, with `changes` (period, dimension, comparison)."""
        period = changes.get("period", self.period)
        dimension = changes.get("dimension", self.dimension)
        comparison = changes.get("comparison", self.comparison)
        metric = changes.get("metric", self.metric)
        assert isinstance(period, PeriodSpec)
        parts = ["kpi", str(metric), period_phrase(period)]
        if dimension:
            parts.append(f"by {dimension}")
        parts += [f"{f.dimension}={f.values[0]}" for f in self.filters]
        if self.grain and not dimension:
            parts.append(f"by {self.grain}")
        if comparison == "previous_period":
            parts.append("vs previous")
        elif comparison == "same_period_last_year":
            parts.append("vs last year")
        return " ".join(parts)


def _plain(text: str) -> str:
    """Lower-case with hyphens between letters as spaces, so "no-show" and "no show" read alike."""
    return re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text.lower())


def metric_phrases() -> dict[str, str]:
    """Every way the registry lets a person name a metric, mapped to the metric's name."""
    phrases: dict[str, str] = {}
    for metric in REGISTRY.values():
        for phrase in (metric.name, metric.name.replace("_", " "), metric.label, *metric.synonyms):
            phrases.setdefault(_plain(phrase), metric.name)
    return phrases


def find_metric(text: str) -> tuple[Found | None, bool, tuple[str, ...]]:
    """The metric named in `text`: earliest mention wins, the longest phrase at one place.

    Without an exact mention, a close spelling is taken and flagged as guessed with alternatives.
    """
    phrases = metric_phrases()
    best: Found | None = None
    for phrase, name in phrases.items():
        for match in re.finditer(rf"(?<![\w=])({re.escape(phrase)})(?![\w=])", text):
            if best is None or (match.start(), -(match.end() - match.start())) < (
                best.start,
                best.start - best.end,
            ):
                best = Found(name, match.start(), match.end())
    if best is not None:
        return best, False, ()
    return _fuzzy_metric(text, phrases)


def _fuzzy_metric(text: str, phrases: Mapping[str, str]) -> tuple[Found | None, bool, tuple[str, ...]]:
    words = [(m.group(0), m.start(), m.end()) for m in re.finditer(r"[a-z_]{3,}", text)]
    scored: list[tuple[float, str, int, int]] = []
    for size in (1, 2, 3):
        for index in range(len(words) - size + 1):
            chunk = words[index : index + size]
            gram = " ".join(w for w, _, _ in chunk)
            for phrase, name in phrases.items():
                ratio = difflib.SequenceMatcher(None, gram, phrase).ratio()
                if ratio >= 0.8:
                    scored.append((ratio, name, chunk[0][1], chunk[-1][2]))
    if not scored:
        return None, False, ()
    scored.sort(key=lambda s: -s[0])
    _, name, start, end = scored[0]
    others = tuple(dict.fromkeys(n for _, n, _, _ in scored[1:] if n != name))[:2]
    return Found(name, start, end), True, others


def _find_dimension(text: str, metric: Metric) -> Found | None:
    match = re.search(r"\b(?:split\s+|broken\s+down\s+)?(?:by|per)\s+([a-z_]+(?:\s+channel)?)\b", text)
    if match is None:
        return None
    word = match.group(1)
    candidates = DIMENSION_WORDS.get(word, (word,)) if word not in metric.dimensions else (word,)
    for candidate in candidates:
        if candidate in metric.dimensions:
            return Found(candidate, match.start(), match.end())
    allowed = ", ".join(metric.dimensions) or "nothing (it is one figure)"
    raise ParseError(f"{metric.label} cannot be split by {word}; it can be split by {allowed}.", KPI_USAGE)


def find_filters(
    text: str, metric: Metric, known: Mapping[str, Mapping[str, str]]
) -> tuple[list[Filter], str]:
    """Filters written as "for video consultations" or "kind=video", for values the dimension really has."""
    filters: list[Filter] = []
    for match in re.finditer(r"\b([a-z_]+)=(\S+)", text):
        if match.group(1) in metric.dimensions:
            filters.append(Filter(match.group(1), "eq", match.group(2)))
            text = cut(text, Found(None, match.start(), match.end()))
    for dimension in metric.dimensions:
        values = known.get(dimension, {})
        for phrase in sorted(values, key=len, reverse=True):
            mention = re.search(rf"\b{_PREPOSITIONS}{re.escape(_plain(phrase))}\b", text)
            if mention and not any(f.dimension == dimension for f in filters):
                filters.append(Filter(dimension, "eq", values[phrase]))
                text = cut(text, Found(None, mention.start(), mention.end()))
    return filters, text


def parse_question(
    text: str,
    today: date,
    *,
    known: Mapping[str, Mapping[str, str]] = KNOWN_VALUES,
    require_metric: bool = True,
) -> KpiQuestion | None:
    """Read a KPI question; None when no metric is named (and `require_metric` is off)."""
    rest = _plain(" ".join(text.split()))
    metric_found, guessed, alternatives = find_metric(rest)
    if metric_found is None:
        if require_metric:
            raise ParseError(f"Name a metric, e.g. {', '.join(sorted(REGISTRY)[:6])} ...", KPI_USAGE)
        return None
    metric = REGISTRY[str(metric_found.value)]
    rest = cut(rest, metric_found)
    comparison, compared_unit = _find_comparison(rest)
    rest = cut(rest, comparison)
    grain = find_grain(rest)
    rest = cut(rest, grain)
    try:
        period = find_period(rest, today)
    except ValueError as error:
        raise ParseError(f"I could not read the period: {error}.", KPI_USAGE) from None
    rest = cut(rest, period)
    dimension = _find_dimension(rest, metric)
    rest = cut(rest, dimension)
    filters, rest = find_filters(rest, metric, {**KNOWN_VALUES, **known})
    grain_value = grain.value if grain else None
    if grain_value is not None and grain_value not in metric.grains:
        raise ParseError(
            f"{metric.label} is kept by {', '.join(metric.grains)}, not by {grain_value}.", KPI_USAGE
        )
    implied = _UNIT_SO_FAR.get(compared_unit or "") if period is None else None
    return KpiQuestion(
        metric=metric.name,
        period=period.value if period and isinstance(period.value, PeriodSpec) else implied or DEFAULT_PERIOD,
        dimension=str(dimension.value) if dimension else None,
        filters=tuple(filters),
        comparison=comparison.value if comparison else None,  # type: ignore[arg-type]
        grain=grain_value,
        period_assumed=period is None and implied is None,
        metric_guessed=guessed,
        alternatives=alternatives,
        ignored=_leftovers(rest),
        text=text,
    )


def _find_comparison(text: str) -> tuple[Found | None, str | None]:
    """The comparison asked for ("vs last month", "yoy"), and the calendar unit it names, if any."""
    found = find_comparison(text)
    if found is not None:
        named = re.search(r"\b(year|quarter|month|week)\b", text[found.start : found.end])
        return found, named.group(1) if named else None
    match = _SHORT_COMPARISON.search(text)
    if match is None:
        return None, None
    unit = _SHORT_UNITS.get(match.group(1)) or match.group(2)
    comparison = "same_period_last_year" if unit == "year" else "previous_period"
    return Found(comparison, match.start(), match.end()), unit


def _leftovers(text: str) -> tuple[str, ...]:
    """Words that meant nothing to the parser, so the reply can say they were ignored."""
    noise = FILLER_WORDS | {
        "kpi",
        "for",
        "on",
        "in",
        "at",
        "by",
        "of",
        "and",
        "a",
        "vs",
        "via",
        "from",
        "to",
        "rate",
    }
    return tuple(
        w for w in re.findall(r"[\w@#+.=-]+", text) if w not in noise and not re.fullmatch(r"[?.!,]+", w)
    )
