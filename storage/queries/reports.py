"""What questions about the figures may name: the clinics, services, campaigns, templates, staff,
segments and countries in the database, as (value, name) pairs per report dimension."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping

from babel import Locale
from sqlalchemy import func, select

from storage.analytics.facts import NO_VALUE
from storage.database import Database
from storage.models import BulkMessaging, Customer, Location, MessageTemplate, Service, StaffUser

#: Each dimension's stored value and the name people know it by (one column when they are the same).
_NAMED_BY = {
    "location": (Location.code, Location.name),
    "service": (Service.code, Service.name),
    "campaign": (BulkMessaging.slug, BulkMessaging.name),
    "template": (MessageTemplate.name, MessageTemplate.name),
    "staff": (StaffUser.name, StaffUser.name),
    "segment": (Customer.segment, Customer.segment),
    "country": (Customer.country, Customer.country),
}


async def dimension_names(database: Database, *, limit: int = 500) -> dict[str, list[tuple[str, str]]]:
    """Up to `limit` distinct (value, name) pairs per dimension; rows without a value are left out."""
    found: dict[str, list[tuple[str, str]]] = {}
    async with database.read_sessions() as session:
        for dimension, (value_column, name_column) in _NAMED_BY.items():
            # Labelled, because a value and its name may be one column (staff are named by name).
            rows = (
                await session.execute(
                    select(value_column.label("value"), name_column.label("name")).distinct().limit(limit)
                )
            ).all()
            found[dimension] = [(str(v), str(n)) for v, n in rows if v]
    return found


#: The dimensions named in tables staff add rows to by hand (a clinic, a service, a campaign, a template,
#: a colleague): a row added there is noticed by `names_fingerprint`.
_ADDED_BY_HAND = (Location, Service, BulkMessaging, MessageTemplate, StaffUser)


async def names_fingerprint(database: Database) -> tuple[int, ...]:
    """How many clinics, services, campaigns, templates and staff there are, and their newest ids, in one
    cheap query: when it changes, a name was added (or removed) since the names were last read."""
    counted = [
        item
        for model in _ADDED_BY_HAND
        for item in (
            select(func.count()).select_from(model).scalar_subquery(),
            select(func.coalesce(func.max(model.id), 0)).scalar_subquery(),
        )
    ]
    async with database.read_sessions() as session:
        row = (await session.execute(select(*counted))).one()
    return tuple(int(v or 0) for v in row)


#: The attribution row of orders whose last message was not a campaign's, in words.
NO_CAMPAIGN = "No campaign (single messages and notifications)"


#: Dimensions stored as a code or a slug that people know by a name (a clinic's "BER").
NAMED_BY_CODE = ("location", "service", "campaign")
#: Beyond this many values, an answer keeps the codes (its chart holds far fewer).
MAX_NAMED = 500


async def value_names(
    database: Database,
    wanted: Mapping[str, Iterable[str]],
    *,
    business_name: str = "",
    shown: Callable[[str], str] = str,
) -> dict[str, dict[str, str]]:
    """What people call these stored values, per dimension: {"location": {"BER": "Berlin Mitte"}}. Only
    dimensions stored as codes; a value whose name is itself, or that is not found, is left out, and a name
    two values share says its code too ("Open clinic evening (open-evening-25)"). The first word of
    `business_name`, when every clinic's name starts with it, is left out where the rest still tells them
    apart: "Berlin Mitte", not "Northwind Berlin Mitte" (never "am See" of "Klinik am See"). `shown`: how a
    value without a name reads (a name that reads the same keeps its code too)."""
    found: dict[str, dict[str, str]] = {}
    if NO_VALUE in {str(v) for v in wanted.get("campaign", ())}:
        found["campaign"] = {NO_VALUE: "no campaign"}  # orders and messages of no campaign: not "(none)"
    async with database.read_sessions() as session:
        for dimension in NAMED_BY_CODE:
            values = sorted({str(v) for v in wanted.get(dimension, ()) if v and v != NO_VALUE})
            if not values or len(values) > MAX_NAMED:
                continue
            value_column, name_column = _NAMED_BY[dimension]
            query = select(value_column, name_column).order_by(value_column)
            if dimension == "campaign":  # many: only those asked for; clinics and services are few
                query = query.where(value_column.in_(values))
            every = {
                str(v): str(n) for v, n in (await session.execute(query.limit(MAX_NAMED))).all() if v and n
            }
            if dimension == "location" and business_name.split():
                every = _without_business_word(every, business_name.split()[0])
            names = {v: every[v] for v in values if every.get(v) and every[v] != v}
            # Two campaigns may share a name (or a name may read as another's code): each such part keeps
            # its code beside it, so none is merged with another in a chart or a sentence.
            taken = Counter([*names.values(), *(shown(v) for v in values if v not in names)])
            names = {v: (f"{name} ({v})" if taken[name] > 1 else name) for v, name in names.items()}
            if names:
                found[dimension] = {**found.get(dimension, {}), **names}
    countries = {
        code: name
        for code in {str(v) for v in wanted.get("country", ())}
        if (name := COUNTRY_NAMES.territories.get(code.upper())) and len(code) == 2
    }
    if countries:  # ISO codes as people say them: "Germany", not "DE"
        found["country"] = countries
    return found


#: Countries are stored as ISO 3166 codes; answers name them in English, as they are written.
COUNTRY_NAMES = Locale.parse("en")


def _without_business_word(names: dict[str, str], word: str) -> dict[str, str]:
    firsts = {name.split(" ", 1)[0].casefold() for name in names.values()}
    rests = [name.split(" ", 1)[1].strip() if " " in name else "" for name in names.values()]
    if len(names) < 2 or firsts != {word.casefold()} or not all(rests) or len(set(rests)) != len(rests):
        return names
    return {value: name.split(" ", 1)[1].strip() for value, name in names.items()}


async def campaign_names(database: Database, slugs: Iterable[str]) -> dict[str, str]:
    """What to call each of these attribution keys: a campaign's name by its slug, the row of messages that
    were no campaign's in words (a slug whose campaign is gone keeps the slug)."""
    wanted = sorted(set(slugs) - {NO_VALUE})
    named = {NO_VALUE: NO_CAMPAIGN}
    if not wanted:
        return named
    async with database.read_sessions() as session:
        rows = (
            await session.execute(
                select(BulkMessaging.slug, BulkMessaging.name).where(BulkMessaging.slug.in_(wanted))
            )
        ).all()
    return named | {str(slug): str(name) for slug, name in rows}
