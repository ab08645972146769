"""The sandbox's Slack, second half: thread replies, retries, edits, deletes and button presses reach a
Switchboard stand-in signed and shaped as Slack sends them, and the page lets a person do all of it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from api.sandbox import RunningSandbox, SandboxConfig, run_sandbox
from api.sandbox.slack_workspace import BOT_USER_ID

SECRET = "sandbox-slack-signing-secret"  # the sandbox default, which the demo shares
LIVE_CHAT = "C0LIVECHAT"
NOT_INVITED = "C0GENERAL"
AGENT = "U0AGENT01"
OTHER_AGENT = "U0AGENT02"
TS = re.compile(r"^\d{10}\.\d{6}$")
ROOT_BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*Conversation 42* · Maria on WhatsApp"}},
    {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": "sb_cmd_0",
                "text": {"type": "plain_text", "text": "Assign to me"},
                "value": "chat assign 42 to me",
                "style": "primary",
            },
            {
                "type": "button",
                "action_id": "sb_cmd_1",
                "text": {"type": "plain_text", "text": "Resolve"},
                "value": "chat resolve 42",
            },
        ],
    },
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Arrival:
    body: str
    headers: dict[str, str]

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def payload(self) -> Any:
        """A button press's form field `payload`, parsed."""
        return json.loads(parse_qs(self.body)["payload"][0])


@dataclass
class SwitchboardStandIn:
    """Answers /slack/events as Bolt would (200, empty) after checking the signature; can be told to be slow."""

    arrivals: list[Arrival] = field(default_factory=list)
    refused: int = 0
    #: Seconds to wait before answering the next requests, one per request (then answer at once).
    delays: list[float] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        if not SignatureVerifier(SECRET).is_valid_request(body, dict(request.headers)):
            self.refused += 1
            return web.Response(status=401)
        self.arrivals.append(Arrival(body, dict(request.headers)))
        if self.delays:
            await asyncio.sleep(self.delays.pop(0))
        return web.Response(status=200)


@pytest.fixture
async def switchboard() -> AsyncIterator[tuple[SwitchboardStandIn, int]]:
    stand_in = SwitchboardStandIn()
    app = web.Application()
    app.router.add_post("/slack/events", stand_in.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield stand_in, port
    finally:
        await runner.cleanup()


@pytest.fixture
async def sandbox(switchboard: tuple[SwitchboardStandIn, int]) -> AsyncIterator[RunningSandbox]:
    _, port = switchboard
    config = dataclasses.replace(
        SandboxConfig(port=0, smtp_port=0, send_status_webhooks=False),
        public_url=f"http://127.0.0.1:{port}",
        slack_ack_timeout_seconds=0.5,
    )
    async with run_sandbox(config) as running:
        yield running


@pytest.fixture
def received(switchboard: tuple[SwitchboardStandIn, int]) -> SwitchboardStandIn:
    return switchboard[0]


def web_client(sandbox: RunningSandbox) -> AsyncWebClient:
    return AsyncWebClient(
        token=sandbox.state.config.slack_bot_token, base_url=f"{sandbox.base_url}/slack/api/"
    )


async def post_json(sandbox: RunningSandbox, path: str, payload: dict[str, Any], status: int = 202) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{sandbox.base_url}{path}", json=payload) as answer,
    ):
        assert answer.status == status, await answer.text()
        return await answer.json()


async def channel_messages(sandbox: RunningSandbox, channel: str = LIVE_CHAT) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{sandbox.base_url}/_sandbox/slack/channels/{channel}/messages") as answer,
    ):
        found: list[dict[str, Any]] = (await answer.json())["messages"]
        return found


async def conversation_root(sandbox: RunningSandbox) -> str:
    """What Switchboard posts for a new conversation: a root with its buttons, and the customer's first turn."""
    client = web_client(sandbox)
    root = await client.chat_postMessage(channel=LIVE_CHAT, text="Conversation 42", blocks=ROOT_BLOCKS)
    await client.chat_postMessage(channel=LIVE_CHAT, thread_ts=root["ts"], text="Maria: Is my order ready?")
    return str(root["ts"])


async def reply(sandbox: RunningSandbox, root_ts: str, text: str, **more: Any) -> Any:
    payload = {"user": AGENT, "channel": LIVE_CHAT, "thread_ts": root_ts, "text": text, **more}
    return await post_json(sandbox, "/_sandbox/slack/thread-reply", payload)


def assert_signed_now(arrival: Arrival) -> None:
    """Valid for slack_sdk's verifier, with a fresh timestamp, and not for a body changed on the way."""
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid_request(arrival.body, arrival.headers)
    assert abs(int(arrival.headers["X-Slack-Request-Timestamp"]) - time.time()) < 60
    assert arrival.headers["X-Slack-Signature"].startswith("v0=")
    assert not verifier.is_valid_request(arrival.body + " ", arrival.headers)


# --- thread replies -------------------------------------------------------------------------------


async def test_a_thread_reply_reaches_switchboard_signed_as_a_slack_message_event(
    sandbox: RunningSandbox, received: SwitchboardStandIn
) -> None:
    root_ts = await conversation_root(sandbox)
    answer = await reply(sandbox, root_ts, "Yes, it is ready for pickup.")
    assert answer["status"] == 200 and answer["outcome"] == "delivered (200)"
    assert TS.match(answer["ts"]) and answer["thread_ts"] == root_ts

    [arrival] = received.arrivals
    assert arrival.headers["Content-Type"] == "application/json"
    assert "X-Slack-Retry-Num" not in arrival.headers
    assert_signed_now(arrival)
    body = arrival.json
    assert body["type"] == "event_callback" and body["api_app_id"] == "A0SWITCHBOT"
    assert body["team_id"] == "T0NORTHWIND" and body["token"]
    assert re.fullmatch(r"Ev[0-9A-Z]{8,}", body["event_id"]) and body["event_id"] == answer["event_id"]
    assert abs(body["event_time"] - time.time()) < 60 and isinstance(body["event_time"], int)
    assert body["is_ext_shared_channel"] is False
    assert body["authorizations"][0]["user_id"] == BOT_USER_ID
    assert body["authorizations"][0]["is_bot"] is True
    event = body["event"]
    assert {k: event[k] for k in ("type", "channel", "channel_type", "user", "text", "team")} == {
        "type": "message",
        "channel": LIVE_CHAT,
        "channel_type": "channel",
        "user": AGENT,
        "text": "Yes, it is ready for pickup.",
        "team": "T0NORTHWIND",
    }
    assert event["ts"] == answer["ts"] == event["event_ts"] and event["thread_ts"] == root_ts
    assert event["parent_user_id"] == BOT_USER_ID
    assert uuid.UUID(event["client_msg_id"])
    assert "subtype" not in event and "bot_id" not in event and "hidden" not in event
    assert event["blocks"][0]["type"] == "rich_text"

    # The workspace shows it in the thread as the agent's, and the Web API reads the thread back.
    shown = await channel_messages(sandbox)
    assert [(m["user"], m["text"], m.get("thread_ts")) for m in shown][-1] == (
        AGENT,
        "Yes, it is ready for pickup.",
        root_ts,
    )
    assert "bot_id" not in shown[-1]
    thread = await web_client(sandbox).conversations_replies(channel=LIVE_CHAT, ts=root_ts)
    assert [m["text"] for m in thread["messages"]] == [
        "Conversation 42",
        "Maria: Is my order ready?",
        "Yes, it is ready for pickup.",
    ]
    assert thread["messages"][0]["reply_count"] == 2
    assert thread["messages"][0]["reply_users"] == sorted([BOT_USER_ID, AGENT])
    assert thread["messages"][0]["latest_reply"] == answer["ts"]
    assert thread["messages"][2]["parent_user_id"] == BOT_USER_ID


async def test_replies_go_nowhere_slack_would_not_send_them(
    sandbox: RunningSandbox, received: SwitchboardStandIn
) -> None:
    root_ts = await conversation_root(sandbox)
    refused = await post_json(
        sandbox,
        "/_sandbox/slack/thread-reply",
        {"user": AGENT, "channel": LIVE_CHAT, "thread_ts": "1700000000.000001", "text": "hello"},
        status=404,
    )
    assert refused["error"] == "thread_not_found" and refused["message"]
    empty = {"user": AGENT, "channel": LIVE_CHAT, "thread_ts": root_ts, "text": "  "}
    assert (await post_json(sandbox, "/_sandbox/slack/thread-reply", empty, 400))["error"] == "no_text"
    nobody = {"user": "U0NOBODY", "channel": LIVE_CHAT, "thread_ts": root_ts, "text": "hi"}
    assert (await post_json(sandbox, "/_sandbox/slack/thread-reply", nobody, 400))[
        "error"
    ] == "user_not_found"

    # Slack sends no events from a channel the app was not invited to.
    general = sandbox.state.slack.bot_posts(NOT_INVITED, "A slash command's answer", via="response_url")
    answer = await post_json(
        sandbox,
        "/_sandbox/slack/thread-reply",
        {"user": AGENT, "channel": NOT_INVITED, "thread_ts": general.ts, "text": "thanks"},
    )
    assert answer["status"] is None and answer["outcome"].startswith("not delivered")
    assert received.arrivals == []


# --- retries --------------------------------------------------------------------------------------


async def test_a_retry_sends_the_identical_event_with_its_retry_number(
    sandbox: RunningSandbox, received: SwitchboardStandIn
) -> None:
    root_ts = await conversation_root(sandbox)
    answer = await reply(sandbox, root_ts, "On its way", retries=2)
    assert [a["retry_num"] for a in answer["attempts"]] == [0, 1, 2]

    first, *retries = received.arrivals
    assert len(retries) == 2
    for number, arrival in enumerate(retries, start=1):
        assert arrival.body == first.body  # same bytes, so the same event_id
        assert arrival.headers["X-Slack-Retry-Num"] == str(number)
        assert arrival.headers["X-Slack-Retry-Reason"] == "http_timeout"
        assert_signed_now(arrival)
    assert {a.json["event_id"] for a in received.arrivals} == {answer["event_id"]}

    # One more from the JSON endpoint (as the page's link does): the third and last Slack would send.
    again = await post_json(sandbox, "/_sandbox/slack/retry", {"event_id": answer["event_id"]})
    assert again["attempts"][-1]["retry_num"] == 3 and again["status"] == 200
    assert received.arrivals[-1].headers["X-Slack-Retry-Num"] == "3"
    assert received.arrivals[-1].body == first.body
    too_many = await post_json(sandbox, "/_sandbox/slack/retry", {"event_id": answer["event_id"]}, 409)
    assert too_many["error"] == "too_many_retries"
    assert len(received.arrivals) == 4
    # The workspace holds the reply once, however often it was delivered.
    assert [m["text"] for m in await channel_messages(sandbox)].count("On its way") == 1


async def test_a_slow_switchboard_is_told_it_timed_out_and_the_retry_says_why(
    sandbox: RunningSandbox, received: SwitchboardStandIn
) -> None:
    root_ts = await conversation_root(sandbox)
    received.delays = [1.0]  # longer than the sandbox's 0.5 s acknowledgement limit in these tests
    answer = await reply(sandbox, root_ts, "Checking now")
    assert answer["status"] is None and answer["outcome"].startswith("failed: http_timeout")
    again = await post_json(
        sandbox, "/_sandbox/slack/retry", {"event_id": answer["event_id"], "retry_reason": "http_timeout"}
    )
    assert again["status"] == 200 and again["outcome"].startswith("delivered (200) · retry 1")
    assert [a.headers.get("X-Slack-Retry-Num") for a in received.arrivals] == [None, "1"]
    events = (await get_json(sandbox, "/_sandbox/slack/events"))["events"]
    [sent] = [e for e in events if e["event_id"] == answer["event_id"]]
    assert [a["status"] for a in sent["attempts"]] == [None, 200]


async def get_json(sandbox: RunningSandbox, path: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(f"{sandbox.base_url}{path}") as answer:
        assert answer.status == 200, await answer.text()
        return await answer.json()


# --- edits and deletes ----------------------------------------------------------------------------


async def test_an_edit_and_a_delete_send_message_changed_and_message_deleted(
    sandbox: RunningSandbox, received: SwitchboardStandIn
) -> None:
    root_ts = await conversation_root(sandbox)
    typed = await reply(sandbox, root_ts, "Your order is redy")
    edited = await post_json(
        sandbox,
        "/_sandbox/slack/edit",
        {"user": AGENT, "channel": LIVE_CHAT, "ts": typed["ts"], "text": "Your order is ready"},
    )
    assert edited["status"] == 200 and edited["event_id"] != typed["event_id"]
    change = received.arrivals[-1]
    assert_signed_now(change)
    event = change.json["event"]
    assert event["type"] == "message" and event["subtype"] == "message_changed" and event["hidden"] is True
    assert event["channel"] == LIVE_CHAT and event["channel_type"] == "channel"
    assert (
        TS.match(event["ts"]) and float(event["ts"]) > float(typed["ts"]) and event["event_ts"] == event["ts"]
    )
    now, before = event["message"], event["previous_message"]
    assert (now["type"], now["user"], now["text"], now["ts"]) == (
        "message",
        AGENT,
        "Your order is ready",
        typed["ts"],
    )
    assert now["thread_ts"] == root_ts and now["parent_user_id"] == BOT_USER_ID
    assert now["edited"] == {"user": AGENT, "ts": event["ts"]}
    assert (before["text"], before["ts"], before["thread_ts"]) == ("Your order is redy", typed["ts"], root_ts)
    assert "edited" not in before and before["client_msg_id"] == now["client_msg_id"]
    assert [m["text"] for m in await channel_messages(sandbox)][-1] == "Your order is ready"

    # Only the author may change it, and Switchboard's own messages are not the page's to change.
    theirs = {"user": OTHER_AGENT, "channel": LIVE_CHAT, "ts": typed["ts"], "text": "x"}
    assert (await post_json(sandbox, "/_sandbox/slack/edit", theirs, 403))["error"] == "cant_update_message"
    bots = {"user": AGENT, "channel": LIVE_CHAT, "ts": root_ts, "text": "x"}
    assert (await post_json(sandbox, "/_sandbox/slack/edit", bots, 403))["error"] == "cant_update_message"
    assert len(received.arrivals) == 2

    deleted = await post_json(
        sandbox, "/_sandbox/slack/delete", {"user": AGENT, "channel": LIVE_CHAT, "ts": typed["ts"]}
    )
    assert deleted["status"] == 200
    gone = received.arrivals[-1]
    assert_signed_now(gone)
    event = gone.json["event"]
    assert (event["type"], event["subtype"], event["hidden"]) == ("message", "message_deleted", True)
    assert event["deleted_ts"] == typed["ts"] and event["channel"] == LIVE_CHAT
    assert event["channel_type"] == "channel" and float(event["ts"]) > float(typed["ts"])
    previous = event["previous_message"]
    assert (previous["type"], previous["user"], previous["text"]) == ("message", AGENT, "Your order is ready")
    assert previous["ts"] == typed["ts"] and previous["thread_ts"] == root_ts
    assert "Your order is ready" not in [m["text"] for m in await channel_messages(sandbox)]
    again = {"user": AGENT, "channel": LIVE_CHAT, "ts": typed["ts"]}
    assert (await post_json(sandbox, "/_sandbox/slack/delete", again, 404))["error"] == "message_not_found"
    # A delete can be retried like any event.
    retried = await post_json(sandbox, "/_sandbox/slack/retry", {"event_id": deleted["event_id"]})
    assert retried["status"] == 200 and received.arrivals[-1].body == gone.body


# --- buttons --------------------------------------------------------------------------------------


async def test_a_button_press_sends_block_actions_and_its_response_url_replaces_the_message(
    sandbox: RunningSandbox, received: SwitchboardStandIn
) -> None:
    root_ts = await conversation_root(sandbox)
    pressed = await post_json(
        sandbox,
        "/_sandbox/slack/click",
        {"user": AGENT, "channel": LIVE_CHAT, "ts": root_ts, "action_id": "sb_cmd_0"},
    )
    assert pressed["status"] == 200 and pressed["outcome"] == "acknowledged"
    [arrival] = received.arrivals
    assert arrival.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert list(parse_qs(arrival.body)) == ["payload"]
    assert_signed_now(arrival)
    payload = arrival.payload
    assert payload["type"] == "block_actions" and payload["api_app_id"] == "A0SWITCHBOT" and payload["token"]
    assert payload["user"] == {
        "id": AGENT,
        "username": "lena.hoffmann",
        "name": "lena.hoffmann",
        "team_id": "T0NORTHWIND",
    }
    assert payload["team"] == {"id": "T0NORTHWIND", "domain": "northwind-sandbox"}
    assert payload["channel"] == {"id": LIVE_CHAT, "name": "live-chat"}
    # The root has a reply (the customer's turn), so it is a thread and says so.
    assert payload["container"] == {
        "type": "message",
        "message_ts": root_ts,
        "channel_id": LIVE_CHAT,
        "is_ephemeral": False,
        "thread_ts": root_ts,
    }
    assert payload["message"]["ts"] == root_ts and payload["message"]["blocks"] == ROOT_BLOCKS
    assert payload["message"]["bot_id"] and payload["message"]["reply_count"] == 1
    [action] = payload["actions"]
    assert {k: action[k] for k in ("action_id", "value", "type")} == {
        "action_id": "sb_cmd_0",
        "value": "chat assign 42 to me",
        "type": "button",
    }
    assert action["text"]["text"] == "Assign to me" and action["block_id"] and TS.match(action["action_ts"])
    assert payload["trigger_id"] and payload["response_url"] == pressed["response_url"]

    # Switchboard answers the press: the root is replaced in place (same ts), then a private word.
    updated_blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Conversation 42* · Lena"}}]
    async with aiohttp.ClientSession() as session:
        replace = {
            "replace_original": True,
            "text": "Conversation 42, assigned to Lena",
            "blocks": updated_blocks,
        }
        async with session.post(payload["response_url"], json=replace) as answer:
            assert answer.status == 200 and await answer.text() == "ok"
        async with session.post(payload["response_url"], json={"text": "Assigned to you."}) as answer:
            assert answer.status == 200
    shown = await channel_messages(sandbox)
    [root] = [m for m in shown if m["ts"] == root_ts]
    assert root["text"] == "Conversation 42, assigned to Lena" and root["blocks"] == updated_blocks
    assert [m["text"] for m in shown].count("Conversation 42, assigned to Lena") == 1
    [private] = [m for m in shown if m["text"] == "Assigned to you."]
    assert private["visible_to"] == AGENT and "thread_ts" not in private

    # The button is gone with the replaced blocks; pressing it now is refused, nothing sent.
    gone = {"user": AGENT, "channel": LIVE_CHAT, "ts": root_ts, "action_id": "sb_cmd_0"}
    assert (await post_json(sandbox, "/_sandbox/slack/click", gone, 404))["error"] == "action_not_found"
    assert len(received.arrivals) == 1


async def test_a_button_in_a_thread_reply_answers_in_that_thread_and_can_delete_its_message(
    sandbox: RunningSandbox, received: SwitchboardStandIn
) -> None:
    root_ts = await conversation_root(sandbox)
    question = await web_client(sandbox).chat_postMessage(
        channel=LIVE_CHAT, thread_ts=root_ts, text="Send the template instead?", blocks=ROOT_BLOCKS[1:]
    )
    await post_json(
        sandbox,
        "/_sandbox/slack/click",
        {"user": AGENT, "channel": LIVE_CHAT, "ts": question["ts"], "action_id": "sb_cmd_1"},
    )
    payload = received.arrivals[-1].payload
    assert payload["container"]["thread_ts"] == root_ts and payload["message"]["thread_ts"] == root_ts
    async with aiohttp.ClientSession() as session:
        async with session.post(payload["response_url"], json={"text": "Resolved."}) as answer:
            assert answer.status == 200
        async with session.post(payload["response_url"], json={"delete_original": True}) as answer:
            assert answer.status == 200
    shown = await channel_messages(sandbox)
    [said] = [m for m in shown if m["text"] == "Resolved."]
    assert said["thread_ts"] == root_ts and said["visible_to"] == AGENT
    assert question["ts"] not in [m["ts"] for m in shown]


# --- the Web API calls live chat makes ------------------------------------------------------------


async def test_the_web_api_answers_what_live_chat_calls(sandbox: RunningSandbox) -> None:
    client = web_client(sandbox)
    info = await client.conversations_info(channel=LIVE_CHAT)
    assert info["channel"]["name"] == "live-chat" and info["channel"]["is_member"] is True
    assert info["channel"]["topic"]["value"] == "Customer conversations: reply in a thread to answer"
    root_ts = await conversation_root(sandbox)
    # chat.update with text only keeps the blocks, as Slack does; an empty list removes them.
    await client.chat_update(channel=LIVE_CHAT, ts=root_ts, text="Conversation 42 (open)")
    [root, *_] = await channel_messages(sandbox)
    assert root["text"] == "Conversation 42 (open)" and root["blocks"] == ROOT_BLOCKS
    await client.chat_update(channel=LIVE_CHAT, ts=root_ts, text="Conversation 42 (resolved)", blocks=[])
    [root, *_] = await channel_messages(sandbox)
    assert "blocks" not in root
    private = await client.chat_postEphemeral(
        channel=LIVE_CHAT, user=AGENT, thread_ts=root_ts, text="You are not on the staff list."
    )
    [shown] = [m for m in await channel_messages(sandbox) if m["ts"] == private["message_ts"]]
    assert shown["thread_ts"] == root_ts and shown["visible_to"] == AGENT
    await client.reactions_add(channel=LIVE_CHAT, timestamp=root_ts, name="white_check_mark")
    with pytest.raises(SlackApiError) as twice:
        await client.reactions_add(channel=LIVE_CHAT, timestamp=root_ts, name="white_check_mark")
    assert twice.value.response["error"] == "already_reacted"
    with pytest.raises(SlackApiError) as missing:
        await client.conversations_replies(channel=LIVE_CHAT, ts="1700000000.000001")
    assert missing.value.response["error"] == "thread_not_found"
    with pytest.raises(SlackApiError) as outside:
        await client.conversations_replies(channel=NOT_INVITED, ts=root_ts)
    assert outside.value.response["error"] == "not_in_channel"


# --- the page -------------------------------------------------------------------------------------


async def test_the_page_lets_a_person_reply_retry_edit_delete_and_press_buttons(
    sandbox: RunningSandbox, received: SwitchboardStandIn
) -> None:
    root_ts = await conversation_root(sandbox)
    page_url = f"{sandbox.base_url}/_sandbox/slack?channel={LIVE_CHAT}&as={AGENT}"
    async with aiohttp.ClientSession() as session:
        form = {"user": AGENT, "channel": LIVE_CHAT, "thread_ts": root_ts, "text": "Typed on the page"}
        async with session.post(
            f"{sandbox.base_url}/_sandbox/slack/thread-reply", data=form, allow_redirects=False
        ) as answer:
            assert answer.status == 303
            assert answer.headers["Location"].startswith(f"/_sandbox/slack?channel={LIVE_CHAT}&as={AGENT}#m-")
        async with session.get(page_url) as answer:
            html = await answer.text()
    assert "#live-chat" in html and "Customer conversations: reply in a thread to answer" in html
    assert 'action="/_sandbox/slack/thread-reply"' in html and f'value="{root_ts}"' in html
    assert "Reply in thread as Lena Hoffmann" in html
    assert 'action="/_sandbox/slack/click"' in html and 'value="sb_cmd_0"' in html and "Assign to me" in html
    assert "Sent to Switchboard: <span" in html and "delivered (200)" in html
    assert "deliver again as a Slack retry" in html
    assert 'action="/_sandbox/slack/edit"' in html and 'action="/_sandbox/slack/delete"' in html
    assert "data-newest" in html
    [arrival] = received.arrivals
    assert arrival.json["event"]["text"] == "Typed on the page"

    # Someone else sees the reply but may not edit or delete it.
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{sandbox.base_url}/_sandbox/slack?channel={LIVE_CHAT}&as={OTHER_AGENT}") as answer,
    ):
        theirs = await answer.text()
    assert "Typed on the page" in theirs and 'action="/_sandbox/slack/edit"' not in theirs

    # A stale page (the reply was deleted meanwhile) gets an answer in words, not JSON.
    typed = received.arrivals[0].json["event"]["ts"]
    await post_json(sandbox, "/_sandbox/slack/delete", {"user": AGENT, "channel": LIVE_CHAT, "ts": typed})
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{sandbox.base_url}/_sandbox/slack/edit",
            data={"user": AGENT, "channel": LIVE_CHAT, "ts": typed, "text": "too late"},
        ) as answer,
    ):
        assert answer.status == 404 and answer.content_type == "text/html"
        assert "That message is not in this channel (or was deleted)." in await answer.text()
    async with aiohttp.ClientSession() as session, session.get(page_url) as answer:
        assert "This message was deleted." in await answer.text()


# --- Slack's own framework accepts what the sandbox sends ----------------------------------------


async def test_a_bolt_app_hears_the_reply_the_edit_and_the_press_and_respond_replaces_the_root() -> None:
    """Bolt, which Switchboard uses, verifies and routes every request and its respond() reaches the stand-in."""
    from slack_bolt.async_app import AsyncApp
    from slack_bolt.request.async_request import AsyncBoltRequest

    heard: list[tuple[str, Any]] = []
    port = free_port()
    config = dataclasses.replace(
        SandboxConfig(port=0, smtp_port=0, send_status_webhooks=False), public_url=f"http://127.0.0.1:{port}"
    )
    async with run_sandbox(config) as sandbox:
        bolt = AsyncApp(signing_secret=SECRET, client=web_client(sandbox))

        @bolt.event("message")
        async def on_message(event: dict[str, Any], body: dict[str, Any]) -> None:
            heard.append((event.get("subtype") or "message", body["event_id"]))

        @bolt.action(re.compile("^sb_cmd_"))
        async def on_button(ack: Any, body: dict[str, Any], respond: Any) -> None:
            await ack()
            heard.append(("button", body["actions"][0]["value"]))
            await respond(text="Assigned to Lena Hoffmann", replace_original=True)

        async def events(request: web.Request) -> web.Response:
            answer = await bolt.async_dispatch(
                AsyncBoltRequest(
                    body=await request.text(), query=request.query_string, headers=dict(request.headers)
                )
            )
            return web.Response(status=answer.status, body=answer.body, headers=answer.first_headers())

        app = web.Application()
        app.router.add_post("/slack/events", events)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            root_ts = await conversation_root(sandbox)
            typed = await reply(sandbox, root_ts, "Hello Maria")
            assert typed["status"] == 200
            edit = {"user": AGENT, "channel": LIVE_CHAT, "ts": typed["ts"], "text": "Hello, Maria"}
            assert (await post_json(sandbox, "/_sandbox/slack/edit", edit))["status"] == 200
            press = {"user": AGENT, "channel": LIVE_CHAT, "ts": root_ts, "action_id": "sb_cmd_0"}
            assert (await post_json(sandbox, "/_sandbox/slack/click", press))["status"] == 200
            for _ in range(100):
                if any(m["text"] == "Assigned to Lena Hoffmann" for m in await channel_messages(sandbox)):
                    break
                await asyncio.sleep(0.02)
        finally:
            await runner.cleanup()
        assert [kind for kind, _ in heard] == ["message", "message_changed", "button"]
        assert heard[2] == ("button", "chat assign 42 to me")
        [root] = [m for m in await channel_messages(sandbox) if m["ts"] == root_ts]
        assert root["text"] == "Assigned to Lena Hoffmann"
