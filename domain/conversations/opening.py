"""`chat open`: staff start a conversation with a customer on a channel that can reach them.

The channel is the one asked for, else the customer's preferred one, else the one they last wrote on,
else any that reaches them; a channel with no address, or one the customer opted out of, is refused in
words. An already live conversation on that channel is returned rather than a second one opened.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from domain.audit import AuditEntry, AuditTrail
from domain.consent.model import ChannelConsent
from domain.conversations.desk import DeskChat, DeskError
from domain.conversations.use_cases import DeskActor
from domain.messages.words import channel_words as words_for_channel
from domain.transaction import Transaction
from domain.vocabulary import Channel, ChatStatus, ConsentStatus

#: The channels staff can start a conversation on, in the order tried when nothing else decides.
OPENABLE: tuple[Channel, ...] = (Channel.WHATSAPP, Channel.TELEGRAM, Channel.SMS, Channel.EMAIL)
#: Free text on WhatsApp reaches a customer only this long after they last wrote there.
WHATSAPP_WINDOW = timedelta(hours=24)
#: Where each channel's address is, in words, for "has no ... on file".
ADDRESS_WORDS = {
    Channel.WHATSAPP: "WhatsApp number",
    Channel.TELEGRAM: "Telegram chat (they have not written to the bot yet)",
    Channel.SMS: "mobile number",
    Channel.EMAIL: "email address",
}


@dataclass(frozen=True)
class Reachability:
    """How a customer can be reached: addresses and consent per channel, their preference and habits."""

    customer_id: int
    name: str
    addresses: Mapping[Channel, str]
    consents: Mapping[Channel, ChannelConsent] = field(default_factory=dict)
    preferred: Channel | None = None
    #: Channels the customer wrote on or talked with us on, the most recent first.
    recent: Sequence[Channel] = ()
    last_inbound_whatsapp_at: datetime | None = None


@dataclass(frozen=True)
class OpenedChat:
    chat_id: int
    customer_id: int
    customer_name: str
    channel: Channel
    #: False: the customer's live conversation on that channel already existed and is returned.
    created: bool
    assigned_name: str | None
    #: Why this channel, in words ("their preferred channel").
    because: str
    #: Something the agent should know before writing (e.g. WhatsApp's 24-hour window), or "".
    note: str = ""


class ChatOpening(Protocol):
    async def reachability(self, customer_id: int, now: datetime) -> Reachability | None:
        """The customer's addresses, consents, preference and recent channels; None when no such customer.
        Holds the customer (where the engine can) so two opens at once make one conversation."""

    async def live_chat(self, customer_id: int, channel: Channel) -> DeskChat | None:
        """Their open, pending or snoozed conversation on `channel`, if any."""

    async def open_chat(self, customer_id: int, channel: Channel, staff_id: int, at: datetime) -> int: ...

    async def assign(self, chat_id: int, staff_id: int) -> None: ...

    async def wake(self, chat_id: int, at: datetime) -> None:
        """A snoozed conversation is open again."""

    async def add_system_turn(self, chat_id: int, body: str, at: datetime) -> None: ...

    async def staff_name(self, staff_id: int) -> str: ...


class ChatOpeningUnitOfWork(Transaction, Protocol):
    @property
    def opening(self) -> ChatOpening: ...

    @property
    def audit(self) -> AuditTrail: ...


def channel_words(channel: Channel) -> str:
    return words_for_channel(channel.value)


def why_not(reach: Reachability, channel: Channel) -> str | None:
    """Why `channel` cannot reach the customer, in words; None when it can."""
    if channel not in OPENABLE:
        return (
            f"Staff cannot start a conversation on the {channel_words(channel)}; "
            f"choose one of {', '.join(channel_words(c) for c in OPENABLE)}."
        )
    if not reach.addresses.get(channel):
        return f"{reach.name} has no {ADDRESS_WORDS[channel]} on file."
    consent = reach.consents.get(channel)
    if consent is not None and consent.status is ConsentStatus.OPTED_OUT:
        when = f" on {consent.changed_at.day} {consent.changed_at:%b %Y}" if consent.changed_at else ""
        return f"{reach.name} opted out of {channel_words(channel)}{when}."
    return None


def choose_channel(reach: Reachability, wanted: Channel | None) -> tuple[Channel, str]:
    """The channel to open on and why; DeskError naming the reasons when none can reach the customer."""
    if wanted is not None:
        refusal = why_not(reach, wanted)
        if refusal is not None:
            raise DeskError(refusal)
        return wanted, "the channel you asked for"
    if reach.preferred is not None and why_not(reach, reach.preferred) is None:
        return reach.preferred, "their preferred channel"
    for channel in reach.recent:
        if why_not(reach, channel) is None:
            return channel, "the channel they last used"
    for channel in OPENABLE:
        if why_not(reach, channel) is None:
            return channel, "a channel that reaches them"
    reasons = " ".join(str(why_not(reach, channel)) for channel in OPENABLE)
    raise DeskError(f"{reach.name} cannot be reached on any channel: {reasons}")


def whatsapp_note(reach: Reachability, channel: Channel, now: datetime) -> str:
    if channel is not Channel.WHATSAPP:
        return ""
    last = reach.last_inbound_whatsapp_at
    if last is not None and now - last < WHATSAPP_WINDOW:
        return ""
    return (
        f"{reach.name} has not written on WhatsApp in the last 24 hours, so only an approved template "
        "reaches them until they write."
    )


async def open_conversation(
    uow: ChatOpeningUnitOfWork,
    customer_id: int,
    actor: DeskActor,
    *,
    channel: Channel | None = None,
    now: datetime,
) -> OpenedChat:
    """Open a conversation with the customer on `channel` (None: chosen for them), assigned to the actor,
    noted and audited (`chat.open`); their live conversation on that channel is returned instead if there
    is one (given to the actor when nobody holds it, woken when snoozed)."""
    async with uow:
        reach = await uow.opening.reachability(customer_id, now)
        if reach is None:
            raise DeskError(f"There is no customer #{customer_id}.")
        chosen, because = choose_channel(reach, channel)
        agent = await uow.opening.staff_name(actor.staff_id)
        existing = await uow.opening.live_chat(customer_id, chosen)
        if existing is None:
            chat_id = await uow.opening.open_chat(customer_id, chosen, actor.staff_id, now)
            await uow.opening.add_system_turn(
                chat_id, f"Opened by {agent} on {channel_words(chosen)} ({because}).", now
            )
            assigned: str | None = agent
        else:
            chat_id, assigned = existing.chat_id, existing.assigned_name
            if existing.status is ChatStatus.SNOOZED:
                await uow.opening.wake(chat_id, now)
                await uow.opening.add_system_turn(chat_id, f"Reopened by {agent}.", now)
            if existing.assigned_staff_id is None:
                await uow.opening.assign(chat_id, actor.staff_id)
                await uow.opening.add_system_turn(chat_id, f"Assigned to {agent}.", now)
                assigned = agent
        uow.audit.record(
            AuditEntry(
                actor.email,
                actor.via,
                "chat.open",
                f"chat:{chat_id}",
                {
                    "customer_id": customer_id,
                    "channel": chosen.value,
                    "created": existing is None,
                    "staff_id": actor.staff_id,
                },
            )
        )
        await uow.commit()
    return OpenedChat(
        chat_id,
        customer_id,
        reach.name,
        chosen,
        existing is None,
        assigned,
        because,
        whatsapp_note(reach, chosen, now),
    )
