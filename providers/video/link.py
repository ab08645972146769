"""A clinic's own meeting link, for clinics without Jitsi: no token, the same address for everyone."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from domain.video.model import Participant, Window

ROOM_PLACEHOLDER = "{room}"


@dataclass
class PlainLinkRooms:
    """A fixed meeting URL, or a template with {room} for a room per consultation."""

    url: str
    name: str = "link"

    def room_url(self, room_name: str) -> str:
        return self.url.replace(ROOM_PLACEHOLDER, quote(room_name, safe=""))

    def join_url(self, room_name: str, who: Participant, display_name: str, window: Window) -> str:
        # Nothing to sign: Switchboard's /v/ link is the only gate (it opens only inside the window).
        return self.room_url(room_name)
