"""The email survey's one-click links: /csat/{token}/{score} records the score and thanks the customer, with
an optional comment box that posts back to /csat/{token}. Public (no login), signed like the unsubscribe links.

A click records the score at once (one click is the point of the email); while the survey is open (7 days)
the latest click counts: the same score again changes nothing, another score replaces it. The page speaks
the customer's language, as the survey did (`SurveyWords.page`); a link that is not valid names no customer,
so it is answered in the browser's language.
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import parse_qs

from litestar import MediaType, Request, Response, get, post
from litestar.params import FromPath
from litestar.status_codes import HTTP_200_OK, HTTP_404_NOT_FOUND, HTTP_410_GONE

from api.languages import preferred_language
from domain.conversations.csat import (
    MAX_COMMENT,
    SURVEY_WORDS,
    LinkAnswer,
    SurveyWords,
    answer_by_link,
    comment_by_link,
    read_csat_token,
    survey_words,
)
from switchboard.wiring import Container


def _page(words: SurveyWords, title: str, body: str, status_code: int = HTTP_200_OK) -> Response[str]:
    html = (
        f'<!doctype html><html lang="{words.page.language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        '<link rel="stylesheet" href="/static/switchboard.css"></head>'
        f'<body><main class="public">{body}</main></body></html>'
    )
    return Response(html, status_code=status_code, media_type="text/html")


def _browser_words(request: Request[Any, Any, Any]) -> SurveyWords:
    """The survey's words in the language the browser prefers most among those the survey speaks, else
    English."""
    language = preferred_language(request.headers.get("accept-language", ""), SURVEY_WORDS)
    return SURVEY_WORDS[language or "en"]


def _not_a_link(request: Request[Any, Any, Any]) -> Response[str]:
    words = _browser_words(request)
    page = words.page
    response = _page(words, page.not_valid_title, f"<p>{escape(page.not_valid)}</p>", HTTP_404_NOT_FOUND)
    response.headers["Vary"] = "Accept-Language"
    return response


def _closed(answer: LinkAnswer) -> Response[str]:
    words = survey_words(answer.locale)
    page = words.page
    kept = f" {page.kept.format(score=words.score_said(answer.score))}" if answer.score is not None else ""
    said = escape(f"{page.closed}{kept} {page.closed_thanks}")
    return _page(words, page.closed_title, f"<p>{said}</p>", HTTP_410_GONE)


def _thanks(token: str, answer: LinkAnswer, business: str, comment_saved: bool = False) -> Response[str]:
    assert answer.score is not None
    words = survey_words(answer.locale)
    page = words.page
    said = f"<p>{escape(page.rated.format(business=business, score=words.score_said(answer.score)))}</p>"
    note = f"<p>{escape(page.comment_saved if comment_saved else page.change_hint)}</p>"
    form = (
        f'<form method="post" action="/csat/{escape(token)}">'
        f'<label for="comment">{escape(page.comment_label)}</label>'
        f'<textarea id="comment" name="comment" rows="4" maxlength="{MAX_COMMENT}">'
        f"{escape(answer.comment or '')}</textarea>"
        f'<button type="submit">{escape(page.send_comment)}</button></form>'
    )
    return _page(words, page.thanks, f"<h1>{escape(page.thanks)}</h1>{said}{note}{form}")


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
        return _not_a_link(request)
    answer = await answer_by_link(container.units.csat(), chat_id, int(score), container.clock())
    if answer.outcome == "unknown":
        return _not_a_link(request)
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
        return _not_a_link(request)
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    comment = (form.get("comment") or [""])[0]
    answer = await comment_by_link(container.units.csat(), chat_id, comment, container.clock())
    if answer.outcome == "unknown":
        return _not_a_link(request)
    if answer.outcome == "closed":
        return _closed(answer)
    return _thanks(
        token, answer, container.settings.business_name, comment_saved=answer.outcome == "recorded"
    )


csat_handlers = [csat_answer, csat_comment]
