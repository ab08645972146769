"""The send decision: address, opt-out, consent, WhatsApp's 24-hour window, frequency caps, quiet hours."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.consent.model import ConsentPolicy, QuietHours, RecipientFacts, SendDecision, SendRequest
from domain.consent.sources import source_words
from domain.vocabulary import Channel, ConsentStatus, MessageCategory

OK = "ok"
NO_ADDRESS = "no_address"
OPTED_OUT = "opted_out"
NO_CONSENT = "no_consent"
WHATSAPP_WINDOW_CLOSED = "whatsapp_window_closed_needs_template"
FREQUENCY_CAP_CHANNEL = "frequency_cap_channel"
FREQUENCY_CAP_CAMPAIGN_TYPE = "frequency_cap_campaign_type"
#: The business's own limit is 0: it sends no marketing on the channel, or no campaigns of the type, at all.
BUSINESS_NO_MARKETING_ON_CHANNEL = "business_no_marketing_on_channel"
BUSINESS_NO_CAMPAIGN_TYPE = "business_no_campaign_type"
CUSTOMER_MARKETING_LIMIT = "customer_marketing_limit"
QUIET_HOURS = "quiet_hours"
TRANSACTIONAL_BYPASS_QUIET_HOURS = "transactional_bypass_quiet_hours"

_CHANNEL_NAMES = {
    Channel.SMS: "SMS",
    Channel.EMAIL: "email",
    Channel.WHATSAPP: "WhatsApp",
    Channel.TELEGRAM: "Telegram",
    Channel.CHAT: "chat",
    Channel.VIDEO: "video",
}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def decide(request: SendRequest, facts: RecipientFacts, policy: ConsentPolicy, now: datetime) -> SendDecision:
    """Send now, defer until quiet hours end, or suppress; suppression rules are checked before deferral."""
    now = _as_utc(now)
    tz = customer_zone(facts, policy)
    channel = _CHANNEL_NAMES[request.channel]
    marketing = request.category is MessageCategory.MARKETING
    if not facts.has_address:
        return _suppress(NO_ADDRESS, f"Not sent: the customer has no {channel} address.")
    if facts.consent.status is ConsentStatus.OPTED_OUT:
        return _suppress(OPTED_OUT, _opt_out_sentence(facts, channel, tz))
    if marketing and policy.marketing_requires_opt_in and facts.consent.status is not ConsentStatus.OPTED_IN:
        return _suppress(
            NO_CONSENT,
            f"Not sent: marketing on {channel} needs the customer's opt-in, which they have not given.",
        )
    window_closes = _whatsapp_window_closes(request, facts, policy)
    if window_closes is not None and window_closes <= now:
        return _suppress(
            WHATSAPP_WINDOW_CLOSED,
            "Not sent: the customer has not written on WhatsApp in the last 24 hours, "
            "so only an approved template may be sent.",
        )
    if marketing:
        capped = _frequency_cap(request, facts, policy, channel)
        if capped is not None:
            return capped
    return _quiet_hours_decision(request, facts, policy, now, tz, window_closes)


def next_allowed_time(now: datetime, tz: tzinfo, quiet_start: time, quiet_end: time) -> datetime:
    """The first instant at or after ``now`` (in UTC) whose wall-clock time in ``tz`` is outside quiet hours.

    Quiet hours are wall-clock times, so a skipped end time (spring forward) ends them when the clock jumps,
    and a repeated hour (fall back) can make them start again; both are handled by testing candidates.
    """
    now = _as_utc(now)
    hours = QuietHours(quiet_start, quiet_end)
    if not _is_quiet(now, tz, hours):
        return now
    local_today = now.astimezone(tz).date()
    ends = [
        instant
        for instant in _wall_clock_instants(local_today, hours.end, tz)
        if instant > now and not _is_quiet(instant, tz, hours)
    ]
    earliest_end = min(ends)
    # A DST jump between now and the end may carry the clock straight out of quiet hours; zones change
    # offset at most once in a day, so comparing the offsets at both ends finds it.
    if now.astimezone(tz).utcoffset() != earliest_end.astimezone(tz).utcoffset():
        jump = _offset_change(now, earliest_end, tz)
        if now < jump < earliest_end and not _is_quiet(jump, tz, hours):
            return jump
    return earliest_end


def customer_zone(facts: RecipientFacts, policy: ConsentPolicy) -> ZoneInfo:
    key = facts.timezone or policy.default_timezone
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"Unknown time zone {key!r} for the customer.") from None


def _quiet_hours_decision(
    request: SendRequest,
    facts: RecipientFacts,
    policy: ConsentPolicy,
    now: datetime,
    tz: ZoneInfo,
    window_closes: datetime | None,
) -> SendDecision:
    hours = facts.quiet_hours or policy.default_quiet_hours
    if not _is_quiet(now, tz, hours):
        return SendDecision("send", OK, "Allowed: consent, frequency caps and quiet hours all allow it.")
    local_now = f"{now.astimezone(tz):%H:%M} for the customer ({tz.key})"
    window = f"{hours.start:%H:%M}–{hours.end:%H:%M}"
    if request.category is not MessageCategory.MARKETING and policy.transactional_ignores_quiet_hours:
        return SendDecision(
            "send",
            TRANSACTIONAL_BYPASS_QUIET_HOURS,
            f"Allowed although it is {local_now}, inside quiet hours {window}, because it is not marketing.",
        )
    send_at = next_allowed_time(now, tz, hours.start, hours.end)
    if window_closes is not None and send_at >= window_closes:
        return _suppress(
            WHATSAPP_WINDOW_CLOSED,
            f"Not sent: it is {local_now}, inside quiet hours {window}, and the customer's WhatsApp window "
            "closes before they end, so only an approved template may be sent.",
        )
    return SendDecision(
        "defer",
        QUIET_HOURS,
        f"Deferred: it is {local_now}, inside quiet hours {window}; it will go out at "
        f"{send_at.astimezone(tz):%H:%M} local time ({send_at:%H:%M} UTC).",
        send_at,
    )


def _frequency_cap(
    request: SendRequest, facts: RecipientFacts, policy: ConsentPolicy, channel: str
) -> SendDecision | None:
    own = facts.marketing_max_per_week
    if own is not None and facts.marketing_sent_7d >= own:
        return _suppress(
            CUSTOMER_MARKETING_LIMIT,
            "Not sent: the customer asked for no marketing."
            if own == 0
            else f"Not sent: the customer asked for at most {_messages(own)} of marketing a week, and got "
            f"{facts.marketing_sent_7d} in the last 7 days.",
        )
    cap = policy.cap_for_channel(request.channel)
    for sent, limit, period in (
        (facts.marketing_sent_on_channel_24h, cap.per_24h, "24 hours"),
        (facts.marketing_sent_on_channel_7d, cap.per_7d, "7 days"),
    ):
        if limit == 0:
            return _suppress(
                BUSINESS_NO_MARKETING_ON_CHANNEL,
                f"Not sent: the business sends no marketing on {channel} (its limit is 0).",
            )
        if limit is not None and sent >= limit:
            return _suppress(
                FREQUENCY_CAP_CHANNEL,
                f"Not sent: the customer already got {_messages(sent)} of marketing on {channel} "
                f"in the last {period} (the limit is {limit}).",
            )
    if request.campaign_type is not None:
        type_limit = policy.cap_for_campaign_type(request.campaign_type)
        sent = facts.marketing_sent_of_campaign_type_7d
        if type_limit == 0:
            return _suppress(
                BUSINESS_NO_CAMPAIGN_TYPE,
                f"Not sent: the business sends no '{request.campaign_type}' campaigns (its limit is 0).",
            )
        if type_limit is not None and sent >= type_limit:
            return _suppress(
                FREQUENCY_CAP_CAMPAIGN_TYPE,
                f"Not sent: the customer already got {_messages(sent)} of the '{request.campaign_type}' "
                f"campaign type in the last 7 days (the limit is {type_limit}).",
            )
    return None


def _whatsapp_window_closes(
    request: SendRequest, facts: RecipientFacts, policy: ConsentPolicy
) -> datetime | None:
    """When a free-form WhatsApp message stops being allowed; None when the window does not apply."""
    if request.channel is not Channel.WHATSAPP or request.uses_approved_template:
        return None
    if facts.last_inbound_whatsapp_at is None:
        return datetime.min.replace(tzinfo=UTC)
    return _as_utc(facts.last_inbound_whatsapp_at) + policy.whatsapp_window


def _opt_out_sentence(facts: RecipientFacts, channel: str, tz: ZoneInfo) -> str:
    sentence = f"Not sent: the customer opted out of {channel}"
    if facts.consent.changed_at is not None:
        sentence += f" on {_day(_as_utc(facts.consent.changed_at).astimezone(tz).date())}"
    if facts.consent.source:
        sentence += f" ({source_words(facts.consent.source)})"
    return sentence + "."


def _is_quiet(instant: datetime, tz: tzinfo, hours: QuietHours) -> bool:
    return hours.contains(instant.astimezone(tz).time())


def _wall_clock_instants(around: date, wall: time, tz: tzinfo) -> list[datetime]:
    # Both folds, so a repeated hour yields both of its instants and a skipped one yields its two
    # readings (which then fail the quiet-hours test or lose to the offset change).
    return [
        datetime.combine(around + timedelta(days=days), wall, tzinfo=tz).replace(fold=fold).astimezone(UTC)
        for days in range(-1, 3)
        for fold in (0, 1)
    ]


def _offset_change(start: datetime, end: datetime, tz: tzinfo) -> datetime:
    """The first whole second at which ``tz``'s UTC offset is the one it has at ``end``."""
    target = end.astimezone(tz).utcoffset()
    low = int(start.timestamp())
    high = int(end.timestamp()) + 1
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(tz).utcoffset() == target:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("Send decisions need time-zone-aware datetimes.")
    return moment.astimezone(UTC)


def _suppress(reason: str, explanation: str) -> SendDecision:
    return SendDecision("suppress", reason, explanation)


def _messages(count: int) -> str:
    return "1 message" if count == 1 else f"{count} messages"


def _day(day: date) -> str:
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"
