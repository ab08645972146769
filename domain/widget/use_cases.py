"""The widget's use-cases: a visitor starts or resumes a visit, writes to us, and confirms our replies."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain.audit import AuditEntry
from domain.conversations.attachments import KeptFile
from domain.conversations.model import CustomerMessage, InboundResult
from domain.conversations.newcomers import FIRST_CONTACT_TAG
from domain.conversations.use_cases import InboundPolicy, handle_customer_message
from domain.delivery.ports import DeliveryReceipt, InboundMessage
from domain.vocabulary import Channel, MessageStatus
from domain.widget.model import (
    UNNAMED_VISITOR,
    WIDGET_PROVIDER,
    Visitor,
    VisitorPlace,
    VisitorSession,
    WidgetKey,
    WidgetRefused,
    check_client_id,
    check_contact,
    check_message,
    new_key,
    new_token,
    origin_of,
    reply_ref,
    token_hash,
    widget_message_ref,
)
from domain.widget.ports import WidgetUnitOfWork

#: A visitor of whom nothing is known (a caller that passes no place): UTC and English.
UNPLACED = VisitorPlace()
#: The most receipts one request may carry.
MAX_RECEIPTS = 200


async def start_visit(
    uow: WidgetUnitOfWork,
    key: WidgetKey,
    token: str | None,
    *,
    now: datetime,
    name: str | None = None,
    email: str | None = None,
    place: VisitorPlace = UNPLACED,
) -> VisitorSession:
    """The visitor behind `token` on this key's site, or a new visitor with a new token.

    Opening the chat makes no customer: a visitor becomes one when they first write (a message, the offline
    form, or their name or email here), so curious visitors never count as new customers."""
    clean_name, clean_email = check_contact(name, email)
    async with uow:
        known = await uow.visitors.visitor(token_hash(token)) if token else None
        created = token is None or known is None or known.key_id != key.id
        if token is None or known is None or created:
            token = new_token()
            visitor = await uow.visitors.add_visitor(key.id, token_hash(token), now)
            uow.audit.record(
                AuditEntry(
                    "visitor", "widget", "widget.visitor", f"widget_visitor:{visitor.id}", {"key": key.name}
                )
            )
        else:
            visitor = known
        if clean_name or clean_email:
            await _writing_customer(uow, key, visitor.id, clean_name, clean_email, now, place)
            visitor = await uow.visitors.visitor(token_hash(token)) or visitor
        elif not created:
            await uow.visitors.seen(visitor.id, now)
        await uow.commit()
    return VisitorSession(token, visitor, created=created)


async def _writing_customer(
    uow: WidgetUnitOfWork,
    key: WidgetKey,
    visitor_id: int,
    name: str | None,
    email: str | None,
    now: datetime,
    place: VisitorPlace,
) -> int:
    """The customer of a visitor who writes to us: created the first time, at home in the key's clinic (so
    the clinic's team, Slack channel and SLA policy apply), in their browser's zone and language, tagged as
    a first contact on the website chat as other channels' newcomers are; afterwards only what they told us
    is filled in."""
    await uow.visitors.seen(visitor_id, now)  # holds the visitor's row: two first messages make one customer
    customer_id = await uow.visitors.customer_of(visitor_id)
    if customer_id is not None:
        if name or email:
            await uow.visitors.set_contact(customer_id, name, email)
        return customer_id
    customer_id = await uow.visitors.add_customer(
        name or UNNAMED_VISITOR,
        email,
        key.location_id,
        now,
        timezone=place.timezone,
        locale=place.language,
        tag=FIRST_CONTACT_TAG.format(channel=Channel.CHAT.value),
    )
    await uow.visitors.link_customer(visitor_id, customer_id)
    uow.audit.record(
        AuditEntry(
            "visitor",
            "widget",
            "widget.customer",
            f"customer:{customer_id}",
            {"key": key.name, "visitor": visitor_id, "home_location_id": key.location_id},
        )
    )
    return customer_id


async def send_visitor_message(
    uow: WidgetUnitOfWork,
    key: WidgetKey,
    visitor: Visitor,
    *,
    client_id: str,
    text: str,
    policy: InboundPolicy,
    now: datetime,
    name: str | None = None,
    email: str | None = None,
    file: KeptFile | None = None,
    place: VisitorPlace = UNPLACED,
) -> InboundResult:
    """What a visitor wrote, through the same inbound path as every channel: it opens or joins their
    conversation on the website chat and is assigned like any other. A retried POST (the same
    `client_id`) is stored once; its result then has no communication id. A `file` (an image or PDF that
    passed the attachment rules) is kept on the turn; its words may then be empty (the turn then reads
    "[file: name]", as a WhatsApp image without a caption reads "[image]")."""
    body = check_message(text) if text.strip() or file is None else f"[file: {file.filename}]"
    check_client_id(client_id)
    clean_name, clean_email = check_contact(name, email)
    message = InboundMessage(
        provider=WIDGET_PROVIDER,
        channel=Channel.CHAT,
        provider_message_id=widget_message_ref(visitor.id, client_id),
        from_address=f"visitor:{visitor.id}",
        to_address=f"widget:{key.key}"[:254],
        body=body,
        received_at=now,
        sender_name=clean_name or visitor.name,
    )
    async with uow:
        await _writing_customer(uow, key, visitor.id, clean_name, clean_email, now, place)
        files = (file,) if file is not None else ()
        result = await handle_customer_message(uow, CustomerMessage(message), policy, now, files)
        await uow.commit()
    return result


async def confirm_replies(
    uow: WidgetUnitOfWork,
    visitor: Visitor,
    *,
    delivered: Sequence[int],
    read: Sequence[int],
    now: datetime,
) -> int:
    """The widget received (`delivered`) or showed (`read`) these replies; only the visitor's own replies
    move, each at most once per status. Returns how many receipts changed something."""
    wanted = [*dict.fromkeys([*delivered, *read])][:MAX_RECEIPTS]
    if visitor.customer_id is None:
        return 0  # a visitor who has not written has no replies
    async with uow:
        own = set(await uow.visitors.own_replies(visitor.customer_id, wanted))
        receipts = [
            DeliveryReceipt(WIDGET_PROVIDER, reply_ref(message_id), status, now, our_message_id=message_id)
            for status, ids in ((MessageStatus.DELIVERED, delivered), (MessageStatus.READ, read))
            for message_id in dict.fromkeys(ids)
            if message_id in own
        ]
        if not receipts:
            return 0
        results = await uow.outbox.apply_receipts(receipts)
        await uow.commit()
    return sum(1 for result in results if result.applied)


async def create_widget_key(
    uow: WidgetUnitOfWork,
    *,
    name: str,
    origins: Sequence[str],
    actor: str,
    via: str,
    now: datetime,
    location: str | None = None,
) -> WidgetKey:
    """A key for one website, usable only from `origins` (scheme://host[:port]); audited. With `location`
    (a clinic's code) its visitors belong to that clinic: its team, Slack channel and SLA policy apply."""
    clean_name = " ".join(name.split())[:120]
    if not clean_name:
        raise WidgetRefused("Give the key a name (the website it is for).", 422)
    allowed = tuple(dict.fromkeys(origin_of(o) for o in origins))
    if not allowed or "" in allowed:
        raise WidgetRefused("Give each origin as scheme://host[:port], e.g. https://www.clinic.example.", 422)
    key = new_key()
    async with uow:
        location_id = await uow.keys.location_id(location.strip()) if location else None
        if location and location_id is None:
            raise WidgetRefused(f"There is no clinic with the code '{location.strip()}'.", 422)
        key_id = await uow.keys.add(key, clean_name, allowed, location_id, now)
        if key_id is None:
            raise WidgetRefused("That key is taken; try again.", 409)
        uow.audit.record(
            AuditEntry(
                actor,
                via,
                "widget.key.create",
                f"widget_key:{key_id}",
                {"name": clean_name, "origins": list(allowed), "location_id": location_id},
            )
        )
        await uow.commit()
    return WidgetKey(key_id, key, clean_name, allowed, location_id, True)


async def set_widget_key_enabled(
    uow: WidgetUnitOfWork, key_id: int, enabled: bool, *, actor: str, via: str, now: datetime
) -> None:
    """Turn a key off (its website's widget stops opening chats and sending; conversations already open
    stay with agents) or on again; audited. Turning a key off is how a leaked key is stopped."""
    async with uow:
        changed = await uow.keys.set_enabled(key_id, enabled)
        if changed is None:
            raise WidgetRefused(f"There is no widget key {key_id}.", 404)
        if changed:
            action = "widget.key.enable" if enabled else "widget.key.disable"
            uow.audit.record(AuditEntry(actor, via, action, f"widget_key:{key_id}", {"at": now.isoformat()}))
        await uow.commit()
