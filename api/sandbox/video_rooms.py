"""The sandbox's video room stand-in: `/video/{room}?jwt=...` checks the token as a Jitsi with token
authentication does (HS256 with the shared app secret, aud, iss, sub, the room, nbf and exp) and either shows
who entered or refuses in words; `/_sandbox/video` lists the rooms and who is in them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jwt
from aiohttp import web

from api.sandbox.config import SandboxConfig

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


@dataclass(frozen=True)
class RoomGuest:
    name: str
    moderator: bool
    entered_at: float


@dataclass
class VideoRoomsState:
    """Who entered which room (a stock Jitsi tells nobody when people leave, so neither does this)."""

    rooms: dict[str, list[RoomGuest]] = field(default_factory=dict)
    #: Every refusal, latest last, so tests and the page can show what was turned away.
    refusals: list[tuple[str, str]] = field(default_factory=list)

    def enter(self, room: str, guest: RoomGuest) -> None:
        self.rooms.setdefault(room, []).append(guest)


VIDEO_ROOMS: web.AppKey[VideoRoomsState] = web.AppKey("sandbox_video_rooms", VideoRoomsState)
CONFIG: web.AppKey[SandboxConfig] = web.AppKey("sandbox_video_config", SandboxConfig)


class Refused(Exception):
    """The token does not let its holder into this room; the message says why, as the page shows it."""


def admitted(config: SandboxConfig, room: str, token: str, now: float | None = None) -> RoomGuest:
    """The guest a token admits to `room`, or Refused saying why (the checks prosody's token module makes)."""
    if not token:
        raise Refused("no token: this room lets in only people with a token from the clinic")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            config.jitsi_app_secret,
            algorithms=["HS256"],
            audience=config.jitsi_app_id,
            issuer=config.jitsi_app_id,
            options={"require": ["aud", "iss", "sub", "room", "nbf", "exp"], "verify_iat": False},
            leeway=0,
        )
    except jwt.ExpiredSignatureError:
        raise Refused("token expired: the consultation's time is over") from None
    except jwt.ImmatureSignatureError:
        raise Refused("token not valid yet: the room opens shortly before the consultation") from None
    except jwt.InvalidSignatureError:
        raise Refused("token not signed with this server's app secret") from None
    except (jwt.InvalidAudienceError, jwt.InvalidIssuerError):
        raise Refused("token for another app (its aud or iss is not this server's app id)") from None
    except jwt.MissingRequiredClaimError as missing:
        raise Refused(f"token without the '{missing.claim}' claim") from None
    except jwt.InvalidTokenError:
        raise Refused("not a token this server can read") from None
    if claims["sub"] != config.jitsi_domain:
        raise Refused(f"token for another domain ({claims['sub']})")
    if claims["room"] != room:
        # Never "*" either: Switchboard signs one token per room (lib-jitsi-meet #1427).
        raise Refused("token for another room")
    user = (claims.get("context") or {}).get("user") or {}
    return RoomGuest(
        name=str(user.get("name") or "Guest"),
        moderator=user.get("moderator") is True,
        entered_at=time.time() if now is None else now,
    )


async def room(request: web.Request) -> web.Response:
    name = request.match_info["room"]
    state = request.app[VIDEO_ROOMS]
    try:
        guest = admitted(request.app[CONFIG], name, request.query.get("jwt", ""))
    except Refused as refusal:
        state.refusals.append((name, str(refusal)))
        page = _TEMPLATES.get_template("video_room.html").render(room=name, guest=None, refusal=str(refusal))
        return web.Response(text=page, content_type="text/html", status=403)
    state.enter(name, guest)
    page = _TEMPLATES.get_template("video_room.html").render(
        room=name, guest=guest, refusal=None, others=state.rooms[name][:-1]
    )
    return web.Response(text=page, content_type="text/html")


async def rooms_page(request: web.Request) -> web.Response:
    state = request.app[VIDEO_ROOMS]
    if request.query.get("format") == "json":
        return web.json_response(
            {
                "rooms": {
                    name: [
                        {"name": g.name, "moderator": g.moderator, "entered_at": g.entered_at} for g in guests
                    ]
                    for name, guests in state.rooms.items()
                },
                "refusals": [{"room": r, "reason": why} for r, why in state.refusals[-50:]],
            }
        )
    page = _TEMPLATES.get_template("video_rooms.html").render(
        rooms=state.rooms, refusals=state.refusals[-20:], clock=_clock
    )
    return web.Response(text=page, content_type="text/html")


def _clock(seconds: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(seconds))


def install_video_rooms(app: web.Application, config: SandboxConfig) -> None:
    app[VIDEO_ROOMS] = VideoRoomsState()
    app[CONFIG] = config
    app.add_routes(
        [
            # A Jitsi's own address answers with its welcome page (switchboard doctor looks): here, the rooms.
            web.get("/video", _welcome),
            web.get("/video/", _welcome),
            web.get("/video/{room}", room),
            web.get("/_sandbox/video", rooms_page),
        ]
    )


async def _welcome(request: web.Request) -> web.Response:
    raise web.HTTPFound("/_sandbox/video")
