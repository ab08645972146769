"""Automated notification rules on the dashboard (managers): make one, change its template, channels, timing,
category or switch, and delete it. The templates page lists them; the JSON API and the bots' `rule` verbs
change the same rows through the same use-cases."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from api.auth import requires_role
from api.pages.common import StaffPages, container_of, page, staff_of
from api.pages.notices import after_change
from domain.messages.words import channel_words
from domain.notifications.model import (
    NotificationError,
    NotificationRule,
    NotificationRuleChanges,
    NotificationRuleDraft,
    NotificationRuleNotFound,
)
from domain.notifications.rules import (
    APPOINTMENT_AT,
    FILLED_FOR_RULES,
    MAX_NAME_LENGTH,
    OFFSET_UNITS,
    RULE_CATEGORIES,
    RULE_EVENT_TYPE,
    check_before_anchor,
    describe_channel_order,
    describe_offset,
    offset_minutes_of,
    offset_parts,
    rule_category,
    rule_channel_order,
)
from domain.notifications.use_cases import (
    create_notification_rule,
    delete_notification_rule,
    list_notification_rules,
    update_notification_rule,
)
from domain.vocabulary import OUTBOUND_CHANNELS, Channel, Role
from storage.queries.notifications import recent_event_types, recent_events_carry
from storage.queries.templates import active_template_variants

PATH = "/communication/notification-rules"
#: Where the templates page lists the rules, and what it says after each change.
LIST = "/communication/templates"
DONE = {
    "created": "The notification rule is saved.",
    "saved": "Your changes to the notification rule are saved.",
    "deleted": "The notification rule is deleted. Messages it had already planned still go out.",
    "unchanged": "Nothing was changed in the notification rule.",
}
CATEGORY_WORDS = {
    "transactional": "Transactional: about something the customer did or booked",
    "marketing": "Marketing: promotional, so held to quiet hours, frequency caps and marketing consent",
}


@dataclass(frozen=True)
class RuleRow:
    """One automated notification rule as the templates page shows it, in the words `rule list` uses."""

    id: int
    name: str
    event: str
    template: str
    channels: str
    offset: str
    category: str
    enabled: bool

    @classmethod
    def of(cls, rule: NotificationRule) -> RuleRow:
        return cls(
            rule.id,
            rule.name,
            rule.event_type,
            rule.template_name,
            describe_channel_order(rule.channel_order),
            describe_offset(rule.offset_minutes),
            rule.category.value,
            rule.enabled,
        )


@dataclass
class RuleForm:
    """What the form holds, as typed, so that a refused form comes back as the manager left it."""

    name: str = ""
    event_type: str = ""
    template: str = ""
    channels: list[str] = field(default_factory=list)
    amount: str = "0"
    unit: str = "minutes"
    direction: str = "after"
    category: str = "transactional"
    enabled: bool = True

    @classmethod
    def of(cls, rule: NotificationRule) -> RuleForm:
        amount, unit, direction = offset_parts(rule.offset_minutes)
        return cls(
            name=rule.name,
            event_type=rule.event_type,
            template=rule.template_name,
            channels=[c.value for c in rule.channel_order],
            amount=str(amount),
            unit=unit,
            direction=direction,
            category=rule.category.value,
            enabled=rule.enabled,
        )

    @classmethod
    def read(cls, form: Any) -> RuleForm:
        def text(name: str, limit: int = MAX_NAME_LENGTH + 16) -> str:
            return str(form.get(name, "")).strip()[:limit]

        picked = [text(f"channel_{place}", 16) for place in range(1, len(OUTBOUND_CHANNELS) + 1)]
        while picked and not picked[-1]:
            picked.pop()
        return cls(
            name=text("name"),
            event_type=text("event_type"),
            template=text("template"),
            channels=picked,  # as chosen, empty boxes too, so a refused form shows them where they were
            amount=text("amount", 12),
            unit=text("unit", 12),
            direction=text("direction", 12),
            category=text("category", 20),
            enabled=form.get("enabled") == "on",
        )

    def offset_minutes(self) -> int:
        return offset_minutes_of(self.amount, self.unit, self.direction)

    def template_name(self) -> str:
        if not self.template:
            raise NotificationError("Choose the template the rule sends.")
        return self.template

    def channel_order(self) -> tuple[Channel, ...]:
        if "" in self.channels:  # a channel after an empty box: "the customer's own" cannot come before it
            raise NotificationError(
                "Choose the channels from the first box on, with no empty box between two: an empty first box "
                "means the customer's own channels."
            )
        return rule_channel_order(self.channels)

    def draft(self) -> NotificationRuleDraft:
        return NotificationRuleDraft(
            name=self.name,
            event_type=self.event_type,
            template_name=self.template_name(),
            channel_order=self.channel_order(),
            offset_minutes=self.offset_minutes(),
            category=rule_category(self.category),
            enabled=self.enabled,
        )

    def changes(self, rule: NotificationRule) -> NotificationRuleChanges:
        """What differs from the stored rule; the rest stays as it is (None), so a rule whose template is no
        longer in use can still be switched off, and the audit names only what changed."""
        wanted = NotificationRule(
            id=rule.id,
            name=rule.name,
            event_type=rule.event_type,
            template_name=self.template_name(),
            channel_order=self.channel_order(),
            offset_minutes=self.offset_minutes(),
            category=rule_category(self.category),
            enabled=self.enabled,
        )

        def changed(name: str) -> Any:
            value = getattr(wanted, name)
            return None if value == getattr(rule, name) else value

        return NotificationRuleChanges(
            template_name=changed("template_name"),
            channel_order=changed("channel_order"),
            offset_minutes=changed("offset_minutes"),
            category=changed("category"),
            enabled=changed("enabled"),
        )


class NotificationRulePages(StaffPages):
    @get(PATH, name="notification_rules")
    async def listed(self) -> Redirect:
        """The rules are listed under Templates (each sends a template): an address typed or bookmarked
        as the rules' own leads there."""
        return Redirect(f"{LIST}#rules-heading", status_code=303)

    @get(f"{PATH}/new", name="notification_rule_new", guards=[requires_role(Role.MANAGER)])
    async def new_page(self, request: Request[Any, Any, Any]) -> Template:
        return await self._form(request, None, RuleForm())

    @post(PATH, name="notification_rule_create", guards=[requires_role(Role.MANAGER)], status_code=303)
    async def create(self, request: Request[Any, Any, Any]) -> Redirect | Template:
        form = RuleForm.read(await request.form())
        container, staff = container_of(request), staff_of(request)
        try:
            draft = form.draft()
            await self._check_anchor(request, draft.event_type, draft.offset_minutes)
            await create_notification_rule(container.notification_uow(), draft, actor=staff.email, via="web")
        except NotificationError as error:
            return await self._refused(request, None, form, str(error))
        return after_change(request, f"{LIST}#rules-heading", rule_done="created")

    @get(f"{PATH}/{{rule_id:int}}", name="notification_rule", guards=[requires_role(Role.MANAGER)])
    async def edit_page(self, request: Request[Any, Any, Any], rule_id: FromPath[int]) -> Template:
        rule = await self._rule(request, rule_id)
        return await self._form(request, rule, RuleForm.of(rule))

    @post(
        f"{PATH}/{{rule_id:int}}",
        name="notification_rule_update",
        guards=[requires_role(Role.MANAGER)],
        status_code=303,
    )
    async def update(self, request: Request[Any, Any, Any], rule_id: FromPath[int]) -> Redirect | Template:
        rule = await self._rule(request, rule_id)
        form = RuleForm.read(await request.form())
        form.name, form.event_type = rule.name, rule.event_type  # fixed once made
        container, staff = container_of(request), staff_of(request)
        try:
            changes = form.changes(rule)
            if changes == NotificationRuleChanges():
                return after_change(request, f"{LIST}#rules-heading", rule_done="unchanged")
            if changes.offset_minutes is not None:
                await self._check_anchor(request, rule.event_type, changes.offset_minutes)
            await update_notification_rule(
                container.notification_uow(), rule_id, changes, actor=staff.email, via="web"
            )
        except NotificationRuleNotFound as error:
            raise NotFoundException(str(error)) from None
        except NotificationError as error:
            return await self._refused(request, rule, form, str(error))
        return after_change(request, f"{LIST}#rules-heading", rule_done="saved")

    async def _check_anchor(
        self, request: Request[Any, Any, Any], event_type: str, offset_minutes: int
    ) -> None:
        if offset_minutes < 0:
            carries = await recent_events_carry(container_of(request).database, event_type, APPOINTMENT_AT)
            check_before_anchor(offset_minutes, event_type, carries)

    @post(
        f"{PATH}/{{rule_id:int}}/delete",
        name="notification_rule_delete",
        guards=[requires_role(Role.MANAGER)],
        status_code=303,
    )
    async def delete(self, request: Request[Any, Any, Any], rule_id: FromPath[int]) -> Redirect:
        container, staff = container_of(request), staff_of(request)
        try:
            await delete_notification_rule(
                container.notification_uow(), rule_id, actor=staff.email, via="web"
            )
        except NotificationRuleNotFound as error:
            raise NotFoundException(str(error)) from None
        return after_change(request, f"{LIST}#rules-heading", rule_done="deleted")

    async def _rule(self, request: Request[Any, Any, Any], rule_id: int) -> NotificationRule:
        rules = await list_notification_rules(container_of(request).notification_uow(read_only=True))
        found = next((r for r in rules if r.id == rule_id), None)
        if found is None:
            raise NotFoundException(f"There is no notification rule {rule_id}.")
        return found

    async def _refused(
        self, request: Request[Any, Any, Any], rule: NotificationRule | None, form: RuleForm, error: str
    ) -> Template:
        template = await self._form(request, rule, form, error=error)
        template.status_code = 422
        return template

    async def _form(
        self, request: Request[Any, Any, Any], rule: NotificationRule | None, form: RuleForm, **extra: Any
    ) -> Template:
        database = container_of(request).database
        reads: dict[str, set[str]] = {}
        for variant in await active_template_variants(database):
            reads.setdefault(variant.name, set()).update(set(variant.variables) - FILLED_FOR_RULES)
        rules = await list_notification_rules(container_of(request).notification_uow(read_only=True))
        seen = {*await recent_event_types(database), *(r.event_type for r in rules)}
        event_types = sorted(t for t in seen if RULE_EVENT_TYPE.fullmatch(t))
        # The other rules for the same event: each sends too, so a customer reachable on both gets both.
        event = rule.event_type if rule else form.event_type
        alongside = [
            RuleRow.of(r) for r in rules if r.event_type == event and (rule is None or r.id != rule.id)
        ]
        return page(
            request,
            "communication/notification_rule.html",
            "communication",
            "templates",
            rule=rule,
            form=form,
            templates=sorted(reads),
            payload_fields={name: sorted(fields) for name, fields in sorted(reads.items())},
            event_types=event_types,
            alongside=alongside,
            channels=[(c.value, channel_words(c)) for c in OUTBOUND_CHANNELS],
            places=range(len(OUTBOUND_CHANNELS)),
            units=list(OFFSET_UNITS),
            categories=[(c.value, CATEGORY_WORDS.get(c.value, c.value)) for c in RULE_CATEGORIES],
            anchor=APPOINTMENT_AT,
            name_limit=MAX_NAME_LENGTH,
            **extra,
        )
