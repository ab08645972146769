"""The business's quiet hours and marketing limits come from settings and decide sends."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time

import pytest

from api.pages.customer_card import business_rules
from domain.campaigns.model import EXCLUSION_WORDS
from domain.consent.model import ChannelConsent, RecipientFacts, SendRequest
from domain.consent.rules import decide
from domain.consent.said import business_cap_words
from domain.messages.words import failure_words
from domain.vocabulary import Channel, ConsentStatus, MessageCategory
from switchboard.policies import business_consent_policy
from switchboard.settings import Settings

NIGHT_BERLIN = datetime(2026, 6, 15, 21, 30, tzinfo=UTC)  # 23:30 CEST
NOON_BERLIN = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
MARKETING_SMS = SendRequest(Channel.SMS, MessageCategory.MARKETING, campaign_type="recall")
OPTED_IN = RecipientFacts(
    timezone="Europe/Berlin",
    consent=ChannelConsent(ConsentStatus.OPTED_IN, "checkout form", datetime(2026, 1, 5, tzinfo=UTC)),
)


def settings(**values: object) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]


def test_the_defaults_are_the_rules_the_business_had_before_they_were_settings() -> None:
    policy = business_consent_policy(settings())
    assert (policy.default_quiet_hours.start, policy.default_quiet_hours.end) == (time(21), time(8))
    assert (policy.channel_cap.per_24h, policy.channel_cap.per_7d, policy.campaign_type_cap_7d) == (1, 3, 1)
    assert business_rules(policy) == {
        "quiet_hours": "21:00–08:00",
        "marketing_cap": "at most 1 a day and 3 a week on a channel",
    }


def test_the_business_s_quiet_hours_decide_when_marketing_waits() -> None:
    late = business_consent_policy(settings(quiet_hours="23:45-06:00"))
    assert decide(MARKETING_SMS, OPTED_IN, late, NIGHT_BERLIN).verdict == "send"
    early = business_consent_policy(settings(quiet_hours="20:00–07:30"))
    decision = decide(MARKETING_SMS, OPTED_IN, early, NIGHT_BERLIN)
    assert decision.verdict == "defer" and "inside quiet hours 20:00–07:30" in decision.explanation
    assert decision.send_at == datetime(2026, 6, 16, 5, 30, tzinfo=UTC)
    # As Germans write times: 21.30 is half past nine, not 21:00 and a fraction of a second.
    dotted = business_consent_policy(settings(quiet_hours="21.30-08.15")).default_quiet_hours
    assert (dotted.start, dotted.end) == (time(21, 30), time(8, 15))
    never = business_consent_policy(settings(quiet_hours="off"))
    assert decide(MARKETING_SMS, OPTED_IN, never, NIGHT_BERLIN).verdict == "send"
    assert business_rules(never)["quiet_hours"] == ""


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("9pm-8am", "two times of day like 21:00-08:00, or off"),
        ("21:00", "two times of day like 21:00-08:00, or off"),
        ("25:00-08:00", "two times of day like 21:00-08:00, or off"),
        ("08:00-08:00", "to have none, say off"),
    ],
)
def test_quiet_hours_that_are_not_two_times_are_refused_in_words(value: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        settings(quiet_hours=value)


def test_the_business_s_limits_decide_how_much_marketing_a_customer_gets_on_a_channel() -> None:
    had_one_today = replace(OPTED_IN, marketing_sent_on_channel_24h=1, marketing_sent_on_channel_7d=1)
    two_a_day = business_consent_policy(settings(marketing_per_day=2))
    assert decide(MARKETING_SMS, had_one_today, two_a_day, NOON_BERLIN).verdict == "send"
    assert decide(MARKETING_SMS, had_one_today, business_consent_policy(settings()), NOON_BERLIN).reason == (
        "frequency_cap_channel"
    )
    had_five = replace(OPTED_IN, marketing_sent_on_channel_7d=5)
    unlimited = settings(marketing_per_day="none", marketing_per_week="")
    assert decide(MARKETING_SMS, had_five, business_consent_policy(unlimited), NOON_BERLIN).verdict == "send"
    assert business_cap_words(business_consent_policy(unlimited)) == "no limit"
    no_marketing = business_consent_policy(settings(marketing_per_week=0))
    decision = decide(MARKETING_SMS, OPTED_IN, no_marketing, NOON_BERLIN)
    assert (decision.verdict, decision.reason, decision.explanation) == (
        "suppress",
        "business_no_marketing_on_channel",
        "Not sent: the business sends no marketing on SMS (its limit is 0).",
    )
    assert EXCLUSION_WORDS[decision.reason] == (
        "would get it on a channel the business sends no marketing on (its limit is 0)"
    )
    assert "limit is 0" in failure_words(decision.reason)
    assert business_cap_words(no_marketing) == "no marketing"
    assert business_cap_words(business_consent_policy(settings(marketing_per_day=2))) == (
        "at most 2 a day and 3 a week on a channel"
    )
    # Reminders are no marketing: no limit holds them back.
    reminder = SendRequest(Channel.SMS, MessageCategory.TRANSACTIONAL)
    assert decide(reminder, had_five, no_marketing, NOON_BERLIN).verdict == "send"


def test_campaigns_of_one_type_a_week_follow_the_setting() -> None:
    had_a_recall = replace(OPTED_IN, marketing_sent_of_campaign_type_7d=1)
    assert decide(MARKETING_SMS, had_a_recall, business_consent_policy(settings()), NOON_BERLIN).reason == (
        "frequency_cap_campaign_type"
    )
    none = business_consent_policy(settings(campaign_type_per_week=0))
    decision = decide(MARKETING_SMS, OPTED_IN, none, NOON_BERLIN)
    assert (decision.reason, decision.explanation) == (
        "business_no_campaign_type",
        "Not sent: the business sends no 'recall' campaigns (its limit is 0).",
    )
    assert "limit is 0" in EXCLUSION_WORDS[decision.reason]
    two = business_consent_policy(settings(campaign_type_per_week=2))
    assert decide(MARKETING_SMS, had_a_recall, two, NOON_BERLIN).verdict == "send"


def test_a_limit_below_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        settings(marketing_per_day=-1)


@pytest.mark.parametrize(
    ("own", "business", "said"),
    [
        (None, {}, "none of their own; the business sends at most 1 a day and 3 a week on a channel"),
        (
            None,
            {"marketing_per_day": None, "marketing_per_week": None},
            "none of their own, nor the business's",
        ),
        (2, {}, "at most 2 a week (and the business's at most 1 a day and 3 a week on a channel)"),
        (2, {"marketing_per_day": None, "marketing_per_week": None}, "at most 2 a week"),
        (0, {}, "no marketing"),
        (2, {"marketing_per_week": 0}, "no marketing (the business sends none)"),
    ],
)
def test_the_customer_card_says_which_marketing_limit_holds(
    own: int | None, business: dict[str, object], said: str
) -> None:
    from domain.consent.said import cap_words as _cap_words

    assert _cap_words(own, business_cap_words(business_consent_policy(settings(**business)))) == said
