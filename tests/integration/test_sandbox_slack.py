"""The sandbox's Slack stand-in through slack_sdk itself, and slash commands typed there reaching Switchboard."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
import uvicorn
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from api.app import create_app
from api.sandbox import RunningSandbox, SandboxConfig, run_sandbox
from api.sandbox.slack_people import northwind_slack_staff
from api.sandbox.slack_workspace import BOT_USER_ID
from bot.command_runner import Via
from bot.replies import Button, Field, Image, Reply
from bot.slack.app import build_slack_app
from storage.seeding.catalogue import staff_rows
from switchboard.delivery import sandbox_config
from switchboard.settings import Settings
from switchboard.wiring import build_container

CHANNEL = "C0SWITCHBOARD"
NOT_INVITED = "C0GENERAL"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
TS = re.compile(r"^\d{10}\.\d{6}$")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def config(**overrides: Any) -> SandboxConfig:
    base = SandboxConfig(port=0, smtp_port=0, send_status_webhooks=False)
    return dataclasses.replace(base, **overrides)


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with run_sandbox(config()) as running:
        yield running


def web_client(sandbox: RunningSandbox, token: str | None = None) -> AsyncWebClient:
    return AsyncWebClient(
        token=sandbox.state.config.slack_bot_token if token is None else token,
        base_url=f"{sandbox.base_url}/slack/api/",
    )


async def get_json(url: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        assert answer.status == 200, await answer.text()
        return await answer.json()


async def channel_messages(sandbox: RunningSandbox, channel: str = CHANNEL) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (
        await get_json(f"{sandbox.base_url}/_sandbox/slack/channels/{channel}/messages")
    )["messages"]
    return found


# --- the Web API through slack_sdk ----------------------------------------------------------------


async def test_auth_test_answers_for_the_bot_and_refuses_a_wrong_or_missing_token(
    sandbox: RunningSandbox,
) -> None:
    me = await web_client(sandbox).auth_test()
    assert me["ok"] is True and me["user_id"] == BOT_USER_ID and me["team_id"] == "T0NORTHWIND"
    assert me["bot_id"].startswith("B")
    with pytest.raises(SlackApiError) as wrong:
        await web_client(sandbox, token="xoxb-not-the-token").auth_test()
    assert wrong.value.response["error"] == "invalid_auth" and wrong.value.response.status_code == 200
    with pytest.raises(SlackApiError) as missing:
        await web_client(sandbox, token="").chat_postMessage(channel=CHANNEL, text="hi")
    assert missing.value.response["error"] == "not_authed"


async def test_a_message_and_its_thread_reply_keep_slack_timestamps(sandbox: RunningSandbox) -> None:
    client = web_client(sandbox)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Revenue* is up"}}]
    root = await client.chat_postMessage(channel=CHANNEL, text="Revenue is up", blocks=blocks)
    assert root["channel"] == CHANNEL and TS.match(root["ts"])
    assert root["message"]["bot_id"] and root["message"]["blocks"] == blocks
    reply = await client.chat_postMessage(channel=CHANNEL, text="Details", thread_ts=root["ts"])
    assert reply["message"]["thread_ts"] == root["ts"] and float(reply["ts"]) > float(root["ts"])
    # A reply to a reply joins the root's thread, as in Slack.
    nested = await client.chat_postMessage(channel=CHANNEL, text="More", thread_ts=reply["ts"])
    assert nested["message"]["thread_ts"] == root["ts"]

    shown = await channel_messages(sandbox)
    assert [(m["text"], m.get("thread_ts")) for m in shown] == [
        ("Revenue is up", None),
        ("Details", root["ts"]),
        ("More", root["ts"]),
    ]


async def test_an_update_edits_the_message_in_place(sandbox: RunningSandbox) -> None:
    client = web_client(sandbox)
    posted = await client.chat_postMessage(channel=CHANNEL, text="Sent 0 of 3")
    updated = await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="Done: 3 sent")
    assert updated["ts"] == posted["ts"] and updated["text"] == "Done: 3 sent"
    assert updated["message"]["edited"]["user"] == BOT_USER_ID
    [shown] = await channel_messages(sandbox)
    assert shown["text"] == "Done: 3 sent" and shown["ts"] == posted["ts"]
    with pytest.raises(SlackApiError) as missing:
        await client.chat_update(channel=CHANNEL, ts="1700000000.000001", text="x")
    assert missing.value.response["error"] == "message_not_found"


async def test_files_upload_v2_takes_the_bytes_and_shares_them_in_the_thread(sandbox: RunningSandbox) -> None:
    client = web_client(sandbox)
    root = await client.chat_postMessage(channel=CHANNEL, text="Revenue, last 30 days")
    done = await client.files_upload_v2(
        file_uploads=[
            {"content": PNG, "filename": "revenue.png", "title": "Revenue by day", "alt_txt": "A chart"}
        ],
        channel=CHANNEL,
        thread_ts=root["ts"],
    )
    assert done["file"]["title"] == "Revenue by day" and done["file"]["mimetype"] == "image/png"
    assert done["file"]["size"] == len(PNG)
    shown = await channel_messages(sandbox)
    shared = shown[-1]
    assert shared["thread_ts"] == root["ts"] and shared["files"][0]["id"] == done["file"]["id"]
    async with aiohttp.ClientSession() as session, session.get(shared["files"][0]["url_private"]) as download:
        assert await download.read() == PNG


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
async def test_slack_refusals_come_back_as_slack_errors(sandbox: RunningSandbox) -> None:
    client = web_client(sandbox)

    async def error_of(call: Callable[[], Awaitable[Any]]) -> str:
        with pytest.raises(SlackApiError) as refused:
            await call()
        return str(refused.value.response["error"])

    assert (
        await error_of(lambda: client.chat_postMessage(channel="C0NOSUCH", text="x")) == "channel_not_found"
    )
    assert await error_of(lambda: client.chat_postMessage(channel=NOT_INVITED, text="x")) == "not_in_channel"
    assert await error_of(lambda: client.chat_postMessage(channel=CHANNEL, text="")) == "no_text"
    too_many = [{"type": "divider"}] * 51
    assert await error_of(lambda: client.chat_postMessage(channel=CHANNEL, text="x", blocks=too_many)) == (
        "invalid_blocks"
    )
    assert await error_of(lambda: client.chat_postEphemeral(channel=CHANNEL, user="U0NOBODY", text="x")) == (
        "user_not_found"
    )
    assert await error_of(lambda: client.views_open(trigger_id="1.2.3", view={"type": "modal"})) == (
        "invalid_trigger_id"
    )
    assert await error_of(
        lambda: client.files_completeUploadExternal(
            files=[{"id": "F0NOSUCH", "title": "x"}], channel_id=CHANNEL
        )
    ) == ("file_not_found")
    # files_upload_v2 takes a channel id only; a name is refused after the bytes went up (as in Slack).
    by_name = await error_of(
        lambda: client.files_upload_v2(content=PNG, filename="a.png", channel="#switchboard")
    )
    assert by_name == "invalid_arguments"
    assert await error_of(lambda: client.api_call("chat.scheduleMessage", json={})) == "unknown_method"
    assert await channel_messages(sandbox) == []


async def test_an_ephemeral_message_is_only_for_its_user(sandbox: RunningSandbox) -> None:
    answer = await web_client(sandbox).chat_postEphemeral(
        channel=CHANNEL, user="U0ADMIN", text="Just for you"
    )
    assert TS.match(answer["message_ts"])
    [shown] = await channel_messages(sandbox)
    assert shown["visible_to"] == "U0ADMIN"


# --- slash commands typed in the sandbox -----------------------------------------------------------


@dataclass
class Receiver:
    """A stand-in for Switchboard's /slack/events that checks the signature and keeps what arrived."""

    secret: str
    received: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        if not SignatureVerifier(self.secret).is_valid_request(body, dict(request.headers)):
            return web.Response(status=401)
        self.received.append((body, dict(request.headers)))
        return web.Response(status=200)


async def type_command(
    sandbox: RunningSandbox, text: str, user: str = "U0ADMIN", channel: str = CHANNEL
) -> Any:
    payload = {"user": user, "channel": channel, "text": text}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{sandbox.base_url}/_sandbox/slack/command", json=payload) as answer,
    ):
        assert answer.status == 202, await answer.text()
        return await answer.json()


async def test_a_typed_command_is_posted_signed_with_a_response_url_back_to_the_sandbox() -> None:
    receiver = Receiver(secret="sandbox-slack-signing-secret")
    app = web.Application()
    app.router.add_post("/slack/events", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with run_sandbox(config(public_url=f"http://127.0.0.1:{port}")) as sandbox:
            answer = await type_command(sandbox, "/sb revenue last 30 days")
            assert answer["status"] == 200 and answer["outcome"] == "acknowledged"
            [(body, headers)] = receiver.received
            assert headers["Content-Type"] == "application/x-www-form-urlencoded"
            form = {key: values[0] for key, values in parse_qs(body).items()}
            assert form["command"] == "/sb" and form["text"] == "revenue last 30 days"
            assert form["user_id"] == "U0ADMIN" and form["team_id"] == "T0NORTHWIND"
            assert form["channel_id"] == CHANNEL and form["trigger_id"]
            assert form["response_url"].startswith(f"{sandbox.base_url}/slack/commands/T0NORTHWIND/")

            # Switchboard answers on the response_url: in the channel for everyone, or for the asker only.
            async with aiohttp.ClientSession() as session:
                for response_type in ("in_channel", "ephemeral"):
                    posted = {"text": f"{response_type} answer", "response_type": response_type}
                    async with session.post(form["response_url"], json=posted) as reply:
                        assert reply.status == 200 and await reply.text() == "ok"
                for _ in range(3):  # five uses in all
                    async with session.post(form["response_url"], json={"text": "again"}) as reply:
                        assert reply.status == 200
                async with session.post(form["response_url"], json={"text": "sixth"}) as reply:
                    assert reply.status == 404 and await reply.text() == "used_url"
            shown = await channel_messages(sandbox)
            assert [(m["text"], m.get("visible_to")) for m in shown[:3]] == [
                ("/sb revenue last 30 days", "U0ADMIN"),
                ("in_channel answer", None),
                ("ephemeral answer", "U0ADMIN"),
            ]

            # A wrong command is Slack's to refuse; it never reaches Switchboard.
            wrong = await type_command(sandbox, "/nope hello")
            assert wrong["status"] is None and "not a valid command" in wrong["outcome"]
            assert len(receiver.received) == 1
    finally:
        await runner.cleanup()


async def test_a_command_to_a_switchboard_that_is_not_running_says_so(sandbox: RunningSandbox) -> None:
    answer = await type_command(sandbox, "/sb help")
    assert answer["status"] is None and answer["outcome"].startswith("failed: dispatch_failed")


async def test_the_page_shows_the_channel_its_threads_and_the_people_to_type_as(
    sandbox: RunningSandbox,
) -> None:
    client = web_client(sandbox)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Revenue <last 30 days>"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Total*\n€12,400"}]},
        {
            "type": "actions",
            "elements": [{"type": "button", "text": {"type": "plain_text", "text": "By clinic"}}],
        },
    ]
    root = await client.chat_postMessage(channel=CHANNEL, text="Revenue", blocks=blocks)
    await client.files_upload_v2(
        content=PNG, filename="revenue.png", title="Revenue chart", channel=CHANNEL, thread_ts=root["ts"]
    )
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{sandbox.base_url}/_sandbox/slack?as=U0MANAGER1") as page,
    ):
        html = await page.text()
    assert "Revenue &lt;last 30 days&gt;" in html and "<b>Total</b>" in html
    assert 'class="label ' in html and "By clinic" in html
    assert 'class="thread"' in html and "Revenue chart" in html and "<img" in html
    assert '<option value="U0MANAGER1" selected>' in html and "U0STRANGER" in html


# --- configuration ---------------------------------------------------------------------------------


def test_the_sandbox_offers_exactly_the_demo_seeds_slack_staff() -> None:
    rows, _ = staff_rows(created_at=datetime(2026, 1, 1, tzinfo=UTC))
    seeded = {(row["slack_user_id"], row["name"]) for row in rows}
    offered = {(person.id, person.name) for person in northwind_slack_staff() if person.id != "U0STRANGER"}
    assert offered == seeded
    assert {row["slack_team_id"] for row in rows} == {SandboxConfig().slack_team_id}


def test_switchboard_talks_to_the_stand_in_while_the_sandbox_runs() -> None:
    settings = Settings(sandbox_port=9125)
    assert settings.slack_base_url == "http://127.0.0.1:9125/slack/api/"
    assert Settings(sandbox=False).slack_base_url == "https://slack.com/api/"
    assert Settings(slack_base_url="https://example.test/api/").slack_base_url == "https://example.test/api/"
    made = sandbox_config(settings)
    assert made.slack_bot_token == settings.slack_bot_token.get_secret_value()
    assert made.slack_signing_secret == settings.slack_signing_secret.get_secret_value()
    assert (
        "SWITCHBOARD_SLACK_BASE_URL"
        in Settings(
            sandbox=False, slack_base_url="http://127.0.0.1:8025/slack/api/"
        ).sandbox_endpoints_in_use()
    )


# --- the whole loop: the sandbox page -> Switchboard -> the stand-in --------------------------------


@dataclass
class ChartRunner:
    """The command layer's stand-in: a chart for the demo admin, nothing for anyone else."""

    asked: list[tuple[str, str | None, str | None]] = field(default_factory=list)

    async def run(
        self,
        text: str,
        *,
        slack_user_id: str | None = None,
        slack_team_id: str | None = None,
        telegram_user_id: int | None = None,
        via: Via,
    ) -> Reply | None:
        self.asked.append((text, slack_user_id, slack_team_id))
        if slack_user_id != "U0ADMIN":
            return None
        return Reply(
            text="Revenue in the last 30 days: €12,400.",
            title="Revenue",
            fields=(Field("Orders", "310"),),
            buttons=(Button("By clinic", "revenue last 30 days by clinic"),),
            images=(Image("revenue.png", PNG, "Revenue by day"),),
        )


@pytest.fixture
async def switchboard_and_sandbox(tmp_path: Path) -> AsyncIterator[tuple[RunningSandbox, ChartRunner]]:
    """Switchboard served over real HTTP, configured the way `make demo` configures it, and its sandbox."""
    web_port, sandbox_port = free_port(), free_port()
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}",
        public_url=f"http://127.0.0.1:{web_port}",
        sandbox_port=sandbox_port,
        sandbox_smtp_port=free_port(),
        worker_in_process=False,
    )
    runner = ChartRunner()
    container = build_container(settings)
    container.slack_app = build_slack_app(settings, runner)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, container), host="127.0.0.1", port=web_port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        async with run_sandbox(sandbox_config(settings, send_status_webhooks=False)) as sandbox:
            yield sandbox, runner
    finally:
        server.should_exit = True
        await serving
        await container.close()


async def wait_for_messages(
    sandbox: RunningSandbox, check: Callable[[list[dict[str, Any]]], bool], channel: str = CHANNEL
) -> list[dict[str, Any]]:
    shown: list[dict[str, Any]] = []
    for _ in range(250):
        shown = await channel_messages(sandbox, channel)
        if check(shown):
            return shown
        await asyncio.sleep(0.02)
    raise AssertionError(f"the channel never showed the answer: {shown}")


async def test_a_slash_command_typed_in_the_sandbox_is_answered_with_its_chart_in_the_channel(
    switchboard_and_sandbox: tuple[RunningSandbox, ChartRunner],
) -> None:
    sandbox, runner = switchboard_and_sandbox
    answer = await type_command(sandbox, "/sb revenue last 30 days")
    assert answer["status"] == 200 and answer["outcome"] == "acknowledged"

    shown = await wait_for_messages(sandbox, lambda messages: any(m.get("files") for m in messages))
    assert runner.asked == [("revenue last 30 days", "U0ADMIN", "T0NORTHWIND")]
    typed, posted, chart = shown
    assert typed["text"] == "/sb revenue last 30 days" and typed["visible_to"] == "U0ADMIN"
    assert "Revenue in the last 30 days" in posted["text"] and "visible_to" not in posted
    assert {block["type"] for block in posted["blocks"]} >= {"header", "actions"}
    assert chart["files"][0]["title"] == "Revenue by day" and chart["files"][0]["size"] == len(PNG)
    methods = [call["method"] for call in sandbox.state.slack.calls]
    assert methods[0] == "auth.test" and "files.completeUploadExternal" in methods


async def test_in_a_channel_without_the_bot_the_answer_comes_by_response_url_and_a_stranger_is_refused(
    switchboard_and_sandbox: tuple[RunningSandbox, ChartRunner],
) -> None:
    sandbox, _ = switchboard_and_sandbox
    await type_command(sandbox, "/sb revenue last 30 days", channel=NOT_INVITED)
    general = await wait_for_messages(
        sandbox, lambda messages: any(m["via"] == "response_url" for m in messages), NOT_INVITED
    )
    answered = [m for m in general if m["via"] == "response_url"]
    assert "Revenue in the last 30 days" in answered[0]["text"] and "visible_to" not in answered[0]

    await type_command(sandbox, "/sb revenue last 30 days", user="U0STRANGER")
    refused = await wait_for_messages(
        sandbox, lambda messages: any("only answers staff" in m["text"] for m in messages)
    )
    [refusal] = [m for m in refused if "only answers staff" in m["text"]]
    assert refusal["visible_to"] == "U0STRANGER"
