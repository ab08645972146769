"""Files pretend customers send in the sandbox, served as WhatsApp, Telegram and Twilio serve media (auth required)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from api.sandbox.keys import STATE
from api.sandbox.state import SandboxState

#: How a download of a file may be made to fail, to try what Switchboard does then.
MEDIA_FAULTS = ("500", "missing", "hang")


@dataclass(frozen=True)
class Upload:
    """A file a pretend customer attaches: its bytes, its name, what it claims to be, and any fault."""

    content: bytes
    filename: str
    content_type: str
    fault: str | None = None


@dataclass(frozen=True)
class SandboxMedia:
    media_id: str
    upload: Upload

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.upload.content).hexdigest()


def shown(words: str, upload: Upload | None) -> str:
    """What the console lists for a customer's message: the words, and the file by name and size."""
    if upload is None:
        return words
    attached = f"[{upload.filename}, {len(upload.content):,} bytes]"
    return f"{words} {attached}" if words else attached


def keep(state: SandboxState, media_id: str, upload: Upload) -> SandboxMedia:
    media = SandboxMedia(media_id, upload)
    with state.lock:
        state.media[media_id] = media
    return media


def find(state: SandboxState, media_id: str) -> SandboxMedia | None:
    with state.lock:
        found = state.media.get(media_id)
    return found if isinstance(found, SandboxMedia) else None


async def upload_of(request: web.Request, data: dict[str, Any]) -> Upload | None:
    """The file a customer form or JSON body carries: a `file` part, or `file_base64` with `file_name`
    and `file_type`; `media_fault` (500, missing, hang) makes downloading it fail."""
    fault = str(data.get("media_fault") or "") or None
    if fault is not None and fault not in MEDIA_FAULTS:
        raise _bad(f"media_fault is one of {', '.join(MEDIA_FAULTS)}")
    if request.content_type == "multipart/form-data":
        form = await request.post()  # aiohttp keeps the parsed form, so reading it again is free
        part = form.get("file")
        if isinstance(part, web.FileField):
            content = part.file.read()
            if content:
                kind = str(data.get("file_type") or "") or part.content_type or "application/octet-stream"
                return Upload(content, part.filename or "file", kind, fault)
        return None
    encoded = data.get("file_base64")
    if not encoded:
        return None
    try:
        content = base64.b64decode(str(encoded), validate=True)
    except (binascii.Error, ValueError):
        raise _bad("file_base64 is not base64") from None
    name = str(data.get("file_name") or "file")
    return Upload(content, name, str(data.get("file_type") or "application/octet-stream"), fault)


def _bad(error: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": error}), content_type="application/json")


async def serve(state: SandboxState, media: SandboxMedia | None) -> web.StreamResponse:
    """The file's bytes as the provider's download answers, or the fault it was sent with."""
    if media is None or media.upload.fault == "missing":
        return web.Response(status=404, text="Not Found")
    if media.upload.fault == "500":
        return web.Response(status=500, text="Internal Server Error")
    if media.upload.fault == "hang":
        await state.hang(state.config.chaos.hang_seconds)
    return web.Response(body=media.upload.content, content_type=media.upload.content_type)


# --- WhatsApp: GET /{version}/{media-id} -> {url, mime_type, sha256, file_size}; the URL needs the token ---


def _whatsapp_allowed(request: web.Request) -> bool:
    expected = f"Bearer {request.app[STATE].config.whatsapp_token}"
    return secrets.compare_digest(request.headers.get("Authorization", ""), expected)


def _graph_refusal(status: int, code: int, message: str) -> web.Response:
    kind = "OAuthException" if status == 401 else "GraphMethodException"
    error = {"message": message, "type": kind, "code": code, "fbtrace_id": secrets.token_urlsafe(9)}
    return web.json_response({"error": error}, status=status)


async def whatsapp_media_info(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if not _whatsapp_allowed(request):
        return _graph_refusal(401, 190, "Invalid OAuth access token - Cannot parse access token")
    media_id = request.match_info["media_id"]
    media = find(state, media_id)
    if media is None:
        return _graph_refusal(
            400, 100, f"Unsupported get request. Object with ID '{media_id}' does not exist"
        )
    url = f"{request.url.origin()}/whatsapp_business/attachments/?mid={media_id}"
    return web.json_response(
        {
            "messaging_product": "whatsapp",
            "url": url,
            "mime_type": media.upload.content_type,
            "sha256": media.sha256,
            "file_size": len(media.upload.content),
            "id": media_id,
        }
    )


async def whatsapp_media_download(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    if not _whatsapp_allowed(request):
        return web.Response(status=401, text="Unauthorized")
    return await serve(state, find(state, request.query.get("mid", "")))


# --- Telegram: getFile (in telegram_api's method table) and GET /file/bot<token>/<file_path> ---------------


def telegram_file(state: SandboxState, file_id: str) -> dict[str, Any] | None:
    """getFile's result for a file a customer sent, or None when the bot has no such file."""
    media = find(state, file_id)
    if media is None:
        return None
    extension = media.upload.filename.rpartition(".")[2][:8] if "." in media.upload.filename else "bin"
    folder = "photos" if media.upload.content_type.startswith("image/") else "documents"
    return {
        "file_id": file_id,
        "file_unique_id": "AQAD" + media.sha256[:12],
        "file_size": len(media.upload.content),
        "file_path": f"{folder}/{file_id}.{extension}",
    }


async def telegram_download(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    if not secrets.compare_digest(request.match_info["token"], state.config.telegram_bot_token):
        return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
    file_id = request.match_info["path"].rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return await serve(state, find(state, file_id))


# --- Twilio: the MMS's MediaUrl, behind the account's basic auth --------------------------------------------


def twilio_media_url(state: SandboxState, base: str, message_sid: str, media_sid: str) -> str:
    """Where Twilio keeps an MMS's file; `base` is the sandbox's own address."""
    account = state.config.twilio_account_sid
    return f"{base.rstrip('/')}/2010-04-01/Accounts/{account}/Messages/{message_sid}/Media/{media_sid}"


async def twilio_download(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    header = request.headers.get("Authorization", "")
    try:
        user, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        user = password = ""
    allowed = (
        header.startswith("Basic ")
        and secrets.compare_digest(user, state.config.twilio_account_sid)
        and secrets.compare_digest(password, state.config.twilio_auth_token)
        and request.match_info["account_sid"] == state.config.twilio_account_sid
    )
    if not allowed:
        return web.json_response(
            {"code": 20003, "message": "Authenticate", "status": 401},
            status=401,
            headers={"WWW-Authenticate": 'Basic realm="Twilio API"'},
        )
    return await serve(state, find(state, request.match_info["media_sid"]))


def routes() -> list[web.RouteDef]:
    return [
        # GET /{version}/{media_id} is routed by whatsapp_api.graph_object (ids name phone numbers too).
        web.get("/whatsapp_business/attachments/", whatsapp_media_download),
        web.get("/file/bot{token}/{path:.+}", telegram_download),
        web.get(
            "/2010-04-01/Accounts/{account_sid}/Messages/{message_sid}/Media/{media_sid}", twilio_download
        ),
    ]
