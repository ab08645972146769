"""Builds the clinic's video rooms from settings (SWITCHBOARD_VIDEO_PROVIDER: jitsi or link)."""

from __future__ import annotations

from domain.video.ports import VideoRooms
from providers.video.jitsi import JitsiRooms
from providers.video.link import PlainLinkRooms
from switchboard.settings import ConfigurationError, Settings


def video_rooms_from(settings: Settings) -> VideoRooms:
    if settings.video_provider == "link":
        if not settings.video_link_url.strip():
            raise ConfigurationError(
                "SWITCHBOARD_VIDEO_PROVIDER is link but SWITCHBOARD_VIDEO_LINK_URL is empty: "
                "set it to the clinic's meeting link (or a template with {room})"
            )
        return PlainLinkRooms(settings.video_link_url.strip())
    if not settings.jitsi_url.strip():
        raise ConfigurationError(
            "SWITCHBOARD_JITSI_URL is empty: set it to your Jitsi's address (https://meet.example.org), "
            "or use SWITCHBOARD_VIDEO_PROVIDER=link with SWITCHBOARD_VIDEO_LINK_URL"
        )
    return JitsiRooms(
        base_url=settings.jitsi_url.strip(),
        app_id=settings.jitsi_app_id,
        app_secret=settings.jitsi_app_secret.get_secret_value(),
        domain=settings.jitsi_domain,
    )
