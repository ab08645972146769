"""What video consultations need from outside: a video room provider."""

from __future__ import annotations

from typing import Protocol

from domain.video.model import Participant, Window


class VideoRooms(Protocol):
    """A video provider: Jitsi (self-hosted, JWT per join) or a plain link for clinics without one."""

    name: str

    def room_url(self, room_name: str) -> str:
        """The room's address without credentials (stored on the consultation, shown to staff)."""

    def join_url(self, room_name: str, who: Participant, display_name: str, window: Window) -> str:
        """Where `/v/TOKEN` redirects: the room, with a token bound to this room and window when the
        provider uses them (moderator for the clinician)."""
