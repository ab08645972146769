"""Template rendering in the sandbox, validation messages, locale fallback and WhatsApp parameters."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from markupsafe import Markup

from domain.templates.model import MessageTemplate, TemplateError
from domain.templates.rendering import (
    MAX_TEXT_CHARACTERS,
    render_html,
    render_template,
    render_text,
)
from domain.templates.selection import select_template, whatsapp_components
from domain.templates.validation import validate_template
from domain.vocabulary import Channel, MessageCategory

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
    with pytest.raises(TemplateError, match="'first_name'"):
        render_text("Hi {{ first_name }}", {})


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
