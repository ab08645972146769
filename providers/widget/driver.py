"""The widget driver: a reply on the website chat is sent the moment it is handed to the widget hub.

The hub is the database: each open widget connection (SSE, any web process) picks up its visitor's sent
replies from `customer_communications`, and the widget confirms delivered and read itself. Handing over
cannot fail, and a repeated hand-over is the same row, so the visitor never sees a reply twice.
"""

from __future__ import annotations

from domain.delivery.ports import OutboundMessage, ProviderAcceptance
from domain.vocabulary import Channel, MessageStatus, Provider
from domain.widget.model import reply_ref
from switchboard.settings import Settings


class WidgetDriver:
    channel: Channel = Channel.CHAT
    provider: str = Provider.INTERNAL
    #: The widget's receipts name our message id, so a hand-over we lost track of is confirmed by them.
    receipts_name_our_id: bool = True
    timeout_seconds: float = 1.0

    async def send(self, message: OutboundMessage) -> ProviderAcceptance:
        return ProviderAcceptance(
            provider_message_id=reply_ref(message.message_id), status=MessageStatus.SENT
        )

    async def close(self) -> None:
        return None


def driver_from(_settings: Settings) -> WidgetDriver:
    return WidgetDriver()


#: Replies handed to widgets per second: bookkeeping only, nothing outside to pace.
RATE_PER_SECOND = 200.0
