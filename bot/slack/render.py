"""Turns the platform-neutral Reply into Slack Block Kit blocks (files are uploaded separately)."""

from __future__ import annotations

from typing import Any

from bot.fixed_width import table_lines
from bot.replies import Button, Reply, Table

Block = dict[str, Any]

#: action_id prefix of every button Switchboard draws; the handler listens for this prefix only.
ACTION_PREFIX = "sb_cmd_"
#: block_id of the buttons under a confirmation question, so a press can retire the question.
CONFIRM_BLOCK_ID = "sb_confirm"
ACTIONS_BLOCK_ID = "sb_actions"
#: block_id of the buttons on a conversation's first message in the live-chat channel: the thread says what a
#: press changed ("Resolved."), so the command's own answer goes to the presser only.
CHAT_CARD_BLOCK_ID = "sb_chat_card"

# Block Kit limits (docs.slack.dev/reference/block-kit): exceeding any of them makes Slack reject
# the whole message, so text is cut rather than sent whole.
SECTION_TEXT_LIMIT = 3000
FIELD_TEXT_LIMIT = 2000
FIELDS_PER_SECTION = 10
HEADER_LIMIT = 150
BUTTON_LABEL_LIMIT = 75
BUTTON_VALUE_LIMIT = 2000
BUTTONS_PER_ACTIONS = 25
FALLBACK_TEXT_LIMIT = 4000


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape_mrkdwn(text: str) -> str:
    """Slack treats &, < and > as control characters in mrkdwn; customer data must not become links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def table_as_monospace(table: Table, limit: int = SECTION_TEXT_LIMIT) -> str:
    """A fixed-width text table in a code block: Block Kit has no table that renders everywhere."""
    lines = table_lines(table, budget=limit - len("```\n\n```"))
    return escape_mrkdwn("```\n" + "\n".join(lines) + "\n```")


def button_element(button: Button, index: int) -> Block:
    element: Block = {
        "type": "button",
        "action_id": f"{ACTION_PREFIX}{index}",  # unique within a message, as Slack requires
        "text": {"type": "plain_text", "text": clip(button.label, BUTTON_LABEL_LIMIT), "emoji": True},
        "value": clip(button.command, BUTTON_VALUE_LIMIT),
    }
    if button.style != "default":
        element["style"] = button.style
    return element


def render_blocks(reply: Reply) -> list[Block]:
    blocks: list[Block] = []
    if reply.title:
        blocks.append(
            {"type": "header", "text": {"type": "plain_text", "text": clip(reply.title, HEADER_LIMIT)}}
        )
    if reply.text:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": clip(escape_mrkdwn(reply.text), SECTION_TEXT_LIMIT)},
            }
        )
    for start in range(0, len(reply.fields), FIELDS_PER_SECTION):
        chunk = reply.fields[start : start + FIELDS_PER_SECTION]
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {
                        "type": "mrkdwn",
                        "text": clip(
                            f"*{escape_mrkdwn(f.label)}*\n{escape_mrkdwn(f.value)}", FIELD_TEXT_LIMIT
                        ),
                    }
                    for f in chunk
                ],
            }
        )
    if reply.table is not None:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": table_as_monospace(reply.table)}}
        )
    buttons = reply.buttons[:BUTTONS_PER_ACTIONS]
    if buttons:
        blocks.append(
            {
                "type": "actions",
                "block_id": CONFIRM_BLOCK_ID if reply.confirm else ACTIONS_BLOCK_ID,
                "elements": [button_element(b, i) for i, b in enumerate(buttons)],
            }
        )
    return blocks


def fallback_text(reply: Reply) -> str:
    """The plain `text` Slack shows in notifications and to screen readers."""
    text = f"{reply.title}: {reply.text}" if reply.title else reply.text
    return clip(text or "(no text)", FALLBACK_TEXT_LIMIT)


def message_payload(reply: Reply) -> dict[str, Any]:
    """Keyword arguments shared by chat.postMessage, chat.postEphemeral, chat.update and response_url."""
    return {"text": fallback_text(reply), "blocks": render_blocks(reply)}
