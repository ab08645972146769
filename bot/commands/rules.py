"""`rule list|enable|disable`: the automated notification rules, and switching one on or off."""

from __future__ import annotations

import difflib
import shlex
from dataclasses import dataclass
from datetime import date

from bot.commands.context import CommandContext
from bot.commands.parsing import ParseError
from bot.replies import Button, Reply, Table
from domain.notifications.model import (
    NotificationError,
    NotificationRule,
    NotificationRuleChanges,
    NotificationRuleNotFound,
)
from domain.notifications.rules import describe_channel_order, describe_offset, rule_name_key
from domain.notifications.use_cases import list_notification_rules, update_notification_rule
from domain.staff import StaffIdentity

ENABLE_USAGE = "rule enable NAME"
DISABLE_USAGE = "rule disable NAME"
#: How a rule's name is compared when it is not typed exactly: case, spaces, `_` and `-` do not matter.


@dataclass(frozen=True)
class ListRules:
    pass


@dataclass(frozen=True)
class SwitchRule:
    """`rule enable NAME` (enabled=True) or `rule disable NAME` (enabled=False)."""

    name: str
    enabled: bool

    @property
    def verb(self) -> str:
        return "enable" if self.enabled else "disable"


def parse_list(words: list[str], rest: str, today: date) -> ListRules:
    return ListRules()


def parse_enable(words: list[str], rest: str, today: date) -> SwitchRule:
    return _switch(words, enabled=True)


def parse_disable(words: list[str], rest: str, today: date) -> SwitchRule:
    return _switch(words, enabled=False)


def _switch(words: list[str], *, enabled: bool) -> SwitchRule:
    """The rest of the line is the rule's name, so names with spaces need no quotes."""
    name = " ".join(words).strip()
    if not name:
        verb, usage = ("enable", ENABLE_USAGE) if enabled else ("disable", DISABLE_USAGE)
        raise ParseError(f"Name the rule to {verb}; `rule list` shows them.", usage)
    return SwitchRule(name, enabled)


def rule_row(rule: NotificationRule) -> tuple[str, ...]:
    return (
        rule.name,
        rule.event_type,
        rule.template_name,
        describe_channel_order(rule.channel_order),
        describe_offset(rule.offset_minutes),
        "on" if rule.enabled else "off",
    )


async def run_list(command: ListRules, who: StaffIdentity, ctx: CommandContext) -> Reply:
    rules = await list_notification_rules(ctx.uow.notifications(read_only=True))
    if not rules:
        return Reply(
            "There are no notification rules yet; they are created through the JSON API.",
            title="Notification rules",
        )
    table = Table(("Rule", "Event", "Template", "Channels", "Offset", "Status"), tuple(map(rule_row, rules)))
    enabled = sum(rule.enabled for rule in rules)
    return Reply(
        f"{len(rules)} notification rules, {enabled} on. Managers switch one with `rule enable|disable NAME`.",
        title="Notification rules",
        table=table,
    )


def rule_named(rules: list[NotificationRule], name: str) -> NotificationRule | None:
    """The rule with exactly this name, else the only one whose name matches loosely (case, `_`, spaces)."""
    exact = [rule for rule in rules if rule.name == name]
    loose = [rule for rule in rules if rule_name_key(rule.name) == rule_name_key(name)]
    found = exact or loose
    return found[0] if len(found) == 1 else None


def unknown_rule(rules: list[NotificationRule], command: SwitchRule) -> Reply:
    names = [rule.name for rule in rules]
    keys = difflib.get_close_matches(
        rule_name_key(command.name), sorted({rule_name_key(n) for n in names}), n=3, cutoff=0.5
    )
    close = [name for key in keys for name in names if rule_name_key(name) == key]
    hint = f" Did you mean {' or '.join(close)}?" if close else f" Rules: {', '.join(names) or 'none yet'}."
    return Reply(
        f"There is no notification rule “{command.name}”.{hint}",
        kind="error",
        buttons=tuple(Button(f"{command.verb} {n}", f"rule {command.verb} {shlex.quote(n)}") for n in close),
    )


async def run_switch(command: SwitchRule, who: StaffIdentity, ctx: CommandContext) -> Reply:
    rules = await list_notification_rules(ctx.uow.notifications(read_only=True))
    found = rule_named(rules, command.name)
    if found is None:
        return unknown_rule(rules, command)
    state = "on" if command.enabled else "off"
    if found.enabled == command.enabled:
        return Reply(f"Rule {found.name} is already {state}; nothing changed.")
    try:
        rule = await update_notification_rule(
            ctx.uow.notifications(),
            found.id,
            NotificationRuleChanges(enabled=command.enabled),
            actor=who.email,
            via=who.via,
        )
    except NotificationRuleNotFound:
        return Reply(f"Rule {found.name} was deleted meanwhile; `rule list` shows the rules.", kind="error")
    except NotificationError as error:
        return Reply(f"Rule {found.name} was not changed. {error}", kind="error")
    again = "disable" if rule.enabled else "enable"
    if rule.enabled:
        text = (
            f"Rule {rule.name} is on: from now on, {rule.event_type} events send {rule.template_name} "
            f"{describe_offset(rule.offset_minutes)}."
        )
    else:
        text = (
            f"Rule {rule.name} is off: new {rule.event_type} events no longer send {rule.template_name}. "
            "Messages it already planned still go out."
        )
    return Reply(text, buttons=(Button(again.capitalize(), f"rule {again} {shlex.quote(rule.name)}"),))
