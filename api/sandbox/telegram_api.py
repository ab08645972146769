"""The sandbox's stand-in for the Telegram Bot API (`/bot{token}/{method}`) and its webhooks."""

from __future__ import annotations

import asyncio
import hashlib
import json
import mimetypes
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from api.sandbox import media
from api.sandbox.keys import STATE
from api.sandbox.state import SandboxMessage, SandboxState, TelegramWebhook
from api.sandbox.telegram_html import EntityParseError, formatted
from api.sandbox.webhooks import WebhookDelivery, WebhookDispatcher

PROVIDER = "telegram"
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
WRONG_FILE = "Bad Request: wrong file identifier/HTTP URL specified"
#: How JPEG, PNG, GIF and WebP files start; Telegram cannot make a photo of anything else.
IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"RIFF")
#: Telegram limits, counted after the HTML is read.
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024

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


def _file_ids(state: SandboxState, content: bytes, prefix: str, variant: str = "") -> tuple[str, str]:
    """(file_id, file_unique_id) for uploaded bytes.

    file_unique_id depends on the bytes alone, so the same file keeps it across re-sends and sandbox
    restarts, as on Telegram; file_id also depends on the bot, because a file_id only works for the
    bot it was given to.
    """
    digest = hashlib.sha256(content).hexdigest()
    bot_id = state.config.telegram_bot_token.split(":", 1)[0]
    per_bot = hashlib.sha256(f"{bot_id}:{digest}".encode()).hexdigest()
    return f"{prefix}{per_bot[:40]}{variant}", f"AQAD{digest[:12]}{variant}"


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


class BadRequest(Exception):
    """A request Telegram answers with 400 and this description, found deep in reading it."""


def _markup(params: Params) -> dict[str, Any] | None:
    """The reply_markup a request carries; an empty inline keyboard is no keyboard, as on Telegram."""
    markup = params.get("reply_markup")
    if markup in (None, ""):
        return None
    try:
        value = json.loads(markup) if isinstance(markup, str) else markup
    except ValueError:
        raise BadRequest("Bad Request: can't parse reply keyboard markup JSON object") from None
    if not isinstance(value, dict):
        raise BadRequest("Bad Request: can't parse reply keyboard markup JSON object")
    return None if value.get("inline_keyboard") == [] else value


def _formatted(params: Params, field: str, entities_key: str) -> dict[str, Any] | web.Response:
    """`text`/`caption` (with its entities) read with the parse_mode, or Telegram's refusal."""
    try:
        text, entities = formatted(params, field)
    except EntityParseError as error:
        return refused(400, f"Bad Request: can't parse entities: {error}")
    content: dict[str, Any] = {field: text}
    if entities:
        content[entities_key] = entities
    return content


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


def _set_content(message: dict[str, Any], changes: dict[str, Any], fields: tuple[str, ...]) -> None:
    """Apply an edit: every field in `fields` takes its value in `changes`, or goes if absent."""
    for field in fields:
        if changes.get(field) is None:
            message.pop(field, None)
        else:
            message[field] = changes[field]
    message["edit_date"] = int(time.time())


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
    content = _formatted(params, "text", "entities")
    if isinstance(content, web.Response):
        return content
    if not content["text"]:
        return refused(400, "Bad Request: message text is empty")
    if len(content["text"]) > TEXT_LIMIT:
        return refused(400, "Bad Request: message is too long")
    markup = _markup(params)
    if markup is not None:
        content["reply_markup"] = markup
    replied = _replied_to(state, target, params)
    if replied is not None:
        content["reply_to_message"] = replied
    return ok(_new_message(state, target, content))


def _replied_to(state: SandboxState, chat_id: int, params: Params) -> dict[str, Any] | None:
    """The message a send replies to (`reply_parameters`, or the older `reply_to_message_id`), as Telegram
    puts it in the sent message (without its own reply); None for no reply, or for one not found when
    `allow_sending_without_reply` says to send anyway. Otherwise Telegram refuses the send."""
    raw = params.get("reply_parameters")
    try:
        wanted = json.loads(raw) if isinstance(raw, str) and raw else raw
    except ValueError:
        raise BadRequest("Bad Request: can't parse reply parameters JSON object") from None
    if not isinstance(wanted, dict):
        wanted = {
            "message_id": params.get("reply_to_message_id"),
            "allow_sending_without_reply": params.get("allow_sending_without_reply"),
        }
    if wanted.get("message_id") in (None, ""):
        return None
    try:
        message_id = int(wanted["message_id"])
    except (TypeError, ValueError):
        raise BadRequest("Bad Request: invalid reply message identifier") from None
    with state.lock:
        found = state.telegram_sent.get((chat_id, message_id)) or state.telegram_received.get(
            (chat_id, message_id)
        )
    if found is not None:
        return {key: value for key, value in found.items() if key != "reply_to_message"}
    if wanted.get("allow_sending_without_reply") in (True, "true", "True", "1"):
        return None
    raise BadRequest("Bad Request: message to be replied not found")


def _attached(params: Params, files: Files, field: str) -> tuple[str, bytes] | str | None:
    value = params.get(field)
    if isinstance(value, str) and value.startswith("attach://"):
        return files.get(value[len("attach://") :])
    if field in files:
        return files[field]
    return value if isinstance(value, str) and value else None


def _photo_sizes(state: SandboxState, name: str, data: bytes) -> list[dict[str, Any]]:
    """The PhotoSize ladder Telegram makes from one upload; every size can be sent again by its id."""
    sizes: list[dict[str, Any]] = []
    for suffix, width in (("s", 90), ("m", 320), ("x", 800), ("y", 1280)):
        file_id, unique_id = _file_ids(state, data, "AgAC", suffix)
        sizes.append(
            {
                "file_id": file_id,
                "file_unique_id": unique_id,
                "width": width,
                "height": width * 3 // 4,
                "file_size": max(1, len(data) * width // 1280),
            }
        )
    with state.lock:
        for size in sizes:
            state.telegram_files[size["file_id"]] = ("photo", sizes)
    return sizes


def _document(state: SandboxState, name: str, data: bytes) -> dict[str, Any]:
    file_id, unique_id = _file_ids(state, data, "BQAC")
    document = {
        "file_name": name,
        "mime_type": mimetypes.guess_type(name)[0] or "application/octet-stream",
        "file_id": file_id,
        "file_unique_id": unique_id,
        "file_size": len(data),
    }
    with state.lock:
        state.telegram_files[file_id] = ("document", document)
    return document


def _sent_before(state: SandboxState, file_id: str, field: str) -> Any:
    """What a message carries for a file sent before, by its file_id; None if Telegram would refuse it."""
    with state.lock:
        known = state.telegram_files.get(file_id)
    if known is None or known[0] != field:
        return None
    return known[1]


async def _send_file(
    state: SandboxState,
    params: Params,
    files: Files,
    field: str,
    describe: Callable[[SandboxState, str, bytes], Any],
) -> web.Response:
    """sendPhoto/sendDocument: a multipart part, an attach:// reference, or a file_id/URL string."""
    target = _target(state, params)
    if isinstance(target, web.Response):
        return target
    attached = _attached(params, files, field)
    if attached is None:
        return refused(400, f"Bad Request: there is no {field} in the request")
    if isinstance(attached, tuple):
        if field == "photo" and not attached[1].startswith(IMAGE_SIGNATURES):
            return refused(400, "Bad Request: IMAGE_PROCESS_FAILED")
        described = describe(state, *attached)
    elif attached.startswith(("http://", "https://")):
        # Telegram would download the URL; the sandbox lets the URL stand for the file's bytes.
        described = describe(state, attached.rsplit("/", 1)[-1] or field, attached.encode())
    else:
        described = _sent_before(state, attached, field)
        if described is None:
            return refused(400, WRONG_FILE)
    content: dict[str, Any] = {field: described}
    caption = _formatted(params, "caption", "caption_entities")
    if isinstance(caption, web.Response):
        return caption
    if len(caption["caption"]) > CAPTION_LIMIT:
        return refused(400, "Bad Request: message caption is too long")
    if caption["caption"]:
        content.update(caption)
    markup = _markup(params)
    if markup is not None:
        content["reply_markup"] = markup
    replied = _replied_to(state, target, params)
    if replied is not None:
        content["reply_to_message"] = replied
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
    url = hook.url if hook else ""
    if hook is None and state.config.telegram_webhook_secret is not None:
        url = state.config.webhook_url(state.config.telegram_webhook_path)  # registered from the start
    return ok(
        {
            "url": url,
            "has_custom_certificate": False,
            "pending_update_count": 0 if url else len(state.telegram_updates),
            "max_connections": 40,
            "ip_address": "127.0.0.1",
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
    # A query can be answered once, and only one a button press made.
    query_id = str(params.get("callback_query_id", ""))
    with state.lock:
        known = query_id in state.telegram_open_callbacks
        state.telegram_open_callbacks.discard(query_id)
    if not known:
        return refused(
            400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
        )
    return ok(True)


def _message_to_edit(state: SandboxState, params: Params) -> dict[str, Any] | web.Response:
    if params.get("inline_message_id"):
        return refused(400, "Bad Request: MESSAGE_ID_INVALID")  # the sandbox makes no inline messages
    chat_id = _chat_id(params)
    if chat_id is None:
        return refused(400, "Bad Request: chat not found")
    try:
        message_id = int(str(params.get("message_id", "")))
    except ValueError:
        return refused(400, "Bad Request: message identifier is not specified")
    with state.lock:
        original = state.telegram_sent.get((chat_id, message_id))
    if original is None:
        return refused(400, "Bad Request: message to edit not found")
    return original


def _edited(
    state: SandboxState, original: dict[str, Any], changes: dict[str, Any], fields: tuple[str, ...]
) -> web.Response:
    """The edit applied and the message answered, or "not modified" when nothing would change."""
    if all(original.get(field) == changes.get(field) for field in fields):
        return refused(400, NOT_MODIFIED)
    with state.lock:
        _set_content(original, changes, fields)
    shown = state.find(PROVIDER, f"{original['chat']['id']}:{original['message_id']}")
    if shown is not None:
        shown.body = str(original.get("text") or original.get("caption") or "")
        shown.details = {key: value for key, value in original.items() if key in _SHOWN_DETAILS}
    return ok(original)


_SHOWN_DETAILS = ("entities", "reply_markup", "photo", "document", "caption", "caption_entities", "edit_date")


async def edit_message_text(state: SandboxState, params: Params, files: Files) -> web.Response:
    return _edit_content(state, params, "text", "entities", TEXT_LIMIT, "Bad Request: MESSAGE_TOO_LONG")


async def edit_message_caption(state: SandboxState, params: Params, files: Files) -> web.Response:
    too_long = "Bad Request: message caption is too long"
    return _edit_content(state, params, "caption", "caption_entities", CAPTION_LIMIT, too_long)


def _edit_content(
    state: SandboxState, params: Params, field: str, entities_key: str, limit: int, too_long: str
) -> web.Response:
    """editMessageText/editMessageCaption: a text message has no caption, a photo no text."""
    original = _message_to_edit(state, params)
    if isinstance(original, web.Response):
        return original
    if (field == "text") != ("text" in original):
        return refused(400, f"Bad Request: there is no {field} in the message to edit")
    changes = _formatted(params, field, entities_key)
    if isinstance(changes, web.Response):
        return changes
    if field == "text" and not changes["text"]:
        return refused(400, "Bad Request: message text is empty")
    if len(changes[field]) > limit:
        return refused(400, too_long)
    changes[field] = changes[field] or None  # an empty caption takes the caption off
    # Leaving reply_markup out of an edit takes the inline keyboard off, as on Telegram.
    changes["reply_markup"] = _markup(params)
    return _edited(state, original, changes, (field, entities_key, "reply_markup"))


async def edit_message_reply_markup(state: SandboxState, params: Params, files: Files) -> web.Response:
    original = _message_to_edit(state, params)
    if isinstance(original, web.Response):
        return original
    return _edited(state, original, {"reply_markup": _markup(params)}, ("reply_markup",))


async def get_file(state: SandboxState, params: Params, files: Files) -> web.Response:
    """getFile: where to download a file a customer sent (GET /file/bot<token>/<file_path>)."""
    found = media.telegram_file(state, str(params.get("file_id", "")))
    if found is None:
        return refused(400, "Bad Request: invalid file_id")
    if found["file_size"] > 20 * 1024 * 1024:
        return refused(400, "Bad Request: file is too big")
    return ok(found)


METHODS: dict[str, Method] = {
    "getme": get_me,
    "sendmessage": send_message,
    "sendphoto": send_photo,
    "senddocument": send_document,
    "setwebhook": set_webhook,
    "getfile": get_file,
    "deletewebhook": delete_webhook,
    "getwebhookinfo": get_webhook_info,
    "getupdates": get_updates,
    "answercallbackquery": answer_callback_query,
    "editmessagetext": edit_message_text,
    "editmessagecaption": edit_message_caption,
    "editmessagereplymarkup": edit_message_reply_markup,
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
    try:
        return await _answer(state, name, method, params, files)
    except BadRequest as refusal:
        return refused(400, str(refusal))


async def _answer(
    state: SandboxState, name: str, method: Method, params: Params, files: Files
) -> web.Response:
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
        state.count("injected_429s", PROVIDER)
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
    message_id: int | None = None,
    upload: media.Upload | None = None,
    language_code: str = "en",
) -> dict[str, Any]:
    """A pretend customer writes to the bot (or taps a button): webhook if one is set, else getUpdates.

    A tap lands on the bot's message `message_id`, or else on the latest one in the chat showing a
    button with that callback data, so the bot can answer the query and edit that very message. Text with a
    `message_id` is a reply to that message of the bot's.
    """
    person = {"id": chat_id, "is_bot": False, "first_name": first_name, "language_code": language_code}
    body: dict[str, Any]
    if callback_data is not None:
        query_id = str(secrets.randbits(63))
        with state.lock:
            state.telegram_open_callbacks.add(query_id)
        pressed = _pressed_message(state, chat_id, callback_data, message_id)
        body = {
            "callback_query": {
                "id": query_id,
                "from": person,
                "chat_instance": str(chat_id),
                "message": pressed,
                "data": callback_data,
            }
        }
        label = _callback_data_of(pressed).get(callback_data)
        record_id = f"callback:{query_id}"
        shown = f"Pressed “{label}”" if label else f"Pressed a button ({callback_data})"
    else:
        chat = {"id": chat_id, "first_name": first_name, "type": "private"}
        new_id = state.next_telegram_message_id(chat_id)
        body = {
            "message": {
                "message_id": new_id,
                "from": person,
                "chat": chat,
                "date": int(time.time()),
                **({"text": text} if upload is None else _customer_file(state, upload, text)),
            }
        }
        # With a message id, the text is a reply to that message of the bot's (Telegram's "Reply").
        replied = state.telegram_sent.get((chat_id, message_id)) if message_id is not None else None
        if replied is not None:
            body["message"]["reply_to_message"] = replied
        with state.lock:
            state.telegram_received[(chat_id, new_id)] = body["message"]
        record_id, shown = f"{chat_id}:{new_id}", media.shown(text, upload)
    state.accept(
        SandboxMessage(
            PROVIDER,
            record_id,
            to=state.config.telegram_bot_username,
            sender=str(chat_id),
            body=shown,
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


def _customer_file(state: SandboxState, upload: media.Upload, caption: str) -> dict[str, Any]:
    """A photo (images) or a document (anything else) a customer sends, with its caption; getFile finds it."""
    photo = upload.content_type in ("image/jpeg", "image/png")
    file_id, unique_id = _file_ids(state, upload.content, "AgAC" if photo else "BQAC")
    media.keep(state, file_id, upload)
    size = len(upload.content)
    content: dict[str, Any]
    if photo:
        content = {
            "photo": [
                {
                    "file_id": file_id,
                    "file_unique_id": unique_id,
                    "width": 1280,
                    "height": 960,
                    "file_size": size,
                }
            ]
        }
    else:
        content = {
            "document": {
                "file_name": upload.filename,
                "mime_type": upload.content_type,
                "file_id": file_id,
                "file_unique_id": unique_id,
                "file_size": size,
            }
        }
    if caption:
        content["caption"] = caption
    return content


def _pressed_message(
    state: SandboxState, chat_id: int, callback_data: str, message_id: int | None
) -> dict[str, Any]:
    with state.lock:
        if message_id is not None and (chat_id, message_id) in state.telegram_sent:
            return dict(state.telegram_sent[(chat_id, message_id)])
        for (chat, _), message in reversed(state.telegram_sent.items()):
            if chat == chat_id and callback_data in _callback_data_of(message):
                return dict(message)
    # No such button on record (typed into the console by hand): a message that only carries it.
    return {
        "message_id": message_id or state.next_telegram_message_id(chat_id),
        "from": bot_user(state),
        "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
        "date": int(time.time()),
        "text": "(a message the sandbox has no record of)",
    }


def _callback_data_of(message: dict[str, Any]) -> dict[str, str]:
    """callback_data -> button text, for the inline keyboard under a message."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return {
        str(button["callback_data"]): str(button.get("text", ""))
        for row in rows
        for button in row
        if "callback_data" in button
    }


def routes() -> list[web.RouteDef]:
    return [web.route("*", "/bot{token}/{method}", bot_api)]
