"""switchboard/erasure_copies.py with fake Slack and Telegram clients: what it edits, what it leaves, and how
each failure is named without stopping the rest. The real APIs are walked in
tests/journeys/test_live_chat_in_slack.py against the sandbox."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.methods import EditMessageText
from slack_sdk.errors import SlackApiError
from slack_sdk.web.slack_response import SlackResponse

from storage.customer_erasure import StaffCopies
from switchboard import erasure_copies
from switchboard.erasure_copies import ERASED_COPY, CopiesErased, erase_staff_copies
from switchboard.settings import Settings

BOT = {"user_id": "UBOT", "bot_id": "BBOT"}


def slack_error(error: str) -> SlackApiError:
    response = SlackResponse(
        client=None,
        http_verb="POST",
        api_url="",
        req_args={},
        data={"ok": False, "error": error},
        headers={},
        status_code=200,
    )
    return SlackApiError(error, response)


class FakeSlack:
    def __init__(self, threads: dict[str, list[list[dict[str, Any]]]]) -> None:
        self.threads = threads  # root ts -> pages of messages
        self.updated: list[tuple[str, str, str, Any]] = []
        self.retry_handlers: list[Any] = []

    async def auth_test(self) -> dict[str, str]:
        return BOT

    async def conversations_replies(
        self, *, channel: str, ts: str, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        if ts not in self.threads:
            raise slack_error("thread_not_found")
        pages = self.threads[ts]
        page = int(cursor or 0)
        more = page + 1 < len(pages)
        return {
            "messages": pages[page],
            "has_more": more,
            "response_metadata": {"next_cursor": str(page + 1) if more else ""},
        }

    async def chat_update(self, *, channel: str, ts: str, text: str, blocks: Any) -> None:
        self.updated.append((channel, ts, text, blocks))


class FakeBot:
    def __init__(self, refusals: dict[int, list[str]]) -> None:
        self.refusals = refusals  # message id -> what Telegram answers, in turn
        self.edits: list[tuple[str, int]] = []
        self.session = self

    async def close(self) -> None:
        return None

    def _maybe_refuse(self, message_id: int) -> None:
        answers = self.refusals.get(message_id)
        if answers:
            answer = answers.pop(0)
            if answer == "flood":
                raise TelegramRetryAfter(EditMessageText(text=""), "Too Many Requests: retry after 0", 0)
            raise TelegramBadRequest(EditMessageText(text=""), answer)

    async def edit_message_text(self, *, text: str, chat_id: int, message_id: int) -> None:
        self._maybe_refuse(message_id)
        self.edits.append(("text", message_id))

    async def edit_message_caption(self, *, caption: str, chat_id: int, message_id: int) -> None:
        self._maybe_refuse(message_id)
        self.edits.append(("caption", message_id))


def run(
    monkeypatch: pytest.MonkeyPatch, copies: StaffCopies, slack: FakeSlack, bot: FakeBot, **settings: Any
) -> tuple[erasure_copies.CopiesErased, list[dict[str, int]]]:
    audited: list[dict[str, int]] = []

    async def found(database: Any, customer_id: int) -> StaffCopies:
        return copies

    async def record(database: Any, customer_id: int, actor: str, counts: dict[str, int], via: str) -> None:
        assert via == "cli"
        audited.append(counts)

    monkeypatch.setattr(erasure_copies, "staff_copies", found)
    monkeypatch.setattr(erasure_copies, "record_copies_erased", record)
    monkeypatch.setattr(erasure_copies, "slack_client", lambda *args, **kwargs: slack)
    monkeypatch.setattr(erasure_copies, "telegram_bot", lambda *args, **kwargs: bot)
    configured = Settings(
        slack_bot_token="xoxb-test",
        telegram_bot_token="123:test",
        **settings,  # type: ignore[arg-type]
    )
    done = asyncio.run(erase_staff_copies(configured, None, 7, actor="test"))  # type: ignore[arg-type]
    return done, audited


def test_the_bot_s_own_messages_are_overwritten_across_pages_and_people_s_are_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slack = FakeSlack(
        {
            "1.0": [
                [
                    {
                        "ts": "1.0",
                        "bot_id": "BBOT",
                        "text": "Conversation 7",
                        "blocks": [{"type": "section"}],
                    },
                    {"ts": "1.1", "bot_id": "BBOT", "text": "*Anna*: my rash"},
                    {"ts": "1.2", "user": "U0AGENT01", "text": "Come at 10"},
                ],
                [{"ts": "1.3", "user": "UBOT", "text": ERASED_COPY}],  # erased by an earlier run
            ],
            "2.0": [[{"ts": "2.0", "bot_id": "BOTHER", "user": "UOTHER", "text": "another app"}]],
        }
    )
    bot = FakeBot({11: [erasure_copies._NO_TEXT], 12: [erasure_copies._NOT_MODIFIED]})
    copies = StaffCopies([("C1", "1.0"), ("C1", "2.0"), ("C1", "9.9")], [(1001, 10), (1001, 11), (1001, 12)])
    done, audited = run(monkeypatch, copies, slack, bot)
    assert [(ts, text, blocks) for _, ts, text, blocks in slack.updated] == [
        ("1.0", ERASED_COPY, []),
        ("1.1", ERASED_COPY, []),
    ]
    assert (done.slack_messages, done.slack_left) == (2, 2)
    # A photo's caption is edited instead; a post erased before is not counted again.
    assert bot.edits == [("text", 10), ("caption", 11)]
    assert done.telegram_posts == 2
    assert done.failures == ["Slack thread 9.9 in C1: answered thread_not_found"]
    assert audited == [
        {
            "slack_messages": 2,
            "slack_messages_left": 2,
            "telegram_posts": 2,
            "twilio_records": 0,
            "twilio_records_gone": 0,
            "twilio_pending": [],
            "failures": 1,
            "failure_reasons": ["Slack thread 9.9 in C1: answered thread_not_found"],
        }
    ]
    # The dashboard says the same later, from the audit entry.
    assert CopiesErased.from_counts(audited[0]).lines(7) == done.lines(7)
    lines = done.lines(7)
    assert lines[0] == f'staff chats: 2 Slack messages and 2 Telegram posts now read "{ERASED_COPY}"'
    assert "2 messages that staff typed in their Slack threads remain" in lines[1]
    assert lines[-1] == "run `switchboard customer erase 7 --yes` again to try those again"


def test_a_refusal_is_named_and_the_other_copies_are_still_erased(monkeypatch: pytest.MonkeyPatch) -> None:
    bot = FakeBot({21: ["Bad Request: message to edit not found"], 22: ["flood"]})
    copies = StaffCopies([], [(1001, 20), (1001, 21), (1002, 22)])
    done, audited = run(monkeypatch, copies, FakeSlack({}), bot)
    # Post 22 met Telegram's flood control first: it waited and tried again.
    assert bot.edits == [("text", 20), ("text", 22)]
    assert done.failures == [
        "Telegram post 21 in chat 1001: Telegram answered Bad Request: message to edit not found"
    ]
    assert audited[0]["telegram_posts"] == 2


def test_without_a_token_here_the_copies_are_named_not_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    copies = StaffCopies([("C1", "1.0")], [(1001, 10)])
    monkeypatch.setattr(erasure_copies, "staff_copies", lambda *a: _value(copies))
    monkeypatch.setattr(erasure_copies, "record_copies_erased", lambda *a: _value(None))
    unset = Settings(slack_bot_token="", telegram_bot_token="")  # type: ignore[arg-type]
    done = asyncio.run(erase_staff_copies(unset, None, 7, actor="t"))  # type: ignore[arg-type]
    assert done.failures == [
        "1 Slack thread: SWITCHBOARD_SLACK_BOT_TOKEN is not set here",
        "1 Telegram post: SWITCHBOARD_TELEGRAM_BOT_TOKEN is not set here",
    ]


def test_no_copies_nothing_called_nothing_audited(monkeypatch: pytest.MonkeyPatch) -> None:
    done, audited = run(monkeypatch, StaffCopies([], []), FakeSlack({}), FakeBot({}))
    assert (done.lines(7), audited) == ([], [])


async def _value(value: Any) -> Any:
    return value


def test_a_slack_connection_dropped_mid_thread_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import aiohttp

    class Dropping(FakeSlack):
        async def conversations_replies(self, **kwargs: Any) -> dict[str, Any]:
            raise aiohttp.ServerDisconnectedError()

    done, _ = run(monkeypatch, StaffCopies([("C1", "1.0")], []), Dropping({}), FakeBot({}))
    assert done.failures == ["Slack thread 1.0 in C1: could not be reached (ServerDisconnectedError)"]


# --- Twilio's records: its answers other than 204, from a local stand-in --------------------------------


async def _twilio_answering(answers: dict[str, Any], sids: list[str]) -> erasure_copies.CopiesErased:
    """Runs the Twilio pass against a local server answering each SID as `answers` says."""
    from aiohttp import web

    calls: list[str] = []

    async def delete(request: web.Request) -> web.StreamResponse:
        sid = request.match_info["sid"]
        calls.append(sid)
        answer: web.StreamResponse = answers[sid]()
        return answer

    app = web.Application()
    app.router.add_delete("/2010-04-01/Accounts/{account}/Messages/{sid}.json", delete)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    settings = Settings(twilio_base_url=f"http://127.0.0.1:{runner.addresses[0][1]}")
    done = erasure_copies.CopiesErased()
    try:
        await erasure_copies._erase_twilio(settings, sids, done)
    finally:
        await runner.cleanup()
    done.failures.append(f"calls: {calls}")
    return done


def test_a_404_that_is_not_twilios_keeps_the_record_and_throttling_stops_the_pass() -> None:
    from aiohttp import web

    proxy, gone, throttled, later = ("SM" + c * 32 for c in "abcd")
    answers = {
        # A 404 page from something in front of Twilio (a wrong SWITCHBOARD_TWILIO_BASE_URL): not "gone".
        proxy: lambda: web.Response(status=404, text="<html>Not Found</html>"),
        gone: lambda: web.json_response({"code": 20404, "message": "not found"}, status=404),
        throttled: lambda: web.json_response({"code": 20429}, status=429, headers={"Retry-After": "0"}),
        later: lambda: web.Response(status=204),
    }
    done = asyncio.run(_twilio_answering(answers, [proxy, gone, throttled, later]))
    assert (done.twilio_records, done.twilio_gone) == (0, 1)
    # The proxy's 404 is a failure kept for the next run; throttling three times stops the pass and keeps
    # the rest, untried.
    assert done.twilio_pending == [proxy, throttled, later]
    assert done.failures == [
        f"Twilio SMS {proxy}: Twilio answered 404",
        "2 Twilio SMS records: Twilio kept answering 429 (too many requests); run the erasure again later",
        f"calls: {[proxy, gone, throttled, throttled, throttled]}",
    ]
    assert done.counts()["twilio_pending"] == [proxy, throttled, later]


def test_a_bundles_counts_read_as_words() -> None:
    from switchboard.cli import _held

    assert [
        _held(name, n) for name, n in (("tags", 1), ("messages", 3), ("consent_ledger", 1), ("customer", 1))
    ] == [
        "1 tag",
        "3 messages",
        "1 consent ledger entry",
        "1 profile",
    ]
    assert _held("message_status_history", 2_500) == "2,500 message status changes"
