"""The command layer reads staff phrases into the expected typed commands, and garbage into suggestions."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from bot.commands import campaigns, customers, messages, templates
from bot.commands.context import CommandContext
from bot.commands.conversation_looks import conversation_look
from bot.commands.dispatch import not_understood, parse
from bot.commands.help import ShowHelp, show_help
from bot.commands.masking import mask_address, mask_email, mask_phone
from bot.commands.parsing import ParseError, RecipientRef, recipient_ref, tokenise
from bot.commands.periods import find_period
from bot.commands.questions import LARGEST_RANKING, Declined, KpiQuestion, parse_question
from bot.commands.registry import COMMANDS
from bot.slack.render import render_blocks
from domain.staff import StaffIdentity
from domain.vocabulary import Channel, Role, role_allows
from reports.periods import PeriodSpec
from reports.presentation import MAX_TOP
from reports.query import Filter
from switchboard.settings import Settings

TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
VIEWER = StaffIdentity(1, "Board", "board@example.com", Role.VIEWER, "cli")
AGENT = StaffIdentity(2, "Desk", "desk@example.com", Role.AGENT, "cli")


def context() -> CommandContext:
    # Real settings: the context builds the business's policies (consent, CSAT links) from them.
    settings = Settings(business_timezone="Europe/Berlin")
    return CommandContext(settings, database=None, clock=lambda: NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "metric", "period", "dimension", "filters", "comparison", "grain"),
    [
        (
            "revenue last 30 days by channel",
            "revenue",
            PeriodSpec.last_n_days(30),
            "source_channel",
            (),
            None,
            None,
        ),
        (
            "revenue this month vs last month",
            "revenue",
            PeriodSpec("this_month"),
            None,
            (),
            "previous_period",
            None,
        ),
        (
            "show no-show rate for video consultations this quarter",
            "no_show_rate",
            PeriodSpec("this_quarter"),
            None,
            (Filter("kind", "eq", "video"),),
            None,
            None,
        ),
        (
            "kpi orders last week vs last year",
            "orders",
            PeriodSpec("last_week"),
            None,
            (),
            "same_period_last_year",
            None,
        ),
        ("sales yesterday", "revenue", PeriodSpec("yesterday"), None, (), None, None),
        ("revenue year to date monthly", "revenue", PeriodSpec("year_to_date"), None, (), None, "month"),
        (
            "orders in November",
            "orders",
            PeriodSpec.between(date(2026, 11, 1), date(2026, 11, 23)),
            None,
            (),
            None,
            None,
        ),
        (
            "revenue 1-30 Nov weekly",
            "revenue",
            PeriodSpec.between(date(2026, 11, 1), date(2026, 11, 30)),
            None,
            (),
            None,
            "week",
        ),
        (
            "delivery rate by channel for sms last 2 weeks",
            "delivery_rate",
            PeriodSpec.between(
                date(2026, 11, 9), date(2026, 11, 22)
            ),  # two whole weeks, as "last week" is one
            "channel",
            (Filter("channel", "eq", "sms"),),
            None,
            None,
        ),
        ("appointments by clinic today", "appointments", PeriodSpec("today"), "location", (), None, None),
        ("kpi churn_rate last quarter", "churn_rate", PeriodSpec("last_quarter"), None, (), None, None),
    ],
)
def test_kpi_questions_read_into_typed_questions(
    text: str,
    metric: str,
    period: PeriodSpec,
    dimension: str | None,
    filters: tuple[Filter, ...],
    comparison: str | None,
    grain: str | None,
) -> None:
    question = parse_question(text, TODAY)
    assert question is not None
    assert (question.metric, question.period, question.dimension) == (metric, period, dimension)
    assert (question.filters, question.comparison, question.grain) == (filters, comparison, grain)
    assert not question.period_assumed


def test_a_question_without_period_assumes_the_last_30_days_and_says_so() -> None:
    question = parse_question("revenue by location", TODAY)
    assert question is not None
    assert question.period == PeriodSpec.last_n_days(30) and question.period_assumed


def test_a_misspelt_metric_is_guessed_and_flagged() -> None:
    question = parse_question("kpi reveneu last 7 days", TODAY)
    assert question is not None and question.metric == "revenue" and question.metric_guessed


def test_a_dimension_the_metric_lacks_is_refused_with_the_allowed_ones() -> None:
    with pytest.raises(ParseError, match="can be split by"):
        parse_question("revenue last week by template", TODAY)


def test_command_text_reads_back_as_the_same_question() -> None:
    question = parse_question("revenue last 30 days by channel vs previous", TODAY)
    assert question is not None
    again = parse_question(question.command_text(), TODAY)
    assert isinstance(again, KpiQuestion)
    assert (again.metric, again.period, again.dimension, again.comparison) == (
        question.metric,
        question.period,
        question.dimension,
        question.comparison,
    )


@pytest.mark.parametrize(
    ("phrase", "spec"),
    [
        ("today", PeriodSpec("today")),
        ("last 90 days", PeriodSpec.last_n_days(90)),
        ("past three weeks", PeriodSpec.between(date(2026, 11, 2), date(2026, 11, 22))),
        ("past 21 days", PeriodSpec.last_n_days(21)),
        ("last year", PeriodSpec.between(date(2025, 1, 1), date(2025, 12, 31))),
        ("ytd", PeriodSpec("year_to_date")),
        ("2026-10-01 to 2026-10-31", PeriodSpec.between(date(2026, 10, 1), date(2026, 10, 31))),
        ("28 oct - 3 nov", PeriodSpec.between(date(2026, 10, 28), date(2026, 11, 3))),
        ("in december", PeriodSpec.between(date(2025, 12, 1), date(2025, 12, 31))),
    ],
)
def test_period_phrases(phrase: str, spec: PeriodSpec) -> None:
    found = find_period(phrase, TODAY)
    assert found is not None and found.value == spec


def test_send_with_template_and_variables() -> None:
    parsed = parse('send sms to #12 template welcome clinic="Berlin Mitte" first_name=Jana', context())
    assert parsed is not None and parsed.spec.name == "send"
    assert parsed.command == messages.SendMessage(
        RecipientRef("id", "12"),
        Channel.SMS,
        template="welcome",
        variables={"clinic": "Berlin Mitte", "first_name": "Jana"},
    )


def test_send_free_text_on_the_preferred_channel_with_confirmation() -> None:
    parsed = parse('send to jane@example.com text "Your results are ready" confirm ref=abc', context())
    assert parsed is not None
    assert parsed.command == messages.SendMessage(
        RecipientRef("email", "jane@example.com"),
        None,
        text="Your results are ready",
        confirm=True,
        ref="abc",
    )


def test_send_takes_its_recipient_without_to() -> None:
    """ "send #12 template appointment_reminder" was refused with "Say who to send to"."""
    for text in ("send #12 template appointment_reminder", "send sms #12 template appointment_reminder"):
        parsed = parse(text, context())
        assert parsed is not None and parsed.command.recipient == RecipientRef("id", "12")
        assert parsed.command.template == "appointment_reminder"
    for nobody in ("send sms template welcome", "send", "send sms to template welcome"):
        with pytest.raises(ParseError, match="Say who to send to"):
            parse(nobody, context())
    with pytest.raises(ParseError, match="Say what to send"):
        parse("send #12", context())


def test_send_command_text_round_trips() -> None:
    command = messages.SendMessage(
        RecipientRef("id", "3"), Channel.EMAIL, template="welcome", variables={"clinic": "A B"}
    )
    parsed = parse(command.command_text(confirm=True, ref="r1"), context())
    assert parsed is not None
    assert parsed.command == messages.SendMessage(
        RecipientRef("id", "3"),
        Channel.EMAIL,
        template="welcome",
        variables={"clinic": "A B"},
        confirm=True,
        ref="r1",
    )


@pytest.mark.parametrize(
    ("text", "name", "command"),
    [
        (
            "campaign preview spring-2026",
            "campaign preview",
            campaigns.CampaignAction("preview", "spring-2026"),
        ),
        (
            "campaign launch spring-2026 confirm",
            "campaign launch",
            campaigns.CampaignAction("launch", "spring-2026", True),
        ),
        ("campaigns", "campaign list", campaigns.ListCampaigns()),
        ("campain pase spring", "campaign pause", campaigns.CampaignAction("pause", "spring")),
        ("customer show 12 --full", "customer show", customers.ShowCustomer(12, full=True)),
        ("customer jane doe", "customer find", customers.FindCustomer("jane doe")),
        (
            "template preview welcome sms de first_name=Jana",
            "template preview",
            templates.PreviewTemplate("welcome", Channel.SMS, "de", {"first_name": "Jana"}),
        ),
    ],
)
def test_commands_read_into_typed_commands(text: str, name: str, command: object) -> None:
    parsed = parse(text, context())
    assert parsed is not None and parsed.spec.name == name and parsed.command == command


def test_full_contact_details_need_an_agent() -> None:
    parsed = parse("customer show 12 --full", context())
    assert parsed is not None and parsed.spec.required_role(parsed.command) is Role.AGENT


@pytest.mark.parametrize("text", ["blorp the flurb", "asdf", "please make coffee"])
def test_garbage_is_not_a_command_and_gets_suggestions(text: str) -> None:
    assert parse(text, context()) is None
    reply = not_understood(text, VIEWER)
    assert reply.kind == "suggestion" and "help" in reply.text


@pytest.mark.parametrize(
    "text", ["what's the weather", "how are the unicorns doing", "Is it raining?", "wie ist das Wetter"]
)
def test_a_question_naming_no_figure_is_pointed_to_the_figures_and_each_example_reads(text: str) -> None:
    """Not "did you mean chat open" for "what's the weather": the figures there are, and questions to tap,
    each of which really reads as a KPI question."""
    assert parse(text, context()) is None
    reply = not_understood(text, VIEWER)
    assert reply.kind == "suggestion" and "which figure" in reply.text and "chat" not in reply.text
    assert "revenue" in reply.text and "no-show rate" in reply.text
    asked = [button.command for button in reply.buttons if button.command != "help kpi"]
    assert asked and all(button.label == button.command for button in reply.buttons)
    for question in asked:
        parsed = parse(question, context())
        assert parsed is not None and parsed.spec.name == "kpi", question


@pytest.mark.parametrize(
    ("text", "suggested"),
    [("what templates are there", "template"), ("is campaign spring running?", "campaign")],
)
def test_a_question_about_what_a_command_shows_keeps_the_command_suggestions(
    text: str, suggested: str
) -> None:
    assert parse(text, context()) is None
    reply = not_understood(text, VIEWER)
    assert "which figure" not in reply.text and f"Did you mean {suggested} " in reply.text


@pytest.mark.parametrize("text", ["?", "hello", "Hi!", "hallo"])
def test_a_question_mark_or_a_greeting_alone_is_help(text: str) -> None:
    parsed = parse(text, context())
    assert parsed is not None and parsed.spec.name == "help"


def test_a_near_miss_is_suggested() -> None:
    reply = not_understood("statuz please", VIEWER)
    assert "status" in reply.text


def test_a_noun_without_a_known_verb_lists_its_verbs() -> None:
    with pytest.raises(ParseError, match="preview"):
        parse("campaign explode x", context())


def test_recipients_and_masks() -> None:
    assert recipient_ref("+49 151 1234 5678") == RecipientRef("phone", "+4915112345678")
    assert recipient_ref("#7") == RecipientRef("id", "7")
    assert recipient_ref("Jane Doe") == RecipientRef("name", "Jane Doe")
    assert mask_phone("+4915112345678") == "+49 151 ••• 5678"
    assert mask_email("jane@example.com") == "j•••@example.com"
    # A Telegram chat id is digits too, but no phone number: it is not shown as one.
    assert mask_address("500000000001", "telegram") == "Telegram chat •••0001"
    assert mask_address("4915112345678", "whatsapp") == "+49 151 ••• 5678"
    assert tokenise('send "unclosed quote') == ["send", "unclosed quote"]


def test_a_kpi_question_led_by_a_command_word_is_a_question() -> None:
    """`noshow` takes an appointment number; "no-show rate …" names a metric, so it is asked, not refused."""
    parsed = parse("no-show rate for video consultations this quarter", context())
    assert parsed is not None and parsed.spec.name == "kpi"
    for command in ("attended yesterday", "noshow soon"):
        with pytest.raises(ParseError, match="appointment number"):
            parse(command, context())


@pytest.mark.parametrize(
    ("text", "queue"),
    [
        ("how many chats are open", "open"),
        ("show me open chats", "open"),
        ("open chats", "open"),
        ("which chats are unassigned?", "unassigned"),
        ("unassigned conversations", "unassigned"),
        ("open conversations", "open"),
        ("my chats", "mine"),
        ("resolved chats", "resolved"),
        ("wie viele Chats sind offen", "open"),
        ("wie viele Chats warten gerade?", "waiting"),
        ("meine offenen Chats", "mine"),
        ("my open chats", "mine"),
        ("how many conversations do we have", "open"),
        ("zeig mir die erledigten Chats", "resolved"),
        ("are there any unanswered chats", "waiting"),
        ("chats open now", "open"),
        ("my snoozed chats", "snoozed"),
        ("chats open", "open"),
        ("chats waiting", "waiting"),
        ("chat list closed", "resolved"),
        ("conversations", "mine"),
    ],
)
def test_a_look_at_conversations_in_a_state_is_that_queue_of_chat_list(text: str, queue: str) -> None:
    """Not "Messages sent for chat" (a figure inferred from "chats") nor `chat open`'s usage."""
    parsed = parse(text, context())
    assert parsed is not None and parsed.spec.name == "chat list" and parsed.command.view == queue


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("how do I see how many chats are open", "chat list"),
        ("how do I see open chats", "chat list"),
        ("how do I close open chats", "chat resolve"),
        ("how do I mark chats as done", "chat resolve"),
        ("wie kann ich einen Chat als erledigt markieren", "chat resolve"),
        ("how do I open a chat", "chat open"),
        ("how do I open chats", "chat open"),
        ("how do I see templates for open chats", "template list"),
    ],
)
def test_open_before_conversations_says_which_and_is_no_verb(text: str, topic: str) -> None:
    parsed = parse(text, context())
    assert parsed is not None and parsed.spec.name == "help" and parsed.command.topic == topic


def test_a_command_word_with_words_only_its_usual_command_reads_is_that_command() -> None:
    """ "videos today" is `video list today`; "campaign spring" keeps the verbs, since `campaign list` would
    leave "spring" unread; a figure named still wins ("first response time of open chats")."""
    parsed = parse("videos today", context())
    assert parsed is not None and parsed.spec.name == "video list" and parsed.command.period == "today"
    with pytest.raises(ParseError, match="takes one of"):
        parse("campaign spring", context())
    figure = parse("first response time of open chats", context())
    assert figure is not None and figure.spec.name == "kpi" and figure.command.metric == "first_response_time"
    assert conversation_look("open a chat with anna") is None  # one chat, to open: no queue
    for said, period in (
        ("videos tomorrow", "tomorrow"),
        ("videos next week", "next_week"),
        ("videos this week", "week"),
    ):
        parsed = parse(said, context())
        assert parsed is not None and parsed.spec.name == "video list" and parsed.command.period == period
    for unread in ("videos by clinic", "videos last month", "campaigns last month", "videos next"):
        # "last" is no typo of `list`
        with pytest.raises(ParseError, match="takes one of"):
            parse(unread, context())


@pytest.mark.parametrize(
    ("text", "queue"),
    [
        ("closed chats last week", "`chat list resolved`"),
        ("open chats on whatsapp", "`chat list open`"),
        ("how many conversations are open by channel", "`chat list open`"),
        ("chats closed last week", "`chat list resolved`"),
    ],
)
def test_conversations_narrowed_beyond_a_queue_say_what_can_be_answered(text: str, queue: str) -> None:
    """Not the all-time queue with "last week" dropped, nor "conversions" for "conversations", nor chat
    messages sent: the queue to list and the figures there are."""
    with pytest.raises(ParseError, match="Conversations are listed by queue only") as refused:
        parse(text, context())
    assert queue in str(refused.value) and "first response time" in str(refused.value)


@pytest.mark.parametrize(
    ("text", "channel", "split"),
    [
        ("chats last week", None, None),
        ("how many chats", None, None),
        ("how many conversations did we have yesterday", None, None),
        ("conversations last month", None, None),
        ("conversations by channel this month", None, "channel"),
        ("whatsapp chats by agent last month", "whatsapp", "staff"),
        ("website chats last week", "chat", None),
        ("live chats last week", "chat", None),
        ("web chats by staff last month", "chat", "staff"),
        ("wie viele Gespräche hatten wir letzte Woche", None, None),
    ],
)
def test_chats_asked_for_in_a_period_are_the_conversations_started(
    text: str, channel: str | None, split: str | None
) -> None:
    """ "how many chats last week" answered "Messages sent for website chat: 0" (chat messages), and "how many
    conversations did we have yesterday" was refused: both are the conversations started, on every channel
    unless one is named."""
    parsed = parse(text, context())
    assert parsed is not None and parsed.spec.name == "kpi"
    command = parsed.command
    named = {f.value for f in command.filters if f.dimension == "channel"}
    assert (command.metric, named, command.dimension) == ("conversations", {channel} - {None}, split)
    assert not command.ignored
    # "chat messages" are still the messages sent on the chat channel; a chat figure counts every channel.
    messages = parse("chat messages last week", context())
    assert messages is not None and messages.command.metric == "messages_sent"
    response = parse("first response time for chats last week", context())
    assert response is not None and not response.command.filters and not response.command.ignored


def test_a_rankings_n_after_another_split_is_not_taken_for_that_split() -> None:
    """ "top 3 clinics … by channel": three clinics are not three channels; the words are left unread."""
    parsed = parse("top 3 clinics by revenue this month by channel", context())
    assert parsed is not None and parsed.command.top is None and "top" in parsed.command.ignored


def test_help_lists_every_command_the_asker_may_use_in_one_line_per_command_word() -> None:
    """48 commands as a table of usages and sentences showed four rows in Slack and "… 44 more rows"."""
    admin = StaffIdentity(3, "Owner", "owner@example.com", Role.ADMIN, "cli")
    for who in (VIEWER, AGENT, admin):
        reply = show_help(ShowHelp(), who, COMMANDS)
        allowed = [spec.name for spec in COMMANDS if role_allows(who.role, spec.role)]
        listed = {
            name
            for field in reply.fields
            for name in (
                [field.label]
                if field.label in allowed
                else [f"{field.label} {v}" for v in field.value.split(" · ")]
            )
        }
        assert listed == set(allowed), who.role
        blocks = render_blocks(reply)
        assert all(len(block.get("fields", ())) <= 10 for block in blocks)
        assert len(json.dumps(blocks)) < 12_000 and "more row" not in json.dumps(blocks)
    viewing = {field.label: field.value for field in show_help(ShowHelp(), VIEWER, COMMANDS).fields}
    assert viewing["campaign"] == "list · preview · status" and "send" not in viewing


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("how do I book a video consultation?", "video book"),
        ("How can I send a campaign?", "campaign launch"),
        ("how do I send a message to a patient", "send"),
        ("how to cancel a campaign", "campaign cancel"),
        ("how do I cancel a message?", "cancel"),
        ("how do I schedule a video consultation", "video book"),
        ("how can we schedule a report", "report schedule"),
        ("how do I create a campaign", "campaign new"),
        ("how do I assign a conversation to Anna", "chat assign"),
        ("how do I close a chat?", "chat resolve"),
        ("how do I change a patient's preferences", "customer prefs"),
        ("how do I mark a no-show?", "noshow"),
        ("is there a way to reschedule a consultation?", "video reschedule"),
        ("how to turn on an automation", "rule enable"),
        ("how do I make a template?", "template"),  # no template verb makes one: all template commands
        ("wie buche ich eine Videosprechstunde?", "video book"),
        ("Wie kann ich eine Kampagne senden?", "campaign launch"),
        ("wie lege ich eine Kampagne an", "campaign new"),
        ("wie sage ich einen Videotermin ab?", "video cancel"),
        ("wie finde ich einen Patienten", "customer find"),
        ("how do I turn off an automation", "rule disable"),
        ("wie schalte ich eine Regel aus", "rule disable"),
        ("wie beende ich ein Gespräch", "chat resolve"),
        ("how do I see the status of campaign spring", "campaign status"),  # its own verb before "see"
    ],
)
def test_a_how_to_question_gets_the_help_of_the_command_that_does_it(text: str, topic: str) -> None:
    """Not a figure ("video consultations", with "book" ignored) nor look-alike commands ("video cancel or
    noshow" for "how can I send a campaign?"): the help of the command that does what was asked."""
    parsed = parse(text, context())
    assert parsed is not None and parsed.spec.name == "help" and parsed.command.topic == topic


def test_a_how_to_question_naming_a_figure_is_answered_and_one_naming_nothing_gets_the_commands() -> None:
    parsed = parse("how do I see revenue by channel?", context())
    assert parsed is not None and parsed.spec.name == "kpi" and parsed.command.metric == "revenue"
    assert parse("how do I get started?", context()) is None
    reply = not_understood("how do I get started?", VIEWER)
    assert reply.kind == "help" and reply.fields and "which figure" not in reply.text
    for figure in (
        "how many appointments this week",
        "wie viele Termine diese Woche",
        "wie ist die no-show rate",
    ):
        counted = parse(figure, context())  # "how many", "wie viele", "wie ist" ask for a figure
        assert counted is not None and counted.spec.name == "kpi", figure


@pytest.mark.parametrize("text", ["no-show rate", "noshow rate?", "no show rate"])
def test_the_no_show_rate_without_a_period_is_asked_not_an_appointment_number(text: str) -> None:
    """ "no-show rate" once met "“rate” is not an appointment number": every word after the command word is
    read as the question's, so it is the question, over the last 30 days."""
    parsed = parse(text, context())
    assert parsed is not None and parsed.spec.name == "kpi"
    assert parsed.command.metric == "no_show_rate" and parsed.command.period_assumed


@pytest.mark.parametrize(
    ("text", "said"), [("noshow", "Give an appointment number"), ("noshow soon", "“soon”")]
)
def test_the_noshow_command_alone_or_with_a_word_it_cannot_read_keeps_its_usage(text: str, said: str) -> None:
    with pytest.raises(ParseError, match=said):
        parse(text, context())


@pytest.mark.parametrize(
    ("text", "metric"),
    [
        ("how do I see the no-show rate this month?", "no_show_rate"),
        ("wie sehe ich die no-show rate", "no_show_rate"),
        ("how do I see campaign revenue last month?", "campaign_revenue"),
        ("how do I see revenue by campaign last month", "revenue"),
        ("how do I see how many video consultations we had last month", "video_consultations"),
        ("how do I see customer churn last quarter", "churn_rate"),
        ("how do I see the sla breaches last week", "sla_breaches"),
        ("how can I see the reply rate by campaign last month", "reply_rate"),
        ("how can I see no-show rate for video last month", "no_show_rate"),
        ("how do I see how many messages we send per day", "messages_sent"),  # "send" is no command here
    ],
)
def test_a_how_to_question_that_only_looks_at_a_figure_is_the_figure(text: str, metric: str) -> None:
    """A command's noun in passing ("campaign", "video", "customer") does not make it help: looking at a
    figure is asking for it."""
    parsed = parse(text, context())
    assert parsed is not None and parsed.spec.name == "kpi" and parsed.command.metric == metric


@pytest.mark.parametrize("text", ["how do I book an appointment", "wie verschiebe ich einen Termin"])
def test_a_how_to_question_asking_to_do_what_no_command_does_gets_the_commands_not_a_figure(
    text: str,
) -> None:
    """Not "appointments, 30 days" with "book" ignored: the commands there are."""
    assert parse(text, context()) is None
    reply = not_understood(text, VIEWER)
    assert reply.kind == "help" and reply.text.startswith("I could not tell which command") and reply.fields


def test_a_short_german_word_is_still_a_typo_of_a_command() -> None:
    """ "sind 1234" is no question (German question words count in a sentence only): the suggestions stay."""
    reply = not_understood("sind 1234", AGENT)
    assert "which figure" not in reply.text and "Did you mean send" in reply.text
    assert not_understood("wie ist das Wetter heute", VIEWER).text.startswith("I could not tell which figure")


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("chats", "chat list"),
        ("campaigns", "campaign list"),
        ("chats unassigned", "chat list"),
        ("chats mine", "chat list"),
    ],
)
def test_a_commands_noun_alone_is_its_command_not_a_figure(text: str, command: str) -> None:
    """ "chats" once answered "Messages sent for chat: 0"; alone, a noun is its command ("chats last week"
    still asks for the chat messages sent)."""
    parsed = parse(text, context())
    assert parsed is not None and parsed.spec.name == command
    asked = parse("chats last week", context())
    assert asked is not None and asked.spec.name == "kpi"


def test_a_word_that_only_ends_like_a_command_is_not_that_command() -> None:
    """ "show me …" once met `noshow`'s "Give an appointment number": a typo keeps its first letter."""
    assert parse("show me whatsapp delivery", context()) is None
    assert "noshow" not in not_understood("show me whatsapp delivery", VIEWER).text
    for typo, command in (
        ("tsatus", "status"),
        ("acmpaign list", "campaign list"),
        ("tchat list", "chat list"),
    ):
        found = parse(typo, context())  # the first two swapped, or one letter too many before
        assert found is not None and found.spec.name == command, typo
    typo = parse("noshw 12", context())
    assert typo is not None and typo.spec.name == "noshow"


@pytest.mark.parametrize(
    ("text", "metric", "split", "top"),
    [
        ("top 3 clinics by revenue", "revenue", "location", 3),
        ("best clinic by revenue last month", "revenue", "location", None),
        ("top campaigns by revenue", "revenue", "campaign", None),
        ("best five campaigns by revenue", "revenue", "campaign", 5),
        ("top two clinics by revenue", "revenue", "location", 2),
        ("revenue last month by clinic top 3", "revenue", "location", 3),
        ("top 100 campaigns by revenue", "revenue", "campaign", 50),
        ("top 3 clinics by no-show rate", "no_show_rate", "location", 3),
        ("worst clinic for no-shows last month", "no_show_rate", "location", None),
    ],
)
def test_a_ranking_of_clinics_or_campaigns_is_the_split_by_them(
    text: str, metric: str, split: str, top: int | None
) -> None:
    """Not the total with "top 3" ignored: the split, whose parts the answer lists largest first, as many as
    the ranking names."""
    parsed = parse(text, context())
    assert parsed is not None and parsed.spec.name == "kpi"
    assert (parsed.command.metric, parsed.command.dimension, parsed.command.top) == (metric, split, top)
    assert not parsed.command.ignored
    # The answer's buttons ask again with the same N; another split is all of that one.
    again = parse(parsed.command.command_text(period=PeriodSpec("last_week")), context())
    assert again is not None and again.command.top == top and again.command.period == PeriodSpec("last_week")
    other = parse(parsed.command.command_text(dimension="channel"), context())
    assert other is not None and other.command.top is None


def test_a_rankings_largest_n_is_a_reports_largest_top_n() -> None:
    assert LARGEST_RANKING == MAX_TOP
    with pytest.raises(Declined, match="single customers"):
        parse("top 5 customers by revenue", context())


def test_help_offers_as_buttons_only_the_examples_that_change_nothing() -> None:
    """An example's names need not be this business's, and tapping `video book …` would book."""
    booking = show_help(ShowHelp("video book"), VIEWER, COMMANDS)
    assert not booking.buttons and any(field.label == "Example" for field in booking.fields)
    asking = show_help(ShowHelp("kpi"), VIEWER, COMMANDS)
    assert asking.buttons and all(parse(button.command, context()) is not None for button in asking.buttons)
    several = show_help(ShowHelp("campaign"), VIEWER, COMMANDS)
    count = sum(spec.name.startswith("campaign ") for spec in COMMANDS)
    assert (
        several.text == f"The {count} “campaign” commands:"
    )  # not the first one's sentence, said again below


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("how do I see chats", "chat list"),
        ("how do I see unassigned chats", "chat list"),
        ("how do I see sms templates", "template list"),
        ("how do I see the revenue report", "report list"),
    ],
)
def test_a_how_to_question_about_what_a_command_shows_is_not_a_figure_inferred_from_a_word(
    text: str, topic: str
) -> None:
    """ "chats" and "sms" are chat and SMS messages only when a figure is asked for; here the command."""
    parsed = parse(text, context())
    assert parsed is not None and parsed.spec.name == "help" and parsed.command.topic == topic


@pytest.mark.parametrize(
    "text",
    ["worst campaign for delivery rate", "best clinic for no-show rate", "best practice for no-show rate"],
)
def test_a_ranking_the_answer_would_list_the_wrong_way_round_is_not_read_as_a_split(text: str) -> None:
    """The split is listed largest first: "worst … delivery rate" and "best … no-show rate" would read
    backwards, and "best practice" ranks nothing; the ranking words are left unread (and said so)."""
    parsed = parse(text, context())
    assert parsed is not None and parsed.spec.name == "kpi" and parsed.command.dimension is None
    assert parsed.command.ignored


def test_a_queued_message_is_named_with_its_article() -> None:
    from bot.commands.messages import a_message_on
    from domain.vocabulary import Channel

    assert [a_message_on(c) for c in (Channel.EMAIL, Channel.SMS, Channel.WHATSAPP, Channel.TELEGRAM)] == [
        "an email",
        "an SMS",
        "a WhatsApp message",
        "a Telegram message",
    ]


def test_how_a_campaign_did_is_its_status_and_a_figure_named_like_a_campaign_stays_the_figure() -> None:
    from reports.everyday_names import everyday_names

    # The database's order is no order: the name means the latest campaign of that name.
    rows = [
        ("2026-11-black-friday", "Black Friday"),
        ("2026-04-spring-bookings", "Spring bookings push"),
        ("2025-11-black-friday", "Black Friday"),
        ("2026-02-revenue", "Revenue"),
    ]
    known = {"campaign": everyday_names("campaign", rows)}
    for text in (
        "how did the Black Friday campaign do?",
        "How is black friday going",
        "how did black friday perform",
        "Wie lief die Black Friday Kampagne?",
        "Wie hat die Black Friday Kampagne abgeschnitten?",
        "wie läuft unsere Black-Friday-Kampagne",
    ):
        parsed = parse(text, context(), known)
        assert parsed is not None and parsed.spec.name == "campaign status", text
        assert parsed.command.slug == "2026-11-black-friday", text
    spring = parse("how did the spring bookings push do", context(), known)
    assert spring is not None and spring.command.slug == "2026-04-spring-bookings"
    for text in (
        "how are bookings going",
        "how did revenue do",
        "how did the revenue do last month",
        "wie lief der Umsatz letzte Woche",
    ):
        parsed = parse(text, context(), known)
        assert parsed is not None and parsed.spec.name == "kpi", text
    revenue_campaign = parse("how did the revenue campaign do", context(), known)
    assert revenue_campaign is not None and revenue_campaign.command.slug == "2026-02-revenue"
    named = parse("campaign pause black friday", context(), known)
    assert named is not None and named.command.slug == "black friday", (
        "the command resolves the name as it runs"
    )


def test_campaign_new_reads_quoted_names_values_and_audiences_whole_and_its_button_reads_back() -> None:
    line = (
        'campaign new "Mother\'s Day" template welcome with offer="up to 20% off" '
        'to tag:"vip clients", country:DE on sms confirm'
    )
    parsed = parse(line, context())
    assert parsed is not None and parsed.spec.name == "campaign new"
    command = parsed.command
    assert (command.name, command.variables) == ("Mother's Day", {"offer": "up to 20% off"})
    assert command.audience == {"tags_any": ["vip clients"], "countries": ["DE"]} and command.confirm
    again = parse(f"{command.text} confirm", context())
    assert again is not None and (again.command.name, again.command.variables, again.command.audience) == (
        command.name,
        command.variables,
        command.audience,
    )
    spaced = parse('campaign new Spring "Sale 2026" template welcome to everyone on sms', context())
    assert spaced is not None and spaced.command.name == "Spring Sale 2026"


@pytest.mark.parametrize(
    ("text", "metric", "ignored"),
    [
        ("average first response time this week", "first_response_time", ()),
        ("mean csat last month", "csat", ()),
        ("avg resolution time last week", "resolution_time", ()),
        ("average revenue last month", "revenue", ("average",)),  # a sum: "average" is not what it says
        ("how many customers opted out of sms last month", "opt_outs", ()),
        ("opt-outs by channel last month", "opt_outs", ()),
        ("opt-out rate by channel last month", "opt_out_rate", ()),
        ("Abmeldungen nach Kanal letzten Monat", "opt_outs", ()),
        ("Abmelderate nach Kanal letzten Monat", "opt_out_rate", ()),
        ("wieviele Termine hatten wir gestern", "appointments", ()),  # "wie viele", as often typed
    ],
)
def test_a_figure_s_own_words_are_not_said_to_be_ignored(
    text: str, metric: str, ignored: tuple[str, ...]
) -> None:
    """ "average first response time" answered with "Ignored: average." (it is an average), and "how many
    customers opted out of sms" answered messages sent, with "Ignored: opted out."."""
    parsed = parse(text, context())
    assert parsed is not None and parsed.spec.name == "kpi"
    assert (parsed.command.metric, parsed.command.ignored) == (metric, ignored)


@pytest.mark.parametrize(
    ("text", "metric", "filters"),
    [
        ("how many video consultations were no-shows last month", "no_show_rate", {("kind", "video")}),
        ("video calls that were no-shows last week", "no_show_rate", {("kind", "video")}),
    ],
)
def test_video_consultations_that_were_no_shows_are_their_no_show_rate(
    text: str, metric: str, filters: set[tuple[str, str]]
) -> None:
    """It answered all video consultations, with "Ignored: no shows."."""
    parsed = parse(text, context())
    assert parsed is not None and parsed.command.metric == metric and not parsed.command.ignored
    assert {(f.dimension, str(f.value)) for f in parsed.command.filters} == filters


@pytest.mark.parametrize(
    "text", ["sms delivery rate yesterday vs day before", "revenue last week compared to the week before"]
)
def test_the_day_or_week_before_is_the_period_before(text: str) -> None:
    parsed = parse(text, context())
    assert (
        parsed is not None and parsed.command.comparison == "previous_period" and not parsed.command.ignored
    )


@pytest.mark.parametrize(
    ("text", "metric"),
    [
        ("conversations first response time last week", "first_response_time"),
        ("conversations csat last month", "csat"),
        ("conversations that breached sla last week", "sla_met_rate"),
        ("conversation rate last month", "campaign_conversion"),  # a misspelt conversion, as before
        ("convertions last month", "campaign_conversion"),
        ("Erstreaktionszeit der Gespräche letzte Woche", "first_response_time"),
        ("video consultation no-shows last month", "no_show_rate"),
    ],
)
def test_conversations_named_beside_a_figure_leave_it_the_figure(text: str, metric: str) -> None:
    """The review found "conversations csat last month" read as the conversations, "Ignored: csat"."""
    parsed = parse(text, context())
    assert parsed is not None and parsed.spec.name == "kpi" and parsed.command.metric == metric


def test_how_to_see_conversations_is_still_help_and_missed_chats_are_declined() -> None:
    for question in ("how do I see my conversations?", "how do I list conversations"):
        helped = parse(question, context())
        assert helped is not None and helped.spec.name == "help"
    for missed in ("missed chats last week", "abandoned website chats yesterday"):
        with pytest.raises(Declined, match="missed or abandoned chats"):
            parse(missed, context())


@pytest.mark.parametrize(
    ("text", "comparison"),
    [
        ("revenue last month vs the year before", "same_period_last_year"),
        ("revenue in october vs the year before", "same_period_last_year"),
        ("revenue this week vs the week before", "previous_period"),
        ("sms delivery rate yesterday vs the day before", "previous_period"),
    ],
)
def test_the_unit_before_keeps_its_unit(text: str, comparison: str) -> None:
    parsed = parse(text, context())
    assert parsed is not None and parsed.command.comparison == comparison and not parsed.command.ignored


def test_two_values_set_side_by_side_narrow_the_split_to_them() -> None:
    """ "Umsatz Berlin vs München" listed all six clinics; "video vs in person" are all the kinds there are."""
    channels = parse("delivery rate sms vs email last week", context())
    assert channels is not None and channels.command.dimension == "channel"
    assert [(f.dimension, f.operator, f.value) for f in channels.command.filters] == [
        ("channel", "in", ("sms", "email"))
    ]
    kinds = parse("no-show rate video vs in person last month", context())
    assert kinds is not None and kinds.command.dimension == "kind" and not kinds.command.filters
    german = parse("Wie viele Videosprechstunden waren No-Shows?", context())
    assert german is not None and german.command.metric == "no_show_rate" and not german.command.ignored


def test_a_filter_of_several_values_keeps_them_all_in_the_answer_s_buttons() -> None:
    """The buttons wrote "channel=sms" for "for SMS or email": asking again lost email."""
    parsed = parse("delivery rate sms vs email last week", context())
    assert parsed is not None
    again = parse(parsed.command.command_text(period=PeriodSpec("last_month")), context())
    assert again is not None and again.command.filters == parsed.command.filters
    assert "channel=sms,email" in parsed.command.command_text()


@pytest.mark.parametrize("text", ["campaign performance last month", "campaign results", "campaigns figures"])
def test_asking_for_campaign_results_says_where_they_are(text: str) -> None:
    with pytest.raises(ParseError, match="A campaign's results: `campaign status NAME`"):
        parse(text, context())


def test_a_value_typed_in_a_report_filter_is_found_by_the_names_people_use() -> None:
    """The builder and a schedule's "only for" took a code or the stored name alone: "Berlin Mitte" (the
    field's own example) and "Vienna" were "not a location we have"."""
    from reports.everyday_names import known_value

    clinics = [("BER", "Northwind Berlin Mitte"), ("VIE", "Northwind Wien Innere Stadt")]
    for typed, meant in (
        ("Berlin Mitte", "BER"),
        ("berlin", "BER"),
        ("Vienna", "VIE"),
        ("wien", "VIE"),
        ("ber", "BER"),
        ("Northwind Berlin Mitte", "BER"),
    ):
        assert known_value("location", typed, clinics) == meant, typed
    assert known_value("location", "Northwind", clinics) is None  # both clinics' word: neither is guessed
    assert known_value("location", "Paris", clinics) is None
    assert known_value("country", "Germany", [("DE", "DE"), ("AT", "AT")]) == "DE"


def test_a_word_said_as_a_clinic_that_names_none_is_found() -> None:
    """ "revenue last month for clinic Paris" answered the whole business's revenue with "Ignored: paris."."""
    from bot.commands.kpi import unknown_place

    assert unknown_place("revenue last month for clinic Paris", ("paris",)) == "Paris"
    assert unknown_place("no-show rate at the Hamburg clinic last week", ("hamburg",)) == "Hamburg"
    assert unknown_place("Umsatz der Praxis Altona letzten Monat", ("altona",)) == "Altona"
    # Words that are no place: not said beside a clinic noun ("in Summe" is German for "in total"), a
    # determiner, or the business's own name.
    assert unknown_place("revenue in general last month", ("general",)) is None
    assert unknown_place("Umsatz in Summe letzten Monat", ("summe",)) is None
    assert unknown_place("No-Show-Rate bei Videoterminen letzten Monat", ("videoterminen",)) is None
    assert unknown_place("revenue for my clinic last month", ("my",)) is None
    assert unknown_place("revenue at the Northwind clinic", ("northwind",), frozenset({"northwind"})) is None
    # A clinic noun that is the split, with a word about it, names no clinic (the review).
    for asked, word in (
        ("revenue by clinic ranked last month", "ranked"),
        ("revenue clinic breakdown last month", "breakdown"),
        ("revenue by clinic broken down last month", "broken"),
        ("appointments per clinic sorted by most", "sorted"),
        ("revenue site wide last month", "wide"),
    ):
        assert unknown_place(asked, (word,)) is None, asked
    assert unknown_place("how much revenue did we make last month", ("make",)) is None
    assert unknown_place("revenue last month please", ()) is None


def test_in_clinic_is_no_clinic_named() -> None:
    from bot.commands.kpi import unknown_place

    assert unknown_place("income from in-clinic sales in March", ("sales",)) is None


def test_a_city_s_other_name_names_a_clinic_only_when_one_clinic_is_there() -> None:
    from reports.everyday_names import known_value

    two = [("VIE1", "Northwind Wien Mitte"), ("VIE2", "Northwind Wien Nord"), ("BER", "Northwind Berlin")]
    assert known_value("location", "Vienna", two) is None and known_value("location", "Wien", two) is None
    assert known_value("location", "Wien Nord", two) == "VIE2"
    assert known_value("location", "Vienna", [("VIE", "Northwind Wien Mitte")]) == "VIE"
