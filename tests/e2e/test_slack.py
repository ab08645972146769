"""Slack end to end: signed requests into POST /slack/events, replies observed at a fake Slack Web API."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import pytest
from httpx import Response
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pydantic import SecretStr
from slack_sdk.signature import SignatureVerifier

from api.app import create_app
from bot.command_runner import Via
from bot.replies import Button, Field, Image, Reply, Table
from bot.slack.app import build_slack_app
from bot.slack.progress import track_progress
from bot.slack.render import ACTION_PREFIX, CONFIRM_BLOCK_ID, render_blocks
from bot.slack.socket_mode import build_socket_mode_handler
from switchboard.settings import Settings
from switchboard.wiring import build_container
from tests.fakes.slack_api import FakeSlackApi

SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
STAFF = "U0ADMIN"

Client = AsyncTestClient[Litestar]


@dataclass
class FakeRunner:
    """Stands in for the command layer: answers a few commands for one known staff member."""

    asked: list[tuple[str, str | None]] = field(default_factory=list)

    async def run(
        self,
        text: str,
        *,
        slack_user_id: str | None = None,
        slack_team_id: str | None = None,
        telegram_user_id: int | None = None,
        via: Via,
    ) -> Reply | None:
        self.asked.append((text, slack_user_id))
        if slack_user_id != STAFF:
            return None
        if text == "help":
            return Reply(
                text="Try `sales this week`.",
                title="Switchboard",
                kind="help",
                buttons=(Button("Sales this week", "sales this week"),),
            )
        if text == "sales chart":
            return Reply(text="Sales are up 12%.", images=(Image("sales.png", PNG, "Sales by day"),))
        if text == "send campaign 7":
            return Reply(
                text="Send *Spring recall* to 1,204 customers?",
                confirm=True,
                buttons=(
                    Button("Send now", "send campaign 7 confirm", "primary"),
                    Button("Cancel", "cancel campaign 7", "danger"),
                ),
            )
        if text == "send campaign 7 confirm":
            return Reply(text="Sending Spring recall.", fields=(Field("Recipients", "1,204"),))
        if text == "customer 42":
            return Reply(text="Ada Lovelace, +44 7700 900123", private=True)
        return Reply(text=f"I don't know {text!r}.", kind="error")


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlackApi]:
    fake = FakeSlackApi(token=BOT_TOKEN)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(fake_slack: FakeSlackApi, tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}",
        slack_signing_secret=SECRET,  # type: ignore[arg-type]
        slack_bot_token=BOT_TOKEN,  # type: ignore[arg-type]
        slack_base_url=fake_slack.base_url,
        worker_in_process=False,
    )


@pytest.fixture
def runner() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
async def client(settings: Settings, runner: FakeRunner) -> AsyncIterator[Client]:
    container = build_container(settings)
    container.slack_app = build_slack_app(settings, runner, progress_interval=0.01)
    async with AsyncTestClient(app=create_app(settings, container)) as test_client:
        yield test_client
    await container.close()


def signed_headers(
    body: str, content_type: str, *, timestamp: int | None = None, secret: str = SECRET
) -> dict[str, str]:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }


def slash_body(text: str, fake: FakeSlackApi, user_id: str = STAFF, channel_id: str = "C1") -> str:
    return urlencode(
        {
            "command": "/sb",
            "text": text,
            "user_id": user_id,
            "channel_id": channel_id,
            "team_id": "T1",
            "response_url": fake.response_url(),
            "trigger_id": "1.2.3",
        }
    )


async def post_slash(
    client: Client, body: str, *, timestamp: int | None = None, secret: str = SECRET
) -> Response:
    headers = signed_headers(body, "application/x-www-form-urlencoded", timestamp=timestamp, secret=secret)
    return await client.post("/slack/events", content=body, headers=headers)


async def test_slash_command_is_acknowledged_at_once_and_answered_in_the_channel(
    client: Client, fake_slack: FakeSlackApi, runner: FakeRunner
) -> None:
    started = time.monotonic()
    response = await post_slash(client, slash_body("help", fake_slack))
    assert response.status_code == 200
    assert time.monotonic() - started < 3.0  # Slack gives up on an answer after 3 seconds

    [posted] = await fake_slack.wait_for("chat.postMessage")
    assert fake_slack.methods()[0] == "auth.test"  # single-workspace Bolt learns its bot id first
    assert posted.params["channel"] == "C1"
    assert "sales this week" in posted.params["text"] or "Switchboard" in posted.params["text"]
    blocks = posted.params["blocks"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "Switchboard"}}
    actions = next(b for b in blocks if b["type"] == "actions")
    assert actions["elements"][0]["value"] == "sales this week"
    assert runner.asked == [("help", STAFF)]


async def test_a_chart_is_uploaded_with_the_three_files_upload_v2_calls(
    client: Client, fake_slack: FakeSlackApi
) -> None:
    response = await post_slash(client, slash_body("sales chart", fake_slack))
    assert response.status_code == 200

    await fake_slack.wait_for("files.completeUploadExternal")
    upload_calls = [c for c in fake_slack.calls if c.method.startswith("files.") or c.method == "upload"]
    assert [c.method for c in upload_calls] == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    get_url, upload, complete = upload_calls
    assert get_url.params["filename"] == "sales.png"
    assert int(get_url.params["length"]) == len(PNG)
    assert upload.body == PNG
    assert complete.params["channel_id"] == "C1"
    assert json.loads(complete.params["files"])[0]["title"] == "Sales by day"
    assert fake_slack.of("chat.postMessage")[0].params["text"] == "Sales are up 12%."


async def test_a_button_press_runs_its_command_and_retires_the_confirmation(
    client: Client, fake_slack: FakeSlackApi, runner: FakeRunner
) -> None:
    await post_slash(client, slash_body("send campaign 7", fake_slack))
    [question] = await fake_slack.wait_for("chat.postMessage")
    actions = next(b for b in question.params["blocks"] if b["type"] == "actions")
    assert actions["block_id"] == CONFIRM_BLOCK_ID
    send_now = actions["elements"][0]
    assert send_now["style"] == "primary" and actions["elements"][1]["style"] == "danger"

    payload = {
        "type": "block_actions",
        "team": {"id": "T1"},
        "user": {"id": STAFF},
        "api_app_id": "A1",
        "trigger_id": "2.3.4",
        "channel": {"id": "C1"},
        "container": {"type": "message", "message_ts": "1700000000.000002", "channel_id": "C1"},
        "message": {"ts": "1700000000.000002", "text": question.params["text"]},
        "response_url": fake_slack.response_url("button"),
        "actions": [{**send_now, "block_id": CONFIRM_BLOCK_ID, "action_ts": "1700000001.0"}],
    }
    body = urlencode({"payload": json.dumps(payload)})
    response = await client.post(
        "/slack/events", content=body, headers=signed_headers(body, "application/x-www-form-urlencoded")
    )
    assert response.status_code == 200

    posts = await fake_slack.wait_for("chat.postMessage", count=2)
    assert posts[1].params["text"] == "Sending Spring recall."
    assert ("send campaign 7 confirm", STAFF) in runner.asked
    [retired] = fake_slack.of("response_url")
    assert retired.params["replace_original"] is True
    assert "chose *Send now*" in retired.params["text"]


async def test_a_private_answer_goes_only_to_the_asker(client: Client, fake_slack: FakeSlackApi) -> None:
    await post_slash(client, slash_body("customer 42", fake_slack))
    [answer] = await fake_slack.wait_for("response_url")
    assert answer.params["response_type"] == "ephemeral"
    assert "Ada Lovelace" in answer.params["text"]
    assert fake_slack.of("chat.postMessage") == []


async def test_a_forged_signature_is_refused_and_reaches_nothing(
    client: Client, fake_slack: FakeSlackApi, runner: FakeRunner
) -> None:
    response = await post_slash(client, slash_body("help", fake_slack), secret="not-the-secret")
    assert response.status_code == 401
    assert fake_slack.calls == [] and runner.asked == []


async def test_a_stale_timestamp_is_refused(
    client: Client, fake_slack: FakeSlackApi, runner: FakeRunner
) -> None:
    response = await post_slash(client, slash_body("help", fake_slack), timestamp=int(time.time()) - 400)
    assert response.status_code == 401
    assert fake_slack.calls == [] and runner.asked == []


async def test_an_app_mention_is_answered_in_its_thread(
    client: Client, fake_slack: FakeSlackApi, runner: FakeRunner
) -> None:
    event = {
        "type": "event_callback",
        "team_id": "T1",
        "api_app_id": "A1",
        "event_id": "Ev1",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": "T1", "user_id": "UBOT", "is_bot": True}],
        "event": {
            "type": "app_mention",
            "user": STAFF,
            "text": "<@UBOT> help",
            "channel": "C2",
            "ts": "1700000100.000100",
            "event_ts": "1700000100.000100",
        },
    }
    body = json.dumps(event)
    response = await client.post(
        "/slack/events", content=body, headers=signed_headers(body, "application/json")
    )
    assert response.status_code == 200

    [posted] = await fake_slack.wait_for("chat.postMessage")
    assert posted.params["channel"] == "C2"
    assert posted.params["thread_ts"] == "1700000100.000100"
    assert runner.asked == [("help", STAFF)]


async def test_a_direct_message_is_answered(
    client: Client, fake_slack: FakeSlackApi, runner: FakeRunner
) -> None:
    event = {
        "type": "event_callback",
        "team_id": "T1",
        "api_app_id": "A1",
        "event_id": "Ev2",
        "event_time": int(time.time()),
        "event": {
            "type": "message",
            "channel_type": "im",
            "user": STAFF,
            "text": "customer 42",
            "channel": "D1",
            "ts": "1700000200.000100",
        },
    }
    body = json.dumps(event)
    await client.post("/slack/events", content=body, headers=signed_headers(body, "application/json"))
    [posted] = await fake_slack.wait_for("chat.postMessage")
    # A DM is already private, so a private answer is an ordinary message there.
    assert posted.params["channel"] == "D1" and "Ada Lovelace" in posted.params["text"]


async def test_an_unknown_slack_user_gets_a_polite_refusal_and_nothing_else(
    client: Client, fake_slack: FakeSlackApi
) -> None:
    await post_slash(client, slash_body("customer 42", fake_slack, user_id="U0STRANGER"))
    [refusal] = await fake_slack.wait_for("response_url")
    assert refusal.params["response_type"] == "ephemeral"
    assert "only answers staff" in refusal.params["text"]
    # Their own member id, which the administrator links (`switchboard staff link EMAIL --slack ID`).
    assert "(your Slack member id is U0STRANGER)" in refusal.params["text"]
    assert "Ada" not in json.dumps(refusal.params)
    assert fake_slack.of("chat.postMessage") == [] and fake_slack.of("files.getUploadURLExternal") == []


async def test_progress_is_posted_once_and_updated_in_place_until_done(fake_slack: FakeSlackApi) -> None:
    from slack_sdk.web.async_client import AsyncWebClient

    snapshots = iter(
        [
            Reply(text="Sent 0 of 3", kind="progress", progress_key="c7"),
            Reply(text="Sent 0 of 3", kind="progress", progress_key="c7"),
            Reply(text="Sent 2 of 3", kind="progress", progress_key="c7"),
            Reply(text="Done: 3 sent", kind="answer"),
        ]
    )

    async def fetch_progress() -> Reply:
        return next(snapshots)

    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.base_url)
    ts = await track_progress(client, "C1", fetch_progress, interval=0.01)
    assert [c.method for c in fake_slack.calls] == ["chat.postMessage", "chat.update", "chat.update"]
    assert all(c.params["ts"] == ts for c in fake_slack.of("chat.update"))
    assert fake_slack.of("chat.update")[-1].params["text"] == "Done: 3 sent"


def test_a_table_renders_as_monospace_and_buttons_carry_their_command() -> None:
    reply = Reply(
        text="Top clinics",
        table=Table(columns=("Clinic", "Bookings"), rows=(("Camden", "120"), ("Leeds <North>", "98"))),
        buttons=(Button("Export", "export clinics"),),
    )
    blocks = render_blocks(reply)
    table_text = blocks[1]["text"]["text"]
    assert (
        table_text.startswith("```") and "Camden         120" in table_text and "&lt;North&gt;" in table_text
    )
    assert blocks[2]["elements"][0] == {
        "type": "button",
        "action_id": f"{ACTION_PREFIX}0",
        "text": {"type": "plain_text", "text": "Export", "emoji": True},
        "value": "export clinics",
    }


async def test_socket_mode_handler_is_built_from_the_app_token(
    settings: Settings, runner: FakeRunner
) -> None:
    with_token = settings.model_copy(update={"slack_app_token": SecretStr("xapp-1-test")})
    handler = build_socket_mode_handler(with_token, build_slack_app(with_token, runner))
    assert handler.app_token == "xapp-1-test"
    await handler.close_async()  # type: ignore[no-untyped-call]


def submission(values: dict[str, dict[str, object]]) -> str:
    payload = {
        "type": "view_submission",
        "team": {"id": "T1"},
        "user": {"id": STAFF, "team_id": "T1"},
        "view": {
            "type": "modal",
            "callback_id": "sb_compose",
            "private_metadata": json.dumps({"channel_id": "C1"}),
            "state": {"values": {block: {"value": value} for block, value in values.items()}},
        },
    }
    return urlencode({"payload": json.dumps(payload)})


async def test_send_alone_opens_the_compose_modal_and_its_submission_runs_send(
    client: Client, fake_slack: FakeSlackApi, runner: FakeRunner
) -> None:
    assert (await post_slash(client, slash_body("send", fake_slack))).status_code == 200
    [opened] = await fake_slack.wait_for("views.open")
    view = opened.params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["callback_id"] == "sb_compose" and opened.params["trigger_id"] == "1.2.3"
    assert {b["block_id"] for b in view["blocks"]} >= {"recipient", "channel", "template", "text"}
    assert runner.asked == []  # opening the form runs no command

    body = submission(
        {
            "recipient": {"value": "#12"},
            "channel": {"selected_option": {"value": "sms"}},
            "template": {"value": "appointment_reminder"},
            "variables": {"value": "clinic=Berlin"},
            "text": {"value": None},
        }
    )
    response = await client.post(
        "/slack/events", content=body, headers=signed_headers(body, "application/x-www-form-urlencoded")
    )
    assert response.status_code == 200
    for _ in range(100):
        if runner.asked:
            break
        await asyncio.sleep(0.02)
    assert runner.asked == [("send sms to #12 template appointment_reminder clinic=Berlin", STAFF)]


async def test_an_incomplete_compose_form_is_sent_back_with_field_errors(
    client: Client, fake_slack: FakeSlackApi, runner: FakeRunner
) -> None:
    body = submission(
        {
            "recipient": {"value": ""},
            "channel": {"selected_option": {"value": "sms"}},
            "template": {"value": "welcome"},
            "text": {"value": "hello"},
        }
    )
    response = await client.post(
        "/slack/events", content=body, headers=signed_headers(body, "application/x-www-form-urlencoded")
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {"recipient", "text"}
    assert runner.asked == []
