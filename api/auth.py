"""Staff sign-in for the dashboard: signed one-time login links, the session cookie, and the page guards.

Until real user accounts exist, staff sign in with a link an administrator prints with
`switchboard login-link EMAIL`. A token is base64url("purpose:staff_id:expires:nonce") plus an
HMAC-SHA256 of it under the session secret; the session cookie is the same shape with its own purpose,
so a session cookie can never be replayed as a login link or the other way round.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Redirect
from pydantic import SecretStr

from domain.clock import utc_now
from domain.vocabulary import Role, role_allows
from storage.database import Database
from storage.queries.staff import staff_by_id

SESSION_COOKIE = "sb_session"
SESSION_HOURS = 12
LOGIN_LINK_MAX_MINUTES = 24 * 60
LOGIN_PURPOSE = "login"
SESSION_PURPOSE = "session"


@dataclass(frozen=True)
class SignedToken:
    purpose: str
    staff_id: int
    expires_at: datetime
    nonce: str


@dataclass(frozen=True)
class SignedInStaff:
    id: int
    email: str
    name: str
    role: Role

    def may(self, required: Role) -> bool:
        return role_allows(self.role, required)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: SecretStr, payload: str) -> str:
    key = secret.get_secret_value().encode()
    return _b64(hmac.new(key, f"switchboard-staff:{payload}".encode(), hashlib.sha256).digest())


def sign_token(secret: SecretStr, purpose: str, staff_id: int, expires_at: datetime) -> str:
    payload = _b64(f"{purpose}:{staff_id}:{int(expires_at.timestamp())}:{secrets.token_hex(8)}".encode())
    return f"{payload}.{_signature(secret, payload)}"


def read_token(secret: SecretStr, token: str, purpose: str, now: datetime) -> SignedToken | None:
    """The token's content when we signed it for `purpose` and it has not expired; None otherwise."""
    payload, _, signature = token.partition(".")
    if not payload or not signature or len(token) > 512:
        return None
    if not hmac.compare_digest(signature.encode(), _signature(secret, payload).encode()):
        return None
    try:
        kind, staff, expires, nonce = _unb64(payload).decode().split(":")
        token_content = SignedToken(kind, int(staff), datetime.fromtimestamp(int(expires), UTC), nonce)
    except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError, OSError):
        return None
    if token_content.purpose != purpose or token_content.expires_at <= now:
        return None
    return token_content


def login_link(public_url: str, secret: SecretStr, staff_id: int, minutes: int, now: datetime) -> str:
    token = sign_token(secret, LOGIN_PURPOSE, staff_id, now + timedelta(minutes=minutes))
    return f"{public_url.rstrip('/')}/login/{token}"


def session_token(secret: SecretStr, staff_id: int, now: datetime) -> str:
    return sign_token(secret, SESSION_PURPOSE, staff_id, now + timedelta(hours=SESSION_HOURS))


async def active_staff(database: Database, staff_id: int) -> SignedInStaff | None:
    found = await staff_by_id(database, staff_id, via="web")
    return None if found is None else SignedInStaff(found.staff_id, found.email, found.name, found.role)


class NotSignedIn(NotAuthorizedException):
    """No valid session: pages answer with a redirect to the sign-in page."""


async def require_staff(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """Guard for every dashboard page: a valid session cookie of an active staff member."""
    settings = connection.app.state.settings
    token = connection.cookies.get(SESSION_COOKIE, "")
    signed = read_token(settings.session_secret, token, SESSION_PURPOSE, utc_now()) if token else None
    staff = await active_staff(connection.app.state.container.database, signed.staff_id) if signed else None
    if staff is None:
        raise NotSignedIn("sign in to see the dashboard")
    connection.state.staff = staff


def requires_role(required: Role) -> Any:
    """Guard for actions: the signed-in staff member's role must allow `required` (403 otherwise)."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        if getattr(connection.state, "staff", None) is None:
            await require_staff(connection, handler)
        if not connection.state.staff.may(required):
            raise PermissionDeniedException(f"this needs the {required.value} role or higher")

    return guard


def signed_in(request: Request[Any, Any, Any]) -> SignedInStaff:
    staff: SignedInStaff = request.state.staff
    return staff


def safe_next(target: str | None) -> str:
    """Only a local path may be a redirect target, so a sign-in link can never send anyone elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def redirect_to_login(request: Request[Any, Any, Any], _error: NotSignedIn) -> Redirect:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Redirect(f"/login?next={quote(here, safe='')}", status_code=303)
