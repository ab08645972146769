"""WhatsApp Cloud API: sending through the Graph API and reading Meta's signed webhooks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from domain.delivery.ports import (
    Choices,
    OutboundMessage,
    ProviderAcceptance,
    ProviderError,
)
from domain.vocabulary import Channel, MessageStatus, Provider
from providers.http import PooledSession, retry_after_seconds, transport_failure
from switchboard.settings import Settings

#: Error codes that no retry can fix.
PERMANENT_WHATSAPP_CODES: frozenset[int] = frozenset(
    {
        100,  # invalid parameter
        131008,  # required parameter missing
        131009,  # parameter value not valid
        131021,  # sender and recipient are the same number
        131026,  # undeliverable: not on WhatsApp, old app, or blocked us
        131047,  # re-engagement: more than 24 h since the customer last wrote; send a template
        131051,  # unsupported message type
        132000,  # template parameter count mismatch
        132001,  # template does not exist in that language
    }
)

#: Rate limits and transient faults, with how long Meta's guidance says to wait.
RETRYABLE_WHATSAPP_CODES: dict[int, float] = {
    1: 5.0,  # API unknown
    2: 5.0,  # API service temporarily down
    4: 60.0,  # application request limit
    80007: 60.0,  # WhatsApp Business Account rate limit
    130429: 1.0,  # throughput per phone number exceeded
    131000: 5.0,  # something went wrong
    131016: 10.0,  # service unavailable
    131056: 6.0,  # pair rate: about one message every 6 s to the same customer
    133016: 60.0,  # registration rate limit
}

#: Limits on the whole number or account, so every send waits; the rest concern one message or customer.
CHANNEL_WIDE_WHATSAPP_CODES = frozenset({4, 80007, 130429, 133016})
_CREDENTIAL_CODES = frozenset({190, 200, 10})
_CREDENTIALS_BACKOFF_SECONDS = 300.0


#: The longest caption Meta takes on an image or document.
CAPTION_LIMIT = 1024


class WhatsAppCloudDriver:
    """Sends WhatsApp text or template messages through `POST /{version}/{phone_number_id}/messages`."""

    channel: Channel = Channel.WHATSAPP
    provider: str = Provider.WHATSAPP_CLOUD
    receipts_name_our_id: bool = True

    def __init__(
        self,
        token: str,
        phone_number_id: str,
        base_url: str = "https://graph.facebook.com",
        api_version: str = "v21.0",
        *,
        timeout_seconds: float = 15.0,
    ) -> None:
        self.phone_number_id = phone_number_id
        self._messages_url = f"{base_url.rstrip('/')}/{api_version}/{phone_number_id}/messages"
        self.timeout_seconds = timeout_seconds
        self._http = PooledSession(
            total_timeout=timeout_seconds, headers={"Authorization": f"Bearer {token}"}
        )

    @staticmethod
    def request_body(message: OutboundMessage) -> dict[str, Any]:
        """The Graph API JSON for one message; our id rides along as `biz_opaque_callback_data`."""
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            # Meta wants the number without the leading '+'.
            "to": message.to.lstrip("+"),
            # Meta echoes this string in every status webhook, so a receipt finds our row even if
            # we crashed between Meta accepting the message and us recording the wamid.
            "biz_opaque_callback_data": str(message.message_id),
        }
        template = message.whatsapp_template
        if template is not None:
            body["type"] = "template"
            body["template"] = {
                "name": template.name,
                "language": {"code": template.language},
                "components": [dict(component) for component in template.components],
            }
        elif message.choices is not None and message.attachment is None:
            body["type"] = "interactive"
            body["interactive"] = list_message(message.body, message.choices)
        elif message.attachment is not None and len(message.body) <= CAPTION_LIMIT:
            # Media by link: Meta fetches the file from our signed URL; the words ride as its caption (a
            # longer reply goes as text, with the link in its words).
            kind = "image" if message.attachment.content_type.startswith("image/") else "document"
            media: dict[str, Any] = {"link": message.attachment.url, "caption": message.body}
            if kind == "document":
                media["filename"] = message.attachment.filename
            body["type"] = kind
            body[kind] = media
        else:
            body["type"] = "text"
            body["text"] = {"body": message.body, "preview_url": False}
        return body

    async def send(self, message: OutboundMessage) -> ProviderAcceptance:
        # The Cloud API documents no idempotency header for /messages; a request Meta received
        # twice is sent twice. X-Idempotency-Key is honoured by our sandbox only, and costs
        # nothing to send; the real guard is ProviderError.maybe_accepted.
        headers = {"X-Idempotency-Key": message.idempotency_key}
        try:
            async with self._http.get().post(
                self._messages_url, json=self.request_body(message), headers=headers
            ) as response:
                try:
                    payload = await response.json(content_type=None)
                except ValueError:
                    payload = {}
                if not isinstance(payload, dict):
                    payload = {}
                if response.status == 200:
                    return _acceptance_from(payload)
                raise _error_from(response.status, payload, response.headers.get("Retry-After"))
        except ProviderError:
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise transport_failure("whatsapp", exc) from exc

    async def close(self) -> None:
        await self._http.close()


#: Meta's limits on an interactive list message (characters; rows in all sections).
LIST_BODY_LIMIT = 1024
LIST_BUTTON_LIMIT = 20
ROW_TITLE_LIMIT = 24
ROW_DESCRIPTION_LIMIT = 72
ROWS_LIMIT = 10


def list_message(words: str, choices: Choices) -> dict[str, Any]:
    """An interactive list: the words as its body, one section of rows; each row's id comes back in the
    customer's `list_reply`, with its title (cut to Meta's limits here rather than refused there)."""
    return {
        "type": "list",
        "body": {"text": words[:LIST_BODY_LIMIT]},
        "action": {
            "button": _cut(choices.button, LIST_BUTTON_LIMIT),
            "sections": [
                {
                    "title": _cut(choices.button, ROW_TITLE_LIMIT),
                    "rows": [
                        {
                            "id": option.id[:200],
                            "title": _cut(option.title, ROW_TITLE_LIMIT),
                            **(
                                {"description": _cut(option.description, ROW_DESCRIPTION_LIMIT)}
                                if option.description
                                else {}
                            ),
                        }
                        for option in choices.options[:ROWS_LIMIT]
                    ],
                }
            ],
        },
    }


def _cut(text: str, limit: int) -> str:
    return text[:limit].rstrip()


def _acceptance_from(payload: Mapping[str, Any]) -> ProviderAcceptance:
    messages = payload.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        wamid = messages[0].get("id")
        if isinstance(wamid, str) and wamid:
            return ProviderAcceptance(provider_message_id=wamid, status=MessageStatus.QUEUED)
    raise ProviderError("whatsapp: accepted without a message id", code="no_id", maybe_accepted=True)


def _object(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _error_from(status: int, payload: Mapping[str, Any], retry_after: str | None) -> ProviderError:
    error = _object(payload.get("error"))
    raw_code = error.get("code")
    code = int(raw_code) if isinstance(raw_code, int | str) and str(raw_code).isdigit() else None
    details = _object(error.get("error_data")).get("details")
    text = f"whatsapp {status}: {error.get('message') or 'no error message'}"
    if details:
        text += f" ({details})"
    code_text = str(code) if code is not None else f"http_{status}"
    if code in RETRYABLE_WHATSAPP_CODES:
        return ProviderError(
            text,
            code=code_text,
            retry_after=retry_after_seconds(retry_after, RETRYABLE_WHATSAPP_CODES[code]),
            channel_wide=code in CHANNEL_WIDE_WHATSAPP_CODES,
        )
    if status == 429:
        return ProviderError(
            text, code=code_text, retry_after=retry_after_seconds(retry_after, 1.0), channel_wide=True
        )
    if status >= 500:
        return ProviderError(text, code=code_text, retry_after=retry_after_seconds(retry_after))
    if status in (401, 403) or code in _CREDENTIAL_CODES:
        return ProviderError(
            text, code=code_text, retry_after=_CREDENTIALS_BACKOFF_SECONDS, channel_wide=True
        )
    # PERMANENT_WHATSAPP_CODES and any other 4xx: the same request will be refused the same way.
    return ProviderError(text, code=code_text, permanent=True)


def driver_from(settings: Settings) -> WhatsAppCloudDriver:
    return WhatsAppCloudDriver(
        settings.whatsapp_token.get_secret_value(),
        settings.whatsapp_phone_number_id,
        base_url=settings.whatsapp_base_url,
        timeout_seconds=settings.provider_timeout_seconds,
    )
