"""The sandbox's stand-in for the Telegram Bot API (`/bot{token}/{method}`) and its webhooks."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from api.sandbox.keys import STATE
from api.sandbox.state import SandboxMessage, SandboxState, TelegramWebhook
from api.sandbox.webhooks import WebhookDelivery, WebhookDispatcher

PROVIDER = "telegram"

Params = dict[str, Any]
Files = dict[str, tuple[str, bytes]]
Method = Callable[[SandboxState, Params, Files], Awaitable[web.Response]]


def ok(result: Any, description: str | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": True, "result": result}
    if description:
        body["description"] = description
    return web.json_response(body)


def refused(code: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=code)


def bot_user(state: SandboxState) -> dict[str, Any]:
    token_id = int(state.config.telegram_bot_token.split(":", 1)[0])
    return {
        "id": token_id,
        "is_bot": True,
        "first_name": "Switchboard Sandbox",
        "username": state.config.telegram_bot_username,
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }


def _file_ids(content: bytes) -> tuple[str, str]:
    digest = hashlib.sha256(content).hexdigest()
    return f"AgAC{digest[:40]}", f"AQAD{digest[:12]}"


async def _read_params(request: web.Request) -> tuple[Params, Files]:
    params: Params = dict(request.query)
    files: Files = {}
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            params.update(body)
    elif request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.post()
        for name, value in form.items():
            if isinstance(value, web.FileField):
                files[name] = (value.filename, value.file.read())
            else:
                params[name] = value
    return params, files


def _chat_id(params: Params) -> int | None:
    try:
        return int(str(params.get("chat_id", "")))
    except ValueError:
        return None  # "@channelusername" and friends: the sandbox knows only numeric chats


def _new_message(state: SandboxState, chat_id: int, content: dict[str, Any]) -> dict[str, Any]:
    message_id = state.next_telegram_message_id(chat_id)
    chat: dict[str, Any] = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
    if chat_id <= 0:
        chat["title"] = "Sandbox group"
    message = {
        "message_id": message_id,
        "from": bot_user(state),
        "chat": chat,
        "date": int(time.time()),
        **content,
    }
    with state.lock:
        state.telegram_sent[(chat_id, message_id)] = message
    state.accept(
        SandboxMessage(
            provider=PROVIDER,
            provider_message_id=f"{chat_id}:{message_id}",
            to=str(chat_id),
            sender=state.config.telegram_bot_username,
            body=str(content.get("text") or content.get("caption") or ""),
            status="sent",
            details={key: value for key, value in content.items() if key not in ("text",)},
        )
    )
    return message


def _target(state: SandboxState, params: Params) -> int | web.Response:
    chat_id = _chat_id(params)
    if chat_id is None:
        return refused(400, "Bad Request: chat not found")
    if state.is_opted_out(str(chat_id)):
        return refused(403, "Forbidden: bot was blocked by the user")
    return chat_id


async def get_me(state: SandboxState, params: Params, files: Files) -> web.Response:
    return ok(bot_user(state))


async def send_message(state: SandboxState, params: Params, files: Files) -> web.Response:
    target = _target(state, params)
    if isinstance(target, web.Response):
        return target
    text = str(params.get("text", ""))
    if not text.strip():
        return refused(400, "Bad Request: message text is empty")
    if len(text) > 4096:
        return refused(400, "Bad Request: message is too long")
    content: dict[str, Any] = {"text": text}
    if "reply_markup" in params:
        markup = params["reply_markup"]
        content["reply_markup"] = json.loads(markup) if isinstance(markup, str) else markup
    return ok(_new_message(state, target, content))


def _attached(params: Params, files: Files, field: str) -> tuple[str, bytes] | str | None:
    value = params.get(field)
    if isinstance(value, str) and value.startswith("attach://"):
        return files.get(value[len("attach://") :])
    if field in files:
        return files[field]
    return value if isinstance(value, str) and value else None


def _photo_sizes(name: str, data: bytes) -> list[dict[str, Any]]:
    """The PhotoSize ladder Telegram makes from one upload."""
    file_id, unique_id = _file_ids(data)
    return [
        {
            "file_id": f"{file_id}{suffix}",
            "file_unique_id": f"{unique_id}{suffix}",
            "width": width,
            "height": width * 3 // 4,
            "file_size": max(1, len(data) * width // 1280),
        }
        for suffix, width in (("s", 90), ("m", 320), ("x", 800), ("y", 1280))
    ]


def _document(name: str, data: bytes) -> dict[str, Any]:
    file_id, unique_id = _file_ids(data)
    return {
        "file_name": name,
        "mime_type": "application/octet-stream",
        "file_id": file_id,
        "file_unique_id": unique_id,
        "file_size": len(data),
    }


async def _send_file(
    state: SandboxState, params: Params, files: Files, field: str, describe: Callable[[str, bytes], Any]
) -> web.Response:
    """sendPhoto/sendDocument: a multipart part, an attach:// reference, or a file_id/URL string."""
    target = _target(state, params)
    if isinstance(target, web.Response):
        return target
    attached = _attached(params, files, field)
    if attached is None:
        return refused(400, f"Bad Request: there is no {field} in the request")
    name, data = attached if isinstance(attached, tuple) else (field, attached.encode())
    content: dict[str, Any] = {field: describe(name, data)}
    if params.get("caption"):
        content["caption"] = str(params["caption"])
    return ok(_new_message(state, target, content))


async def send_photo(state: SandboxState, params: Params, files: Files) -> web.Response:
    return await _send_file(state, params, files, "photo", _photo_sizes)


async def send_document(state: SandboxState, params: Params, files: Files) -> web.Response:
    return await _send_file(state, params, files, "document", _document)


async def set_webhook(state: SandboxState, params: Params, files: Files) -> web.Response:
    url = str(params.get("url", ""))
    if not url:
        return await delete_webhook(state, params, files)
    if not url.startswith(("http://", "https://")):
        return refused(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
    secret = params.get("secret_token")
    state.telegram_webhook = TelegramWebhook(url=url, secret_token=str(secret) if secret else None)
    return ok(True, "Webhook was set")


async def delete_webhook(state: SandboxState, params: Params, files: Files) -> web.Response:
    state.telegram_webhook = None
    if str(params.get("drop_pending_updates", "")).lower() in ("true", "1"):
        state.telegram_updates.clear()
    return ok(True, "Webhook was deleted")


async def get_webhook_info(state: SandboxState, params: Params, files: Files) -> web.Response:
    hook = state.telegram_webhook
    return ok(
        {
            "url": hook.url if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": 0 if hook else len(state.telegram_updates),
        }
    )


async def get_updates(state: SandboxState, params: Params, files: Files) -> web.Response:
    if state.telegram_webhook is not None:
        return refused(
            409,
            "Conflict: can't use getUpdates method while webhook is active; "
            "use deleteWebhook to delete the webhook first",
        )
    offset = int(str(params.get("offset", 0) or 0))
    limit = max(1, min(100, int(str(params.get("limit", 100) or 100))))
    wait = min(float(str(params.get("timeout", 0) or 0)), state.config.telegram_max_long_poll_seconds)
    # Asking for an offset confirms every update before it, as in the real Bot API.
    state.telegram_updates[:] = [u for u in state.telegram_updates if u["update_id"] >= offset]
    if not state.telegram_updates and wait > 0:
        state.telegram_update_arrived.clear()
        try:
            await asyncio.wait_for(state.telegram_update_arrived.wait(), timeout=wait)
        except TimeoutError:
            pass
    return ok(state.telegram_updates[:limit])


async def answer_callback_query(state: SandboxState, params: Params, files: Files) -> web.Response:
    if not params.get("callback_query_id"):
        return refused(
            400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
        )
    return ok(True)


async def edit_message_text(state: SandboxState, params: Params, files: Files) -> web.Response:
    chat_id = _chat_id(params)
    try:
        message_id = int(str(params.get("message_id", "")))
    except ValueError:
        return refused(400, "Bad Request: message identifier is not specified")
    original = state.telegram_sent.get((chat_id or 0, message_id))
    if original is None:
        return refused(400, "Bad Request: message to edit not found")
    text = str(params.get("text", ""))
    if original.get("text") == text:
        return refused(
            400,
            "Bad Request: message is not modified: specified new message content and reply "
            "markup are exactly the same as a current content and reply markup of the message",
        )
    original.update({"text": text, "edit_date": int(time.time())})
    return ok(original)


METHODS: dict[str, Method] = {
    "getme": get_me,
    "sendmessage": send_message,
    "sendphoto": send_photo,
    "senddocument": send_document,
    "setwebhook": set_webhook,
    "deletewebhook": delete_webhook,
    "getwebhookinfo": get_webhook_info,
    "getupdates": get_updates,
    "answercallbackquery": answer_callback_query,
    "editmessagetext": edit_message_text,
}
_SENDS = {"sendmessage", "sendphoto", "senddocument"}


async def bot_api(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if not secrets.compare_digest(request.match_info["token"], state.config.telegram_bot_token):
        return refused(401, "Unauthorized")
    name = request.match_info["method"].lower()
    params, files = await _read_params(request)
    with state.lock:
        state.telegram_calls.append(
            {
                "method": request.match_info["method"],
                "params": {k: str(v) for k, v in params.items()},
                "files": {k: {"filename": f[0], "size": len(f[1])} for k, f in files.items()},
                "at": time.time(),
            }
        )
    method = METHODS.get(name)
    if method is None:
        return refused(404, "Not Found: method not found")
    if name in _SENDS:
        state.count("requests", PROVIDER)
        fault = state.draw_fault(PROVIDER)
        if fault is not None:
            return await _injected(state, fault, method, params, files)
        if not state.take_rate_token(PROVIDER):
            state.count("rate_limited_429s", PROVIDER)
            return refused(429, "Too Many Requests: retry after 1", retry_after=1)
    return await method(state, params, files)


async def _injected(
    state: SandboxState, fault: str, method: Method, params: Params, files: Files
) -> web.Response:
    state.count("injected_errors", PROVIDER)
    if fault == "429":
        retry = state.config.chaos.retry_after_seconds
        return refused(429, f"Too Many Requests: retry after {retry}", retry_after=retry)
    if fault == "timeout":
        # Telegram delivers, then the answer never reaches the bot.
        answer = await method(state, params, files)
        await state.hang(state.config.chaos.hang_seconds)
        return answer
    return refused(
        int(fault) if fault == "500" else 502, "Internal Server Error" if fault == "500" else "Bad Gateway"
    )


def customer_writes(
    state: SandboxState,
    webhooks: WebhookDispatcher,
    chat_id: int,
    text: str,
    first_name: str,
    callback_data: str | None = None,
) -> dict[str, Any]:
    """A pretend customer writes to the bot (or taps a button): webhook if one is set, else getUpdates."""
    person = {"id": chat_id, "is_bot": False, "first_name": first_name, "language_code": "en"}
    chat = {"id": chat_id, "first_name": first_name, "type": "private"}
    message_id = state.next_telegram_message_id(chat_id)
    message = {"message_id": message_id, "from": person, "chat": chat, "date": int(time.time()), "text": text}
    body: dict[str, Any]
    if callback_data is not None:
        body = {
            "callback_query": {
                "id": str(secrets.randbits(63)),
                "from": person,
                "chat_instance": str(chat_id),
                "message": {**message, "from": bot_user(state)},
                "data": callback_data,
            }
        }
    else:
        body = {"message": message}
    state.accept(
        SandboxMessage(
            PROVIDER,
            f"{chat_id}:{message_id}",
            to=state.config.telegram_bot_username,
            sender=str(chat_id),
            body=callback_data or text,
            status="received",
            direction="inbound",
        )
    )
    hook = state.telegram_webhook
    url, secret = (hook.url, hook.secret_token) if hook else (None, None)
    if hook is None and state.config.telegram_webhook_secret is not None:
        url = state.config.webhook_url(state.config.telegram_webhook_path)
        secret = state.config.telegram_webhook_secret
    if url is None:
        return state.queue_telegram_update(body)
    with state.lock:
        update = {"update_id": state.telegram_next_update_id, **body}
        state.telegram_next_update_id += 1
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    webhooks.submit(WebhookDelivery(PROVIDER, url, json.dumps(update).encode(), headers, "telegram update"))
    return update


def routes() -> list[web.RouteDef]:
    return [web.route("*", "/bot{token}/{method}", bot_api)]
