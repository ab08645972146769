"""answer() on seeded data: a chart of the right kind, an honest summary, and a PNG that renders."""

from __future__ import annotations

import dataclasses
import math
import xml.etree.ElementTree as ElementTree
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import matplotlib.dates as mdates
import pytest
from sqlalchemy import func, select

from bot.commands.context import CommandContext
from bot.console import ask, render_reply
from reports.answer import ANOMALY_LABEL, answer, standing_alone, unnamed, value_label
from reports.charts.anomaly_labels import MAX_LABELLED_ANOMALIES
from reports.charts.formatting import format_value
from reports.charts.render import draw_chart, render_png, render_svg
from reports.metrics import UnknownName
from reports.periods import Comparison, PeriodKind, PeriodSpec
from reports.presentation import Presentation, present
from reports.query import Filter, MetricQuery
from reports.saved import run_saved_report
from storage.database import Database
from storage.models import Customer, CustomerCommunication, Order, Refund
from storage.seeding import SeedPlan, seed_database
from switchboard.settings import Settings

TZ = "Europe/Berlin"
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
PLAN = SeedPlan(customers=80, days=60, seed=3, end_date=date(2026, 11, 30))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
async def seeded(database: Database) -> Database:
    await seed_database(database, PLAN)
    return database


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        (MetricQuery(("revenue",), PeriodSpec.last_n_days(28), grain="day"), "line"),
        (MetricQuery(("messages_sent",), PeriodSpec("last_month"), dimensions=("channel",)), "bar"),
        (MetricQuery(("orders",), PeriodSpec("last_month"), comparison="previous_period"), "kpi_tile"),
    ],
    ids=["grained-series", "split", "total"],
)
async def test_answer_picks_the_chart_for_the_shape_and_renders(
    seeded: Database, query: MetricQuery, kind: str
) -> None:
    reply = await answer(seeded, query, now=NOW, business_tz=TZ, locale="en_GB", currency="EUR")
    metric = reply.result.metrics[0]
    assert reply.chart.kind == kind
    assert metric.label in reply.summary
    assert reply.result.range.label in reply.summary and TZ in reply.summary
    assert reply.chart.summary == reply.summary and reply.chart.timezone == TZ
    if kind == "line":
        assert len(reply.chart.x_dates) == 28
    if kind == "bar":
        assert set(reply.chart.categories) <= {"SMS", "Email", "WhatsApp", "Telegram"}
    png = render_png(reply.chart)
    assert png.startswith(PNG_MAGIC) and len(png) > 1000


async def test_a_split_answer_names_each_part_in_words_and_they_are_the_raw_counts(seeded: Database) -> None:
    """ "messages sent last month by channel" says the split, not only its total: each channel's figure,
    recounted here from the messages themselves, largest first."""
    query = MetricQuery(("messages_sent",), PeriodSpec("last_month"), dimensions=("channel",))
    reply = await answer(seeded, query, now=NOW, business_tz=TZ, locale="en_GB", currency="EUR")
    start, end = reply.result.range.start, reply.result.range.end
    cc = CustomerCommunication
    async with seeded.sessions() as session:
        rows = await session.execute(
            select(cc.channel, func.count())
            .where(cc.direction == "outbound", cc.sent_at >= start, cc.sent_at < end)
            .group_by(cc.channel)
        )
        raw = dict(rows.all())
    assert len(raw) > 1
    ordered = sorted(raw.items(), key=lambda item: -item[1])
    parts = [f"{value_label(channel)} {format_value(n, 'count', locale='en_GB')}" for channel, n in ordered]
    total = format_value(sum(raw.values()), "count", locale="en_GB")
    words = f"{', '.join(parts[:-1])} and {parts[-1]}"
    assert reply.summary.endswith(f"(Europe/Berlin): {total}: {words}."), reply.summary


async def test_a_ranking_names_and_draws_its_n_largest_parts_and_keeps_the_whole_total(
    seeded: Database,
) -> None:
    """ "top 2 channels by messages sent": the two largest channels, recounted from the messages, then how
    many more; the total is still every channel's, and the chart draws the two."""
    query = MetricQuery(("messages_sent",), PeriodSpec("last_month"), dimensions=("channel",))
    reply = await answer(seeded, query, now=NOW, business_tz=TZ, locale="en_GB", currency="EUR", top=2)
    start, end = reply.result.range.start, reply.result.range.end
    cc = CustomerCommunication
    async with seeded.sessions() as session:
        raw = dict(
            (
                await session.execute(
                    select(cc.channel, func.count())
                    .where(cc.direction == "outbound", cc.sent_at >= start, cc.sent_at < end)
                    .group_by(cc.channel)
                )
            ).all()
        )
    assert len(raw) > 2
    ordered = sorted(raw.items(), key=lambda item: -item[1])
    parts = [
        f"{value_label(channel)} {format_value(n, 'count', locale='en_GB')}" for channel, n in ordered[:2]
    ]
    total = format_value(sum(raw.values()), "count", locale="en_GB")
    words = f"{parts[0]}, {parts[1]} and {len(raw) - 2} more"
    assert reply.summary.endswith(f"(Europe/Berlin): {total}: {words}."), reply.summary
    chart = present(reply, Presentation(top=2))  # what the bot draws for a ranking
    assert chart.categories == tuple(standing_alone(value_label(channel)) for channel, _ in ordered[:2])
    assert chart.subtitle == f"by channel, top 2 of {len(raw)}"


async def test_two_parts_set_side_by_side_are_those_two_not_all(seeded: Database) -> None:
    """ "SMS vs email last month": the split narrowed to the two, their sum recounted, and no "(all channels)"
    beside a figure that is of two of them."""
    two = Filter("channel", "in", ("sms", "email"))
    query = MetricQuery(("messages_sent",), PeriodSpec("last_month"), dimensions=("channel",), filters=(two,))
    reply = await answer(seeded, query, now=NOW, business_tz=TZ, locale="en_GB", currency="EUR")
    start, end = reply.result.range.start, reply.result.range.end
    cc = CustomerCommunication
    async with seeded.sessions() as session:
        raw = await session.scalar(
            select(func.count()).where(
                cc.direction == "outbound",
                cc.sent_at >= start,
                cc.sent_at < end,
                cc.channel.in_(("sms", "email")),
            )
        )
    assert f"(Europe/Berlin): {format_value(raw or 0, 'count', locale='en_GB')}: " in reply.summary
    assert "(all channels)" not in reply.summary and "for SMS or email" in reply.summary


async def test_a_ranking_of_a_rate_names_its_n_highest_parts_not_only_the_first(seeded: Database) -> None:
    """ "top 2 channels by delivery rate": each of the two highest rates with its figure, then how many more;
    rates of parts never add up, so no total is said."""
    query = MetricQuery(("delivery_rate",), PeriodSpec("last_month"), dimensions=("channel",))
    whole = await answer(seeded, query, now=NOW, business_tz=TZ, locale="en_GB", currency="EUR")
    ranked = await answer(seeded, query, now=NOW, business_tz=TZ, locale="en_GB", currency="EUR", top=2)
    rates = sorted(
        ((s.total or 0.0, s.dimension_value) for s in whole.result.series_for("delivery_rate")), reverse=True
    )
    assert len(rates) > 2
    named = [
        f"{value_label(channel or '')} {format_value(rate, 'percent', locale='en_GB')}"
        for rate, channel in rates[:2]
    ]
    unsplit = MetricQuery(("delivery_rate",), PeriodSpec("last_month"))
    whole = (await answer(seeded, unsplit, now=NOW, business_tz=TZ, locale="en_GB")).result.series[0].total
    overall = f"all channels together {format_value(whole, 'percent', locale='en_GB')}"
    assert ranked.summary.endswith(f": {named[0]}, {named[1]} and {len(rates) - 2} more; {overall}."), (
        ranked.summary
    )
    assert ranked.summary.startswith("Delivery rate by channel, "), ranked.summary


async def test_a_rate_split_by_campaign_calls_its_whole_overall_since_it_holds_messages_of_no_campaign(
    seeded: Database,
) -> None:
    """ "delivery rate by campaign": the whole is every message's rate, those of no campaign too, so it is
    "overall", not "all campaigns together" (which read as the campaigns' own rate)."""
    query = MetricQuery(("delivery_rate",), PeriodSpec("last_month"), dimensions=("campaign",))
    reply = await answer(seeded, query, now=NOW, business_tz=TZ, locale="en_GB", currency="EUR")
    assert any(unnamed(s) for s in reply.result.series), "the world has messages of no campaign"
    start, end = reply.result.range.start, reply.result.range.end
    cc = CustomerCommunication
    async with seeded.sessions() as session:
        sent, delivered = (
            await session.execute(
                select(func.count(), func.count().filter(cc.status.in_(("delivered", "read")))).where(
                    cc.direction == "outbound", cc.sent_at >= start, cc.sent_at < end
                )
            )
        ).one()
    overall = f"; overall {format_value(delivered / sent, 'percent', locale='en_GB')}."
    assert reply.summary.endswith(overall) and "campaigns together" not in reply.summary, reply.summary
    # Narrowed to all but one campaign, the messages of no campaign are still among the parts: "these together".
    some = next(s.dimension_value for s in reply.result.series if not unnamed(s))
    narrowed = dataclasses.replace(query, filters=(Filter("campaign", "ne", some or ""),))
    fewer = await answer(seeded, narrowed, now=NOW, business_tz=TZ, locale="en_GB", currency="EUR")
    assert "; these together " in fewer.summary and "campaigns together" not in fewer.summary, fewer.summary


async def test_countries_are_named_as_people_say_them_not_by_their_codes(seeded: Database) -> None:
    query = MetricQuery(("orders",), PeriodSpec("last_month"), dimensions=("country",))
    reply = await answer(seeded, query, now=NOW, business_tz=TZ, locale="en_GB", currency="EUR")
    codes = {s.dimension_value for s in reply.result.series}
    assert "DE" in codes
    assert "Germany " in reply.summary and "DE " not in reply.summary, reply.summary
    assert "Germany" in reply.chart.categories or any(s.name == "Germany" for s in reply.chart.series)
    german = MetricQuery(("orders",), PeriodSpec("last_month"), filters=(Filter("country", "eq", "DE"),))
    only = await answer(seeded, german, now=NOW, business_tz=TZ, locale="en_GB", currency="EUR")
    assert only.summary.startswith("Orders for Germany, "), only.summary


async def test_a_split_rate_compared_with_the_period_before_draws_and_says_the_comparison(
    seeded: Database,
) -> None:
    """ "delivery rate by channel last month vs previous": a bar for each channel's rate then and one for
    before, and the highest channel's move in points from its earlier rate; "vs previous" is never only
    promised in the title."""
    compared = MetricQuery(
        ("delivery_rate",), PeriodSpec("last_month"), dimensions=("channel",), comparison="previous_period"
    )
    reply = await answer(seeded, compared, now=NOW, business_tz=TZ, locale="en_GB", currency="EUR")
    october = MetricQuery(
        ("delivery_rate",),
        PeriodSpec("between", start_date=date(2026, 10, 1), end_date=date(2026, 10, 31)),
        dimensions=("channel",),
    )
    before = await answer(seeded, october, now=NOW, business_tz=TZ, locale="en_GB", currency="EUR")
    rate_before = {s.dimension_value: s.total for s in before.result.series_for("delivery_rate")}
    series = reply.result.series_for("delivery_rate")
    assert {s.dimension_value: s.comparison_total for s in series} == pytest.approx(rate_before)
    assert reply.chart.kind == "bar" and len(reply.chart.series) == 2
    now_bars, before_bars = reply.chart.series
    assert (now_bars.name, before_bars.name) == ("1–30 Nov 2026", "1–31 Oct 2026")
    assert before_bars.values == pytest.approx(tuple(rate_before[s.dimension_value] for s in series))
    leader = series[0]
    assert leader.total is not None and leader.comparison_total is not None
    points = (leader.total - leader.comparison_total) * 100
    was = format_value(leader.comparison_total, "percent", locale="en_GB")
    moved = (
        f"{'up' if points > 0 else 'down'} {abs(points):.1f} points from"
        if round(points, 1)
        else "unchanged from"
    )
    said = f"{moved} {was} in 1–31 Oct 2026"
    assert said in reply.summary, reply.summary
    assert render_png(reply.chart).startswith(PNG_MAGIC)
    # The whole business's own rate is said too, so the highest part is not read as the whole moving.
    unsplit = MetricQuery(("delivery_rate",), PeriodSpec("last_month"), comparison="previous_period")
    whole = (await answer(seeded, unsplit, now=NOW, business_tz=TZ, locale="en_GB")).result.series[0]
    assert whole.total is not None and whole.comparison_total is not None
    points = (whole.total - whole.comparison_total) * 100
    whole_moved = (
        f"{'up' if points > 0 else 'down'} {abs(points):.1f} points from"
        if round(points, 1)
        else "unchanged from"
    )
    overall = (
        f"; all channels together {format_value(whole.total, 'percent', locale='en_GB')}, {whole_moved} "
        f"{format_value(whole.comparison_total, 'percent', locale='en_GB')} in 1–31 Oct 2026."
    )
    assert reply.summary.endswith(overall), reply.summary


@pytest.mark.parametrize(
    ("operator", "value", "kept", "words"),
    [
        ("eq", "whatsapp", {"whatsapp"}, "for WhatsApp"),
        ("in", ("sms", "email"), {"sms", "email"}, "for SMS or email"),
        ("ne", "email", {"sms", "whatsapp", "telegram"}, "for all but email"),
    ],
    ids=["one", "either", "all-but"],
)
async def test_a_filtered_answer_says_what_it_is_limited_to_and_counts_only_that(
    seeded: Database, operator: str, value: str | tuple[str, ...], kept: set[str], words: str
) -> None:
    """ "messages sent last month on whatsapp": the sentence travels alone (a Telegram notification, a chart's
    alt text), so it names the limit, and its figure is the raw count of only those messages."""
    query = MetricQuery(
        ("messages_sent",),
        PeriodSpec("last_month"),
        filters=(Filter("channel", operator, value),),  # type: ignore[arg-type]
    )
    reply = await answer(seeded, query, now=NOW, business_tz=TZ, locale="en_GB", currency="EUR")
    start, end = reply.result.range.start, reply.result.range.end
    cc = CustomerCommunication
    async with seeded.sessions() as session:
        raw = await session.scalar(
            select(func.count()).where(
                cc.direction == "outbound",
                cc.sent_at >= start,
                cc.sent_at < end,
                cc.channel.in_(sorted(kept)),
            )
        )
    assert raw
    total = format_value(raw, "count", locale="en_GB")
    assert reply.summary == f"Messages sent {words}, {reply.result.range.label} (Europe/Berlin): {total}.", (
        reply.summary
    )
    assert reply.chart.title == f"Messages sent {words}"  # the image is forwarded alone too


async def test_unknown_metric_lists_the_allowed_names(seeded: Database) -> None:
    with pytest.raises(UnknownName) as raised:
        await answer(seeded, MetricQuery(("revenu",), PeriodSpec("last_month")), now=NOW, business_tz=TZ)
    message = str(raised.value)
    assert "revenu" in message and "Allowed:" in message
    assert "revenue" in raised.value.allowed and "messages_sent" in raised.value.allowed


# --- Comparisons by the calendar, recounted from the rows ------------------------------------------------

KOLKATA = "Asia/Kolkata"
#: (zone, now, period, comparison, the compared range [start, end) in UTC as the rule in words gives it)
COMPARED_RANGES = [
    # 1 Dec, 08:00 in Berlin: the first eight hours of November, not the last eight of 30 November.
    (TZ, datetime(2026, 12, 1, 7, tzinfo=UTC), "this_month", "previous_period",
     datetime(2026, 10, 31, 23, tzinfo=UTC), datetime(2026, 11, 1, 7, tzinfo=UTC)),
    (TZ, datetime(2026, 12, 15, 9, 30, tzinfo=UTC), "this_month", "previous_period",
     datetime(2026, 10, 31, 23, tzinfo=UTC), datetime(2026, 11, 15, 9, 30, tzinfo=UTC)),
    # The 31st: all of a 30-day November, all of a 28-day February.
    (TZ, datetime(2026, 12, 31, 9, 30, tzinfo=UTC), "this_month", "previous_period",
     datetime(2026, 10, 31, 23, tzinfo=UTC), datetime(2026, 11, 30, 23, tzinfo=UTC)),
    (TZ, datetime(2026, 3, 31, 9, 30, tzinfo=UTC), "this_month", "previous_period",
     datetime(2026, 1, 31, 23, tzinfo=UTC), datetime(2026, 2, 28, 23, tzinfo=UTC)),
    # Across DST: 11:30 CEST on 15 Apr vs 11:30 CET on 15 Mar; 10:30 CET on 15 Nov vs 10:30 CEST on 15 Oct.
    (TZ, datetime(2026, 4, 15, 9, 30, tzinfo=UTC), "this_month", "previous_period",
     datetime(2026, 2, 28, 23, tzinfo=UTC), datetime(2026, 3, 15, 10, 30, tzinfo=UTC)),
    (TZ, datetime(2026, 11, 15, 9, 30, tzinfo=UTC), "this_month", "previous_period",
     datetime(2026, 9, 30, 22, tzinfo=UTC), datetime(2026, 10, 15, 8, 30, tzinfo=UTC)),
    # A half-hour zone: Kolkata's months begin at 18:30 UTC the day before.
    (KOLKATA, datetime(2026, 12, 15, 9, 30, tzinfo=UTC), "this_month", "previous_period",
     datetime(2026, 10, 31, 18, 30, tzinfo=UTC), datetime(2026, 11, 15, 9, 30, tzinfo=UTC)),
    # Thursday so far vs Monday to the same Thursday hour of last week.
    (TZ, datetime(2026, 12, 17, 9, 30, tzinfo=UTC), "this_week", "previous_period",
     datetime(2026, 12, 6, 23, tzinfo=UTC), datetime(2026, 12, 10, 9, 30, tzinfo=UTC)),
    # Two complete months: the whole month before.
    (TZ, datetime(2026, 12, 15, 9, 30, tzinfo=UTC), "last_month", "previous_period",
     datetime(2026, 9, 30, 22, tzinfo=UTC), datetime(2026, 10, 31, 23, tzinfo=UTC)),
    (TZ, datetime(2026, 12, 15, 9, 30, tzinfo=UTC), "this_month", "same_period_last_year",
     datetime(2025, 11, 30, 23, tzinfo=UTC), datetime(2025, 12, 15, 9, 30, tzinfo=UTC)),
]  # fmt: skip
MINUTE = timedelta(minutes=1)
#: Where the old rule (the equally long stretch just before) and UTC-clock arithmetic would have cut.
TRAPS = (
    datetime(2026, 11, 30, 20, tzinfo=UTC),
    datetime(2026, 3, 15, 9, 30, tzinfo=UTC),
    datetime(2026, 10, 15, 9, 30, tzinfo=UTC),
    datetime(2026, 12, 12, 12, tzinfo=UTC),
)


def order_times() -> list[datetime]:
    """A minute either side of every boundary above, the boundaries themselves, and the traps."""
    moments = set(TRAPS)
    for _, now, _, _, start, end in COMPARED_RANGES:
        moments |= {start - MINUTE, start, end - MINUTE, end, now - MINUTE}
    return sorted(moments)


@pytest.fixture
async def boundary_orders(database: Database) -> Database:
    """Staff and customers from a small seed that ends in June, plus one paid order at each boundary time.

    Amounts are distinct powers of two (in cents), so a total says exactly which orders it holds.
    """
    await seed_database(database, SeedPlan(customers=5, days=2, seed=5, end_date=date(2026, 6, 30)))
    async with database.sessions() as session:
        customer_id = await session.scalar(select(Customer.id).order_by(Customer.id).limit(1))
        assert customer_id is not None
        for index, moment in enumerate(order_times()):
            session.add(
                Order(
                    order_number=f"BOUNDARY-{index}",
                    customer_id=customer_id,
                    status="paid",
                    source_channel="web",
                    amount_minor=2**index,
                    currency="EUR",
                    created_at=moment,
                    paid_at=moment,
                )
            )
        await session.commit()
    return database


async def revenue_between(database: Database, start: datetime, end: datetime) -> float:
    """Net revenue of the counted orders placed in [start, end), summed in Python over every order row."""
    async with database.read_sessions() as session:
        refunded: dict[int, int] = {}
        for refund in await session.scalars(select(Refund)):
            refunded[refund.order_id] = refunded.get(refund.order_id, 0) + refund.amount_minor
        orders = list(await session.scalars(select(Order)))
    counted = {"paid", "shipped", "delivered", "refunded"}
    return (
        sum(
            o.amount_minor - refunded.get(o.id, 0)
            for o in orders
            if o.status in counted and start <= o.created_at < end
        )
        / 100
    )


@pytest.mark.parametrize(
    ("tz", "now", "kind", "comparison", "start", "end"),
    COMPARED_RANGES,
    ids=[f"{c[2]}-{c[3]}-{c[0]}-{c[1]:%Y%m%d%H%M}" for c in COMPARED_RANGES],
)
async def test_the_compared_figure_is_the_sum_over_the_calendar_rows(
    boundary_orders: Database,
    tz: str,
    now: datetime,
    kind: PeriodKind,
    comparison: Comparison,
    start: datetime,
    end: datetime,
) -> None:
    query = MetricQuery(("revenue",), PeriodSpec(kind), comparison=comparison)
    reply = await answer(boundary_orders, query, now=now, business_tz=tz, currency="EUR")
    result = reply.result
    assert result.comparison_range is not None
    assert (result.comparison_range.start, result.comparison_range.end) == (start, end)
    (only,) = result.series
    expected = await revenue_between(boundary_orders, start, end)
    assert expected > 0, "the boundary orders should put something in every compared range"
    assert only.comparison_total == pytest.approx(expected, rel=1e-12)
    current = await revenue_between(boundary_orders, result.range.start, result.range.end)
    assert only.total == pytest.approx(current, rel=1e-12)
    assert f"from {result.comparison_range.label} ({result.comparison_basis})" in reply.summary


def _bot(database: Database, now: datetime) -> CommandContext:
    return CommandContext(Settings(database_url=database.url), database, clock=lambda: now)


async def test_revenue_this_month_vs_last_month_in_the_bot_says_and_counts_the_same_days(
    boundary_orders: Database,
) -> None:
    """The help's own example, asked on the 15th: 1–15 Dec so far against 1–15 Nov to the same hour."""
    now = datetime(2026, 12, 15, 9, 30, tzinfo=UTC)
    ctx = _bot(boundary_orders, now)
    current = await revenue_between(boundary_orders, datetime(2026, 11, 30, 23, tzinfo=UTC), now)
    previous = await revenue_between(
        boundary_orders, datetime(2026, 10, 31, 23, tzinfo=UTC), datetime(2026, 11, 15, 9, 30, tzinfo=UTC)
    )
    change = (current - previous) / previous * 100
    direction = "up" if change > 0 else "down"
    for text in ("revenue this month vs last month", "revenue vs last month", "revenue mom"):
        reply = await ask(ctx, text)
        shown = render_reply(reply)
        assert reply.kind == "answer", shown
        assert "1–15 Dec 2026 so far (Europe/Berlin)" in reply.text, shown
        assert f"{direction} {abs(change):.1f}% from 1–15 Nov 2026 (the same days last month)" in reply.text
        read_as = next(f.value for f in reply.fields if f.label == "Read as")
        assert "vs the same days last month (1–15 Nov 2026)" in read_as, shown
        assert "period before" not in shown and "Traceback" not in shown


@pytest.mark.parametrize(
    ("text", "now", "words"),
    [
        ("revenue last month vs the month before", datetime(2026, 12, 15, 9, 30, tzinfo=UTC),
         "from 1–31 Oct 2026 (the month before)"),
        ("revenue this month compared with last year", datetime(2026, 12, 15, 9, 30, tzinfo=UTC),
         "from 1–15 Dec 2025 (the same dates last year)"),
        ("revenue this month yoy", datetime(2026, 12, 15, 9, 30, tzinfo=UTC),
         "from 1–15 Dec 2025 (the same dates last year)"),
        ("revenue this month vs previous", datetime(2026, 12, 31, 9, 30, tzinfo=UTC),
         "from 1–30 Nov 2026 (all of last month)"),
        ("revenue this month vs last month", datetime(2026, 12, 1, 7, tzinfo=UTC),
         "from 1 Nov 2026 (the same days last month)"),
    ],
)  # fmt: skip
async def test_comparison_words_in_the_bot_name_the_compared_dates(
    boundary_orders: Database, text: str, now: datetime, words: str
) -> None:
    reply = await ask(_bot(boundary_orders, now), text)
    assert reply.kind == "answer", render_reply(reply)
    assert words in reply.text, reply.text


async def test_a_saved_report_compares_this_month_with_the_same_days_of_last_month(
    boundary_orders: Database,
) -> None:
    now = datetime(2026, 12, 1, 7, tzinfo=UTC)
    definition = {
        "query": {"metrics": ["revenue"], "period": {"kind": "this_month"}, "comparison": "previous_period"}
    }
    output = await run_saved_report(
        boundary_orders, "Month so far", definition, now=now, business_tz=TZ, locale="en_GB", currency="EUR"
    )
    compared = output.answer.result.comparison_range
    assert compared is not None
    start, end = datetime(2026, 10, 31, 23, tzinfo=UTC), datetime(2026, 11, 1, 7, tzinfo=UTC)
    assert (compared.start, compared.end) == (start, end)
    (only,) = output.answer.result.series
    assert only.comparison_total == pytest.approx(await revenue_between(boundary_orders, start, end))
    assert "from 1 Nov 2026 (the same days last month)" in output.summary


async def test_a_split_comparison_counts_a_value_seen_only_in_the_compared_days(
    boundary_orders: Database,
) -> None:
    """A channel that sold in 1–15 Nov and not since is part of the compared total, and a mover."""
    now = datetime(2026, 12, 15, 9, 30, tzinfo=UTC)
    start, end = datetime(2026, 10, 31, 23, tzinfo=UTC), datetime(2026, 11, 15, 9, 30, tzinfo=UTC)
    async with boundary_orders.sessions() as session:
        customer_id = await session.scalar(select(Customer.id).order_by(Customer.id).limit(1))
        assert customer_id is not None
        moment = datetime(2026, 11, 5, 12, tzinfo=UTC)
        session.add(
            Order(
                order_number="PHONE-ONLY-IN-NOVEMBER",
                customer_id=customer_id,
                status="paid",
                source_channel="phone",
                amount_minor=2**50,  # more than every boundary order together: the total falls
                currency="EUR",
                created_at=moment,
                paid_at=moment,
            )
        )
        await session.commit()
    query = MetricQuery(
        ("revenue",), PeriodSpec("this_month"), dimensions=("source_channel",), comparison="previous_period"
    )
    reply = await answer(boundary_orders, query, now=now, business_tz=TZ, currency="EUR")
    by_channel = {s.dimension_value: s for s in reply.result.series}
    assert by_channel["phone"].total == 0
    assert by_channel["phone"].comparison_total == pytest.approx(2**50 / 100)
    previous = await revenue_between(boundary_orders, start, end)
    assert sum(s.comparison_total or 0.0 for s in reply.result.series) == pytest.approx(previous)
    current = await revenue_between(boundary_orders, datetime(2026, 11, 30, 23, tzinfo=UTC), now)
    change = (current - previous) / previous * 100
    direction = "up" if change > 0 else "down"
    assert f"{direction} {abs(change):.1f}% from 1–15 Nov 2026 (the same days last month)" in reply.summary
    assert "phone -100.0%" in reply.summary.split("biggest moves:")[1]


def drawn_words(svg: str) -> list[str]:
    root = ElementTree.fromstring(svg)  # noqa: S314 - our own renderer's output
    return ["".join(element.itertext()).strip() for element in root.iter("{http://www.w3.org/2000/svg}text")]


@pytest.mark.parametrize("comparison", [None, "previous_period"], ids=["alone", "vs-previous"])
async def test_a_kpi_without_data_says_no_data_and_never_draws_zero(
    seeded: Database, comparison: Comparison | None
) -> None:
    # The seeded story ends on 30 Nov, so on 1 Dec nobody has rated a conversation yet.
    query = MetricQuery(("csat",), PeriodSpec("this_month"), comparison=comparison)
    reply = await answer(seeded, query, now=NOW, business_tz=TZ, locale="en_GB", currency="EUR")
    assert all(s.total is None for s in reply.result.series)
    assert reply.chart.kind == "kpi_tile" and reply.chart.kpi is not None
    assert reply.chart.kpi.value is None and reply.chart.kpi.change_pct is None
    frame = {reply.chart.title, reply.chart.period_label, "Switchboard"}
    words = [
        w for w in drawn_words(render_svg(reply.chart)) if w not in frame and not w.startswith("Data as of")
    ]
    assert words[0] == "No data"
    assert not any(w in {"0", "0.0", "–"} or "%" in w or "▼" in w or "▲" in w for w in words), words
    previous = reply.result.series[0].comparison_total if reply.result.series else None
    if previous is not None:  # the earlier figure may be shown, as itself and without a change
        assert words[1:] == [f"Previous period: {format_value(previous, 'number', locale='en_GB')}"]
    else:
        assert words[1:] == []
    assert render_png(reply.chart).startswith(PNG_MAGIC)


async def test_a_daily_kpi_labels_only_its_largest_anomalies(seeded: Database) -> None:
    # Messages sent per day: the seeded campaigns' send days stand out from the weekday pattern.
    query = MetricQuery(("messages_sent",), PeriodSpec.last_n_days(56), grain="day")
    reply = await answer(seeded, query, now=NOW, business_tz=TZ)
    marks = [a for a in reply.chart.annotations if a.kind == "anomaly"]
    assert len(marks) > MAX_LABELLED_ANOMALIES, "the seeded story should hold more odd days than labels"
    assert all(a.deviation is not None for a in marks)
    (ax,) = draw_chart(reply.chart).axes
    labels = [t for t in ax.texts if t.get_text() == ANOMALY_LABEL]
    assert 1 <= len(labels) <= MAX_LABELLED_ANOMALIES
    # Each label sits on one of the largest deviations (ties share a size, so compare sizes, not days).
    size_at = {axis_day(reply.chart.x_dates[a.x_index or 0]): abs(a.deviation or 0.0) for a in marks}
    third_largest = sorted(size_at.values(), reverse=True)[MAX_LABELLED_ANOMALIES - 1]
    for label in labels:
        x = float(label.xy[0])  # type: ignore[attr-defined]  # labels are matplotlib Annotations
        (size,) = [v for day, v in size_at.items() if math.isclose(day, x)]
        assert size >= third_largest


def axis_day(moment: date | datetime) -> float:
    """Where the chart puts a bucket start: on the reader's clock, in matplotlib's day numbers."""
    local = moment.astimezone(ZoneInfo(TZ)).replace(tzinfo=None) if isinstance(moment, datetime) else moment
    return float(mdates.date2num(local))  # type: ignore[no-untyped-call]


async def test_a_comparison_before_the_records_begin_says_so_rather_than_against_zero(
    seeded: Database,
) -> None:
    """The seeded history is 60 days: last year has no orders recorded, which is not zero revenue."""
    query = MetricQuery(("revenue",), PeriodSpec("last_month"), comparison="same_period_last_year")
    reply = await answer(seeded, query, now=NOW, business_tz=TZ, locale="en_GB", currency="EUR")
    assert "against 0" not in reply.summary and "there are no figures for 1–30 Nov 2025" in reply.summary
    assert reply.result.comparison_range is None
    earlier = MetricQuery(("revenue",), PeriodSpec("last_month"), comparison="previous_period")
    within = await answer(seeded, earlier, now=NOW, business_tz=TZ, locale="en_GB", currency="EUR")
    assert "no figures" not in within.summary and "Oct 2026" in within.summary


async def test_an_answer_names_clinics_as_people_know_them_and_its_parts_are_the_raw_counts(
    seeded: Database,
) -> None:
    """ "appointments by location last month": each clinic by its name without the business's shared
    first word ("Berlin Mitte", not "BER" nor "Northwind Berlin Mitte"), in the sentence, the bars and
    a filter; each figure the raw count of that clinic's appointments."""
    from storage.models import Appointment, BulkMessaging, Location

    query = MetricQuery(("appointments",), PeriodSpec("last_month"), dimensions=("location",))
    business = "Northwind Clinics"
    reply = await answer(seeded, query, now=NOW, business_tz=TZ, locale="en_GB", business_name=business)
    start, end = reply.result.range.start, reply.result.range.end
    async with seeded.sessions() as session:
        clinics = {code: name for code, name in (await session.execute(select(Location.code, Location.name)))}
        counted = dict(
            (
                await session.execute(
                    select(Location.code, func.count(Appointment.id))
                    .join(Location, Location.id == Appointment.location_id)
                    .where(
                        Appointment.scheduled_at >= start,
                        Appointment.scheduled_at < end,
                        Appointment.status != "cancelled",
                    )
                    .group_by(Location.code)
                )
            ).all()
        )
    assert len(counted) >= 2 and all(name.startswith("Northwind ") for name in clinics.values())
    shown = {code: name.removeprefix("Northwind ") for code, name in clinics.items()}
    said = sorted(counted, key=lambda code: -counted[code])[:5]
    for code in said:
        assert f"{shown[code]} {format_value(counted[code], 'count', locale='en_GB')}" in reply.summary
        assert f" {code} " not in reply.summary and "Northwind" not in reply.summary
    bars = dict(zip(reply.chart.categories, reply.chart.series[0].values, strict=True))
    assert bars == {shown[code]: counted[code] for code in counted}
    one = next(iter(counted))
    limited = MetricQuery(
        ("appointments",), PeriodSpec("last_month"), filters=(Filter("location", "eq", one),)
    )
    alone = await answer(seeded, limited, now=NOW, business_tz=TZ, locale="en_GB", business_name=business)
    assert alone.summary.startswith(f"Appointments for {shown[one]}, "), alone.summary
    # Without the business's name, nothing is taken off a clinic's name (it may be "Klinik am See").
    whole_names = await answer(seeded, limited, now=NOW, business_tz=TZ, locale="en_GB")
    assert whole_names.summary.startswith(f"Appointments for {clinics[one]}, "), whole_names.summary

    # Two campaigns with one name: each keeps its slug beside the name, so neither swallows the other.
    async with seeded.sessions() as session:
        slugs = list(await session.scalars(select(BulkMessaging.slug).order_by(BulkMessaging.id).limit(2)))
        await session.execute(
            BulkMessaging.__table__.update().where(BulkMessaging.slug.in_(slugs)).values(name="Same name")
        )
        await session.commit()
    by_campaign = MetricQuery(("messages_sent",), PeriodSpec("last_n_days", n=90), dimensions=("campaign",))
    sent = await answer(seeded, by_campaign, now=NOW, business_tz=TZ, locale="en_GB", currency="EUR")
    assert set(slugs) <= {s.dimension_value for s in sent.result.series}, "both campaigns sent messages"
    for slug in slugs:
        assert f"Same name ({slug})" in sent.chart.categories, sent.chart.categories


async def test_over_time_against_the_period_before_draws_the_earlier_line_day_by_day(
    seeded: Database,
) -> None:
    """ "daily revenue last month vs the month before": the earlier month's line beside this one, its day i
    beside day i (October's 31st has no November day to sit beside), each figure October's own."""
    compared = MetricQuery(
        ("messages_sent",), PeriodSpec("last_month"), grain="day", comparison="previous_period"
    )
    reply = await answer(seeded, compared, now=NOW, business_tz=TZ, locale="en_GB")
    october = MetricQuery(
        ("messages_sent",),
        PeriodSpec("between", start_date=date(2026, 10, 1), end_date=date(2026, 10, 31)),
        grain="day",
    )
    before = (await answer(seeded, october, now=NOW, business_tz=TZ, locale="en_GB")).result.series[0]
    assert reply.chart.kind == "line" and [s.name for s in reply.chart.series] == [
        "1–30 Nov 2026",
        "1–31 Oct 2026",
    ]
    now_line, earlier_line = reply.chart.series
    assert len(now_line.values) == len(earlier_line.values) == 30
    assert earlier_line.values == pytest.approx(tuple(v for _, v in before.points[:30]))
    assert sum(v or 0 for v in earlier_line.values) > 0, "the seeded October has messages"
    assert render_png(reply.chart).startswith(PNG_MAGIC)
