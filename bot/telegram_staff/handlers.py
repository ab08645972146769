"""aiogram handlers for staff in Telegram: text and /commands run as commands, inline buttons run theirs."""

from __future__ import annotations

import logging
import re
from html import escape

from aiogram import Bot, F, Router
from aiogram.enums import ChatType, ParseMode
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.types import BufferedInputFile, CallbackQuery, Message

from bot.command_runner import CommandRunner
from bot.replies import Reply
from bot.telegram_staff.render import (
    CAPTION_LIMIT,
    ButtonCommands,
    clip,
    render_html,
    render_keyboard,
)

log = logging.getLogger(__name__)

#: `/sales@SwitchboardBot this week` -> command word `sales`, rest `this week`.
SLASH_COMMAND = re.compile(r"^/(?P<word>[A-Za-z0-9_]+)(?:@\w+)?(?P<rest>.*)$", re.DOTALL)

TROUBLE = Reply(
    text="Sorry, something went wrong while answering that. Please try again shortly.", kind="error"
)


def command_text(message_text: str) -> str:
    """Staff may type `sales this week` or `/sales this week`; both mean the same command."""
    text = message_text.strip()
    match = SLASH_COMMAND.match(text)
    if match:
        word = match["word"].lower()
        # Telegram clients send /start when a chat is opened: answer it with help.
        text = ("help" if word == "start" else word) + match["rest"]
    return text.strip() or "help"


def refusal_text(business_name: str) -> str:
    return (
        f"Sorry, this bot is only for staff of {business_name}. If you work here, ask an "
        "administrator to link your Telegram account."
    )


class TelegramStaffFrontEnd:
    """Runs staff commands from Telegram and sends the neutral replies back as Telegram messages."""

    def __init__(self, runner: CommandRunner, *, business_name: str, buttons: ButtonCommands | None = None):
        self.runner = runner
        self.business_name = business_name
        self.buttons = buttons or ButtonCommands()

    def router(self) -> Router:
        router = Router(name="telegram_staff")
        router.message.register(self.on_message, F.text)
        router.callback_query.register(self.on_button)
        return router

    async def run(self, text: str, telegram_user_id: int) -> Reply | None:
        try:
            return await self.runner.run(text, telegram_user_id=telegram_user_id, via="telegram")
        except Exception:  # a failing command must still answer the person
            log.exception("Telegram command %r from %s failed", text, telegram_user_id)
            return TROUBLE

    async def on_message(self, message: Message, bot: Bot) -> None:
        if message.from_user is None or message.text is None:
            return  # channel posts and service messages have no person to answer
        reply = await self.run(command_text(message.text), message.from_user.id)
        if reply is None:
            await bot.send_message(chat_id=message.chat.id, text=refusal_text(self.business_name))
            return
        await self.deliver(
            bot, reply, chat_id=message.chat.id, chat_type=message.chat.type, user_id=message.from_user.id
        )

    async def on_button(self, callback: CallbackQuery, bot: Bot) -> None:
        pressed = self.buttons.recall(callback.data)
        if pressed is None:
            await callback.answer("This button has expired. Please send the command again.", show_alert=True)
            return
        # Answer at once so the button stops spinning; the command may take a while.
        await callback.answer()
        message = callback.message if isinstance(callback.message, Message) else None
        chat_id = message.chat.id if message else callback.from_user.id
        chat_type = message.chat.type if message else ChatType.PRIVATE
        reply = await self.run(pressed.command, callback.from_user.id)
        if reply is None:
            await bot.send_message(chat_id=chat_id, text=refusal_text(self.business_name))
            return
        if pressed.confirm and message is not None:
            await self.retire_question(message, pressed.label)
        await self.deliver(bot, reply, chat_id=chat_id, chat_type=chat_type, user_id=callback.from_user.id)

    async def retire_question(self, message: Message, label: str) -> None:
        """Takes the buttons off a confirmation question and notes the choice, so it cannot run twice."""
        try:
            if message.text is not None:
                await message.edit_text(
                    text=clip(f"{message.html_text}\n\n→ <b>{escape(label)}</b>", 4096),
                    parse_mode=ParseMode.HTML,
                    reply_markup=None,
                )
            else:
                await message.edit_reply_markup(reply_markup=None)
        except TelegramBadRequest as error:  # too old to edit, or already edited by a second press
            log.info("could not retire Telegram question %s: %s", message.message_id, error)

    async def deliver(self, bot: Bot, reply: Reply, *, chat_id: int, chat_type: str, user_id: int) -> None:
        if reply.private and chat_type != ChatType.PRIVATE:
            # Private answers (contact details, previews) never go to a group: send them to the person.
            try:
                await self.send(bot, reply, user_id)
            except TelegramForbiddenError:
                await bot.send_message(
                    chat_id=chat_id,
                    text="That answer is private. Open a chat with me, press Start, and ask again there.",
                )
            return
        await self.send(bot, reply, chat_id)

    async def send(self, bot: Bot, reply: Reply, chat_id: int) -> None:
        html = render_html(reply)
        keyboard = render_keyboard(reply, self.buttons)
        images = list(reply.images)
        if len(images) == 1 and len(html) <= CAPTION_LIMIT:
            # One chart with a short answer reads best as a single photo message with its caption.
            image = images.pop()
            await bot.send_photo(
                chat_id=chat_id,
                photo=BufferedInputFile(image.content, filename=image.filename),
                caption=html,
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard,
            )
        else:
            await bot.send_message(
                chat_id=chat_id, text=html, parse_mode=ParseMode.HTML, reply_markup=keyboard
            )
        for image in images:
            await bot.send_photo(
                chat_id=chat_id,
                photo=BufferedInputFile(image.content, filename=image.filename),
                caption=clip(image.alt_text, CAPTION_LIMIT),
            )
        for attachment in reply.attachments:
            await bot.send_document(
                chat_id=chat_id, document=BufferedInputFile(attachment.content, filename=attachment.filename)
            )
