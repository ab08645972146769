"""Jitsi rooms: a JWT (HS256, the shared app secret) bound to one room and the consultation's window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import jwt

from domain.video.model import TOKEN_MARGIN, Participant, Window


@dataclass
class JitsiRooms:
    """Rooms on a self-hosted Jitsi whose prosody checks tokens (`authentication = "token"`)."""

    base_url: str
    app_id: str
    app_secret: str
    #: The token's `sub`: the Jitsi domain (or tenant) the rooms live on.
    domain: str
    name: str = "jitsi"

    def room_url(self, room_name: str) -> str:
        return f"{self.base_url.rstrip('/')}/{quote(room_name, safe='')}"

    def join_url(self, room_name: str, who: Participant, display_name: str, window: Window) -> str:
        token = jwt.encode(self.claims(room_name, who, display_name, window), self.app_secret, "HS256")
        return f"{self.room_url(room_name)}?jwt={token}"

    def claims(self, room_name: str, who: Participant, display_name: str, window: Window) -> dict[str, Any]:
        """What the token says: this room only (never "*"), valid from a little before the window
        opens to a little after it closes, moderator for the clinician alone."""
        return {
            "aud": self.app_id,
            "iss": self.app_id,
            "sub": self.domain,
            "room": room_name,
            "nbf": _seconds(window.opens_at - TOKEN_MARGIN),
            "exp": _seconds(window.closes_at + TOKEN_MARGIN),
            "context": {
                "user": {"name": display_name, "moderator": who is Participant.CLINICIAN},
            },
        }


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())
