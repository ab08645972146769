"""What a dashboard form's redirect says on the page it leads to (see api/pages/notices.py), read off the
response as a browser would carry it: the cookie names the page and what to say there once."""

from __future__ import annotations

import base64
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl

from api.pages.notices import COOKIE


def said_after(response: Any) -> tuple[str, dict[str, str]]:
    """The page a redirect's notice is for, and what it says there (`{"done": "created"}`)."""
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    packed = jar[COOKIE].value
    path, _, query = base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4)).decode().partition("?")
    return path, dict(parse_qsl(query))
