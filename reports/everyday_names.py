"""The names people use for a dimension's values: a clinic by its city, a country by its name or
adjective, a service or staff member by part of their name, a campaign by its name.

Built from the rows the database holds (codes and names), so a new clinic or service is understood the
moment it is added. A word that would name two values (two services called "... video ...") is left out
rather than guessed; codes of two letters that are also English words ("at", "us") only count when they
cannot be read otherwise ("the US", "USA").
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from functools import lru_cache

from babel import Locale

from reports.metrics import REGISTRY

#: English names of cities that differ from the local one in a clinic's name.
CITY_EXONYMS: Mapping[str, tuple[str, ...]] = {
    "münchen": ("munich",),
    "wien": ("vienna",),
    "zürich": ("zurich",),
    "new york": ("ny", "nyc", "new york city"),
    "london": ("ldn",),
}
#: Adjectives and short forms of countries (Babel has names, not adjectives).
COUNTRY_WORDS: Mapping[str, tuple[str, ...]] = {
    "DE": ("german", "deutsch", "deutsche", "deutschen", "germany's"),
    "AT": ("austrian", "österreichisch", "österreichische", "österreichischen"),
    "CH": ("swiss", "schweizer", "schweizerische"),
    "GB": ("uk", "u.k.", "british", "britain", "great britain", "england", "english", "britische"),
    "US": ("usa", "u.s.", "u.s.a.", "the us", "american", "america", "amerikanische", "amerikanischen"),
    "FR": ("french",),
    "IT": ("italian",),
    "NL": ("dutch",),
}
#: Two-letter codes that are everyday words; never taken on their own.
AMBIGUOUS_CODES = frozenset(
    {"at", "us", "in", "to", "on", "is", "it", "be", "me", "no", "so", "or", "an", "as"}
)
#: Words in names that say nothing about which one is meant.
NAME_NOISE = frozenset(
    {
        "the",
        "and",
        "of",
        "for",
        "with",
        "a",
        "in",
        "de",
        "von",
        "und",
        "der",
        "die",
        "new",
        "old",
        "city",
        "centre",
    }
)
_MONTH_NAMES = frozenset(
    (
        "january february march april may june july august september october november december "
        "januar februar märz juni juli oktober dezember"
    ).split()
)
STAFF_TITLES = ("dr", "dr.", "doctor", "doc", "prof", "frau", "herr", "mr", "mrs", "ms")


def ascii_fold(text: str) -> str:
    """ "München" -> "munchen", "Zürich" -> "zurich": how people type names without the accents."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def umlaut_spellings(text: str) -> Iterable[str]:
    """A name as typed with umlauts, without them, and spelt out ("Zürich", "Zurich", "Zuerich")."""
    yield text
    yield ascii_fold(text)
    yield text.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")


def plain(text: str) -> str:
    """Lower-case, with hyphens between letters as spaces ("no-show" like "no show")."""
    return " ".join(re.sub(r"(?<=[a-zäöüß])-(?=[a-zäöüß])", " ", text.lower()).split())


def everyday_names(dimension: str, rows: Iterable[tuple[str, str]]) -> dict[str, str]:
    """How a person may name each value of `dimension`, given (value, name) rows, mapped to the value."""
    # In the values' order, whatever order the database gave: a campaign's name then means the latest one
    # of that name (its slug starts with the month), as a later assignment wins.
    rows = sorted((str(value), str(name)) for value, name in rows if value)
    names: dict[str, str] = {}
    for value, name in rows:
        for phrase in (value, name):
            for spelling in umlaut_spellings(plain(phrase)):
                if spelling not in AMBIGUOUS_CODES:
                    names[spelling] = value
    maker = _EVERYDAY.get(dimension)
    if maker is not None:
        for phrase, value in maker(rows).items():
            for spelling in umlaut_spellings(plain(phrase)):
                names.setdefault(spelling, value)
    return names


def _distinct_words(rows: list[tuple[str, str]], *, min_length: int = 3) -> dict[str, str]:
    """Words (and word pairs) of the names that belong to one value only."""
    per_value: dict[str, set[str]] = {}
    for value, name in rows:
        words = plain(name).split()
        grams = {w for w in words if w not in NAME_NOISE and len(w) >= min_length}
        grams |= {" ".join(pair) for pair in itertools.pairwise(words) if pair[0] not in NAME_NOISE - {"new"}}
        per_value[value] = grams
    shared = Counter(gram for grams in per_value.values() for gram in grams)
    return {gram: value for value, grams in per_value.items() for gram in grams if shared[gram] == 1}


def _locations(rows: list[tuple[str, str]]) -> dict[str, str]:
    names = _distinct_words(rows)
    # "Vienna" names the one clinic in Wien; with two there ("Wien Mitte", "Wien Nord") it names neither.
    exonyms: dict[str, set[str]] = {}
    for value, name in rows:
        text = plain(name)
        for city, others in CITY_EXONYMS.items():
            if city in text or any(city in spelling for spelling in umlaut_spellings(text)):
                for other in others:
                    exonyms.setdefault(other, set()).add(value)
    for other, values in exonyms.items():
        if len(values) == 1:
            names.setdefault(other, next(iter(values)))
    return names


def _staff(rows: list[tuple[str, str]]) -> dict[str, str]:
    names = _distinct_words(rows, min_length=2)
    for phrase, value in list(names.items()):
        if " " not in phrase:
            for title in STAFF_TITLES:
                names[f"{title} {phrase}"] = value
    return names


def _services(rows: list[tuple[str, str]]) -> dict[str, str]:
    names = _distinct_words(rows, min_length=4)
    parts = Counter(part for value, _ in rows for part in set(re.split(r"[-_]", value.lower())))
    for value, _name in rows:
        for part in re.split(r"[-_]", value.lower()):
            if len(part) >= 4 and parts[part] == 1:
                names.setdefault(part, value)
    for value, name in rows:
        names.setdefault(plain(name), value)
    for phrase, value in list(names.items()):
        if not phrase.endswith("s"):
            names.setdefault(f"{phrase}s", value)  # "laser treatments", "nutrition assessments"
    return names


def _segments(rows: list[tuple[str, str]]) -> dict[str, str]:
    names: dict[str, str] = {}
    for value, _name in rows:
        if value != "new":
            names[f"{value}s"] = value
        for noun in ("customers", "customer", "patients", "clients", "kunden"):
            names[f"{value} {noun}"] = value
    return names


def _campaigns(rows: list[tuple[str, str]]) -> dict[str, str]:
    """A campaign by its name means the latest one of that name (slugs start with the month); "last
    year's Black Friday" or "Black Friday 2025" the one of that year."""
    names: dict[str, str] = {}
    by_year: dict[tuple[str, str], str] = {}
    for value, name in sorted(rows):
        names[plain(name)] = value
        names[f"{plain(name)} campaign"] = value
        year = value[:4]
        if year.isdigit():
            by_year[(plain(name), year)] = value
            names[f"{plain(name)} {year}"] = value
            names[f"{year} {plain(name)}"] = value
    for phrase, value in _distinct_words([(names[plain(n)], n) for _, n in rows], min_length=4).items():
        names.setdefault(f"{phrase} campaign", value)  # "the vitamin D campaign": part of a name, said as one
        words = phrase.split()
        if len(words) > 1 and not any(w in metric_words() or w in _MONTH_NAMES or w.isdigit() for w in words):
            names.setdefault(phrase, value)  # two words of one name ("vitamin d", "open clinic") name it too
    for value, name in rows:
        words = plain(name).split()
        months = [w for w in words if w in _MONTH_NAMES]
        if months and value[:4].isdigit():
            rest = " ".join(w for w in words if w not in _MONTH_NAMES and not w.isdigit())
            for phrase in (f"{months[0]} {rest}", f"{rest} {months[0]}", f"{months[0]} {value[:4]} {rest}"):
                names[phrase] = value  # "the October newsletter" for "Newsletter October 2026"
    for (name, year), value in by_year.items():
        latest_year = names[name][:4]
        if latest_year.isdigit() and int(year) == int(latest_year) - 1:
            names[f"last year {name}"] = value
    return names


@lru_cache(maxsize=1)
def metric_words() -> frozenset[str]:
    """Words of metric names and synonyms: never part of a campaign's short name."""
    return frozenset(
        word
        for metric in REGISTRY.values()
        for phrase in (metric.name.replace("_", " "), metric.label, *metric.synonyms)
        for word in plain(phrase).split()
    )


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for language in ("en", "de"):
        for code, name in Locale(language).territories.items():
            if len(code) == 2 and code.isalpha():
                names.setdefault(name.lower(), code)
    return names


def _countries(rows: list[tuple[str, str]]) -> dict[str, str]:
    codes = {value for value, _ in rows}
    names = {name: code for name, code in _country_names().items() if code in codes}
    for code, words in COUNTRY_WORDS.items():
        if code in codes:
            names.update(dict.fromkeys(words, code))
    return names


_EVERYDAY = {
    "location": _locations,
    "staff": _staff,
    "service": _services,
    "campaign": _campaigns,
    "country": _countries,
    "segment": _segments,
}


def known_value(dimension: str, text: str, known: Iterable[tuple[str, str]]) -> str | None:
    """A typed value as stored: its code or name in any case, or a name people use for it, as questions read
    them ("Berlin Mitte" and "Berlin" for "Northwind Berlin Mitte", "Vienna", "Germany", "Zurich"); None
    when it names none, or two."""
    rows = list(known)
    lowered = text.strip().lower()
    for value, name in rows:
        if lowered in (value.lower(), name.lower()):
            return value
    names = everyday_names(dimension, rows)
    typed = plain(text)
    return next((names[s] for s in umlaut_spellings(typed) if s in names), None)
