"""Twilio Programmable SMS: sending through the Messages API and reading Twilio's signed webhooks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
from yarl import URL

from domain.delivery.ports import (
    OutboundMessage,
    ProviderAcceptance,
    ProviderError,
)
from domain.vocabulary import Channel, MessageStatus, Provider
from providers.http import PooledSession, money_to_micros, retry_after_seconds, transport_failure
from switchboard.settings import Settings

#: Query parameter carrying our message id on the StatusCallback URL.
MESSAGE_ID_PARAM = "mid"

#: Twilio error codes that no retry can fix: the recipient or the request itself is the problem.
PERMANENT_TWILIO_CODES: frozenset[int] = frozenset(
    {
        21211,  # 'To' is not a valid phone number
        21408,  # no permission to send to this region
        21601,  # 'To' is not a valid SMS number
        21602,  # body is required
        21604,  # 'To' is required
        21606,  # 'From' is not an SMS-capable number on this account
        21610,  # recipient replied STOP: opted out of this sender
        21612,  # no route between 'From' and 'To'
        21614,  # 'To' is not a mobile number
        21617,  # body longer than 1,600 characters
        30007,  # filtered by the carrier as spam
    }
)

#: 4xx answers that are about load, not about the message, so a later retry can succeed.
RETRYABLE_TWILIO_CODES: frozenset[int] = frozenset({14107, 20429, 30001})


# A bad or rotated credential is the operator's to fix, not the message's fault; retrying later
# instead of failing every queued message at once gives them time to fix it.
_CREDENTIALS_BACKOFF_SECONDS = 300.0


#: Twilio's message statuses in ours.
TWILIO_STATUSES: dict[str, MessageStatus] = {
    "accepted": MessageStatus.QUEUED,
    "scheduled": MessageStatus.QUEUED,
    "queued": MessageStatus.QUEUED,
    "sending": MessageStatus.QUEUED,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.READ,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.CANCELLED,
    "receiving": MessageStatus.RECEIVED,
    "received": MessageStatus.RECEIVED,
}


class TwilioSmsDriver:
    """Sends SMS through Twilio's 2010-04-01 Messages API with one pooled aiohttp session."""

    channel: Channel = Channel.SMS
    provider: str = Provider.TWILIO
    receipts_name_our_id: bool = True

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        base_url: str = "https://api.twilio.com",
        status_callback_url: str | None = None,
        *,
        timeout_seconds: float = 15.0,
    ) -> None:
        self.account_sid = account_sid
        self.from_number = from_number
        self.status_callback_url = status_callback_url
        self._authorization = aiohttp.encode_basic_auth(account_sid, auth_token)
        self._messages_url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self.timeout_seconds = timeout_seconds
        self._http = PooledSession(total_timeout=timeout_seconds)

    def status_callback_for(self, message_id: int) -> str | None:
        """The StatusCallback URL for one message: ours, with the message id added to the query."""
        if self.status_callback_url is None:
            return None
        return str(URL(self.status_callback_url).update_query({MESSAGE_ID_PARAM: str(message_id)}))

    async def send(self, message: OutboundMessage) -> ProviderAcceptance:
        form = {"To": message.to, "From": self.from_number, "Body": message.body}
        callback = self.status_callback_for(message.message_id)
        if callback is not None:
            form["StatusCallback"] = callback
        # Twilio documents I-Twilio-Idempotency-Token only as a header *it* sends on webhooks so
        # receivers can drop retried deliveries; its REST API does not document honouring it on
        # requests we make. We send it anyway: it is harmless, our sandbox honours it, and if
        # Twilio ever does, retries become safe. The real guard is ProviderError.maybe_accepted.
        headers = {
            "Authorization": self._authorization,
            "I-Twilio-Idempotency-Token": message.idempotency_key,
            "Accept": "application/json",
        }
        try:
            async with self._http.get().post(self._messages_url, data=form, headers=headers) as response:
                payload = await _json_or_empty(response)
                if response.status in (200, 201):
                    return _acceptance_from(payload)
                raise _error_from(response.status, payload, response.headers.get("Retry-After"))
        except ProviderError:
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise transport_failure("twilio", exc) from exc

    async def close(self) -> None:
        await self._http.close()


async def _json_or_empty(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        payload = await response.json(content_type=None)
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _acceptance_from(payload: Mapping[str, Any]) -> ProviderAcceptance:
    sid = payload.get("sid")
    if not isinstance(sid, str) or not sid:
        # The provider said yes but we cannot tell which message it made: treat as in doubt.
        raise ProviderError("twilio: accepted without a message sid", code="no_sid", maybe_accepted=True)
    status = TWILIO_STATUSES.get(str(payload.get("status", "queued")), MessageStatus.QUEUED)
    return ProviderAcceptance(
        provider_message_id=sid, status=status, cost_micros=money_to_micros(payload.get("price"))
    )


def _error_from(status: int, payload: Mapping[str, Any], retry_after: str | None) -> ProviderError:
    raw_code = payload.get("code")
    code = int(raw_code) if isinstance(raw_code, int | str) and str(raw_code).isdigit() else None
    text = f"twilio {status}: {payload.get('message') or 'no error message'}"
    code_text = str(code) if code is not None else f"http_{status}"
    if status == 429:
        return ProviderError(
            text, code=code_text, retry_after=retry_after_seconds(retry_after, 1.0), channel_wide=True
        )
    if status >= 500:
        return ProviderError(text, code=code_text, retry_after=retry_after_seconds(retry_after))
    if status in (401, 403):
        return ProviderError(
            text, code=code_text, retry_after=_CREDENTIALS_BACKOFF_SECONDS, channel_wide=True
        )
    if code in RETRYABLE_TWILIO_CODES:
        return ProviderError(text, code=code_text, retry_after=retry_after_seconds(retry_after, 5.0))
    # The known permanent codes, and any other 4xx: Twilio judged the request invalid, and the
    # same request will be judged the same way next time.
    return ProviderError(text, code=code_text, permanent=True)


#: Where Twilio posts delivery statuses (our message id rides along in the query).
STATUS_CALLBACK_PATH = "/webhooks/twilio/status"


def driver_from(settings: Settings) -> TwilioSmsDriver:
    return TwilioSmsDriver(
        settings.twilio_account_sid,
        settings.twilio_auth_token.get_secret_value(),
        settings.twilio_from,
        base_url=settings.twilio_base_url,
        status_callback_url=settings.public_url.rstrip("/") + STATUS_CALLBACK_PATH,
        timeout_seconds=settings.provider_timeout_seconds,
    )
