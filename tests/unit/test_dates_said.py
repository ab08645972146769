"""Dates as people read them: no leading zero, in the reader's timezone, wherever a bot line or a report says one."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.commands.messages import SendMessage, preview_reply
from bot.commands.parsing import RecipientRef
from domain.consent.model import SendDecision
from domain.dates_said import day_month, day_month_time, day_month_time_zone, day_month_year
from domain.messages.sending import MessagePreview
from domain.vocabulary import Channel
from reports.presentation import bucket_label
from storage.queries.customers import CustomerName

BERLIN = ZoneInfo("Europe/Berlin")


def test_a_day_has_no_leading_zero() -> None:
    moment = datetime(2026, 12, 7, 14, 5, tzinfo=BERLIN)
    assert (day_month(moment), day_month_year(date(2026, 3, 2))) == ("7 Dec", "2 Mar 2026")
    assert (day_month_time(moment), day_month_time_zone(moment)) == ("7 Dec 14:05", "7 Dec 14:05 CET")


def test_buckets_read_without_leading_zeros_in_the_business_s_time() -> None:
    start = datetime(2026, 11, 1, 23, 0, tzinfo=UTC)  # Monday 2 Nov in Berlin
    assert bucket_label(start, "week", "Europe/Berlin") == "w/c 2 Nov 2026"
    assert bucket_label(start, "day", "Europe/Berlin") == "2 Nov 2026"
    assert bucket_label(start + timedelta(hours=9), "hour", "Europe/Berlin") == "2 Nov 09:00"


def test_a_deferred_send_s_preview_says_when_in_the_business_s_time() -> None:
    """The preview said "Sends 07 Dec 06:00 UTC" to a manager in Berlin."""
    now = datetime(2026, 12, 6, 22, 30, tzinfo=UTC)
    later = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    preview = MessagePreview(
        Channel.SMS,
        "Your results are ready.",
        None,
        None,
        "GSM-7",
        1,
        23,
        87_500,
        "USD",
        None,
        decision=SendDecision("defer", "quiet_hours", "Quiet hours", send_at=later),
        to_address="+4915112345678",
    )
    command = SendMessage(RecipientRef("id", "7"), Channel.SMS, text="Your results are ready.")
    reply = preview_reply(command, CustomerName(7, "Ada"), preview, "r1", now, "Europe/Berlin")
    (sends,) = [f.value for f in reply.fields if f.label == "Sends"]
    assert sends == "7 Dec 07:00 CET, after the customer's quiet hours"
