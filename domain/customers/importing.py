"""Reading a business's customer list: which column is which, and each row checked and normalised.

A row becomes an `ImportRow` (phone in E.164 with the business's default region, email lower-cased, tags,
consent per channel with its source and time) or a `Rejected` naming its line and the reason in words.
Nothing here touches the database: storage/customer_import.py merges the rows into it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from babel.core import get_global
from babel.languages import get_official_languages
from phonenumbers import timezone as phone_time_zones

from domain.vocabulary import Channel, ConsentStatus

#: The channels a customer list can give consent and a preference for.
CHANNELS = (Channel.SMS.value, Channel.WHATSAPP.value, Channel.EMAIL.value, Channel.TELEGRAM.value)


def _consent_columns(channel: str) -> tuple[str, ...]:
    """The names of a column of yes and no for `channel`: "SMS consent", "SMS-Einwilligung", "Einwilligung
    E-Mail", "SMS ok?", "E-Mail ja/nein", "WhatsApp?" (a question is answered yes or no). A bare "SMS",
    "WhatsApp" or "Email" is not one: it as often holds the number or address (`--map` it)."""
    spellings = (channel, "e_mail") if channel == Channel.EMAIL.value else (channel,)
    names = [f"consent_{channel}"]
    for spelling in spellings:
        names.append(f"einwilligung_{spelling}")
        names += [
            f"{spelling}_{suffix}"
            for suffix in (
                "consent",
                "opt_in",
                "einwilligung",
                "ok",
                "allowed",
                "erlaubt",
                "yes_no",
                "ja_nein",
            )
        ]
    return (
        *names,
        *(f"{name}?" for name in names if name.endswith(("_ok", "_allowed", "_erlaubt"))),
        *(f"{spelling}?" for spelling in spellings),
    )


#: The fields a row may fill, and the column names (lower-case, spaces and dashes as underscores) that
#: mean each when no --map says otherwise.
FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "external_ref": (
        "external_ref",
        "id",
        "customer_id",
        "patient_id",
        "patient_number",
        "patient_no",
        "patient_nr",
        "patientennummer",
        "patienten_nr",
        "patientennr",
        "patienten_id",
        "kundennr",
        "kunden_nr",
        "customer_no",
        "customer_number",
        "kundennummer",
        "reference",
        "ref",
    ),
    "name": ("name", "full_name", "customer", "patient", "patient_name", "customer_name"),
    "first_name": ("first_name", "firstname", "given_name", "vorname"),
    "last_name": ("last_name", "lastname", "surname", "family_name", "nachname"),
    "phone": (
        "phone",
        "phone_number",
        "phone_no",
        "mobile",
        "mobile_phone",
        "mobile_number",
        "mobil",
        "cell",
        "telephone",
        "telefon",
        "tel",
        "handy",
        "handynummer",
        "mobilnummer",
        "mobilfunknummer",
        "telefonnummer",
        "rufnummer",
    ),
    "email": ("email", "e_mail", "email_address", "mail", "e_mail_adresse", "emailadresse"),
    "country": ("country", "country_code", "land"),
    "locale": ("locale", "language", "lang", "sprache"),
    "timezone": ("timezone", "time_zone", "tz", "zeitzone"),
    "segment": ("segment",),
    "tags": ("tags", "tag", "labels"),
    "preferred_channel": ("preferred_channel", "channel", "bevorzugter_kanal", "kanal"),
    "consent_source": ("consent_source", "source"),
    "consent_at": ("consent_at", "consent_date", "consented_at", "opt_in_date", "einwilligungsdatum"),
    **{f"consent_{channel}": _consent_columns(channel) for channel in CHANNELS},
}
CONSENT_FIELDS = {f"consent_{channel}": channel for channel in CHANNELS}
#: Each field as the import page names it (the command line's --map takes the field's own name).
FIELD_WORDS: dict[str, str] = {
    "external_ref": "Patient or customer number",
    "name": "Full name",
    "first_name": "First name",
    "last_name": "Last name",
    "phone": "Phone number",
    "email": "Email address",
    "country": "Country",
    "locale": "Language",
    "timezone": "Time zone",
    "segment": "Segment",
    "tags": "Tags",
    "preferred_channel": "Preferred channel",
    "consent_source": "Where consent was given",
    "consent_at": "Date consent was given",
    "consent_sms": "SMS consent (yes/no)",
    "consent_whatsapp": "WhatsApp consent (yes/no)",
    "consent_email": "Email consent (yes/no)",
    "consent_telegram": "Telegram consent (yes/no)",
}
YES = {"yes", "y", "true", "1", "opted_in", "opt_in", "in", "ja", "x"}
NO = {"no", "n", "false", "0", "opted_out", "opt_out", "out", "nein"}
_EMAIL = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]{2,}")
_TAG_SPLIT = re.compile(r"[;|,]")
_SEGMENT = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
MAX_NAME = 200


class ColumnsRefused(ValueError):
    """The header cannot make customers (no name column, say); the message says what to do."""


def _key(column: str) -> str:
    # "Nr." is "nr", "SMS ok?" is "sms_ok?", "E-Mail ja/nein" is "e_mail_ja_nein".
    return re.sub(r"[\s\-./]+", "_", column.strip().lower().lstrip("\ufeff")).strip("_")


@dataclass(frozen=True)
class ColumnMap:
    """Which column of the file fills which field."""

    fields: dict[str, int]
    ignored: tuple[str, ...]
    #: The file's own column names, for reasons staff read ("SMS ok? 'vielleicht'", not "consent_sms").
    header: tuple[str, ...] = ()

    def column_of(self, field_name: str) -> str:
        """The file's name of the column that fills `field_name` (the field's name when not known)."""
        index = self.fields.get(field_name)
        return self.header[index] if index is not None and index < len(self.header) else field_name

    def value(self, values: list[str], field_name: str) -> str:
        """The field's text in this row, trimmed ("" when no column fills it, or the row is short)."""
        index = self.fields.get(field_name)
        if index is None or index >= len(values):
            return ""
        return values[index].strip()

    def rows_to_fix_header(self, header: list[str]) -> list[str]:
        """The header for the rows-to-fix file: the file's own, except that a column mapped by hand (a name
        the import does not know, "Handy Nr.") is named by its field ("phone"), so that importing the fixed
        rows again finds every column without mapping it again; a column the import would find but was told
        to leave out says so ("Tags (not imported)"), so it stays out. Two columns never get one name."""
        named = list(header)
        filled = set(self.fields.values())
        known = {key for synonyms in FIELD_NAMES.values() for key in synonyms}
        for index, column in enumerate(header):
            if index not in filled and _key(column) in known:
                named[index] = f"{column} (not imported)"
        taken = {_key(column) for column in named}
        for field_name, index in self.fields.items():
            if (
                index < len(named)
                and _key(named[index]) not in FIELD_NAMES[field_name]
                and field_name not in taken
            ):
                named[index] = field_name
                taken.add(field_name)
        return named

    @staticmethod
    def matched(
        header: list[str], overrides: Mapping[str, str] | None = None, *, detect: bool = True
    ) -> dict[str, int]:
        """field -> column index as `from_header` finds them, before asking for a name and a contact."""
        by_key = {_key(name): index for index, name in enumerate(header)}
        fields: dict[str, int] = {}
        for column, field_name in (overrides or {}).items():
            if field_name not in FIELD_NAMES:
                raise ColumnsRefused(
                    f"--map {column}={field_name}: no such field (one of {', '.join(FIELD_NAMES)})"
                )
            if _key(column) not in by_key:
                raise ColumnsRefused(f"--map {column}={field_name}: the file has no column {column!r}")
            fields[field_name] = by_key[_key(column)]
        for field_name, names in FIELD_NAMES.items():
            if field_name in fields or not detect:
                continue
            found = next(
                (by_key[name] for name in names if name in by_key and by_key[name] not in fields.values()),
                None,
            )
            if found is not None:
                fields[field_name] = found
        return fields

    @classmethod
    def from_header(
        cls, header: list[str], overrides: Mapping[str, str] | None = None, *, detect: bool = True
    ) -> ColumnMap:
        """Columns by their names; `overrides` maps a file's column to a field ("Mobil" -> "phone").
        `detect=False`: only `overrides` count (the upload page, where every column's field was chosen)."""
        fields = cls.matched(header, overrides, detect=detect)
        if "name" not in fields and not {"first_name", "last_name"} & set(fields):
            raise ColumnsRefused(
                "no name column: call one 'name' (or 'first_name' and 'last_name'), or map yours with "
                f"--map 'YOUR COLUMN=name' (columns found: {', '.join(header)})"
            )
        if not {"phone", "email"} & set(fields):
            raise ColumnsRefused(
                "no phone or email column: a customer needs one to be reached; map yours with "
                f"--map 'YOUR COLUMN=phone' (columns found: {', '.join(header)})"
            )
        used = set(fields.values())
        ignored = tuple(name for index, name in enumerate(header) if index not in used)
        return cls(fields, ignored, tuple(header))


@dataclass(frozen=True)
class ConsentGiven:
    channel: str
    status: ConsentStatus
    source: str
    at: datetime
    line: int
    #: Whether the file dated it (consent_at); an undated consent carries the import's time and never
    #: overrides a consent already on record.
    dated: bool = True
    #: A yes for a channel the row gives no address on (SMS without a number): recorded only if the customer
    #: already has one on file, never for an address added later.
    needs_address: bool = False


@dataclass
class ImportRow:
    line: int
    name: str
    phone: str | None
    email: str | None
    external_ref: str | None = None
    country: str | None = None
    #: Whether the file named the country (else it is the phone number's, and a stored one is kept).
    country_given: bool = False
    locale: str | None = None
    #: The language of the row's country when the row names none: a new customer's, never a stored one's.
    language_guessed: str | None = None
    timezone: str | None = None
    #: For a new customer the file gives no time zone: the zone of the row's country when it names another
    #: country than the import's (GB: Europe/London), else of a number from another country (a +43 mobile:
    #: Europe/Vienna); None when that country has several zones. Never overwrites a stored one.
    zone_guessed: str | None = None
    segment: str | None = None
    tags: set[str] = field(default_factory=set)
    preferred_channel: str | None = None
    #: The preferred channel is one the row gives no address on: kept only if the customer has one on file.
    preferred_needs_address: bool = False
    consents: list[ConsentGiven] = field(default_factory=list)
    #: What of the row was left out, in words (a phone number that is none): the row is imported without it
    #: and listed in the error file with this reason, to be fixed and imported again.
    left_out: str | None = None


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str


@dataclass(frozen=True)
class RowRules:
    """What a row is checked against: the business's region for numbers without a country code, and the
    time and source consent gets when the file does not say."""

    default_region: str
    imported_at: datetime
    default_source: str = "import"
    known_timezones: frozenset[str] = frozenset()


#: What `normalise_phone` says of a number: (E.164, region) or the reason it is none.
PhoneReading = tuple[str, str | None] | str


def read_row(
    line: int,
    values: list[str],
    columns: ColumnMap,
    rules: RowRules,
    phone_read: PhoneReading | None = None,
) -> ImportRow | Rejected:
    """`phone_read`: the row's phone number already read by `normalise_phone` (ahead, in another process), or
    None to read it here. A rejected row names every reason at once, so one correction makes it importable."""

    def get(field_name: str) -> str:
        return columns.value(values, field_name)

    problems: list[str] = []
    name = get("name") or " ".join(part for part in (get("first_name"), get("last_name")) if part)
    name = " ".join(name.split())
    if not name:
        problems.append("no name")
    elif len(name) > MAX_NAME:
        problems.append(f"the name is longer than {MAX_NAME} characters")
    raw_phone, raw_email = get("phone"), get("email")
    if not raw_phone and not raw_email:
        problems.append("neither a phone number nor an email address")
    phone: str | None = None
    phone_region: str | None = None
    phone_refused: str | None = None
    if raw_phone:
        normalised = (
            phone_read
            if phone_read is not None
            else read_phone(raw_phone, row_country(values, columns), rules.default_region)
        )
        if isinstance(normalised, str):
            phone_refused = normalised
        else:
            phone, phone_region = normalised
    email: str | None = None
    email_refused: str | None = None
    if raw_email:
        email = raw_email.lower()
        if not _EMAIL.fullmatch(email) or len(email) > 254:
            email, email_refused = None, f"{raw_email!r} is not an email address"
            if phone is None:
                problems.extend(part for part in (phone_refused, email_refused) if part)
    if phone_refused is not None and email is None and not raw_email:
        problems.append(phone_refused)
    row = ImportRow(line, name, phone, email)
    if phone_refused is not None:
        row.left_out = f"imported without its phone number: {phone_refused}"
    if email_refused is not None:
        # As with a bad number: the rest of the row is good, and the email comes in once it is fixed.
        row.left_out = f"imported without its email address: {email_refused}"
    row.external_ref = get("external_ref")[:64] or None
    country = get("country").upper()
    country = "GB" if country == "UK" else country
    if country:
        if len(country) != 2 or not country.isalpha():
            problems.append(f"country {country!r} is not a two-letter code such as DE or GB")
            country = ""
        else:
            row.country = country
            row.country_given = True
    if country:
        if country != rules.default_region:
            # The country's one zone; else its number's, when the number is of that country (+1 212, US).
            row.zone_guessed = zone_of_country(country) or (
                zone_of_number(phone) if phone is not None and phone_region == country else None
            )
    else:
        row.country = phone_region
        if phone is not None and phone_region and phone_region != rules.default_region:
            row.zone_guessed = zone_of_number(phone) or zone_of_country(phone_region)
    if (
        row.zone_guessed is not None
        and rules.known_timezones
        and row.zone_guessed not in rules.known_timezones
    ):
        row.zone_guessed = None
    row.locale = get("locale")[:16] or None
    if row.locale is None and row.country_given and row.country and row.country != rules.default_region:
        # A new patient of another country than the business's reads its language, not the business's: a
        # British patient of a German clinic gets English (a language without templates falls back to them).
        # Only a country the row names: a German patient's Polish mobile says nothing of what they read.
        row.language_guessed = language_of_country(row.country)
    timezone = get("timezone")
    if timezone:
        if rules.known_timezones and timezone not in rules.known_timezones:
            problems.append(f"unknown timezone {timezone!r} (use a name such as Europe/Berlin)")
        else:
            row.timezone = timezone
    segment = get("segment").lower()
    if segment:
        if not _SEGMENT.fullmatch(segment):
            problems.append(f"segment {segment!r}: use up to 32 letters, digits, - or _")
        else:
            row.segment = segment
    for tag in _TAG_SPLIT.split(get("tags")):
        tag = " ".join(tag.split()).lower()
        if tag:
            row.tags.add(tag[:64])
    # What the row gives for a channel it has no address on (a yes to SMS without a number) stands only if the
    # customer already has that address on file (a consent refresh by patient number): never for an address
    # added later. The import decides that once it knows the customer (storage/customer_import.py).
    preferred = get("preferred_channel").lower()
    if preferred:
        if preferred not in CHANNELS:
            problems.append(f"preferred channel {preferred!r} is not one of {', '.join(CHANNELS)}")
        elif phone_refused is not None and preferred in PHONE_CHANNELS:
            row.left_out = (
                f"imported without its phone number or its preferred channel {preferred}: {phone_refused}"
            )
        elif email_refused is not None and preferred == Channel.EMAIL.value:
            row.left_out = (
                f"imported without its email address or its preferred channel email: {email_refused}"
            )
        else:
            row.preferred_channel = preferred
            row.preferred_needs_address = _no_address(preferred, phone, email)
    source = (get("consent_source") or rules.default_source)[:32]
    at = rules.imported_at
    raw_at = get("consent_at")
    if raw_at:
        parsed = parse_moment(raw_at)
        if parsed is None:
            problems.append(
                f"consent date “{raw_at}” is not a date (use 2026-03-01, 01.03.2026 or 2026-03-01T09:30)"
            )
        elif parsed > rules.imported_at:
            problems.append(f"consent date {raw_at} is in the future")
        else:
            at = parsed
    for field_name, channel in CONSENT_FIELDS.items():
        answer = get(field_name).lower()
        if not answer:
            continue
        if answer in YES:
            status = ConsentStatus.OPTED_IN
        elif answer in NO:
            status = ConsentStatus.OPTED_OUT
        else:
            problems.append(f"{columns.column_of(field_name)} {answer!r}: say yes or no (or leave it empty)")
            continue
        # A yes is given for an address: without the row's own read, it could land on one already stored.
        if status is ConsentStatus.OPTED_IN and phone_refused is not None and channel in PHONE_CHANNELS:
            row.left_out = f"imported without its phone number or its phone consent: {phone_refused}"
            continue
        if status is ConsentStatus.OPTED_IN and email_refused is not None and channel == Channel.EMAIL.value:
            row.left_out = f"imported without its email address or its email consent: {email_refused}"
            continue
        # A no is kept whatever: it can only hold messages back.
        needs_address = status is ConsentStatus.OPTED_IN and _no_address(channel, phone, email)
        row.consents.append(
            ConsentGiven(channel, status, source, at, line, dated=bool(raw_at), needs_address=needs_address)
        )
    if problems:
        return Rejected(line, "; ".join(problems))
    return row


def _no_address(channel: str, phone: str | None, email: str | None) -> bool:
    """Whether the row lacks the address `channel` is given for (Telegram's chat is never in a file)."""
    if channel in PHONE_CHANNELS:
        return phone is None
    return channel == Channel.EMAIL.value and email is None


#: Channels whose consent is given for a phone number.
PHONE_CHANNELS = frozenset({Channel.SMS.value, Channel.WHATSAPP.value})


def zone_of_number(e164: str) -> str | None:
    """The one time zone a number's prefix has ("+43…": Europe/Vienna); None when it has several or none known
    (a UK mobile)."""
    zones = [
        zone
        for zone in phone_time_zones.time_zones_for_number(phonenumbers.parse(e164))
        if zone != phone_time_zones.UNKNOWN_TIMEZONE
    ]
    return zones[0] if len(zones) == 1 else None


@lru_cache(maxsize=512)
def zone_of_country(region: str) -> str | None:
    """A country's time zone (GB: Europe/London, AT: Europe/Vienna) when its clocks all keep one time (DE's
    Busingen keeps Berlin's); None for a country whose clocks differ (the US, Spain with the Canaries) or one
    not known."""
    zones = get_global("territory_zones").get(region.upper(), ())
    if not zones:
        return None
    return zones[0] if all(_same_clock(zones[0], other) for other in zones[1:]) else None


@lru_cache(maxsize=512)
def language_of_country(region: str) -> str | None:
    """The first official language of a country (DE: de, CH: de, GB: en), or None for one not known."""
    languages = get_official_languages(region.upper(), de_facto=True) if region else ()
    return languages[0] if languages else None


def _same_clock(one: str, other: str) -> bool:
    """Whether two zones show the same time in winter and in summer (2026's January and July)."""
    moments = (datetime(2026, 1, 15, 12, tzinfo=UTC), datetime(2026, 7, 15, 12, tzinfo=UTC))
    try:
        return all(
            m.astimezone(ZoneInfo(one)).utcoffset() == m.astimezone(ZoneInfo(other)).utcoffset()
            for m in moments
        )
    except (ZoneInfoNotFoundError, ValueError):
        return False


def row_country(values: list[str], columns: ColumnMap) -> str:
    """The row's own country when it names one phone numbers know ("AT"; "UK" is GB; "" for none)."""
    country = columns.value(values, "country").upper()
    country = "GB" if country == "UK" else country
    return country if country in phonenumbers.SUPPORTED_REGIONS else ""


def read_phone(raw: str, country: str, default_region: str) -> PhoneReading:
    """A row's number: one without +code is read as one of the row's own `country` (a clinic group's list
    may hold patients of several countries), and if it is none of that country's, as a mobile of
    `default_region`'s (a Swiss resident's German mobile). Not as a landline: "07700 900123" beside UK is a
    mistyped British number, not a German landline in area 07700. The reason, when none, names the row's
    country."""
    if not country or country == default_region:
        return normalise_phone(raw, default_region)
    theirs = normalise_phone(raw, country)
    if not isinstance(theirs, str):
        return theirs
    ours = normalise_phone(raw, default_region)
    return ours if not isinstance(ours, str) and _is_mobile(ours[0]) else theirs


_MOBILE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


def _is_mobile(e164: str) -> bool:
    return phonenumbers.number_type(phonenumbers.parse(e164)) in _MOBILE_TYPES


def normalise_phones(numbers: list[tuple[str, str]], default_region: str) -> list[PhoneReading | None]:
    """`read_phone` of each (number, row's country) (None for an empty number): what a worker process reads
    ahead of the rows."""
    return [read_phone(raw, country, default_region) if raw else None for raw, country in numbers]


def normalise_phone(raw: str, default_region: str) -> PhoneReading:
    """(E.164 such as "+4915112345678", its country's region), or the reason in words why `raw` is no
    phone number. A number without a country code is read as one of `default_region`'s."""
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        return f"{raw!r} is not a phone number"
    if not phonenumbers.is_valid_number(number):
        if not raw.lstrip().startswith(("+", "00")):
            return (
                f"{raw!r} is not a valid {default_region} number: check its digits "
                "(a number from another country needs its +code)"
            )
        return f"{raw!r} is not a valid phone number"
    code = number.country_code or 0
    region = phonenumbers.region_code_for_country_code(code)
    # The f-string is E.164 for all but numbers kept with a leading zero (Italy's landlines: +39 06...),
    # which phonenumbers' own formatting keeps; it is the slower path, so only for them.
    e164 = (
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if number.italian_leading_zero
        else f"+{code}{number.national_number}"
    )
    return e164, (None if region == "ZZ" else region)


def phones_typed(text: str, regions: Sequence[str]) -> tuple[str, ...]:
    """What staff typed in a search, read as a phone number of each of `regions` in turn (the business's
    country, then its clinics' countries: "07700 162625" is London's, "(202) 555-0100" New York's), as E.164;
    empty when it is none (fewer than six digits, or no valid number anywhere)."""
    if sum(c.isascii() and c.isdigit() for c in text) < 6:
        return ()
    found: dict[str, None] = {}
    for region in regions:
        reading = normalise_phone(text, region)
        if isinstance(reading, tuple):
            found[reading[0]] = None
        if text.lstrip().startswith(("+", "00")):
            break  # a number with its country code reads the same everywhere
    return tuple(found)


_DOTTED_DAY = re.compile(r"(?P<day>\d{1,2})\.(?P<month>\d{1,2})\.(?P<year>\d{4})")


def parse_moment(raw: str) -> datetime | None:
    """A date or a date and time in ISO 8601 (UTC unless it says otherwise), or a day as German lists write
    it, 01.03.2026 (day first: the dots say so)."""
    dotted = _DOTTED_DAY.fullmatch(raw.strip())
    if dotted:
        try:
            return datetime(int(dotted["year"]), int(dotted["month"]), int(dotted["day"]), tzinfo=UTC)
        except ValueError:
            return None
    try:
        if len(raw) == 10:
            return datetime.combine(date.fromisoformat(raw), time(), UTC)
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def region_of(locale: str) -> str:
    """The territory of a locale ("en_GB" -> "GB"); "" when it names none."""
    parts = re.split(r"[_-]", locale)
    return parts[1].upper() if len(parts) > 1 and len(parts[1]) == 2 else ""


def header_and_rows(lines: Iterable[list[str]]) -> tuple[list[str], Iterator[list[str]]]:
    iterator = iter(lines)
    try:
        header = next(iterator)
    except StopIteration:
        raise ColumnsRefused("the file is empty: its first line must name the columns") from None
    return header, iterator
