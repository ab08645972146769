"""Canned replies' rules: what a shortcut and a variable look like, filling, and refusing unfilled text.

Templates never become code: a variable is `{lower_snake_name}`, found with one strict regex and replaced
by plain text in a single pass (a value that itself looks like `{x}` is not filled again). No Jinja, no
`str.format` on anything staff or customers wrote.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from domain.canned_replies.model import (
    CannedReply,
    CannedReplyDraft,
    CannedReplyError,
    CustomerFacts,
    FilledReply,
)
from domain.conversations.newcomers import is_placeholder_name

#: A variable in a canned reply: `{first_name}`.
VARIABLE = re.compile(r"\{([a-z][a-z0-9_]{0,39})\}")
#: Anything in braces on one line, to catch what looks like a variable but is not one (`{First Name}`).
_BRACED = re.compile(r"\{[^{}\n]{0,80}\}")
#: A shortcut: what agents type after `/` or `canned` (`hours`, `reschedule-2`).
SHORTCUT = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
TITLE_LIMIT = 120
BODY_LIMIT = 4000
TEAM_LIMIT = 64

#: The variables filled from the conversation, and what each is, for the help text.
KNOWN_VARIABLES: dict[str, str] = {
    "first_name": "the customer's first name",
    "name": "the customer's full name",
    "last_name": "the customer's last name",
    "email": "the customer's email address",
    "phone": "the customer's phone number",
    "clinic": "the customer's home clinic",
    "business_name": "the business's name",
    "agent_name": "your name",
    "agent_first_name": "your first name",
}


def variables_in(text: str) -> tuple[str, ...]:
    """The variables `text` still contains, in order of first appearance, each once."""
    return tuple(dict.fromkeys(VARIABLE.findall(text)))


def validate_draft(draft: CannedReplyDraft) -> CannedReplyDraft:
    """The draft tidied (shortcut lower-case, spaces trimmed), or CannedReplyError naming what is wrong."""
    shortcut = draft.shortcut.strip().lstrip("/").lower()
    title, body = draft.title.strip(), draft.body.strip()
    team = (draft.team or "").strip() or None
    if not SHORTCUT.fullmatch(shortcut):
        raise CannedReplyError(
            "A shortcut is one word of at most 32 lower-case letters, digits, - or _ (such as hours)."
        )
    if not title or len(title) > TITLE_LIMIT:
        raise CannedReplyError(f"Give a title of at most {TITLE_LIMIT} characters.")
    if not body:
        raise CannedReplyError("A canned reply needs some text.")
    if len(body) > BODY_LIMIT:
        raise CannedReplyError(f"A canned reply is at most {BODY_LIMIT} characters; this one is {len(body)}.")
    if team is not None and len(team) > TEAM_LIMIT:
        raise CannedReplyError(f"A team name is at most {TEAM_LIMIT} characters.")
    if "{{" in body or "}}" in body or "{%" in body:
        raise CannedReplyError(
            "Canned replies are not templates: write a variable as {first_name}, not {{ first_name }}."
        )
    for braced in _BRACED.findall(body):
        if not VARIABLE.fullmatch(braced):
            raise CannedReplyError(
                f"“{braced}” is not a variable: write variables as {{first_name}} "
                "(lower-case letters, digits and _, no spaces)."
            )
    return CannedReplyDraft(shortcut, title, body, team)


def known_values(customer: CustomerFacts | None, *, agent_name: str, business_name: str) -> dict[str, str]:
    """The variables a conversation fills by itself: the customer's, the agent's and the business's."""
    values = {"business_name": business_name, "agent_name": agent_name}
    values["agent_first_name"] = agent_name.split()[0] if agent_name.split() else ""
    if customer is not None:
        # A name made up for a first contact ("WhatsApp contact …4321") is no name: the agent fills it.
        parts = [] if is_placeholder_name(customer.name) else customer.name.split()
        values |= {
            "name": " ".join(parts),
            "first_name": parts[0] if parts else "",
            "last_name": " ".join(parts[1:]),
            "email": customer.email or "",
            "phone": customer.phone or "",
            "clinic": customer.clinic or "",
        }
    return {name: value for name, value in values.items() if value}


def fill(reply: CannedReply, known: Mapping[str, str]) -> FilledReply:
    """Fill what is known, in one pass; the rest stays as `{name}` for the agent and is listed as missing."""
    filled: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        value = known.get(name)
        if not value:
            return match.group(0)
        filled.append(name)
        return value

    text = VARIABLE.sub(substitute, reply.body)
    missing = tuple(name for name in variables_in(reply.body) if not known.get(name))
    return FilledReply(reply.shortcut, text, tuple(dict.fromkeys(filled)), missing)


def require_filled(text: str) -> None:
    """Refuse text that still holds a `{variable}` from a canned reply, naming each one."""
    missing = variables_in(text)
    if missing:
        raise CannedReplyError(
            f"Fill in {_listed(missing)} before sending; the customer would see the braces."
        )


#: A reply written in a staff chat's thread that is a command for the bot, not words for the customer: a canned
#: reply asked for by name ("canned thanks for 522") or a slash command typed as a reply ("/thanks",
#: "/canned thanks for 12", "/kpi@northwind_bot revenue").
_COMMAND_LIKE = re.compile(
    r"\s*(?:canned\s+[\w-]+(?:\s+for\s+#?\d+)?\s*$|/[a-z][\w-]*(?:@\w+)?(?:\s|$))", re.IGNORECASE
)
#: The canned reply a thread reply asks for by name: "thanks" in "canned thanks for 12", "/sb canned thanks".
_SHORTCUT = re.compile(r"\s*/?(?:sb\s+)?canned\s+([\w-]+)", re.IGNORECASE)


def require_words_for_the_customer(text: str, via: str = "slack", chat_id: int | None = None) -> None:
    """Refuse a thread reply that is a command typed where replies go: it would reach the customer as it is.
    The refusal says how to run it for this conversation (`chat_id`)."""
    if not _COMMAND_LIKE.match(text):
        return
    if via == "telegram":
        how = "Send a command to the bot as a message of its own, not as a reply to a conversation"
    else:
        named = _SHORTCUT.match(text)  # "/revenue" or "/thanks" names no canned reply for sure
        shortcut = named.group(1).lower() if named else "SHORTCUT"
        for_chat = f" for {chat_id}" if chat_id is not None else " for CONVERSATION"
        how = f"Run commands in the channel with /sb (`/sb canned {shortcut}{for_chat}`)"
    raise CannedReplyError(
        f"“{text.strip()[:80]}” looks like a command, and a reply here goes to the customer as written. "
        f"{how}, or insert a canned reply in the dashboard's reply box."
    )


def missing_sentence(missing: tuple[str, ...]) -> str:
    """“Still to fill: {time} and {date}.”, or "" when nothing is missing."""
    return f"Still to fill: {_listed(missing)}." if missing else ""


def _listed(names: tuple[str, ...]) -> str:
    braced = [f"{{{name}}}" for name in names]
    return braced[0] if len(braced) == 1 else ", ".join(braced[:-1]) + " and " + braced[-1]
