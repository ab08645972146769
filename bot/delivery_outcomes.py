"""What happened to an agent's reply, in words: the same in the Slack thread and in the staff bot's Telegram
chat (bot/slack/threads.py, bot/telegram_staff/conversations.py)."""

from __future__ import annotations

from domain.conversations.slack_threads import DeliveryEcho
from domain.vocabulary import MessageStatus

#: Provider refusals agents meet, in words (the rest show the provider's own reason).
FAILURE_WORDS = {
    "131047": "outside WhatsApp's 24-hour window: the customer has not written in the last 24 hours, "
    "so only an approved template can reach them",
    "re_engagement_required": "outside WhatsApp's 24-hour window: only an approved template can reach them now",
    "21610": "the customer has replied STOP to our SMS number",
    "21211": "the phone number is not valid",
    "30003": "the phone is unreachable (switched off or out of coverage)",
    "30005": "the number is unknown to its carrier",
    "30006": "the number cannot receive text messages (a landline, or blocked by its carrier)",
    "opted_out": "the customer has opted out of this channel",
}
#: The approved template that asks the customer to write back (storage/seeding/catalogue.py).
FOLLOW_UP_TEMPLATE = "chat_follow_up"
#: Refusals that mean WhatsApp's 24-hour window has closed: only an approved template can go now.
WINDOW_CLOSED = frozenset({"131047", "re_engagement_required", "470"})


def failure_reason(echo: DeliveryEcho) -> str:
    """Why the reply did not arrive: our words for the provider's code, else its own reason."""
    return (
        FAILURE_WORDS.get(echo.code or "")
        or FAILURE_WORDS.get(echo.reason or "")
        or echo.reason
        or (f"error {echo.code}" if echo.code else "the provider gave no reason")
    )


def window_closed(echo: DeliveryEcho) -> bool:
    """Whether the reply failed because WhatsApp's 24-hour window had closed."""
    return echo.status is MessageStatus.FAILED and (
        echo.code in WINDOW_CLOSED or echo.reason in WINDOW_CLOSED
    )
