"""The sandbox's stand-in for the WhatsApp Cloud API messages endpoint and Meta's signed webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from typing import Any

from aiohttp import web

from api.sandbox import media
from api.sandbox.keys import STATE, WEBHOOKS
from api.sandbox.state import SandboxMessage, SandboxState, address_key
from api.sandbox.webhooks import WebhookDelivery, WebhookDispatcher
from api.sandbox.whatsapp_templates import (
    ApprovedTemplate,
    TemplateRefusal,
    render_template,
    template_problem,
)

PROVIDER = "whatsapp_cloud"
#: Delivery failures the sandbox picks from: (code, title, details).
FAILURES = (
    (131026, "Message undeliverable", "Unable to deliver message: the recipient may not be on WhatsApp."),
    (
        131049,
        "Meta chose not to deliver.",
        "This message was not delivered to maintain healthy ecosystem engagement.",
    ),
)


def new_wamid() -> str:
    return "wamid." + base64.b64encode(b"HBgL" + os.urandom(30)).decode()


def fbtrace_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(9)).decode()


def graph_error(
    status: int, code: int, message: str, details: str = "", kind: str = "OAuthException"
) -> web.Response:
    error: dict[str, Any] = {"message": message, "type": kind, "code": code, "fbtrace_id": fbtrace_id()}
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return web.json_response({"error": error}, status=status)


def envelope(state: SandboxState, value: dict[str, Any]) -> dict[str, Any]:
    """The webhook wrapper Meta puts around every change."""
    config = state.config
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": config.whatsapp_business_account_id,
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": config.whatsapp_display_phone_number,
                                "phone_number_id": config.whatsapp_phone_number_id,
                            },
                            **value,
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }


def signed_delivery(state: SandboxState, payload: dict[str, Any], description: str) -> WebhookDelivery:
    body = json.dumps(payload, separators=(",", ":")).encode()
    digest = hmac.new(state.config.whatsapp_app_secret.encode(), body, hashlib.sha256).hexdigest()
    return WebhookDelivery(
        provider=PROVIDER,
        url=state.config.webhook_url(state.config.whatsapp_webhook_path),
        body=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"},
        description=description,
    )


def _injected(state: SandboxState, fault: str) -> web.Response:
    state.count("injected_errors", PROVIDER)
    if fault == "429":
        state.count("injected_429s", PROVIDER)
        return graph_error(
            429, 130429, "(#130429) Rate limit hit", "Cloud API message throughput has been reached."
        )
    if fault == "503":
        return graph_error(503, 2, "Service temporarily unavailable")
    return graph_error(500, 1, "An unknown error occurred")


def _invalid(message: dict[str, Any]) -> web.Response | None:
    if message.get("messaging_product") != "whatsapp":
        return graph_error(400, 100, "(#100) The parameter messaging_product is required.")
    if not str(message.get("to", "")).strip():
        return graph_error(400, 100, "(#100) The parameter to is required.")
    kind = message.get("type", "text")
    if kind == "text" and not str((message.get("text") or {}).get("body", "")).strip():
        return graph_error(400, 100, "(#100) The parameter text['body'] is required.")
    if kind == "interactive":
        refusal = _invalid_interactive(message.get("interactive"))
        if refusal is not None:
            return graph_error(400, 131009, "(#131009) Parameter value is not valid", refusal)
    if kind == "template":
        template = message.get("template") or {}
        if not template.get("name") or not (template.get("language") or {}).get("code"):
            return graph_error(
                400, 100, "(#100) Param template['name'] and template['language'] are required."
            )
    return None


def _invalid_interactive(interactive: object) -> str | None:
    """What Meta would refuse in an interactive list message (its documented limits), else None."""
    if not isinstance(interactive, dict) or interactive.get("type") != "list":
        return "interactive['type'] must be list (the sandbox speaks list messages)"
    text = str((interactive.get("body") or {}).get("text", ""))
    if not text.strip() or len(text) > 1024:
        return "interactive['body']['text'] must be 1 to 1024 characters"
    action = interactive.get("action") or {}
    button = str(action.get("button", ""))
    if not button.strip() or len(button) > 20:
        return "action['button'] must be 1 to 20 characters"
    sections = action.get("sections")
    if not isinstance(sections, list) or not sections:
        return "action['sections'] is required"
    rows = [row for section in sections if isinstance(section, dict) for row in section.get("rows") or []]
    if not 1 <= len(rows) <= 10:
        return "a list message has 1 to 10 rows"
    ids = [str(row.get("id", "")) for row in rows if isinstance(row, dict)]
    if len(ids) != len(rows) or len(set(ids)) != len(ids) or not all(0 < len(i) <= 200 for i in ids):
        return "each row needs a unique id of 1 to 200 characters"
    for row in rows:
        if not 0 < len(str(row.get("title", ""))) <= 24 or len(str(row.get("description", ""))) > 72:
            return "a row's title is 1 to 24 characters and its description at most 72"
    return None


def _choices(message: dict[str, Any]) -> list[dict[str, str]]:
    """The rows of an interactive list, as the phone offers them to tap."""
    if message.get("type") != "interactive":
        return []
    sections = ((message.get("interactive") or {}).get("action") or {}).get("sections") or []
    return [
        {"id": str(r["id"]), "title": str(r["title"]), "description": str(r.get("description", ""))}
        for section in sections
        for r in section.get("rows") or []
    ]


def _undeliverable_reason(state: SandboxState, to: str, kind: str) -> tuple[int, str, str] | None:
    if state.is_opted_out(to):
        return (
            131026,
            "Message undeliverable",
            "Unable to deliver message: the recipient has blocked this number.",
        )
    if kind != "template" and state.config.whatsapp_enforce_window and not state.whatsapp_window_open(to):
        return (
            131047,
            "Re-engagement message",
            "Message failed to send because more than 24 hours have passed since the customer last "
            "replied to this number.",
        )
    return None


def _unauthorised(request: web.Request) -> web.Response | None:
    expected = f"Bearer {request.app[STATE].config.whatsapp_token}"
    if not secrets.compare_digest(request.headers.get("Authorization", ""), expected):
        return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
    return None


def _no_such_object(object_id: str) -> web.Response:
    return graph_error(
        400,
        100,
        f"Unsupported post request. Object with ID '{object_id}' does not exist",
        kind="GraphMethodException",
    )


async def graph_object(request: web.Request) -> web.Response:
    """GET /{version}/{id}: Meta answers any object by its id. The business phone number (what `doctor`
    asks) is answered here; every other id is a media id (api/sandbox/media.py)."""
    config = request.app[STATE].config
    if request.match_info["media_id"] != config.whatsapp_phone_number_id:
        return await media.whatsapp_media_info(request)
    unauthorised = _unauthorised(request)
    if unauthorised is not None:
        return unauthorised
    return web.json_response(
        {
            "id": config.whatsapp_phone_number_id,
            "display_phone_number": config.whatsapp_display_phone_number,
            "verified_name": "Switchboard sandbox",
            "quality_rating": "GREEN",
            "code_verification_status": "VERIFIED",
            "platform_type": "CLOUD_API",
            "throughput": {"level": "STANDARD"},
        }
    )


async def send_message(request: web.Request) -> web.Response:
    state = request.app[STATE]
    config = state.config
    unauthorised = _unauthorised(request)
    if unauthorised is not None:
        return unauthorised
    if request.match_info["phone_number_id"] != config.whatsapp_phone_number_id:
        return _no_such_object(request.match_info["phone_number_id"])
    try:
        message = await request.json()
    except ValueError:
        return graph_error(400, 100, "(#100) Invalid JSON body")
    if not isinstance(message, dict):
        return graph_error(400, 100, "(#100) Invalid JSON body")
    key = request.headers.get("X-Idempotency-Key")
    earlier = state.previous_send(PROVIDER, key)
    if earlier is not None:
        return web.json_response(_accepted_body(earlier))
    fault = state.draw_fault(PROVIDER)
    if fault is not None and fault != "timeout":
        return _injected(state, fault)
    if not state.take_rate_token(PROVIDER):
        state.count("rate_limited_429s", PROVIDER)
        return graph_error(
            429, 130429, "(#130429) Rate limit hit", "Cloud API message throughput has been reached."
        )
    invalid = _invalid(message)
    if invalid is not None:
        return invalid
    to = address_key(str(message["to"]))
    kind = str(message.get("type", "text"))
    template = message.get("template") or {}
    shown = render_template(state.whatsapp_templates, template) if kind == "template" else _text_of(message)
    if isinstance(shown, TemplateRefusal):
        return graph_error(shown.status, shown.code, f"(#{shown.code}) {shown.title}", shown.details)
    reason = _undeliverable_reason(state, to, kind)
    if reason is not None and not config.whatsapp_async_errors:
        code, title, details = reason
        return graph_error(400, code, f"(#{code}) {title}", details)
    opaque = str(message.get("biz_opaque_callback_data", ""))
    accepted = state.accept(
        SandboxMessage(
            provider=PROVIDER,
            provider_message_id=new_wamid(),
            to=to,
            sender=config.whatsapp_display_phone_number,
            body=shown,
            status="accepted",
            idempotency_key=key,
            our_message_id=int(opaque) if opaque.isdigit() else None,
            template=template.get("name") if kind == "template" else None,
            details={
                "input": str(message["to"]),
                "biz_opaque_callback_data": opaque or None,
                "type": kind,
                **({"choices": _choices(message)} if kind == "interactive" else {}),
                **_template_details(state, template),
            },
        )
    )
    if config.send_status_webhooks:
        request.app[WEBHOOKS].spawn(_progress(state, request.app[WEBHOOKS], accepted, reason))
    if fault == "timeout":
        state.count("injected_errors", PROVIDER)
        await state.hang(config.chaos.hang_seconds)
    return web.json_response(_accepted_body(accepted))


def _text_of(message: dict[str, Any]) -> str:
    kind = str(message.get("type", "text"))
    if kind in ("image", "document") and isinstance(message.get(kind), dict):
        media = message[kind]  # media by link: the phone shows the file, then its caption
        return (
            f"[{kind}: {media.get('filename') or media.get('link', '')}] {media.get('caption', '')}".strip()
        )
    if kind == "interactive":
        interactive = message.get("interactive") or {}
        button = str((interactive.get("action") or {}).get("button", ""))
        return f"{(interactive.get('body') or {}).get('text', '')} [list: {button}]"
    return str((message.get("text") or {}).get("body", f"[{kind}]"))


def _template_details(state: SandboxState, template: dict[str, Any]) -> dict[str, str]:
    language = str((template.get("language") or {}).get("code", ""))
    approved = state.whatsapp_templates.get((str(template.get("name", "")), language))
    if approved is None:
        return {}
    return {"template_language": language, "template_category": approved.category}


def _accepted_body(message: SandboxMessage) -> dict[str, Any]:
    sent: dict[str, str] = {"id": message.provider_message_id}
    if message.template:
        sent["message_status"] = "accepted"
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": message.details.get("input", message.to), "wa_id": message.to}],
        "messages": [sent],
    }


async def _progress(
    state: SandboxState,
    webhooks: WebhookDispatcher,
    message: SandboxMessage,
    refusal: tuple[int, str, str] | None,
) -> None:
    """sent -> delivered -> read, or failed with errors[]; each a signed status webhook."""
    failure = refusal or (state.random.choice(FAILURES) if state.should_fail() else None)
    steps = ["failed"] if refusal else ["sent", "failed"] if failure else ["sent", "delivered", "read"]
    for status in steps:
        await state.hang(state.latency())
        item: dict[str, Any] = {
            "id": message.provider_message_id,
            "status": status,
            "timestamp": str(int(time.time())),
            "recipient_id": message.to,
        }
        opaque = message.details.get("biz_opaque_callback_data")
        if opaque:
            item["biz_opaque_callback_data"] = opaque
        if status in ("sent", "delivered"):
            item["pricing"] = _pricing(message)
        if status == "failed" and failure is not None:
            code, title, details = failure
            item["errors"] = [
                {
                    "code": code,
                    "title": title,
                    "message": title,
                    "error_data": {"details": details},
                    "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
                }
            ]
        message.move_to(status, str(failure[0]) if status == "failed" and failure else None)
        webhooks.submit(signed_delivery(state, envelope(state, {"statuses": [item]}), f"status {status}"))


def _pricing(message: SandboxMessage) -> dict[str, Any]:
    if message.template:
        category = str(message.details.get("template_category", "UTILITY")).lower()
        return {"billable": True, "pricing_model": "PMP", "type": "regular", "category": category}
    return {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}


def customer_writes(
    state: SandboxState,
    webhooks: WebhookDispatcher,
    sender: str,
    body: str,
    name: str | None,
    upload: media.Upload | None = None,
    choice: str | None = None,
) -> str:
    """A pretend customer writes on WhatsApp: this opens the 24 h window and sends a signed webhook.
    With an `upload`, the message is an image, video, audio or document with `body` as its caption,
    fetched as on Meta: GET /{version}/{media-id}, then its URL, both with the bearer token.
    With a `choice` (a row's id or title), the customer taps that row of the latest list sent to them;
    ValueError when no list sent to them has it."""
    wa_id = address_key(sender)
    picked = _picked(state, wa_id, choice) if choice else None
    if choice and picked is None:
        raise ValueError(f"no list message sent to {wa_id} offers {choice!r}")
    state.note_whatsapp_inbound(wa_id)
    wamid = new_wamid()
    state.accept(
        SandboxMessage(
            PROVIDER,
            wamid,
            to=state.config.whatsapp_display_phone_number,
            sender=wa_id,
            body=picked[1]["title"] if picked else media.shown(body, upload),
            status="received",
            direction="inbound",
        )
    )
    message: dict[str, Any] = {"from": wa_id, "id": wamid, "timestamp": str(int(time.time()))}
    if picked is not None:
        listed, row = picked
        # As Meta: the tapped row's id and title, with the list message it answers as context.
        message.update(
            {
                "type": "interactive",
                "interactive": {"type": "list_reply", "list_reply": row},
                "context": {"from": state.config.whatsapp_display_phone_number, "id": listed},
            }
        )
    elif upload is None:
        message.update({"type": "text", "text": {"body": body}})
    else:
        message.update(_media_message(state, upload, body))
    value = {
        "contacts": [{"profile": {"name": name or "Sandbox Customer"}, "wa_id": wa_id}],
        "messages": [message],
    }
    webhooks.submit(signed_delivery(state, envelope(state, value), "inbound whatsapp"))
    return wamid


def _picked(state: SandboxState, wa_id: str, choice: str) -> tuple[str, dict[str, str]] | None:
    """The latest list sent to this customer with a row whose id or title is `choice`: (its wamid, the row)."""
    with state.lock:
        sent = [m for m in reversed(state.messages) if m.provider == PROVIDER and m.to == wa_id]
    for message in sent:
        for row in message.details.get("choices") or []:
            if choice in (row["id"], row["title"]):
                return message.provider_message_id, row
    return None


def _media_message(state: SandboxState, upload: media.Upload, caption: str) -> dict[str, Any]:
    """The `type` and its object for a file, as Meta's webhook shows one (it names the file by media id)."""
    major = upload.content_type.split("/", 1)[0]
    kind = {"image": "image", "video": "video", "audio": "audio"}.get(major, "document")
    stored = media.keep(state, str(10**15 + secrets.randbelow(9 * 10**15)), upload)
    content: dict[str, Any] = {
        "mime_type": upload.content_type,
        "sha256": stored.sha256,
        "id": stored.media_id,
    }
    if kind == "document":
        content["filename"] = upload.filename
    if caption and kind in ("image", "video", "document"):
        content["caption"] = caption
    return {"type": kind, kind: content}


# --- message templates (WhatsApp Business Management API) ----------------------------------------


def template_id(template: ApprovedTemplate) -> str:
    """A stable numeric id per template and language, as Meta gives one."""
    digest = hashlib.sha256(f"{template.name}:{template.language}".encode()).hexdigest()
    return str(int(digest[:14], 16))


def approve_template(state: SandboxState, submitted: dict[str, Any]) -> ApprovedTemplate | str:
    """A submitted template approved at once, or why Meta would refuse it."""
    name = str(submitted.get("name", ""))
    language = str(submitted.get("language", ""))
    category = str(submitted.get("category", "")).upper()
    components = submitted.get("components")
    if not isinstance(components, list):
        components = []
    body = next(
        (
            str(component.get("text", ""))
            for component in components
            if isinstance(component, dict) and str(component.get("type", "")).upper() == "BODY"
        ),
        "",
    )
    problem = template_problem(name, language, category, body)
    if problem is not None:
        return problem
    with state.lock:
        if (name, language) in state.whatsapp_templates:
            return f"There is already {language} content for the template {name}."
        approved = state.whatsapp_templates[(name, language)] = ApprovedTemplate(
            name, language, category, body
        )
    return approved


async def list_templates(request: web.Request) -> web.Response:
    state = request.app[STATE]
    refusal = _unauthorised(request) or _unknown_account(request)
    if refusal is not None:
        return refusal
    wanted = request.query.get("name")
    with state.lock:
        templates = [t for t in state.whatsapp_templates.values() if wanted in (None, t.name)]
    data = [template.as_graph_json(template_id(template)) for template in templates]
    return web.json_response({"data": data, "paging": {"cursors": {"before": "", "after": ""}}})


async def create_template(request: web.Request) -> web.Response:
    state = request.app[STATE]
    refusal = _unauthorised(request) or _unknown_account(request)
    if refusal is not None:
        return refusal
    try:
        submitted = await request.json()
    except ValueError:
        return graph_error(400, 100, "(#100) Invalid JSON body")
    approved = approve_template(state, submitted if isinstance(submitted, dict) else {})
    if isinstance(approved, str):
        return graph_error(400, 100, "Invalid parameter", approved)
    return web.json_response(
        {"id": template_id(approved), "status": "APPROVED", "category": approved.category}
    )


def _unknown_account(request: web.Request) -> web.Response | None:
    account = request.match_info["waba_id"]
    if account != request.app[STATE].config.whatsapp_business_account_id:
        return _no_such_object(account)
    return None


def routes() -> list[web.RouteDef]:
    version = r"{version:v\d+\.\d+}"
    return [
        web.get(rf"/{version}/{{media_id:\d+}}", graph_object),
        web.post(f"/{version}/{{phone_number_id}}/messages", send_message),
        web.get(f"/{version}/{{waba_id}}/message_templates", list_templates),
        web.post(f"/{version}/{{waba_id}}/message_templates", create_template),
    ]
