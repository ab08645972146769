"""WhatsApp templates in the sandbox as at Meta: only approved ones are sent, and they show as the phone shows them."""

from __future__ import annotations

import dataclasses
import html
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from api.sandbox import RunningSandbox, SandboxConfig, run_sandbox
from domain.delivery.ports import OutboundMessage, ProviderError, WhatsAppTemplateCall
from domain.templates.model import MessageTemplate
from domain.templates.rendering import render_template
from domain.templates.selection import whatsapp_components
from domain.vocabulary import Channel, MessageCategory
from providers.whatsapp.driver import WhatsAppCloudDriver
from storage.seeding.catalogue import template_rows

CUSTOMER = "+15551230001"


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    config = dataclasses.replace(SandboxConfig(), port=0, smtp_port=0, send_status_webhooks=False)
    async with run_sandbox(config) as running:
        yield running


@pytest.fixture
async def driver(sandbox: RunningSandbox) -> AsyncIterator[WhatsAppCloudDriver]:
    config = sandbox.state.config
    sender = WhatsAppCloudDriver(
        config.whatsapp_token, config.whatsapp_phone_number_id, base_url=sandbox.base_url
    )
    yield sender
    await sender.close()


def seeded_whatsapp_templates() -> list[MessageTemplate]:
    """Every WhatsApp template `switchboard seed` stores, as Switchboard reads it back."""
    rows, _ = template_rows(datetime(2024, 1, 1, tzinfo=UTC))
    return [
        MessageTemplate(
            name=row["name"],
            channel=Channel.WHATSAPP,
            locale=row["locale"],
            body=row["body"],
            category=MessageCategory(row["category"]),
            variables=tuple(row["variables"]),
            whatsapp_name=row["whatsapp_name"],
            whatsapp_language=row["whatsapp_language"],
            whatsapp_params=tuple(row["whatsapp_params"]),
        )
        for row in rows
        if row["channel"] == "whatsapp"
    ]


def template_send(message_id: int, name: str, language: str, *texts: str) -> OutboundMessage:
    parameters = [{"type": "text", "text": text} for text in texts]
    call = WhatsAppTemplateCall(name, language, ({"type": "body", "parameters": parameters},))
    return OutboundMessage(
        message_id, f"wa-{message_id}", Channel.WHATSAPP, CUSTOMER, "", whatsapp_template=call
    )


async def fetch(url: str, **options: Any) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(options.pop("method", "GET"), url, **options) as answer,
    ):
        body = await answer.json() if answer.content_type == "application/json" else await answer.text()
        return answer.status, body


async def test_every_seeded_template_shows_the_text_switchboard_meant(
    sandbox: RunningSandbox, driver: WhatsAppCloudDriver
) -> None:
    templates = seeded_whatsapp_templates()
    # 20, the CSAT survey (chat_csat_survey), chat_follow_up and five for video consultations, in en and de
    assert len(templates) == 34
    expected = {}
    for number, template in enumerate(templates, start=1):
        values = {name: f"{name.replace('_', ' ')} {number}" for name in template.variables}
        assert template.whatsapp_name is not None and template.whatsapp_language is not None
        call = WhatsAppTemplateCall(
            template.whatsapp_name, template.whatsapp_language, tuple(whatsapp_components(template, values))
        )
        await driver.send(
            OutboundMessage(
                number, f"seeded-{number}", Channel.WHATSAPP, CUSTOMER, "", whatsapp_template=call
            )
        )
        expected[number] = (template.whatsapp_name, render_template(template, values).body)
    status, listed = await fetch(f"{sandbox.base_url}/_sandbox/messages?provider=whatsapp_cloud")
    assert status == 200
    shown = {m["our_message_id"]: (m["template"], m["body"]) for m in listed["messages"]}
    assert shown == expected


async def test_the_console_shows_a_template_as_the_phone_does(
    sandbox: RunningSandbox, driver: WhatsAppCloudDriver
) -> None:
    await driver.send(template_send(7, "nw_seasonal_offer", "en_US", "Ada", "20% off whitening", "SPRING"))
    status, page = await fetch(f"{sandbox.base_url}/_sandbox/")
    assert status == 200
    text = html.unescape(page)
    assert "Template nw_seasonal_offer" in text
    assert "Ada, 20% off whitening with code SPRING until Sunday. Reply STOP to opt out." in text
    assert "[template" not in text
    (sent,) = sandbox.state.messages
    assert sent.details["template_category"] == "MARKETING"


@pytest.mark.parametrize(
    ("name", "language", "texts", "status", "code", "details"),
    [
        (
            "nw_no_such_offer",
            "en_US",
            ("Ada",),
            404,
            "132001",
            "template name (nw_no_such_offer) does not exist in en_US",
        ),
        (
            "nw_welcome",
            "en",
            ("Ada", "Camden"),
            404,
            "132001",
            "template name (nw_welcome) does not exist in en",
        ),
        (
            "nw_welcome",
            "en_US",
            ("Ada",),
            400,
            "132000",
            "number of localizable_params (1) does not match the expected number of params (2)",
        ),
        ("nw_welcome", "en_US", ("Ada", "Camden\nHigh Street"), 400, "132018", "new-line/tab"),
    ],
)
async def test_meta_refuses_templates_it_has_not_approved_or_cannot_fill(
    sandbox: RunningSandbox,
    driver: WhatsAppCloudDriver,
    name: str,
    language: str,
    texts: tuple[str, ...],
    status: int,
    code: str,
    details: str,
) -> None:
    with pytest.raises(ProviderError) as refused:
        await driver.send(template_send(1, name, language, *texts))
    assert refused.value.code == code and refused.value.permanent
    assert f"whatsapp {status}:" in str(refused.value) and details in str(refused.value)
    assert sandbox.state.messages == []


async def test_a_template_submitted_through_the_management_api_can_be_sent(
    sandbox: RunningSandbox, driver: WhatsAppCloudDriver
) -> None:
    config = sandbox.state.config
    url = f"{sandbox.base_url}/v21.0/{config.whatsapp_business_account_id}/message_templates"
    auth = {"Authorization": f"Bearer {config.whatsapp_token}"}
    winter = {
        "name": "nw_winter_check",
        "language": "en_US",
        "category": "MARKETING",
        "components": [{"type": "BODY", "text": "Hi {{1}}, time for your winter check at {{2}}."}],
    }
    status, created = await fetch(url, method="POST", json=winter, headers=auth)
    assert status == 200 and created["status"] == "APPROVED" and created["id"].isdigit()
    status, again = await fetch(url, method="POST", json=winter, headers=auth)
    assert status == 400 and "already en_US content" in again["error"]["error_data"]["details"]
    status, refused = await fetch(url, method="POST", json={**winter, "name": "Winter Check"}, headers=auth)
    assert status == 400 and refused["error"]["code"] == 100
    status, unauthorised = await fetch(url, method="POST", json=winter)
    assert status == 401 and unauthorised["error"]["code"] == 190
    status, listing = await fetch(url, params={"name": "nw_winter_check"}, headers=auth)
    assert status == 200 and [t["id"] for t in listing["data"]] == [created["id"]]
    await driver.send(template_send(3, "nw_winter_check", "en_US", "Ada", "Camden"))
    (sent,) = sandbox.state.messages
    assert (sent.template, sent.body) == ("nw_winter_check", "Hi Ada, time for your winter check at Camden.")


async def test_the_console_approves_a_template_too(sandbox: RunningSandbox) -> None:
    form = {"name": "nw_recall", "language": "de", "category": "UTILITY", "body": "Hallo {{1}}!"}
    status, answer = await fetch(f"{sandbox.base_url}/_sandbox/whatsapp/templates", method="POST", json=form)
    assert status == 202 and answer["approved"]["name"] == "nw_recall"
    status, gaps = await fetch(
        f"{sandbox.base_url}/_sandbox/whatsapp/templates",
        method="POST",
        json={**form, "body": "Hallo {{2}}!"},
    )
    assert status == 400 and "numbered in order" in gaps["error"]
    status, listed = await fetch(f"{sandbox.base_url}/_sandbox/whatsapp/templates")
    assert ("nw_recall", "de") in {(t["name"], t["language"]) for t in listed["templates"]}
