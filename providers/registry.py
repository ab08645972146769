"""The providers Switchboard talks to, in one table: channel, driver, pacing, webhook URLs and readers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pydantic import SecretStr

from domain.conversations.model import WebhookContents, WebhookDelivery
from domain.delivery.pacing import TokenBucket
from domain.delivery.ports import MessageDriver
from domain.vocabulary import Channel, Provider
from providers.smtp import driver as smtp_driver
from providers.smtp import webhooks as smtp_webhooks
from providers.telegram import driver as telegram_driver
from providers.telegram import webhooks as telegram_webhooks
from providers.twilio import driver as twilio_driver
from providers.twilio import webhooks as twilio_webhooks
from providers.webhook_bodies import MalformedWebhook, ReadingContext, WebhookEndpoint, WebhookRead
from providers.whatsapp import driver as whatsapp_driver
from providers.whatsapp import webhooks as whatsapp_webhooks
from providers.widget import driver as widget_driver
from switchboard.settings import Settings


@dataclass(frozen=True)
class CustomerChannelProvider:
    """A provider that carries one customer channel: how to build its driver, its send rate, its webhooks."""

    provider: Provider
    channel: Channel
    driver_from: Callable[[Settings], MessageDriver]
    rate_per_second: Callable[[Settings], float]
    #: Inbox `kind` -> the reader for webhooks of that kind.
    readers: Mapping[str, WebhookRead]
    #: The webhook URLs the provider calls, each with the check that accepts or refuses a request.
    endpoints: tuple[WebhookEndpoint, ...]


PROVIDERS: tuple[CustomerChannelProvider, ...] = (
    CustomerChannelProvider(
        Provider.TWILIO,
        Channel.SMS,
        twilio_driver.driver_from,
        lambda settings: settings.sms_rate_per_second,
        {
            twilio_webhooks.STATUS_KIND: twilio_webhooks.read_status,
            twilio_webhooks.INBOUND_KIND: twilio_webhooks.read_inbound,
        },
        twilio_webhooks.ENDPOINTS,
    ),
    CustomerChannelProvider(
        Provider.WHATSAPP_CLOUD,
        Channel.WHATSAPP,
        whatsapp_driver.driver_from,
        lambda settings: settings.whatsapp_rate_per_second,
        {whatsapp_webhooks.WEBHOOK_KIND: whatsapp_webhooks.read_webhook},
        whatsapp_webhooks.ENDPOINTS,
    ),
    CustomerChannelProvider(
        Provider.SMTP,
        Channel.EMAIL,
        smtp_driver.driver_from,
        lambda settings: settings.email_rate_per_second,
        {smtp_webhooks.INBOUND_KIND: smtp_webhooks.read_email},
        smtp_webhooks.ENDPOINTS,
    ),
    CustomerChannelProvider(
        Provider.TELEGRAM,
        Channel.TELEGRAM,
        telegram_driver.driver_from,
        lambda settings: settings.telegram_rate_per_second,
        {telegram_webhooks.UPDATE_KIND: telegram_webhooks.read_update},
        telegram_webhooks.ENDPOINTS,
    ),
    # The website chat: replies are handed to the visitor's widget; its messages come in by /widget/ routes.
    CustomerChannelProvider(
        Provider.INTERNAL,
        Channel.CHAT,
        widget_driver.driver_from,
        lambda _settings: widget_driver.RATE_PER_SECOND,
        {},
        (),
    ),
)


#: Every webhook URL of every provider, in the table's order: the routes `api/webhooks/` declares.
WEBHOOK_ENDPOINTS: tuple[WebhookEndpoint, ...] = tuple(
    endpoint for entry in PROVIDERS for endpoint in entry.endpoints
)


def build_drivers(settings: Settings) -> dict[Channel, MessageDriver]:
    return {entry.channel: entry.driver_from(settings) for entry in PROVIDERS}


def build_pacing(settings: Settings) -> dict[Channel, TokenBucket]:
    return {entry.channel: TokenBucket(entry.rate_per_second(settings)) for entry in PROVIDERS}


class ProviderWebhookReader:
    """domain.conversations.ports.WebhookReader: finds the reader for a stored webhook in the table."""

    def __init__(self, link_secret: SecretStr | str, *, telegram_bot_address: str = "bot") -> None:
        self._context = ReadingContext(link_secret, telegram_bot_address)
        self._readers = {
            (entry.provider.value, kind): read for entry in PROVIDERS for kind, read in entry.readers.items()
        }

    def read(self, delivery: WebhookDelivery) -> WebhookContents:
        read = self._readers.get((delivery.provider, delivery.kind))
        if read is None:
            raise MalformedWebhook(f"no reader for {delivery.provider}/{delivery.kind}")
        return read(delivery, self._context)
