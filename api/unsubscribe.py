"""One-click unsubscribe (RFC 8058): signed links, a confirmation page for people, the POST for mailbox providers."""

from __future__ import annotations

import logging
from html import escape
from typing import Any
from urllib.parse import parse_qs

from litestar import MediaType, Request, Response, get, post
from litestar.openapi import ResponseSpec
from litestar.params import FromPath
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_400_BAD_REQUEST,
    HTTP_404_NOT_FOUND,
    HTTP_422_UNPROCESSABLE_ENTITY,
)
from pydantic import SecretStr

from api.languages import preferred_language
from api.problems import Problem
from domain.clock import utc_now
from domain.consent import unsubscribe as links
from domain.consent.ledger import record_consent
from domain.consent.unsubscribe import UnsubscribePageWords, unsubscribe_page_words
from domain.vocabulary import Channel, ConsentStatus
from storage.queries.customers import unsubscribe_subject
from switchboard.settings import Settings
from switchboard.wiring import Container

log = logging.getLogger(__name__)

ONE_CLICK_FIELD = "List-Unsubscribe"
ONE_CLICK_VALUE = "One-Click"
#: The page's own form says it is the page's (a mail program posts the one-click body alone).
BY_FIELD, BY_PAGE = "by", "page"
#: The consent ledger's detail for each way in.
CLICKED_ON_PAGE = "clicked Unsubscribe on the unsubscribe page"
ONE_CLICK_DETAIL = "one-click (the mail program's Unsubscribe button)"


def _secret(secret: str | SecretStr) -> str:
    return secret.get_secret_value() if isinstance(secret, SecretStr) else secret


def unsubscribe_token(secret: str | SecretStr, customer_id: int, channel: Channel | str) -> str:
    """The signed token of a customer and channel (see domain.consent.unsubscribe)."""
    return links.unsubscribe_token(_secret(secret), customer_id, channel)


def read_unsubscribe_token(secret: str | SecretStr, token: str) -> tuple[int, Channel] | None:
    """The (customer id, channel) a token names, or None when it is not one we signed."""
    return links.read_unsubscribe_token(_secret(secret), token)


def unsubscribe_url(settings: Settings, customer_id: int, channel: Channel | str = Channel.EMAIL) -> str:
    """The List-Unsubscribe URL for a customer and channel."""
    return unsubscribe_links(settings).url(customer_id, channel)


def unsubscribe_links(settings: Settings) -> links.UnsubscribeLinks:
    return links.UnsubscribeLinks(settings.public_url, _secret(settings.session_secret))


def _page(
    words: UnsubscribePageWords, title: str, body: str, status_code: int = HTTP_200_OK, *, vary: bool = False
) -> Response[str]:
    html = (
        f'<!doctype html><html lang="{words.language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        '<link rel="stylesheet" href="/static/switchboard.css"></head>'
        f'<body><main class="public">{body}</main></body></html>'
    )
    response = Response(html, status_code=status_code, media_type="text/html")
    if vary:  # answered in the browser's language, not a customer's
        response.headers["Vary"] = "Accept-Language"
    return response


def _browser_words(request: Request[Any, Any, Any]) -> UnsubscribePageWords:
    """A link that names no customer is answered in the language the browser prefers among the page's."""
    spoken = links.UNSUBSCRIBE_PAGE_WORDS
    return spoken[preferred_language(request.headers.get("accept-language", ""), spoken) or "en"]


def _said(
    words: UnsubscribePageWords, title: str, text: str, status_code: int, *, vary: bool
) -> Response[str]:
    return _page(words, title, f"<p>{escape(text)}</p>", status_code, vary=vary)


def _not_found(request: Request[Any, Any, Any]) -> Response[str]:
    words = _browser_words(request)
    return _said(words, words.not_valid_title, words.not_valid, HTTP_404_NOT_FOUND, vary=True)


def _no_longer_in_use(request: Request[Any, Any, Any]) -> Response[str]:
    """The customer the link names has been deleted: there is nobody left to unsubscribe or to message."""
    words = _browser_words(request)
    return _said(words, words.gone_title, words.gone, HTTP_404_NOT_FOUND, vary=True)


def _html(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=str, media_type=MediaType.HTML, description=description)


NOT_A_LINK = _html("The token is not one we signed, or its customer no longer exists.")
UNREADABLE = ResponseSpec(
    data_container=Problem, description="The address holds a NUL character or a number beyond 64 bits."
)


@get(
    "/unsubscribe/{token:str}",
    exclude_from_auth=True,
    name="unsubscribe_page",
    media_type=MediaType.HTML,
    responses={HTTP_404_NOT_FOUND: NOT_A_LINK, HTTP_422_UNPROCESSABLE_ENTITY: UNREADABLE},
)
async def unsubscribe_page(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[str]:
    """A confirmation page only: mail scanners prefetch links, so GET never unsubscribes."""
    container: Container = request.app.state.container
    named = read_unsubscribe_token(container.settings.session_secret, token)
    if named is None:
        return _not_found(request)
    subject = await unsubscribe_subject(container.database, named[0], named[1].value)
    if subject is None:
        return _no_longer_in_use(request)
    words = unsubscribe_page_words(subject.locale)
    business, channel = container.settings.business_name, words.on(named[1])
    if subject.opted_out:  # a second click: say so, with nothing to confirm
        already = words.already.format(business=business, channel=channel)
        return _page(words, words.done_title, f"<h1>{escape(words.done_title)}</h1><p>{escape(already)}</p>")
    question = words.question.format(business=business, channel=channel)
    return _page(
        words,
        words.title,
        f"<h1>{escape(words.title)}</h1><p>{escape(question)}</p>"
        f'<form method="post" action="/unsubscribe/{escape(token)}">'
        f'<input type="hidden" name="{ONE_CLICK_FIELD}" value="{ONE_CLICK_VALUE}">'
        f'<input type="hidden" name="{BY_FIELD}" value="{BY_PAGE}">'
        f'<button type="submit">{escape(words.button)}</button></form>',
    )


@post(
    "/unsubscribe/{token:str}",
    exclude_from_auth=True,
    name="unsubscribe",
    status_code=HTTP_200_OK,
    media_type=MediaType.HTML,
    responses={
        HTTP_400_BAD_REQUEST: _html("The body is not List-Unsubscribe=One-Click."),
        HTTP_404_NOT_FOUND: NOT_A_LINK,
        HTTP_422_UNPROCESSABLE_ENTITY: UNREADABLE,
    },
)
async def unsubscribe(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[str]:
    """RFC 8058 one-click: the body is `List-Unsubscribe=One-Click`; no login, no redirect."""
    container: Container = request.app.state.container
    named = read_unsubscribe_token(container.settings.session_secret, token)
    if named is None:
        return _not_found(request)
    customer_id, channel = named
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    if ONE_CLICK_VALUE not in form.get(ONE_CLICK_FIELD, []):
        words = _browser_words(request)
        return _said(words, words.bad_request_title, words.bad_request, HTTP_400_BAD_REQUEST, vary=True)
    subject = await unsubscribe_subject(container.database, customer_id, channel.value)
    if subject is None:
        return _no_longer_in_use(request)
    source = "email_unsubscribe" if channel is Channel.EMAIL else f"{channel.value}_unsubscribe"
    await record_consent(
        container.conversation_uow(),
        customer_id,
        channel,
        ConsentStatus.OPTED_OUT,
        source,
        # The person on our page, or their mail program's Unsubscribe button (RFC 8058): the ledger says which.
        CLICKED_ON_PAGE if BY_PAGE in form.get(BY_FIELD, []) else ONE_CLICK_DETAIL,
        utc_now(),
        skip_if_unchanged=True,
    )
    log.info("customer %s unsubscribed from %s by one-click", customer_id, channel.value)
    words = unsubscribe_page_words(subject.locale)
    done = words.done.format(business=container.settings.business_name, channel=words.on(channel))
    return _page(words, words.done_title, f"<h1>{escape(words.done_title)}</h1><p>{escape(done)}</p>")


unsubscribe_handlers = [unsubscribe_page, unsubscribe]
