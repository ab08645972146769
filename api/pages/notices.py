"""What a change just did, said once on the page it leads to ("The canned reply is deleted.").

A form's post answers with a redirect to a plain address (the page, not `?done=deleted`) and a short-lived
cookie naming that page and what to say there. The page reads it with `said(request)` and clears it as it
renders (`page()` does that), so reloading, bookmarking or sending the address to a colleague does not
announce the change again. Addresses that still carry the words (`?done=…`, as before this) are read too.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from litestar import Request
from litestar.datastructures import Cookie
from litestar.response import Redirect

from switchboard.settings import Settings

COOKIE = "sb_notice"
#: Long enough for the redirect to be followed on a slow line; short enough not to outlive the moment.
MAX_AGE_SECONDS = 120
#: Each value is a key the page looks up (`deleted`, a message id, a slug), never a sentence.
VALUE_LIMIT = 200


def after_change(request: Request[Any, Any, Any], location: str, **words: str | int) -> Redirect:
    """A 303 to `location` (a path, perhaps with `#section`) whose page says `words` once."""
    target = urlsplit(location)
    said_here = urlencode({key: str(value)[:VALUE_LIMIT] for key, value in words.items()})
    settings: Settings = request.app.state.settings
    cookie = Cookie(
        key=COOKIE,
        value=_packed(f"{target.path}?{said_here}"),
        path="/",
        max_age=MAX_AGE_SECONDS,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )
    return Redirect(location, status_code=303, cookies=[cookie])


def said(request: Request[Any, Any, Any]) -> Mapping[str, str]:
    """What the change that led here said (`{"done": "deleted"}`): the cookie's, if it names this page, else
    the address's own query (older links)."""
    if _cookie_for(request) is None:
        return request.query_params
    return said_by_the_change(request)


def said_by_the_change(request: Request[Any, Any, Any]) -> Mapping[str, str]:
    """What the change's own cookie said, never the address (for what a link must not set: typed samples)."""
    found = _cookie_for(request)
    if found is None:
        return {}
    try:
        return dict(parse_qsl(found, max_num_fields=8))
    except ValueError:  # more fields than any notice has: a cookie we did not write says nothing
        return {}


def spent(request: Request[Any, Any, Any]) -> list[Cookie]:
    """The cookie that clears what `said` read, for the page's response; none if there was nothing."""
    if _cookie_for(request) is None:
        return []
    return [Cookie(key=COOKIE, value="", path="/", max_age=0, httponly=True, samesite="lax")]


def _cookie_for(request: Request[Any, Any, Any]) -> str | None:
    path, _, query = _unpacked(request.cookies.get(COOKIE, "")).partition("?")
    return query if path and path == request.url.path else None


def _packed(text: str) -> str:
    """`text` in letters, digits, - and _ only, which every cookie parser keeps as it is."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unpacked(value: str) -> str:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ""  # a cookie we did not write says nothing
