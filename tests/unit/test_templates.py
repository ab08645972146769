"""Template rendering in the sandbox within its cost budget, validation messages, locale fallback and WhatsApp
parameters."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from domain.consent.model import ConsentPolicy
from domain.messages.model import Recipient, StoredTemplate
from domain.messages.send_decision import OutboxPlanner
from domain.templates.model import MessageTemplate, TemplateError
from domain.templates.rendering import (
    MAX_HTML_BYTES,
    MAX_RENDER_STEPS,
    MAX_SOURCE_CHARACTERS,
    MAX_TEXT_CHARACTERS,
    render_html,
    render_template,
    render_text,
    render_time_limit,
)
from domain.templates.selection import select_template, whatsapp_components
from domain.templates.trial import run_trial
from domain.templates.validation import check_template, validate_template
from domain.vocabulary import Channel, MessageCategory, MessageSource, MessageStatus

SSTI_PAYLOADS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__ }}",
    "{% for x in ().__class__.__base__.__subclasses__() %}{{ x }}{% endfor %}",
    "{{ name.__class__ }}",
    "{{ order.__class__.__init__ }}",
    "{{ (name|attr('__class__')) }}",
    "{{ '{0.__class__}'.format(name) }}",
    "{{ lipsum.__globals__ }}",
    "{{ config }}",
    "{{ request.application }}",
    "{{ 'x' * 100000000 }}",
    "{{ 'a'.ljust(1000000000) }}",
    "{{ '%999999999d' % 1 }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ 'x'|center(1000000000) }}",
    "{{ 2 ** 99999999 }}",
    "{% for i in range(1000000) %}{% endfor %}",
    "{{ ('a' * 1000)|replace('', 'b' * 1000) }}",
]


def sms(body: str, *variables: str, **changes: object) -> MessageTemplate:
    template = MessageTemplate(
        name="order_shipped",
        channel=Channel.SMS,
        locale="en",
        body=body,
        category=MessageCategory.TRANSACTIONAL,
        variables=variables,
    )
    return replace(template, **changes)  # type: ignore[arg-type]


def test_renders_plain_data() -> None:
    text = render_text(
        "Hi {{ first_name }}, {{ total }} due {{ due }}; items: {{ items|join(', ') }} ({{ order.id }})",
        {
            "first_name": "Ann",
            "total": Decimal("12.50"),
            "due": date(2026, 3, 3),
            "items": ["soap", "towel"],
            "order": {"id": 7},
        },
    )
    assert text == "Hi Ann, 12.50 due 2026-03-03; items: soap, towel (7)"


def test_undefined_variable_is_named() -> None:
    with pytest.raises(TemplateError, match="No value was given for the variable “first_name”"):
        render_text("Hi {{ first_name }}", {})


def test_every_missing_variable_is_named_at_once_but_not_those_only_tested_for() -> None:
    """The walk was told of one missing value per try ("service", then "clinic")."""
    source = "Hi {{ first_name }}, your {{ service }} at {{ clinic }}{% if note is defined %} {{ note }}{% endif %}"
    with pytest.raises(TemplateError) as refused:
        render_text(source + "{{ room | default('') }}", {"first_name": "Ann"})
    assert str(refused.value) == "No value was given for the variables “service” and “clinic”."


def test_every_missing_whatsapp_parameter_is_named_at_once() -> None:
    from domain.templates.selection import whatsapp_components

    template = MessageTemplate(
        name="appointment_reminder", channel=Channel.WHATSAPP, locale="en", body="…",
        category=MessageCategory.TRANSACTIONAL, whatsapp_name="appointment_reminder",
        whatsapp_params=("first_name", "service", "clinic"),
    )  # fmt: skip
    with pytest.raises(TemplateError) as refused:
        whatsapp_components(template, {"first_name": "Ann"})
    assert str(refused.value) == "No value was given for the WhatsApp parameters “service” and “clinic”."


def test_missing_key_of_a_dict_is_an_error_not_blank() -> None:
    with pytest.raises(TemplateError, match="missing"):
        render_text("{{ order.total }}", {"order": {}})


def test_syntax_error_gives_line() -> None:
    with pytest.raises(TemplateError, match="line 2"):
        render_text("Hi\n{{ name ", {"name": "x"})


def test_html_body_escapes_but_sms_does_not() -> None:
    values = {"name": "<script>alert(1)</script>"}
    assert render_html("<p>{{ name }}</p>", values) == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    assert render_text("{{ name }}", values) == "<script>alert(1)</script>"


def test_markup_values_cannot_bypass_escaping() -> None:
    assert render_html("{{ name }}", {"name": Markup("<b>x</b>")}) == "&lt;b&gt;x&lt;/b&gt;"


def test_email_template_renders_all_parts() -> None:
    template = MessageTemplate(
        name="welcome",
        channel=Channel.EMAIL,
        locale="en",
        body="Hi {{ name }} & co",
        category=MessageCategory.MARKETING,
        variables=("name",),
        subject="Welcome, {{ name }}",
        html_body="<h1>Hi {{ name }} & co</h1>",
    )
    rendered = render_template(template, {"name": "Tom & Jerry"})
    assert rendered.body == "Hi Tom & Jerry & co"
    assert rendered.subject == "Welcome, Tom & Jerry"
    assert rendered.html_body == "<h1>Hi Tom &amp; Jerry & co</h1>"


@pytest.mark.parametrize("payload", SSTI_PAYLOADS)
@pytest.mark.parametrize("html", [False, True])
def test_ssti_payloads_are_refused(payload: str, html: bool) -> None:
    values = {"name": "Ann", "order": {"id": 1}}
    with pytest.raises(TemplateError) as caught:
        render_html(payload, values) if html else render_text(payload, values)
    assert "uid=" not in str(caught.value)


@pytest.mark.parametrize("value", [object(), {1, 2}, b"bytes", lambda: 1, {1: "non-text key"}, [object()]])
def test_only_plain_data_is_accepted(value: object) -> None:
    with pytest.raises(TemplateError, match="'thing"):
        render_text("{{ thing }}", {"thing": value})


def test_output_is_capped() -> None:
    render_text("{{ 'x' * n }}", {"n": MAX_TEXT_CHARACTERS})
    with pytest.raises(TemplateError, match="longer than the limit"):
        render_text("{{ 'x' * n }}{{ 'y' }}", {"n": MAX_TEXT_CHARACTERS})
    with pytest.raises(TemplateError, match="longer than the limit"):
        render_text("{% for i in range(1000) %}{{ 'x' * 500 }}{% endfor %}", {})


def test_sms_render_is_capped_at_the_body_limit() -> None:
    with pytest.raises(TemplateError, match="1,600"):
        render_template(sms("{{ note }}", "note"), {"note": "a" * 1601})


def test_runtime_errors_become_template_errors() -> None:
    with pytest.raises(TemplateError, match="ZeroDivisionError"):
        render_text("{{ 1 / n }}", {"n": 0})


def test_cached_templates_render_with_the_right_escape_mode() -> None:
    source = "{{ v }}"
    assert render_text(source, {"v": "<"}) == "<"
    assert render_html(source, {"v": "<"}) == "&lt;"
    assert render_text(source, {"v": "<"}) == "<"


# --- validation ---


def test_valid_template_passes() -> None:
    validate_template(sms("Hi {{ name }}, order {{ order_id }} shipped.", "name", "order_id"))


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (sms("Hi {{ name }} {{ surname }}", "name"), "not declared: 'surname'"),
        (sms("Hi {{ name }}", "name", "order_id"), "never used: 'order_id'"),
        (
            sms(
                "   ",
            ),
            "body is empty",
        ),
        (sms("Hi {{ name", "name"), "line 1"),
        (sms("a" * 1601), "1,601 characters of fixed text"),
        (sms("Hi", subject="x"), "Only email templates"),
        (sms("Hi {{ n }}", "n", "n"), "more than once: 'n'"),
        (sms("Hi {{ n }}", "n", locale="english!"), "not a locale"),
        (
            sms("Hi", channel=Channel.EMAIL),
            "needs a subject",
        ),
        (
            sms("Hi {{ name }}", "name", channel=Channel.WHATSAPP),
            "name of its approved WhatsApp template",
        ),
        (
            sms("Hi {{ name }}", "name", channel=Channel.WHATSAPP, whatsapp_name="hi"),
            "language code",
        ),
        (
            sms(
                "Hi {{ name }}",
                "name",
                channel=Channel.WHATSAPP,
                whatsapp_name="hi",
                whatsapp_language="en_US",
                whatsapp_params=("name", "order_id"),
            ),
            "WhatsApp parameters use variables that are not declared: 'order_id'",
        ),
        (sms("Hi", whatsapp_name="hi"), "Only WhatsApp templates"),
        (
            sms("Hi {{ n }}", "n", channel=Channel.EMAIL, subject="S {{ other }}"),
            "subject uses variables that are not declared: 'other'",
        ),
        (
            sms("Hi {{ n }}", "n", channel=Channel.EMAIL, subject="S", html_body="<p>{{ x }}</p>"),
            "HTML body uses variables that are not declared: 'x'",
        ),
    ],
)
def test_validation_problems(template: MessageTemplate, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        validate_template(template)


def test_long_sms_with_variables_is_judged_on_static_text() -> None:
    validate_template(sms("a" * 1590 + "{{ name }}", "name"))


def test_loop_variables_and_builtins_need_no_declaring() -> None:
    validate_template(
        sms("{% for item in items %}{{ item }}{{ loop.index }}{% endfor %}{{ range(2)|list }}", "items")
    )


def test_variable_only_used_as_whatsapp_parameter_counts_as_used() -> None:
    validate_template(
        sms(
            "Your order {{ order_id }} has shipped.",
            "order_id",
            "name",
            channel=Channel.WHATSAPP,
            whatsapp_name="order_shipped",
            whatsapp_language="en_US",
            whatsapp_params=("name", "order_id"),
        )
    )


def test_conversational_whatsapp_reply_needs_no_approved_name() -> None:
    validate_template(
        sms("Thanks {{ name }}!", "name", channel=Channel.WHATSAPP, category=MessageCategory.CONVERSATIONAL)
    )


def test_validation_lists_all_problems_at_once() -> None:
    with pytest.raises(TemplateError) as caught:
        validate_template(sms("Hi {{ a }}", "b"))
    assert "'a'" in str(caught.value)
    assert "'b'" in str(caught.value)


# --- selection ---


def variants(*locales: str) -> list[MessageTemplate]:
    return [sms(f"body {locale}", locale=locale) for locale in locales]


@pytest.mark.parametrize(
    ("available", "wanted", "chosen"),
    [
        (("en", "de", "de-AT"), "de-AT", "de-AT"),
        (("en", "de", "de-CH"), "de-AT", "de"),
        (("en", "de-CH"), "de-AT", "de-CH"),
        (("en", "fr"), "de-AT", "en"),
        (("en-GB", "fr"), "de", "en-GB"),
        (("fr", "es"), "de", "es"),
        (("es", "fr"), "de", "es"),
        (("en", "pt_BR"), "pt-br", "pt_BR"),
        (("EN", "de"), "en", "EN"),
    ],
)
def test_locale_fallback(available: tuple[str, ...], wanted: str, chosen: str) -> None:
    picked = select_template(variants(*available), "order_shipped", Channel.SMS, wanted)
    assert picked is not None
    assert picked.locale == chosen


def test_selection_is_independent_of_list_order() -> None:
    templates = variants("fr", "es", "it")
    forward = select_template(templates, "order_shipped", Channel.SMS, "de")
    backward = select_template(list(reversed(templates)), "order_shipped", Channel.SMS, "de")
    assert forward == backward


def test_selection_matches_name_and_channel() -> None:
    templates = [*variants("en"), sms("email", locale="de", channel=Channel.EMAIL)]
    assert select_template(templates, "order_shipped", Channel.EMAIL, "en") == templates[1]
    assert select_template(templates, "other", Channel.SMS, "en") is None


# --- WhatsApp components ---


def whatsapp_template(*params: str) -> MessageTemplate:
    return sms(
        "Hi {{ name }}, order {{ order_id }}",
        "name",
        "order_id",
        channel=Channel.WHATSAPP,
        whatsapp_name="order_update",
        whatsapp_language="en_US",
        whatsapp_params=params,
    )


def test_whatsapp_components_follow_parameter_order() -> None:
    components = whatsapp_components(whatsapp_template("order_id", "name"), {"name": "Ann", "order_id": 42})
    assert components == [
        {"type": "body", "parameters": [{"type": "text", "text": "42"}, {"type": "text", "text": "Ann"}]}
    ]


def test_whatsapp_without_parameters_has_no_components() -> None:
    assert whatsapp_components(whatsapp_template(), {}) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "No value"),
        ("", "empty"),
        ("two\nlines", "line breaks"),
        ("a     b", "four spaces"),
        ([1], "list"),
    ],
)
def test_whatsapp_parameter_problems(value: object, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        whatsapp_components(whatsapp_template("name"), {"name": value})


def test_whatsapp_missing_parameter_is_named() -> None:
    with pytest.raises(TemplateError, match="'order_id'"):
        whatsapp_components(whatsapp_template("order_id"), {})


# --- the cost budget: every render is finite and quick, or refused in words ---

#: Templates that used to freeze the renderer (seconds to minutes of CPU, or gigabytes): each is refused now.
COSTLY_TEMPLATES = [
    ("{{ ((10**1000)**1000)**10 }}", "more than 308 digits"),
    ("{{ (2 ** 1000) * (2 ** 1000) }}", "more than 308 digits"),
    ("{{ ('9' * 4000)|int * ('9' * 4000)|int }}", "more than 308 digits"),
    (
        "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(10) %}"
        "{% endfor %}{% endfor %}{% endfor %}",
        "more than 10,000 loop steps",
    ),
    (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
        "does too much work",
    ),
    ("{% for x in range(1000) recursive %}{{ loop(range(1000)) }}{% endfor %}", "calls itself"),
    ("{% set a = 'x' * 200000 %}{% set b = a ~ a %}{{ b|length }}", "longer than 204,800"),
    (
        "{% set a %}{{ 'x' * 200000 }}{% endset %}{% set b %}{{ a }}{{ a }}{% endset %}"
        "{% set c %}{{ b }}{{ b }}{% endset %}{{ c|length }}",
        "more than 1,000,000 characters",
    ),
    (
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "longer than 204,800",
    ),
    (
        "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}"
        "{{ ns.l }}",
        "longer than 204,800",
    ),
    ("{% set n = namespace() %}{% set l = [n] * 1000 %}{% set n.x = 'y' * 200000 %}{{ l }}", "namespace"),
    ("{{ (['x' * 1000] * 1000)|join('y' * 100000)|length }}", "longer than 204,800"),
    ("{{ ''.join(['y' * 100000] * 1000) }}", "longer than 204,800"),
    ("{{ ('\\n' * 100000)|indent(1000)|length }}", "longer than 204,800"),
    ("{{ ('ab ' * 1000)|wordwrap(1, wrapstring='x' * 100000)|length }}", "longer than 204,800"),
    ("{{ ('\\t' * 1000).expandtabs(200000)|length }}", "longer than 204,800"),
    ("{{ '{:{}}'.format('x', 100000000)|length }}", "format width"),
    ("{{ '%" + "9" * 5000 + "d' % 1 }}", "format width"),
    ("{{ ('%999s' * 300) % ((1,) * 300) }}", "longer than 204,800"),
    ("{{ [1]|batch(200000, 'x' * 200000)|list|length }}", "longer than 204,800"),
    ("{{ ([[1] * 100] * 100)|sum(start=[])|length }}", "sum adds numbers only"),
    ("{{ ('a' * 200000)|list|length }}", "12,800 items"),
    (
        "{% for i in range(1000) %}{% if ('a' * 200000) in ('b' * 200000) %}{% endif %}{% endfor %}",
        "1,000,000",
    ),
    ("{% for i in range(1000) %}{{ ('ab ' * 60000)|wordwrap(3)|length }}{% endfor %}", "1,000,000"),
    ("{% for i in range(1000) %}" + "{% if n %}{% endif %}" * 500 + "{% endfor %}", "1,000,000"),
]


#: A stall guard, not a speed goal (speed belongs in benchmarks): the slowest refusal costs about 0.06 s of
#: this process's CPU. CPU time, not the wall clock: a loaded CI machine once took 1.2 s of wall clock for
#: a refusal that costs 0.02 s of CPU.
STALL_CPU_SECONDS = 2.0


@pytest.mark.parametrize(("source", "reason"), COSTLY_TEMPLATES)
@pytest.mark.parametrize("html", [False, True])
def test_costly_templates_are_refused_quickly_in_words(source: str, reason: str, html: bool) -> None:
    started = time.process_time()
    with pytest.raises(TemplateError, match=re.escape(reason)) as refused:
        render_html(source, {"n": 1}) if html else render_text(source, {"n": 1})
    assert time.process_time() - started < STALL_CPU_SECONDS
    assert "Error" not in str(refused.value) and "[" not in str(refused.value)


def test_the_budget_counts_each_pass_of_a_loop() -> None:
    loop = "{% for x in items %}{% endfor %}done"
    assert render_text(loop, {"items": list(range(MAX_RENDER_STEPS))}) == "done"
    with pytest.raises(TemplateError, match="more than 10,000 loop steps and calls for one message"):
        render_text(loop, {"items": list(range(MAX_RENDER_STEPS + 1))})


def test_the_parts_of_one_message_share_one_budget() -> None:
    half = "{% for x in items %}{% endfor %}"
    template = replace(
        sms(half, "items"), channel=Channel.EMAIL, subject=half, category=MessageCategory.TRANSACTIONAL
    )
    values = {"items": list(range(MAX_RENDER_STEPS // 2 + 1))}
    render_text(half, values)
    with pytest.raises(TemplateError, match="loop steps"):
        render_template(template, values)


@pytest.mark.parametrize(
    ("source", "result"),
    [
        ("{{ 2 ** 1000 }}", 2**1000),
        ("{{ 10 ** 307 }}", 10**307),
        ("{{ 10 ** 154 * 10 ** 153 }}", 10**307),
        ("{{ 10 ** 307 * 9 + (10 ** 307 - 1) }}", 10**308 - 1),
        ("{{ -(10 ** 307) * 9 - (10 ** 307 - 1) }}", -(10**308) + 1),
    ],
)
def test_numbers_up_to_308_digits_are_fine(source: str, result: int) -> None:
    assert render_text(source, {}) == str(result)
    assert len(str(abs(result))) <= 308


@pytest.mark.parametrize(
    "source",
    [
        "{{ 10 ** 308 }}",
        "{{ 10 ** 307 * 10 }}",
        "{{ 10 ** 307 * 9 + 10 ** 307 }}",
        "{{ 10 ** 155 * 10 ** 155 }}",
        "{{ 2 ** 1000 * 2 ** 25 }}",
        "{{ 4 ** 600 }}",
    ],
)
def test_numbers_beyond_308_digits_are_refused_before_they_are_built(source: str) -> None:
    with pytest.raises(TemplateError, match="a number of more than 308 digits"):
        render_text(source, {})


def test_a_rich_email_stays_well_inside_the_budget() -> None:
    products = [
        {"name": f"Lens {i}", "price": 10 + i / 2, "tags": ["new", "sale"], "blurb": "Clear sight. " * 15}
        for i in range(120)
    ]
    source = (
        "<h1>Hello {{ name|title }}</h1>{% set ns = namespace(total=0) %}<table>"
        "{% for p in products %}{% set ns.total = ns.total + p.price %}"
        "<tr class='{{ loop.cycle('odd', 'even') }}'><td>{{ loop.index }}</td><td>{{ p.name|upper }}</td>"
        "<td>{{ '%.2f'|format(p.price) }}</td><td>{{ p.tags|join(', ') }}</td><td>{{ p.blurb|truncate(80) }}</td>"
        "{% if p.price > 50 and 'sale' in p.tags %}<td>Sale</td>{% endif %}</tr>{% endfor %}</table>"
        "<p>{{ '%.2f'|format(ns.total) }} for {{ products|length }} lenses, the dearest "
        "{{ (products|sort(attribute='price', reverse=true)|first).name }}</p>"
    )
    html = render_html(source, {"name": "ann lee", "products": products})
    assert html.count("<tr") == 120 and "the dearest Lens 119" in html and "Hello Ann Lee" in html


#: Inside the budget (9,900 steps) but some milliseconds of work.
NEARLY_TOO_MUCH = "{% for i in range(900) %}{% for j in range(9) %}{% endfor %}{% endfor %}done"


def test_a_time_limit_stops_a_render_that_is_inside_the_budget_but_too_slow() -> None:
    assert render_text(NEARLY_TOO_MUCH, {}) == "done"
    with (
        render_time_limit(0.001),
        pytest.raises(TemplateError, match=r"did not finish within 0\.001 seconds"),
    ):
        render_text(NEARLY_TOO_MUCH, {})
    assert render_text(NEARLY_TOO_MUCH, {}) == "done"  # the limit ends with its block


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ " + "(" * 2000 + "1" + ")" * 2000 + " }}", "nested too deeply"),
        ("{{ 1" + " + 1" * 5000 + " }}", "nested too deeply"),
        ("{{ " + "9" * 5000 + " }}", "number too long to read"),
    ],
)
def test_templates_too_deep_to_read_are_refused_in_words(source: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        render_text(source, {})
    with pytest.raises(TemplateError, match=message):
        validate_template(sms(source))


def test_a_source_longer_than_a_message_could_be_is_not_read() -> None:
    with pytest.raises(
        TemplateError, match="The body is 50,001 characters long; a template's body may be at most"
    ):
        validate_template(sms("x" * (MAX_SOURCE_CHARACTERS + 1)))


def test_saving_runs_a_trial_render_that_refuses_too_much_work() -> None:
    nested = sms("{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}")
    validate_template(nested)  # well formed...
    with pytest.raises(TemplateError, match="too much work"):
        check_template(nested)  # ...but far too costly to send


def test_a_template_costly_only_with_real_data_is_saved_then_suppressed_at_send_time() -> None:
    cubed = "{% for a in note %}{% for b in note %}{% for c in note %}{% endfor %}{% endfor %}{% endfor %}Hi"
    template = sms(cubed, "note")
    check_template(template)  # "sample" has six letters: 258 steps
    planner = OutboxPlanner(
        source=MessageSource.CAMPAIGN,
        source_ref="3",
        category=MessageCategory.TRANSACTIONAL,
        templates=(StoredTemplate(1, template),),
        variables={"note": "x" * 100},
        policy=ConsentPolicy(),
        campaign_id=3,
    )
    reader = Recipient(
        customer_id=7, name="Ann", locale="en", timezone="UTC", addresses={Channel.SMS: "+4915"}
    )
    started = time.process_time()
    entry = planner.plan(reader, (Channel.SMS,), datetime(2026, 3, 10, 12, tzinfo=UTC))
    assert time.process_time() - started < STALL_CPU_SECONDS
    assert (entry.status, entry.status_reason) == (MessageStatus.SUPPRESSED, "template_error")
    assert entry.payload["explanation"] == (
        "Not sent: The template does too much work: more than 10,000 loop steps and calls for one message."
    )


async def test_a_trial_runs_off_the_event_loop_and_the_loop_keeps_answering() -> None:
    lags: list[float] = []

    async def tick() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - before - 0.005)

    ticking = asyncio.create_task(tick())
    threads: list[int] = []

    def trial() -> None:
        threads.append(threading.get_ident())
        started = time.perf_counter()
        while time.perf_counter() - started < 0.5:  # half a second of template work, render after render
            for source in (NEARLY_TOO_MUCH, *(costly for costly, _ in COSTLY_TEMPLATES)):
                with contextlib.suppress(TemplateError):
                    render_text(source, {"n": 1})

    await run_trial(trial)
    ticking.cancel()
    assert threads and threads[0] != threading.get_ident()
    # On the event loop the trial would have stopped every tick for the whole half second (one tick at most);
    # off it, the loop keeps ticking. How often depends on how much the machine gives the other thread (a
    # loaded CI machine once managed 14 ticks, one of them 1.2 s late), so only that it ran is asserted here:
    # speed belongs in benchmarks.
    assert len(lags) >= 3, "the event loop hardly ran while the trial did"


async def test_a_trial_that_runs_out_of_time_is_refused_in_words() -> None:
    def endless() -> None:
        while True:
            render_text(NEARLY_TOO_MUCH, {})

    started = time.perf_counter()
    with pytest.raises(TemplateError, match=r"did not finish within 0\.1 seconds"):
        await run_trial(endless, seconds=0.1)
    assert time.perf_counter() - started < 5, "the endless trial was not stopped"


async def test_a_trial_that_does_not_report_back_in_time_is_answered_anyway() -> None:
    started = time.perf_counter()
    with pytest.raises(TemplateError, match=r"could not be tried out within 0\.1 seconds"):
        await run_trial(lambda: time.sleep(3), seconds=0.1)  # stuck outside any render: no clock to check
    assert time.perf_counter() - started < 2.5, "the answer waited for the stuck trial"


# A grammar of loops, arithmetic, joins and filters; whatever it builds renders or is refused, quickly.
_VALUES = {"name": "Ann", "items": [f"item {i}" for i in range(50)], "n": 7, "note": "x" * 300}
_LEAVES = st.sampled_from(
    ["n", "name", "items", "note", "7", "1000", "10", "'ab'", "'x' * 1000", "range(1000)", "[1, 2, 3]", "2"]
)
_FILTERS = st.sampled_from(
    [
        "join(', ')", "join('-' * 100)", "replace('a', 'bb')", "replace('', 'xyz')", "center(2000)", "list",
        "sort", "unique|list", "length", "wordwrap(3)", "indent(50)", "batch(7)|list", "string", "upper",
        "tojson", "reverse|list", "first", "sum", "int", "format(1)", "truncate(30)", "map('upper')|list",
    ]
)  # fmt: skip
_EXPRESSIONS = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["**", "*", "+", "~", "//", "%"]), inner).map(
            lambda parts: f"({parts[0]} {parts[1]} {parts[2]})"
        ),
        st.tuples(inner, _FILTERS).map(lambda parts: f"({parts[0]})|{parts[1]}"),
        st.tuples(inner, inner).map(lambda parts: f"[{parts[0]}, {parts[1]}]"),
        inner.map(lambda part: f"({part} ~ '')[::-1]"),
    ),
    max_leaves=6,
)
_STATEMENTS = st.recursive(
    _EXPRESSIONS.map(lambda expression: f"{{{{ {expression} }}}}"),
    lambda inner: st.one_of(
        st.tuples(_EXPRESSIONS, st.lists(inner, min_size=1, max_size=3)).map(
            lambda parts: f"{{% for x in {parts[0]} %}}{''.join(parts[1])}{{% endfor %}}"
        ),
        st.tuples(_EXPRESSIONS, inner).map(lambda parts: f"{{% if {parts[0]} %}}{parts[1]}{{% endif %}}"),
        st.tuples(_EXPRESSIONS, inner).map(lambda parts: f"{{% set ns.v = {parts[0]} %}}{parts[1]}"),
        inner.map(
            lambda part: (
                f"{{% macro m(k) %}}{part}{{% if k %}}{{{{ m(k - 1) }}}}{{{{ m(k - 1) }}}}"
                f"{{% endif %}}{{% endmacro %}}{{{{ m(20) }}}}"
            )
        ),
    ),
    max_leaves=8,
)
#: The slowest render or refusal the grammar may produce, in seconds (typically a few milliseconds; the
#: budget's worst cases take about a tenth of a second; generous for a busy machine).
GRAMMAR_LIMIT_SECONDS = 1.0


def _render_cpu_seconds(source: str, html: bool) -> float:
    """CPU time of this thread, not wall time: a busy shared machine must not fail a render that was quick."""
    started = time.thread_time()
    with contextlib.suppress(TemplateError):
        render_html(source, _VALUES) if html else render_text(source, _VALUES, max_characters=MAX_HTML_BYTES)
    return time.thread_time() - started


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=_STATEMENTS, html=st.booleans())
def test_any_template_renders_or_is_refused_quickly(body: str, html: bool) -> None:
    source = "{% set ns = namespace(v=0) %}" + body
    elapsed = _render_cpu_seconds(source, html)
    if elapsed >= GRAMMAR_LIMIT_SECONDS:
        # The first render of a kind in a process pays one-off costs (lazy imports, compiled caches): a
        # CI run once measured 1.1 s for a template that takes 0.06 s warm. What must be quick is the
        # render itself, so a slow first measurement is taken again.
        elapsed = _render_cpu_seconds(source, html)
    assert elapsed < GRAMMAR_LIMIT_SECONDS, f"{elapsed:.2f} s for {source!r}"
