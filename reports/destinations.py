"""Where scheduled reports go: a Slack channel, a Telegram chat or an email address, each through its real API."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import aiosmtplib
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup

from domain.dates_said import day_month_year
from domain.messages.words import failure_words
from providers.slack.client import slack_client
from providers.smtp.client import SmtpRelay, mark_own_mail
from providers.telegram.client import telegram_bot
from reports.exports import chunks
from reports.redraw import SLACK_ACTION_PREFIX, Redraw

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderedReport:
    """A report ready to send: the chart, the one-sentence summary and optionally the data as CSV."""

    title: str
    summary: str
    #: None when the chart could not be drawn: the figures go as text instead.
    png: bytes | None
    csv: bytes | None
    due_at: datetime
    late: bool
    filename_stem: str
    #: The schedule's timezone, in which a late run's due time is said.
    timezone: str
    #: The same for every attempt at one run; email sends it as the Message-ID so a second copy can be dropped.
    delivery_key: str | None = None
    #: The key figures as text lines (reports.exports.figures_text), sent with the chart.
    figures: str = ""
    #: "By …" buttons drawn under it in Slack and Telegram (reports.redraw).
    redraws: tuple[Redraw, ...] = ()

    @property
    def caption(self) -> str:
        due = self.due_at.astimezone(ZoneInfo(self.timezone))
        lateness = (
            f" (late delivery of the run due {day_month_year(due)}, {due:%H:%M %Z})" if self.late else ""
        )
        missing = "\nThe chart could not be drawn this time; the figures follow." if self.png is None else ""
        return f"{self.title}{lateness}\n{self.summary}{missing}"

    @property
    def text(self) -> str:
        """Caption and figures: what a reader gets in words."""
        return f"{self.caption}\n\n{self.figures}" if self.figures else self.caption


#: Slack cuts a section's text at 3,000 characters (and a message at 50 blocks): a report's words go in pieces
#: no longer than this, the first with the chart, the rest as messages after it.
SLACK_TEXT_LIMIT = 3000
#: Telegram allows 1,024 characters under a photo and 4,096 in a message.
TELEGRAM_CAPTION_LIMIT = 1024
TELEGRAM_TEXT_LIMIT = 4096


class DeliveryFailed(Exception):
    """The destination refused or could not be reached; the scheduler retries and then tells the owner.
    `permanent`: sending again cannot help (a mail server's 5xx: no such address), so it is not retried."""

    def __init__(self, words: str, *, permanent: bool = False) -> None:
        super().__init__(words)
        self.permanent = permanent


def smtp_said(error: BaseException) -> tuple[str, bool]:
    """What the mail server said, in words ("the mail server refused it: Recipient address rejected: User
    unknown (5.1.1)", never the library's exception), and whether the address was refused for good (5xx)."""
    refused: BaseException = error
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused) and error.recipients:
        refused = error.recipients[0]
    if isinstance(refused, aiosmtplib.SMTPResponseException):
        words = failure_words(f"{refused.code} {refused.message}")
        # Only the address itself refused for good is permanent; a login refused (535), a STARTTLS demanded
        # (530) or a busy greeting (554) may pass, so they are retried as any failure is.
        address_refused = isinstance(refused, aiosmtplib.SMTPRecipientRefused) and refused.code >= 500
        return f"the mail server refused it: {words}", address_refused
    if isinstance(error, TimeoutError):
        return "the mail server did not answer in time", False
    return str(error) or error.__class__.__name__, False


#: The longest a destination may take over one delivery, all its calls together; the scheduler stops it then.
DELIVERY_TIME_LIMIT = 120.0
#: Each call to a destination's API gives up sooner, so a slow call fails with the API's own error.
CALL_TIMEOUT = 30


class ReportDestination(Protocol):
    kind: str
    #: Seconds one delivery may take before the scheduler stops it; the claim lease must be longer.
    timeout_seconds: float

    async def deliver(self, destination: str, report: RenderedReport) -> None: ...


class SlackDestination:
    kind = "slack"

    def __init__(
        self,
        token: str,
        base_url: str = "https://slack.com/api/",
        *,
        timeout_seconds: float = DELIVERY_TIME_LIMIT,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.client = slack_client(
            token, base_url, timeout_seconds=max(1, int(min(CALL_TIMEOUT, timeout_seconds)))
        )

    async def deliver(self, destination: str, report: RenderedReport) -> None:
        files: list[dict[str, Any]] = []
        if report.png is not None:
            files.append(
                {"file": report.png, "filename": f"{report.filename_stem}.png", "title": report.title}
            )
        if report.csv is not None:
            files.append(
                {"file": report.csv, "filename": f"{report.filename_stem}.csv", "title": "Data (CSV)"}
            )
        pieces = chunks(report.text, SLACK_TEXT_LIMIT)
        try:
            channel = destination
            if files and not SLACK_CHANNEL_ID.fullmatch(destination):
                # Uploads need the channel's id (files.completeUploadExternal refuses "#name"); the bot has
                # no scope to list channels, but chat.postMessage takes a name and answers with the id.
                posted = await self.client.chat_postMessage(channel=destination, text=pieces[0])
                channel, pieces = str(posted["channel"]), pieces[1:]
                await self.client.files_upload_v2(file_uploads=files, channel=channel)
            elif files:
                await self.client.files_upload_v2(
                    file_uploads=files, channel=channel, initial_comment=pieces[0]
                )
                pieces = pieces[1:]
            for piece in pieces:
                await self.client.chat_postMessage(channel=channel, text=piece)
        except Exception as error:  # slack_sdk raises SlackApiError, aiohttp errors, timeouts
            raise DeliveryFailed(
                f"Slack delivery to {destination} failed: {slack_said(error, destination)}"
            ) from error
        if report.redraws:
            # The report is delivered; the buttons are a convenience, and a retry would post it all again.
            try:
                await self.client.chat_postMessage(
                    channel=channel, text=REDRAW_PROMPT, blocks=slack_redraw_blocks(report.redraws)
                )
            except Exception:
                log.warning(
                    "Redraw buttons under the report in %s could not be posted", destination, exc_info=True
                )


#: What Slack's error codes mean to the person who scheduled the report, and what to do.
SLACK_ERRORS = {
    "channel_not_found": "Slack has no channel {where} that the bot can see; check the name, or invite the "
    "bot to a private channel (/invite @Switchboard)",
    "not_in_channel": "the bot is not a member of {where}; invite it there (/invite @Switchboard)",
    "is_archived": "{where} is archived",
    "invalid_auth": "Slack refused the bot's token; check SWITCHBOARD_SLACK_BOT_TOKEN",
    "token_revoked": "the bot's token was revoked; install the Slack app again",
    "account_inactive": "the bot's token belongs to a deactivated app or user; install the Slack app again",
    "missing_scope": "the Slack app lacks a scope it needs (files:write, chat:write); reinstall it from the "
    "manifest",
    "ratelimited": "Slack asked us to slow down; the next attempt will try again",
}


def _slack_code(error: Exception) -> str | None:
    """Slack's error code in an SDK error's answer ("channel_not_found"), if it got one."""
    response = getattr(error, "response", None)
    code = response.get("error") if response is not None and hasattr(response, "get") else None
    return code if isinstance(code, str) and code else None


def slack_said(error: Exception, where: str) -> str:
    """A Slack error in words ("Slack has no channel #management that the bot can see; …"), never the SDK's
    dump of the request's address and the answer's dict."""
    code = _slack_code(error)
    if code is not None:
        known = SLACK_ERRORS.get(code)
        return known.format(where=where) if known else f"Slack answered “{code}”"
    return str(error) or type(error).__name__


#: How long scheduling waits for Slack to take the announcement.
ANNOUNCE_SECONDS = 5
SLACK_NOT_SET_UP = (
    "Slack is not set up here (SWITCHBOARD_SLACK_BOT_TOKEN is empty), so nothing could be delivered to {where}; "
    "deliver to an email address or a Telegram chat instead"
)


@dataclass(frozen=True)
class ChannelCheck:
    """What announcing a schedule in its Slack channel found. `refused`: why no delivery there can work (the
    schedule is not saved); `unchecked`: Slack did not answer, so the first delivery will tell."""

    refused: str | None = None
    unchecked: str | None = None


async def announce_in_slack(token: str, base_url: str, channel: str, text: str) -> ChannelCheck:
    """Post `text` in the channel a schedule will deliver to, when it is scheduled: that proves the bot can
    post there (Slack's "channel_not_found" now, not at the first delivery) and tells the channel what is
    coming. The bot has no scope to look channels up, so posting is the check."""
    if not token.strip():
        return ChannelCheck(refused=SLACK_NOT_SET_UP.format(where=channel))
    client = slack_client(token, base_url, timeout_seconds=ANNOUNCE_SECONDS)
    try:
        await client.chat_postMessage(channel=channel, text=text)
    except Exception as error:  # slack_sdk raises SlackApiError, aiohttp errors, timeouts
        said, code = slack_said(error, channel), _slack_code(error)
        if code is not None and code != "ratelimited":  # Slack answered, and said no
            return ChannelCheck(refused=said)
        log.warning("Could not announce a report schedule in %s: %s", channel, said)
        return ChannelCheck(unchecked=said)
    return ChannelCheck()


REDRAW_PROMPT = "Draw it again by another split:"
#: A Slack conversation id (public or private channel, direct message), as opposed to a "#name".
SLACK_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{5,20}")


def slack_redraw_blocks(choices: tuple[Redraw, ...]) -> list[dict[str, Any]]:
    """A line and the "By …" buttons, as the Slack bot draws its own (it answers them as typed commands)."""
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": REDRAW_PROMPT}},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": f"{SLACK_ACTION_PREFIX}{index}",
                    "text": {"type": "plain_text", "text": choice.label},
                    "value": choice.command,
                }
                for index, choice in enumerate(choices)
            ],
        },
    ]


def telegram_redraw_keyboard(choices: tuple[Redraw, ...]) -> InlineKeyboardMarkup | None:
    """The "By …" buttons in one row; a split whose data would pass Telegram's 64 bytes is left out."""
    drawn = [
        InlineKeyboardButton(text=choice.label, callback_data=data)
        for choice in choices
        if (data := choice.telegram_data) is not None
    ]
    return InlineKeyboardMarkup(inline_keyboard=[drawn]) if drawn else None


class TelegramDestination:
    kind = "telegram"

    def __init__(
        self,
        bot_token: str,
        base_url: str = "https://api.telegram.org",
        *,
        timeout_seconds: float = DELIVERY_TIME_LIMIT,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.bot = telegram_bot(bot_token, base_url, timeout_seconds=min(CALL_TIMEOUT, timeout_seconds))

    async def deliver(self, destination: str, report: RenderedReport) -> None:
        try:
            chat_id = int(destination)
        except ValueError:
            raise DeliveryFailed(f"Telegram destination must be a chat id, got {destination!r}") from None
        keyboard = telegram_redraw_keyboard(report.redraws)
        try:
            pieces = chunks(report.figures, TELEGRAM_TEXT_LIMIT) if report.figures else []
            if report.png is not None:
                photo = BufferedInputFile(report.png, filename=f"{report.filename_stem}.png")
                caption = report.caption
                if len(caption) > TELEGRAM_CAPTION_LIMIT:
                    caption, pieces = (
                        report.title[:TELEGRAM_CAPTION_LIMIT],
                        [
                            *chunks(report.caption, TELEGRAM_TEXT_LIMIT),
                            *pieces,
                        ],
                    )
                await self.bot.send_photo(
                    chat_id, photo, caption=caption, reply_markup=None if pieces else keyboard
                )
            else:
                pieces = chunks(report.text, TELEGRAM_TEXT_LIMIT)
            for number, piece in enumerate(pieces, start=1):
                # The buttons go under the last piece of the report's words, where the reader ends up.
                await self.bot.send_message(
                    chat_id, piece, reply_markup=keyboard if number == len(pieces) else None
                )
            if report.csv is not None:
                document = BufferedInputFile(report.csv, filename=f"{report.filename_stem}.csv")
                await self.bot.send_document(chat_id, document)
        except Exception as error:  # aiogram raises TelegramAPIError subclasses and network errors
            raise DeliveryFailed(f"Telegram delivery to {destination} failed: {error}") from error

    async def close(self) -> None:
        await self.bot.session.close()


class EmailDestination:
    kind = "email"

    def __init__(
        self,
        host: str,
        port: int,
        username: str | None,
        password: str | None,
        sender: str,
        *,
        timeout_seconds: float = DELIVERY_TIME_LIMIT,
        signing_secret: str = "",
    ) -> None:
        self.sender = sender
        self.signing_secret = signing_secret
        self.timeout_seconds = timeout_seconds
        self.relay = SmtpRelay(host, port, username or None, password or None, start_tls=None)

    async def deliver(self, destination: str, report: RenderedReport) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = destination
        message["Subject"] = report.title + (" (late)" if report.late else "")
        domain = parseaddr(self.sender)[1].rpartition("@")[2] or "localhost"
        if report.delivery_key:
            # One Message-ID per run: a copy sent again after a worker died mid-send is the same message.
            message["Message-ID"] = f"<{report.delivery_key}@{domain}>"
        mark_own_mail(message, "report", self.signing_secret, domain)
        message.set_content(report.text)
        if report.png is not None:
            message.add_attachment(
                report.png, maintype="image", subtype="png", filename=f"{report.filename_stem}.png"
            )
        if report.csv is not None:
            message.add_attachment(
                report.csv, maintype="text", subtype="csv", filename=f"{report.filename_stem}.csv"
            )
        try:
            await self.relay.send(message, timeout_seconds=min(CALL_TIMEOUT, self.timeout_seconds))
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            words, permanent = smtp_said(error)
            raise DeliveryFailed(f"email to {destination} failed: {words}", permanent=permanent) from error
