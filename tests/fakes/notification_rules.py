"""An in-memory unit of work for the notification-rule use-cases: rules, active templates and the audit trail."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Self

from domain.audit import AuditEntry
from domain.messages.model import StoredTemplate
from domain.notifications.model import NotificationRule, NotificationRuleDraft
from domain.templates.model import MessageTemplate
from domain.vocabulary import Channel, MessageCategory


@dataclass
class RuleBook:
    """The committed state the fake unit of work reads and, on commit, writes back."""

    rules: dict[int, NotificationRule] = field(default_factory=dict)
    templates: set[str] = field(default_factory=lambda: {"order_confirmation", "appointment_reminder"})
    #: Active templates written for marketing (the rest are transactional).
    marketing: set[str] = field(default_factory=lambda: {"spring_offer"})
    audit: list[AuditEntry] = field(default_factory=list)
    commits: int = 0


class FakeRuleUow:
    """Works on a copy of the book and writes it back on commit, so leaving without commit forgets."""

    def __init__(self, book: RuleBook) -> None:
        self.book = book

    async def __aenter__(self) -> Self:
        self.draft = copy.deepcopy(self.book)
        self.notifications = self.templates = self.audit = self
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        pass

    async def commit(self) -> None:
        self.draft.commits += 1
        self.book.__dict__.update(self.draft.__dict__)

    # rules
    async def all_rules(self) -> list[NotificationRule]:
        return sorted(self.draft.rules.values(), key=lambda r: r.id)

    async def rule(self, rule_id: int, *, for_update: bool = False) -> NotificationRule | None:
        return self.draft.rules.get(rule_id)

    async def add_rule(self, draft: NotificationRuleDraft) -> NotificationRule | None:
        if any(r.name == draft.name for r in self.draft.rules.values()):
            return None
        rule_id = max(self.draft.rules, default=0) + 1
        self.draft.rules[rule_id] = NotificationRule(rule_id, **vars(draft))
        return self.draft.rules[rule_id]

    async def save_rule(self, rule: NotificationRule) -> None:
        self.draft.rules[rule.id] = replace(rule, name=self.draft.rules[rule.id].name)

    async def delete_rule(self, rule_id: int) -> None:
        del self.draft.rules[rule_id]

    # templates
    async def variants(self, name: str) -> list[StoredTemplate]:
        if name not in self.draft.templates | self.draft.marketing:
            return []
        category = (
            MessageCategory.MARKETING if name in self.draft.marketing else MessageCategory.TRANSACTIONAL
        )
        return [
            StoredTemplate(number, MessageTemplate(name, channel, "en", "Hello.", category))
            for number, channel in enumerate((Channel.SMS, Channel.EMAIL), start=1)
        ]

    # audit
    def record(self, entry: AuditEntry) -> None:
        self.draft.audit.append(entry)
