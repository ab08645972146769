"""The demo's story, end to end against the sandbox: the patient opens their link, lands in the sandbox's Jitsi
room, the join is recorded, the clinician gets a Slack DM whose Join now link takes them in as moderator, and
the consultation is in progress."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.sandbox import RunningSandbox, SandboxConfig, run_sandbox
from storage.database import Database
from storage.units import UnitsOfWork
from switchboard.settings import Settings
from switchboard.waiting_room import waiting_room_watch
from switchboard.wiring import Container
from tests.integration.test_video_links import Clinic, book, consultation, joins, open_clinic

PUBLIC = "http://switchboard.test"


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with run_sandbox(SandboxConfig(port=0, smtp_port=0)) as running:
        yield running


@pytest.fixture
async def client(database_url: str, sandbox: RunningSandbox) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=database_url,
        sandbox=True,
        sandbox_port=sandbox.port,
        public_url=PUBLIC,
        worker_in_process=False,
        telegram_bot_token=sandbox.state.config.telegram_bot_token,
    )
    async with AsyncTestClient(create_app(settings)) as test_client:
        yield test_client


async def enter(client: AsyncTestClient[Any], link: str) -> tuple[int, str]:
    """Follows a /v/ link as a browser would: Switchboard's redirect, then the room at the sandbox."""
    answer = await client.get(link.removeprefix(PUBLIC), follow_redirects=False)
    assert answer.status_code == 302, answer.text
    async with aiohttp.ClientSession() as http, http.get(answer.headers["location"]) as room:
        return room.status, await room.text()


async def test_patient_joins_clinician_is_told_and_joins_as_moderator(
    database: Database, client: AsyncTestClient[Any], sandbox: RunningSandbox
) -> None:
    clinic: Clinic = await open_clinic(database)
    booked = await book(database, clinic, datetime.now(UTC) + timedelta(minutes=4))
    container: Container = client.app.state.container

    status, page = await enter(client, f"{PUBLIC}/v/{booked.patient_token}")
    assert status == 200 and "as Anna Meyer</h1>" in page and "(moderator)" not in page
    assert (await consultation(database, booked.consultation_id)).status == "waiting"
    assert container.patient_waiting.is_set()

    # The worker's pass, on this test's own loop (the app's container serves requests on the client's loop).
    closers: list[Callable[[], Awaitable[None]]] = []
    watch = waiting_room_watch(
        container.settings, UnitsOfWork(database, "Europe/Berlin"), container.clock, closers
    )
    told = await watch.run()
    for close in closers:
        await close()
    assert told.told == [(booked.consultation_id, "slack")]
    [dm] = [m for m in sandbox.state.slack.messages if m.channel == "D0ADMIN"]
    join_now = re.search(r"<([^|>]+)\|Join now>", dm.blocks[0]["text"]["text"])
    assert join_now is not None

    status, page = await enter(client, join_now[1])
    assert status == 200 and "as Dr Clara Weiss (moderator)" in page and "Also entered: Anna Meyer" in page
    stored = await consultation(database, booked.consultation_id)
    assert stored.status == "in_progress" and stored.started_at is not None
    assert [who for who, _ in await joins(database, booked.consultation_id)] == ["patient", "clinician"]
    async with aiohttp.ClientSession() as http, http.get(f"{sandbox.base_url}/_sandbox/video") as listing:
        text = await listing.text()
    assert "Anna Meyer" in text and "Dr Clara Weiss (moderator)" in text
