"""`help`: the commands as people read them, filtered to what the asker may do."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from bot.commands.context import CommandContext
from bot.commands.parsing import closest
from bot.replies import Button, Field, Reply
from domain.staff import StaffIdentity
from domain.vocabulary import Role, role_allows

#: Who may run a command of each role, in words (each role can do what the ones below it can).
WHO_CAN = {
    Role.VIEWER: "everyone",
    Role.AGENT: "agents, managers and admins",
    Role.MANAGER: "managers and admins",
    Role.ADMIN: "admins",
}


@dataclass(frozen=True)
class ShowHelp:
    topic: str | None = None


def parse_help(words: list[str], rest: str, today: date) -> ShowHelp:
    return ShowHelp(" ".join(words).lower() or None)


class HelpEntry(Protocol):
    """What help shows of a command-table row."""

    @property
    def name(self) -> str: ...
    @property
    def help(self) -> str: ...
    @property
    def usage(self) -> str: ...
    @property
    def role(self) -> Role: ...
    @property
    def examples(self) -> tuple[str, ...]: ...
    @property
    def changes(self) -> bool: ...


def help_handler(
    table: Callable[[], Sequence[HelpEntry]],
) -> Callable[[ShowHelp, StaffIdentity, CommandContext], Awaitable[Reply]]:
    """The `help` handler over the command table (passed in: the table itself lists `help`)."""

    async def run_help(command: ShowHelp, who: StaffIdentity, ctx: CommandContext) -> Reply:
        return show_help(command, who, table())

    return run_help


def show_help(command: ShowHelp, who: StaffIdentity, commands: Sequence[HelpEntry]) -> Reply:
    by_name = {spec.name: spec for spec in commands}
    if command.topic:
        name = (
            command.topic if command.topic in by_name else closest(command.topic, list(by_name), cutoff=0.6)
        )
        matching = [s for s in commands if s.name == name or s.name.startswith(command.topic + " ")]
        if not matching:
            return Reply(f"There is no command “{command.topic}”. `help` lists them.", kind="help")
        if len(matching) == 1:  # one command: its sentence once, then how to type it
            (spec,) = matching
            fields = (
                Field("Usage", spec.usage),
                *(Field("Example", e) for e in spec.examples),
                Field("Who can", WHO_CAN[spec.role]),
            )
        else:
            fields = tuple(
                field
                for spec in matching
                for field in (
                    Field(spec.name, f"{spec.help} Needs: {spec.role.value}."),
                    Field("Usage", spec.usage),
                    *(Field("Example", e) for e in spec.examples),
                )
            )
        said = (
            f"{matching[0].name}: {matching[0].help}"
            if len(matching) == 1
            else f"The {len(matching)} “{command.topic}” commands:"
        )
        return Reply(
            said,
            title=f"Help: {command.topic}",
            fields=fields,
            kind="help",
            # Tapping an example runs it: only those that change nothing are buttons (an example's names
            # need not be this business's, and `video book` would book).
            buttons=tuple(Button(e, e) for s in matching if not s.changes for e in s.examples[:2]),
        )
    allowed = [s for s in commands if role_allows(who.role, s.role)]
    hidden = len(commands) - len(allowed)
    more = f" {hidden} more need a higher role than {who.role.value}." if hidden else ""
    text = (
        f"Commands you can use as {who.role.value}.{more} `help COMMAND` says how to type one, e.g. "
        "`help campaign`. You can also just ask, e.g. “revenue last 30 days by channel”."
    )
    return Reply(
        text,
        title="Switchboard commands",
        fields=overview(allowed),
        kind="help",
        buttons=(Button("revenue last 30 days", "kpi revenue last 30 days"), Button("status", "status")),
    )


def overview(commands: Sequence[HelpEntry]) -> tuple[Field, ...]:
    """One line per command word, in the table's order: a command of its own says what it does; a family
    ("campaign new", "campaign launch", …) lists its verbs. Short enough for every chat: 48 commands in a
    table of usages and sentences showed four rows in Slack before its size limit."""
    families: dict[str, list[HelpEntry]] = {}
    for spec in commands:
        families.setdefault(spec.name.split(" ", 1)[0], []).append(spec)
    return tuple(
        Field(word, family[0].help)
        if len(family) == 1 and family[0].name == word
        else Field(word, " · ".join(spec.name.partition(" ")[2] or word for spec in family))
        for word, family in families.items()
    )
