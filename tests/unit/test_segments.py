"""SMS encoding, segment counting and pricing, including the boundaries carriers are strict about."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.messages.pricing import DEFAULT_PRICE_BOOK, SMS_PRICE_BY_COUNTRY, PriceBook, estimate_cost
from domain.messages.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    MAX_SMS_CHARACTERS,
    MessageTooLong,
    SmsShape,
    check_sms_length,
    sms_shape,
)
from domain.vocabulary import Channel, MessageCategory


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", SmsShape("GSM-7", 0, 0, 0)),
        ("a" * 160, SmsShape("GSM-7", 160, 1, 160)),
        ("a" * 161, SmsShape("GSM-7", 161, 2, 161)),
        ("a" * 306, SmsShape("GSM-7", 306, 2, 306)),
        ("a" * 307, SmsShape("GSM-7", 307, 3, 307)),
        ("€", SmsShape("GSM-7", 2, 1, 1)),
        ("a" * 158 + "€", SmsShape("GSM-7", 160, 1, 159)),
        ("a" * 159 + "€", SmsShape("GSM-7", 161, 2, 160)),
        ("😀", SmsShape("UCS-2", 2, 1, 1)),
        ("ж" * 70, SmsShape("UCS-2", 70, 1, 70)),
        ("ж" * 71, SmsShape("UCS-2", 71, 2, 71)),
        ("ж" * 134, SmsShape("UCS-2", 134, 2, 134)),
        ("ж" * 135, SmsShape("UCS-2", 135, 3, 135)),
    ],
)
def test_shape_at_segment_boundaries(text: str, expected: SmsShape) -> None:
    assert sms_shape(text) == expected


@pytest.mark.parametrize("extension", sorted(GSM7_EXTENSION))
def test_every_extension_character_takes_two_septets(extension: str) -> None:
    shape = sms_shape("a" + extension)
    assert (shape.encoding, shape.units, shape.characters) == ("GSM-7", 3, 2)


def test_extension_characters_are_exactly_the_escaped_ones() -> None:
    assert set("\f^{}\\[~]|€") == GSM7_EXTENSION


def test_escape_pair_does_not_straddle_two_parts() -> None:
    # 306 septets would fill two parts exactly if the pair at septets 153-154 could be cut; it cannot,
    # so part one carries 152 septets and the last septet spills into a third part.
    text = "a" * 152 + "[" + "a" * 152
    shape = sms_shape(text)
    assert shape.units == 306
    assert shape.segments == 3


def test_escape_pair_ending_exactly_on_the_part_boundary() -> None:
    text = "a" * 151 + "[" + "a" * 153
    assert sms_shape(text) == SmsShape("GSM-7", 306, 2, 305)


def test_surrogate_pair_does_not_straddle_two_parts() -> None:
    text = "ж" * 66 + "😀" + "ж" * 66
    shape = sms_shape(text)
    assert (shape.encoding, shape.units) == ("UCS-2", 134)
    assert shape.segments == 3


def test_emoji_ending_exactly_on_the_part_boundary() -> None:
    assert sms_shape("ж" * 65 + "😀" + "ж" * 67).segments == 2


def test_single_emoji_switches_whole_message_to_ucs2() -> None:
    shape = sms_shape("a" * 100 + "👍")
    assert shape == SmsShape("UCS-2", 102, 2, 101)


def test_euro_alone_is_gsm7_with_two_septets() -> None:
    assert sms_shape("€") == SmsShape("GSM-7", 2, 1, 1)


@pytest.mark.parametrize("letter", list("ΔΦΓΛΩΠΨΣΘΞ"))
def test_greek_capitals_in_gsm7_cost_one_septet(letter: str) -> None:
    assert sms_shape(letter * 160) == SmsShape("GSM-7", 160, 1, 160)


@pytest.mark.parametrize("letter", list("ΑΒαβω"))
def test_other_greek_letters_need_ucs2(letter: str) -> None:
    assert sms_shape(letter).encoding == "UCS-2"


def test_capital_c_cedilla_is_gsm7_small_is_not() -> None:
    # 3GPP TS 23.038 position 0x09 is Ç; ç has no place in the basic set or the extension table.
    assert sms_shape("Ç").encoding == "GSM-7"
    assert sms_shape("ç").encoding == "UCS-2"


@pytest.mark.parametrize("text", ["@£$¥èéùìòØøÅåÆæßÉ", "¡¿ÄÖÑÜ§äöñüà", "line\nbreak\rreturn", "¤"])
def test_accented_basic_set_stays_gsm7(text: str) -> None:
    shape = sms_shape(text)
    assert (shape.encoding, shape.units) == ("GSM-7", len(text))


@pytest.mark.parametrize("text", ["á", "ê", "’", "“quoted”", "\u00a0", "\t", "`"])
def test_common_lookalikes_force_ucs2(text: str) -> None:
    assert sms_shape(text).encoding == "UCS-2"


def test_gsm7_basic_set_has_the_127_printable_positions() -> None:
    assert len(GSM7_BASIC) == 127  # 128 positions minus the escape code


def test_length_limit() -> None:
    check_sms_length("a" * MAX_SMS_CHARACTERS)
    with pytest.raises(MessageTooLong, match="1,601"):
        check_sms_length("a" * 1601)
    assert sms_shape("a" * 1601).is_too_long
    assert not sms_shape("a" * 1600).is_too_long


gsm_text = st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION), max_size=700)
any_text = st.text(max_size=500)


@given(gsm_text)
def test_gsm7_parts_never_exceed_capacity(text: str) -> None:
    shape = sms_shape(text)
    assert shape.encoding == "GSM-7"
    if shape.units > 160:
        assert 153 * (shape.segments - 1) < shape.units <= 153 * shape.segments
        assert shape.segments <= -(-shape.units // 152)  # at most one septet wasted per part


@given(any_text)
def test_units_count_utf16_for_ucs2(text: str) -> None:
    shape = sms_shape(text)
    if shape.encoding == "UCS-2":
        assert shape.units == len(text.encode("utf-16-le")) // 2
    assert shape.characters == len(text)
    assert (shape.segments == 0) == (text == "")


def test_sms_cost_is_per_segment() -> None:
    cost = estimate_cost(
        Channel.SMS, "a" * 161, DEFAULT_PRICE_BOOK, category=MessageCategory.MARKETING, is_template=False
    )
    assert cost == 2 * DEFAULT_PRICE_BOOK.sms_per_segment, "no destination: the price abroad"
    to = {"+4915112345678": "DE", "+12125550188": "US", "+447911123456": "GB", "+41790408541": "CH"}
    for address, country in to.items():
        priced = estimate_cost(
            Channel.SMS, "a" * 161, category=MessageCategory.MARKETING, is_template=False, to_address=address
        )
        assert priced == 2 * SMS_PRICE_BY_COUNTRY[country], address
    assert SMS_PRICE_BY_COUNTRY["DE"] > 10 * SMS_PRICE_BY_COUNTRY["US"], "an SMS to Germany is not a US one"


@pytest.mark.parametrize(
    ("channel", "category", "is_template", "expected"),
    [
        (Channel.WHATSAPP, MessageCategory.MARKETING, True, 25_000),
        (Channel.WHATSAPP, MessageCategory.TRANSACTIONAL, True, 4_000),
        (Channel.WHATSAPP, MessageCategory.CONVERSATIONAL, False, 0),
        (Channel.WHATSAPP, MessageCategory.MARKETING, False, 0),
        (Channel.EMAIL, MessageCategory.MARKETING, False, 100),
        (Channel.TELEGRAM, MessageCategory.MARKETING, False, 0),
        (Channel.CHAT, MessageCategory.CONVERSATIONAL, False, 0),
    ],
)
def test_cost_by_channel(
    channel: Channel, category: MessageCategory, is_template: bool, expected: int
) -> None:
    assert estimate_cost(channel, "hello", category=category, is_template=is_template) == expected


def test_price_book_rejects_negative_prices() -> None:
    with pytest.raises(ValueError, match="negative"):
        PriceBook("USD", -1, 0, 0, 0, 0)


def test_a_plus_one_number_outside_the_us_and_canada_is_priced_as_abroad() -> None:
    book = DEFAULT_PRICE_BOOK
    assert book.sms_segment_price("+12125550188") == SMS_PRICE_BY_COUNTRY["US"]  # New York
    assert (
        book.sms_segment_price("+14165550123") == SMS_PRICE_BY_COUNTRY["US"]
    )  # Toronto costs about the same
    assert book.sms_segment_price("+18765550123") == book.sms_per_segment  # Jamaica shares +1, not the price


def test_a_typed_sms_is_priced_at_its_destination_too() -> None:
    """An agent's reply or a CSAT question is free text: it costs what a template's SMS to that number does."""
    from datetime import UTC, datetime

    from domain.consent.model import ConsentPolicy
    from domain.messages.model import Recipient
    from domain.messages.sending import MessageRequest, _compose

    to_germany = Recipient(
        customer_id=1,
        name="Klara Wolf",
        locale="de",
        timezone="Europe/Berlin",
        addresses={Channel.SMS: "+4915112345678"},
    )
    request = MessageRequest(customer_id=1, channel=Channel.SMS, body="Yes, Monday at 9 works.")
    entry, _ = _compose(
        request, to_germany, [], datetime(2026, 12, 7, 10, tzinfo=UTC), ConsentPolicy(), DEFAULT_PRICE_BOOK
    )
    assert entry.cost_micros == SMS_PRICE_BY_COUNTRY["DE"]
