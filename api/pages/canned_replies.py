"""Canned replies on the dashboard: the picker in a conversation's reply box, its JSON search, and the
managers' page that lists, creates, edits and deletes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from api.auth import SignedInStaff, requires_role
from api.pages import notices
from api.pages.common import StaffPages, container_of, page, staff_of, utc_now, whole_number
from api.pages.notices import after_change
from domain.canned_replies.model import CannedActor, CannedReply, CannedReplyDraft, CannedReplyError
from domain.canned_replies.rules import (
    KNOWN_VARIABLES,
    SHORTCUT,
    fill,
    known_values,
    missing_sentence,
    variables_in,
)
from domain.canned_replies.use_cases import create_canned_reply, delete_canned_reply, update_canned_reply
from domain.vocabulary import Role
from storage.database import Database
from storage.queries.canned_replies import (
    canned_reply_by_id,
    canned_reply_named,
    canned_teams,
    conversation_customer,
    search_canned_replies,
)
from switchboard.wiring import Container

#: The longest value an agent types for one variable in the picker.
VALUE_LIMIT = 200
ADMIN_PATH = "/communication/chat/canned-replies"


@dataclass(frozen=True)
class CannedOption:
    """One canned reply as the JSON search answers it; `text` is filled for `chat` when one is given."""

    shortcut: str
    title: str
    team: str | None
    variables: list[str]
    text: str
    missing: list[str]


async def filled_for_chat(
    database: Database,
    reply: CannedReply,
    chat_id: int,
    staff: SignedInStaff,
    business_name: str,
    typed: dict[str, str] | None = None,
) -> tuple[str, tuple[str, ...]]:
    """The reply filled for the conversation's customer, the agent and the business, plus what the agent
    typed into the picker; the text and the variables still to fill."""
    customer = await conversation_customer(database, chat_id)
    known = known_values(customer, agent_name=staff.name, business_name=business_name)
    known |= {name: value for name, value in (typed or {}).items() if value}
    filled = fill(reply, known)
    return filled.text, filled.missing


def typed_values(params: Any, reply: CannedReply) -> dict[str, str]:
    """What the agent typed for the reply's variables in the picker (`v_NAME`), trimmed."""
    return {
        name: str(params.get(f"v_{name}", "")).strip()[:VALUE_LIMIT]
        for name in variables_in(reply.body)
        if str(params.get(f"v_{name}", "")).strip()
    }


async def picker(
    request: Request[Any, Any, Any], container: Container, chat_id: int, form: Any = None
) -> dict[str, Any]:
    """The reply box's canned-reply picker, from the page's query: `canned` searches, `use` inserts one.
    What the agent types for a reply's variables (`v_NAME`: a patient's new time, a name) comes as a posted
    `form`, so it stays out of the address bar, the browser's history and the access log."""
    params = form if form is not None else request.query_params
    search = str(params.get("canned", "")).strip()[:40]
    use = str(params.get("use", "")).strip().lstrip("/").lower()[:32]
    team = str(params.get("team", "")).strip() or None
    teams = await canned_teams(container.database)
    matches = await search_canned_replies(container.database, search, team=team, limit=20)
    chosen: dict[str, Any] | None = None
    if use and SHORTCUT.fullmatch(use):
        reply = await canned_reply_named(container.database, use)
        if reply is not None:
            typed = typed_values(params, reply)
            text, missing = await filled_for_chat(
                container.database, reply, chat_id, staff_of(request), container.settings.business_name, typed
            )
            chosen = {
                "shortcut": reply.shortcut,
                "title": reply.title,
                "text": text,
                "missing": list(missing),
                "missing_text": missing_sentence(missing),
            }
    return {
        "search": search,
        "team": team or "",
        "teams": teams,
        "open": bool(search or use or team),
        "matches": [{"shortcut": r.shortcut, "title": r.title, "team": r.team} for r in matches],
        "chosen": chosen,
    }


def _draft(form: Any) -> CannedReplyDraft:
    return CannedReplyDraft(
        shortcut=str(form.get("shortcut", "")),
        title=str(form.get("title", "")),
        body=str(form.get("body", "")),
        team=str(form.get("team", "")) or None,
    )


def _actor(staff: SignedInStaff) -> CannedActor:
    return CannedActor(staff.id, staff.email, "web")


def _row(reply: CannedReply) -> dict[str, Any]:
    return {
        "id": reply.id,
        "shortcut": reply.shortcut,
        "title": reply.title,
        "team": reply.team or "everyone",
        "body": reply.body,
        "variables": ", ".join(f"{{{v}}}" for v in variables_in(reply.body)) or "—",
    }


class CannedReplyPages(StaffPages):
    @get("/communication/chat/canned", name="canned_search", guards=[requires_role(Role.AGENT)])
    async def search(self, request: Request[Any, Any, Any]) -> list[CannedOption]:
        """JSON: replies whose shortcut or title starts with `q` (per `team`), filled for `chat` if given."""
        container, params = container_of(request), request.query_params
        query, team = str(params.get("q", ""))[:40], str(params.get("team", "")).strip() or None
        chat = str(params.get("chat", ""))
        found = await search_canned_replies(container.database, query, team=team, limit=20)
        options = []
        for reply in found:
            text, missing = reply.body, variables_in(reply.body)
            chat_id = whole_number(chat)
            if chat_id is not None:
                text, missing = await filled_for_chat(
                    container.database, reply, chat_id, staff_of(request), container.settings.business_name
                )
            options.append(
                CannedOption(
                    reply.shortcut,
                    reply.title,
                    reply.team,
                    list(variables_in(reply.body)),
                    text,
                    list(missing),
                )
            )
        return options

    @get(ADMIN_PATH, name="canned_replies", guards=[requires_role(Role.MANAGER)])
    async def list_page(self, request: Request[Any, Any, Any]) -> Template:
        return await self._list(request)

    async def _list(self, request: Request[Any, Any, Any], **extra: Any) -> Template:
        container = container_of(request)
        replies = await search_canned_replies(container.database, limit=500)
        return page(
            request,
            "communication/canned_replies.html",
            "communication",
            "chat",
            replies=[_row(r) for r in replies],
            known_variables=KNOWN_VARIABLES,
            done=str(notices.said(request).get("done", ""))[:20],
            **extra,
        )

    @post(ADMIN_PATH, name="canned_reply_create", guards=[requires_role(Role.MANAGER)], status_code=303)
    async def create(self, request: Request[Any, Any, Any]) -> Redirect | Template:
        container, staff = container_of(request), staff_of(request)
        draft = _draft(await request.form())
        try:
            await create_canned_reply(container.units.canned_replies(), draft, _actor(staff), now=utc_now())
        except CannedReplyError as error:
            template = await self._list(request, error=str(error), draft=draft)
            template.status_code = 422
            return template
        return after_change(request, ADMIN_PATH, done="created")

    @get(f"{ADMIN_PATH}/{{reply_id:int}}", name="canned_reply", guards=[requires_role(Role.MANAGER)])
    async def edit_page(self, request: Request[Any, Any, Any], reply_id: FromPath[int]) -> Template:
        reply = await canned_reply_by_id(container_of(request).database, reply_id)
        if reply is None:
            raise NotFoundException(f"There is no canned reply {reply_id}.")
        return self._edit(
            request, reply, CannedReplyDraft(reply.shortcut, reply.title, reply.body, reply.team)
        )

    def _edit(
        self, request: Request[Any, Any, Any], reply: CannedReply, draft: CannedReplyDraft, **extra: Any
    ) -> Template:
        return page(
            request,
            "communication/canned_reply.html",
            "communication",
            "chat",
            reply=_row(reply),
            draft=draft,
            known_variables=KNOWN_VARIABLES,
            **extra,
        )

    @post(
        f"{ADMIN_PATH}/{{reply_id:int}}",
        name="canned_reply_update",
        guards=[requires_role(Role.MANAGER)],
        status_code=303,
    )
    async def update(self, request: Request[Any, Any, Any], reply_id: FromPath[int]) -> Redirect | Template:
        container, staff = container_of(request), staff_of(request)
        draft = _draft(await request.form())
        try:
            await update_canned_reply(
                container.units.canned_replies(), reply_id, draft, _actor(staff), now=utc_now()
            )
        except CannedReplyError as error:
            reply = await canned_reply_by_id(container.database, reply_id)
            if reply is None:
                raise NotFoundException(str(error)) from None
            template = self._edit(request, reply, draft, error=str(error))
            template.status_code = 422
            return template
        return after_change(request, ADMIN_PATH, done="saved")

    @post(
        f"{ADMIN_PATH}/{{reply_id:int}}/delete",
        name="canned_reply_delete",
        guards=[requires_role(Role.MANAGER)],
        status_code=303,
    )
    async def delete(self, request: Request[Any, Any, Any], reply_id: FromPath[int]) -> Redirect:
        container, staff = container_of(request), staff_of(request)
        try:
            await delete_canned_reply(container.units.canned_replies(), reply_id, _actor(staff))
        except CannedReplyError as error:
            raise NotFoundException(str(error)) from None
        return after_change(request, ADMIN_PATH, done="deleted")
