"""GET /media/{chat}/{sha256}?expires=…&sig=…: a file staff sent a customer, public by a signed, expiring link
(WhatsApp fetches media by link; email, SMS and the website chat show it as one)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from domain.clock import utc_now
from domain.conversations.attachments import MediaLinks
from storage.queries.chat_attachments import StoredFile, sent_file
from switchboard.settings import Settings
from switchboard.wiring import Container

#: A kept file opened on its own: no script, no style, nothing loaded, in a sandbox with no origin.
ATTACHMENT_POLICY = "default-src 'none'; img-src 'self'; script-src 'none'; sandbox; frame-ancestors 'none'"


def media_links_of(settings: Settings) -> MediaLinks:
    """Links signed with the session secret, under the public URL."""
    return MediaLinks(settings.public_url, settings.session_secret.get_secret_value())


def file_response(found: StoredFile, *, cache: str = "private, no-store") -> Response[bytes]:
    """A kept file with its checked type: images inline, PDFs as a download, nothing able to run a script."""
    disposition = "inline" if found.content_type.startswith("image/") else "attachment"
    return Response(
        found.content,
        media_type=found.content_type,
        headers={
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(found.filename)}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": ATTACHMENT_POLICY,
            "Cache-Control": cache,
        },
    )


@get("/media/{chat_id:int}/{sha256:str}", exclude_from_auth=True, include_in_schema=False, name="media_link")
async def media_link(
    request: Request[Any, Any, Any], chat_id: FromPath[int], sha256: FromPath[str]
) -> Response[bytes]:
    container: Container = request.app.state.container
    links = media_links_of(container.settings)
    expires, signature = request.query_params.get("expires", ""), request.query_params.get("sig", "")
    if not links.check(chat_id, sha256, str(expires), str(signature), utc_now()):
        raise NotFoundException("This link is not valid or has expired.")
    found = await sent_file(container.database, chat_id, sha256)
    if found is None:
        raise NotFoundException("This file is no longer available.")
    return file_response(found, cache="private, max-age=3600")


media_link_handlers = [media_link]
