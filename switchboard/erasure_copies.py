"""After an erasure: the copies of the customer's conversations in the staff chats, overwritten, and Twilio's
records of their SMS, deleted.

Live chat mirrors each conversation into a Slack thread and into the staff bot's Telegram posts to agents.
Those are ours to change: every message the bot posted in a thread (the root card, the customer's turns,
staff replies, delivery echoes) and every Telegram post it sent is edited to read `ERASED_COPY`. Messages
people typed in a Slack thread are theirs, and a bot token cannot change them: they are counted, so the
operator can have a workspace admin delete them. Agents' own replies in their Telegram chat with the bot
stay in that chat likewise.

Twilio keeps every SMS (text and both numbers) in the account's logs until it is deleted through its API,
which it allows once the message is finished: each of the customer's SMS, both ways, is deleted there.
WhatsApp Cloud and mail relays offer no such call, so their copies stay with Meta and the relay (said in
docs/operations.md).

Best effort, after the database is erased (which is never undone for a copy that could not be changed):
each failure is named, and running the erasure again tries every copy again (the Twilio records not
deleted are kept in the run's audit entry for that). Copies already edited are left alone, and Twilio
answers 404 for a record deleted before, so a second run changes nothing that is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiogram.exceptions import AiogramError, TelegramAPIError, TelegramBadRequest, TelegramRetryAfter
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from domain.counting import counted
from providers.http import retry_after_seconds
from providers.slack.client import slack_client
from providers.telegram.client import telegram_bot
from storage.customer_erasure import (
    Erasure,
    StaffCopies,
    record_copies_erased,
    staff_copies,
)
from storage.database import Database
from switchboard.settings import Settings

#: What every copy reads as afterwards.
ERASED_COPY = "(erased at the customer's request)"
#: Telegram's answer to an edit that changes nothing: the post was erased before.
_NOT_MODIFIED = "message is not modified"
#: Telegram's answer to editing the text of a photo or document: its caption is edited instead.
_NO_TEXT = "there is no text in the message to edit"
#: Twilio's error codes for a message it cannot delete yet (still being sent or received), and for one it
#: does not have (deleted before).
TWILIO_NOT_FINISHED = 20009
TWILIO_NOT_FOUND = 20404
#: Tries of one record while Twilio answers 429, each after the wait it asks for (30 s at most).
RETRIES_ON_429 = 3
#: How long each Slack, Telegram or Twilio call may take.
CALL_SECONDS = 15


@dataclass
class CopiesErased:
    slack_messages: int = 0
    #: Messages people typed in the threads: a bot cannot change them.
    slack_left: int = 0
    telegram_posts: int = 0
    #: Twilio's records of their SMS deleted now, and those Twilio no longer had (deleted before).
    twilio_records: int = 0
    twilio_gone: int = 0
    #: Twilio records not deleted this time: kept in the audit entry, so the next run tries them again
    #: even where nothing else could find them again (an SMS from their number never tied to them).
    twilio_pending: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        return {
            "slack_messages": self.slack_messages,
            "slack_messages_left": self.slack_left,
            "telegram_posts": self.telegram_posts,
            "twilio_records": self.twilio_records,
            "twilio_records_gone": self.twilio_gone,
            "twilio_pending": list(dict.fromkeys(self.twilio_pending)),
            "failures": len(self.failures),
            # What could not be changed, in words, for whoever reads the outcome later (the dashboard).
            "failure_reasons": self.failures[:10],
        }

    @classmethod
    def from_counts(cls, counts: dict[str, Any]) -> CopiesErased:
        """What `counts()` kept in the audit entry, back as the outcome (failures past the tenth by number)."""
        reasons = [str(r) for r in counts.get("failure_reasons", [])]
        more = int(counts.get("failures", 0)) - len(reasons)
        return cls(
            slack_messages=int(counts.get("slack_messages", 0)),
            slack_left=int(counts.get("slack_messages_left", 0)),
            telegram_posts=int(counts.get("telegram_posts", 0)),
            twilio_records=int(counts.get("twilio_records", 0)),
            twilio_gone=int(counts.get("twilio_records_gone", 0)),
            failures=reasons + [f"one more ({n + 1} of {more})" for n in range(max(more, 0))],
        )

    def lines(self, customer_id: int, retry: str | None = None) -> list[str]:
        """What was done, in lines; `retry` says how to try the failures again (default: the command)."""
        lines = []
        if self.slack_messages or self.telegram_posts:
            lines.append(
                f"staff chats: {counted(self.slack_messages, 'Slack message')} and "
                f'{counted(self.telegram_posts, "Telegram post")} now read "{ERASED_COPY}"'
            )
        if self.twilio_records or self.twilio_gone:
            gone = f" ({self.twilio_gone} it no longer had)" if self.twilio_gone else ""
            lines.append(
                f"Twilio: {counted(self.twilio_records, 'SMS record')} deleted from the account's logs{gone}"
            )
        if self.slack_left:
            lines.append(
                f"{counted(self.slack_left, 'message')} that staff typed in their Slack threads "
                + (
                    "remains: a bot cannot change it; a workspace admin can delete it"
                    if self.slack_left == 1
                    else "remain: a bot cannot change them; a workspace admin can delete them"
                )
            )
        for failure in self.failures[:10]:
            lines.append(f"not changed: {failure}")
        if len(self.failures) > 10:
            lines.append(f"and {len(self.failures) - 10} more not changed")
        if self.failures:
            lines.append(
                retry or f"run `switchboard customer erase {customer_id} --yes` again to try those again"
            )
        return lines


async def erase_copies(
    settings: Settings, database: Database, erasure: Erasure, *, actor: str, via: str = "cli"
) -> CopiesErased:
    """After `erasure` (storage.customer_erasure.erase_customer): its customer's copies in the staff chats
    and Twilio's records of their SMS (with those an earlier run left)."""
    return await erase_staff_copies(
        settings, database, erasure.customer_id, actor=actor, twilio_records=erasure.twilio_records, via=via
    )


async def erase_staff_copies(
    settings: Settings,
    database: Database,
    customer_id: int,
    *,
    actor: str,
    twilio_records: Sequence[str] = (),
    via: str = "cli",
) -> CopiesErased:
    """Overwrites the customer's conversations in Slack threads and Telegram posts, and deletes Twilio's
    records of their SMS (`twilio_records`: the erasure's, with those an earlier run left pending); audited
    when any were found."""
    copies = await staff_copies(database, customer_id)
    done = CopiesErased()
    if copies.slack_threads:
        await _erase_slack(settings, copies, done)
    if copies.telegram_posts:
        await _erase_telegram(settings, copies, done)
    if twilio_records:
        await _erase_twilio(settings, twilio_records, done)
    if copies.slack_threads or copies.telegram_posts or twilio_records:
        await record_copies_erased(database, customer_id, actor, done.counts(), via)
    return done


async def _erase_twilio(settings: Settings, sids: Sequence[str], done: CopiesErased) -> None:
    account = settings.twilio_account_sid.strip()
    token = settings.twilio_auth_token.get_secret_value().strip()
    if not account or not token:
        done.failures.append(
            f"{counted(len(sids), 'Twilio SMS record')}: SWITCHBOARD_TWILIO_ACCOUNT_SID and "
            "SWITCHBOARD_TWILIO_AUTH_TOKEN are not set here"
        )
        done.twilio_pending += sids
        return
    messages = f"{settings.twilio_base_url.rstrip('/')}/2010-04-01/Accounts/{account}/Messages"
    async with aiohttp.ClientSession(
        headers={"Authorization": aiohttp.encode_basic_auth(account, token)},
        timeout=aiohttp.ClientTimeout(total=CALL_SECONDS),
    ) as http:
        for index, sid in enumerate(sids):
            try:
                refused_all = await _delete_record(http, f"{messages}/{sid}.json", sid, done)
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                refused_all = f"Twilio could not be reached ({type(error).__name__})"
            if refused_all:
                # The account or Twilio itself, not this record: the rest would fail alike.
                done.failures.append(f"{counted(len(sids) - index, 'Twilio SMS record')}: {refused_all}")
                done.twilio_pending += sids[index:]
                return


async def _delete_record(http: aiohttp.ClientSession, url: str, sid: str, done: CopiesErased) -> str | None:
    """Deletes one record; returns why no record can be deleted now (the credentials, Twilio's throttling),
    else None."""
    for attempt in range(1, RETRIES_ON_429 + 1):
        async with http.delete(url) as answer:
            if answer.status == 204:
                done.twilio_records += 1
                return None
            try:
                problem = await answer.json(content_type=None)
            except ValueError:
                problem = None
            problem = problem if isinstance(problem, dict) else {}
            code, said = problem.get("code"), str(problem.get("message") or "").strip()
            if answer.status == 404 and code == TWILIO_NOT_FOUND:
                done.twilio_gone += 1
                return None
            if answer.status == 401:
                return f"Twilio refused the credentials (401 {said})".replace(" )", ")")
            if answer.status == 429:  # Twilio's concurrency limit: wait as it says, then try again
                if attempt == RETRIES_ON_429:
                    return "Twilio kept answering 429 (too many requests); run the erasure again later"
                await asyncio.sleep(
                    min(retry_after_seconds(answer.headers.get("Retry-After"), 1.0) or 1.0, 30)
                )
                continue
            done.twilio_pending.append(sid)
            if code == TWILIO_NOT_FINISHED:
                done.failures.append(
                    f"Twilio SMS {sid}: still on its way at Twilio, which deletes a message only once it "
                    "is finished; run the erasure again in a few minutes"
                )
            else:
                # A 404 without Twilio's code is not Twilio's answer (SWITCHBOARD_TWILIO_BASE_URL?): kept.
                done.failures.append(f"Twilio SMS {sid}: Twilio answered {answer.status} {said}".rstrip())
            return None
    return None


async def _erase_slack(settings: Settings, copies: StaffCopies, done: CopiesErased) -> None:
    token = settings.slack_bot_token.get_secret_value().strip()
    if not token:
        done.failures.append(
            f"{counted(len(copies.slack_threads), 'Slack thread')}: SWITCHBOARD_SLACK_BOT_TOKEN is not set here"
        )
        return
    client = slack_client(token, settings.slack_base_url, timeout_seconds=CALL_SECONDS)
    # chat.update allows about 50 calls a minute: a long history waits for Slack's Retry-After.
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=5))
    try:
        me = await client.auth_test()
    except (SlackApiError, aiohttp.ClientError, OSError, TimeoutError) as error:
        done.failures.append(
            f"{counted(len(copies.slack_threads), 'Slack thread')}: Slack {_slack_error(error)}"
        )
        return
    for channel, thread_ts in copies.slack_threads:
        try:
            await _erase_thread(client, channel, thread_ts, me, done)
        except (SlackApiError, aiohttp.ClientError, OSError, TimeoutError) as error:
            done.failures.append(f"Slack thread {thread_ts} in {channel}: {_slack_error(error)}")


async def _erase_thread(
    client: AsyncWebClient, channel: str, thread_ts: str, me: Any, done: CopiesErased
) -> None:
    cursor: str | None = None
    while True:
        answer = await client.conversations_replies(channel=channel, ts=thread_ts, limit=200, cursor=cursor)
        messages: list[dict[str, Any]] = answer.get("messages") or []
        for message in messages:
            ours = message.get("bot_id") == me.get("bot_id") or message.get("user") == me.get("user_id")
            if not ours:
                done.slack_left += 1
            elif message.get("text") != ERASED_COPY or message.get("blocks"):
                await client.chat_update(channel=channel, ts=message["ts"], text=ERASED_COPY, blocks=[])
                done.slack_messages += 1
        cursor = (answer.get("response_metadata") or {}).get("next_cursor") or None
        if not (answer.get("has_more") and cursor):
            return


def _slack_error(error: Exception) -> str:
    if isinstance(error, SlackApiError):
        return f"answered {error.response.get('error') or error.response.status_code}"
    return f"could not be reached ({type(error).__name__})"


async def _erase_telegram(settings: Settings, copies: StaffCopies, done: CopiesErased) -> None:
    token = settings.telegram_bot_token.get_secret_value().strip()
    if not token:
        done.failures.append(
            f"{counted(len(copies.telegram_posts), 'Telegram post')}: SWITCHBOARD_TELEGRAM_BOT_TOKEN is not set here"
        )
        return
    bot = telegram_bot(token, settings.telegram_base_url, timeout_seconds=CALL_SECONDS)
    try:
        for chat_id, message_id in copies.telegram_posts:
            try:
                await _erase_post(bot, chat_id, message_id, done)
            except (AiogramError, OSError, TimeoutError) as error:
                done.failures.append(
                    f"Telegram post {message_id} in chat {chat_id}: {_telegram_error(error)}"
                )
    finally:
        await bot.session.close()


async def _erase_post(bot: Any, chat_id: int, message_id: int, done: CopiesErased) -> None:
    try:
        await _edit_post(bot, chat_id, message_id, done)
    except TelegramRetryAfter as flood:
        # Telegram's flood control: wait as long as it says (within reason), then try once more.
        await asyncio.sleep(min(flood.retry_after, 30))
        await _edit_post(bot, chat_id, message_id, done)


async def _edit_post(bot: Any, chat_id: int, message_id: int, done: CopiesErased) -> None:
    try:
        await bot.edit_message_text(text=ERASED_COPY, chat_id=chat_id, message_id=message_id)
    except TelegramBadRequest as refused:
        if _NOT_MODIFIED in refused.message:
            return  # erased before
        if _NO_TEXT not in refused.message:
            raise
        try:
            await bot.edit_message_caption(caption=ERASED_COPY, chat_id=chat_id, message_id=message_id)
        except TelegramBadRequest as again:
            if _NOT_MODIFIED in again.message:
                return
            raise
    done.telegram_posts += 1


def _telegram_error(error: Exception) -> str:
    if isinstance(error, TelegramAPIError):
        return f"Telegram answered {error.message}"
    if isinstance(error, AiogramError):
        return f"Telegram's answer could not be read ({type(error).__name__})"
    return f"Telegram could not be reached ({type(error).__name__})"
