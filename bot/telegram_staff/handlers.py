"""aiogram handlers for staff in Telegram: text and /commands run as commands, inline buttons run theirs."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable
from html import escape

from aiogram import Bot, F, Router
from aiogram.enums import ChatType, ParseMode
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
)
from aiogram.types import BufferedInputFile, CallbackQuery, Message

from bot.command_runner import CommandRunner
from bot.replies import Reply
from bot.telegram_staff.conversations import (
    ConversationDesk,
    StaffFile,
    answer_words,
    command_of_callback,
)
from bot.telegram_staff.render import (
    CAPTION_LIMIT,
    ButtonCommands,
    PressedButton,
    clip,
    render_html,
    render_keyboard,
    render_plain,
)
from reports.redraw import parse_redraw

log = logging.getLogger(__name__)

#: `/sales@SwitchboardBot this week` -> command word `sales`, rest `this week`.
SLASH_COMMAND = re.compile(r"^/(?P<word>[A-Za-z0-9_]+)(?:@\w+)?(?P<rest>.*)$", re.DOTALL)

TROUBLE = Reply(
    text="Sorry, something went wrong while answering that. Please try again shortly.", kind="error"
)
REFUSED_ANSWER = (
    "Sorry, Telegram would not show that answer. Please try again, or look it up on the dashboard."
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


def refusal_text(business_name: str, user_id: int | None = None) -> str:
    """No data, only the person's own Telegram user id, which the administrator links
    (`switchboard staff link EMAIL --telegram ID`)."""
    yours = f" (your Telegram user id is {user_id})" if user_id else ""
    return (
        f"Sorry, this bot is only for staff of {business_name}. If you work here, ask an "
        f"administrator to link your Telegram account{yours}."
    )


#: What a photo or document sent to the bot on its own gets.
FILES_GO_AS_REPLIES = (
    "Files are not read as commands. To send one to a customer, reply with it (Telegram's Reply) to a message "
    "about their conversation; the caption goes with it."
)


def staff_file_of(message: Message) -> StaffFile | None:
    """The photo (its largest size) or document a message carries."""
    if message.document is not None:
        document = message.document
        return StaffFile(
            document.file_id, document.file_name or "file", document.mime_type, document.file_size
        )
    if message.photo:
        largest = max(message.photo, key=lambda size: size.width * size.height)
        return StaffFile(largest.file_id, "photo.jpg", "image/jpeg", largest.file_size)
    return None


class TelegramStaffFrontEnd:
    """Runs staff commands from Telegram and sends the neutral replies back as Telegram messages."""

    def __init__(
        self,
        runner: CommandRunner,
        *,
        business_name: str,
        buttons: ButtonCommands | None = None,
        conversations: ConversationDesk | None = None,
    ):
        self.runner = runner
        self.business_name = business_name
        self.buttons = buttons or ButtonCommands()
        #: Live chat: replies to forwarded conversation messages answer the customer.
        self.conversations = conversations

    def router(self) -> Router:
        router = Router(name="telegram_staff")
        router.message.register(self.on_message, F.text)
        router.message.register(self.on_file, F.photo | F.document)
        router.callback_query.register(self.on_live_chat_button, F.data.startswith("lc:"))
        router.callback_query.register(self.on_button)
        return router

    async def on_conversation_reply(self, message: Message, bot: Bot) -> bool:
        """A reply to a forwarded conversation message answers the customer; False when it is not one."""
        replied = message.reply_to_message
        if self.conversations is None or replied is None or message.from_user is None or message.text is None:
            return False
        outcome = await self.conversations.answer(
            message.chat.id, replied.message_id, message.message_id, message.text, message.from_user.id
        )
        if outcome is None:
            return False
        words = answer_words(outcome)
        if words:
            await self.say(bot, message.chat.id, words)
        return True

    async def on_file(self, message: Message, bot: Bot) -> None:
        """A photo or document: as a reply to a forwarded conversation message it goes to the customer with its
        caption; anything else is told how files are sent (never silently dropped)."""
        if message.from_user is None:
            return
        replied = message.reply_to_message
        shared = staff_file_of(message)
        if self.conversations is not None and replied is not None and shared is not None:
            outcome = await self.conversations.answer(
                message.chat.id,
                replied.message_id,
                message.message_id,
                message.caption or "",
                message.from_user.id,
                file=shared,
            )
            if outcome is not None:
                words = answer_words(outcome)
                if words:
                    await self.say(bot, message.chat.id, words)
                return
        await self.say(bot, message.chat.id, FILES_GO_AS_REPLIES)

    async def on_live_chat_button(self, callback: CallbackQuery, bot: Bot) -> None:
        command = command_of_callback(callback.data)
        await self.answer_press(callback)
        if command is None:
            return
        message = callback.message if isinstance(callback.message, Message) else None
        chat_id = message.chat.id if message else callback.from_user.id
        reply = await self.run(command, callback.from_user.id)
        if reply is None:
            await self.say(bot, chat_id, refusal_text(self.business_name, callback.from_user.id))
            return
        await self.deliver(
            bot, reply, chat_id=chat_id, chat_type=ChatType.PRIVATE, user_id=callback.from_user.id
        )

    async def run(self, text: str, telegram_user_id: int) -> Reply | None:
        try:
            return await self.runner.run(text, telegram_user_id=telegram_user_id, via="telegram")
        except Exception:  # a failing command must still answer the person
            log.exception("Telegram command %r from %s failed", text, telegram_user_id)
            return TROUBLE

    async def on_message(self, message: Message, bot: Bot) -> None:
        if message.from_user is None or message.text is None:
            return  # channel posts and service messages have no person to answer
        if await self.on_conversation_reply(message, bot):
            return
        reply = await self.run(command_text(message.text), message.from_user.id)
        if reply is None:
            await self.say(bot, message.chat.id, refusal_text(self.business_name, message.from_user.id))
            return
        await self.deliver(
            bot, reply, chat_id=message.chat.id, chat_type=message.chat.type, user_id=message.from_user.id
        )

    async def on_button(self, callback: CallbackQuery, bot: Bot) -> None:
        pressed = self.buttons.recall(callback.data)
        redraw = parse_redraw(callback.data)
        if pressed is None and redraw is not None:  # under a scheduled report, drawn by the worker
            pressed = PressedButton(command=redraw, label=redraw, confirm=False)
        if pressed is None:
            await self.answer_press(
                callback, "This button has expired. Please send the command again.", show_alert=True
            )
            return
        # Answer at once so the button stops spinning; the command may take a while.
        await self.answer_press(callback)
        message = callback.message if isinstance(callback.message, Message) else None
        chat_id = message.chat.id if message else callback.from_user.id
        chat_type = message.chat.type if message else ChatType.PRIVATE
        reply = await self.run(pressed.command, callback.from_user.id)
        if reply is None:
            await self.say(bot, chat_id, refusal_text(self.business_name, callback.from_user.id))
            return
        if pressed.confirm and message is not None:
            await self.retire_question(message, pressed.label)
        await self.deliver(bot, reply, chat_id=chat_id, chat_type=chat_type, user_id=callback.from_user.id)

    async def answer_press(
        self, callback: CallbackQuery, text: str | None = None, *, show_alert: bool | None = None
    ) -> None:
        """Stops the button's spinner. Telegram refuses a query that is too old or already answered;
        the press still counts, so it is noted and the command goes on."""
        try:
            await callback.answer(text, show_alert=show_alert)
        except TelegramBadRequest as refusal:
            log.info("could not answer Telegram button press %s: %s", callback.id, refusal.message)

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
        except TelegramAPIError as error:
            # Too old to edit, already edited by a second press, or gone: taking the buttons off is
            # a courtesy, and the answer below matters more.
            log.info("could not retire Telegram question %s: %s", message.message_id, error)

    async def deliver(self, bot: Bot, reply: Reply, *, chat_id: int, chat_type: str, user_id: int) -> None:
        if reply.private and chat_type != ChatType.PRIVATE:
            # Private answers (contact details, previews) never go to a group: send them to the person.
            try:
                await self.send(bot, reply, user_id)
            except TelegramForbiddenError:
                await self.say(
                    bot,
                    chat_id,
                    "That answer is private. Open a chat with me, press Start, and ask again there.",
                )
            return
        await self.send(bot, reply, chat_id)

    async def send(self, bot: Bot, reply: Reply, chat_id: int) -> None:
        """Sends the reply; whatever Telegram refuses (a 400) is sent more plainly or noted, never dropped."""
        html = render_html(reply)
        keyboard = render_keyboard(reply, self.buttons)
        images = list(reply.images)
        answered = False
        if len(images) == 1 and len(html) <= CAPTION_LIMIT:
            # One chart with a short answer reads best as a single photo message with its caption.
            image = images[0]
            answered = await self.accepted(
                bot.send_photo(
                    chat_id=chat_id,
                    photo=BufferedInputFile(image.content, filename=image.filename),
                    caption=html,
                    parse_mode=ParseMode.HTML,
                    reply_markup=keyboard,
                ),
                chat_id,
            )
            if answered:
                images = []
        if not answered:
            answered = await self.accepted(
                bot.send_message(
                    chat_id=chat_id, text=html, parse_mode=ParseMode.HTML, reply_markup=keyboard
                ),
                chat_id,
            ) or await self.accepted(
                bot.send_message(chat_id=chat_id, text=render_plain(reply), reply_markup=keyboard), chat_id
            )
        if not answered:
            await self.say(bot, chat_id, REFUSED_ANSWER)
        for image in images:
            photo = BufferedInputFile(image.content, filename=image.filename)
            caption = clip(image.alt_text, CAPTION_LIMIT)
            if not await self.accepted(
                bot.send_photo(chat_id=chat_id, photo=photo, caption=caption), chat_id
            ):
                await self.say(
                    bot, chat_id, f"The chart “{clip(image.alt_text, 200)}” could not be sent to Telegram."
                )
        for attachment in reply.attachments:
            document = BufferedInputFile(attachment.content, filename=attachment.filename)
            if not await self.accepted(bot.send_document(chat_id=chat_id, document=document), chat_id):
                await self.say(bot, chat_id, f"The file {attachment.filename} could not be sent to Telegram.")

    async def accepted(self, sending: Awaitable[object], chat_id: int) -> bool:
        """Whether Telegram took the message; a refusal (400, or a file too large) is logged, not raised."""
        try:
            await sending
        except (TelegramBadRequest, TelegramEntityTooLarge) as refusal:
            log.warning("Telegram refused a message to %s: %s", chat_id, refusal.message)
            return False
        return True

    async def say(self, bot: Bot, chat_id: int, text: str) -> None:
        """A short plain note; if Telegram will not take even that, there is no one left to tell."""
        try:
            await bot.send_message(chat_id=chat_id, text=text)
        except (TelegramBadRequest, TelegramForbiddenError) as refusal:
            log.warning("Telegram refused a note to %s: %s", chat_id, refusal.message)
