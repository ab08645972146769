"""A campaign's values per language: what reads alike in every language, what is refused, how they are listed."""

from __future__ import annotations

import re

import pytest

from domain.campaigns.languages import reads_alike, values_words, with_language_values
from domain.campaigns.model import CampaignError


@pytest.mark.parametrize(
    "value",
    [
        "WINTER",
        "WINTER20",
        "winter20",
        "BDAY",
        "20%",
        "49.90",
        "https://x.example/a",
        "northwind.example/spring",
        "a@b.de",
    ],
)
def test_codes_numbers_and_links_read_alike_in_every_language(value: str) -> None:
    assert reads_alike(value)


@pytest.mark.parametrize("value", ["10% off", "BLACK FRIDAY", "10% OFF", "Rabatt", "خصم", "free"])
def test_words_do_not(value: str) -> None:
    assert not reads_alike(value)


@pytest.mark.parametrize(
    ("variables", "by_language", "words"),
    [
        ({"offer": ""}, {}, "offer has no value: give it one (the template reads it)."),
        ({"offer": "x", "note": ""}, {}, "note has no value: give it one, or leave it out."),
        ({"offer": "x"}, {"de": {"offer": " "}}, "offer[de] has no value"),
        ({"offer": "x", "first_name": "Max"}, {}, "first_name fills itself from each customer's record"),
        ({"offer": "x"}, {"de": {"name": "Max"}}, "name[de] fills itself"),
        ({"ofer": "x"}, {}, "The template “seasonal_offer” reads code and offer, not ofer."),
        (
            {"offer": "x"},
            {"de": {"code": "y"}},
            "code[de] has no value for the other languages: write code = … as well.",
        ),
    ],
)
def test_values_a_template_cannot_use_are_refused_in_words(
    variables: dict[str, str], by_language: dict[str, dict[str, str]], words: str
) -> None:
    with pytest.raises(CampaignError, match=re.escape(words)):
        with_language_values(variables, by_language, template="seasonal_offer", needs={"offer", "code"})


def test_the_unsubscribe_link_is_left_to_its_own_refusal() -> None:
    values = with_language_values({"offer": "x", "unsubscribe_url": "u"}, {}, template="t", needs={"offer"})
    assert values == {"offer": "x", "unsubscribe_url": "u"}  # domain.campaigns.rules refuses it, in its words


def test_values_are_listed_by_name_with_each_language_after() -> None:
    listed = values_words(
        {"offer": "10% off", "code": "WINTER", "by_language": {"de": {"offer": "10 % Rabatt"}}}
    )
    assert listed == "code = WINTER; offer = 10% off · German: offer = 10 % Rabatt"
    assert values_words({"by_language": "not a table"}) == ""


def test_every_mistake_in_the_values_is_said_at_once() -> None:
    """ "ofer = 10% off", "code =", "first_name = Bob": the wizard named only the empty code, one at a time."""
    with pytest.raises(CampaignError) as refused:
        with_language_values(
            {"ofer": "10% off", "code": "", "first_name": "Bob"},
            {},
            template="seasonal_offer",
            needs={"offer", "code"},
        )
    assert str(refused.value) == (
        "code has no value: give it one (the template reads it). "
        "first_name fills itself from each customer's record; leave it out. "
        "The template “seasonal_offer” reads code and offer, not ofer."
    )
