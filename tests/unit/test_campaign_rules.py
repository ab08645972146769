"""Pure campaign and notification rules: audience validation, channel choice with fallback, planning, timing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.campaigns.model import Audience, AudienceError, CampaignError, channels_after
from domain.campaigns.rules import validate_channel_order, validate_fallback
from domain.consent.model import ChannelConsent, ConsentPolicy, QuietHours, SendDecision
from domain.consent.unsubscribe import UnsubscribeLinks, read_unsubscribe_token
from domain.messages.model import Recipient, StoredTemplate
from domain.messages.pricing import SMS_PRICE_BY_COUNTRY
from domain.messages.send_decision import OutboxPlanner, check_variables, choose_channel, template_reads
from domain.notifications.model import BusinessEvent, NotificationRule
from domain.notifications.rules import (
    DEFAULT_CHANNEL_ORDER,
    channel_order,
    due_at,
    reaching_channel,
    told_sentence,
    told_words,
)
from domain.templates.model import MessageTemplate, TemplateError
from domain.templates.validation import validate_template
from domain.vocabulary import Channel, ConsentStatus, MessageCategory, MessageSource, MessageStatus

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
OPTED_OUT = ChannelConsent(ConsentStatus.OPTED_OUT, "SMS keyword STOP", NOW - timedelta(days=1))


def recipient(**changes: object) -> Recipient:
    values: dict[str, object] = {
        "customer_id": 7,
        "name": "Alice Smith",
        "locale": "en",
        "timezone": "Europe/Berlin",
        "addresses": {Channel.WHATSAPP: "+49151", Channel.SMS: "+49151", Channel.EMAIL: "a@example.com"},
    }
    values.update(changes)
    return Recipient(**values)  # type: ignore[arg-type]


def sms_template(body: str = "Hi {{ first_name }}, {{ offer }}.") -> StoredTemplate:
    return StoredTemplate(
        11,
        MessageTemplate("sale", Channel.SMS, "en", body, MessageCategory.MARKETING, ("first_name", "offer")),
    )


def planner(*templates: StoredTemplate, **changes: object) -> OutboxPlanner:
    values: dict[str, object] = {
        "source": MessageSource.CAMPAIGN,
        "source_ref": "3",
        "category": MessageCategory.MARKETING,
        "templates": templates or (sms_template(),),
        "variables": {"offer": "20% off", "campaign_type": "promotion"},
        "policy": ConsentPolicy(),
        "campaign_id": 3,
    }
    values.update(changes)
    return OutboxPlanner(**values)  # type: ignore[arg-type]


class TestAudience:
    def test_round_trips_through_json(self) -> None:
        audience = Audience.from_json(
            {
                "segments": ["vip"],
                "tags_any": ["lenses"],
                "tags_all": ["a", "b"],
                "exclude_tags": ["staff"],
                "countries": "DE",
                "locales": ["de", "de"],
                "created_after": "2026-01-01T00:00:00+00:00",
                "has_channel": ["sms", "email"],
                "opted_in_on": ["whatsapp"],
                "locations": ["BER"],
                "visited_since": "2026-01-01T00:00:00+01:00",
                "not_visited_since": "2026-06-01T00:00:00+02:00",
                "campaign_type": "promotion",
            }
        )
        assert audience.countries == ("DE",) and audience.locales == ("de",)
        assert audience.has_channel == (Channel.SMS, Channel.EMAIL)
        assert audience.opted_in_on == (Channel.WHATSAPP,) and audience.locations == ("BER",)
        assert audience.not_visited_since == datetime(2026, 5, 31, 22, tzinfo=UTC)
        assert Audience.from_json(audience.to_json()) == audience

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"segment": ["vip"]}, "'segment' is not an audience filter"),
            ({"segments": [1]}, "'segments' must be a list of text values"),
            ({"tags_all": [f"t{i}" for i in range(21)]}, "at most 20 tags"),
            ({"created_before": "yesterday"}, "ISO date-time"),
            ({"created_before": "2026-01-01T00:00:00"}, "time zone"),
            ({"has_channel": ["fax"]}, "'has_channel' may only name"),
            ({"has_channel": ["chat"]}, "'has_channel' may only name"),
            ({"opted_in_on": ["fax"]}, "'opted_in_on' may only name"),
            ({"visited_since": "last year"}, "'visited_since' must be an ISO date-time"),
            ({"locations": [""]}, "1 to 64 characters"),
            (
                {
                    "visited_since": "2026-06-01T00:00:00+00:00",
                    "not_visited_since": "2026-05-01T00:00:00+00:00",
                },
                "must be after 'visited_since'",
            ),
            ({"countries": ["x" * 65]}, "1 to 64 characters"),
            ({"campaign_type": 5}, "'campaign_type'"),
        ],
    )
    def test_refuses_malformed_definitions(self, data: dict[str, object], message: str) -> None:
        with pytest.raises(AudienceError, match=message):
            Audience.from_json(data)

    @given(st.dictionaries(st.text(max_size=12), st.none() | st.integers() | st.text(max_size=5), max_size=4))
    def test_anything_else_is_either_an_audience_or_an_audience_error(self, data: dict[str, object]) -> None:
        try:
            Audience.from_json(data)
        except AudienceError:
            pass


def test_channel_order_and_fallback_are_checked() -> None:
    assert validate_channel_order(["whatsapp", "sms"]) == (Channel.WHATSAPP, Channel.SMS)
    for bad in ([], ["fax"], ["sms", "sms"], ["chat"]):
        with pytest.raises(CampaignError):
            validate_channel_order(bad)
    with pytest.raises(CampaignError, match="second channel"):
        validate_fallback(30, (Channel.SMS,))
    with pytest.raises(CampaignError, match="at least one minute"):
        validate_fallback(0, (Channel.SMS, Channel.EMAIL))
    assert channels_after((Channel.WHATSAPP, Channel.SMS, Channel.EMAIL), Channel.WHATSAPP) == (
        Channel.SMS,
        Channel.EMAIL,
    )
    assert channels_after((Channel.SMS,), Channel.EMAIL) == ()


class TestChooseChannel:
    @staticmethod
    def verdicts(table: dict[Channel, SendDecision]) -> object:
        return lambda _recipient, channel: table[channel]

    def test_takes_the_first_channel_not_suppressed(self) -> None:
        table = {
            Channel.WHATSAPP: SendDecision("suppress", "opted_out", "x"),
            Channel.SMS: SendDecision("defer", "quiet_hours", "y", NOW),
            Channel.EMAIL: SendDecision("send", "ok", "z"),
        }
        choice = choose_channel(recipient(), list(table), self.verdicts(table))  # type: ignore[arg-type]
        assert choice.channel is Channel.SMS and choice.decision.verdict == "defer"

    def test_reports_the_most_telling_reason_when_nothing_qualifies(self) -> None:
        table = {
            Channel.WHATSAPP: SendDecision("suppress", "no_address", "x"),
            Channel.SMS: SendDecision("suppress", "opted_out", "y"),
            Channel.EMAIL: SendDecision("suppress", "no_address", "z"),
        }
        choice = choose_channel(recipient(), list(table), self.verdicts(table))  # type: ignore[arg-type]
        assert (
            choice.channel is None and choice.tried is Channel.SMS and choice.decision.reason == "opted_out"
        )

    @pytest.mark.parametrize(
        ("reasons", "told"),
        [
            # Never asked on WhatsApp, opted out of email: the opt-out is what the customer did.
            ({Channel.WHATSAPP: "no_consent", Channel.EMAIL: "opted_out"}, (Channel.EMAIL, "opted_out")),
            # A cap says more than consent never given, which says more than a missing address.
            (
                {
                    Channel.SMS: "no_address",
                    Channel.WHATSAPP: "no_consent",
                    Channel.EMAIL: "frequency_cap_channel",
                },
                (Channel.EMAIL, "frequency_cap_channel"),
            ),
            ({Channel.SMS: "no_address", Channel.WHATSAPP: "no_consent"}, (Channel.WHATSAPP, "no_consent")),
            # Of equally telling reasons, the first channel's.
            ({Channel.SMS: "no_consent", Channel.EMAIL: "no_consent"}, (Channel.SMS, "no_consent")),
        ],
    )
    def test_an_opt_out_tells_more_than_consent_never_given(
        self, reasons: dict[Channel, str], told: tuple[Channel, str]
    ) -> None:
        table = {channel: SendDecision("suppress", reason, reason) for channel, reason in reasons.items()}
        choice = choose_channel(recipient(), list(table), self.verdicts(table))  # type: ignore[arg-type]
        assert (choice.tried, choice.decision.reason) == told


class TestOutboxPlanner:
    def test_plans_on_the_first_usable_channel_with_the_rendered_body_and_cost(self) -> None:
        entry = planner().plan(recipient(), (Channel.WHATSAPP, Channel.SMS), NOW)
        assert entry.status is MessageStatus.PLANNED
        assert entry.channel is Channel.SMS  # there is no WhatsApp variant of the template
        assert entry.body == "Hi Alice, 20% off."
        assert (entry.segments, entry.encoding, entry.cost_micros) == (1, "GSM-7", SMS_PRICE_BY_COUNTRY["DE"])
        assert entry.idempotency_key == "campaign:3:7:sms"
        assert entry.send_at == NOW

    def test_suppresses_with_the_reason_and_explanation(self) -> None:
        entry = planner().plan(recipient(consents={Channel.SMS: OPTED_OUT}), (Channel.SMS,), NOW)
        assert (entry.status, entry.status_reason) == (MessageStatus.SUPPRESSED, "opted_out")
        assert "opted out of SMS" in str(entry.payload["explanation"])

    def test_defers_to_the_end_of_the_recipients_quiet_hours(self) -> None:
        night = recipient(timezone="Asia/Tokyo", quiet_hours=QuietHours(time(20, 0), time(9, 0)))
        entry = planner().plan(night, (Channel.SMS,), NOW)  # 21:00 in Tokyo
        assert entry.send_at == datetime(2026, 3, 11, 0, 0, tzinfo=UTC)
        ignoring = planner(respect_quiet_hours=False).plan(night, (Channel.SMS,), NOW)
        assert ignoring.send_at == NOW

    def test_cached_renderings_never_leak_between_recipients(self) -> None:
        plan = planner()
        bodies = [
            plan.plan(recipient(customer_id=i, name=n), (Channel.SMS,), NOW).body
            for i, n in enumerate(["Ann A", "Bo B", "Ann C"])
        ]
        assert bodies == ["Hi Ann, 20% off.", "Hi Bo, 20% off.", "Hi Ann, 20% off."]

    def test_a_template_error_suppresses_only_that_recipient(self) -> None:
        broken = sms_template("Hi {{ first_name }} {{ surname }}")
        entry = planner(broken).plan(recipient(), (Channel.SMS,), NOW)
        assert (entry.status, entry.status_reason) == (MessageStatus.SUPPRESSED, "template_error")

    def test_template_reads_lists_variables_and_gives_up_on_random(self) -> None:
        assert template_reads(sms_template().template) == ("first_name", "offer")
        assert template_reads(sms_template("{{ ['a', 'b'] | random }}").template) is None


class TestNotificationRules:
    rule = NotificationRule(1, "reminder", "appointment.booked", "reminder", offset_minutes=-1440)

    def event(self, appointment_at: datetime) -> BusinessEvent:
        return BusinessEvent(
            5, "appointment.booked", "k", 7, {"appointment_at": appointment_at.isoformat()}, NOW
        )

    def test_reminders_count_back_from_the_appointment(self) -> None:
        assert due_at(self.rule, self.event(NOW + timedelta(days=3)), NOW) == NOW + timedelta(days=2)
        assert due_at(self.rule, self.event(NOW + timedelta(hours=3)), NOW) == NOW  # booked late: now
        assert due_at(self.rule, self.event(NOW - timedelta(hours=1)), NOW) is None  # already begun

    def test_the_preferred_channel_goes_first_then_the_default_order(self) -> None:
        order = channel_order(self.rule, recipient(preferred_channel=Channel.EMAIL))
        assert order[0] is Channel.EMAIL and set(order) == set(DEFAULT_CHANNEL_ORDER)
        assert channel_order(self.rule, recipient()) == DEFAULT_CHANNEL_ORDER

    def test_a_channel_they_opted_in_on_goes_before_the_default_order(self) -> None:
        """A patient who said yes to SMS and named no channel hears on SMS, not on WhatsApp first because
        the same number works there."""
        said_yes = ChannelConsent(ConsentStatus.OPTED_IN, "front desk", NOW - timedelta(days=2))
        sms_only = recipient(consents={Channel.SMS: said_yes, Channel.WHATSAPP: OPTED_OUT})
        order = channel_order(self.rule, sms_only)
        assert order[0] is Channel.SMS and set(order) == set(DEFAULT_CHANNEL_ORDER)
        both = recipient(
            consents={Channel.SMS: said_yes, Channel.EMAIL: said_yes}, preferred_channel=Channel.EMAIL
        )
        assert channel_order(self.rule, both)[:2] == (Channel.EMAIL, Channel.SMS)
        ruled = replace(self.rule, channel_order=(Channel.WHATSAPP,))
        assert channel_order(ruled, sms_only) == (Channel.WHATSAPP,)  # a rule's own order is kept

    def test_staff_are_told_the_channel_the_message_will_take_and_why(self) -> None:
        """reaching_channel is the rule planner's own choice: it skips a channel with no address, an opt-out,
        no template variant, or WhatsApp without an approved template outside the 24-hour window."""
        said_yes = ChannelConsent(ConsentStatus.OPTED_IN, "front desk", NOW - timedelta(days=2))
        phone_only = {Channel.WHATSAPP: "+49151", Channel.SMS: "+49151"}
        every = [
            StoredTemplate(
                40 + i,
                MessageTemplate(
                    "reminder", channel, "en", "Hi", MessageCategory.TRANSACTIONAL,
                    whatsapp_name="reminder" if channel is Channel.WHATSAPP else None,
                ),
            )
            for i, channel in enumerate(DEFAULT_CHANNEL_ORDER)
        ]  # fmt: skip
        policy = ConsentPolicy()

        def reaches(
            rule: NotificationRule | None, who: Recipient, templates: list[StoredTemplate] = every
        ) -> object:
            return reaching_channel(rule, who, templates, policy, NOW)

        assert reaches(self.rule, recipient()) == (Channel.WHATSAPP, "default")
        # Prefers email but has no address: the next in the order, and staff are not told "preferred".
        no_mail = recipient(addresses=phone_only, preferred_channel=Channel.EMAIL)
        assert reaches(self.rule, no_mail) == (Channel.WHATSAPP, "default")
        assert reaches(self.rule, recipient(preferred_channel=Channel.EMAIL)) == (Channel.EMAIL, "preferred")
        sms_only = recipient(
            addresses=phone_only, consents={Channel.SMS: said_yes, Channel.WHATSAPP: OPTED_OUT}
        )
        assert reaches(self.rule, sms_only) == (Channel.SMS, "opted_in")
        # No template variant for WhatsApp, or one without an approved template: SMS, as the planner does.
        no_whatsapp = [t for t in every if t.template.channel is not Channel.WHATSAPP]
        assert reaches(self.rule, recipient(addresses=phone_only), no_whatsapp) == (Channel.SMS, "default")
        unapproved = [replace(t, template=replace(t.template, whatsapp_name=None)) for t in every]
        assert reaches(self.rule, recipient(addresses=phone_only), unapproved) == (Channel.SMS, "default")
        assert reaches(None, sms_only) == (None, "no_rule")  # no rule: nothing is sent
        ruled = replace(self.rule, channel_order=(Channel.WHATSAPP, Channel.EMAIL))
        assert reaches(ruled, sms_only) == (None, "unreachable")  # opted out of one, no address on the other
        assert reaches(ruled, recipient()) == (Channel.WHATSAPP, "rule")
        assert reaches(ruled, recipient(addresses={Channel.EMAIL: "a@example.com"})) == (
            Channel.EMAIL,
            "rule_next",
        )
        assert told_words("sms", "opted_in") == "on SMS, a channel they opted in on"
        assert told_words("whatsapp", "") == "on WhatsApp"
        assert told_sentence("the patient", "the link", None, "no_rule") == (
            "No message will carry the link to the patient: no notification rule sends it "
            "(is its rule switched on, under Templates?)."
        )
        assert told_sentence("Greta Gruber", "the link", "sms", "opted_in") == (
            "Greta Gruber is sent the link on SMS, a channel they opted in on."
        )
        assert told_sentence("the patient", "the link", None, "unreachable").startswith(
            "No message will carry the link to the patient: no channel reaches them ("
        )


class TestUnsubscribeLinks:
    """The planner supplies each recipient's one-click link; no caller ever does."""

    LINKS = UnsubscribeLinks("https://clinic.example/", "s3cret")

    def email_template(self) -> StoredTemplate:
        return StoredTemplate(
            21,
            MessageTemplate(
                "news",
                Channel.EMAIL,
                "en",
                "Hi {{ first_name }}, {{ offer }}. Unsubscribe: {{ unsubscribe_url }}",
                MessageCategory.MARKETING,
                ("first_name", "offer", "unsubscribe_url"),
                subject="News for {{ first_name }}",
                html_body='<p>{{ offer }}</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>',
            ),
        )

    def test_every_recipient_gets_their_own_working_link_in_text_and_html(self) -> None:
        plan = planner(self.email_template(), policy=ConsentPolicy(unsubscribe_links=self.LINKS))
        first = plan.plan(recipient(customer_id=7), (Channel.EMAIL,), NOW)
        second = plan.plan(recipient(customer_id=8), (Channel.EMAIL,), NOW)
        for entry, customer_id in ((first, 7), (second, 8)):
            assert entry.status is not MessageStatus.SUPPRESSED, entry.payload
            link = self.LINKS.url(customer_id, Channel.EMAIL)
            assert entry.body.endswith(f"Unsubscribe: {link}")
            assert f'href="{link}"' in str(entry.payload["html_body"])
            token = link.rsplit("/", 1)[1]
            assert read_unsubscribe_token("s3cret", token) == (customer_id, Channel.EMAIL)

    def test_a_caller_may_not_set_the_link(self) -> None:
        with pytest.raises(TemplateError, match="unsubscribe_url is filled in by Switchboard"):
            check_variables({"offer": "x", "unsubscribe_url": "https://evil.example/"})
        plan = planner(
            self.email_template(),
            policy=ConsentPolicy(unsubscribe_links=self.LINKS),
            variables={"offer": "x", "unsubscribe_url": "https://evil.example/"},
        )
        entry = plan.plan(recipient(), (Channel.EMAIL,), NOW)
        assert "evil" not in entry.body and self.LINKS.url(7, Channel.EMAIL) in entry.body

    def test_without_links_the_exclusion_says_why(self) -> None:
        entry = planner(self.email_template()).plan(recipient(), (Channel.EMAIL,), NOW)
        assert entry.status is MessageStatus.SUPPRESSED
        assert "no unsubscribe links can be made" in str(entry.payload["explanation"])

    def test_a_marketing_email_without_a_visible_link_is_refused_on_save(self) -> None:
        template = MessageTemplate(
            "news", Channel.EMAIL, "en", "Hi", MessageCategory.MARKETING, (), subject="News"
        )
        with pytest.raises(TemplateError, match="visible unsubscribe link"):
            validate_template(template)
        # Undeclared, the link is still known: Switchboard fills it in.
        validate_template(replace(template, body="Hi. Unsubscribe: {{ unsubscribe_url }}"))
