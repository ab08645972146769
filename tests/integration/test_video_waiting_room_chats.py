"""The waiting-room alert through the sandbox's Slack and Telegram: a direct message to the clinician with a
one-tap link to their own /v/ link; Slack when linked, else the Telegram staff bot; names masked when the
business shows no customer names in staff chats."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from api.sandbox import RunningSandbox, SandboxConfig, run_sandbox
from domain.video.joins import record_join
from storage.database import Database
from storage.models import StaffUser
from storage.units import UnitsOfWork
from switchboard.settings import Settings
from switchboard.waiting_room import waiting_room_watch
from tests.integration.test_video_links import ROOMS, Clinic, book, open_clinic

PUBLIC = "https://switchboard.example"


@pytest.fixture
async def clinic(database: Database) -> Clinic:
    return await open_clinic(database)


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with run_sandbox(SandboxConfig(port=0, smtp_port=0)) as running:
        yield running


async def watch_pass(
    database: Database, sandbox: RunningSandbox, now: datetime, **settings: object
) -> tuple[object, list[Callable[[], Awaitable[None]]]]:
    configured = Settings(  # type: ignore[call-arg]
        _env_file=None,
        sandbox_port=sandbox.port,
        public_url=PUBLIC,
        telegram_bot_token=sandbox.state.config.telegram_bot_token,
        **settings,
    )
    closers: list[Callable[[], Awaitable[None]]] = []
    watch = waiting_room_watch(configured, UnitsOfWork(database, "Europe/Berlin"), lambda: now, closers)
    try:
        return await watch.run(), closers
    finally:
        for close in closers:
            await close()


async def test_the_clinician_gets_a_slack_dm_with_a_join_link(
    database: Database, clinic: Clinic, sandbox: RunningSandbox
) -> None:
    now = datetime.now(UTC)
    booked = await book(database, clinic, now + timedelta(minutes=5))
    await record_join(UnitsOfWork(database, "Europe/Berlin").video_links(), booked.patient_token, now, ROOMS)
    done, _ = await watch_pass(database, sandbox, now)
    assert done.told == [(booked.consultation_id, "slack")]  # type: ignore[attr-defined]
    workspace = sandbox.state.slack
    dm = workspace.channels["D0ADMIN"]
    assert dm.members == {"U0ADMIN", "U0SWITCHBOT"}
    [message] = [m for m in workspace.messages if m.channel == "D0ADMIN"]
    assert "Anna Meyer is in the waiting room for your" in message.text
    assert "(Europe/Berlin time) consultation (Skin check)" in message.text
    assert f"<{PUBLIC}/v/{booked.clinician_token}|Join now>" in message.blocks[0]["text"]["text"]
    again, _ = await watch_pass(database, sandbox, now + timedelta(seconds=1))
    assert again.told == []  # type: ignore[attr-defined]
    assert len([m for m in workspace.messages if m.channel == "D0ADMIN"]) == 1


async def test_without_slack_the_staff_bot_tells_them_with_a_join_button_and_no_name_when_masked(
    database: Database, clinic: Clinic, sandbox: RunningSandbox
) -> None:
    async with database.sessions() as session:
        clinician = await session.get(StaffUser, clinic.clinician_id)
        assert clinician is not None
        clinician.slack_user_id = None
        await session.commit()
    now = datetime.now(UTC)
    booked = await book(database, clinic, now + timedelta(minutes=8))
    await record_join(UnitsOfWork(database, "Europe/Berlin").video_links(), booked.patient_token, now, ROOMS)
    done, _ = await watch_pass(database, sandbox, now, slack_customer_fields="phone")
    assert done.told == [(booked.consultation_id, "telegram")]  # type: ignore[attr-defined]
    [sent] = [m for (chat, _), m in sandbox.state.telegram_sent.items() if chat == 7001]
    assert sent["text"].startswith("Your patient is in the waiting room")
    assert "Anna" not in sent["text"]
    button = sent["reply_markup"]["inline_keyboard"][0][0]
    assert button == {"text": "Join now", "url": f"{PUBLIC}/v/{booked.clinician_token}"}
