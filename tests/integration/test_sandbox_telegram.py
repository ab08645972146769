"""The sandbox's Telegram Bot API through aiogram, as real Telegram answers it, and the staff bot on top of it."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiogram.methods
import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup

from api.sandbox import RunningSandbox, SandboxConfig, run_sandbox
from api.sandbox.keys import STATE
from bot.command_runner import Via
from bot.replies import Button, Image, Reply
from bot.telegram_staff.staff_bot import TelegramStaffHandler, build_telegram_staff
from switchboard.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHAT = 424242
PNG = b"\x89PNG\r\n\x1a\n" + b"chart" * 50
KEYBOARD = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Yes", callback_data="sb:yes")]])


def config(**overrides: Any) -> SandboxConfig:
    # No webhook: button presses made through the console queue as updates the test hands on itself.
    base = SandboxConfig(port=0, smtp_port=0, send_status_webhooks=False, telegram_webhook_secret=None)
    return dataclasses.replace(base, **overrides)


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with run_sandbox(config()) as running:
        yield running


@pytest.fixture
async def bot(sandbox: RunningSandbox) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(sandbox.base_url))
    telegram = Bot(token=sandbox.state.config.telegram_bot_token, session=session)
    yield telegram
    await session.close()


async def press(sandbox: RunningSandbox, chat_id: int, callback_data: str) -> dict[str, Any]:
    """A customer (or staff member) taps a button in the sandbox; the update Telegram would deliver."""
    payload = {"chat_id": chat_id, "callback_data": callback_data}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{sandbox.base_url}/_sandbox/customer/telegram", json=payload) as answer,
    ):
        assert answer.status == 202
        update: dict[str, Any] = (await answer.json())["update"]
    return update


# --- edits ------------------------------------------------------------------------------------


async def test_edit_reply_markup_takes_the_keyboard_off_and_refuses_a_second_time(bot: Bot) -> None:
    photo = await bot.send_photo(
        CHAT, BufferedInputFile(PNG, "chart.png"), caption="Send it?", reply_markup=KEYBOARD
    )
    assert photo.reply_markup is not None
    assert [b.callback_data for row in photo.reply_markup.inline_keyboard for b in row] == ["sb:yes"]
    edited = await bot.edit_message_reply_markup(chat_id=CHAT, message_id=photo.message_id, reply_markup=None)
    assert not isinstance(edited, bool)
    assert edited.reply_markup is None and edited.caption == "Send it?" and edited.edit_date is not None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(chat_id=CHAT, message_id=photo.message_id, reply_markup=None)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_reply_markup(chat_id=CHAT, message_id=photo.message_id + 50)
    with pytest.raises(TelegramBadRequest, match="there is no text in the message to edit"):
        await bot.edit_message_text("new text", chat_id=CHAT, message_id=photo.message_id)
    captioned = await bot.edit_message_caption(
        chat_id=CHAT, message_id=photo.message_id, caption="<b>Sent</b> to 1,204", parse_mode=ParseMode.HTML
    )
    assert not isinstance(captioned, bool) and captioned.caption == "Sent to 1,204"
    assert [(e.type, e.offset, e.length) for e in captioned.caption_entities or []] == [("bold", 0, 4)]
    text = await bot.send_message(CHAT, "Plain words")
    with pytest.raises(TelegramBadRequest, match="there is no caption in the message to edit"):
        await bot.edit_message_caption(chat_id=CHAT, message_id=text.message_id, caption="A caption")


async def test_html_becomes_text_and_entities_and_an_edit_without_markup_drops_the_keyboard(bot: Bot) -> None:
    question = await bot.send_message(
        CHAT,
        "<b>Spring recall</b>\n\nSend to 1,204 &lt;customers&gt;?",
        parse_mode=ParseMode.HTML,
        reply_markup=KEYBOARD,
    )
    assert question.text == "Spring recall\n\nSend to 1,204 <customers>?"
    assert [(e.type, e.offset, e.length) for e in question.entities or []] == [("bold", 0, 13)]
    assert question.html_text == "<b>Spring recall</b>\n\nSend to 1,204 &lt;customers&gt;?"
    edited = await bot.edit_message_text(
        f"{question.html_text}\n\n→ <b>Send now</b>",
        chat_id=CHAT,
        message_id=question.message_id,
        parse_mode=ParseMode.HTML,
    )
    assert not isinstance(edited, bool)
    assert edited.text == "Spring recall\n\nSend to 1,204 <customers>?\n\n→ Send now"
    assert [(e.type, e.offset, e.length) for e in edited.entities or []] == [("bold", 0, 13), ("bold", 45, 8)]
    assert edited.reply_markup is None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            edited.html_text, chat_id=CHAT, message_id=question.message_id, parse_mode=ParseMode.HTML
        )


async def test_a_reply_carries_the_message_it_answers_and_one_to_a_missing_message_is_refused(
    bot: Bot,
) -> None:
    from aiogram.types import ReplyParameters

    first = await bot.send_message(CHAT, "Is 10:00 fine?")
    answer = await bot.send_message(
        CHAT, "Booked.", reply_parameters=ReplyParameters(message_id=first.message_id)
    )
    assert answer.reply_to_message is not None and answer.reply_to_message.text == "Is 10:00 fine?"
    assert (await bot.send_message(CHAT, "Booked.", reply_to_message_id=first.message_id)).reply_to_message
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(CHAT, "Booked.", reply_parameters=ReplyParameters(message_id=99_999))
    anyway = ReplyParameters(message_id=99_999, allow_sending_without_reply=True)
    assert (await bot.send_message(CHAT, "Booked.", reply_parameters=anyway)).reply_to_message is None


async def test_html_telegram_cannot_read_is_refused_as_telegram_refuses_it(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match='can\'t parse entities: Unsupported start tag "blink"'):
        await bot.send_message(CHAT, "<blink>now</blink>", parse_mode=ParseMode.HTML)
    with pytest.raises(TelegramBadRequest, match="can't parse entities: Can't find end tag"):
        await bot.send_message(CHAT, "<b>open", parse_mode=ParseMode.HTML)
    plain = await bot.send_message(CHAT, "<blink>is just text</blink>")
    assert plain.text == "<blink>is just text</blink>" and not plain.entities
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(CHAT, BufferedInputFile(b"a,b\n1,2\n", "report.csv"))


async def test_a_callback_query_is_answered_once_and_only_if_a_press_made_it(
    sandbox: RunningSandbox, bot: Bot
) -> None:
    question = await bot.send_message(CHAT, "Send it?", reply_markup=KEYBOARD)
    update = await press(sandbox, CHAT, "sb:yes")
    query = update["callback_query"]
    assert query["message"]["message_id"] == question.message_id
    assert query["message"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "sb:yes"
    assert await bot.answer_callback_query(query["id"]) is True
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query["id"])
    with pytest.raises(TelegramBadRequest, match="query ID is invalid"):
        await bot.answer_callback_query("4242")


def methods_our_code_calls() -> set[str]:
    """Bot API methods called through aiogram in bot/ and reports/destinations.py."""
    shortcuts = {
        "message.edit_text": "editMessageText",
        "message.edit_reply_markup": "editMessageReplyMarkup",
        "message.edit_caption": "editMessageCaption",
        "callback.answer": "answerCallbackQuery",
    }
    # aiogram's polling asks who the bot is, then long-polls.
    found = {"getMe", "getUpdates"}
    sources = [*(ROOT / "bot").rglob("*.py"), ROOT / "reports" / "destinations.py"]
    for source in sources:
        text = source.read_text()
        for name in re.findall(r"\bbot\.([a-z_]+)\(", text):
            method = getattr(aiogram.methods, "".join(part.title() for part in name.split("_")), None)
            if method is not None:
                found.add(method.__api_method__)
        found |= {api for call, api in shortcuts.items() if f"{call}(" in text}
    return found


async def test_every_bot_api_method_our_code_calls_is_there(sandbox: RunningSandbox) -> None:
    called = methods_our_code_calls()
    assert {"sendMessage", "sendPhoto", "sendDocument", "editMessageReplyMarkup"} <= called
    token = sandbox.state.config.telegram_bot_token
    missing = []
    async with aiohttp.ClientSession() as session:
        for method in sorted(called):
            async with session.post(f"{sandbox.base_url}/bot{token}/{method}", data={}) as answer:
                if answer.status == 404:
                    missing.append(method)
    assert missing == []


# --- files ------------------------------------------------------------------------------------


async def test_a_file_keeps_its_unique_id_when_sent_again_and_after_a_restart(
    sandbox: RunningSandbox, bot: Bot
) -> None:
    first = await bot.send_photo(CHAT, BufferedInputFile(PNG, "chart.png"))
    assert first.photo
    largest = first.photo[-1]
    again = await bot.send_photo(CHAT + 1, largest.file_id)
    assert again.photo and [p.file_unique_id for p in again.photo] == [p.file_unique_id for p in first.photo]
    uploaded_twice = await bot.send_photo(CHAT, BufferedInputFile(PNG, "same-chart.png"))
    assert uploaded_twice.photo and uploaded_twice.photo[-1].file_unique_id == largest.file_unique_id
    other = await bot.send_photo(CHAT, BufferedInputFile(PNG + b"!", "other.png"))
    assert other.photo and other.photo[-1].file_unique_id != largest.file_unique_id
    report = await bot.send_document(CHAT, BufferedInputFile(b"a,b\n1,2\n", "report.csv"))
    assert report.document is not None and report.document.mime_type == "text/csv"
    resent = await bot.send_document(CHAT, report.document.file_id)
    assert resent.document is not None
    assert (resent.document.file_unique_id, resent.document.file_name) == (
        report.document.file_unique_id,
        "report.csv",
    )
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(CHAT, "AgACnot-a-file-this-bot-was-given")
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(CHAT, report.document.file_id)
    async with run_sandbox(config()) as restarted:
        session = AiohttpSession(api=TelegramAPIServer.from_base(restarted.base_url))
        try:
            fresh = await Bot(token=restarted.state.config.telegram_bot_token, session=session).send_photo(
                CHAT, BufferedInputFile(PNG, "chart.png")
            )
        finally:
            await session.close()
    assert fresh.photo and fresh.photo[-1].file_unique_id == largest.file_unique_id


# --- the staff bot ----------------------------------------------------------------------------

STAFF_ID = 111
SEND_NOW = "send campaign spring-recall confirm"


@dataclasses.dataclass
class StaffCommands:
    """Stands in for the command table: a confirmation question (as text or as a chart) and its answer."""

    asked: list[str] = dataclasses.field(default_factory=list)

    async def run(
        self,
        text: str,
        *,
        slack_user_id: str | None = None,
        slack_team_id: str | None = None,
        telegram_user_id: int | None = None,
        via: Via,
    ) -> Reply | None:
        self.asked.append(text)
        buttons = (Button("Send now", SEND_NOW, "primary"), Button("Cancel", "cancel", "danger"))
        if text == "send campaign":
            return Reply(text="Send Spring recall to 1,204 customers?", confirm=True, buttons=buttons)
        if text == "send campaign with chart":
            chart = Image("reach.png", PNG, "Reach by clinic")
            return Reply(text="Send Spring recall?", confirm=True, buttons=buttons, images=(chart,))
        if text == "broken chart":
            return Reply(
                text="Sales are up 12%.", images=(Image("sales.png", b"not an image", "Sales by day"),)
            )
        if text == SEND_NOW:
            return Reply(text="Sending Spring recall to 1,204 customers.")
        return Reply(text=f"I don't know {text}.", kind="error")


@pytest.fixture
async def staff_bot(sandbox: RunningSandbox, tmp_path: Path) -> AsyncIterator[TelegramStaffHandler]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}",
        telegram_bot_token=sandbox.state.config.telegram_bot_token,  # type: ignore[arg-type]
        telegram_base_url=sandbox.base_url,
        worker_in_process=False,
    )
    staff = build_telegram_staff(settings, StaffCommands())
    yield staff.handle
    await staff.close()


def staff_writes(sandbox: RunningSandbox, text: str) -> dict[str, Any]:
    message_id = sandbox.state.next_telegram_message_id(STAFF_ID)
    person = {"id": STAFF_ID, "is_bot": False, "first_name": "Ada"}
    chat = {"id": STAFF_ID, "type": "private", "first_name": "Ada"}
    message = {"message_id": message_id, "date": 1, "chat": chat, "from": person, "text": text}
    return {"update_id": message_id, "message": message}


def sent_texts(sandbox: RunningSandbox) -> list[str]:
    return [m.body for m in sandbox.state.messages if m.provider == "telegram" and m.direction == "outbound"]


def keyboard_data(sent: dict[str, Any]) -> list[str]:
    return [b["callback_data"] for row in sent["reply_markup"]["inline_keyboard"] for b in row]


async def test_confirming_under_a_chart_takes_its_buttons_off_and_answers(
    sandbox: RunningSandbox, staff_bot: TelegramStaffHandler
) -> None:
    await staff_bot(staff_writes(sandbox, "send campaign with chart"))
    (question,) = [m for m in sandbox.state.telegram_sent.values() if "photo" in m]
    assert question["caption"] == "Send Spring recall?"
    await staff_bot(await press(sandbox, STAFF_ID, keyboard_data(question)[0]))
    assert "reply_markup" not in question and "edit_date" in question
    assert sent_texts(sandbox)[-1] == "Sending Spring recall to 1,204 customers."
    assert sandbox.state.telegram_open_callbacks == set()


async def test_confirming_a_text_question_notes_the_choice_in_plain_words(
    sandbox: RunningSandbox, staff_bot: TelegramStaffHandler
) -> None:
    await staff_bot(staff_writes(sandbox, "send campaign"))
    (question,) = list(sandbox.state.telegram_sent.values())
    await staff_bot(await press(sandbox, STAFF_ID, keyboard_data(question)[0]))
    assert question["text"] == "Send Spring recall to 1,204 customers?\n\n→ Send now"
    assert question["entities"][-1]["type"] == "bold" and "reply_markup" not in question
    assert sent_texts(sandbox)[-1] == "Sending Spring recall to 1,204 customers."


async def test_a_stale_button_press_is_still_answered(
    sandbox: RunningSandbox, staff_bot: TelegramStaffHandler
) -> None:
    await staff_bot(staff_writes(sandbox, "send campaign"))
    (question,) = list(sandbox.state.telegram_sent.values())
    pressed = await press(sandbox, STAFF_ID, keyboard_data(question)[0])
    # Telegram forgets a query after a while and refuses edits to messages it no longer has.
    pressed["callback_query"]["id"] = "4242"
    pressed["callback_query"]["message"]["message_id"] = 9999
    await staff_bot(pressed)
    assert sent_texts(sandbox)[-1] == "Sending Spring recall to 1,204 customers."


async def test_a_chart_telegram_refuses_leaves_the_answer_and_a_note(
    sandbox: RunningSandbox, staff_bot: TelegramStaffHandler
) -> None:
    await staff_bot(staff_writes(sandbox, "broken chart"))
    assert sent_texts(sandbox)[-2:] == [
        "Sales are up 12%.",
        "The chart “Sales by day” could not be sent to Telegram.",
    ]


async def test_a_keyboard_telegram_cannot_read_is_a_bad_request(sandbox: RunningSandbox) -> None:
    token = sandbox.state.config.telegram_bot_token
    form = {"chat_id": str(CHAT), "text": "Send it?", "reply_markup": "{not json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{sandbox.base_url}/bot{token}/sendMessage", data=form) as answer,
    ):
        assert answer.status == 400
        assert (await answer.json())[
            "description"
        ] == "Bad Request: can't parse reply keyboard markup JSON object"


async def test_the_console_s_telegram_form_sends_the_app_language_chosen(sandbox: RunningSandbox) -> None:
    """Every pretend Telegram customer wrote with an English app, so a demo newcomer was always English."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{sandbox.base_url}/_sandbox/") as page:
            html = await page.text()
        assert '<select name="language_code"' in html and '<option value="de">German app</option>' in html
        form = aiohttp.FormData({"chat_id": "515151", "text": "Guten Tag", "language_code": "de"})
        async with session.post(
            f"{sandbox.base_url}/_sandbox/customer/telegram", data=form, allow_redirects=False
        ) as answer:
            assert answer.status in (202, 303), await answer.text()
    received = sandbox.app[STATE].telegram_received
    [written] = [m for (chat, _), m in received.items() if chat == 515151]
    assert written["text"] == "Guten Tag" and written["from"]["language_code"] == "de"
