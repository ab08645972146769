"""Reading KPI questions ("revenue last 30 days by channel vs previous") into a typed KpiQuestion.

Deterministic: metric names and synonyms come from the reports registry, dimension values from the
business vocabulary; nothing is guessed that the reply does not then say it assumed.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import Literal

from rapidfuzz import fuzz, process

from bot.commands.conversation_looks import CONVERSATIONS
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
from bot.commands.wording import RANKED, plain_words
from domain.vocabulary import AppointmentKind, Channel, MessageCategory, MessageSource, Provider, SalesChannel
from reports.metrics import REGISTRY, Metric, dimension_words
from reports.periods import Grain, PeriodSpec, add_months, month_start, quarter_start, week_start
from reports.query import MAX_DIMENSIONS, Filter

KPI_USAGE = (
    "kpi METRIC [period] [by DIMENSION [and DIMENSION]] [for VALUE] [daily|weekly|monthly] "
    "[vs previous|last year] [top N]"
)
DEFAULT_PERIOD = PeriodSpec.last_n_days(30)

#: Words people use for a dimension, in order of preference; the first the metric has is taken.
DIMENSION_WORDS: Mapping[str, tuple[str, ...]] = {
    "channel": ("channel", "source_channel", "reminder_channel"),
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
    "treatments": ("service",),
    "services": ("service",),
    "staff": ("staff",),
    "agent": ("staff",),
    "doctor": ("staff",),
    "kind": ("kind",),
    "type": ("kind",),
    "appointment type": ("kind",),
    "visit type": ("kind",),
    "clinics": ("location",),
    "city": ("location",),
    "practice": ("location",),
    "branch": ("location",),
    "site": ("location",),
    "dr": ("staff",),
    "person": ("staff",),
    "employee": ("staff",),
    "team member": ("staff",),
    "practitioner": ("staff",),
    "member": ("staff",),
    "customer segment": ("segment",),
    "message type": ("category",),
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
        [c.value for c in Channel],
        {
            "text": "sms",
            "texts": "sms",
            "text messages": "sms",
            "sms messages": "sms",
            "e mail": "email",
            "emails": "email",
            "mails": "email",
            "whatsapps": "whatsapp",
            "whatsapp messages": "whatsapp",
            "telegrams": "telegram",
            "telegram messages": "telegram",
            "chats": "chat",
            "live chat": "chat",
            "live chats": "chat",
            "web chat": "chat",
            "web chats": "chat",
            "website chat": "chat",
            "website chats": "chat",
            "chat widget": "chat",
        },
    ),
    "source_channel": _values(
        [s.value for s in SalesChannel],
        {
            "online": "web",
            "web shop": "web",
            "webshop": "web",
            "website": "web",
            "the website": "web",
            "shop": "web",
        },
    ),
    # The channel an appointment's last reminder went out on: only named with "reminder", so "whatsapp" alone
    # keeps meaning the messages' channel.
    "reminder_channel": {
        **{
            phrase.format(name=name): value
            for value, names in {
                "sms": ("sms", "text"),
                "whatsapp": ("whatsapp",),
                "email": ("email", "e mail"),
                "telegram": ("telegram",),
            }.items()
            for name in names
            for phrase in ("{name} reminders", "{name} reminder", "reminded on {name}", "reminded by {name}")
        },
        "no reminder": "none",
        "without a reminder": "none",
        "not reminded": "none",
    },
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
    #: A second split under the first ("by clinic and channel").
    then_by: str | None = None
    filters: tuple[Filter, ...] = ()
    comparison: Comparison | None = None
    grain: Grain | None = None
    period_assumed: bool = False
    metric_guessed: bool = False
    alternatives: tuple[str, ...] = ()
    ignored: tuple[str, ...] = field(default=())
    text: str = field(default="", compare=False)  # as typed, to re-read with the database's values
    #: A ranking's N ("top 3 clinics"): the answer lists that many parts, largest first.
    top: int | None = None

    @property
    def dimensions(self) -> tuple[str, ...]:
        """The splits asked for, first first: none, one or two."""
        return tuple(d for d in (self.dimension, self.then_by) if d)

    def command_text(self, **changes: object) -> str:
        """The `kpi` command that asks this question again, with `changes` (period, dimension, comparison)."""
        period = changes.get("period", self.period)
        dimension = changes.get("dimension", self.dimension)
        # A button that picks another split asks for that one alone.
        then_by = self.then_by if "dimension" not in changes else None
        comparison = changes.get("comparison", self.comparison)
        metric = changes.get("metric", self.metric)
        assert isinstance(period, PeriodSpec)
        parts = ["kpi", str(metric), period_phrase(period)]
        if dimension:
            parts.append(f"by {dimension} and {then_by}" if then_by else f"by {dimension}")
        parts += [_typed_filter(f) for f in self.filters]
        if self.grain:
            parts.append(
                {"hour": "hourly", "day": "daily", "week": "weekly", "month": "monthly"}.get(
                    self.grain, "quarterly"
                )
            )
        if comparison == "previous_period":
            parts.append("vs previous")
        elif comparison == "same_period_last_year":
            parts.append("vs last year")
        if self.top is not None and dimension == self.dimension:  # another split is all of that one
            parts.append(f"top {self.top}")
        return " ".join(parts)


#: A filter typed as `dimension=value` or `dimension="two words"`, as the answer's buttons write them.
_TYPED_FILTER = re.compile(r"(?<![\w=])([A-Za-z_]+)=(?:\"([^\"]*)\"|(\S+))")


def _typed_filter(found: Filter) -> str:
    """ "channel=sms", "location=\"Berlin Mitte\"", several values as "channel=sms,email"."""
    value = ",".join(found.values)
    return f'{found.dimension}="{value}"' if re.search(r"\s", value) else f"{found.dimension}={value}"


def _typed_filters(text: str) -> tuple[list[Filter], str]:
    """Filters typed as key=value (several values as key=a,b), read from the text as typed (values keep
    their case), and the text without them."""
    filters: list[Filter] = []
    for match in _TYPED_FILTER.finditer(text):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        several = tuple(v.strip() for v in value.split(",") if v.strip())
        if len(several) > 1:
            filters.append(Filter(match.group(1).lower(), "in", several))
        else:
            filters.append(Filter(match.group(1).lower(), "eq", value.strip()))
    return filters, _TYPED_FILTER.sub(" ", text)


def _plain(text: str) -> str:
    """Lower-case with hyphens between letters as spaces, so "no-show" and "no show" read alike."""
    return re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text.lower())


#: Names that also name the things other figures count: "conversations first response time" is the first
#: response time, and "conversation rate" a misspelt conversion. Bare, they are read only when no figure is
#: named (`_conversations`).
_NOT_ALONE = frozenset({"conversations"})


@lru_cache(maxsize=1)
def metric_phrases() -> dict[str, str]:
    """Every way the registry lets a person name a metric, mapped to the metric's name."""
    phrases: dict[str, str] = {}
    for metric in REGISTRY.values():
        for phrase in (metric.name, metric.name.replace("_", " "), metric.label, *metric.synonyms):
            if _plain(phrase) not in _NOT_ALONE:
                phrases.setdefault(_plain(phrase), metric.name)
    return phrases


@lru_cache(maxsize=1)
def _metric_pattern() -> re.Pattern[str]:
    """One pattern for every phrase, longest first, so a match is the earliest and, there, the longest."""
    alternatives = sorted(metric_phrases(), key=len, reverse=True)
    return re.compile(r"(?<![\w=])(?:" + "|".join(re.escape(p) for p in alternatives) + r")(?![\w=])")


def find_metric(text: str) -> tuple[Found | None, bool, tuple[str, ...]]:
    """The metric named in `text`: earliest mention wins, the longest phrase at one place.

    Without an exact mention, a close spelling is taken and flagged as guessed with alternatives.
    """
    phrases = metric_phrases()
    match = _metric_pattern().search(text)
    if match is not None:
        return Found(phrases[match.group(0)], match.start(), match.end()), False, ()
    return _fuzzy_metric(text, phrases)


#: A misspelling is taken for a metric word only when it is this close (rapidfuzz ratio, 0-100) ...
FUZZY_SCORE = 85
#: ... and at least this long: a short word is too near too many others ("send" is not "spend").
FUZZY_MIN_LENGTH = 5


def names_a_metric(text: str) -> bool:
    """Whether `text` names a metric in words, exactly or nearly ("revenue", "no-show rate", "mesages"),
    rather than leaving it to be inferred from a channel or a service ("chats", "laser treatments")."""
    found, _, _ = find_metric(plain_words(text))
    return found is not None


def _fuzzy_metric(text: str, phrases: Mapping[str, str]) -> tuple[Found | None, bool, tuple[str, ...]]:
    words = [(m.group(0), m.start(), m.end()) for m in re.finditer(r"[a-z_]{3,}", text)]
    scored: list[tuple[float, str, int, int]] = []
    for size in (1, 2, 3):
        for index in range(len(words) - size + 1):
            chunk = words[index : index + size]
            gram = " ".join(w for w, _, _ in chunk)
            if len(gram) < FUZZY_MIN_LENGTH or gram in NOT_METRIC_WORDS:
                continue
            for phrase, score, _ in process.extract(
                gram, _fuzzy_candidates(), scorer=fuzz.ratio, score_cutoff=FUZZY_SCORE, limit=3
            ):
                if abs(len(phrase) - len(gram)) <= 3:
                    scored.append((score, phrases[phrase], chunk[0][1], chunk[-1][2]))
    if not scored:
        return None, False, ()
    scored.sort(key=lambda s: -s[0])
    _, name, start, end = scored[0]
    others = tuple(dict.fromkeys(n for _, n, _, _ in scored[1:] if n != name))[:2]
    return Found(name, start, end), True, others


@lru_cache(maxsize=1)
def _fuzzy_candidates() -> tuple[str, ...]:
    return tuple(phrase for phrase in metric_phrases() if len(phrase) >= FUZZY_MIN_LENGTH)


#: Words close to a metric word that mean something else in a question.
NOT_METRIC_WORDS = (
    frozenset({"spent", "sender", "senders", "sends", "reader", "orderly", "costly", "weekly"}) | _NOT_ALONE
)


def _find_dimension(text: str, metric: Metric, known: Mapping[str, Mapping[str, str]]) -> Found | None:
    """The split asked for ("by clinic"), or two ("by clinic and channel"): a Found whose value is a tuple of
    one or two dimension names."""
    match = re.search(
        r"\b(?:split\s+|broken\s+down\s+)?(?:by|per|each)\s+(?:the\s+|each\s+)?([a-z_]+)(?:\s+([a-z]+))?\b",
        text,
    )
    if match is None:
        return None
    word, second = match.group(1), match.group(2)
    if (
        word not in DIMENSION_WORDS
        and word not in metric.dimensions
        and any(word in known.get(d, {}) for d in metric.dimensions)
    ):
        return None  # "orders by phone": a value to filter on, not a breakdown
    first, end = _split_named(word, second, match.end(1), match.end(2), metric)
    dimensions = [first]
    while then := THEN_BY.match(text, end):
        word, second = then.group(1), then.group(2)
        named = word in DIMENSION_WORDS or word in _every_dimension()
        if second and not named:  # "sales channel", "reminder channel", "team member"
            named = f"{word} {second}" in DIMENSION_WORDS or f"{word}_{second}" in _every_dimension()
        if not named or _names_a_value(text[then.start(1) :], metric, known):
            break  # "by clinic and BER", "by clinic and Dr Smith": what follows "and" is not a split
        if second and _names_a_value(text[then.start(2) :], metric, known):
            break  # "by clinic and source web": a filter named with its dimension, not a second split
        if len(dimensions) == MAX_DIMENSIONS:
            raise ParseError(f"A question splits by at most {MAX_DIMENSIONS} things at once.", KPI_USAGE)
        dimension, end = _split_named(word, second, then.end(1), then.end(2), metric)
        if dimension in dimensions:
            raise ParseError(f"{word.replace('_', ' ').capitalize()} is named twice after “by”.", KPI_USAGE)
        dimensions.append(dimension)
    if len(dimensions) > 1 and "currency" in dimensions:
        raise Declined(
            f"{metric.label} is split by currency on its own: amounts in different currencies are never added up."
        )
    return Found(tuple(dimensions), match.start(), end)


def _names_a_value(text: str, metric: Metric, known: Mapping[str, Mapping[str, str]]) -> bool:
    """Whether `text` starts with a value of one of the metric's dimensions ("dr smith", "clinic mitte")."""
    for dimension in metric.dimensions:
        found = _mention(text, known.get(dimension, {}))
        if found is not None and found.start == 0:
            return True
    return False


@lru_cache(maxsize=1)
def _every_dimension() -> frozenset[str]:
    """Every dimension some metric is kept by: after "and", one of them is a split asked for."""
    return frozenset(d for metric in REGISTRY.values() for d in metric.dimensions)


#: A second split after the first: "by clinic and channel", "by clinic, channel", "by clinic then by channel".
THEN_BY = re.compile(
    r"\s*(?:,\s*(?:and\s+)?|\s+and\s+|\s+then\s+)(?:by\s+|per\s+|each\s+)?(?:the\s+)?([a-z_]+)(?:\s+([a-z]+))?\b"
)


def _split_named(word: str, second: str | None, end: int, second_end: int, metric: Metric) -> tuple[str, int]:
    """The dimension `word` (with the word after it, for two-word names) names, and where its name ends;
    Declined when the metric is not kept by it."""
    if second and (f"{word}_{second}" in metric.dimensions or f"{word} {second}" in DIMENSION_WORDS):
        word = f"{word}_{second}" if f"{word}_{second}" in metric.dimensions else f"{word} {second}"
        end = second_end
    candidates = DIMENSION_WORDS.get(word, (word,)) if word not in metric.dimensions else (word,)
    for candidate in candidates:
        if candidate in metric.dimensions:
            return candidate, end
    allowed = ", ".join(dimension_words(d) for d in metric.dimensions) or "nothing (it is one figure)"
    raise Declined(
        f"{metric.label} cannot be split by {word.replace('_', ' ')}; it can be split by {allowed}."
    )


def find_filters(
    text: str, metric: Metric, known: Mapping[str, Mapping[str, str]]
) -> tuple[list[Filter], str]:
    """Filters named in words ("for video consultations", "Berlin", "emails"), for values the dimension
    really has; `key=value` filters are read from the text as typed, before (see _typed_filters)."""
    filters: list[Filter] = []
    for dimension in metric.dimensions:
        values = known.get(dimension, {})
        if not values or any(f.dimension == dimension for f in filters):
            continue
        mention = _mention(text, values, after_preposition=dimension in NAMED_WITH_PREPOSITION)
        if mention is not None:
            filters.append(Filter(dimension, "eq", str(mention.value)))
            text = cut(text, mention)
    return filters, text


#: Dimensions whose values are everyday words ("campaign", "reply", "internal"): only taken after a
#: preposition ("from campaigns", "via twilio"), never on their own.
NAMED_WITH_PREPOSITION = frozenset({"message_source", "provider"})


def _contrasted(
    text: str, metric: Metric, known: Mapping[str, Mapping[str, str]]
) -> tuple[Found, Filter | None] | None:
    """ "video vs in person", "Berlin vs München": two values of one dimension set side by side ask for the
    split by that dimension, narrowed to those two."""
    for dimension in metric.dimensions:
        values = known.get(dimension, {})
        first = _mention(text, values) if values else None
        if first is None:
            continue
        after = re.match(
            r"[\s\x00]*(?:vs\.?|versus|or|and|against|compared\s+(?:to|with))[\s\x00]+", text[first.end :]
        )
        if after is None:
            continue
        second = _mention(text[first.end + after.end() :], values)
        if second is not None and second.start == 0 and second.value != first.value:
            split = Found((dimension,), first.start, first.end + after.end() + second.end)
            if len(set(values.values())) <= 2:
                return split, None  # "video vs in person": the two are all there are
            return split, Filter(dimension, "in", (str(first.value), str(second.value)))
    return None


#: How many a ranking asks for, in words.
RANKING_SIZES = {
    word: n
    for n, word in enumerate(
        ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"), 1
    )
}
_SIZE = rf"\d+|{'|'.join(RANKING_SIZES)}"
#: "top 3 clinics", "best campaign", "worst branch": a ranking, answered with the split (largest first).
RANKING = re.compile(
    r"\b(top|best|worst|biggest|largest|highest|lowest|strongest|weakest|leading)\s+"
    rf"(?:({_SIZE})\s+)?([a-z_]+)\b"
)
#: "… by clinic top 3", as the answer's buttons write a ranking's N after its split (nothing ranked after it:
#: "top 3 clinics … by channel" is no N of channels).
TOP_AFTER_SPLIT = re.compile(rf"\btop\s+({_SIZE})\b(?!\s*[a-z])")
#: A ranking's N is at most a report's top N (reports.presentation.MAX_TOP; that module draws charts, so it is
#: not imported by the reading of questions).
LARGEST_RANKING = 50
#: Ranking words that ask for the largest figures first, and those that ask for the smallest.
LARGEST = frozenset({"top", "biggest", "largest", "highest", "strongest", "leading"})
SMALLEST = frozenset({"lowest", "weakest"})


def _size(word: str | None) -> int | None:
    """A ranking's N from its word ("3", "three"); None when none is named, or it is 0."""
    if word is None:
        return None
    size = RANKING_SIZES.get(word) or int(word)
    return min(size, LARGEST_RANKING) if size > 0 else None


def _ranked(text: str, metric: Metric) -> tuple[Found, int | None] | None:
    """ "top 3 clinics by revenue", "worst clinic for no-shows": a ranking of clinics, campaigns or channels
    asks for the split by that dimension (found as a dimension is), whose parts the answer lists largest
    first, as many as it names (the N, or None). A ranking of single customers is declined elsewhere (no
    metric is kept by customer)."""
    match = RANKING.search(text)
    if match is None:
        return None
    ranking, word = match.group(1), match.group(3)
    good_first = metric.direction == "up_is_good"
    largest_first = (
        ranking in LARGEST or (ranking == "best" and good_first) or (ranking == "worst" and not good_first)
    )
    if ranking in SMALLEST or not largest_first:
        return None  # the answer lists the largest first: "worst campaign by delivery rate" stays unread
    for form in (word, word.removesuffix("s"), word.removesuffix("es")):
        if form in RANKED and (form in DIMENSION_WORDS or form in metric.dimensions):
            dimension, _ = _split_named(form, None, match.end(3), match.end(3), metric)
            return Found((dimension,), match.start(), match.end(3)), _size(match.group(2))
    return None


def _top_after_split(text: str, split_ends: int) -> tuple[Found, int] | None:
    """ "revenue last month by location top 3": the N named after a split already read, and where."""
    match = TOP_AFTER_SPLIT.search(text, split_ends)
    size = _size(match.group(1)) if match else None
    return (Found(size, match.start(), match.end()), size) if match and size else None


def _foreign_values(text: str, metric: Metric, known: Mapping[str, Mapping[str, str]]) -> str | None:
    """A value of a dimension this metric is not kept by ("churn for vip customers"), if one is named."""
    for dimension, values in known.items():
        if dimension in metric.dimensions or dimension in NAMED_WITH_PREPOSITION or dimension == "currency":
            continue
        mention = _mention(text, values)
        if mention is not None and len(text[mention.start : mention.end].strip()) >= 3:
            return dimension
    return None


_WORD = re.compile(r"[\wäöüß][\w.'&+/-]*")


def _mention(text: str, values: Mapping[str, str], *, after_preposition: bool = False) -> Found | None:
    """The first mention of a value's name in `text` (longest at one place), by looking word groups up:
    a handful of dictionary lookups per word, however many values there are."""
    words = [
        (m.group(0).rstrip(".,"), m.start(), m.start() + len(m.group(0).rstrip(".,")))
        for m in _WORD.finditer(text)
    ]
    for index in range(len(words)):
        for size in (4, 3, 2, 1):
            chunk = words[index : index + size]
            if len(chunk) < size:
                continue
            # Words must be adjacent (a cut phrase between them breaks the name).
            if any(text[a[2] : b[1]] != " " for a, b in itertools.pairwise(chunk)):
                continue
            phrase = " ".join(w for w, _, _ in chunk)
            value = values.get(phrase) or values.get(_plain(phrase))
            if value is not None and (
                not after_preposition or re.search(rf"\b{_PREPOSITIONS}$", text[: chunk[0][1]])
            ):
                return Found(value, chunk[0][1], chunk[-1][2])
    return None


class Declined(ParseError):
    """A question we read but cannot answer faithfully; `closest` is what we can answer instead."""

    def __init__(self, message: str, closest: KpiQuestion | None = None) -> None:
        super().__init__(message, None)
        self.closest = closest


#: Words that change what a question means in ways no metric can answer, and what to say about them.
CANNOT_ANSWER: Mapping[str, str] = {
    "forecast": "forecasts",
    "forecasts": "forecasts",
    "forecasted": "forecasts",
    "predict": "forecasts",
    "predicted": "forecasts",
    "prediction": "forecasts",
    "projected": "forecasts",
    "projection": "forecasts",
    "prognose": "forecasts",
    "expected": "forecasts",
    "cancelled": "cancellations",
    "canceled": "cancellations",
    "cancellations": "cancellations",
    "cancellation": "cancellations",
    "storniert": "cancellations",
    "stornierte": "cancellations",
    "stornierungen": "cancellations",
    "absagen": "cancellations",
    "duration": "durations",
    "dauer": "durations",
    "length": "durations",
    "website": "website traffic",
    "webseite": "website traffic",
    "traffic": "website traffic",
    "visitors": "website traffic",
    "besucher": "website traffic",
    "pageviews": "website traffic",
    "sessions": "website traffic",
    "ads": "advertising",
    "ad": "advertising",
    "adwords": "advertising",
    "advertising": "advertising",
    "werbung": "advertising",
    "werbekosten": "advertising",
    "impressions": "advertising",
    "clicks": "advertising",
    "ctr": "advertising",
    "cpc": "advertising",
    "roas": "advertising",
    "profit": "profit and margins",
    "margin": "profit and margins",
    "margins": "profit and margins",
    "gewinn": "profit and margins",
    "marge": "profit and margins",
    "salary": "payroll",
    "salaries": "payroll",
    "wages": "payroll",
    "payroll": "payroll",
    "inventory": "stock",
    "stock": "stock",
    "lager": "stock",
    "refunds": "refunds on their own (revenue is net of them)",
    "refund": "refunds on their own (revenue is net of them)",
    "erstattungen": "refunds on their own (revenue is net of them)",
    "lifetime": "customer lifetime value",
    "ltv": "customer lifetime value",
    "clv": "customer lifetime value",
    "median": "medians",
    "rating": "ratings",
    "ratings": "ratings",
    "reviews": "reviews",
    "bewertungen": "reviews",
}
#: Metrics that can have figures for days still to come (appointments already booked).
FUTURE_METRICS = frozenset({"appointments", "video_consultations"})


def parse_question(
    text: str,
    today: date,
    *,
    known: Mapping[str, Mapping[str, str]] = KNOWN_VALUES,
    require_metric: bool = True,
) -> KpiQuestion | None:
    """Read a KPI question; None when no metric is named (and `require_metric` is off).

    Raises ParseError when it cannot be read, and Declined when it is read but no metric can answer it
    faithfully (a forecast, cancellations, a breakdown the metric does not keep...).
    """
    typed, words = _typed_filters(" ".join(text.split()))
    rest = plain_words(words)
    values = {**KNOWN_VALUES, **known}
    metric_found, guessed, alternatives = find_metric(rest)
    implied_filter: Filter | None = None
    if metric_found is None:  # "sms conversations", "whatsapp chats": the conversations on that channel
        metric_found, implied_filter = _conversations(rest)
    if metric_found is None:
        metric_found, implied_filter = _channel_messages(rest)
    if metric_found is None:
        metric_found, implied_filter = _service_appointments(rest, values)
    if metric_found is None and (metric_found := _campaign_ranking(rest)) is not None:
        guessed = True  # the answer says which figure it ranked by
    if metric_found is None:
        if require_metric:
            blocker = _cannot_answer(rest)
            if blocker:
                raise Declined(f"I cannot answer questions about {blocker}: no metric keeps them.")
            raise ParseError(f"Name a metric, e.g. {', '.join(sorted(REGISTRY)[:6])} ...", KPI_USAGE)
        return None
    metric = REGISTRY[str(metric_found.value)]
    said = rest[metric_found.start : metric_found.end]
    rest = cut(rest, metric_found)
    for again in _metric_pattern().finditer(rest):  # "video appointments vs in person appointments"
        if again.group(0) == said:
            rest = cut(rest, Found(None, again.start(), again.end()))
    # "messages … delivered": "messages" is the figure's own word, not one it ignored.
    if metric.source == "messages" and (bare := re.search(r"\bmessages\b", rest)):
        rest = cut(rest, Found(None, bare.start(), bare.end()))
    # "first response time for chats": conversations are what every chat figure counts, on every channel; a
    # channel is named as one ("website chat", "WhatsApp").
    if metric.source == "chats":
        said_alone = rf"(?<!live )(?<!web )(?<!website )\b(?:{_CONVERSATION_WORDS})\b"
        for bare in reversed(list(re.finditer(said_alone, rest))):
            rest = cut(rest, Found(None, bare.start(), bare.end()))
    # "average first response time": an average already, so "average" is what it says, not a word ignored.
    if metric.aggregation == "average" and (mean := re.search(r"\b(?:average|mean)\b", rest)):
        rest = cut(rest, Found(None, mean.start(), mean.end()))
    # Campaign names hold dates and weekdays ("Black Friday", "2026-10-open-clinic-evening"): read first.
    named_campaign = _mention(rest, values.get("campaign", {})) if "campaign" in metric.dimensions else None
    rest = cut(rest, named_campaign)
    comparison, compared_unit = _find_comparison(rest)
    rest = cut(rest, comparison)
    grain = find_grain(rest)
    rest = cut(rest, grain)
    try:
        period = find_period(rest, today)
    except ValueError as error:
        raise ParseError(f"I could not read the period: {error}.", KPI_USAGE) from None
    rest = cut(rest, period)
    if period is not None and comparison is None:
        comparison, rest, so_far = _compared_period(rest, period, today)
        if so_far is not None:  # "Q4 vs Q3" while Q4 runs: this quarter so far, against the one before
            period = Found(so_far, period.start, period.end)
    dimension = _find_dimension(rest, metric, values)
    contrast: Filter | None = None
    if dimension is None and (contrasted := _contrasted(rest, metric, values)) is not None:
        dimension, contrast = contrasted
    top: int | None = None
    if dimension is None and (ranked := _ranked(rest, metric)) is not None:
        dimension, top = ranked
    rest = cut(rest, dimension)
    if dimension is not None and top is None and (sized := _top_after_split(rest, dimension.end)) is not None:
        rest, top = cut(rest, sized[0]), sized[1]
    split: tuple[str, ...] = dimension.value if dimension else ()  # type: ignore[assignment]
    for typed_filter in typed:
        if typed_filter.dimension not in metric.dimensions:
            allowed = ", ".join(metric.dimensions) or "nothing (it is one figure)"
            raise ParseError(
                f"{metric.label} cannot be narrowed by {typed_filter.dimension}; it can be by {allowed}.",
                KPI_USAGE,
            )
    filters, rest = find_filters(rest, metric, values)
    filters = [*typed, *(f for f in filters if f.dimension not in {t.dimension for t in typed})]
    if named_campaign is not None:
        filters.append(Filter("campaign", "eq", str(named_campaign.value)))
    if implied_filter is not None and implied_filter.dimension not in {f.dimension for f in filters}:
        filters.insert(0, implied_filter)
    if contrast is not None and contrast.dimension not in {f.dimension for f in filters}:
        filters.append(contrast)
    credited = REGISTRY["campaign_revenue"]
    if (
        metric.name == "revenue"
        and any(f.dimension == "campaign" for f in filters)
        and all(f.dimension in credited.dimensions for f in filters)
        and (dimension is None or all(d in credited.dimensions for d in split))
        and re.search(
            r"\b(?:bring|brings|brought|generate[ds]?|drove|driven|gebracht|erzielt|generiert)\b",
            text.lower(),
        )
    ):
        metric = credited  # what a campaign "brought in": the revenue it is credited with
    grain_value = grain.value if grain else None
    if grain_value is not None and grain_value not in metric.grains:
        raise ParseError(
            f"{metric.label} is kept by {', '.join(metric.grains)}, not by {grain_value}.", KPI_USAGE
        )
    implied = _UNIT_SO_FAR.get(compared_unit or "") if period is None else None
    question = KpiQuestion(
        metric=metric.name,
        period=period.value if period and isinstance(period.value, PeriodSpec) else implied or DEFAULT_PERIOD,
        dimension=split[0] if split else None,
        then_by=split[1] if len(split) > 1 else None,
        filters=tuple(filters),
        comparison=comparison.value if comparison else None,  # type: ignore[arg-type]
        grain=grain_value,
        period_assumed=period is None and implied is None,
        metric_guessed=guessed,
        alternatives=alternatives,
        ignored=_leftovers(rest),
        text=text,
        top=top,
    )
    _decline_what_we_cannot_answer(question, metric, rest, today)
    foreign = _foreign_values(rest, metric, values)
    if foreign is not None:
        allowed = ", ".join(dimension_words(d) for d in metric.dimensions) or "nothing (it is one figure)"
        raise Declined(
            f"{metric.label} is not kept by {foreign.replace('_', ' ')}, so I cannot narrow it to what you "
            f"named; it can be split by {allowed}.",
            question,
        )
    return question


def _campaign_ranking(text: str) -> Found | None:
    """ "best campaign last month", naming no figure: campaigns are ranked by the revenue they brought."""
    match = RANKING.search(text)
    if match is None or match.group(3) not in ("campaign", "campaigns") or match.group(1) in SMALLEST:
        return None
    if match.group(1) == "worst":
        return None  # the answer lists the largest first
    return Found("campaign_revenue", match.end(), match.end())  # nothing of the text is the figure's


def _channel_messages(text: str) -> tuple[Found | None, Filter | None]:
    """ "emails last week", "texts yesterday": a channel's plural is its messages sent; "messages last week"
    (no other figure named: "messages delivered" names one), every channel's."""
    match = re.search(
        r"\b(emails|e-mails|mails|texts|text messages|sms(?:es)?|whatsapps|whatsapp messages|telegrams|"
        r"telegram messages|chat messages|messages)\b",
        text,
    )
    if match is None:
        return None, None
    word = match.group(1)
    if word == "messages":
        if re.search(r"\b(?:received|receive|incoming|inbound|got|get|gotten|came in|come in)\b", text):
            return Found("messages_received", match.start(), match.end()), None  # customers wrote them
        return Found("messages_sent", match.start(), match.end()), None
    channel = (
        "email"
        if "mail" in word
        else "sms"
        if word.startswith(("text", "sms"))
        else "whatsapp"
        if word.startswith("whatsapp")
        else "telegram"
        if word.startswith("telegram")
        else "chat"
    )
    return Found("messages_sent", match.start(), match.end()), Filter("channel", "eq", channel)


#: The words for conversations (`conversation_looks.CONVERSATIONS`), as a regex alternation.
_CONVERSATION_WORDS = "|".join(sorted(CONVERSATIONS))


def _conversations(text: str) -> tuple[Found | None, Filter | None]:
    """ "chats last week", "how many conversations did we have yesterday", "WhatsApp chats by agent": no
    figure named, so the conversations started ("chat messages" are the messages sent on the chat channel);
    "live chats" and "website chats" are those of the website's chat."""
    match = re.search(rf"\b(?:(live|web|website)\s+)?(?:{_CONVERSATION_WORDS})\b", text)
    if match is None:
        return None, None
    if re.search(
        r"\b(?:missed|abandoned|dropped|lost|verpasste[n]?|abgebrochene[n]?)\s+(?:\w+\s+)?$",
        text[: match.start()],
    ):
        raise Declined(
            "I cannot answer questions about missed or abandoned chats: no metric keeps them. The conversations "
            "started, first response time and the SLA met rate are kept, e.g. “conversations last week”."
        )
    website = Filter("channel", "eq", "chat") if match.group(1) else None
    return Found("conversations", match.start(), match.end()), website


def _service_appointments(
    text: str, known: Mapping[str, Mapping[str, str]]
) -> tuple[Found | None, Filter | None]:
    """ "laser treatments in October", "nutrition check-ins": a service named alone asks for its appointments."""
    mention = _mention(text, known.get("service", {}))
    if mention is None:
        return None, None
    return Found("appointments", mention.start, mention.end), Filter("service", "eq", str(mention.value))


def _cannot_answer(text: str) -> str | None:
    if "years earlier" in text:
        return "comparisons with periods more than a year back (I compare with the period before or a year earlier)"
    if re.search(
        r"\b(?:top|best|biggest|worst|largest)\s+(?:\d+\s+|ten\s+|five\s+)?(?:customers|patients|clients|spenders|buyers)\b",
        text,
    ):
        return "rankings of single customers"
    for word in re.findall(r"[a-zäöüß]+", text):
        if word in CANNOT_ANSWER:
            return CANNOT_ANSWER[word]
    return None


def _decline_what_we_cannot_answer(question: KpiQuestion, metric: Metric, rest: str, today: date) -> None:
    """Words left over that change the meaning, or a period still to come: say so rather than chart
    something else; the closest answerable question goes with the refusal."""
    blocker = _cannot_answer(rest)
    closest = KpiQuestion(
        metric=question.metric,
        period=question.period if not _in_future(question.period, today) else DEFAULT_PERIOD,
        dimension=question.dimension,
        then_by=question.then_by,
        filters=question.filters,
        comparison=question.comparison,
        grain=question.grain,
        text=question.text,
    )
    if blocker:
        raise Declined(
            f"I cannot answer questions about {blocker}: no metric keeps them. "
            f"The closest I can show is {metric.label.lower()} as asked otherwise.",
            closest,
        )
    if _in_future(question.period, today) and metric.name not in FUTURE_METRICS:
        raise Declined(
            f"{metric.label} for a period still to come is not known yet (only booked appointments are). "
            "The closest I can show is the last 30 days.",
            closest,
        )


def _in_future(period: PeriodSpec, today: date) -> bool:
    return period.kind == "between" and period.start_date is not None and period.start_date > today


_VERSUS = re.compile(r"(?:vs\.?|versus|compared?\s+(?:to|with)|against|and|with|to)")


def _compared_period(text: str, first: Found, today: date) -> tuple[Found | None, str, PeriodSpec | None]:
    """ "March vs February", "Q1 vs Q4": a second named period after "vs" is a comparison when it is the
    period just before the first or the same one a year earlier; any other pair cannot be charted. The third
    value replaces the first period when it is the running month, quarter or year ("Q4 vs Q3" in December:
    this quarter so far)."""
    rest = text[first.end :]
    second = find_period(rest, today)
    between = _metric_pattern().sub("", rest[: second.start] if second else "").strip(" \x00")
    if second is None or not _VERSUS.fullmatch(" ".join(between.replace("\x00", " ").split())):
        return None, text, None
    spec_a, spec_b = first.value, second.value
    assert isinstance(spec_a, PeriodSpec) and isinstance(spec_b, PeriodSpec)
    a, b = _days_of(spec_a, today), _days_of(spec_b, today)
    if a is None or b is None:
        return None, text, None
    span = Found(None, first.end, first.end + second.end)
    text = cut(text, span)
    if spec_a.kind.startswith("this_") and spec_b.kind == spec_a.kind.replace("this_", "last_", 1):
        # "this month with last month": the days so far, against the same days of the month before.
        return Found("previous_period", span.start, span.end), text, None
    running = _running_unit(a, b, today)
    if running is not None:
        return Found(running[1], span.start, span.end), text, PeriodSpec(running[0])
    # A second period named without its year ("Q1 vs Q4") is the latest one before the first.
    starts = [b[0], _year_before(b[0])] if b[0] >= a[0] else [b[0]]
    for start in starts:
        months_apart = _units_between(start, a[0])
        if start < a[0] and (
            months_apart == _units_between(a[0], a[1] + timedelta(days=1))
            or a[0] - start == a[1] - a[0] + timedelta(days=1)
        ):
            return Found("previous_period", span.start, span.end), text, None
        if _year_before(a[0]) == start:
            return Found("same_period_last_year", span.start, span.end), text, None
    raise Declined(
        "I can compare a period with the one just before it or with the same period a year earlier, "
        "not with another period."
    )


def _running_unit(
    a: tuple[date, date], b: tuple[date, date], today: date
) -> tuple[Literal["this_month", "this_quarter", "this_year"], str] | None:
    """("this_quarter", "previous_period") when `a` is the running quarter so far (Q4 read in December ends
    today) and `b` the whole quarter before it, or ("this_month", "same_period_last_year") for "December vs
    December 2025"; the month, quarter and year alike. None otherwise."""
    if a[1] != today:
        return None
    units: tuple[tuple[int, Literal["this_month", "this_quarter", "this_year"], date], ...] = (
        (1, "this_month", month_start(today)),
        (3, "this_quarter", quarter_start(today)),
        (12, "this_year", date(today.year, 1, 1)),
    )
    for months, kind, start in units:
        if a[0] != start:
            continue
        for comparison, shift in (("previous_period", -months), ("same_period_last_year", -12)):
            before = add_months(start, shift)
            if b == (before, add_months(before, months) - timedelta(days=1)):
                return kind, comparison
    return None


def _year_before(day: date) -> date:
    return (
        day.replace(year=day.year - 1, day=min(day.day, 28))
        if day.month == 2
        else day.replace(year=day.year - 1)
    )


def _units_between(first: date, second: date) -> float:
    """Whole months between two first-of-month days; otherwise a value no month span equals."""
    if first.day != 1 or second.day != 1:
        return -1.5
    return (second.year - first.year) * 12 + second.month - first.month


def _days_of(spec: PeriodSpec, today: date) -> tuple[date, date] | None:
    """First and last day a period spec covers, as of `today`."""
    if spec.kind == "between":
        assert spec.start_date is not None and spec.end_date is not None
        return spec.start_date, spec.end_date
    starts = {
        "this_week": week_start(today),
        "last_week": week_start(today) - timedelta(days=7),
        "this_month": month_start(today),
        "last_month": add_months(month_start(today), -1),
        "this_quarter": quarter_start(today),
        "last_quarter": add_months(quarter_start(today), -3),
        "this_year": date(today.year, 1, 1),
        "year_to_date": date(today.year, 1, 1),
    }
    if spec.kind in ("today", "yesterday"):
        day = today if spec.kind == "today" else today - timedelta(days=1)
        return day, day
    if spec.kind == "last_n_days":
        assert spec.n is not None
        return today - timedelta(days=spec.n), today - timedelta(days=1)
    first = starts.get(spec.kind)
    if first is None:
        return None
    length = {"week": 7}
    if "week" in spec.kind:
        return first, first + timedelta(days=length["week"] - 1)
    months = 1 if "month" in spec.kind else 3 if "quarter" in spec.kind else 12
    last = add_months(first, months) - timedelta(days=1)
    return first, min(last, today) if spec.kind.startswith("this") or spec.kind == "year_to_date" else last


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
        "what",
        "whats",
        "did",
        "do",
        "does",
        "we",
        "us",
        "have",
        "had",
        "has",
        "about",
        "total",
        "overall",
        "much",
        "number",
        "numbers",
        "figures",
        "stats",
        "doing",
        "look",
        "like",
        "can",
        "you",
        "i",
        "see",
        "pls",
        "plz",
        "all",
        "with",
        "during",
        "so",
        "far",
        "far?",
        "wie",
        "viele",
        "viel",
        "wieviele",
        "wieviel",
        "anzahl",
        "anzahl der",
        "war",
        "waren",
        "hatten",
        "hatte",
        "hat",
        "haben",
        "wir",
        "der",
        "die",
        "das",
        "den",
        "dem",
        "des",
        "unser",
        "unsere",
        "unseren",
        "unserer",
        "zeig",
        "zeige",
        "mir",
        "bitte",
        "ist",
        "sind",
        "gab",
        "es",
        "gibt",
        "insgesamt",
        "gesamt",
        "alle",
        "von",
        "für",
        "fuer",
        "über",
        "ueber",
        "mit",
        "bei",
        "an",
        "am",
        "nach",
        "wo",
        "stehen",
        "steht",
        "liegt",
        "lag",
        "lagen",
        "hoch",
        "hoch?",
        "went",
        "go",
        "come",
        "came",
        "this",
        "that",
        "there",
        "been",
        "get",
        "got",
        "level",
        "trend",
        "performance",
        "perform",
        "performed",
        "happened",
        "compare",
        "clinic",
        "location",
        "treatment",
        "treatments",
        "bring",
        "brought",
        "generate",
        "generated",
        "gebracht",
        "customer",
        "customers",
        "dr",
        "kunden",
    }
    return tuple(
        w for w in re.findall(r"[\w@#+.=-]+", text) if w not in noise and not re.fullmatch(r"[?.!,]+", w)
    )
