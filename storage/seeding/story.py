"""One customer's whole history, generated from a random stream of its own so any batch can be regenerated."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from operator import itemgetter

from storage.seeding.campaigns import SEND_FROM_MINUTE, SEND_OVER_MINUTES
from storage.seeding.catalogue import RULE_CHANNELS, Row
from storage.seeding.commerce import Touch, appointments, orders
from storage.seeding.conversations import chats, threads
from storage.seeding.people import Customer, make_customer
from storage.seeding.plan import derive_rng
from storage.seeding.world import World

_created_at = itemgetter("created_at")
_CAMPAIGN_REPLIES = ("Thanks!", "Is this valid in the clinic too?", "How long does shipping take?", "👍")


def customer_story(world: World, customer_id: int) -> None:
    """Generate and buffer every row about customer `customer_id`."""
    rng = derive_rng(world.seed, "customer", customer_id)
    customer = make_customer(customer_id, world.customer_total, rng, world.calendar, world.phones)
    sink = world.sink
    sink.add("customers", customer.row())
    for tag in customer.tags:
        sink.add("customer_tags", {"customer_id": customer.id, "tag": tag})
    sink.add("communication_preferences", customer.preference_row())
    messages = sink.buffers["customer_communications"]
    first_message = len(messages)
    _consents(world, rng, customer)
    _welcome(world, rng, customer)
    touches = _campaign_messages(world, rng, customer)
    orders(world, rng, customer, touches)
    appointments(world, rng, customer)
    threads(world, rng, customer)
    chats(world, rng, customer)
    _number_in_time_order(messages, first_message)


def _number_in_time_order(messages: list[Row], first: int) -> None:
    """Give the customer's messages (`messages[first:]`) their ids in time order, as a live system does:
    pages list a customer's messages newest first by id, so a reply must never be numbered before the
    message it answers."""
    written = messages[first:]
    if len(written) < 2:
        return
    ids = sorted(row["id"] for row in written)
    written.sort(key=_created_at)
    for row, message_id in zip(written, ids, strict=True):
        row["id"] = message_id
    messages[first:] = written


def _consents(world: World, rng: random.Random, customer: Customer) -> None:
    """The consent ledger in time order, and the current row per channel pointing at its latest entry."""
    latest: dict[str, tuple[int, int]] = {}
    for position, entry in enumerate(customer.consents):
        record_id = world.ids.next("consent_records")
        world.sink.add(
            "consent_records",
            {"id": record_id, "customer_id": customer.id, "channel": entry.channel, "status": entry.status,
             "source": entry.source, "detail": entry.detail, "recorded_at": entry.at},
        )  # fmt: skip
        latest[entry.channel] = (record_id, position)
        if entry.status != "opted_out" or entry.at < world.calendar.start_at:
            continue
        world.messenger.record_opt_out(entry.at, entry.channel)
        if entry.source == "sms_keyword":
            world.messenger.emit(world.messenger.inbound(rng, customer, "sms", entry.at, "STOP"))
    for channel, (record_id, position) in sorted(latest.items()):
        entry = customer.consents[position]
        world.sink.add(
            "customer_consents",
            {"customer_id": customer.id, "channel": channel, "status": entry.status, "source": entry.source,
             "record_id": record_id, "changed_at": entry.at},
        )  # fmt: skip


def _welcome(world: World, rng: random.Random, customer: Customer) -> None:
    at = customer.created_at + timedelta(minutes=1)
    if customer.created_at < world.calendar.start_at or at >= world.calendar.end_at:
        return
    channel = customer.reachable_on(RULE_CHANNELS["welcome"], at)
    if channel is None:
        return
    row = world.messenger.outbound(
        rng, customer, channel, at, source="notification", key=f"customer.created:customer:{customer.id}",
        template="welcome", variables={"first_name": customer.first_name, "clinic": customer.clinic.name},
        source_ref=f"customer:{customer.id}",
    )  # fmt: skip
    world.messenger.emit(row)


_WEEK = timedelta(days=7)


def _sent_within_week(sent: list[datetime], at: datetime) -> int:
    return sum(1 for moment in sent if at - moment < _WEEK)


def _campaign_messages(world: World, rng: random.Random, customer: Customer) -> list[Touch]:
    """The campaigns that reached this customer; audience members without a usable channel are excluded."""
    touches: list[Touch] = []
    calendar, messenger = world.calendar, world.messenger
    created_at, segment, tags, cap = (
        customer.created_at,
        customer.segment,
        customer.tags,
        customer.marketing_cap,
    )
    for campaign in world.campaigns:
        if campaign.launched_at <= created_at or segment not in campaign.segments:
            continue
        if campaign.tags_any and not any(tag in tags for tag in campaign.tags_any):
            continue
        # Sent in the daytime sending window, so quiet hours never apply.
        at = calendar.local_time(
            campaign.day_index, customer.timezone, SEND_FROM_MINUTE + rng.randrange(SEND_OVER_MINUTES)
        )
        at = at.replace(second=rng.randrange(60))
        channel = customer.reachable_on(campaign.channels, at)
        if channel is None or (cap is not None and _sent_within_week(customer.marketing_sent, at) >= cap):
            campaign.excluded += 1
            continue
        campaign.planned += 1
        customer.marketing_sent.append(at)
        row = messenger.outbound(
            rng, customer, channel, at, source="campaign", key=f"campaign:{campaign.id}:customer:{customer.id}",
            template=campaign.template, variables={"first_name": customer.first_name, **campaign.variables},
            campaign_id=campaign.id, source_ref=f"campaign:{campaign.slug}",
        )  # fmt: skip
        reply = None
        if channel != "email" and rng.random() < 0.03:
            reply = messenger.reply(rng, customer, row, timedelta(minutes=rng.randint(1, 600)), rng.choice(_CAMPAIGN_REPLIES))  # fmt: skip
        messenger.emit(row)
        if reply is not None:
            messenger.emit(reply)
        if row["delivered_at"] is not None:
            touches.append(Touch(at, campaign.id, channel))
    return touches
