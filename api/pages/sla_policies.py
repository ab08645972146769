"""SLA policies on the dashboard (admins): each policy's targets and business hours in words, and a form to
make or change one (targets in business minutes, split shifts per weekday, holidays, on/off)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from api.auth import requires_role
from api.pages import notices
from api.pages.common import StaffPages, container_of, page, staff_of, utc_now
from api.pages.notices import after_change
from domain.conversations.sla import WEEKDAYS, PolicyError, hours_in_words, minutes_in_words
from domain.conversations.sla_policies import DAY_NAMES, SlaPolicyDraft, draft_of, save_sla_policy
from domain.vocabulary import Role
from storage.queries.clinics import clinics
from storage.queries.sla import sla_policies, sla_policy_values

PATH = "/communication/chat/sla-policies"
DONE = {"created": "The policy is saved.", "saved": "Your changes are saved."}


def _draft(form: Any) -> SlaPolicyDraft:
    def text(name: str, limit: int = 200) -> str:
        return str(form.get(name, ""))[:limit]

    return SlaPolicyDraft(
        name=text("name"),
        location=text("location", 32),
        first_response=text("first_response", 12),
        next_response=text("next_response", 12),
        resolution=text("resolution", 12),
        warn_before=text("warn_before", 12),
        hours={day: text(f"hours_{day}") for day in WEEKDAYS},
        holidays=text("holidays", 8000),
        enabled=form.get("enabled") == "on",
    )


class SlaPolicyPages(StaffPages):
    @get(PATH, name="sla_policies", guards=[requires_role(Role.ADMIN)])
    async def list_page(self, request: Request[Any, Any, Any]) -> Template:
        container = container_of(request)
        rows = [
            {
                "id": view.policy.policy_id,
                "name": view.policy.name,
                "applies": f"{view.location} only" if view.location else "every clinic without its own",
                "first": minutes_in_words(view.policy.first_response_minutes),
                "next": minutes_in_words(view.policy.next_response_minutes),
                "resolution": minutes_in_words(view.policy.resolution_minutes),
                "warn": f"{view.policy.warn_before_minutes} min before",
                "hours": hours_in_words(view.policy.business_hours, view.policy.holidays),
                "enabled": view.policy.enabled,
            }
            for view in await sla_policies(container.database)
        ]
        done = DONE.get(str(notices.said(request).get("done", "")))
        return page(
            request, "communication/sla_policies.html", "communication", "chat", policies=rows, done=done
        )

    @get(f"{PATH}/new", name="sla_policy_new", guards=[requires_role(Role.ADMIN)])
    async def new_page(self, request: Request[Any, Any, Any]) -> Template:
        return await self._form(request, None, SlaPolicyDraft(name="", warn_before="10"))

    async def _form(
        self, request: Request[Any, Any, Any], policy_id: int | None, draft: SlaPolicyDraft, **extra: Any
    ) -> Template:
        return page(
            request,
            "communication/sla_policy.html",
            "communication",
            "chat",
            policy_id=policy_id,
            draft=draft,
            days=[(day, DAY_NAMES[day]) for day in WEEKDAYS],
            clinics=await clinics(container_of(request).database),
            **extra,
        )

    @post(PATH, name="sla_policy_create", guards=[requires_role(Role.ADMIN)], status_code=303)
    async def create(self, request: Request[Any, Any, Any]) -> Redirect | Template:
        return await self._save(request, None)

    @get(f"{PATH}/{{policy_id:int}}", name="sla_policy", guards=[requires_role(Role.ADMIN)])
    async def edit_page(self, request: Request[Any, Any, Any], policy_id: FromPath[int]) -> Template:
        found = await sla_policy_values(container_of(request).database, policy_id)
        if found is None:
            raise NotFoundException(f"There is no SLA policy {policy_id}.")
        values, code = found
        return await self._form(request, policy_id, draft_of(values, code))

    @post(
        f"{PATH}/{{policy_id:int}}",
        name="sla_policy_update",
        guards=[requires_role(Role.ADMIN)],
        status_code=303,
    )
    async def update(self, request: Request[Any, Any, Any], policy_id: FromPath[int]) -> Redirect | Template:
        return await self._save(request, policy_id)

    async def _save(self, request: Request[Any, Any, Any], policy_id: int | None) -> Redirect | Template:
        container, staff = container_of(request), staff_of(request)
        draft = _draft(await request.form())
        try:
            await save_sla_policy(
                container.units.sla_policies(), policy_id, draft, actor=staff.email, via="web", now=utc_now()
            )
        except PolicyError as error:
            template = await self._form(request, policy_id, draft, error=str(error))
            template.status_code = 422
            return template
        except LookupError as error:
            raise NotFoundException(str(error)) from None
        return after_change(request, PATH, done="created" if policy_id is None else "saved")
