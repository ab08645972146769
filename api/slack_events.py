"""POST /slack/events: hands Slack's signed requests (commands, events, button presses) to the Bolt app.

Thin on purpose: Bolt verifies the signature (signing secret, 5-minute window), acknowledges and runs
the listeners. A plain route rather than a mounted ASGI app, because a mounted app sees a rewritten
path that Bolt's ASGI adapter does not match.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from slack_bolt.request.async_request import AsyncBoltRequest

from switchboard.wiring import Container

#: Slack signs its requests itself; session auth and CSRF tokens cannot apply to it.
PUBLIC_WEBHOOK = {"exclude_from_auth": True, "exclude_from_csrf": True}


@post("/slack/events", opt=PUBLIC_WEBHOOK, include_in_schema=False, status_code=200)
async def slack_events(request: Request[Any, Any, Any]) -> Response[bytes]:
    container: Container = request.app.state.container
    slack_app = container.slack_app
    if slack_app is None:
        return Response(b"Slack is not configured on this server", status_code=503, media_type="text/plain")
    # Bolt checks the signature over the exact text Slack sent, so the body goes on unparsed.
    raw_body = (await request.body()).decode("utf-8")
    bolt_request = AsyncBoltRequest(
        body=raw_body, query=request.url.query, headers=dict(request.headers.items())
    )
    bolt_response = await slack_app.async_dispatch(bolt_request)
    headers = bolt_response.first_headers_without_set_cookie()
    media_type = headers.pop("content-type", "text/plain")
    if media_type.startswith("text/"):  # Litestar adds "; charset=utf-8" to a text type itself
        media_type = media_type.split(";", 1)[0]
    return Response(
        content=bolt_response.body.encode("utf-8"),
        status_code=bolt_response.status,
        headers=headers,
        media_type=media_type,
    )
