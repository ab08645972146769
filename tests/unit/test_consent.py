"""The send decision: table tests for each rule, DST and date-line cases, and properties over random input."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.consent.model import (
    ChannelConsent,
    ConsentPolicy,
    FrequencyCap,
    QuietHours,
    RecipientFacts,
    SendDecision,
    SendRequest,
)
from domain.consent.rules import decide, next_allowed_time
from domain.messages.model import Recipient
from domain.vocabulary import OUTBOUND_CHANNELS, Channel, ConsentStatus, MessageCategory

POLICY = ConsentPolicy()
BERLIN = "Europe/Berlin"
NOON_BERLIN = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
NIGHT_BERLIN = datetime(2026, 6, 15, 21, 30, tzinfo=UTC)  # 23:30 CEST
MARKETING_SMS = SendRequest(Channel.SMS, MessageCategory.MARKETING, campaign_type="promotion")
RECEIPT_SMS = SendRequest(Channel.SMS, MessageCategory.TRANSACTIONAL)
BERLIN_CUSTOMER = RecipientFacts(timezone=BERLIN)
OPTED_OUT = ChannelConsent(
    ConsentStatus.OPTED_OUT, "SMS keyword STOP", datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def verdict(
    request: SendRequest = MARKETING_SMS,
    facts: RecipientFacts = BERLIN_CUSTOMER,
    policy: ConsentPolicy = POLICY,
    now: datetime = NOON_BERLIN,
) -> tuple[str, str]:
    decision = decide(request, facts, policy, now)
    return decision.verdict, decision.reason


@pytest.mark.parametrize(
    ("request_", "facts", "policy", "now", "expected"),
    [
        (MARKETING_SMS, BERLIN_CUSTOMER, POLICY, NOON_BERLIN, ("send", "ok")),
        (
            MARKETING_SMS,
            replace(BERLIN_CUSTOMER, has_address=False),
            POLICY,
            NOON_BERLIN,
            ("suppress", "no_address"),
        ),
        (
            MARKETING_SMS,
            replace(BERLIN_CUSTOMER, consent=OPTED_OUT),
            POLICY,
            NOON_BERLIN,
            ("suppress", "opted_out"),
        ),
        (
            RECEIPT_SMS,
            replace(BERLIN_CUSTOMER, consent=OPTED_OUT),
            POLICY,
            NOON_BERLIN,
            ("suppress", "opted_out"),
        ),
        (
            SendRequest(Channel.SMS, MessageCategory.CONVERSATIONAL),
            replace(BERLIN_CUSTOMER, consent=OPTED_OUT),
            POLICY,
            NOON_BERLIN,
            ("suppress", "opted_out"),
        ),
        (
            MARKETING_SMS,
            BERLIN_CUSTOMER,
            replace(POLICY, marketing_requires_opt_in=True),
            NOON_BERLIN,
            ("suppress", "no_consent"),
        ),
        (
            MARKETING_SMS,
            replace(BERLIN_CUSTOMER, consent=ChannelConsent(ConsentStatus.OPTED_IN)),
            replace(POLICY, marketing_requires_opt_in=True),
            NOON_BERLIN,
            ("send", "ok"),
        ),
        (
            RECEIPT_SMS,
            BERLIN_CUSTOMER,
            replace(POLICY, marketing_requires_opt_in=True),
            NOON_BERLIN,
            ("send", "ok"),
        ),
        (MARKETING_SMS, BERLIN_CUSTOMER, POLICY, NIGHT_BERLIN, ("defer", "quiet_hours")),
        (RECEIPT_SMS, BERLIN_CUSTOMER, POLICY, NIGHT_BERLIN, ("send", "transactional_bypass_quiet_hours")),
        (
            RECEIPT_SMS,
            BERLIN_CUSTOMER,
            replace(POLICY, transactional_ignores_quiet_hours=False),
            NIGHT_BERLIN,
            ("defer", "quiet_hours"),
        ),
        (
            MARKETING_SMS,
            replace(BERLIN_CUSTOMER, marketing_sent_on_channel_24h=1),
            POLICY,
            NOON_BERLIN,
            ("suppress", "frequency_cap_channel"),
        ),
        (
            MARKETING_SMS,
            replace(BERLIN_CUSTOMER, marketing_sent_on_channel_7d=3),
            POLICY,
            NOON_BERLIN,
            ("suppress", "frequency_cap_channel"),
        ),
        (
            MARKETING_SMS,
            replace(BERLIN_CUSTOMER, marketing_sent_of_campaign_type_7d=1),
            POLICY,
            NOON_BERLIN,
            ("suppress", "frequency_cap_campaign_type"),
        ),
        (
            MARKETING_SMS,
            replace(BERLIN_CUSTOMER, marketing_sent_of_campaign_type_7d=1),
            replace(POLICY, campaign_type_caps_7d=MappingProxyType({"promotion": 2})),
            NOON_BERLIN,
            ("send", "ok"),
        ),
        (
            MARKETING_SMS,
            replace(BERLIN_CUSTOMER, marketing_sent_on_channel_24h=5),
            replace(POLICY, channel_caps=MappingProxyType({Channel.SMS: FrequencyCap()})),
            NOON_BERLIN,
            ("send", "ok"),
        ),
        (
            RECEIPT_SMS,
            replace(BERLIN_CUSTOMER, marketing_sent_on_channel_24h=9, marketing_sent_of_campaign_type_7d=9),
            POLICY,
            NOON_BERLIN,
            ("send", "ok"),
        ),
        (
            MARKETING_SMS,
            replace(BERLIN_CUSTOMER, marketing_sent_on_channel_24h=1),
            POLICY,
            NIGHT_BERLIN,
            ("suppress", "frequency_cap_channel"),
        ),
    ],
)
def test_decision_table(
    request_: SendRequest,
    facts: RecipientFacts,
    policy: ConsentPolicy,
    now: datetime,
    expected: tuple[str, str],
) -> None:
    assert verdict(request_, facts, policy, now) == expected


WHATSAPP_FREE_FORM = SendRequest(Channel.WHATSAPP, MessageCategory.TRANSACTIONAL)
WHATSAPP_TEMPLATE = SendRequest(Channel.WHATSAPP, MessageCategory.MARKETING, uses_approved_template=True)


@pytest.mark.parametrize(
    ("request_", "last_inbound", "now", "expected"),
    [
        (WHATSAPP_FREE_FORM, utc(2026, 6, 15, 8), NOON_BERLIN, ("send", "ok")),
        (
            WHATSAPP_FREE_FORM,
            utc(2026, 6, 14, 10),
            NOON_BERLIN,
            ("suppress", "whatsapp_window_closed_needs_template"),
        ),
        (WHATSAPP_FREE_FORM, None, NOON_BERLIN, ("suppress", "whatsapp_window_closed_needs_template")),
        (WHATSAPP_TEMPLATE, None, NOON_BERLIN, ("send", "ok")),
        (WHATSAPP_TEMPLATE, utc(2026, 6, 1), NIGHT_BERLIN, ("defer", "quiet_hours")),
        # Free-form marketing at 23:30 with the window closing at 01:00 would be deferred past its close.
        (
            SendRequest(Channel.WHATSAPP, MessageCategory.MARKETING),
            utc(2026, 6, 14, 23),
            NIGHT_BERLIN,
            ("suppress", "whatsapp_window_closed_needs_template"),
        ),
        (
            SendRequest(Channel.WHATSAPP, MessageCategory.MARKETING),
            utc(2026, 6, 15, 21),
            NIGHT_BERLIN,
            ("defer", "quiet_hours"),
        ),
    ],
)
def test_whatsapp_window(
    request_: SendRequest, last_inbound: datetime | None, now: datetime, expected: tuple[str, str]
) -> None:
    facts = replace(BERLIN_CUSTOMER, last_inbound_whatsapp_at=last_inbound)
    assert verdict(request_, facts, POLICY, now) == expected


def test_opt_out_explanation_names_channel_date_and_source() -> None:
    decision = decide(RECEIPT_SMS, replace(BERLIN_CUSTOMER, consent=OPTED_OUT), POLICY, NOON_BERLIN)
    assert decision.explanation == "Not sent: the customer opted out of SMS on 3 Mar 2026 (SMS keyword STOP)."


def test_defer_explanation_and_time() -> None:
    decision = decide(MARKETING_SMS, BERLIN_CUSTOMER, POLICY, NIGHT_BERLIN)
    assert decision == SendDecision(
        "defer",
        "quiet_hours",
        "Deferred: it is 23:30 for the customer (Europe/Berlin), inside quiet hours 21:00–08:00; "
        "it will go out at 08:00 local time (06:00 UTC).",
        utc(2026, 6, 16, 6),
    )


def test_customer_quiet_hours_override_the_policy() -> None:
    facts = replace(BERLIN_CUSTOMER, quiet_hours=QuietHours(time(23, 45), time(6, 0)))
    assert verdict(MARKETING_SMS, facts, POLICY, NIGHT_BERLIN) == ("send", "ok")


def test_missing_time_zone_uses_the_policy_zone() -> None:
    assert verdict(MARKETING_SMS, RecipientFacts(), POLICY, utc(2026, 6, 15, 22)) == ("defer", "quiet_hours")


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        decide(MARKETING_SMS, BERLIN_CUSTOMER, POLICY, datetime(2026, 6, 15, 12))


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="Mars/Olympus"):
        decide(MARKETING_SMS, RecipientFacts(timezone="Mars/Olympus"), POLICY, NOON_BERLIN)


# --- quiet hours across DST changes and the date line ---


@pytest.mark.parametrize(
    ("zone", "start", "end", "now", "expected"),
    [
        # Berlin springs forward 2026-03-29 01:00 UTC (02:00 CET -> 03:00 CEST).
        (BERLIN, time(22), time(7), utc(2026, 3, 28, 23), utc(2026, 3, 29, 5)),
        (BERLIN, time(1), time(3), utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1)),
        (BERLIN, time(1), time(2, 30), utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1)),  # end never happens
        (BERLIN, time(22), time(2, 30), utc(2026, 3, 28, 22), utc(2026, 3, 29, 1)),
        (BERLIN, time(2, 15), time(5), utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 3)),  # start never happens
        # Berlin falls back 2026-10-25 01:00 UTC (03:00 CEST -> 02:00 CET): 01:00-03:00 lasts three hours.
        (BERLIN, time(22), time(7), utc(2026, 10, 24, 21), utc(2026, 10, 25, 6)),
        (BERLIN, time(1), time(3), utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 2)),
        (BERLIN, time(1), time(3), utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 2)),
        # An end inside the repeated hour is reached twice; the first one ends quiet hours.
        (BERLIN, time(1), time(2, 30), utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 0, 30)),
        # ... and the repeated 02:00-02:30 is quiet again, ending at the second 02:30.
        (BERLIN, time(1), time(2, 30), utc(2026, 10, 25, 1, 10), utc(2026, 10, 25, 1, 30)),
        # New York springs forward 2026-03-08 07:00 UTC (02:00 EST -> 03:00 EDT).
        ("America/New_York", time(22), time(7), utc(2026, 3, 8, 4), utc(2026, 3, 8, 11)),
        ("America/New_York", time(1), time(3), utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 7)),
        # New York falls back 2026-11-01 06:00 UTC (02:00 EDT -> 01:00 EST).
        ("America/New_York", time(22), time(7), utc(2026, 11, 1, 3), utc(2026, 11, 1, 12)),
        ("America/New_York", time(1), time(3), utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 8)),
        ("America/New_York", time(1), time(3), utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 8)),
    ],
)
def test_next_allowed_time_around_dst(
    zone: str, start: time, end: time, now: datetime, expected: datetime
) -> None:
    assert next_allowed_time(now, ZoneInfo(zone), start, end) == expected


def test_outside_quiet_hours_next_allowed_time_is_now() -> None:
    assert next_allowed_time(NOON_BERLIN, ZoneInfo(BERLIN), time(21), time(8)) == NOON_BERLIN


def test_equal_start_and_end_means_no_quiet_hours() -> None:
    assert next_allowed_time(NIGHT_BERLIN, ZoneInfo(BERLIN), time(8), time(8)) == NIGHT_BERLIN


@pytest.mark.parametrize(
    ("now", "kiritimati", "pago_pago"),
    [
        # 21:30 on 15 June in Kiritimati (UTC+14) is 20:30 on 14 June in Pago Pago (UTC-11).
        (utc(2026, 6, 15, 7, 30), ("defer", utc(2026, 6, 15, 18)), ("send", None)),
        # 08:30 on 16 June in Kiritimati is 07:30 on 15 June in Pago Pago.
        (utc(2026, 6, 15, 18, 30), ("send", None), ("defer", utc(2026, 6, 15, 19))),
    ],
)
def test_same_instant_either_side_of_the_date_line(
    now: datetime, kiritimati: tuple[str, datetime | None], pago_pago: tuple[str, datetime | None]
) -> None:
    for zone, expected in (("Pacific/Kiritimati", kiritimati), ("Pacific/Pago_Pago", pago_pago)):
        decision = decide(MARKETING_SMS, RecipientFacts(timezone=zone), POLICY, now)
        assert (decision.verdict, decision.send_at) == expected
    assert (
        now.astimezone(ZoneInfo("Pacific/Kiritimati")).date()
        != now.astimezone(ZoneInfo("Pacific/Pago_Pago")).date()
    )


# --- properties ---


def locally_quiet(moment: datetime, zone: str, start: time, end: time) -> bool:
    """An independent reading of quiet hours, in seconds since local midnight."""
    local = moment.astimezone(ZoneInfo(zone))

    def seconds(t: time) -> float:
        return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6

    now_s, start_s, end_s = seconds(local.time()), seconds(start), seconds(end)
    if start_s == end_s:
        return False
    if start_s < end_s:
        return start_s <= now_s < end_s
    return not (end_s <= now_s < start_s)


ZONES = [
    "UTC",
    BERLIN,
    "America/New_York",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "Pacific/Apia",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "America/Santiago",
    "Africa/Casablanca",
    "America/St_Johns",
    "Asia/Tehran",
]
zones = st.one_of(st.sampled_from(ZONES), st.timezone_keys())
DST_CHANGES = [
    utc(2026, 3, 29, 1),
    utc(2026, 10, 25, 1),
    utc(2026, 3, 8, 7),
    utc(2026, 11, 1, 6),
    utc(2026, 4, 5, 3),
]
any_moment = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)
# Uniform instants rarely land near a DST change, where wall-clock arithmetic goes wrong.
near_dst_change = st.builds(
    lambda change, minutes: change + timedelta(minutes=minutes),
    st.sampled_from(DST_CHANGES),
    st.integers(-1800, 1800),
)
moments = st.one_of(any_moment, near_dst_change)
# Times near DST changes are where wall-clock arithmetic goes wrong, so half the draws land near 01:00-03:00.
wall_times = st.one_of(st.times(), st.builds(time, st.integers(0, 3), st.sampled_from([0, 15, 30, 45])))
quiet_hours = st.one_of(st.none(), st.builds(QuietHours, wall_times, wall_times))
requests = st.builds(
    SendRequest,
    channel=st.sampled_from(OUTBOUND_CHANNELS),
    category=st.sampled_from(MessageCategory),
    campaign_type=st.one_of(st.none(), st.sampled_from(["promotion", "reactivation"])),
    uses_approved_template=st.booleans(),
)
consents = st.builds(
    ChannelConsent,
    status=st.one_of(st.none(), st.sampled_from(ConsentStatus)),
    source=st.one_of(st.none(), st.just("SMS keyword STOP")),
    changed_at=st.one_of(st.none(), moments),
)
counts = st.integers(0, 5)
facts_strategy = st.builds(
    RecipientFacts,
    consent=consents,
    has_address=st.booleans(),
    timezone=zones,
    quiet_hours=quiet_hours,
    marketing_sent_on_channel_24h=counts,
    marketing_sent_on_channel_7d=counts,
    marketing_sent_of_campaign_type_7d=counts,
    last_inbound_whatsapp_at=st.one_of(st.none(), moments),
)
policies = st.builds(
    ConsentPolicy,
    marketing_requires_opt_in=st.booleans(),
    transactional_ignores_quiet_hours=st.booleans(),
    default_quiet_hours=st.builds(QuietHours, wall_times, wall_times),
)


@settings(max_examples=400, deadline=None)
@given(requests, facts_strategy, policies, moments)
def test_decision_properties(
    request: SendRequest, facts: RecipientFacts, policy: ConsentPolicy, now: datetime
) -> None:
    decision = decide(request, facts, policy, now)
    assert facts.timezone is not None
    hours = facts.quiet_hours or policy.default_quiet_hours
    # (a) an opt-out on the channel blocks every message
    if facts.consent.status is ConsentStatus.OPTED_OUT:
        assert decision.verdict != "send"
    # (b) marketing never goes out inside the customer's local quiet hours
    if request.category is MessageCategory.MARKETING and locally_quiet(
        now, facts.timezone, hours.start, hours.end
    ):
        assert decision.verdict != "send"
    # (c) a deferral lands after now, outside quiet hours, and the second before it is still quiet
    if decision.verdict == "defer":
        assert decision.send_at is not None
        assert decision.send_at.utcoffset() == timedelta(0)
        assert decision.send_at > now
        assert not locally_quiet(decision.send_at, facts.timezone, hours.start, hours.end)
        assert locally_quiet(decision.send_at - timedelta(seconds=1), facts.timezone, hours.start, hours.end)
    else:
        assert decision.send_at is None
    if not facts.has_address:
        assert decision.reason == "no_address"
    assert decision.explanation.endswith(".")


@settings(max_examples=200, deadline=None)
@given(zones, moments, wall_times, wall_times)
def test_next_allowed_time_is_the_first_allowed_minute(
    zone: str, now: datetime, start: time, end: time
) -> None:
    allowed = next_allowed_time(now, ZoneInfo(zone), start, end)
    assert allowed >= now
    assert not locally_quiet(allowed, zone, start, end)
    # Within a day, unless the day's allowed stretch lies wholly in a DST gap (quiet 02:15-02:00 in Ceuta on
    # 29 Mar 2026: 02:00-02:15 never happens that day), when the next day's is the first: 26 h 01 min there.
    assert allowed - now <= timedelta(hours=50)
    probe = now
    while probe < allowed:
        assert locally_quiet(probe, zone, start, end)
        probe += timedelta(minutes=1)


def test_the_customer_s_own_weekly_marketing_limit_counts_every_channel() -> None:
    """Set on the customer's page or through the API: marketing on any channel counts towards it; other
    messages never."""
    none_wanted = replace(BERLIN_CUSTOMER, marketing_max_per_week=0)
    assert verdict(MARKETING_SMS, none_wanted) == ("suppress", "customer_marketing_limit")
    assert decide(MARKETING_SMS, none_wanted, POLICY, NOON_BERLIN).explanation == (
        "Not sent: the customer asked for no marketing."
    )
    assert verdict(RECEIPT_SMS, none_wanted) == ("send", "ok")
    two_a_week = replace(BERLIN_CUSTOMER, marketing_max_per_week=2)
    assert verdict(MARKETING_SMS, replace(two_a_week, marketing_sent_7d=1)) == ("send", "ok")
    full = replace(two_a_week, marketing_sent_7d=2)
    assert verdict(MARKETING_SMS, full) == ("suppress", "customer_marketing_limit")
    assert "at most 2 messages of marketing a week, and got 2" in str(
        decide(MARKETING_SMS, full, POLICY, NOON_BERLIN).explanation
    )


def test_a_recipient_s_facts_add_up_marketing_on_every_channel() -> None:
    recipient = Recipient(
        customer_id=1,
        name="Ada",
        locale="de",
        timezone=BERLIN,
        addresses={Channel.SMS: "+4915100000001"},
        marketing_7d={Channel.SMS: 1, Channel.EMAIL: 2},
        marketing_max_per_week=3,
    )
    facts = recipient.facts(Channel.SMS)
    assert (facts.marketing_sent_7d, facts.marketing_max_per_week) == (3, 3)
    assert not recipient.is_plain  # a limit of their own: decided for them, never shared with others
    assert verdict(MARKETING_SMS, facts) == ("suppress", "customer_marketing_limit")
