"""Provider drivers: one module per provider with its outbound sends and its inbound parsing and checks.

Each driver implements `domain.delivery.ports.MessageDriver`; each module also offers the pure
functions a webhook route needs (verify the signature, parse the body into port values).
"""

from bot.drivers.smtp_email import SmtpEmailDriver, message_id_for, parse_bounce, parse_inbound_email
from bot.drivers.telegram import TelegramDriver, parse_telegram_update, verify_telegram_secret
from bot.drivers.twilio_sms import (
    TwilioSmsDriver,
    parse_twilio_inbound,
    parse_twilio_status,
    verify_twilio_signature,
)
from bot.drivers.webhook_errors import MalformedWebhook
from bot.drivers.whatsapp_cloud import (
    WhatsAppCloudDriver,
    parse_whatsapp_webhook,
    verify_whatsapp_handshake,
    verify_whatsapp_signature,
)

__all__ = [
    "MalformedWebhook",
    "SmtpEmailDriver",
    "TelegramDriver",
    "TwilioSmsDriver",
    "WhatsAppCloudDriver",
    "message_id_for",
    "parse_bounce",
    "parse_inbound_email",
    "parse_telegram_update",
    "parse_twilio_inbound",
    "parse_twilio_status",
    "parse_whatsapp_webhook",
    "verify_telegram_secret",
    "verify_twilio_signature",
    "verify_whatsapp_handshake",
    "verify_whatsapp_signature",
]
