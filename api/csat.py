"""The email survey's one-click links: /csat/{token}/{score} records the score and thanks the customer, with
an optional comment box that posts back to /csat/{token}. Public (no login), signed like the unsubscribe links.

A click records the score at once (one click is the point of the email); while the survey is open (7 days)
the latest click counts: the same score again changes nothing, another score replaces it.
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import parse_qs

from litestar import MediaType, Request, Response, get, post
from litestar.params import FromPath
from litestar.status_codes import HTTP_200_OK, HTTP_404_NOT_FOUND, HTTP_410_GONE

from domain.conversations.csat import (
    MAX_COMMENT,
    SCORE_WORDS,
    LinkAnswer,
    answer_by_link,
    comment_by_link,
    read_csat_token,
)
from switchboard.wiring import Container


def _page(title: str, body: str, status_code: int = HTTP_200_OK) -> Response[str]:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        '<link rel="stylesheet" href="/static/switchboard.css"></head>'
        f'<body><main class="public">{body}</main></body></html>'
    )
    return Response(html, status_code=status_code, media_type="text/html")


def _not_a_link() -> Response[str]:
    return _page("Link not valid", "<p>This survey link is not valid.</p>", HTTP_404_NOT_FOUND)


def _closed(answer: LinkAnswer) -> Response[str]:
    kept = f" We kept your answer, {answer.score} of 5." if answer.score is not None else ""
    return _page(
        "Survey closed", f"<p>This survey has closed.{kept} Thank you all the same.</p>", HTTP_410_GONE
    )


def _score_words(score: int) -> str:
    word = SCORE_WORDS.get(score)
    return f"{score} of 5 ({word})" if word else f"{score} of 5"


def _thanks(token: str, answer: LinkAnswer, business: str, comment_saved: bool = False) -> Response[str]:
    assert answer.score is not None
    said = f"<p>You rated your conversation with {escape(business)} {_score_words(answer.score)}.</p>"
    if comment_saved:
        note = "<p>Your comment is saved. Thank you for taking the time.</p>"
    else:
        note = "<p>Changed your mind? Click another score in the email; the latest one counts.</p>"
    form = (
        f'<form method="post" action="/csat/{escape(token)}">'
        '<label for="comment">Anything you would like to add? (optional)</label>'
        f'<textarea id="comment" name="comment" rows="4" maxlength="{MAX_COMMENT}">'
        f"{escape(answer.comment or '')}</textarea>"
        '<button type="submit">Send comment</button></form>'
    )
    return _page("Thank you", f"<h1>Thank you!</h1>{said}{note}{form}")


@get(
    "/csat/{token:str}/{score:str}",
    exclude_from_auth=True,
    name="csat_answer",
    media_type=MediaType.HTML,
    include_in_schema=False,
)
async def csat_answer(
    request: Request[Any, Any, Any], token: FromPath[str], score: FromPath[str]
) -> Response[str]:
    """A score link from the survey email: records the score and shows the thank-you page."""
    container: Container = request.app.state.container
    chat_id = read_csat_token(container.settings.session_secret.get_secret_value(), token)
    if chat_id is None or not (score.isascii() and score.isdigit()):
        return _not_a_link()
    answer = await answer_by_link(container.units.csat(), chat_id, int(score), container.clock())
    if answer.outcome == "unknown":
        return _not_a_link()
    if answer.outcome == "closed":
        return _closed(answer)
    return _thanks(token, answer, container.settings.business_name)


@post(
    "/csat/{token:str}",
    exclude_from_auth=True,
    name="csat_comment",
    status_code=HTTP_200_OK,
    media_type=MediaType.HTML,
    include_in_schema=False,
)
async def csat_comment(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[str]:
    """The optional comment from the thank-you page (a later one replaces it while the survey is open)."""
    container: Container = request.app.state.container
    chat_id = read_csat_token(container.settings.session_secret.get_secret_value(), token)
    if chat_id is None:
        return _not_a_link()
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    comment = (form.get("comment") or [""])[0]
    answer = await comment_by_link(container.units.csat(), chat_id, comment, container.clock())
    if answer.outcome == "unknown":
        return _not_a_link()
    if answer.outcome == "closed":
        return _closed(answer)
    return _thanks(
        token, answer, container.settings.business_name, comment_saved=answer.outcome == "recorded"
    )


csat_handlers = [csat_answer, csat_comment]
