"""The sandbox's video room over real HTTP: tokens made by Switchboard's own Jitsi rooms (from settings, as the
container builds them) let the right person in; expired, early, other-room, forged and missing ones are refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import jwt
import pytest

from api.sandbox import RunningSandbox, run_sandbox
from api.sandbox.video_rooms import VIDEO_ROOMS
from domain.video.model import Participant, Window
from domain.video.ports import VideoRooms
from providers.video.jitsi import JitsiRooms
from providers.video.rooms import video_rooms_from
from switchboard.delivery import sandbox_config
from switchboard.settings import Settings

SECRET = "the-clinics-own-jitsi-secret-0123456789abcdef"


@pytest.fixture
async def sandbox() -> AsyncIterator[tuple[RunningSandbox, VideoRooms]]:
    settings = Settings(
        _env_file=None, jitsi_app_secret=SECRET, jitsi_app_id="northwind", jitsi_domain="meet.northwind.test"
    )  # type: ignore[call-arg, arg-type]
    async with run_sandbox(sandbox_config(settings, port=0, smtp_port=0)) as running:
        rooms = video_rooms_from(settings.model_copy(update={"jitsi_url": f"{running.base_url}/video"}))
        yield running, rooms


async def fetch(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


def window(starts_in: timedelta) -> Window:
    return Window.of(datetime.now(UTC) + starts_in, 30)


async def test_the_patient_and_the_clinician_enter_their_own_room(
    sandbox: tuple[RunningSandbox, VideoRooms],
) -> None:
    running, rooms = sandbox
    now = window(timedelta(minutes=5))
    status, page = await fetch(rooms.join_url("nw-7-abc", Participant.PATIENT, "Anna Meyer", now))
    assert status == 200 and "In room nw-7-abc as Anna Meyer</h1>" in page
    status, page = await fetch(rooms.join_url("nw-7-abc", Participant.CLINICIAN, "Dr Clara Weiss", now))
    assert status == 200 and "In room nw-7-abc as Dr Clara Weiss (moderator)" in page
    assert "Also entered: Anna Meyer" in page
    status, listing = await fetch(f"{running.base_url}/_sandbox/video")
    assert status == 200 and "nw-7-abc" in listing and "Dr Clara Weiss (moderator)" in listing
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{running.base_url}/_sandbox/video?format=json") as response,
    ):
        rooms_json = (await response.json())["rooms"]
    assert [(g["name"], g["moderator"]) for g in rooms_json["nw-7-abc"]] == [
        ("Anna Meyer", False),
        ("Dr Clara Weiss", True),
    ]


@pytest.mark.parametrize(
    ("starts_in", "reason"),
    [
        (timedelta(hours=-3), "token expired"),
        (timedelta(hours=3), "token not valid yet"),
    ],
)
async def test_a_token_outside_its_window_is_refused(
    sandbox: tuple[RunningSandbox, VideoRooms], starts_in: timedelta, reason: str
) -> None:
    _, rooms = sandbox
    status, page = await fetch(rooms.join_url("nw-8", Participant.PATIENT, "Ben", window(starts_in)))
    assert status == 403 and reason in page and "In room" not in page


async def test_a_token_for_another_room_is_refused(sandbox: tuple[RunningSandbox, VideoRooms]) -> None:
    running, rooms = sandbox
    url = rooms.join_url("nw-9", Participant.CLINICIAN, "Dr Clara Weiss", window(timedelta(0)))
    token = url.split("?jwt=", 1)[1]
    status, page = await fetch(f"{running.base_url}/video/nw-10?jwt={token}")
    assert status == 403 and "token for another room" in page
    assert "nw-10" not in running.app[VIDEO_ROOMS].rooms


async def test_forged_foreign_and_missing_tokens_are_refused(
    sandbox: tuple[RunningSandbox, VideoRooms],
) -> None:
    running, rooms = sandbox
    assert isinstance(rooms, JitsiRooms)
    now = window(timedelta(0))
    forged = JitsiRooms(rooms.base_url, rooms.app_id, "guessed-secret-guessed-secret-guessed!!", rooms.domain)
    status, page = await fetch(forged.join_url("nw-11", Participant.CLINICIAN, "Mallory", now))
    assert status == 403 and "not signed with this server" in page
    other_app = JitsiRooms(rooms.base_url, "someone-else", SECRET, rooms.domain)
    status, page = await fetch(other_app.join_url("nw-11", Participant.PATIENT, "Eve", now))
    assert status == 403 and "another app" in page
    other_domain = JitsiRooms(rooms.base_url, rooms.app_id, SECRET, "meet.elsewhere.test")
    status, page = await fetch(other_domain.join_url("nw-11", Participant.PATIENT, "Eve", now))
    assert status == 403 and "another domain" in page
    wildcard = jwt.encode(
        {**rooms.claims("nw-11", Participant.PATIENT, "Eve", now), "room": "*"}, SECRET, "HS256"
    )
    status, page = await fetch(f"{running.base_url}/video/nw-11?jwt={wildcard}")
    assert status == 403 and "token for another room" in page
    status, page = await fetch(f"{running.base_url}/video/nw-11")
    assert status == 403 and "no token" in page
    status, page = await fetch(f"{running.base_url}/video/nw-11?jwt=not.a.token")
    assert status == 403 and "not a token" in page
