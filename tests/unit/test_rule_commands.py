"""`rule list|enable|disable` without a database: offsets and channels in words, parsing, and finding a rule by name."""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.commands import rules
from bot.commands.context import CommandContext
from bot.commands.dispatch import parse
from bot.commands.parsing import ParseError
from bot.commands.registry import BY_NAME
from domain.notifications.model import NotificationRule
from domain.notifications.rules import MAX_OFFSET_MINUTES, describe_channel_order, describe_offset
from domain.vocabulary import Channel, Role
from switchboard.settings import Settings

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
_PHRASE = re.compile(r"(?:(\d+) days? ?)?(?:(\d+) h ?)?(?:(\d+) min ?)?(before|after)")


def context() -> CommandContext:
    # Real settings: the context builds the business's policies (consent, CSAT links) from them.
    settings = Settings(business_timezone="Europe/Berlin")
    return CommandContext(settings, database=None, clock=lambda: NOW)  # type: ignore[arg-type]


def rule(rule_id: int, name: str, **fields: Any) -> NotificationRule:
    return NotificationRule(rule_id, name, "order.created", "order_confirmation", **fields)


def minutes_of(phrase: str) -> int:
    """Reads a described offset back, to show the words say exactly how far and which way."""
    if phrase == "at the event":
        return 0
    found = _PHRASE.fullmatch(phrase)
    assert found, phrase
    days, hours, mins, way = found.groups()
    total = int(days or 0) * 1440 + int(hours or 0) * 60 + int(mins or 0)
    return -total if way == "before" else total


@pytest.mark.parametrize(
    ("minutes", "phrase"),
    [
        (0, "at the event"),
        (-120, "2 h before"),
        (30, "30 min after"),
        (1, "1 min after"),
        (-1440, "1 day before"),
        (-90, "1 h 30 min before"),
        (1500, "1 day 1 h after"),
        (2 * 1440 + 5, "2 days 5 min after"),
        (-MAX_OFFSET_MINUTES, "7 days before"),
    ],
)
def test_offsets_read_as_people_say_them(minutes: int, phrase: str) -> None:
    assert describe_offset(minutes) == phrase


@given(st.integers(-MAX_OFFSET_MINUTES, MAX_OFFSET_MINUTES))
def test_every_allowed_offset_is_described_exactly(minutes: int) -> None:
    assert minutes_of(describe_offset(minutes)) == minutes


def test_channels_in_order_or_the_customers_preferred() -> None:
    assert describe_channel_order((Channel.WHATSAPP, Channel.SMS)) == "WhatsApp, SMS"
    assert describe_channel_order(()) == "preferred, then opted in"


def test_a_rule_row_has_the_listed_columns() -> None:
    shown = rule(1, "reminder", offset_minutes=-120, enabled=False)
    assert rules.rule_row(shown) == (
        "reminder",
        "order.created",
        "order_confirmation",
        "preferred, then opted in",
        "2 h before",
        "off",
    )


@pytest.mark.parametrize(
    ("text", "name", "command"),
    [
        ("rule list", "rule list", rules.ListRules()),
        ("rules", "rule list", rules.ListRules()),
        ("rule disable csat_after_visit", "rule disable", rules.SwitchRule("csat_after_visit", False)),
        ("rule enable reminder  24h", "rule enable", rules.SwitchRule("reminder 24h", True)),
        ('rule enable "reminder 24h"', "rule enable", rules.SwitchRule("reminder 24h", True)),
        ("rules disabel welcome", "rule disable", rules.SwitchRule("welcome", False)),
    ],
)
def test_rule_commands_read_into_typed_commands(text: str, name: str, command: object) -> None:
    parsed = parse(text, context())
    assert parsed is not None and parsed.spec.name == name and parsed.command == command


@pytest.mark.parametrize(
    ("text", "usage"), [("rule enable", "rule enable NAME"), ("rule disable", "rule disable NAME")]
)
def test_switching_needs_a_rule_name(text: str, usage: str) -> None:
    with pytest.raises(ParseError, match="Name the rule") as raised:
        parse(text, context())
    assert raised.value.usage == usage


def test_a_noun_without_a_known_verb_lists_the_rule_verbs() -> None:
    with pytest.raises(ParseError, match="list, enable, disable"):
        parse("rule explode welcome", context())


def test_listing_is_for_viewers_and_switching_for_managers_and_audited() -> None:
    assert BY_NAME["rule list"].role is Role.VIEWER and not BY_NAME["rule list"].changes
    for name in ("rule enable", "rule disable"):
        assert BY_NAME[name].role is Role.MANAGER and BY_NAME[name].changes
        assert BY_NAME[name].usage == f"{name} NAME" and BY_NAME[name].examples


def test_a_rule_is_found_exactly_then_loosely_but_never_by_guessing() -> None:
    book = [rule(1, "appointment_reminder_24h"), rule(2, "Welcome"), rule(3, "a-b"), rule(4, "a_b")]
    assert rules.rule_named(book, "appointment_reminder_24h") == book[0]
    assert rules.rule_named(book, "Appointment reminder 24h") == book[0]
    assert rules.rule_named(book, "welcome") == book[1]
    assert rules.rule_named(book, "a_b") == book[3]  # exact wins over the loose twin
    assert rules.rule_named(book, "A B") is None  # two loose matches: ambiguous
    assert rules.rule_named(book, "appointment_reminder") is None


def test_an_unknown_rule_suggests_the_closest_and_buttons_retry_with_it() -> None:
    book = [rule(1, "appointment reminder 24h"), rule(2, "welcome")]
    reply = rules.unknown_rule(book, rules.SwitchRule("appointment_remindr_24h", False))
    assert reply.kind == "error" and "Did you mean appointment reminder 24h?" in reply.text
    [button] = reply.buttons
    assert shlex.split(button.command) == ["rule", "disable", "appointment reminder 24h"]

    nothing_close = rules.unknown_rule(book, rules.SwitchRule("zzz", True))
    assert "Rules: appointment reminder 24h, welcome." in nothing_close.text and not nothing_close.buttons
