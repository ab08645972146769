"""Conversations in Slack threads: each conversation gets a root message in the agents' channel, its turns
follow in the thread, and what an agent writes in the thread goes back to the customer (or stays a note).

The thread map is stored (`SlackThreadStore`), so a restart, a reconnect or a changed channel setting never
orphans a conversation: a reply in an old thread still finds its conversation.

Posting is at most once per turn: a pass claims turns in one transaction (marking them posted), posts them,
and gives back the ones Slack refused. A process that dies between the claim and the post loses that turn's
copy in Slack, never the turn itself (the inbox always has it); a duplicate post is never made.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from domain.audit import AuditTrail
from domain.conversations.attachments import TurnFile
from domain.conversations.delivery_echoes import tell_in_order
from domain.transaction import Transaction
from domain.vocabulary import ChatStatus, MessageStatus

log = logging.getLogger(__name__)

#: Turns older than this when the pass first sees them are history, not news: they are not posted.
NEWS_WINDOW = timedelta(hours=1)
#: A root post claimed this long ago and never finished was abandoned by a process that died.
ABANDONED_CLAIM = timedelta(minutes=2)
#: The outcomes a staff reply's thread is told: delivered, read, and every way it did not arrive (a carrier's
#: "undelivered", a provider's "failed", and our giving up on it).
ECHOED_STATUSES = (
    MessageStatus.DELIVERED,
    MessageStatus.READ,
    MessageStatus.FAILED,
    MessageStatus.UNDELIVERED,
    MessageStatus.DEAD,
)
#: How long after the reply its outcomes are still news.
ECHO_WINDOW = timedelta(days=2)


@dataclass(frozen=True)
class ThreadCard:
    """What a conversation's root message shows: who, where, status and assignee (the buttons follow it)."""

    chat_id: int
    channel: str
    status: ChatStatus
    customer_id: int
    customer_name: str | None
    customer_phone: str | None
    customer_email: str | None
    assignee: str | None
    subject: str | None
    #: The customer's clinic (its code): where its team's channel is, when teams have their own.
    team: str | None = None

    @property
    def state(self) -> str:
        """A digest of what changes the root message; the root is updated only when it changes."""
        seen = f"{self.status.value}|{self.assignee or ''}"
        return hashlib.sha256(seen.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ThreadTurn:
    """One turn to post in the thread."""

    turn_id: int
    chat_id: int
    author: str  # customer, staff, bot, system
    staff_name: str | None
    body: str
    is_note: bool
    created_at: datetime
    #: Where a staff turn was written: "slack", "telegram", or None (the web, the console).
    written_in: str | None = None
    staff_id: int | None = None
    #: The images and PDFs kept with the turn, each shown by name and size with a dashboard link.
    files: tuple[TurnFile, ...] = ()


def written_in(external_ref: str | None) -> str | None:
    """ "slack" for "slack:C1:17000.0001", "telegram" for "telegram:5001:77", None otherwise."""
    prefix = (external_ref or "").partition(":")[0]
    return prefix if prefix in ("slack", "telegram") else None


@dataclass(frozen=True)
class DeliveryEcho:
    """A staff reply's delivery outcome, to say in the thread."""

    turn_id: int
    chat_id: int
    status: MessageStatus
    reason: str | None
    channel: str
    customer_id: int | None = None
    #: The provider's error code (131047), when it gave one; `reason` is its words.
    code: str | None = None
    #: The outcome echoed before this one (None: none yet); a post that fails puts it back, so the next pass
    #: echoes this outcome again.
    echoed_before: str | None = None


@dataclass(frozen=True)
class SlackThread:
    chat_id: int
    channel_id: str
    thread_ts: str | None
    root_state: str | None
    claimed_at: datetime


@dataclass(frozen=True)
class ThreadedTurn:
    """A turn that was written in a Slack thread, found again by its Slack message (for edits and deletes)."""

    turn_id: int
    chat_id: int
    is_note: bool


class SlackThreadStore(Protocol):
    async def pending_turn_ids(self, limit: int) -> list[int]:
        """Turns not yet posted, oldest first (a cheap read; claiming is separate)."""

    async def claim_turns(self, turn_ids: list[int], now: datetime) -> list[ThreadTurn]:
        """Mark these turns posted (those nobody else took) and return the ones still news."""

    async def release_turns(self, turn_ids: list[int]) -> None: ...

    async def thread(self, chat_id: int) -> SlackThread | None: ...

    async def card(self, chat_id: int) -> ThreadCard | None: ...

    async def claim_thread(self, chat_id: int, channel_id: str, now: datetime) -> bool:
        """Take the right to post the root message; False when another poster holds a live claim."""

    async def thread_posted(
        self, chat_id: int, channel_id: str, thread_ts: str, state: str, now: datetime
    ) -> None: ...

    async def drop_thread_claim(self, chat_id: int) -> None: ...

    async def set_root_state(self, chat_id: int, state: str) -> None: ...

    async def pending_echo_ids(self, since: datetime, limit: int) -> list[int]: ...

    async def claim_echoes(self, turn_ids: list[int]) -> list[DeliveryEcho]:
        """Note each reply's current outcome as echoed (those nobody else took) and return them."""

    async def release_echo(self, echo: DeliveryEcho) -> None:
        """The echo could not be posted: its reply is due again (unless another outcome came meanwhile)."""

    async def chat_for_thread(self, channel_id: str, thread_ts: str) -> int | None: ...

    async def turn_by_ref(self, external_ref: str) -> ThreadedTurn | None: ...

    async def replace_note(self, turn_id: int, body: str) -> None: ...

    async def add_system_turn(self, chat_id: int, body: str, at: datetime, *, mirrored: bool) -> None: ...


class SlackThreadUnitOfWork(Transaction, Protocol):
    @property
    def threads(self) -> SlackThreadStore: ...

    @property
    def audit(self) -> AuditTrail: ...


class ThreadPoster(Protocol):
    """Slack itself (at the edge): posting the root, the turns and the echoes, and updating the root."""

    async def post_root(self, channel: str, card: ThreadCard) -> tuple[str, str]:
        """Post the root message; (channel id, ts). `channel` may be a #name, the answer is always an id."""

    async def update_root(self, channel_id: str, thread_ts: str, card: ThreadCard) -> None: ...

    async def post_turn(
        self, channel_id: str, thread_ts: str, turn: ThreadTurn, card: ThreadCard
    ) -> None: ...

    async def post_echo(
        self, channel_id: str, thread_ts: str, echo: DeliveryEcho, card: ThreadCard
    ) -> None: ...


@dataclass
class MirrorPass:
    """What one pass did."""

    claimed: int = 0
    posted: int = 0
    roots: int = 0
    echoes: int = 0
    #: Turns and echoes that could not be posted, due again in the next pass.
    given_back: int = 0
    errors: list[str] = field(default_factory=list)


def team_channels(default: str, per_team: str) -> Callable[[ThreadCard], str]:
    """Where a conversation's thread goes: its team's channel from "BER=C0BERLIN,LON=#london-chat", else the
    default. Codes match in any case."""
    mapping: dict[str, str] = {}
    for part in per_team.split(","):
        code, sep, channel = part.partition("=")
        if sep and code.strip() and channel.strip():
            mapping[code.strip().casefold()] = channel.strip()

    def channel_for(card: ThreadCard) -> str:
        return mapping.get((card.team or "").casefold(), default)

    return channel_for


def slack_ref(channel_id: str, ts: str) -> str:
    """The external reference of a turn written in Slack."""
    return f"slack:{channel_id}:{ts}"


async def mirror_to_slack(
    open_uow: Callable[[], SlackThreadUnitOfWork],
    open_read: Callable[[], SlackThreadUnitOfWork],
    poster: ThreadPoster,
    channel_for: Callable[[ThreadCard], str],
    now: datetime,
    *,
    limit: int = 200,
    concurrency: int = 8,
) -> MirrorPass:
    """Posts every turn not yet in Slack into its conversation's thread (opening the thread first), updates
    roots whose status or assignee changed, and echoes delivery outcomes of staff replies.

    Up to `concurrency` conversations are posted at once (each one's turns in order); `claimed` says how many
    turns the pass took, so a caller can go again at once while there is a backlog."""
    done = MirrorPass()
    async with open_read() as uow:
        pending = await uow.threads.pending_turn_ids(limit)
        echo_ids = await uow.threads.pending_echo_ids(now - ECHO_WINDOW, limit)
    if pending:
        async with open_uow() as uow:
            turns = await uow.threads.claim_turns(pending, now)
            await uow.commit()
        by_chat: dict[int, list[ThreadTurn]] = {}
        for turn in turns:
            by_chat.setdefault(turn.chat_id, []).append(turn)
        gate = asyncio.Semaphore(concurrency)

        async def post(chat_id: int, chat_turns: list[ThreadTurn]) -> None:
            async with gate:
                await _post_chat_turns(open_uow, poster, channel_for, now, chat_id, chat_turns, done)

        await asyncio.gather(*(post(chat_id, chat_turns) for chat_id, chat_turns in by_chat.items()))
        done.claimed = len(pending)
    if echo_ids:
        async with open_uow() as uow:
            echoes = await uow.threads.claim_echoes(echo_ids)
            await uow.commit()
        await _post_echoes(open_read, open_uow, poster, echoes, done)
    return done


async def _post_chat_turns(
    open_uow: Callable[[], SlackThreadUnitOfWork],
    poster: ThreadPoster,
    channel_for: Callable[[ThreadCard], str],
    now: datetime,
    chat_id: int,
    turns: list[ThreadTurn],
    done: MirrorPass,
) -> None:
    unposted = [turn.turn_id for turn in turns]
    try:
        thread, card = await _open_thread(open_uow, poster, channel_for, now, chat_id, done)
        if thread is None and card is not None and not channel_for(card):
            return  # no channel takes this team's conversations: they stay out of Slack
        if thread is None or thread.thread_ts is None or card is None:
            # Another process is posting this conversation's root right now; its turns wait a pass.
            await _give_back(open_uow, unposted, done)
            return
        for turn in turns:
            await poster.post_turn(thread.channel_id, thread.thread_ts, turn, card)
            unposted.remove(turn.turn_id)
            done.posted += 1
        if card.state != thread.root_state:
            await poster.update_root(thread.channel_id, thread.thread_ts, card)
            async with open_uow() as uow:
                await uow.threads.set_root_state(chat_id, card.state)
                await uow.commit()
    except Exception as error:  # Slack refused or was unreachable: the turns wait for the next pass
        log.warning("posting conversation %s to Slack failed: %s", chat_id, error)
        done.errors.append(f"conversation {chat_id}: {error}")
        await _give_back(open_uow, unposted, done)


async def _open_thread(
    open_uow: Callable[[], SlackThreadUnitOfWork],
    poster: ThreadPoster,
    channel_for: Callable[[ThreadCard], str],
    now: datetime,
    chat_id: int,
    done: MirrorPass,
) -> tuple[SlackThread | None, ThreadCard | None]:
    async with open_uow() as uow:
        thread = await uow.threads.thread(chat_id)
        card = await uow.threads.card(chat_id)
        if card is None or (thread is not None and thread.thread_ts is not None):
            return thread, card
        channel = channel_for(card)
        if not channel:
            return None, card
        if not await uow.threads.claim_thread(chat_id, channel, now):
            return None, card
        await uow.commit()
    try:
        channel_id, thread_ts = await poster.post_root(channel, card)
    except Exception:
        async with open_uow() as uow:
            await uow.threads.drop_thread_claim(chat_id)
            await uow.commit()
        raise
    async with open_uow() as uow:
        await uow.threads.thread_posted(chat_id, channel_id, thread_ts, card.state, now)
        await uow.commit()
    done.roots += 1
    return SlackThread(chat_id, channel_id, thread_ts, card.state, now), card


async def _give_back(
    open_uow: Callable[[], SlackThreadUnitOfWork], turn_ids: list[int], done: MirrorPass
) -> None:
    if not turn_ids:
        return
    async with open_uow() as uow:
        await uow.threads.release_turns(turn_ids)
        await uow.commit()
    done.given_back += len(turn_ids)


async def _post_echoes(
    open_read: Callable[[], SlackThreadUnitOfWork],
    open_uow: Callable[[], SlackThreadUnitOfWork],
    poster: ThreadPoster,
    echoes: list[DeliveryEcho],
    done: MirrorPass,
) -> None:
    """Post the claimed echoes in their threads, in order (domain/conversations/delivery_echoes.py)."""

    async def post(echo: DeliveryEcho) -> bool:
        async with open_read() as uow:
            thread = await uow.threads.thread(echo.chat_id)
            card = await uow.threads.card(echo.chat_id)
        if thread is None or thread.thread_ts is None or card is None:
            return False  # the reply was never in a thread (written before Slack was set up)
        await poster.post_echo(thread.channel_id, thread.thread_ts, echo, card)
        return True

    async def give_back(these: Sequence[DeliveryEcho]) -> None:
        async with open_uow() as uow:
            for echo in these:
                await uow.threads.release_echo(echo)
            await uow.commit()

    told = await tell_in_order(
        echoes, post, give_back, chat="Slack", turn_of=lambda echo: echo.turn_id, errors=done.errors
    )
    done.echoes += told.told
    done.given_back += told.given_back


# --- what agents write in a thread --------------------------------------------------------------------


@dataclass(frozen=True)
class ThreadFile:
    """A file a person shared with their thread message, as Slack names it (downloaded with the bot token)."""

    name: str
    declared_type: str | None
    url: str
    size: int | None = None


class SlackFiles(Protocol):
    """Downloads a file people shared in Slack (providers/media.py)."""

    async def slack_file(self, url: str, max_bytes: int) -> bytes:
        """The file's bytes; MediaTooLarge past `max_bytes`, MediaUnavailable (in words) otherwise."""


@dataclass(frozen=True)
class ThreadMessage:
    """A person's message in a Slack thread, as the event told it."""

    channel_id: str
    thread_ts: str
    ts: str
    text: str
    slack_user_id: str
    #: The thread's root was posted by our bot (Slack says so in `parent_user_id`).
    root_is_ours: bool
    team_id: str | None = None
    #: The message carries files (Slack's file_share), named in `files` when the event lists them.
    has_files: bool = False
    files: tuple[ThreadFile, ...] = ()


@dataclass(frozen=True)
class ThreadAnswer:
    """What became of a thread message: `kind` is sent, note, duplicate, refused or ignored; `say` is
    what the agent is told privately (None: nothing to say)."""

    kind: str
    say: str | None = None
    chat_id: int | None = None


def note_text(text: str, prefix: str) -> str | None:
    """The note's text when `text` starts with the note prefix (any case, spaces allowed), else None."""
    stripped = text.lstrip()
    if prefix and stripped.casefold().startswith(prefix.casefold()):
        return stripped[len(prefix) :].strip()
    return None


async def record_thread_edit(
    open_uow: Callable[[], SlackThreadUnitOfWork],
    ref: str,
    *,
    new_text: str | None,
    staff_name: str,
    note_prefix: str,
    now: datetime,
    thread: tuple[str, str] | None = None,
) -> ThreadAnswer:
    """An agent edited (`new_text`) or deleted (None) their message in a thread (`thread`: its channel and
    root ts). A note follows the edit; a reply already went to the customer, so the conversation records that
    it changed in Slack only; an edit of a message that never went (it was refused) is not sent either."""
    async with open_uow() as uow:
        turn = await uow.threads.turn_by_ref(ref)
        if turn is None:
            known = thread is not None and await uow.threads.chat_for_thread(*thread) is not None
            if known and new_text is not None:
                return ThreadAnswer(
                    "refused",
                    "Edits are not sent to the customer, and this message was not sent either. "
                    "Post the corrected reply as a new message in the thread.",
                )
            return ThreadAnswer("ignored")
        if turn.is_note:
            if new_text is None:
                body = f"(note deleted in Slack by {staff_name})"
            else:
                body = note_text(new_text, note_prefix) or new_text.strip()
            await uow.threads.replace_note(turn.turn_id, body)
            await uow.commit()
            return ThreadAnswer("note", None, turn.chat_id)
        what = "edited" if new_text is not None else "deleted"
        await uow.threads.add_system_turn(
            turn.chat_id,
            f"{staff_name} {what} a reply in Slack after it was sent; the customer keeps the original.",
            now,
            mirrored=True,
        )
        await uow.commit()
    say = (
        f"The customer already has your reply as first sent: {what} messages in Slack do not change it. "
        "Send a new reply to correct it."
    )
    return ThreadAnswer("refused", say, turn.chat_id)
