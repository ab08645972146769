"""Campaigns end to end on SQLite and PostgreSQL: preview, batched planning, crashes, pause, cancel, fallback."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from domain.campaigns.model import CampaignDraft, CampaignError, fallbacks_waiting_words
from domain.campaigns.use_cases import (
    campaign_progress,
    cancel_campaign,
    create_campaign,
    launch_campaign,
    pause_campaign,
    plan_campaign,
    plan_campaign_batch,
    plan_fallbacks,
    preview_campaign,
    resume_campaign,
)
from domain.consent.ledger import record_consent
from domain.messages.pricing import SMS_PRICE_BY_COUNTRY
from domain.templates.selection import BY_LANGUAGE
from domain.vocabulary import Channel, ConsentStatus
from storage.campaigns import SqlCampaignUnitOfWork
from storage.database import Database
from storage.inbox import ConversationUnitOfWork
from storage.models import (
    BulkMessaging,
    ConsentRecord,
    Customer,
    CustomerCommunication,
    CustomerConsent,
    CustomerTag,
    MessageStatusEvent,
    MessageTemplate,
)
from storage.unit_of_work import SqlUnitOfWork, claimable_messages

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
ORDER = (Channel.WHATSAPP, Channel.SMS, Channel.EMAIL)


async def add_templates(database: Database, name: str = "spring_sale") -> None:
    async with database.sessions() as session:
        session.add_all(
            [
                MessageTemplate(
                    name=name,
                    channel="sms",
                    locale="en",
                    category="marketing",
                    body="Hi {{ first_name }}, {{ offer }}. Reply STOP to opt out.",
                    variables=["first_name", "offer"],
                ),
                MessageTemplate(
                    name=name,
                    channel="whatsapp",
                    locale="en",
                    category="marketing",
                    body="Hi {{ first_name }}, {{ offer }}.",
                    variables=["first_name", "offer"],
                    whatsapp_name="spring_sale",
                    whatsapp_language="en",
                    whatsapp_params=["first_name"],
                ),
                MessageTemplate(
                    name=name,
                    channel="email",
                    locale="en",
                    category="marketing",
                    subject="{{ offer }}",
                    body="Dear {{ name }}, {{ offer }}.",
                    variables=["name", "offer"],
                ),
            ]
        )
        await session.commit()


async def add_customer(
    database: Database,
    name: str,
    *,
    phone: str | None = None,
    email: str | None = None,
    timezone: str = "Europe/Berlin",
    tags: tuple[str, ...] = (),
    opted_out: tuple[str, ...] = (),
    opted_in: tuple[str, ...] = (),
    segment: str = "standard",
) -> int:
    async with database.sessions() as session:
        customer = Customer(
            name=name,
            phone_e164=phone,
            email=email,
            timezone=timezone,
            segment=segment,
            created_at=NOW - timedelta(days=30),
        )
        session.add(customer)
        await session.flush()
        session.add_all([CustomerTag(customer_id=customer.id, tag=tag) for tag in tags])
        said = [(c, "opted_out", "SMS keyword STOP") for c in opted_out]
        for channel, status, source in said + [(c, "opted_in", "front desk") for c in opted_in]:
            record = ConsentRecord(
                customer_id=customer.id,
                channel=channel,
                status=status,
                source=source,
                recorded_at=NOW - timedelta(days=2),
            )
            session.add(record)
            await session.flush()
            session.add(
                CustomerConsent(
                    customer_id=customer.id,
                    channel=channel,
                    status=status,
                    source=source,
                    record_id=record.id,
                    changed_at=NOW - timedelta(days=2),
                )
            )
        await session.commit()
        return customer.id


async def small_audience(database: Database) -> dict[str, int]:
    await add_templates(database)
    return {
        "alice": await add_customer(database, "Alice Smith", phone="+4915100000001", email="a@example.com"),
        "bob": await add_customer(
            database, "Bob Jones", phone="+4915100000002", opted_out=("whatsapp", "sms")
        ),
        "carol": await add_customer(database, "Carol King", email="c@example.com"),
        "dan": await add_customer(database, "Dan Nobody"),
        "eve": await add_customer(database, "Eve Adams", phone="+4915100000005", opted_out=("whatsapp",)),
        "frank": await add_customer(database, "Frank Staff", phone="+4915100000006", tags=("staff",)),
    }


async def new_campaign(database: Database, **changes: Any) -> int:
    values: dict[str, Any] = {
        "slug": "spring",
        "name": "Spring sale",
        "template_name": "spring_sale",
        "channel_order": ORDER,
        "audience": {"exclude_tags": ["staff"], "campaign_type": "promotion"},
        "variables": {"offer": "20% off all lenses"},
    }
    values.update(changes)
    campaign = await create_campaign(SqlCampaignUnitOfWork(database), CampaignDraft(**values), NOW)
    return campaign.id


async def outbox_rows(database: Database, campaign_id: int) -> list[CustomerCommunication]:
    async with database.sessions() as session:
        rows = await session.scalars(
            select(CustomerCommunication)
            .where(CustomerCommunication.campaign_id == campaign_id)
            .order_by(CustomerCommunication.customer_id, CustomerCommunication.id)
        )
        return list(rows)


async def test_preview_counts_channels_exclusions_cost_and_sample(database: Database) -> None:
    ids = await small_audience(database)
    campaign_id = await new_campaign(database)

    reader = SqlCampaignUnitOfWork(database, read_only=True)  # a preview must not hold the write lock
    preview = await preview_campaign(reader, campaign_id, now=NOW, batch_size=2)

    assert preview.recipients == 5  # frank is excluded by tag, before any decision
    assert preview.planned == 3
    assert preview.exclusions == {"opted_out": 1, "no_address": 1}
    assert preview.per_channel == {Channel.WHATSAPP: 1, Channel.SMS: 1, Channel.EMAIL: 1}
    # WhatsApp marketing, an SMS to Germany (+49) at its own price, an email.
    assert preview.estimated_cost_micros == 25_000 + SMS_PRICE_BY_COUNTRY["DE"] + 100
    assert preview.sample is not None
    assert preview.sample.customer_id == ids["alice"]
    assert preview.sample.body == "Hi Alice, 20% off all lenses."
    assert await outbox_rows(database, campaign_id) == []  # a preview writes nothing
    assert preview.in_another_language == {}  # everyone reads English, as the template is written


async def test_a_preview_says_who_would_get_the_message_in_a_language_they_do_not_read(
    database: Database,
) -> None:
    """The template is written in English only: two German readers would get the English message, and the
    wizard, the campaign's page and the bot say so, naming the language."""
    from domain.campaigns.languages import not_in_their_language

    ids = await small_audience(database)
    async with database.sessions() as session:
        await session.execute(
            update(Customer).where(Customer.id.in_((ids["alice"], ids["carol"]))).values(locale="de_AT")
        )
        await session.commit()
    campaign_id = await new_campaign(database)
    preview = await preview_campaign(SqlCampaignUnitOfWork(database, read_only=True), campaign_id, now=NOW)
    assert preview.in_another_language == {("de", "en"): 2}
    assert preview.per_language == {"en": 3}
    assert not_in_their_language("spring_sale", preview.in_another_language) == [
        "2 recipients read German, but “spring_sale” has no German message, so they would get the English "
        "one; add a German version of it on the Templates page to write to them in German."
    ]


async def test_the_previews_sample_shows_the_example_unsubscribe_link_not_the_customers_own(
    database: Database,
) -> None:
    """A colleague clicking the link in the preview would opt the first customer out: it is the example one."""
    from domain.consent.model import ConsentPolicy
    from domain.consent.unsubscribe import UnsubscribeLinks

    await add_templates(database, "newsletter")
    async with database.sessions() as session:
        await session.execute(
            update(MessageTemplate)
            .where(MessageTemplate.name == "newsletter", MessageTemplate.channel == "email")
            .values(
                body="Dear {{ name }}, {{ offer }}. Unsubscribe: {{ unsubscribe_url }}",
                variables=["name", "offer", "unsubscribe_url"],
            )
        )
        await session.commit()
    carol = await add_customer(database, "Carol King", email="c@example.com")
    campaign_id = await new_campaign(
        database, slug="letter", template_name="newsletter", channel_order=[Channel.EMAIL]
    )
    links = UnsubscribeLinks("https://clinic.example/", "s3cret")
    reader = SqlCampaignUnitOfWork(database, read_only=True)
    preview = await preview_campaign(
        reader, campaign_id, now=NOW, policy=ConsentPolicy(unsubscribe_links=links)
    )
    assert preview.sample is not None and preview.sample.customer_id == carol
    assert preview.sample.body.endswith(f"Unsubscribe: {links.example()}"), preview.sample.body
    assert links.url(carol, Channel.EMAIL) not in preview.sample.body


async def test_planning_in_batches_gives_each_eligible_customer_exactly_one_row(database: Database) -> None:
    ids = await small_audience(database)
    campaign_id = await new_campaign(database)
    uow = SqlCampaignUnitOfWork(database)
    await launch_campaign(uow, campaign_id, NOW)

    batches = []
    while True:
        progress = await plan_campaign_batch(uow, campaign_id, 2, now=NOW)
        batches.append(progress)
        if progress.done:
            break

    assert len(batches) == 3
    assert (progress.total_planned, progress.total_excluded) == (3, 2)
    rows = await outbox_rows(database, campaign_id)
    by_customer = {row.customer_id: row for row in rows}
    assert len(rows) == len(by_customer) == 5
    assert by_customer[ids["alice"]].channel == "whatsapp"
    assert by_customer[ids["alice"]].payload is not None
    assert by_customer[ids["alice"]].payload["whatsapp_template"]["components"] == [
        {"type": "body", "parameters": [{"type": "text", "text": "Alice"}]}
    ]
    assert by_customer[ids["eve"]].channel == "sms"
    assert by_customer[ids["eve"]].segments == 1
    assert by_customer[ids["carol"]].channel == "email"
    assert by_customer[ids["carol"]].subject == "20% off all lenses"
    bob = by_customer[ids["bob"]]
    assert (bob.status, bob.status_reason) == ("suppressed", "opted_out")
    assert bob.payload is not None and "opted out of WhatsApp" in bob.payload["explanation"]
    assert by_customer[ids["dan"]].status_reason == "no_address"
    assert all(row.next_attempt_at == NOW for row in rows if row.status == "planned")
    assert ids["frank"] not in by_customer
    async with database.sessions() as session:
        campaign = await session.get(BulkMessaging, campaign_id)
        assert campaign is not None
        assert (campaign.planned_count, campaign.excluded_count, campaign.planning_done) == (3, 2, True)
        assert campaign.planning_cursor == ids["eve"]


async def test_a_value_given_in_german_is_read_by_the_german_message_and_the_english_one_keeps_its_own(
    database: Database,
) -> None:
    """`offer[de] = …` in the wizard (BY_LANGUAGE here): the German SMS reads it, the English SMS the plain
    value, and a German patient reached by a template written only in English reads the English value too."""
    await add_templates(database)
    async with database.sessions() as session:
        session.add(
            MessageTemplate(
                name="spring_sale",
                channel="sms",
                locale="de",
                category="marketing",
                body="Hallo {{ first_name }}, {{ offer }}. Abmelden mit STOP.",
                variables=["first_name", "offer"],
            )
        )
        await session.commit()
    anna = await add_customer(database, "Anna Berg", phone="+4915100000021")
    ben = await add_customer(database, "Ben Hill", phone="+4915100000022")
    clara = await add_customer(database, "Clara Vogel", email="clara@example.com")
    async with database.sessions() as session:
        await session.execute(update(Customer).where(Customer.id.in_([anna, clara])).values(locale="de-DE"))
        await session.commit()
    offer = {"offer": "20% off all lenses", BY_LANGUAGE: {"de": {"offer": "20 % Rabatt auf alle Linsen"}}}
    bodies: dict[tuple[str, int], str] = {}
    for slug, order in (("by-sms", [Channel.SMS]), ("by-email", [Channel.EMAIL])):
        campaign_id = await new_campaign(database, slug=slug, channel_order=order, variables=offer)
        uow = SqlCampaignUnitOfWork(database)
        await launch_campaign(uow, campaign_id, NOW)
        while not (await plan_campaign_batch(uow, campaign_id, 10, now=NOW)).done:
            pass
        for row in await outbox_rows(database, campaign_id):
            bodies[(row.channel, row.customer_id)] = f"{row.subject or ''}|{row.body}"
    assert bodies[("sms", anna)] == "|Hallo Anna, 20 % Rabatt auf alle Linsen. Abmelden mit STOP."
    assert bodies[("sms", ben)] == "|Hi Ben, 20% off all lenses. Reply STOP to opt out."
    assert bodies[("email", clara)] == "20% off all lenses|Dear Clara Vogel, 20% off all lenses."
    with pytest.raises(CampaignError, match="gives values per language"):
        await new_campaign(database, slug="bad", variables={"offer": "x", BY_LANGUAGE: {"de": "y"}})


async def test_a_crash_before_the_cursor_commit_loses_and_duplicates_nothing(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await small_audience(database)
    campaign_id = await new_campaign(database)
    uow = SqlCampaignUnitOfWork(database)
    await launch_campaign(uow, campaign_id, NOW)
    await plan_campaign_batch(uow, campaign_id, 2, now=NOW)

    from storage.campaigns import SqlCampaignRepository

    original = SqlCampaignRepository.record_planning

    async def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("power cut after the insert, before the cursor moved")

    monkeypatch.setattr(SqlCampaignRepository, "record_planning", crash)
    with pytest.raises(RuntimeError):
        await plan_campaign_batch(uow, campaign_id, 2, now=NOW)
    assert len(await outbox_rows(database, campaign_id)) == 2  # the crashed batch left nothing behind
    monkeypatch.setattr(SqlCampaignRepository, "record_planning", original)

    # A cursor that is behind (say, restored from an older snapshot) re-plans rows that already exist.
    async with database.sessions() as session:
        await session.execute(update(BulkMessaging).values(planning_cursor=0))
        await session.commit()
    final = await plan_campaign(lambda: SqlCampaignUnitOfWork(database), campaign_id, 2, now=lambda: NOW)

    rows = await outbox_rows(database, campaign_id)
    keys = Counter(row.customer_id for row in rows)
    assert len(rows) == 5 and set(keys.values()) == {1}
    assert (final.total_planned, final.total_excluded) == (3, 2)  # overlap counted once


async def test_pause_hides_rows_from_the_claim_resume_restores_cancel_cancels_planned(
    database: Database,
) -> None:
    await small_audience(database)
    campaign_id = await new_campaign(database)
    uow = SqlCampaignUnitOfWork(database)
    await launch_campaign(uow, campaign_id, NOW)
    await plan_campaign(lambda: SqlCampaignUnitOfWork(database), campaign_id, 100, now=lambda: NOW)

    async def claimable() -> int:
        async with database.sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(CustomerCommunication)
                .where(CustomerCommunication.status == "planned", claimable_messages())
            )
            return int(count or 0)

    assert await claimable() == 3
    await pause_campaign(uow, campaign_id)
    assert await claimable() == 0
    await resume_campaign(uow, campaign_id)
    assert await claimable() == 3

    # one message is already on its way: cancelling must leave it alone
    async with database.sessions() as session:
        first = await session.scalar(
            select(CustomerCommunication.id).where(CustomerCommunication.status == "planned").limit(1)
        )
        await session.execute(
            update(CustomerCommunication).where(CustomerCommunication.id == first).values(status="sent")
        )
        await session.commit()
    assert await cancel_campaign(uow, campaign_id) == 2

    progress = await campaign_progress(uow, campaign_id)
    assert progress.by_status == {"sent": 1, "cancelled": 2, "suppressed": 2}
    assert progress.suppressed_by_reason == {"opted_out": 1, "no_address": 1}
    assert progress.opted_out == 0  # opted out before: suppressed, not an unsubscribe of this campaign

    # The recipient of the one sent message opts out afterwards: that is what "opted out after" counts.
    async with database.sessions() as session:
        sent = await session.scalar(select(CustomerCommunication).where(CustomerCommunication.id == first))
        assert sent is not None and sent.customer_id is not None
        session.add_all(
            [
                ConsentRecord(
                    customer_id=sent.customer_id,
                    channel=sent.channel,
                    status="opted_out",
                    source="sms_keyword",
                    recorded_at=NOW + timedelta(hours=2),
                ),
                ConsentRecord(  # another channel's opt-out is not this campaign's doing
                    customer_id=sent.customer_id,
                    channel="telegram" if sent.channel != "telegram" else "email",
                    status="opted_out",
                    source="telegram_block",
                    recorded_at=NOW + timedelta(hours=2),
                ),
            ]
        )
        await session.execute(
            update(CustomerCommunication).where(CustomerCommunication.id == first).values(sent_at=NOW)
        )
        await session.commit()
    assert (await campaign_progress(uow, campaign_id)).opted_out == 1

    # An opt-out weeks later is no unsubscribe of this campaign (the walk saw one counted by twelve).
    async with database.sessions() as session:
        await session.execute(
            update(ConsentRecord)
            .where(ConsentRecord.customer_id == sent.customer_id, ConsentRecord.channel == sent.channel)
            .values(recorded_at=NOW + timedelta(days=10))
        )
        await session.commit()
    assert (await campaign_progress(uow, campaign_id)).opted_out == 0


async def test_quiet_hours_defer_to_the_end_of_the_recipients_own_night(database: Database) -> None:
    await add_templates(database)
    tokyo = await add_customer(database, "Aiko Tanaka", phone="+8190000000001", timezone="Asia/Tokyo")
    berlin = await add_customer(database, "Anna Berg", phone="+4915100000009", timezone="Europe/Berlin")
    campaign_id = await new_campaign(database, channel_order=(Channel.SMS,))
    await launch_campaign(SqlCampaignUnitOfWork(database), campaign_id, NOW)
    await plan_campaign(lambda: SqlCampaignUnitOfWork(database), campaign_id, now=lambda: NOW)

    rows = {row.customer_id: row for row in await outbox_rows(database, campaign_id)}
    # 12:00 UTC is 21:00 in Tokyo, inside the default 21:00-08:00 quiet hours: wait for 08:00 JST.
    assert rows[tokyo].status == "planned"
    assert rows[tokyo].next_attempt_at == datetime(2026, 3, 10, 23, 0, tzinfo=UTC)
    assert rows[berlin].next_attempt_at == NOW


async def test_frequency_cap_per_campaign_type_counts_earlier_campaigns_only(database: Database) -> None:
    await add_templates(database)
    customer = await add_customer(database, "Alice Smith", phone="+4915100000001")
    first = await new_campaign(database, channel_order=(Channel.SMS,))
    await launch_campaign(SqlCampaignUnitOfWork(database), first, NOW)
    await plan_campaign(lambda: SqlCampaignUnitOfWork(database), first, now=lambda: NOW)
    second = await new_campaign(database, slug="spring-2", channel_order=(Channel.SMS,))
    await launch_campaign(SqlCampaignUnitOfWork(database), second, NOW)
    await plan_campaign(lambda: SqlCampaignUnitOfWork(database), second, now=lambda: NOW + timedelta(days=2))

    [row] = await outbox_rows(database, second)
    assert row.customer_id == customer
    assert (row.status, row.status_reason) == ("suppressed", "frequency_cap_campaign_type")


async def test_fallback_enqueues_the_next_channel_once_when_undelivered(database: Database) -> None:
    ids = await small_audience(database)
    campaign_id = await new_campaign(database, fallback_after_minutes=30)
    uow = SqlCampaignUnitOfWork(database)
    await launch_campaign(uow, campaign_id, NOW)
    await plan_campaign(lambda: SqlCampaignUnitOfWork(database), campaign_id, now=lambda: NOW)
    async with database.sessions() as session:
        await session.execute(
            update(CustomerCommunication)
            .where(CustomerCommunication.customer_id == ids["alice"])
            .values(status="sent", sent_at=NOW)
        )
        await session.commit()

    assert await plan_fallbacks(uow, campaign_id, NOW + timedelta(minutes=10)) == 0  # not yet
    assert await plan_fallbacks(uow, campaign_id, NOW + timedelta(minutes=31)) == 1
    assert await plan_fallbacks(uow, campaign_id, NOW + timedelta(minutes=32)) == 0  # never twice

    alice = [row for row in await outbox_rows(database, campaign_id) if row.customer_id == ids["alice"]]
    assert [(row.channel, row.status) for row in alice] == [("whatsapp", "sent"), ("sms", "planned")]


async def test_an_email_falls_back_only_when_it_bounced_never_while_merely_sent(database: Database) -> None:
    """An email's "sent" says nothing about delivery (a relay without DSN never reports it): falling back on it
    would send the SMS to everyone the email reached."""
    await add_templates(database)
    quiet = await add_customer(database, "Quinn Quiet", phone="+4915100000021", email="q@example.com")
    gone = await add_customer(database, "Gus Gone", phone="+4915100000022", email="g@example.com")
    campaign_id = await new_campaign(
        database, channel_order=(Channel.EMAIL, Channel.SMS), fallback_after_minutes=30
    )
    uow = SqlCampaignUnitOfWork(database)
    await launch_campaign(uow, campaign_id, NOW)
    await plan_campaign(lambda: SqlCampaignUnitOfWork(database), campaign_id, now=lambda: NOW)
    async with database.sessions() as session:
        for customer, status in ((quiet, "sent"), (gone, "undelivered")):
            await session.execute(
                update(CustomerCommunication)
                .where(CustomerCommunication.customer_id == customer)
                .values(status=status, sent_at=NOW)
            )
        await session.commit()

    assert await plan_fallbacks(uow, campaign_id, NOW + timedelta(hours=5)) == 1
    rows = [(r.customer_id, r.channel, r.status) for r in await outbox_rows(database, campaign_id)]
    assert sorted(rows) == sorted(
        [(quiet, "email", "sent"), (gone, "email", "undelivered"), (gone, "sms", "planned")]
    ), rows


async def test_a_bounce_keeps_the_campaign_running_until_its_fallback_is_planned(database: Database) -> None:
    """Every email answered within seconds, one of them a bounce: the campaign is not complete (which would
    stop its fallbacks) until the bounced one's SMS is planned after the delay, and then sent; an email left at
    "sent" by a relay without delivery reports does not keep it running for ever."""
    from domain.campaigns.use_cases import complete_campaign_if_done

    await add_templates(database)
    fine = await add_customer(database, "Fay Fine", phone="+4915100000031", email="f@example.com")
    bounced = await add_customer(database, "Bo Bounce", phone="+4915100000032", email="b@example.com")
    # A relay without delivery reports leaves this one at "sent" for good: it cannot fall back, nor hold the end.
    stuck = await add_customer(database, "Stu Sent", phone="+4915100000033", email="s@example.com")
    campaign_id = await new_campaign(
        database, channel_order=(Channel.EMAIL, Channel.SMS), fallback_after_minutes=5
    )
    uow = SqlCampaignUnitOfWork(database)
    await launch_campaign(uow, campaign_id, NOW)
    await plan_campaign(lambda: SqlCampaignUnitOfWork(database), campaign_id, now=lambda: NOW)

    async def answered(customer: int, channel: str, status: str) -> None:
        async with database.sessions() as session:
            await session.execute(
                update(CustomerCommunication)
                .where(
                    CustomerCommunication.customer_id == customer, CustomerCommunication.channel == channel
                )
                .values(status=status, sent_at=NOW)
            )
            await session.commit()

    await answered(fine, "email", "delivered")
    await answered(bounced, "email", "undelivered")
    await answered(stuck, "email", "sent")
    assert not await complete_campaign_if_done(SqlCampaignUnitOfWork(database), campaign_id)
    # The page says why it is still running: one waits for its SMS, due 5 minutes after the bounce.
    progress = await campaign_progress(SqlCampaignUnitOfWork(database), campaign_id)
    assert (progress.fallbacks_waiting, progress.next_fallback_at) == (1, NOW + timedelta(minutes=5))
    assert progress.unconfirmed == 0, "an email at 'sent' never falls back, so it is not said to"
    assert fallbacks_waiting_words(progress, NOW, lambda due: f"{due:%H:%M}") == (
        "1 recipient whose message was not delivered waits to be tried on the next channel, the first at "
        f"{NOW + timedelta(minutes=5):%H:%M}."
    )
    assert await plan_fallbacks(uow, campaign_id, NOW + timedelta(minutes=1)) == 0, "not before the delay"
    assert not await complete_campaign_if_done(SqlCampaignUnitOfWork(database), campaign_id)
    assert await plan_fallbacks(uow, campaign_id, NOW + timedelta(minutes=6)) == 1
    progress = await campaign_progress(SqlCampaignUnitOfWork(database), campaign_id)
    assert progress.fallbacks_waiting == 0 and progress.count("planned") == 1, (
        "planned now, no longer waiting"
    )
    assert not await complete_campaign_if_done(SqlCampaignUnitOfWork(database), campaign_id), "the SMS waits"
    await answered(bounced, "sms", "delivered")
    assert await complete_campaign_if_done(SqlCampaignUnitOfWork(database), campaign_id)
    rows = [(r.customer_id, r.channel, r.status) for r in await outbox_rows(database, campaign_id)]
    assert sorted(rows) == sorted(
        [
            (fine, "email", "delivered"),
            (bounced, "email", "undelivered"),
            (bounced, "sms", "delivered"),
            (stuck, "email", "sent"),
        ]
    ), rows


async def test_audience_filters_by_segment_tags_and_channel(database: Database) -> None:
    await add_templates(database)
    vip = await add_customer(
        database, "Val Ip", phone="+4915100000011", segment="vip", tags=("lenses", "news")
    )
    await add_customer(database, "Vic Ip", email="v@example.com", segment="vip", tags=("lenses",))
    await add_customer(database, "Sam Std", phone="+4915100000013", tags=("lenses", "news"))
    campaign_id = await new_campaign(
        database,
        audience={"segments": ["vip"], "tags_all": ["lenses", "news"], "has_channel": ["sms"]},
    )
    preview = await preview_campaign(SqlCampaignUnitOfWork(database), campaign_id, now=NOW)
    assert preview.recipients == 1
    assert preview.sample is not None and preview.sample.customer_id == vip


async def test_a_campaign_completes_once_planned_and_sent(database: Database) -> None:
    """Completion waits for planning to finish and for every planned message to leave the outbox."""
    from domain.campaigns.use_cases import complete_campaign_if_done
    from storage.campaigns import SqlCampaignUnitOfWork
    from storage.models import BulkMessaging, CustomerCommunication

    async with database.sessions() as session:
        campaign = BulkMessaging(
            slug="done-check", name="Done check", template_name="t", status="running", planning_done=False
        )
        session.add(campaign)
        await session.commit()
        campaign_id = campaign.id
    assert not await complete_campaign_if_done(SqlCampaignUnitOfWork(database), campaign_id)
    async with database.sessions() as session:
        session.add(
            CustomerCommunication(
                channel="sms",
                provider="twilio",
                direction="outbound",
                source="campaign",
                status="planned",
                idempotency_key="k-done",
                to_address="+4915100000000",
                body="x",
                campaign_id=campaign_id,
            )
        )
        (await session.get(BulkMessaging, campaign_id)).planning_done = True  # type: ignore[union-attr]
        await session.commit()
    assert not await complete_campaign_if_done(SqlCampaignUnitOfWork(database), campaign_id)
    async with database.sessions() as session:
        message = (await session.scalars(select(CustomerCommunication))).one()
        message.status = "delivered"
        await session.commit()
    assert await complete_campaign_if_done(SqlCampaignUnitOfWork(database), campaign_id)
    async with database.sessions() as session:
        done = await session.get(BulkMessaging, campaign_id)
    assert done is not None and done.status == "completed" and done.completed_at is not None


async def test_an_opt_out_withdraws_messages_planned_but_not_yet_sent(database: Database) -> None:
    """A recipient deferred by quiet hours who says STOP meanwhile must not get the message at 08:00."""
    await add_templates(database)
    tokyo = await add_customer(database, "Aiko Tanaka", phone="+8190000000001", timezone="Asia/Tokyo")
    berlin = await add_customer(database, "Anna Berg", phone="+4915100000009", timezone="Europe/Berlin")
    campaign_id = await new_campaign(database, channel_order=(Channel.SMS,))
    await launch_campaign(SqlCampaignUnitOfWork(database), campaign_id, NOW)
    await plan_campaign(lambda: SqlCampaignUnitOfWork(database), campaign_id, now=lambda: NOW)

    stop_at = NOW + timedelta(hours=1)
    for customer, channel in ((tokyo, Channel.SMS), (berlin, Channel.EMAIL)):
        await record_consent(
            ConversationUnitOfWork(SqlUnitOfWork(database)),
            customer,
            channel,
            ConsentStatus.OPTED_OUT,
            "sms_keyword",
            "STOP",
            stop_at,
        )

    rows = {row.customer_id: row for row in await outbox_rows(database, campaign_id)}
    assert (rows[tokyo].status, rows[tokyo].status_reason, rows[tokyo].next_attempt_at) == (
        "suppressed",
        "opted_out",
        None,
    )
    assert rows[berlin].status == "planned"  # an email opt-out leaves the SMS alone
    async with database.sessions() as session:
        history = (
            await session.execute(
                select(MessageStatusEvent.status, MessageStatusEvent.source, MessageStatusEvent.detail).where(
                    MessageStatusEvent.communication_id == rows[tokyo].id
                )
            )
        ).all()
    assert [(status, source) for status, source, _ in history] == [("suppressed", "consent")]
    assert "opted out of sms" in history[0].detail
    progress = await campaign_progress(SqlCampaignUnitOfWork(database), campaign_id)
    assert progress.count("planned") == 1


async def test_reading_ahead_plans_the_same_rows_and_a_budget_stops_between_batches(
    database: Database,
) -> None:
    """Pages read ahead on a read-only connection give exactly the rows batch-by-batch planning gives."""
    ids = await small_audience(database)
    campaign_id = await new_campaign(database)
    await launch_campaign(SqlCampaignUnitOfWork(database), campaign_id, NOW)

    def read_only() -> SqlCampaignUnitOfWork:
        return SqlCampaignUnitOfWork(database, read_only=True)

    first = await plan_campaign(
        lambda: SqlCampaignUnitOfWork(database),
        campaign_id,
        2,
        now=lambda: NOW,
        budget=0.0,
        read_uow_factory=read_only,
    )
    assert (first.done, first.total_planned + first.total_excluded) == (
        False,
        2,
    )  # one batch, then the budget

    # A batch planned meanwhile without the read-ahead moves the cursor: a page read ahead for the old
    # cursor must not be used.
    await plan_campaign_batch(SqlCampaignUnitOfWork(database), campaign_id, 2, now=NOW)
    rest = await plan_campaign(
        lambda: SqlCampaignUnitOfWork(database), campaign_id, 2, now=lambda: NOW, read_uow_factory=read_only
    )
    assert rest.done and (rest.total_planned, rest.total_excluded) == (3, 2)
    rows = await outbox_rows(database, campaign_id)
    assert sorted(row.customer_id for row in rows) == sorted(
        ids[name] for name in ("alice", "bob", "carol", "dan", "eve")
    )


async def test_each_opt_out_is_credited_to_the_last_campaign_before_it_within_a_week(
    database: Database,
) -> None:
    """Three patients, two campaigns by SMS. Among many messages, the check that another campaign came in
    between must look at this patient's own messages (it once looked at anyone's, and every count read 0)."""
    await add_templates(database)
    ann = await add_customer(database, "Ann", phone="+4915100000011")
    ben = await add_customer(database, "Ben", phone="+4915100000012")
    cem = await add_customer(database, "Cem", phone="+4915100000013")
    dora = await add_customer(database, "Dora", phone="+4915100000014")  # erased at her request
    first = await new_campaign(database, slug="winter", name="Winter check-up")
    second = await new_campaign(database, slug="new-year", name="New year")
    sent = [(first, ann, NOW), (first, ben, NOW), (first, cem, NOW), (first, dora, NOW)]
    sent += [(second, ben, NOW + timedelta(days=1)), (second, cem, NOW + timedelta(days=1))]
    opted_out = [
        (ann, NOW + timedelta(days=2)),  # the winter campaign's: no other campaign reached Ann
        (ben, NOW + timedelta(days=2)),  # the new year campaign's: it reached Ben after winter's
        (cem, NOW + timedelta(days=10)),  # nine days after the last campaign: nobody's
    ]

    def sms(campaign: int, customer: int, at: datetime, status: str = "delivered") -> CustomerCommunication:
        return CustomerCommunication(
            customer_id=customer,
            campaign_id=campaign,
            channel="sms",
            provider="twilio",
            direction="outbound",
            source="campaign",
            category="marketing",
            to_address="+49151",
            body="Hello",
            status=status,
            created_at=at,
            sent_at=at if status != "planned" else None,
            cost_micros=68_000,
            currency="USD",
        )

    async with database.sessions() as session:
        session.add_all(sms(campaign, customer, at) for campaign, customer, at in sent)
        # Planned, with the estimate planning gave it: it costs nothing until it goes.
        session.add(sms(first, ann, NOW, "planned"))
        session.add_all(
            ConsentRecord(
                customer_id=c, channel="sms", status="opted_out", source="sms_keyword", recorded_at=at
            )
            for c, at in opted_out
        )
        session.add(  # an erasure closes every channel in the ledger: no unsubscribe of the campaign
            ConsentRecord(
                customer_id=dora,
                channel="sms",
                status="opted_out",
                source="erasure",
                recorded_at=NOW + timedelta(days=1),
            )
        )
        await session.commit()
    uow = SqlCampaignUnitOfWork(database)
    winter, new_year = await campaign_progress(uow, first), await campaign_progress(uow, second)
    assert (winter.opted_out, new_year.opted_out) == (1, 1)
    # What providers charged for the messages they took, not the planned one's estimate.
    assert (winter.cost_micros, new_year.cost_micros) == ({"USD": 4 * 68_000}, {"USD": 2 * 68_000})
