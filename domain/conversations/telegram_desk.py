"""Live chat for agents in Telegram: the staff bot forwards each conversation's turns to the agent who holds it
(or, while nobody does, to every online agent with Telegram linked); replying to one of those messages answers
the customer, or leaves an internal note with `note:`.

Each forwarded message is remembered (`TelegramPosts`), so a reply finds its conversation after a restart.
Like the Slack threads, forwarding is at most once per turn and agent: a pass claims turns before sending, and
a send Telegram refuses (the agent blocked the bot) is logged, not retried, since others may have it already.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from domain.conversations.slack_threads import ThreadCard, ThreadTurn
from domain.transaction import Transaction

log = logging.getLogger(__name__)


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

    async def chat_for_message(self, telegram_chat_id: int, message_id: int) -> int | None: ...


class TelegramDeskUnitOfWork(Transaction, Protocol):
    @property
    def telegram(self) -> TelegramPosts: ...


class TelegramSender(Protocol):
    """The staff bot (at the edge): sends one turn to one agent, with the conversation's buttons; its message id."""

    async def send_turn(self, telegram_user_id: int, turn: ThreadTurn, card: ThreadCard) -> int: ...


@dataclass
class ForwardPass:
    forwarded: int = 0
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
    if not pending:
        return done
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
            try:
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
    return done
