"""The compose modal: `/sb send` with nothing else opens a form; submitting it runs the same `send` command."""

from __future__ import annotations

import json
import shlex
from typing import Any

COMPOSE_CALLBACK = "sb_compose"
CHANNEL_OPTIONS = ("preferred", "sms", "whatsapp", "email", "telegram")


def compose_view(channel_id: str | None) -> dict[str, Any]:
    """A Block Kit modal asking who, on which channel, and a template or a typed text."""

    def text_input(
        block_id: str, label: str, placeholder: str, *, optional: bool = False, multiline: bool = False
    ) -> dict[str, Any]:
        return {
            "type": "input",
            "block_id": block_id,
            "optional": optional,
            "label": {"type": "plain_text", "text": label},
            "element": {
                "type": "plain_text_input",
                "action_id": "value",
                "multiline": multiline,
                "placeholder": {"type": "plain_text", "text": placeholder},
            },
        }

    options = [{"text": {"type": "plain_text", "text": name}, "value": name} for name in CHANNEL_OPTIONS]
    return {
        "type": "modal",
        "callback_id": COMPOSE_CALLBACK,
        # Where to answer once submitted: the channel the command was typed in.
        "private_metadata": json.dumps({"channel_id": channel_id}),
        "title": {"type": "plain_text", "text": "Send a message"},
        "submit": {"type": "plain_text", "text": "Preview"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            text_input("recipient", "To", "+4917612345678, jonas@example.com, #123 or a name"),
            {
                "type": "input",
                "block_id": "channel",
                "label": {"type": "plain_text", "text": "Channel"},
                "element": {
                    "type": "static_select",
                    "action_id": "value",
                    "options": options,
                    "initial_option": options[0],
                },
            },
            text_input("template", "Template", "appointment_reminder", optional=True),
            text_input("variables", "Template variables", "service=Skin check clinic=Berlin", optional=True),
            text_input(
                "text", "Or type the message", "Your results are ready.", optional=True, multiline=True
            ),
        ],
    }


def _value(state: dict[str, Any], block_id: str) -> str:
    entry = state.get(block_id, {}).get("value", {})
    if "selected_option" in entry:
        return str((entry.get("selected_option") or {}).get("value") or "")
    return str(entry.get("value") or "").strip()


def command_from_submission(view: dict[str, Any]) -> tuple[str | None, dict[str, str]]:
    """The `send` command text the form describes, or None with the errors Slack shows next to the fields."""
    state = (view.get("state") or {}).get("values") or {}
    recipient, channel = _value(state, "recipient"), _value(state, "channel") or "preferred"
    template, text, variables = _value(state, "template"), _value(state, "text"), _value(state, "variables")
    errors: dict[str, str] = {}
    if not recipient:
        errors["recipient"] = "Say who to send to."
    if bool(template) == bool(text):
        errors["template" if not text else "text"] = "Give a template or a text, not both."
    if errors:
        return None, errors
    what = (
        f"template {shlex.quote(template)} {variables}".strip() if template else f"text {shlex.quote(text)}"
    )
    return f"send {channel} to {recipient} {what}", {}
