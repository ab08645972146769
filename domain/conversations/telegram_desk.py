"""Live chat for agents in Telegram: the staff bot forwards each conversation's turns to the agent who holds it
(or, while nobody does, to every online agent with Telegram linked); replying to one of those messages answers
the customer, or leaves an internal note with `note:`.

Each forwarded message is remembered (`TelegramPosts`), so a reply finds its conversation after a restart.
Like the Slack threads, forwarding is at most once per turn and agent: a pass claims turns before sending, and
a send Telegram refuses (the agent blocked the bot) is logged, not retried, since others may have it already.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from domain.conversations.delivery_echoes import tell_in_order
from domain.conversations.slack_threads import ECHO_WINDOW, DeliveryEcho, ThreadCard, ThreadTurn
from domain.transaction import Transaction

log = logging.getLogger(__name__)

#: How many turns of the customer and staff an agent handed a conversation they never saw in Telegram gets
#: before the news, so they can answer without opening the dashboard.
CATCH_UP = 5


@dataclass(frozen=True)
class TelegramAgent:
    """An agent the staff bot can write to: their private chat with the bot is their Telegram user id."""

    staff_id: int
    telegram_user_id: int


class TelegramPosts(Protocol):
    async def pending_turn_ids(self, limit: int) -> list[int]: ...

    async def claim_turns(self, turn_ids: list[int], now: datetime) -> list[ThreadTurn]:
        """Mark these turns forwarded (those nobody else took) and return them, but for history (older than
        NEWS_WINDOW) of a conversation never forwarded before."""

    async def card(self, chat_id: int) -> ThreadCard | None: ...

    async def recipients(self, chat_id: int, *, earlier_too: bool = False) -> list[TelegramAgent]:
        """The holder when they are an agent with Telegram linked; while nobody holds it, every online one.
        `earlier_too`: also everyone told of this conversation before (so they learn who took it)."""

    async def remember(self, chat_id: int, telegram_chat_id: int, message_id: int, at: datetime) -> None: ...

    async def catch_up(self, chat_id: int, telegram_chat_id: int, before_turn: int) -> list[ThreadTurn]:
        """For an agent never told of this conversation in Telegram (it was handed to them): its last
        CATCH_UP turns of the customer and staff before `before_turn`, oldest first; none once they were."""

    async def chat_for_message(self, telegram_chat_id: int, message_id: int) -> int | None: ...

    async def pending_echo_ids(self, since: datetime, limit: int) -> list[int]:
        """Replies agents wrote in Telegram since `since` whose delivery outcome they have not been told."""

    async def claim_echoes(self, turn_ids: list[int]) -> list[TelegramEcho]:
        """Note each reply's current outcome as told (those nobody else took) and return them."""

    async def release_echo(self, echo: TelegramEcho) -> None:
        """The outcome could not be told: its reply is due again (unless another outcome came meanwhile)."""


class TelegramDeskUnitOfWork(Transaction, Protocol):
    @property
    def telegram(self) -> TelegramPosts: ...


class TelegramSender(Protocol):
    """The staff bot (at the edge): sends one turn to one agent, with the conversation's buttons; its message id."""

    async def send_turn(self, telegram_user_id: int, turn: ThreadTurn, card: ThreadCard) -> int: ...

    async def send_echo(self, echo: TelegramEcho) -> int:
        """Tell the agent what happened to their reply, as a reply to it; the message id. PostRefused when
        Telegram refuses for good (the agent blocked the bot), PostNotTaken for this message alone."""


@dataclass(frozen=True)
class TelegramEcho:
    """A reply's delivery outcome, to tell the agent in the Telegram chat they wrote it in, as a reply to it."""

    echo: DeliveryEcho
    telegram_chat_id: int
    message_id: int


@dataclass
class ForwardPass:
    forwarded: int = 0
    #: Delivery outcomes told to the agents who wrote the replies in Telegram.
    echoes: int = 0
    given_back: int = 0
    errors: list[str] = field(default_factory=list)


async def forward_to_telegram(
    open_uow: Callable[[], TelegramDeskUnitOfWork],
    open_read: Callable[[], TelegramDeskUnitOfWork],
    sender: TelegramSender,
    now: datetime,
    *,
    limit: int = 200,
) -> ForwardPass:
    done = ForwardPass()
    async with open_read() as uow:
        pending = await uow.telegram.pending_turn_ids(limit)
    if pending:
        await _forward_turns(open_uow, open_read, sender, pending, now, done)
    try:
        await _tell_outcomes(open_uow, open_read, sender, now, limit, done)
    except Exception as error:  # the database was busy: the outcomes are told in a later pass
        log.warning("telling delivery outcomes in Telegram failed: %s", error)
        done.errors.append(f"echoes: {error}")
    return done


async def _forward_turns(
    open_uow: Callable[[], TelegramDeskUnitOfWork],
    open_read: Callable[[], TelegramDeskUnitOfWork],
    sender: TelegramSender,
    pending: list[int],
    now: datetime,
    done: ForwardPass,
) -> None:
    async with open_uow() as uow:
        turns = await uow.telegram.claim_turns(pending, now)
        await uow.commit()
    for turn in turns:
        async with open_read() as uow:
            card = await uow.telegram.card(turn.chat_id)
            # What staff do (a reply, "Jonas took it") also reaches those told before, so nobody answers twice;
            # what the customer writes goes to the holder.
            agents = await uow.telegram.recipients(turn.chat_id, earlier_too=turn.author != "customer")
        if card is None:
            continue
        for agent in agents:
            if turn.written_in == "telegram" and turn.staff_id == agent.staff_id:
                continue  # the agent wrote it in this very chat
            async with open_read() as uow:
                # Handed a conversation they never saw here ("Assigned to Lena"): what the customer said first.
                earlier = await uow.telegram.catch_up(turn.chat_id, agent.telegram_user_id, turn.turn_id)
            try:
                for before in earlier:
                    sent = await sender.send_turn(agent.telegram_user_id, before, card)
                    async with open_uow() as uow:
                        await uow.telegram.remember(turn.chat_id, agent.telegram_user_id, sent, now)
                        await uow.commit()
                message_id = await sender.send_turn(agent.telegram_user_id, turn, card)
            except Exception as error:  # one agent's blocked chat must not stop the others
                log.warning(
                    "forwarding turn %s to Telegram %s failed: %s",
                    turn.turn_id,
                    agent.telegram_user_id,
                    error,
                )
                done.errors.append(f"turn {turn.turn_id} to {agent.telegram_user_id}: {error}")
                continue
            async with open_uow() as uow:
                await uow.telegram.remember(turn.chat_id, agent.telegram_user_id, message_id, now)
                await uow.commit()
            done.forwarded += 1


async def _tell_outcomes(
    open_uow: Callable[[], TelegramDeskUnitOfWork],
    open_read: Callable[[], TelegramDeskUnitOfWork],
    sender: TelegramSender,
    now: datetime,
    limit: int,
    done: ForwardPass,
) -> None:
    """What happened to replies written in Telegram, told to their agents once per outcome, each remembered
    as the conversation's post (so erasing the customer overwrites it, and replying to it answers them).
    One Telegram refuses for good (the agent blocked the bot) is dropped; on a failure that may pass (flood
    control, Telegram down) it and the rest wait for the next pass."""
    async with open_read() as uow:
        echo_ids = await uow.telegram.pending_echo_ids(now - ECHO_WINDOW, limit)
    if not echo_ids:
        return
    async with open_uow() as uow:
        echoes = await uow.telegram.claim_echoes(echo_ids)
        await uow.commit()

    async def send(echo: TelegramEcho) -> bool:
        message_id = await sender.send_echo(echo)
        try:
            async with open_uow() as uow:
                await uow.telegram.remember(echo.echo.chat_id, echo.telegram_chat_id, message_id, now)
                await uow.commit()
        except Exception:  # told all the same: sending it again would tell it twice
            log.warning(
                "could not remember the delivery outcome told for turn %s", echo.echo.turn_id, exc_info=True
            )
        return True

    async def give_back(these: Sequence[TelegramEcho]) -> None:
        async with open_uow() as uow:
            for echo in these:
                await uow.telegram.release_echo(echo)
            await uow.commit()

    told = await tell_in_order(
        echoes, send, give_back, chat="Telegram", turn_of=lambda echo: echo.echo.turn_id, errors=done.errors
    )
    done.echoes += told.told
    done.given_back += told.given_back
