"""Telegram staff bot end to end: raw updates into the staff handler, replies observed at a fake Bot API."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from bot.command_runner import Via
from bot.replies import Button, Image, Reply, Table
from bot.telegram_staff.handlers import FILES_GO_AS_REPLIES, command_text
from bot.telegram_staff.render import CALLBACK_DATA_LIMIT
from bot.telegram_staff.staff_bot import TelegramStaffBot, TelegramStaffHandler, build_telegram_staff
from switchboard.settings import Settings
from switchboard.wiring import build_container
from tests.fakes.telegram_api import FakeTelegramApi

TOKEN = "123456:test-staff-bot-token"
STAFF_ID = 111
STRANGER_ID = 999
PNG = b"\x89PNG\r\n\x1a\n" + b"chart" * 100
LONG_COMMAND = "send campaign spring-recall-2026-north-and-south-clinics confirm " + "x" * 80


@dataclass
class FakeRunner:
    asked: list[tuple[str, int | None]] = field(default_factory=list)

    async def run(
        self,
        text: str,
        *,
        slack_user_id: str | None = None,
        slack_team_id: str | None = None,
        telegram_user_id: int | None = None,
        via: Via,
    ) -> Reply | None:
        self.asked.append((text, telegram_user_id))
        if telegram_user_id != STAFF_ID:
            return None
        if text == "help":
            return Reply(text="Try sales this week.", title="Switchboard <staff>")
        if text == "sales chart":
            return Reply(text="Sales are up 12%.", images=(Image("sales.png", PNG, "Sales by day"),))
        if text == "top clinics":
            return Reply(text="Top clinics", table=Table(("Clinic", "Bookings"), (("Camden", "120"),)))
        if text == "send campaign":
            return Reply(
                text="Send Spring recall to 1,204 customers?",
                confirm=True,
                buttons=(Button("Send now", LONG_COMMAND, "primary"), Button("Cancel", "cancel", "danger")),
            )
        if text == LONG_COMMAND:
            return Reply(text="Sending Spring recall to 1,204 customers.")
        return Reply(text=f"I don't know {text}.", kind="error")


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegramApi]:
    fake = FakeTelegramApi(token=TOKEN)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def runner() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
async def handle(
    fake_telegram: FakeTelegramApi, runner: FakeRunner, tmp_path: Path
) -> AsyncIterator[TelegramStaffHandler]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}",
        telegram_bot_token=TOKEN,  # type: ignore[arg-type]
        telegram_base_url=fake_telegram.url,
        worker_in_process=False,
    )
    container = build_container(settings)
    container.telegram_staff = build_telegram_staff(settings, runner)
    container.closers.append(container.telegram_staff.close)
    assert isinstance(container.telegram_staff, TelegramStaffBot)
    yield container.telegram_staff.handle
    await container.close()


update_ids = count(1)


def message_update(text: str, user_id: int = STAFF_ID, chat_id: int | None = None) -> dict[str, Any]:
    chat_id = chat_id if chat_id is not None else user_id
    return {
        "update_id": next(update_ids),
        "message": {
            "message_id": 10,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group", "first_name": "Ada"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Ada"},
            "text": text,
        },
    }


async def test_a_staff_message_is_answered_with_a_message(
    handle: TelegramStaffHandler, fake_telegram: FakeTelegramApi, runner: FakeRunner
) -> None:
    await handle(message_update("/help"))
    [sent] = fake_telegram.of("sendMessage")
    assert int(sent.params["chat_id"]) == STAFF_ID
    assert sent.params["parse_mode"] == "HTML"
    assert sent.params["text"].startswith("<b>Switchboard &lt;staff&gt;</b>")
    assert runner.asked == [("help", STAFF_ID)]


async def test_a_photo_or_document_on_its_own_is_told_how_files_reach_customers(
    handle: TelegramStaffHandler, fake_telegram: FakeTelegramApi, runner: FakeRunner
) -> None:
    photo = message_update("")
    del photo["message"]["text"]
    photo["message"]["photo"] = [
        {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 90},
        {"file_id": "large", "file_unique_id": "l", "width": 1280, "height": 960},
    ]
    document = message_update("")
    del document["message"]["text"]
    document["message"]["document"] = {"file_id": "doc", "file_unique_id": "d", "file_name": "scan.pdf"}
    document["message"]["caption"] = "sales this week"
    await handle(photo)
    await handle(document)
    said = [m.params["text"] for m in fake_telegram.of("sendMessage")]
    assert said == [FILES_GO_AS_REPLIES, FILES_GO_AS_REPLIES]
    assert runner.asked == []  # a caption is never run as a command


async def test_a_table_is_sent_as_preformatted_text(
    handle: TelegramStaffHandler, fake_telegram: FakeTelegramApi
) -> None:
    await handle(message_update("top clinics"))
    [sent] = fake_telegram.of("sendMessage")
    assert "<pre>Clinic  Bookings\n------  --------\nCamden  120</pre>" in sent.params["text"]


async def test_a_chart_is_sent_as_a_photo_with_its_caption(
    handle: TelegramStaffHandler, fake_telegram: FakeTelegramApi
) -> None:
    await handle(message_update("sales chart"))
    [photo] = fake_telegram.of("sendPhoto")
    assert photo.params["caption"] == "Sales are up 12%."
    [(filename, content)] = photo.files.values()
    assert filename == "sales.png" and content == PNG
    assert fake_telegram.of("sendMessage") == []


async def test_an_unknown_person_gets_a_polite_refusal_and_no_data(
    handle: TelegramStaffHandler, fake_telegram: FakeTelegramApi
) -> None:
    await handle(message_update("sales chart", user_id=STRANGER_ID))
    assert fake_telegram.methods() == ["sendMessage"]
    [sent] = fake_telegram.of("sendMessage")
    assert int(sent.params["chat_id"]) == STRANGER_ID
    assert "only for staff" in sent.params["text"]
    assert "12%" not in sent.params["text"] and "reply_markup" not in sent.params


async def test_an_inline_button_runs_its_command_and_answers_the_callback(
    handle: TelegramStaffHandler, fake_telegram: FakeTelegramApi, runner: FakeRunner
) -> None:
    await handle(message_update("send campaign"))
    [question] = fake_telegram.of("sendMessage")
    send_now = question.params["reply_markup"]["inline_keyboard"][0][0]
    assert send_now["text"].endswith("Send now")
    assert len(send_now["callback_data"].encode()) <= CALLBACK_DATA_LIMIT < len(LONG_COMMAND)

    await handle(
        {
            "update_id": next(update_ids),
            "callback_query": {
                "id": "cb1",
                "from": {"id": STAFF_ID, "is_bot": False, "first_name": "Ada"},
                "chat_instance": "ci1",
                "data": send_now["callback_data"],
                "message": {
                    "message_id": 100,
                    "date": int(time.time()),
                    "chat": {"id": STAFF_ID, "type": "private", "first_name": "Ada"},
                    "from": {"id": 123456, "is_bot": True, "first_name": "Switchboard"},
                    "text": "Send Spring recall to 1,204 customers?",
                },
            },
        }
    )
    assert (LONG_COMMAND, STAFF_ID) in runner.asked
    [answered] = fake_telegram.of("answerCallbackQuery")
    assert answered.params["callback_query_id"] == "cb1"
    [retired] = fake_telegram.of("editMessageText")
    assert "Send now" in retired.params["text"] and "reply_markup" not in retired.params
    assert fake_telegram.of("sendMessage")[-1].params["text"] == "Sending Spring recall to 1,204 customers."


async def test_an_expired_button_is_explained(
    handle: TelegramStaffHandler, fake_telegram: FakeTelegramApi
) -> None:
    await handle(
        {
            "update_id": next(update_ids),
            "callback_query": {
                "id": "cb2",
                "from": {"id": STAFF_ID, "is_bot": False, "first_name": "Ada"},
                "chat_instance": "ci1",
                "data": "sb:forgotten",
            },
        }
    )
    [answered] = fake_telegram.of("answerCallbackQuery")
    assert "expired" in answered.params["text"]
    assert fake_telegram.methods() == ["answerCallbackQuery"]


async def test_a_redraw_button_under_a_scheduled_report_runs_the_report_by_that_split(
    handle: TelegramStaffHandler, fake_telegram: FakeTelegramApi, runner: FakeRunner
) -> None:
    """The worker draws "By …" buttons it cannot register with this bot: their data names report and split."""
    for data, expected in (
        ("sbr:revenue-by-clinic:source_channel", "report run revenue-by-clinic by source channel"),
        ("sbr:revenue-by-clinic:location; campaign cancel x", None),
    ):
        await handle(
            {
                "update_id": next(update_ids),
                "callback_query": {
                    "id": "cb3",
                    "from": {"id": STAFF_ID, "is_bot": False, "first_name": "Ada"},
                    "chat_instance": "ci1",
                    "data": data,
                },
            }
        )
        if expected is None:
            assert "expired" in fake_telegram.of("answerCallbackQuery")[-1].params["text"]
        else:
            assert runner.asked[-1] == (expected, STAFF_ID)
    assert [text for text, _ in runner.asked] == ["report run revenue-by-clinic by source channel"]


@pytest.mark.parametrize(
    ("typed", "command"),
    [
        ("/start", "help"),
        ("/sales@switchboard_bot this week", "sales this week"),
        ("  kpi  ", "kpi"),
        ("", "help"),
    ],
)
def test_slash_and_plain_commands_mean_the_same(typed: str, command: str) -> None:
    assert command_text(typed) == command
