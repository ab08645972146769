"""The security headers every answer carries: a strict Content-Security-Policy, no framing, no referrer.

Nothing on the dashboard loads from elsewhere and no page runs a script (except the live inbox pages, which
run our own chat_live.js: LIVE_PAGE_POLICY), so the policy allows only our own stylesheet, our own images (and
the data: images inside charts), and forms posting back to us.
"""

from __future__ import annotations

import base64
import hashlib

from litestar.types import Message, Scope

#: The one <style> element matplotlib writes into every SVG chart the pages show inline.
CHART_STYLESHEET = "*{stroke-linejoin: round; stroke-linecap: butt}"


def style_hash(css: str) -> str:
    """The CSP source that allows exactly this inline <style> element's text."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(css.encode()).digest()).decode() + "'"


CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'none'",
        f"style-src 'self' {style_hash(CHART_STYLESHEET)}",
        # Chart SVG colours every shape with a style attribute; attributes cannot run code, and
        # `url(...)` in them still obeys img-src. The renderer writing presentation attributes instead
        # (fill="...") would let this line go.
        "style-src-attr 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)

#: The live inbox pages (the chat queues and a conversation) load one script of ours, /static/chat_live.js,
#: for their live updates; they still allow no inline script, no handler attribute and nothing from elsewhere
#: (`'self'` admits only files served from our origin, and nosniff makes those need a script type). Every
#: other page keeps `script-src 'none'`. The pages set this header themselves, so the hook below leaves it.
LIVE_PAGE_POLICY = CONTENT_SECURITY_POLICY.replace("script-src 'none'", "script-src 'self'")
assert LIVE_PAGE_POLICY != CONTENT_SECURITY_POLICY

SECURITY_HEADERS: dict[bytes, bytes] = {
    b"content-security-policy": CONTENT_SECURITY_POLICY.encode(),
    b"x-frame-options": b"DENY",
    # The one-time sign-in link is a token in the path: no page may pass its address on.
    b"referrer-policy": b"no-referrer",
    b"x-content-type-options": b"nosniff",
}


async def add_security_headers(message: Message, scope: Scope) -> None:
    """before_send hook: the headers above on every answer (a handler that sets one keeps its own)."""
    if message["type"] != "http.response.start":
        return
    present = {name.lower() for name, _ in message.get("headers", ())}
    missing = [(name, value) for name, value in SECURITY_HEADERS.items() if name not in present]
    if missing:
        message["headers"] = [*message.get("headers", ()), *missing]
