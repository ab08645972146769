"""/api/notification-rules: list, create, change and delete the rules that turn business events into messages."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody, KwargDefinition

from api.rest.common import (
    API_SECURITY,
    RowId,
    Unprocessable,
    api_actor,
    container_of,
    problems,
    require_api_token,
)
from domain.notifications.model import (
    NotificationError,
    NotificationRule,
    NotificationRuleChanges,
    NotificationRuleDraft,
    NotificationRuleNotFound,
)
from domain.notifications.rules import (
    MAX_EVENT_TYPE_LENGTH,
    MAX_NAME_LENGTH,
    MAX_OFFSET_MINUTES,
    RULE_CATEGORIES,
    rule_category,
    rule_channel_order,
)
from domain.notifications.use_cases import (
    create_notification_rule,
    delete_notification_rule,
    list_notification_rules,
    update_notification_rule,
)
from domain.vocabulary import OUTBOUND_CHANNELS

# What the domain checks, each with a message naming the limit (422); documented here for the schema.
RuleName = Annotated[str, KwargDefinition(min_length=1, max_length=MAX_NAME_LENGTH)]
EventType = Annotated[
    str, KwargDefinition(max_length=MAX_EVENT_TYPE_LENGTH, pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
]
Offset = Annotated[int, KwargDefinition(ge=-MAX_OFFSET_MINUTES, le=MAX_OFFSET_MINUTES)]
CATEGORY_NAMES = [c.value for c in RULE_CATEGORIES]
#: Empty: the customer's preferred channel, then those they opted in on, then the default order; else outbound
#: channels, each once.
CHANNEL_ORDER = {
    "items": {"type": "string", "enum": [c.value for c in OUTBOUND_CHANNELS]},
    "uniqueItems": True,
}


class RuleIn(msgspec.Struct, forbid_unknown_fields=True):
    name: RuleName
    event_type: EventType
    template: RuleName
    channels: Annotated[list[str], KwargDefinition(schema_extra=CHANNEL_ORDER)] = []
    offset_minutes: Offset = 0
    category: Annotated[str, KwargDefinition(schema_extra={"enum": CATEGORY_NAMES})] = "transactional"
    enabled: bool = True


class RuleChangesIn(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields sent change; a rule's name and event type are fixed once created."""

    template: Annotated[str | None, KwargDefinition(min_length=1, max_length=MAX_NAME_LENGTH)] = None
    channels: Annotated[list[str] | None, KwargDefinition(schema_extra=CHANNEL_ORDER)] = None
    offset_minutes: Annotated[int | None, KwargDefinition(ge=-MAX_OFFSET_MINUTES, le=MAX_OFFSET_MINUTES)] = (
        None
    )
    category: Annotated[str | None, KwargDefinition(schema_extra={"enum": [*CATEGORY_NAMES, None]})] = None
    enabled: bool | None = None


def rule_json(rule: NotificationRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "event_type": rule.event_type,
        "template": rule.template_name,
        "channels": [c.value for c in rule.channel_order],
        "offset_minutes": rule.offset_minutes,
        "category": rule.category.value,
        "enabled": rule.enabled,
    }


def draft_of(data: RuleIn) -> NotificationRuleDraft:
    return NotificationRuleDraft(
        name=data.name,
        event_type=data.event_type,
        template_name=data.template,
        channel_order=rule_channel_order(data.channels),
        offset_minutes=data.offset_minutes,
        category=rule_category(data.category),
        enabled=data.enabled,
    )


def changes_of(data: RuleChangesIn) -> NotificationRuleChanges:
    return NotificationRuleChanges(
        template_name=data.template,
        channel_order=None if data.channels is None else rule_channel_order(data.channels),
        offset_minutes=data.offset_minutes,
        category=None if data.category is None else rule_category(data.category),
        enabled=data.enabled,
    )


class NotificationRulesController(Controller):
    path = "/api/notification-rules"
    guards = [require_api_token]
    security = API_SECURITY
    tags = ["notification rules"]

    @get("/", responses=problems())
    async def list_rules(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        rules = await list_notification_rules(container_of(request).notification_uow(read_only=True))
        return {"rules": [rule_json(r) for r in rules]}

    @post("/", status_code=201, responses=problems(body=True))
    async def create(self, request: Request[Any, Any, Any], data: JSONBody[RuleIn]) -> dict[str, Any]:
        """An empty channel list means the customer's preferred channel, then those they opted in on, then the
        default order."""
        try:
            rule = await create_notification_rule(
                container_of(request).notification_uow(), draft_of(data), actor=api_actor(request), via="api"
            )
        except NotificationError as error:
            raise Unprocessable(str(error)) from None
        return rule_json(rule)

    @patch("/{rule_id:int}", responses=problems(404, body=True))
    async def change(
        self, request: Request[Any, Any, Any], rule_id: FromPath[RowId], data: JSONBody[RuleChangesIn]
    ) -> dict[str, Any]:
        """Switch a rule on or off, or change its template, channels, offset or category."""
        try:
            rule = await update_notification_rule(
                container_of(request).notification_uow(),
                rule_id,
                changes_of(data),
                actor=api_actor(request),
                via="api",
            )
        except NotificationRuleNotFound as error:
            raise NotFoundException(str(error)) from None
        except NotificationError as error:
            raise Unprocessable(str(error)) from None
        return rule_json(rule)

    @delete("/{rule_id:int}", status_code=204, responses=problems(404))
    async def remove(self, request: Request[Any, Any, Any], rule_id: FromPath[RowId]) -> None:
        """Messages the rule already planned stay in the outbox."""
        try:
            await delete_notification_rule(
                container_of(request).notification_uow(), rule_id, actor=api_actor(request), via="api"
            )
        except NotificationRuleNotFound as error:
            raise NotFoundException(str(error)) from None
