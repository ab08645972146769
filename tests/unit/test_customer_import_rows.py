"""Reading a customer list's rows: columns found by name, phones to E.164, everything else checked."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.customers.importing import (
    ColumnMap,
    ColumnsRefused,
    ImportRow,
    Rejected,
    RowRules,
    normalise_phone,
    read_phone,
    read_row,
    region_of,
)
from domain.vocabulary import ConsentStatus

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)
RULES = RowRules("DE", NOW, "import", frozenset({"Europe/Berlin", "Europe/London"}))
HEADER = [
    "Patient No",
    "Vorname",
    "Nachname",
    "Mobil",
    "E-Mail",
    "SMS opt-in",
    "Email consent",
    "Tags",
    "Consent date",
]


def row(*values: str, header: list[str] = HEADER) -> ImportRow | Rejected:
    return read_row(2, list(values), ColumnMap.from_header(header), RULES)


def test_columns_are_found_by_their_usual_names_in_english_and_german() -> None:
    columns = ColumnMap.from_header([*HEADER, "Notes"])
    assert columns.fields == {
        "external_ref": 0,
        "first_name": 1,
        "last_name": 2,
        "phone": 3,
        "email": 4,
        "consent_sms": 5,
        "consent_email": 6,
        "tags": 7,
        "consent_at": 8,
    }
    assert columns.ignored == ("Notes",)
    german = ColumnMap.from_header(
        ["Name", "Telefon", "SMS-Einwilligung", "Einwilligung WhatsApp", "Sprache", "Land"]
    )
    assert german.fields == {
        "name": 0,
        "phone": 1,
        "consent_sms": 2,
        "consent_whatsapp": 3,
        "locale": 4,
        "country": 5,
    }


def test_a_column_of_yes_and_no_is_consent_under_the_names_practices_give_it() -> None:
    columns = ColumnMap.from_header(
        ["Name", "Telefon", "SMS?", "E-Mail", "Einwilligung E-Mail", "WhatsApp ok?", "Telegram ja/nein"]
    )
    assert columns.fields == {
        "name": 0,
        "phone": 1,
        "consent_sms": 2,
        "email": 3,
        "consent_email": 4,
        "consent_whatsapp": 5,
        "consent_telegram": 6,
    }
    read = read_row(2, ["Uwe Kern", "0151 23456789", "ja", "", "", "nein", ""], columns, RULES)
    assert isinstance(read, ImportRow)
    assert [(c.channel, c.status) for c in read.consents] == [
        ("sms", ConsentStatus.OPTED_IN),
        ("whatsapp", ConsentStatus.OPTED_OUT),
    ]
    # "E-Mail?" is the question (consent), "E-Mail" the address, whichever comes first.
    asked = ColumnMap.from_header(["Name", "E-Mail?", "E-Mail"])
    assert (asked.fields["email"], asked.fields["consent_email"]) == (2, 1)
    # A bare "SMS", "WhatsApp" or "Email" column as often holds the number or address: left to be mapped.
    bare = ColumnMap.from_header(["Name", "Telefon", "SMS", "WhatsApp"])
    assert "consent_sms" not in bare.fields and bare.ignored == ("SMS", "WhatsApp")


def test_a_map_names_a_column_the_names_do_not_find() -> None:
    columns = ColumnMap.from_header(["Wer", "Nummer"], {"Wer": "name", "Nummer": "phone"})
    assert columns.fields == {"name": 0, "phone": 1}


def test_the_rows_to_fix_file_names_hand_mapped_columns_so_it_imports_again_without_mapping() -> None:
    header = ["Nr", "Patient", "Handy Nr.", "E-Mail", "Tags", "SMS ok?"]
    by_hand = ColumnMap.from_header(
        header,
        {
            "Nr": "external_ref",
            "Patient": "name",
            "Handy Nr.": "phone",
            "E-Mail": "email",
            "SMS ok?": "consent_sms",
        },
        detect=False,
    )
    fixed = by_hand.rows_to_fix_header(header)
    # "SMS ok?" is a name the import knows, so it stays as the file wrote it.
    assert fixed == ["external_ref", "Patient", "phone", "E-Mail", "Tags (not imported)", "SMS ok?"]
    again = ColumnMap.from_header(fixed)
    assert {field: fixed[index] for field, index in again.fields.items()} == {
        "external_ref": "external_ref",
        "name": "Patient",
        "phone": "phone",
        "email": "E-Mail",
        "consent_sms": "SMS ok?",
    }, "the same fields, found by name, and Tags still left out"
    detected = ColumnMap.from_header(HEADER)
    assert detected.rows_to_fix_header(HEADER) == HEADER, "a file whose names were found keeps them"
    # A column called "phone" left out while another is mapped to phone by hand: the hand-mapped one is "phone".
    clash = ["Name", "phone", "Mobile (cell)", "Email"]
    chosen = ColumnMap.from_header(
        clash, {"Name": "name", "Mobile (cell)": "phone", "Email": "email"}, detect=False
    )
    renamed = chosen.rows_to_fix_header(clash)
    assert renamed == ["Name", "phone (not imported)", "phone", "Email"]
    assert ColumnMap.from_header(renamed).fields == {"name": 0, "phone": 2, "email": 3}


@pytest.mark.parametrize(
    ("header", "overrides", "says"),
    [
        (["Mobile", "Email"], None, "no name column"),
        (["Name", "Notes"], None, "no phone or email column"),
        (["Name", "Tel"], {"Fax": "phone"}, "the file has no column 'Fax'"),
        (["Name", "Tel"], {"Tel": "fax"}, "no such field"),
    ],
)
def test_a_header_that_cannot_make_customers_is_refused_in_words(
    header: list[str], overrides: dict[str, str] | None, says: str
) -> None:
    with pytest.raises(ColumnsRefused, match=says):
        ColumnMap.from_header(header, overrides)


def test_a_good_row_is_normalised() -> None:
    read = row(
        "P-1",
        " Anna ",
        "Schmidt",
        "0151 2345 6789",
        "Anna@Example.DE",
        "ja",
        "no",
        "VIP; recall|vip",
        "2025-11-02",
    )
    assert isinstance(read, ImportRow)
    assert (read.external_ref, read.name, read.phone, read.email) == (
        "P-1",
        "Anna Schmidt",
        "+4915123456789",
        "anna@example.de",
    )
    assert read.country == "DE"
    assert read.tags == {"vip", "recall"}
    assert [(c.channel, c.status, c.at, c.source) for c in read.consents] == [
        ("sms", ConsentStatus.OPTED_IN, datetime(2025, 11, 2, tzinfo=UTC), "import"),
        ("email", ConsentStatus.OPTED_OUT, datetime(2025, 11, 2, tzinfo=UTC), "import"),
    ]


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (("P-2", "", "", "0151 23456789", "", "", "", "", ""), "no name"),
        (("P-3", "Ben", "", "", "", "", "", "", ""), "neither a phone number nor an email address"),
        (
            ("P-4", "Cara", "", "12345", "", "", "", "", ""),
            "'12345' is not a valid DE number: check its digits",
        ),
        (("P-5", "Dan", "", "+44 7700 900123", "", "", "", "", ""), "is not a valid phone number"),
        (("P-6", "Eve", "", "call me", "", "", "", "", ""), "'call me' is not a phone number"),
        (("P-7", "Finn", "", "", "finn@", "", "", "", ""), "'finn@' is not an email address"),
        (("P-8", "Greta", "", "", "g@x.de", "maybe", "", "", ""), "SMS opt-in 'maybe': say yes or no"),
        (("P-9", "Hans", "", "", "h@x.de", "yes", "", "", "2027-01-01"), "is in the future"),
        (("P-10", "Ida", "", "", "i@x.de", "yes", "", "", "yesterday"), "is not a date"),
    ],
)
def test_a_bad_row_is_rejected_with_its_reason(values: tuple[str, ...], reason: str) -> None:
    read = row(*values)
    assert isinstance(read, Rejected) and read.line == 2
    assert reason in read.reason


def test_a_row_wrong_in_several_ways_names_every_reason_at_once() -> None:
    """One correction, not one per try: whoever fixes the error file sees all that is wrong with a row."""
    read = row("P-11", "", "", "12345", "jo@", "maybe", "", "", "yesterday")
    assert isinstance(read, Rejected)
    assert read.reason == (
        "no name; '12345' is not a valid DE number: check its digits (a number from another country needs its "
        "+code); 'jo@' is not an email address; "
        "consent date “yesterday” is not a date (use 2026-03-01, 01.03.2026 or 2026-03-01T09:30); "
        "SMS opt-in 'maybe': say yes or no (or leave it empty)"
    )
    # Its number alone is wrong, with a good email: imported without it, as before.
    kept = row("P-12", "Jo", "", "12345", "jo@example.de", "", "", "", "")
    assert isinstance(kept, ImportRow) and kept.phone is None and kept.left_out is not None


def test_numbers_with_a_country_code_keep_theirs_whatever_the_default() -> None:
    assert normalise_phone("+44 7911 123456", "DE") == ("+447911123456", "GB")
    assert normalise_phone("0044 7911 123456", "DE") == ("+447911123456", "GB")
    assert normalise_phone("07911 123456", "GB") == ("+447911123456", "GB")
    assert normalise_phone("030 1234567", "DE") == ("+49301234567", "DE")


def test_the_default_region_comes_from_the_locale() -> None:
    assert region_of("en_GB") == "GB"
    assert region_of("de-DE") == "DE"
    assert region_of("en") == ""


def test_a_row_with_a_bad_number_and_a_good_email_keeps_what_it_can_and_says_what_it_left_out() -> None:
    read = row("P-11", "Jana", "", "12345", "jana@x.de", "yes", "yes", "", "")
    assert isinstance(read, ImportRow) and read.phone is None and read.email == "jana@x.de"
    assert [c.channel for c in read.consents] == ["email"]  # the SMS consent was for that number
    assert read.left_out is not None and read.left_out.startswith("imported without its phone number")
    preferring = read_row(
        2,
        ["Kai", "12345", "kai@x.de", "whatsapp"],
        ColumnMap.from_header(["Name", "Handynummer", "E-Mail-Adresse", "Kanal"]),
        RULES,
    )
    assert isinstance(preferring, ImportRow) and preferring.preferred_channel is None
    assert preferring.left_out is not None and "preferred channel whatsapp" in preferring.left_out
    # A good number and a bad email: the same the other way round, the email's consent and preference left out.
    mailless = read_row(
        2,
        ["Mo", "0151 23456789", "mo@", "email", "yes", "yes"],
        ColumnMap.from_header(
            ["Name", "Phone", "Email", "Preferred channel", "SMS consent", "Email consent"]
        ),
        RULES,
    )
    assert isinstance(mailless, ImportRow) and (mailless.phone, mailless.email) == ("+4915123456789", None)
    assert mailless.preferred_channel is None and [c.channel for c in mailless.consents] == ["sms"]
    assert (
        mailless.left_out
        == "imported without its email address or its email consent: 'mo@' is not an email address"
    )
    # A no stands whatever: it can only hold messages back, on whichever address is on file.
    said_no = read_row(
        2,
        ["Nia", "0151 23456789", "nia@", "no", "12345"],
        ColumnMap.from_header(["Name", "Phone", "Email", "Email consent", "Landline"]),
        RULES,
    )
    assert isinstance(said_no, ImportRow) and [(c.channel, c.status) for c in said_no.consents] == [
        ("email", ConsentStatus.OPTED_OUT)
    ]
    # Both wrong: both reasons, so one fix is enough.
    both = row("P-12", "Lia", "", "12345", "lia@", "", "", "", "")
    assert isinstance(both, Rejected)
    assert (
        "'12345' is not a valid DE number" in both.reason and "'lia@' is not an email address" in both.reason
    )


def test_a_yes_without_its_address_is_marked_to_stand_only_on_an_address_on_file() -> None:
    """No number in the row (empty, or no phone column at all): an SMS or WhatsApp yes stands only if the
    customer already has a number on file (the import decides, once it knows them); a no always stands."""
    header = ["Name", "E-Mail", "SMS consent", "WhatsApp consent", "Email consent"]
    said_yes = row("Ida", "ida@x.de", "ja", "yes", "yes", header=header)
    assert isinstance(said_yes, ImportRow) and said_yes.left_out is None
    assert [(c.channel, c.needs_address) for c in said_yes.consents] == [
        ("sms", True),
        ("whatsapp", True),
        ("email", False),
    ]
    prefers = row("Pia", "pia@x.de", "", "", "", "sms", header=[*header, "Preferred channel"])
    assert (
        isinstance(prefers, ImportRow)
        and prefers.preferred_channel == "sms"
        and prefers.preferred_needs_address
    )
    no_email = row("Udo", "0151 23456789", "yes", header=["Name", "Mobile", "Email consent"])
    assert isinstance(no_email, ImportRow) and [(c.channel, c.needs_address) for c in no_email.consents] == [
        ("email", True)
    ]
    said_no = row("Ole", "ole@x.de", "nein", "", "", header=header)
    assert isinstance(said_no, ImportRow)
    assert [(c.channel, c.status, c.needs_address) for c in said_no.consents] == [
        ("sms", ConsentStatus.OPTED_OUT, False)
    ]
    with_number = row("P-12", "Ute", "", "0151 23456789", "ute@x.de", "yes", "", "", "")
    assert isinstance(with_number, ImportRow) and [c.needs_address for c in with_number.consents] == [False]


def test_a_foreign_mobile_brings_its_own_time_zone_and_italian_numbers_keep_their_zero() -> None:
    rules = RowRules("DE", NOW, "import", frozenset({"Europe/Berlin", "Europe/Vienna", "America/New_York"}))
    columns = ColumnMap.from_header(["Name", "Phone"])
    vienna = read_row(2, ["Hans", "+43 664 1234567"], columns, rules)
    berlin = read_row(3, ["Ida", "0151 23456789"], columns, rules)
    assert isinstance(vienna, ImportRow) and vienna.zone_guessed == "Europe/Vienna"
    assert isinstance(berlin, ImportRow) and berlin.zone_guessed is None  # the business's own: its default
    assert normalise_phone("+39 06 1234 5678", "DE") == ("+390612345678", "IT")


def test_a_row_from_another_country_gets_that_countrys_zone_when_it_has_one() -> None:
    """A UK mobile names no zone by its prefix, but the UK has one; the row's own country says where the
    patient lives (a German mobile of a Swiss resident), and a country of several zones guesses none."""
    zones = frozenset(
        {"Europe/Berlin", "Europe/London", "Europe/Zurich", "Europe/Vienna", "America/New_York"}
    )
    rules = RowRules("DE", NOW, "import", zones)
    columns = ColumnMap.from_header(["Name", "Phone", "Country"])

    def zone(phone: str, country: str = "") -> str | None:
        read = read_row(2, ["Tom", phone, country], columns, rules)
        assert isinstance(read, ImportRow), read
        return read.zone_guessed

    assert zone("+44 7911 123456") == "Europe/London"
    assert zone("+44 7911 123456", "GB") == "Europe/London"
    assert zone("0151 23456789", "CH") == "Europe/Zurich"  # lives in Switzerland, keeps a German mobile
    assert zone("+43 664 1234567", "DE") is None  # lives here: the business's zone
    assert zone("+1 212 555 0100", "US") == "America/New_York"  # many zones: the number of that country says
    assert zone("+1 212 555 0100", "CA") is None  # a number of another country than the row's says nothing
    assert zone("+44 7911 123456", "UK") == "Europe/London"  # UK is GB
    assert zone("+1 212 555 0100") == "America/New_York"
    assert zone("+44 7911 123456", "FR") is None, "a zone not in the known list is not guessed"
    austrian = RowRules("AT", NOW, "import", zones)
    german = read_row(2, ["Ute", "0151 23456789", "DE"], columns, austrian)
    assert isinstance(german, ImportRow) and german.zone_guessed == "Europe/Berlin", (
        "Busingen keeps Berlin's time"
    )


def test_a_number_wrong_for_the_rows_country_is_read_as_the_businesss_only_when_it_is_a_mobile_there() -> (
    None
):
    """A Swiss resident's German mobile is one; "07700 900123" beside UK is a mistyped British number, not the
    German landline it would make in area 07700, and is left out with the row's country named."""
    assert read_phone("0151 23456789", "CH", "DE") == ("+4915123456789", "DE")
    assert read_phone("044 668 18 00", "CH", "DE") == ("+41446681800", "CH")
    assert read_phone("07700 900123", "GB", "DE") == (
        "'07700 900123' is not a valid GB number: check its digits (a number from another country needs its +code)"
    )
    assert isinstance(read_phone("030 1234567", "CH", "DE"), str), "a German landline is not guessed"


def test_a_utf8_file_is_never_called_garbled_for_a_letter_cut_at_the_preview_s_edge() -> None:
    from switchboard.import_uploads import HEAD_BYTES, file_columns

    row = "Jürgen;0151 23456789\n"
    for pad in range(22):  # a row is 22 bytes: the edge falls inside "ü" for one of these
        content = ("Name;Phone\n" + "x" * pad + "\n" + row * (HEAD_BYTES // len(row.encode()) + 5)).encode()
        assert not file_columns(content, "utf-8-sig", None).garbled, pad
    assert file_columns("Name;Phone\nJörg;0151 23456789\n".encode("cp1252"), "utf-8-sig", None).garbled


def test_a_german_practice_s_patient_number_column_is_found_by_its_own_name() -> None:
    """The walk's list headed "Patientennummer" was told "columns not imported: Patientennummer"."""
    for header in ("Patientennummer", "Patienten-Nr.", "Kundennr"):
        read = read_row(
            2,
            ["P-7", "Jürgen Groß", "0151 23456789"],
            ColumnMap.from_header([header, "Name", "Mobil"]),
            RULES,
        )
        assert isinstance(read, ImportRow) and read.external_ref == "P-7", header


def test_a_german_day_is_a_consent_date() -> None:
    """The walk's "Einwilligungsdatum" 01.03.2026 rejected the whole row."""
    columns = ColumnMap.from_header(["Name", "Mobil", "SMS-Einwilligung", "Einwilligungsdatum"])
    read = read_row(2, ["Jürgen Groß", "0151 23456789", "ja", "01.03.2026"], columns, RULES)
    assert isinstance(read, ImportRow) and read.consents[0].at.date().isoformat() == "2026-03-01"
    refused = read_row(2, ["Jürgen Groß", "0151 23456789", "ja", "31.02.2026"], columns, RULES)
    assert not isinstance(refused, ImportRow) and "“31.02.2026” is not a date" in refused.reason
