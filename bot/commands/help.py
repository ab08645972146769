"""`help`: the command table as people read it, filtered to what the asker may do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from bot.commands.context import CommandContext
from bot.commands.parsing import closest
from bot.replies import Button, Field, Reply, Table
from domain.staff import StaffIdentity
from domain.vocabulary import role_allows


@dataclass(frozen=True)
class ShowHelp:
    topic: str | None = None


def parse_help(words: list[str], rest: str, today: date) -> ShowHelp:
    return ShowHelp(" ".join(words).lower() or None)


async def run_help(command: ShowHelp, who: StaffIdentity, ctx: CommandContext) -> Reply:
    from bot.commands.registry import BY_NAME, COMMANDS  # the table imports this module

    if command.topic:
        name = (
            command.topic if command.topic in BY_NAME else closest(command.topic, list(BY_NAME), cutoff=0.6)
        )
        matching = [s for s in COMMANDS if s.name == name or s.name.startswith(command.topic + " ")]
        if not matching:
            return Reply(f"There is no command “{command.topic}”. `help` lists them.", kind="help")
        fields = tuple(
            field
            for spec in matching
            for field in (
                Field(spec.name, f"{spec.help} Needs: {spec.role.value}."),
                Field("Usage", spec.usage),
                *(Field("Example", e) for e in spec.examples),
            )
        )
        return Reply(
            f"{matching[0].name}: {matching[0].help}",
            title=f"Help: {command.topic}",
            fields=fields,
            kind="help",
            buttons=tuple(Button(e, e) for s in matching for e in s.examples[:2]),
        )
    allowed = [s for s in COMMANDS if role_allows(who.role, s.role)]
    table = Table(
        ("Command", "What it does", "Role"), tuple((s.usage, s.help, s.role.value) for s in allowed)
    )
    hidden = len(COMMANDS) - len(allowed)
    more = f" {hidden} more need a higher role than {who.role.value}." if hidden else ""
    text = f"Commands you can use as {who.role.value}.{more} You can also just ask, e.g. “revenue last 30 days by channel”."
    return Reply(
        text,
        title="Switchboard commands",
        table=table,
        kind="help",
        buttons=(Button("revenue last 30 days", "kpi revenue last 30 days"), Button("status", "status")),
    )
