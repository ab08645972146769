"""Fetching the files customers send from the providers that hold them (WhatsApp, Telegram, Twilio MMS), and
the files agents share in Slack threads."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from yarl import URL

from domain.conversations.attachments import MediaReference, MediaTooLarge, MediaUnavailable
from domain.vocabulary import Provider
from providers.http import PooledSession
from switchboard.settings import Settings

#: The Graph API version media ids are looked up with (the one the WhatsApp driver sends with).
GRAPH_VERSION = "v21.0"
_CHUNK = 64 * 1024


class ProviderMedia:
    """domain.conversations.attachments.MediaSource: each provider's documented way to download a file."""

    def __init__(self, settings: Settings, *, timeout_seconds: float = 8.0) -> None:
        self._settings = settings
        self._pool = PooledSession(total_timeout=timeout_seconds, connection_limit=20)

    async def close(self) -> None:
        await self._pool.close()

    async def fetch(self, reference: MediaReference, max_bytes: int) -> bytes:
        try:
            if reference.provider == Provider.WHATSAPP_CLOUD.value:
                return await self._whatsapp(reference.locator, max_bytes)
            if reference.provider == Provider.TELEGRAM.value:
                return await self._telegram(reference.locator, max_bytes)
            if reference.provider == Provider.TWILIO.value:
                return await self._twilio(reference.locator, max_bytes)
        except (TimeoutError, aiohttp.ClientError) as error:
            raise MediaUnavailable(_transport_words(error)) from error
        raise MediaUnavailable("this channel's files cannot be fetched")

    # --- WhatsApp: GET /{media-id} gives a short-lived URL, fetched with the same bearer token ------------

    async def _whatsapp(self, media_id: str, max_bytes: int) -> bytes:
        token = self._settings.whatsapp_token.get_secret_value()
        headers = {"Authorization": f"Bearer {token}"}
        base = self._settings.whatsapp_base_url.rstrip("/")
        if not media_id.replace("_", "").isalnum():
            raise MediaUnavailable("WhatsApp gave a media id that is not one")
        session = self._pool.get()
        async with session.get(f"{base}/{GRAPH_VERSION}/{media_id}", headers=headers) as answer:
            found = await _json(answer, "WhatsApp")
        url = found.get("url")
        size = found.get("file_size")
        if isinstance(size, int) and size > max_bytes:
            raise MediaTooLarge(size)
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise MediaUnavailable("WhatsApp gave no download address for the file")
        return await _download(session, url, headers, max_bytes, "WhatsApp")

    # --- Telegram: getFile gives a file_path under /file/bot<token>/ ------------------------------------

    async def _telegram(self, file_id: str, max_bytes: int) -> bytes:
        token = self._settings.telegram_bot_token.get_secret_value()
        base = self._settings.telegram_base_url.rstrip("/")
        session = self._pool.get()
        async with session.get(f"{base}/bot{token}/getFile", params={"file_id": file_id}) as answer:
            found = await _json(answer, "Telegram")
        if not found.get("ok"):
            # Telegram refuses getFile over 20 MB with "file is too big".
            description = str(found.get("description") or "Telegram would not hand the file over")
            if "too big" in description.lower():
                raise MediaTooLarge(None)
            raise MediaUnavailable(f"Telegram said: {description}")
        result = found.get("result") if isinstance(found.get("result"), dict) else {}
        assert isinstance(result, dict)
        size = result.get("file_size")
        if isinstance(size, int) and size > max_bytes:
            raise MediaTooLarge(size)
        path = result.get("file_path")
        if not isinstance(path, str) or not path or ".." in path:
            raise MediaUnavailable("Telegram gave no path for the file")
        return await _download(session, f"{base}/file/bot{token}/{path}", {}, max_bytes, "Telegram")

    # --- Twilio: the MediaUrl, with the account's basic auth, and only at Twilio's own address ---------

    async def _twilio(self, url: str, max_bytes: int) -> bytes:
        base = URL(self._settings.twilio_base_url.rstrip("/") or "https://api.twilio.com")
        target = URL(url)
        if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
            raise MediaUnavailable("the MMS named a file somewhere other than Twilio")
        authorization = aiohttp.encode_basic_auth(
            self._settings.twilio_account_sid, self._settings.twilio_auth_token.get_secret_value()
        )
        session = self._pool.get()
        async with session.get(url, headers={"Authorization": authorization}) as answer:
            return await _read_limited(answer, max_bytes, "Twilio")

    # --- Slack: a shared file's url_private, with the bot token, and only at Slack's own addresses --------

    async def slack_file(self, url: str, max_bytes: int) -> bytes:
        """domain.conversations.slack_threads.SlackFiles: a file a person shared in a thread. Slack answers a
        request it will not serve (no files:read scope, a token of another workspace) with its sign-in page
        and 200, so an HTML answer is refused as not the file."""
        target = URL(url)
        api = URL(self._settings.slack_base_url or "https://slack.com/api/")
        own = target.scheme == "https" and (target.host or "").endswith(".slack.com")
        sandbox = (target.scheme, target.host, target.port) == (api.scheme, api.host, api.port)
        if not (own or sandbox):
            raise MediaUnavailable("the message named a file somewhere other than Slack")
        token = self._settings.slack_bot_token.get_secret_value()
        try:
            session = self._pool.get()
            async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as answer:
                if answer.content_type == "text/html":
                    raise MediaUnavailable(
                        "Slack showed its sign-in page instead (the app needs the files:read scope)"
                    )
                return await _read_limited(answer, max_bytes, "Slack")
        except (TimeoutError, aiohttp.ClientError) as error:
            raise MediaUnavailable(_transport_words(error)) from error


async def _json(answer: aiohttp.ClientResponse, provider: str) -> dict[str, Any]:
    if answer.status >= 500:
        raise MediaUnavailable(f"{provider} answered with an error ({answer.status})")
    try:
        found = await answer.json(content_type=None)
    except ValueError as error:
        raise MediaUnavailable(f"{provider}'s answer about the file could not be read") from error
    if not isinstance(found, dict):
        raise MediaUnavailable(f"{provider}'s answer about the file could not be read")
    if answer.status >= 400 and provider != "Telegram":
        message = (found.get("error") or {}).get("message") if isinstance(found.get("error"), dict) else None
        raise MediaUnavailable(f"{provider} refused ({answer.status}{': ' + message if message else ''})")
    return found


async def _download(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], max_bytes: int, provider: str
) -> bytes:
    async with session.get(url, headers=headers) as answer:
        return await _read_limited(answer, max_bytes, provider)


async def _read_limited(answer: aiohttp.ClientResponse, max_bytes: int, provider: str) -> bytes:
    """The body, stopped as soon as it passes `max_bytes` (a huge file is never read to its end)."""
    if answer.status == 404:
        raise MediaUnavailable(f"{provider} no longer has the file")
    if answer.status >= 400:
        raise MediaUnavailable(f"{provider} answered with an error ({answer.status})")
    if answer.content_length is not None and answer.content_length > max_bytes:
        raise MediaTooLarge(answer.content_length)
    chunks: list[bytes] = []
    size = 0
    async for chunk in answer.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise MediaTooLarge(answer.content_length)
        chunks.append(chunk)
    return b"".join(chunks)


def _transport_words(error: BaseException) -> str:
    if isinstance(error, asyncio.TimeoutError):
        return "the download took too long"
    if isinstance(error, aiohttp.ClientConnectorError):
        return "could not connect to the provider"
    return "the connection broke during the download"


def media_source_from(settings: Settings) -> ProviderMedia:
    return ProviderMedia(settings, timeout_seconds=settings.attachment_fetch_timeout_seconds)
