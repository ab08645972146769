"""The real provider drivers against the provider sandbox over real HTTP and SMTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from email import message_from_bytes, policy
from typing import Any

import aiohttp
import aiosmtplib
import pytest
from aiogram.types import BufferedInputFile
from aiohttp import web
from aiosmtpd.controller import Controller

from api.sandbox import ChaosConfig, RunningSandbox, SandboxConfig, run_sandbox
from api.sandbox.server import free_port
from api.sandbox.smtp_server import bounce_report
from domain.delivery.ports import (
    Choice,
    Choices,
    DeliveryReceipt,
    OutboundFile,
    OutboundMessage,
    ProviderError,
    WhatsAppTemplateCall,
)
from domain.vocabulary import Channel, MessageStatus
from providers.smtp.driver import SmtpEmailDriver
from providers.smtp.webhooks import parse_delivery_report, parse_inbound_email
from providers.telegram.driver import TelegramDriver
from providers.telegram.webhooks import parse_telegram_update, verify_telegram_secret
from providers.twilio.driver import TwilioSmsDriver
from providers.twilio.webhooks import parse_twilio_inbound, parse_twilio_status, verify_twilio_signature
from providers.whatsapp.driver import WhatsAppCloudDriver
from providers.whatsapp.webhooks import parse_whatsapp_webhook, verify_whatsapp_signature

TELEGRAM_SECRET = "tg-webhook-secret"
#: What the email driver signs our id with, and the reports are checked against (the session secret in the app).
EMAIL_SECRET = "email-signing-secret"
CUSTOMER = "+15551230001"


@dataclasses.dataclass
class Received:
    path: str
    verified: bool
    parsed: Any


class WebhookReceiver:
    """Stands in for Switchboard's webhook routes, checking each with the production verify functions."""

    def __init__(self) -> None:
        self.config = SandboxConfig()
        self.received: list[Received] = []
        self.app = web.Application()
        self.app.router.add_post("/webhooks/twilio/status", self.twilio_status)
        self.app.router.add_post("/webhooks/twilio/inbound", self.twilio_inbound)
        self.app.router.add_post("/webhooks/whatsapp", self.whatsapp)
        self.app.router.add_post("/webhooks/telegram", self.telegram)
        self.app.router.add_post("/webhooks/email/inbound", self.email)

    def on(self, path: str) -> list[Received]:
        return [item for item in self.received if item.path == path]

    async def twilio_status(self, request: web.Request) -> web.Response:
        params = {key: str(value) for key, value in (await request.post()).items()}
        ok = verify_twilio_signature(
            self.config.twilio_auth_token, str(request.url), params, request.headers.get("X-Twilio-Signature")
        )
        self.received.append(Received(request.path, ok, parse_twilio_status(params, str(request.url))))
        return web.Response(status=204)

    async def twilio_inbound(self, request: web.Request) -> web.Response:
        params = {key: str(value) for key, value in (await request.post()).items()}
        ok = verify_twilio_signature(
            self.config.twilio_auth_token, str(request.url), params, request.headers.get("X-Twilio-Signature")
        )
        self.received.append(Received(request.path, ok, parse_twilio_inbound(params)))
        return web.Response(text="<Response/>", content_type="text/xml")

    async def whatsapp(self, request: web.Request) -> web.Response:
        raw = await request.read()
        ok = verify_whatsapp_signature(
            self.config.whatsapp_app_secret, raw, request.headers.get("X-Hub-Signature-256")
        )
        self.received.append(Received(request.path, ok, parse_whatsapp_webhook(json.loads(raw))))
        return web.Response(status=200)

    async def telegram(self, request: web.Request) -> web.Response:
        ok = verify_telegram_secret(TELEGRAM_SECRET, request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        self.received.append(Received(request.path, ok, parse_telegram_update(await request.json())))
        return web.Response(status=200)

    async def email(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.received.append(
            Received(request.path, True, parse_delivery_report(raw, EMAIL_SECRET) or parse_inbound_email(raw))
        )
        return web.Response(status=202)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[WebhookReceiver, str]]:
    hooks = WebhookReceiver()
    runner = web.AppRunner(hooks.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield hooks, f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


def sandbox_config(public_url: str, **overrides: Any) -> SandboxConfig:
    base = SandboxConfig(
        port=0,
        smtp_port=0,
        public_url=public_url,
        status_latency=(0.005, 0.02),
        chaos=ChaosConfig(hang_seconds=3.0),
        telegram_webhook_secret=TELEGRAM_SECRET,
        seed=7,
    )
    return dataclasses.replace(base, **overrides)


@pytest.fixture
async def sandbox(receiver: tuple[WebhookReceiver, str]) -> AsyncIterator[RunningSandbox]:
    async with run_sandbox(sandbox_config(receiver[1])) as running:
        yield running


def sms(
    message_id: int = 1, key: str = "key-1", to: str = CUSTOMER, body: str = "Your order shipped"
) -> OutboundMessage:
    return OutboundMessage(message_id=message_id, idempotency_key=key, channel=Channel.SMS, to=to, body=body)


def twilio_driver(sandbox: RunningSandbox, public_url: str, timeout: float = 5.0) -> TwilioSmsDriver:
    config = sandbox.state.config
    return TwilioSmsDriver(
        config.twilio_account_sid,
        config.twilio_auth_token,
        config.twilio_phone_number,
        base_url=sandbox.base_url,
        status_callback_url=f"{public_url}/webhooks/twilio/status",
        timeout_seconds=timeout,
    )


async def post_json(url: str, payload: dict[str, Any]) -> int:
    async with aiohttp.ClientSession() as session, session.post(url, json=payload) as response:
        return response.status


# --- Twilio -----------------------------------------------------------------------------------


async def test_twilios_own_client_deletes_a_finished_message_and_is_refused_one_on_its_way(
    sandbox: RunningSandbox, receiver: Any
) -> None:
    """twilio-python's `client.messages(sid).delete()`, as an operator's own script would call it: 204 for a
    finished message, then 20404; 20009 while the message is still on its way."""
    from twilio.base.exceptions import TwilioRestException
    from twilio.rest import Client

    driver = twilio_driver(sandbox, receiver[1])
    try:
        finished = (await driver.send(sms(message_id=51, key="delete-1"))).provider_message_id
        on_its_way = (await driver.send(sms(message_id=52, key="delete-2"))).provider_message_id
    finally:
        await driver.close()
    await sandbox.settle()
    pending = sandbox.state.find("twilio", on_its_way)
    assert pending is not None
    pending.status = "sending"
    config = sandbox.state.config
    client = Client(config.twilio_account_sid, config.twilio_auth_token)
    client.api.base_url = sandbox.base_url

    assert await asyncio.to_thread(lambda: client.messages(finished).delete()) is True
    for sid, status, code in ((finished, 404, 20404), (on_its_way, 409, 20009)):
        with pytest.raises(TwilioRestException) as refused:
            await asyncio.to_thread(lambda sid=sid: client.messages(sid).delete())
        assert (refused.value.status, refused.value.code) == (status, code)
    with pytest.raises(TwilioRestException) as gone:
        await asyncio.to_thread(lambda: client.messages(finished).fetch())
    assert gone.value.status == 404
    assert sandbox.state.find("twilio", on_its_way) is pending
    assert sandbox.state.totals()["deleted"] == 1


async def test_twilio_send_is_accepted_and_signed_receipts_arrive(
    sandbox: RunningSandbox, receiver: Any
) -> None:
    hooks, public_url = receiver
    driver = twilio_driver(sandbox, public_url)
    try:
        acceptance = await driver.send(sms(message_id=41))
    finally:
        await driver.close()
    assert acceptance.provider_message_id.startswith("SM") and len(acceptance.provider_message_id) == 34
    assert acceptance.status is MessageStatus.QUEUED
    await sandbox.settle()
    receipts = hooks.on("/webhooks/twilio/status")
    assert [r.verified for r in receipts] == [True, True, True]
    assert {r.parsed.status for r in receipts} == {
        MessageStatus.QUEUED,
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
    }
    assert {r.parsed.our_message_id for r in receipts} == {41}
    assert {r.parsed.provider_message_id for r in receipts} == {acceptance.provider_message_id}


async def test_twilio_resend_with_same_key_is_one_message(sandbox: RunningSandbox, receiver: Any) -> None:
    driver = twilio_driver(sandbox, receiver[1])
    try:
        first = await driver.send(sms(key="order-7-shipped"))
        second = await driver.send(sms(key="order-7-shipped"))
    finally:
        await driver.close()
    assert first.provider_message_id == second.provider_message_id
    seen = sandbox.state.messages_json("twilio")
    assert seen["accepted_per_idempotency_key"] == {"order-7-shipped": 1}
    assert seen["requests_per_idempotency_key"] == {"order-7-shipped": 2}
    assert sandbox.state.totals()["duplicates_suppressed"] == 1


@pytest.mark.parametrize(
    ("number", "code"),
    [("+15551239999", "21610"), ("+15005550001", "21211"), ("+15005550009", "21614"), ("12345", "21211")],
)
async def test_twilio_refusals_are_permanent(
    sandbox: RunningSandbox, receiver: Any, number: str, code: str
) -> None:
    sandbox.state.opt_out("+15551239999")
    driver = twilio_driver(sandbox, receiver[1])
    with pytest.raises(ProviderError) as refused:
        await driver.send(sms(to=number))
    await driver.close()
    assert refused.value.permanent and refused.value.code == code
    assert not refused.value.maybe_accepted


async def test_twilio_bad_credentials_are_retried_later(sandbox: RunningSandbox) -> None:
    config = sandbox.state.config
    driver = TwilioSmsDriver(config.twilio_account_sid, "wrong", config.twilio_phone_number, sandbox.base_url)
    with pytest.raises(ProviderError) as refused:
        await driver.send(sms())
    await driver.close()
    assert refused.value.code == "20003" and not refused.value.permanent and refused.value.retry_after


@pytest.mark.parametrize(("fault", "code"), [("429", "20429"), ("500", "20500"), ("503", "20503")])
async def test_twilio_chaos_faults_are_retryable(
    sandbox: RunningSandbox, receiver: Any, fault: str, code: str
) -> None:
    sandbox.state.force_faults("twilio", fault)
    driver = twilio_driver(sandbox, receiver[1])
    with pytest.raises(ProviderError) as refused:
        await driver.send(sms())
    await driver.close()
    error = refused.value
    assert not error.permanent and not error.maybe_accepted and error.code == code
    if fault == "429":
        assert error.retry_after == 1.0
    assert sandbox.state.totals()["injected_errors"] == 1


async def test_twilio_timeout_is_in_doubt_and_a_keyed_resend_does_not_duplicate(
    sandbox: RunningSandbox, receiver: Any
) -> None:
    sandbox.state.force_faults("twilio", "timeout")
    driver = twilio_driver(sandbox, receiver[1], timeout=0.5)
    try:
        with pytest.raises(ProviderError) as in_doubt:
            await driver.send(sms(key="in-doubt"))
        assert in_doubt.value.maybe_accepted and not in_doubt.value.permanent
        again = await driver.send(sms(key="in-doubt"))
    finally:
        await driver.close()
    assert sandbox.state.messages_json("twilio")["accepted_per_idempotency_key"] == {"in-doubt": 1}
    assert sandbox.state.messages[0].provider_message_id == again.provider_message_id


async def test_twilio_rate_limit_answers_429_and_counts_it(receiver: Any) -> None:
    config = sandbox_config(
        receiver[1], rate_limit_per_second=0.1, rate_limit_burst=2, send_status_webhooks=False
    )
    async with run_sandbox(config) as sandbox:
        driver = twilio_driver(sandbox, receiver[1])
        try:
            await driver.send(sms(key="a"))
            await driver.send(sms(key="b"))
            with pytest.raises(ProviderError) as limited:
                await driver.send(sms(key="c"))
        finally:
            await driver.close()
        assert limited.value.retry_after == 1.0 and limited.value.code == "20429"
        assert limited.value.channel_wide  # a rate limit pauses the channel, a 500 only its message
        assert sandbox.state.totals()["rate_limited_429s"] == 1


async def test_twilio_failure_rate_ends_in_undelivered_with_carrier_code(receiver: Any) -> None:
    hooks, public_url = receiver
    async with run_sandbox(sandbox_config(public_url, failure_rate=1.0)) as sandbox:
        driver = twilio_driver(sandbox, public_url)
        await driver.send(sms(message_id=9))
        await driver.close()
        await sandbox.settle()
    final = hooks.on("/webhooks/twilio/status")[-1].parsed
    assert final.status in (MessageStatus.UNDELIVERED, MessageStatus.FAILED)
    assert final.error_code in {"30003", "30005", "30006"} and final.error_detail


async def test_customer_stop_reaches_us_signed_and_opts_them_out(
    sandbox: RunningSandbox, receiver: Any
) -> None:
    hooks, public_url = receiver
    assert (
        await post_json(f"{sandbox.base_url}/_sandbox/customer/sms", {"from": CUSTOMER, "body": "STOP"})
        == 202
    )
    await sandbox.settle()
    (inbound,) = hooks.on("/webhooks/twilio/inbound")
    assert inbound.verified and inbound.parsed.body == "STOP" and inbound.parsed.from_address == CUSTOMER
    driver = twilio_driver(sandbox, public_url)
    with pytest.raises(ProviderError) as refused:
        await driver.send(sms())
    await driver.close()
    assert refused.value.code == "21610"


async def test_twilio_fetch_and_list_answer_real_resources(sandbox: RunningSandbox, receiver: Any) -> None:
    driver = twilio_driver(sandbox, receiver[1])
    acceptance = await driver.send(sms())
    await driver.close()
    config = sandbox.state.config
    auth = {"Authorization": aiohttp.encode_basic_auth(config.twilio_account_sid, config.twilio_auth_token)}
    api = f"{sandbox.base_url}/2010-04-01/Accounts/{config.twilio_account_sid}"
    async with aiohttp.ClientSession(headers=auth) as session:
        async with session.get(f"{api}/Messages/{acceptance.provider_message_id}.json") as one:
            assert (await one.json())["to"] == CUSTOMER
        async with session.get(f"{api}/Messages.json", params={"To": CUSTOMER}) as listing:
            assert len((await listing.json())["messages"]) == 1


# --- WhatsApp ---------------------------------------------------------------------------------


def whatsapp_driver(sandbox: RunningSandbox) -> WhatsAppCloudDriver:
    config = sandbox.state.config
    return WhatsAppCloudDriver(
        config.whatsapp_token, config.whatsapp_phone_number_id, base_url=sandbox.base_url
    )


def whatsapp(message_id: int, key: str, template: WhatsAppTemplateCall | None = None) -> OutboundMessage:
    return OutboundMessage(
        message_id=message_id,
        idempotency_key=key,
        channel=Channel.WHATSAPP,
        to=CUSTOMER,
        body="Your table is ready",
        whatsapp_template=template,
    )


async def test_whatsapp_free_text_outside_24h_window_is_permanent_131047(sandbox: RunningSandbox) -> None:
    driver = whatsapp_driver(sandbox)
    with pytest.raises(ProviderError) as refused:
        await driver.send(whatsapp(1, "wa-1"))
    await driver.close()
    assert refused.value.permanent and refused.value.code == "131047"


async def test_whatsapp_customer_message_opens_window_and_receipts_carry_our_id(
    sandbox: RunningSandbox, receiver: Any
) -> None:
    hooks, _ = receiver
    reply = {"from": CUSTOMER, "body": "Is my table ready?", "name": "Ada"}
    assert await post_json(f"{sandbox.base_url}/_sandbox/customer/whatsapp", reply) == 202
    driver = whatsapp_driver(sandbox)
    try:
        acceptance = await driver.send(whatsapp(77, "wa-77"))
    finally:
        await driver.close()
    assert acceptance.provider_message_id.startswith("wamid.")
    await sandbox.settle()
    deliveries = hooks.on("/webhooks/whatsapp")
    assert all(item.verified for item in deliveries)
    inbound = [m for item in deliveries for m in item.parsed[0]]
    receipts = [r for item in deliveries for r in item.parsed[1]]
    assert inbound[0].body == "Is my table ready?" and inbound[0].sender_name == "Ada"
    assert [r.status for r in receipts] == [MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ]
    assert {r.our_message_id for r in receipts} == {77}


async def test_a_whatsapp_list_is_accepted_within_meta_s_limits_and_a_tap_comes_back_as_its_row(
    sandbox: RunningSandbox, receiver: Any
) -> None:
    hooks, _ = receiver
    assert (
        await post_json(f"{sandbox.base_url}/_sandbox/customer/whatsapp", {"from": CUSTOMER, "body": "hi"})
        == 202
    )
    choices = Choices(
        "Rate us, please, if you have a minute",  # over Meta's 20 characters: the driver cuts it
        tuple(Choice(f"csat:{n}", str(n), "x" * 80) for n in (5, 4, 3)),
    )
    driver = whatsapp_driver(sandbox)
    try:
        listed = await driver.send(
            dataclasses.replace(whatsapp(81, "wa-81"), body="How did we do?", choices=choices)
        )
        # What Meta refuses, the sandbox refuses as Meta does (131009): eleven rows.
        too_many = Choices("Pick", tuple(Choice(str(n), str(n)) for n in range(11)))
        body = WhatsAppCloudDriver.request_body(dataclasses.replace(whatsapp(82, "wa-82"), choices=too_many))
        body["interactive"]["action"]["sections"][0]["rows"].append({"id": "x", "title": "x"})
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{sandbox.base_url}/v21.0/{sandbox.state.config.whatsapp_phone_number_id}/messages",
                json=body,
                headers={"Authorization": f"Bearer {sandbox.state.config.whatsapp_token}"},
            ) as refused,
        ):
            assert refused.status == 400
            assert (await refused.json())["error"]["code"] == 131009
    finally:
        await driver.close()
    [shown] = [m for m in sandbox.state.messages if m.provider_message_id == listed.provider_message_id]
    assert shown.details["type"] == "interactive" and len(shown.details["choices"]) == 3
    assert shown.body == "How did we do? [list: Rate us, please, if]"  # cut at 20, trailing space dropped
    assert all(len(row["description"]) == 72 for row in shown.details["choices"])
    # The customer taps "4": the webhook carries the row, and our reader reads its title as the words.
    tap = {"from": CUSTOMER, "choice": "csat:4"}
    assert await post_json(f"{sandbox.base_url}/_sandbox/customer/whatsapp", tap) == 202
    assert (
        await post_json(f"{sandbox.base_url}/_sandbox/customer/whatsapp", {"from": CUSTOMER, "choice": "9"})
        == 400
    )
    await sandbox.settle()
    inbound = [m for item in hooks.on("/webhooks/whatsapp") for m in item.parsed[0]]
    assert [m.body for m in inbound] == ["hi", "4"]


async def test_whatsapp_template_needs_no_window_and_resend_is_deduplicated(sandbox: RunningSandbox) -> None:
    parameters = [
        {"type": "text", "text": value} for value in ("Ada", "N-1042", "https://track.example/1042")
    ]
    template = WhatsAppTemplateCall(
        "nw_order_shipped", "en_US", ({"type": "body", "parameters": parameters},)
    )
    driver = whatsapp_driver(sandbox)
    try:
        first = await driver.send(whatsapp(5, "wa-tpl", template))
        second = await driver.send(whatsapp(5, "wa-tpl", template))
    finally:
        await driver.close()
    assert first.provider_message_id == second.provider_message_id
    (sent,) = sandbox.state.messages
    assert sent.template == "nw_order_shipped" and sent.our_message_id == 5


async def test_whatsapp_rate_limit_is_retryable(sandbox: RunningSandbox) -> None:
    sandbox.state.force_faults("whatsapp_cloud", "429")
    driver = whatsapp_driver(sandbox)
    with pytest.raises(ProviderError) as limited:
        await driver.send(whatsapp(1, "wa-rl", WhatsAppTemplateCall("hello", "en")))
    await driver.close()
    assert limited.value.code == "130429" and not limited.value.permanent and limited.value.retry_after
    assert limited.value.channel_wide


async def test_whatsapp_failure_reported_in_webhook_when_configured(receiver: Any) -> None:
    hooks, public_url = receiver
    async with run_sandbox(sandbox_config(public_url, whatsapp_async_errors=True)) as sandbox:
        driver = whatsapp_driver(sandbox)
        await driver.send(whatsapp(3, "wa-async"))
        await driver.close()
        await sandbox.settle()
    (failed,) = [r for item in hooks.on("/webhooks/whatsapp") for r in item.parsed[1]]
    assert (
        failed.status is MessageStatus.FAILED and failed.error_code == "131047" and failed.our_message_id == 3
    )


# --- Telegram ---------------------------------------------------------------------------------


def telegram_driver(sandbox: RunningSandbox) -> TelegramDriver:
    return TelegramDriver(sandbox.state.config.telegram_bot_token, base_url=sandbox.base_url)


async def test_telegram_send_through_aiogram(sandbox: RunningSandbox) -> None:
    driver = telegram_driver(sandbox)
    try:
        acceptance = await driver.send(
            OutboundMessage(
                message_id=1, idempotency_key="tg", channel=Channel.TELEGRAM, to="424242", body="Hi"
            )
        )
        photo = await driver.bot.send_photo(424242, BufferedInputFile(b"\x89PNG fake", filename="chart.png"))
        document = await driver.bot.send_document(
            424242, BufferedInputFile(b"a,b\n1,2\n", filename="report.csv")
        )
        me = await driver.bot.get_me()
    finally:
        await driver.close()
    assert acceptance.provider_message_id == "424242:1"
    # Telegram sends no receipts: the message standing in the chat is its delivery.
    assert acceptance.status is MessageStatus.DELIVERED
    assert photo.photo and photo.message_id == 2 and me.is_bot
    assert document.document is not None and document.document.file_name == "report.csv"
    calls = [call["method"] for call in sandbox.state.telegram_calls]
    assert calls == ["sendMessage", "sendPhoto", "sendDocument", "getMe"]
    assert sandbox.state.telegram_calls[1]["files"]


async def test_telegram_blocked_user_is_permanent_and_bad_token_is_not(sandbox: RunningSandbox) -> None:
    sandbox.state.opt_out("5150")
    driver = telegram_driver(sandbox)
    message = OutboundMessage(
        message_id=1, idempotency_key="tg", channel=Channel.TELEGRAM, to="5150", body="Hi"
    )
    with pytest.raises(ProviderError) as blocked:
        await driver.send(message)
    await driver.close()
    assert blocked.value.permanent and blocked.value.code == "403"
    wrong = TelegramDriver("42:wrong-token", base_url=sandbox.base_url)
    with pytest.raises(ProviderError) as unauthorized:
        await wrong.send(message)
    await wrong.close()
    assert not unauthorized.value.permanent


async def test_telegram_flood_control_gives_retry_after(sandbox: RunningSandbox) -> None:
    sandbox.state.force_faults("telegram", "429")
    driver = telegram_driver(sandbox)
    with pytest.raises(ProviderError) as limited:
        await driver.send(OutboundMessage(1, "k", Channel.TELEGRAM, "77", "Hi"))
    await driver.close()
    assert limited.value.retry_after == 1.0


async def test_telegram_customer_update_arrives_with_secret(sandbox: RunningSandbox, receiver: Any) -> None:
    hooks, _ = receiver
    update = {"chat_id": 424242, "text": "Hello bot", "first_name": "Grace"}
    assert await post_json(f"{sandbox.base_url}/_sandbox/customer/telegram", update) == 202
    await sandbox.settle()
    (arrived,) = hooks.on("/webhooks/telegram")
    assert arrived.verified and arrived.parsed.body == "Hello bot" and arrived.parsed.sender_name == "Grace"


async def test_telegram_updates_queue_for_get_updates_without_webhook(receiver: Any) -> None:
    async with run_sandbox(sandbox_config(receiver[1], telegram_webhook_secret=None)) as sandbox:
        await post_json(f"{sandbox.base_url}/_sandbox/customer/telegram", {"chat_id": 9, "text": "queued"})
        driver = telegram_driver(sandbox)
        try:
            updates = await driver.bot.get_updates(timeout=1)
            assert updates[0].message is not None and updates[0].message.text == "queued"
            assert await driver.bot.get_updates(offset=updates[0].update_id + 1, timeout=0) == []
        finally:
            await driver.close()


# --- Email ------------------------------------------------------------------------------------


def email_driver(sandbox: RunningSandbox, timeout_seconds: float = 30.0) -> SmtpEmailDriver:
    return SmtpEmailDriver(
        sandbox.host,
        sandbox.smtp_port,
        None,
        None,
        "Clinic <hello@clinic.example>",
        start_tls=False,
        signing_secret=EMAIL_SECRET,
        timeout_seconds=timeout_seconds,
    )


def newsletter(key: str = "mail-1", to: str = "ada@example.com") -> OutboundMessage:
    return OutboundMessage(
        message_id=12,
        idempotency_key=key,
        channel=Channel.EMAIL,
        to=to,
        body="Spring offers",
        subject="Spring at the clinic",
        html_body="<p>Spring offers</p>",
        unsubscribe_url="https://switchboard.example/u/abc",
    )


async def test_email_carries_one_click_unsubscribe_and_duplicate_message_id_is_counted(
    sandbox: RunningSandbox,
) -> None:
    driver = email_driver(sandbox)
    first = await driver.send(newsletter())
    second = await driver.send(newsletter())
    assert first.provider_message_id == second.provider_message_id
    assert first.provider_message_id.endswith("@clinic.example>")
    (stored,) = sandbox.state.emails
    assert stored.headers["List-Unsubscribe"] == "<https://switchboard.example/u/abc>"
    assert stored.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert stored.headers["X-Switchboard-Message-Id"] == "12"
    assert stored.html is not None and "Spring offers" in stored.text
    assert sandbox.state.email_copies[first.provider_message_id] == 2
    assert sandbox.state.totals()["duplicates_suppressed"] == 1


#: A one-page PDF, as the attachment rules recognise one by its first bytes.
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


async def test_a_staff_file_goes_as_a_mime_attachment_when_its_bytes_are_handed_over(
    sandbox: RunningSandbox,
) -> None:
    driver = email_driver(sandbox)
    link = "https://switchboard.example/media/7/abc?sig=x"
    reply = dataclasses.replace(
        newsletter("reply-1"),
        html_body=None,
        unsubscribe_url=None,
        body=f"Here is your invoice.\n\n📎 invoice.pdf (48 B): {link}",
        attachment=OutboundFile(link, "invoice.pdf", "application/pdf", 7, "a" * 64, content=PDF),
    )
    await driver.send(reply)
    # Without the bytes (the dispatcher could not read the kept file) the email goes with the link alone.
    await driver.send(
        dataclasses.replace(
            reply,
            idempotency_key="reply-2",
            attachment=OutboundFile(link, "x.pdf", "application/pdf", 7, "a" * 64),
        )
    )
    sent = [message_from_bytes(e.raw, policy=policy.default) for e in sandbox.state.emails]
    attached = [
        [
            (part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
            for part in m.iter_attachments()
        ]  # type: ignore[attr-defined]
        for m in sent
    ]
    assert attached == [[("invoice.pdf", "application/pdf", PDF)], []]
    assert all("📎" in (m.get_body(("plain",)).get_content()) for m in sent)  # type: ignore[union-attr]


async def test_email_to_unknown_mailbox_is_permanent(sandbox: RunningSandbox) -> None:
    sandbox.state.opt_out("gone@example.com")
    with pytest.raises(ProviderError) as refused:
        await email_driver(sandbox).send(newsletter(to="gone@example.com"))
    assert refused.value.permanent and refused.value.code == "550"


async def test_email_temporary_refusal_is_retryable(sandbox: RunningSandbox) -> None:
    sandbox.state.force_faults("smtp", "503")
    with pytest.raises(ProviderError) as refused:
        await email_driver(sandbox).send(newsletter())
    assert not refused.value.permanent and refused.value.code == "451"


async def test_email_whose_answer_never_comes_is_in_doubt_but_was_kept(sandbox: RunningSandbox) -> None:
    sandbox.state.force_faults("smtp", "timeout")
    driver = email_driver(sandbox, timeout_seconds=0.5)
    with pytest.raises(ProviderError) as lost:
        await driver.send(newsletter())
    assert lost.value.maybe_accepted and not lost.value.permanent
    assert [email.subject for email in sandbox.state.emails] == ["Spring at the clinic"]
    assert sandbox.state.totals()["injected_errors"] == 1


async def test_sandbox_bounce_is_read_back_as_undelivered(sandbox: RunningSandbox) -> None:
    message_id = (await email_driver(sandbox).send(newsletter())).provider_message_id
    receipt = parse_delivery_report(bounce_report(sandbox.state.emails[0], "sandbox.test"), EMAIL_SECRET)
    assert receipt is not None
    assert receipt.provider_message_id == message_id and receipt.our_message_id == 12
    assert receipt.status is MessageStatus.UNDELIVERED and receipt.error_code == "5.1.1"


async def test_a_customer_email_asks_for_a_delivery_report_and_it_comes_back_as_delivered(
    sandbox: RunningSandbox, receiver: Any
) -> None:
    """The relay offers DSN, so the driver asks for a report on delivery; the sandbox posts it to the inbound
    webhook as a real relay mails it to the envelope sender, and it reads back as DELIVERED for our row."""
    hooks, _ = receiver
    message_id = (await email_driver(sandbox).send(newsletter())).provider_message_id
    await sandbox.settle()
    (report,) = hooks.on("/webhooks/email/inbound")
    assert isinstance(report.parsed, DeliveryReceipt)
    assert report.parsed.status is MessageStatus.DELIVERED
    assert report.parsed.provider_message_id == message_id and report.parsed.our_message_id == 12


async def test_a_bounce_comes_back_over_the_wire_and_never_asked_means_no_report(receiver: Any) -> None:
    hooks, url = receiver
    async with run_sandbox(sandbox_config(url, failure_rate=1.0)) as running:
        await email_driver(running).send(newsletter())
        await running.settle()
        (bounce,) = hooks.on("/webhooks/email/inbound")
        assert isinstance(bounce.parsed, DeliveryReceipt)
        assert bounce.parsed.status is MessageStatus.UNDELIVERED and bounce.parsed.our_message_id == 12
        # The console's list of emails Switchboard sent says what was reported back for each.
        assert running.state.emails[0].report == "bounced (5.1.1)"
        async with aiohttp.ClientSession() as session, session.get(f"{running.base_url}/_sandbox/") as page:
            html = await page.text()
        sent = html.split('id="emails-sent"')[1]
        assert "<th>Reported back</th>" in sent and "<td>bounced (5.1.1)</td>" in sent
        assert (
            "Email from customers" in html and 'Emails Switchboard sends are <a href="#emails-sent">' in html
        )
    async with run_sandbox(sandbox_config(url)) as running:
        # A sender that asks for no report at all (NOTIFY=NEVER) gets none.
        message = email_driver(running).build_email(newsletter(key="mail-2"))
        await aiosmtplib.send(
            message, hostname=running.host, port=running.smtp_port, rcpt_options=["NOTIFY=NEVER"]
        )
        await running.settle()
        assert len(running.state.emails) == 1 and len(hooks.on("/webhooks/email/inbound")) == 1


async def test_a_relay_without_delivery_reports_is_not_asked_for_them() -> None:
    """aiosmtpd's own server offers no DSN and refuses its parameters (555): the driver must not send them."""
    received: list[Any] = []

    class Keep:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope)
            return "250 OK"

    port = free_port("127.0.0.1")
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    await asyncio.to_thread(controller.start)
    try:
        driver = SmtpEmailDriver(
            "127.0.0.1", port, None, None, "Clinic <hello@clinic.example>", start_tls=False
        )
        accepted = await driver.send(newsletter())
    finally:
        await asyncio.to_thread(controller.stop)
    assert accepted.status is MessageStatus.SENT
    (envelope,) = received
    assert envelope.rcpt_tos == ["ada@example.com"] and envelope.rcpt_options == []


async def test_a_burst_of_customer_messages_waits_in_the_queue_and_is_delivered_not_dropped(
    receiver: tuple[WebhookReceiver, str],
) -> None:
    """A receiver that falls behind gets every webhook late while the queue holds them; past the queue one is
    dropped, and then it is counted (webhooks_dropped), never silent."""
    hooks, url = receiver
    config = sandbox_config(url, webhook_workers=1)
    async with run_sandbox(config) as running:
        for n in range(60):
            payload = {"from": f"4915100000{n:03d}", "body": f"message {n}"}
            assert await post_json(f"{running.base_url}/_sandbox/customer/whatsapp", payload) == 202
        await running.settle(30)
        assert len(hooks.on("/webhooks/whatsapp")) == 60
        assert running.state.totals()["webhooks_dropped"] == 0

    # A receiver that never answers in time, and a queue of two: the rest are dropped, each counted.
    async def stalls(_request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response()

    stalled = web.Application()
    stalled.router.add_post("/webhooks/whatsapp", stalls)
    runner = web.AppRunner(stalled)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        slow = f"http://127.0.0.1:{runner.addresses[0][1]}"
        tiny = sandbox_config(
            slow, webhook_workers=1, webhook_queue_size=2, webhook_timeout_seconds=0.3, webhook_max_attempts=1
        )
        async with run_sandbox(tiny) as running:
            for n in range(20):
                payload = {"from": f"4915100001{n:03d}", "body": f"burst {n}"}
                assert await post_json(f"{running.base_url}/_sandbox/customer/whatsapp", payload) == 202
            totals = running.state.totals()
            assert (
                totals["webhooks_dropped"] >= 15 and totals["webhook_failures"] >= totals["webhooks_dropped"]
            )
    finally:
        await runner.cleanup()


async def test_customer_email_reaches_inbound_endpoint(sandbox: RunningSandbox, receiver: Any) -> None:
    hooks, _ = receiver
    payload = {"from": "Ada <ada@example.com>", "subject": "Question", "body": "Can I move my booking?"}
    assert await post_json(f"{sandbox.base_url}/_sandbox/customer/email", payload) == 202
    await sandbox.settle()
    (arrived,) = hooks.on("/webhooks/email/inbound")
    assert arrived.parsed.body == "Can I move my booking?" and arrived.parsed.sender_name == "Ada"
    # The sandbox dates its mail "-0000", as many relays do: still a moment in UTC, which storage needs.
    assert arrived.parsed.received_at.utcoffset() == timedelta(0)


# --- Console ----------------------------------------------------------------------------------


async def test_console_page_lists_messages_escaped_and_stats_answer(sandbox: RunningSandbox) -> None:
    await post_json(f"{sandbox.base_url}/_sandbox/customer/sms", {"from": CUSTOMER, "body": "<b>hi</b>"})
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{sandbox.base_url}/_sandbox/") as page:
            html = await page.text()
        async with session.get(f"{sandbox.base_url}/_sandbox/stats") as stats:
            numbers = await stats.json()
        async with session.post(f"{sandbox.base_url}/_sandbox/reset") as reset:
            assert reset.status == 200
    assert "&lt;b&gt;hi&lt;/b&gt;" in html and "<b>hi</b>" not in html
    assert set(numbers) >= {"accepted", "duplicates_suppressed", "rate_limited_429s", "webhooks_sent"}
    assert sandbox.state.messages == []


async def test_with_telegram_off_a_send_fails_at_once_in_words_and_calls_nobody() -> None:
    """An empty token (a business without Telegram): the message fails now, not after a day of retries."""
    driver = TelegramDriver("", "http://127.0.0.1:9")  # nothing listens there; nothing may be called
    message = OutboundMessage(
        message_id=1, idempotency_key="k1", channel=Channel.TELEGRAM, to="12345", body="Hello"
    )
    with pytest.raises(ProviderError) as failed:
        await driver.send(message)
    await driver.close()
    assert (failed.value.code, failed.value.permanent) == ("telegram_off", True)
    assert str(failed.value) == "Telegram is off: SWITCHBOARD_TELEGRAM_BOT_TOKEN is empty"
