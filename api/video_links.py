"""`/v/TOKEN`: a consultation's link. Public (no login): inside the window it records the join and redirects
into the room; before or after it, or for a link we do not know, it says why in a page."""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from litestar import MediaType, Request, Response, get
from litestar.background_tasks import BackgroundTask
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_302_FOUND,
    HTTP_404_NOT_FOUND,
    HTTP_410_GONE,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from domain.video.joins import follow_link, record_join
from domain.video.links import (
    LinkDecision,
    LinkOutcome,
    rooms_unavailable,
    too_many_unknown_links,
    unknown_link,
)
from domain.video.ports import VideoRooms
from switchboard.settings import ConfigurationError
from switchboard.wiring import Container

log = logging.getLogger(__name__)

#: A link's answer changes with the clock and records a join: nothing may keep a copy.
NOT_STORED = {"Cache-Control": "no-store", "Pragma": "no-cache"}
#: Unknown links one client address may open a minute: guessing tokens (hopeless anyway at 192 bits) is
#: made slow, while people who follow their real link are never counted.
MISSES_PER_MINUTE = 30


@dataclass
class MissPace:
    """Unknown-link answers per client address over the last minute (in this process)."""

    misses: dict[str, deque[float]] = field(default_factory=dict)
    per_minute: int = MISSES_PER_MINUTE

    def exhausted(self, address: str) -> bool:
        recent = self.misses.get(address)
        if not recent:
            return False
        now = time.monotonic()
        while recent and now - recent[0] > 60:
            recent.popleft()
        return len(recent) >= self.per_minute

    def missed(self, address: str) -> None:
        now = time.monotonic()
        self.misses.setdefault(address, deque()).append(now)
        if len(self.misses) > 50_000:  # forget idle addresses rather than grow without end
            self.misses = {k: v for k, v in self.misses.items() if v and now - v[-1] <= 60}


MISSES = MissPace()
STATUS_OF = {
    LinkOutcome.NOT_YET: HTTP_200_OK,
    LinkOutcome.ENDED: HTTP_410_GONE,
    LinkOutcome.CANCELLED: HTTP_410_GONE,
    LinkOutcome.UNKNOWN: HTTP_404_NOT_FOUND,
}


@get(
    "/v/{token:str}",
    exclude_from_auth=True,
    name="video_link",
    media_type=MediaType.HTML,
    include_in_schema=False,
    cache=False,
)
async def video_link(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[Any]:
    """A patient's or clinician's consultation link."""
    container: Container = request.app.state.container
    address = request.client.host if request.client else "unknown"
    # Before a consultation says whose language to speak: the browser's first choice ("de-DE,de;q=0.9").
    language = request.headers.get("accept-language", "").split(",")[0].split(";")[0].strip()
    if MISSES.exhausted(address):
        return _page(container, too_many_unknown_links(language), HTTP_429_TOO_MANY_REQUESTS)
    try:
        rooms = container.video_rooms
    except ConfigurationError:
        log.exception("video links cannot open rooms")
        return _page(container, rooms_unavailable(language), HTTP_503_SERVICE_UNAVAILABLE)
    clicked = container.clock()
    outcome = await follow_link(container.units.video_links(read_only=True), token, clicked, rooms)
    if outcome.room_url is not None:
        # The join is written once the answer has gone: on SQLite a write can wait tens of milliseconds
        # behind a worker's, and nobody should wait at the door for bookkeeping. The join keeps the click's time.
        return Redirect(
            outcome.room_url,
            status_code=HTTP_302_FOUND,
            headers=NOT_STORED,
            background=BackgroundTask(_record_join, container, token, clicked, rooms),
        )
    decision = outcome.decision
    if decision.outcome is LinkOutcome.UNKNOWN:
        MISSES.missed(address)
        decision = unknown_link(language)
    return _page(container, decision, STATUS_OF.get(decision.outcome, HTTP_200_OK))


async def _record_join(container: Container, token: str, clicked: datetime, rooms: VideoRooms) -> None:
    """Record a join the link let in (the patient waiting, or both in), and wake the waiting-room alert."""
    try:
        recorded = await record_join(container.units.video_links(), token, clicked, rooms)
    except Exception:
        # Logged for the operator; the person is in the room, and their next click records a join again.
        log.exception("a join through a video link at %s could not be recorded", clicked.isoformat())
        return
    if recorded.patient_waiting:
        container.patient_waiting.set()


def _page(container: Container, decision: LinkDecision, status_code: int) -> Template:
    return Template(
        "video/link.html",
        context={
            "decision": decision,
            "business_name": container.settings.business_name,
            "page_language": decision.language,
        },
        status_code=status_code,
        headers=NOT_STORED,
    )


video_link_handlers = [video_link]
