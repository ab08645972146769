"""`canned [SEARCH] [for CHAT_ID]`: canned replies from Slack, Telegram or the console, filled for a conversation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from bot.commands.context import CommandContext
from bot.commands.parsing import ParseError
from bot.replies import Button, Field, Reply, Table
from domain.canned_replies.model import CannedReply
from domain.canned_replies.rules import fill, known_values, missing_sentence, variables_in
from domain.staff import StaffIdentity
from domain.vocabulary import Role, role_allows
from storage.queries.canned_replies import canned_reply_named, conversation_customer, search_canned_replies

USAGE = "canned [SEARCH] | canned NAME for CHAT_ID"
LIST_LIMIT = 30
_CHAT_ID = re.compile(r"#?(\d{1,18})")


@dataclass(frozen=True)
class CannedLookup:
    """`canned` (all), `canned SEARCH` (by shortcut or title), or `canned NAME for 12` (filled for chat 12)."""

    search: str = ""
    chat_id: int | None = None


def parse_canned(words: list[str], rest: str, today: date) -> CannedLookup:
    found = _CHAT_ID.fullmatch(words[-1]) if len(words) >= 2 and words[-2].lower() == "for" else None
    if found is not None:
        if len(words) == 2:
            raise ParseError("Say which reply: `canned hours for 12`.", USAGE)
        return CannedLookup(" ".join(words[:-2]), int(found.group(1)))
    return CannedLookup(" ".join(words))


def _table(replies: list[CannedReply]) -> Table:
    return Table(
        ("Shortcut", "Title", "Team", "Variables"),
        tuple(
            (
                r.shortcut,
                r.title,
                r.team or "everyone",
                ", ".join(f"{{{v}}}" for v in variables_in(r.body)) or "—",
            )
            for r in replies
        ),
    )


async def run_canned(command: CannedLookup, who: StaffIdentity, ctx: CommandContext) -> Reply:
    if command.chat_id is not None:
        if not role_allows(who.role, Role.AGENT):  # a filled reply can carry the customer's contact details
            return Reply(
                f"Filling a canned reply for a conversation needs the agent role; you are {who.role.value}.",
                title="Not allowed",
                kind="denied",
            )
        return await _filled(command.search, command.chat_id, who, ctx)
    found = await search_canned_replies(ctx.database, command.search, limit=LIST_LIMIT + 1)
    wanted = command.search.strip().lstrip("/").lower()
    if not found:
        if wanted:
            return Reply(
                f"No canned reply starts with “{command.search}”. `canned` lists them all.", kind="error"
            )
        return Reply("There are no canned replies yet; managers add them under Live chat → Canned replies.")
    if found[0].shortcut == wanted or (wanted and len(found) == 1):
        return _one(found[0])
    shown = found[:LIST_LIMIT]
    more = f" Showing the first {LIST_LIMIT}." if len(found) > LIST_LIMIT else ""
    what = f" starting with “{command.search}”" if wanted else ""
    return Reply(
        f"{len(shown)} canned replies{what}.{more} `canned NAME for CHAT_ID` fills one for a conversation.",
        title="Canned replies",
        table=_table(shown),
    )


def _one(reply: CannedReply) -> Reply:
    variables = variables_in(reply.body)
    fields = (Field("Variables", ", ".join(f"{{{v}}}" for v in variables)),) if variables else ()
    return Reply(
        reply.body,
        title=f"/{reply.shortcut}: {reply.title}" + (f" ({reply.team})" if reply.team else ""),
        fields=(*fields, Field("Use it", f"canned {reply.shortcut} for CHAT_ID")),
    )


async def _filled(search: str, chat_id: int, who: StaffIdentity, ctx: CommandContext) -> Reply:
    reply = await canned_reply_named(ctx.database, search)
    if reply is None:
        matches = await search_canned_replies(ctx.database, search, limit=6)
        if len(matches) != 1:
            buttons = tuple(
                Button(f"/{m.shortcut}", f"canned {m.shortcut} for {chat_id}") for m in matches[:5]
            )
            if not matches:
                return Reply(f"There is no canned reply “{search}”. `canned` lists them.", kind="error")
            return Reply(f"{len(matches)} canned replies start with “{search}”; pick one.", buttons=buttons)
        reply = matches[0]
    customer = await conversation_customer(ctx.database, chat_id)
    if customer is None:
        return Reply(f"There is no conversation {chat_id}.", kind="error")
    filled = fill(
        reply, known_values(customer, agent_name=who.name, business_name=ctx.settings.business_name)
    )
    # The field's label says "Still to fill"; its value lists what ("{time} and {date}"), not the words again.
    missing = missing_sentence(filled.missing).removeprefix("Still to fill: ").removesuffix(".")
    fields = (Field("Still to fill", missing),) if filled.missing else ()
    return Reply(
        filled.text,
        title=f"/{reply.shortcut} for conversation {chat_id} with {customer.name}",
        fields=fields,
        private=True,  # it may carry the customer's contact details
    )
