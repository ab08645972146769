"""Managing notification rules with a fake unit of work: validation, duplicate names, changes, deletion, audit."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.notifications.model import (
    NotificationError,
    NotificationRule,
    NotificationRuleChanges,
    NotificationRuleDraft,
    NotificationRuleNotFound,
)
from domain.notifications.rules import (
    MAX_OFFSET_MINUTES,
    offset_minutes_of,
    offset_parts,
    rule_category,
    rule_channel_order,
    validate_rule_changes,
    validate_rule_event_type,
)
from domain.notifications.use_cases import (
    create_notification_rule,
    delete_notification_rule,
    list_notification_rules,
    update_notification_rule,
)
from domain.vocabulary import Channel, MessageCategory
from tests.fakes.notification_rules import FakeRuleUow, RuleBook

REMINDER = NotificationRuleDraft(
    "reminder 24h", "appointment.booked", "appointment_reminder", (Channel.SMS,), offset_minutes=-1440
)


def draft(**changes: object) -> NotificationRuleDraft:
    values = {**vars(REMINDER), **changes}
    return NotificationRuleDraft(**values)  # type: ignore[arg-type]


async def book_with_reminder() -> tuple[RuleBook, NotificationRule]:
    book = RuleBook()
    rule = await create_notification_rule(FakeRuleUow(book), REMINDER)
    return book, rule


async def test_a_valid_rule_is_stored_with_a_trimmed_name_and_audited() -> None:
    book = RuleBook()
    rule = await create_notification_rule(
        FakeRuleUow(book), draft(name="  reminder 24h "), actor="ops@example", via="api"
    )

    assert rule == NotificationRule(
        1, "reminder 24h", "appointment.booked", "appointment_reminder", (Channel.SMS,), -1440
    )
    assert await list_notification_rules(FakeRuleUow(book)) == [rule]
    [entry] = book.audit
    assert (entry.actor, entry.via, entry.action, entry.target) == (
        "ops@example",
        "api",
        "notification_rule.create",
        "notification_rule:1",
    )
    assert entry.detail["channel_order"] == ["sms"] and entry.detail["offset_minutes"] == -1440


async def test_a_duplicate_name_is_refused_and_nothing_is_committed() -> None:
    book, _ = await book_with_reminder()

    with pytest.raises(NotificationError, match="A notification rule named 'reminder 24h' already exists"):
        await create_notification_rule(FakeRuleUow(book), draft(event_type="order.created"))
    assert (len(book.rules), book.commits) == (1, 1)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"name": " "}, "needs a name and an event type"),
        ({"name": "x" * 65}, "at most 64 characters"),
        ({"event_type": ""}, "needs a name and an event type"),
        ({"event_type": "Order.Created"}, "must look like 'order.created'"),
        ({"event_type": "order"}, "must look like 'order.created'"),
        ({"event_type": "order..created"}, "must look like 'order.created'"),
        ({"event_type": "order created"}, "must look like 'order.created'"),
        ({"event_type": "order.created."}, "must look like 'order.created'"),
        ({"event_type": "a.b" * 30}, "1 to 64 characters"),
        ({"template_name": "missing"}, "There is no active template named 'missing'"),
        ({"template_name": ""}, "template name must be 1 to 64"),
        ({"channel_order": (Channel.CHAT,)}, "channel order must list one or more of sms"),
        ({"channel_order": (Channel.SMS, Channel.SMS)}, "names a channel more than once"),
        ({"offset_minutes": MAX_OFFSET_MINUTES + 1}, "between -10080 and 10080 minutes"),
        ({"offset_minutes": -MAX_OFFSET_MINUTES - 1}, "between -10080 and 10080 minutes"),
        ({"category": MessageCategory.CONVERSATIONAL}, "must be transactional or marketing"),
    ],
)
async def test_a_bad_rule_is_refused_with_a_sentence_naming_the_problem(
    changes: dict[str, object], fragment: str
) -> None:
    book = RuleBook()
    with pytest.raises(NotificationError, match=fragment):
        await create_notification_rule(FakeRuleUow(book), draft(**changes))
    assert (book.rules, book.commits, book.audit) == ({}, 0, [])


@pytest.mark.parametrize(
    "event_type", ["order.created", "appointment.reminder_24h", "v2.order.created", "payment.failed"]
)
def test_event_types_made_of_dotted_lower_case_parts_are_accepted(event_type: str) -> None:
    validate_rule_event_type(event_type)


@given(st.integers(min_value=-3 * MAX_OFFSET_MINUTES, max_value=3 * MAX_OFFSET_MINUTES))
def test_offsets_up_to_a_week_either_way_are_accepted_and_no_more(offset: int) -> None:
    changes = NotificationRuleChanges(offset_minutes=offset)
    if abs(offset) <= MAX_OFFSET_MINUTES:
        validate_rule_changes(changes)
    else:
        with pytest.raises(NotificationError):
            validate_rule_changes(changes)


def test_request_values_become_channels_and_categories_or_clear_errors() -> None:
    assert rule_channel_order([]) == ()
    assert rule_channel_order(["whatsapp", "sms"]) == (Channel.WHATSAPP, Channel.SMS)
    assert rule_category("marketing") is MessageCategory.MARKETING
    with pytest.raises(NotificationError, match="one or more of sms"):
        rule_channel_order(["pigeon"])
    with pytest.raises(NotificationError, match="must be transactional or marketing, not 'urgent'"):
        rule_category("urgent")


async def test_an_update_changes_only_the_fields_given_and_audits_them() -> None:
    book, rule = await book_with_reminder()

    changed = await update_notification_rule(
        FakeRuleUow(book),
        rule.id,
        NotificationRuleChanges(enabled=False, offset_minutes=-120, channel_order=()),
        actor="ops@example",
        via="api",
    )

    assert changed == NotificationRule(
        rule.id, rule.name, rule.event_type, rule.template_name, (), -120, rule.category, enabled=False
    )
    assert book.rules[rule.id] == changed
    assert book.audit[-1].action == "notification_rule.update"
    assert book.audit[-1].detail == {"channel_order": [], "offset_minutes": -120, "enabled": False}


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        (NotificationRuleChanges(template_name="missing"), "no active template named 'missing'"),
        (NotificationRuleChanges(offset_minutes=20_000), "between -10080 and 10080"),
        (NotificationRuleChanges(category=MessageCategory.CONVERSATIONAL), "transactional or marketing"),
        (NotificationRuleChanges(channel_order=(Channel.VIDEO,)), "channel order"),
    ],
)
async def test_a_bad_update_is_refused_and_the_rule_kept(
    changes: NotificationRuleChanges, fragment: str
) -> None:
    book, rule = await book_with_reminder()
    with pytest.raises(NotificationError, match=fragment):
        await update_notification_rule(FakeRuleUow(book), rule.id, changes)
    assert book.rules == {rule.id: rule} and book.commits == 1


async def test_a_rule_whose_template_is_gone_can_be_switched_off_but_not_on() -> None:
    book, rule = await book_with_reminder()
    book.templates.discard(rule.template_name)

    off = await update_notification_rule(FakeRuleUow(book), rule.id, NotificationRuleChanges(enabled=False))
    assert off.enabled is False
    with pytest.raises(NotificationError, match="no active template named 'appointment_reminder'"):
        await update_notification_rule(FakeRuleUow(book), rule.id, NotificationRuleChanges(enabled=True))


async def test_a_deleted_rule_is_gone_and_audited() -> None:
    book, rule = await book_with_reminder()

    await delete_notification_rule(FakeRuleUow(book), rule.id, actor="ops@example", via="api")

    assert book.rules == {}
    assert book.audit[-1].action == "notification_rule.delete"
    assert book.audit[-1].detail == {"name": "reminder 24h", "event_type": "appointment.booked"}


async def test_an_unknown_rule_id_is_not_found_for_update_and_delete() -> None:
    book = RuleBook()
    with pytest.raises(NotificationRuleNotFound, match="no notification rule with id 9"):
        await update_notification_rule(FakeRuleUow(book), 9, NotificationRuleChanges(enabled=False))
    with pytest.raises(NotificationRuleNotFound):
        await delete_notification_rule(FakeRuleUow(book), 9)
    assert book.commits == 0


@given(st.integers(-MAX_OFFSET_MINUTES, MAX_OFFSET_MINUTES))
def test_an_offset_written_as_the_form_writes_it_reads_back_the_same(offset: int) -> None:
    amount, unit, direction = offset_parts(offset)
    assert offset_minutes_of(str(amount), unit, direction) == offset
    assert amount >= 0 and (unit == "minutes" or amount > 0 or offset == 0)


@pytest.mark.parametrize(
    ("minutes", "parts"),
    [
        (-1440, (1, "days", "before")),
        (120, (2, "hours", "after")),
        (90, (90, "minutes", "after")),
        (0, (0, "minutes", "after")),
    ],
)
def test_an_offset_is_shown_in_the_largest_unit_that_writes_it_exactly(
    minutes: int, parts: tuple[int, str, str]
) -> None:
    assert offset_parts(minutes) == parts


@pytest.mark.parametrize(
    ("amount", "unit", "direction", "words"),
    [
        ("two", "hours", "after", "whole number of hours, such as 2 (not 'two')"),
        ("-3", "days", "before", "whole number of days"),
        ("1.5", "hours", "after", "whole number of hours"),
        ("8", "days", "before", "at most 7 days before or after the event (not 8 days before)"),
        ("1", "weeks", "after", "Choose minutes, hours or days"),
        ("1", "days", "around", "before or after"),
        ("9" * 12, "minutes", "after", "whole number of minutes"),
        ("²", "hours", "after", "whole number of hours"),
        ("٣", "hours", "after", "whole number of hours"),
    ],
)
def test_an_offset_the_form_cannot_mean_is_refused_in_words(
    amount: str, unit: str, direction: str, words: str
) -> None:
    with pytest.raises(NotificationError, match=re.escape(words)):
        offset_minutes_of(amount, unit, direction)


def test_an_empty_amount_is_at_the_event() -> None:
    assert offset_minutes_of("  ", "hours", "before") == 0


async def test_a_marketing_template_goes_out_only_from_a_marketing_rule() -> None:
    book, rule = await book_with_reminder()
    draft = NotificationRuleDraft("spring", "order.created", "spring_offer")
    with pytest.raises(NotificationError, match="'spring_offer' is written for marketing"):
        await create_notification_rule(FakeRuleUow(book), draft)
    made = await create_notification_rule(
        FakeRuleUow(book),
        NotificationRuleDraft("spring", "order.created", "spring_offer", category=MessageCategory.MARKETING),
    )
    with pytest.raises(NotificationError, match="must be marketing too"):
        await update_notification_rule(
            FakeRuleUow(book), made.id, NotificationRuleChanges(category=MessageCategory.TRANSACTIONAL)
        )
    with pytest.raises(NotificationError, match="must be marketing too"):
        await update_notification_rule(
            FakeRuleUow(book), rule.id, NotificationRuleChanges(template_name="spring_offer")
        )
    assert book.rules[made.id].category is MessageCategory.MARKETING
    assert book.rules[rule.id].template_name == "appointment_reminder"


async def test_a_rule_names_clash_whatever_their_case() -> None:
    book, rule = await book_with_reminder()
    with pytest.raises(NotificationError, match=f"A notification rule named '{rule.name}' already exists"):
        await create_notification_rule(
            FakeRuleUow(book), NotificationRuleDraft(rule.name.upper(), "order.created", "order_confirmation")
        )
    with pytest.raises(NotificationError, match="already exists"):
        await create_notification_rule(
            FakeRuleUow(book), NotificationRuleDraft("Reminder_24H", "order.created", "order_confirmation")
        )


async def test_a_second_rule_sending_one_template_for_one_event_at_one_time_is_refused() -> None:
    book, rule = await book_with_reminder()
    twin = NotificationRuleDraft(
        "second", rule.event_type, rule.template_name, offset_minutes=rule.offset_minutes
    )
    with pytest.raises(NotificationError, match=f"The rule '{rule.name}' already sends"):
        await create_notification_rule(FakeRuleUow(book), twin)
    # Another time is another reminder; a switched-off twin waits beside it.
    earlier = await create_notification_rule(FakeRuleUow(book), replace(twin, offset_minutes=-120))
    await create_notification_rule(FakeRuleUow(book), replace(twin, name="spare", enabled=False))
    with pytest.raises(NotificationError, match="would send each customer the message twice"):
        await update_notification_rule(
            FakeRuleUow(book), earlier.id, NotificationRuleChanges(offset_minutes=rule.offset_minutes)
        )
    spare = next(r for r in book.rules.values() if r.name == "spare")
    with pytest.raises(NotificationError, match="already sends"):
        await update_notification_rule(FakeRuleUow(book), spare.id, NotificationRuleChanges(enabled=True))
    # One by SMS and one by email are two messages on purpose; switching on a rule already on checks nothing.
    by_sms = await create_notification_rule(
        FakeRuleUow(book),
        NotificationRuleDraft("by sms", "payment.failed", "order_confirmation", (Channel.SMS,)),
    )
    await create_notification_rule(
        FakeRuleUow(book),
        NotificationRuleDraft("by email", "payment.failed", "order_confirmation", (Channel.EMAIL,)),
    )
    with pytest.raises(NotificationError, match="on a channel this one may take"):
        await create_notification_rule(
            FakeRuleUow(book), NotificationRuleDraft("anyhow", "payment.failed", "order_confirmation")
        )
    again = await update_notification_rule(
        FakeRuleUow(book), by_sms.id, NotificationRuleChanges(enabled=True)
    )
    assert again.enabled


async def test_a_rule_names_only_channels_its_template_is_written_for() -> None:
    book, rule = await book_with_reminder()
    with pytest.raises(
        NotificationError,
        match="'order_confirmation' has no WhatsApp message \\(it is written for SMS, email\\)",
    ):
        await create_notification_rule(
            FakeRuleUow(book),
            NotificationRuleDraft(
                "x", "order.created", "order_confirmation", (Channel.SMS, Channel.WHATSAPP)
            ),
        )
    with pytest.raises(NotificationError, match="has no Telegram message"):
        await update_notification_rule(
            FakeRuleUow(book), rule.id, NotificationRuleChanges(channel_order=(Channel.TELEGRAM,))
        )
    # A rule left as it was still switches on and off, whatever channels its template has lost since.
    book.rules[rule.id] = replace(book.rules[rule.id], channel_order=(Channel.TELEGRAM,), enabled=False)
    on = await update_notification_rule(FakeRuleUow(book), rule.id, NotificationRuleChanges(enabled=True))
    assert on.enabled and on.channel_order == (Channel.TELEGRAM,)
