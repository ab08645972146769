"""The sandbox's own endpoints: inspection, chaos controls, the demo page, and replying as a customer."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from api.sandbox import media, telegram_api, twilio_api, whatsapp_api
from api.sandbox.keys import STATE, WEBHOOKS
from api.sandbox.state import FAULTS, SandboxMessage
from api.sandbox.webhooks import WebhookDelivery

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
PROVIDERS = ("twilio", "whatsapp_cloud", "telegram", "smtp")


async def _body(request: web.Request) -> tuple[dict[str, Any], bool]:
    """A JSON or form body, and whether it came from the HTML page (which wants a redirect back)."""
    if request.content_type == "application/json":
        data = await request.json()
        return (data if isinstance(data, dict) else {}), False
    form = await request.post()
    return {key: str(value) for key, value in form.items() if not isinstance(value, web.FileField)}, True


def _done(from_page: bool, payload: dict[str, Any]) -> web.Response:
    if from_page:
        raise web.HTTPSeeOther("/_sandbox/")
    return web.json_response(payload, status=202)


def _required(data: dict[str, Any], *names: str) -> list[str]:
    missing = [name for name in names if not str(data.get(name, "")).strip()]
    if missing:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"missing {', '.join(missing)}"}), content_type="application/json"
        )
    return [str(data[name]).strip() for name in names]


def _words_or_file(
    data: dict[str, Any], sender_field: str, words_field: str, upload: object
) -> tuple[str, str]:
    """The sender and the words; with a file attached, the words may be left out."""
    if upload is None:
        sender, words = _required(data, sender_field, words_field)
        return sender, words
    (sender,) = _required(data, sender_field)
    return sender, str(data.get(words_field) or "").strip()


async def customer_sms(request: web.Request) -> web.Response:
    data, from_page = await _body(request)
    upload = await media.upload_of(request, data)
    sender, body = _words_or_file(data, "from", "body", upload)
    sid = twilio_api.customer_texts(
        request.app[STATE],
        request.app[WEBHOOKS],
        sender,
        body,
        data.get("to") or None,
        upload,
        media_base=str(request.url.origin()),
    )
    return _done(from_page, {"message_sid": sid})


async def customer_whatsapp(request: web.Request) -> web.Response:
    data, from_page = await _body(request)
    upload = await media.upload_of(request, data)
    choice = str(data.get("choice") or "").strip() or None
    if choice is not None:  # a tap on a row of a list message sent to them: no words needed
        (sender,), body = _required(data, "from"), ""
    else:
        sender, body = _words_or_file(data, "from", "body", upload)
    try:
        wamid = whatsapp_api.customer_writes(
            request.app[STATE], request.app[WEBHOOKS], sender, body, data.get("name"), upload, choice
        )
    except ValueError as error:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": str(error)}), content_type="application/json"
        ) from None
    return _done(from_page, {"id": wamid})


async def customer_telegram(request: web.Request) -> web.Response:
    data, from_page = await _body(request)
    (chat_id,) = _required(data, "chat_id")
    if not chat_id.lstrip("-").isdigit():
        raise web.HTTPBadRequest(
            text='{"error": "chat_id must be a number"}', content_type="application/json"
        )
    message_id = str(data.get("message_id") or "")
    if message_id and not message_id.isdigit():
        raise web.HTTPBadRequest(
            text='{"error": "message_id must be a number"}', content_type="application/json"
        )
    update = telegram_api.customer_writes(
        request.app[STATE],
        request.app[WEBHOOKS],
        int(chat_id),
        str(data.get("text", "")),
        str(data.get("first_name") or "Sandbox"),
        callback_data=data.get("callback_data") or None,
        message_id=int(message_id) if message_id else None,
        upload=await media.upload_of(request, data),
        language_code=str(data.get("language_code") or "en")[:35],
    )
    return _done(from_page, {"update": update})


async def customer_email(request: web.Request) -> web.Response:
    """Send an email to Switchboard's inbound endpoint: raw RFC 5322 bytes, or JSON/form fields."""
    state = request.app[STATE]
    from_page = False
    if request.content_type in ("message/rfc822", "text/plain", "application/octet-stream"):
        raw = await request.read()
    else:
        data, from_page = await _body(request)
        sender, body = _required(data, "from", "body")
        email = EmailMessage()
        email["From"] = sender
        email["To"] = str(data.get("to") or f"support@{state.config.email_domain}")
        email["Subject"] = str(data.get("subject") or "Message from a customer")
        email["Date"] = formatdate()
        email["Message-ID"] = make_msgid(domain="customer.sandbox.invalid")
        if data.get("in_reply_to"):
            email["In-Reply-To"] = str(data["in_reply_to"])
        email.set_content(body)
        raw = email.as_bytes()
    state.accept(
        SandboxMessage(
            "smtp",
            str(time.time_ns()),
            to="switchboard",
            sender="customer",
            body=raw[:200].decode("utf-8", "replace"),
            status="received",
            direction="inbound",
        )
    )
    url = state.config.webhook_url(state.config.email_inbound_path)
    request.app[WEBHOOKS].submit(
        WebhookDelivery("smtp", url, raw, state.config.email_webhook_headers(), "inbound email")
    )
    return _done(from_page, {"queued": True, "bytes": len(raw)})


async def whatsapp_templates(request: web.Request) -> web.Response:
    with request.app[STATE].lock:
        templates = list(request.app[STATE].whatsapp_templates.values())
    return web.json_response({"templates": [asdict(template) for template in templates]})


async def approve_whatsapp_template(request: web.Request) -> web.Response:
    """Approve a template as Meta would after review: {"name", "language", "category", "body"}."""
    data, from_page = await _body(request)
    submitted = {
        "name": str(data.get("name", "")).strip(),
        "language": str(data.get("language", "")).strip(),
        "category": str(data.get("category", "")).strip(),
        "components": [{"type": "BODY", "text": str(data.get("body", ""))}],
    }
    approved = whatsapp_api.approve_template(request.app[STATE], submitted)
    if isinstance(approved, str):
        raise web.HTTPBadRequest(text=json.dumps({"error": approved}), content_type="application/json")
    return _done(from_page, {"approved": asdict(approved)})


async def list_messages(request: web.Request) -> web.Response:
    provider = request.query.get("provider") or None
    return web.json_response(request.app[STATE].messages_json(provider))


async def list_emails(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].emails_json())


async def stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].stats_json())


async def webhook_log(request: web.Request) -> web.Response:
    return web.json_response(list(request.app[STATE].webhook_log))


async def telegram_calls(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].telegram_calls)


async def reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return web.json_response({"reset": True})


async def opt_out(request: web.Request) -> web.Response:
    data, _ = await _body(request)
    (address,) = _required(data, "address")
    request.app[STATE].opt_out(address)
    return web.json_response({"opted_out": address})


async def opt_in(request: web.Request) -> web.Response:
    data, _ = await _body(request)
    (address,) = _required(data, "address")
    request.app[STATE].opt_in(address)
    return web.json_response({"opted_in": address})


async def force_faults(request: web.Request) -> web.Response:
    """Queue faults for a provider's next sends: {"provider": "twilio", "faults": ["429", "timeout"]}."""
    data, _ = await _body(request)
    (provider,) = _required(data, "provider")
    faults = data.get("faults") or []
    if provider not in PROVIDERS or not isinstance(faults, list) or any(f not in FAULTS for f in faults):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"provider in {PROVIDERS}, faults from {FAULTS}"}),
            content_type="application/json",
        )
    request.app[STATE].force_faults(provider, *faults)
    return web.json_response({"provider": provider, "queued_faults": faults})


async def set_chaos(request: web.Request) -> web.Response:
    """Change how often sends fail from now on: {"rate_429": 0.05, "rate_500": 0, "rate_503": 0, "rate_timeout": 0}."""
    data, _ = await _body(request)
    state = request.app[STATE]
    chaos = state.config.chaos
    try:
        rates = {name: float(data.get(name, getattr(chaos, name))) for name in RATES}
    except (TypeError, ValueError):
        rates = {}
    if not rates or any(not 0 <= rate <= 1 for rate in rates.values()):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"give {', '.join(RATES)} as fractions from 0 to 1"}),
            content_type="application/json",
        )
    state.config = replace(
        state.config,
        chaos=replace(
            chaos,
            rate_429=rates["rate_429"],
            rate_500=rates["rate_500"],
            rate_503=rates["rate_503"],
            rate_timeout=rates["rate_timeout"],
        ),
    )
    return web.json_response({"chaos": rates})


RATES = ("rate_429", "rate_500", "rate_503", "rate_timeout")


#: The app languages the console's Telegram form offers (Telegram's `language_code`), English first as the
#: API's default.
TELEGRAM_APP_LANGUAGES = (
    ("en", "English"),
    ("de", "German"),
    ("fr", "French"),
    ("it", "Italian"),
    ("es", "Spanish"),
    ("tr", "Turkish"),
    ("ar", "Arabic"),
)


async def page(request: web.Request) -> web.Response:
    state = request.app[STATE]
    recent = {
        provider: [m for m in reversed(state.messages) if m.provider == provider][:25]
        for provider in PROVIDERS
    }
    html = _TEMPLATES.get_template("console.html").render(
        recent=recent,
        emails=list(reversed(state.emails))[:25],
        whatsapp_templates=sorted(state.whatsapp_templates.values(), key=lambda t: (t.name, t.language)),
        stats=state.stats_json(),
        config=state.config,
        telegram_languages=TELEGRAM_APP_LANGUAGES,
        labels={
            "twilio": "SMS (Twilio)",
            "whatsapp_cloud": "WhatsApp",
            "telegram": "Telegram",
            "smtp": "Email from customers",
        },
    )
    return web.Response(text=html, content_type="text/html")


def routes() -> list[web.RouteDef]:
    return [
        web.get("/_sandbox/", page),
        web.get("/_sandbox/messages", list_messages),
        web.get("/_sandbox/emails", list_emails),
        web.get("/_sandbox/stats", stats),
        web.get("/_sandbox/webhooks", webhook_log),
        web.get("/_sandbox/telegram/calls", telegram_calls),
        web.get("/_sandbox/whatsapp/templates", whatsapp_templates),
        web.post("/_sandbox/whatsapp/templates", approve_whatsapp_template),
        web.post("/_sandbox/reset", reset),
        web.post("/_sandbox/opt-out", opt_out),
        web.post("/_sandbox/opt-in", opt_in),
        web.post("/_sandbox/faults", force_faults),
        web.post("/_sandbox/chaos", set_chaos),
        web.post("/_sandbox/customer/sms", customer_sms),
        web.post("/_sandbox/customer/whatsapp", customer_whatsapp),
        web.post("/_sandbox/customer/telegram", customer_telegram),
        web.post("/_sandbox/customer/email", customer_email),
    ]
