"""Website chat keys on the dashboard (admins): the keys with their websites, clinics and the snippet to embed,
making a key, and switching one off or on again (a leaked key is stopped here)."""

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
from domain.vocabulary import Role
from domain.widget.model import WidgetRefused
from domain.widget.use_cases import create_widget_key, set_widget_key_enabled
from storage.queries.clinics import clinics
from storage.queries.widget import widget_keys
from storage.widget_visits import widget_unit

PATH = "/communication/chat/widget-keys"
DONE = {
    "created": "The key is made: embed its snippet on the website.",
    "off": "The key is switched off: its website's chat no longer opens or sends.",
    "on": "The key is switched on again.",
}


class WidgetKeyPages(StaffPages):
    @get(PATH, name="widget_keys", guards=[requires_role(Role.ADMIN)])
    async def list_page(self, request: Request[Any, Any, Any]) -> Template:
        return await self._list(request)

    async def _list(self, request: Request[Any, Any, Any], **extra: Any) -> Template:
        container = container_of(request)
        found = await clinics(container.database)
        names = {clinic_id: name for clinic_id, _, name in found}
        public = container.settings.public_url.rstrip("/")
        keys = [
            {
                "id": key.id,
                "name": key.name,
                "origins": key.allowed_origins,
                "clinic": names.get(key.location_id, "—")
                if key.location_id
                else "every clinic (default team)",
                "enabled": key.enabled,
                "snippet": f'<script src="{public}/widget.js" data-key="{key.key}" async></script>',
            }
            for key in await widget_keys(container.database)
        ]
        done = str(notices.said(request).get("done", ""))
        return page(
            request,
            "communication/widget_keys.html",
            "communication",
            "chat",
            keys=keys,
            clinics=found,
            done=DONE.get(done),
            **extra,
        )

    @post(PATH, name="widget_key_create", guards=[requires_role(Role.ADMIN)], status_code=303)
    async def create(self, request: Request[Any, Any, Any]) -> Redirect | Template:
        container, staff = container_of(request), staff_of(request)
        form = await request.form()
        name = str(form.get("name", ""))[:200]
        origins = [line for line in str(form.get("origins", ""))[:4000].split() if line]
        clinic = str(form.get("location", "")).strip()[:32] or None
        try:
            await create_widget_key(
                widget_unit(container.units),
                name=name,
                origins=origins,
                location=clinic,
                actor=staff.email,
                via="web",
                now=utc_now(),
            )
        except WidgetRefused as error:
            template = await self._list(
                request,
                error=str(error),
                draft={"name": name, "origins": "\n".join(origins), "location": clinic},
            )
            template.status_code = 422
            return template
        return after_change(request, PATH, done="created")

    @post(
        f"{PATH}/{{key_id:int}}/switch",
        name="widget_key_switch",
        guards=[requires_role(Role.ADMIN)],
        status_code=303,
    )
    async def switch(self, request: Request[Any, Any, Any], key_id: FromPath[int]) -> Redirect:
        container, staff = container_of(request), staff_of(request)
        turn_on = str((await request.form()).get("enabled", "")) == "1"
        try:
            await set_widget_key_enabled(
                widget_unit(container.units), key_id, turn_on, actor=staff.email, via="web", now=utc_now()
            )
        except WidgetRefused as error:
            raise NotFoundException(str(error)) from None
        return after_change(request, PATH, done="on" if turn_on else "off")
