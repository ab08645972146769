"""Services on the dashboard (managers): each service's name and the names patients read in their language.

A German-speaking patient's booking, reminder and rebooking messages name the service in German when it has
a German name (domain/services.py); this page is where those names are given.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from api.auth import requires_role
from api.pages import notices
from api.pages.common import StaffPages, container_of, page, staff_of
from api.pages.notices import after_change
from domain.services import (
    NAME_LENGTH,
    NAMEABLE_LANGUAGES,
    NamedService,
    NamingError,
    name_service,
)
from domain.templates.selection import language_of
from domain.vocabulary import Role
from storage.services import SqlServiceNamingUnitOfWork

PATH = "/communication/video/services"
KINDS = {"video": "Video", "in_person": "At the clinic"}


async def _languages(
    uow: SqlServiceNamingUnitOfWork, services: list[NamedService], business_locale: str
) -> list[tuple[str, str]]:
    """The languages to offer: those its video consultations' messages are written in, but the business's own
    (the staff name is in it), and those already named."""
    codes = set(await uow.services.video_message_languages()) - {language_of(business_locale)}
    codes.update(code for s in services for code in s.names)
    return [(code, NAMEABLE_LANGUAGES[code]) for code in sorted(codes) if code in NAMEABLE_LANGUAGES]


class ServicePages(StaffPages):
    @get(PATH, name="services", guards=[requires_role(Role.MANAGER)])
    async def list_page(self, request: Request[Any, Any, Any]) -> Template:
        container = container_of(request)
        async with container.units.service_naming(read_only=True) as uow:
            # Video services only: Switchboard writes the messages about video consultations, while a clinic
            # visit's come from the clinic system, in the names it sends.
            services = [s for s in await uow.services.services() if s.kind == "video"]
            languages = await _languages(uow, services, container.settings.business_locale)
        saved = notices.said(request).get("saved", "")
        done = next((f"{s.name} is saved." for s in services if str(s.service_id) == saved), None)
        return page(
            request,
            "communication/services.html",
            "communication",
            "video",
            services=services,
            kinds=KINDS,
            languages=languages,
            done=done,
        )

    @get(f"{PATH}/{{service_id:int}}", name="service", guards=[requires_role(Role.MANAGER)])
    async def edit_page(self, request: Request[Any, Any, Any], service_id: FromPath[int]) -> Template:
        container = container_of(request)
        async with container.units.service_naming(read_only=True) as uow:
            found = _video_service(await uow.services.service(service_id), service_id)
            languages = await _languages(uow, [found], container.settings.business_locale)
        return self._form(request, found, found.name, dict(found.names), languages)

    def _form(
        self,
        request: Request[Any, Any, Any],
        service: NamedService,
        name: str,
        names: dict[str, str],
        languages: list[tuple[str, str]],
        **extra: Any,
    ) -> Template:
        return page(
            request,
            "communication/service.html",
            "communication",
            "video",
            service=service,
            name=name,
            names=names,
            languages=languages,
            kinds=KINDS,
            limit=NAME_LENGTH,
            **extra,
        )

    @post(
        f"{PATH}/{{service_id:int}}",
        name="service_update",
        guards=[requires_role(Role.MANAGER)],
        status_code=303,
    )
    async def update(self, request: Request[Any, Any, Any], service_id: FromPath[int]) -> Redirect | Template:
        container, staff = container_of(request), staff_of(request)
        async with container.units.service_naming(read_only=True) as uow:
            _video_service(await uow.services.service(service_id), service_id)
        form = await request.form()
        name = str(form.get("name", ""))[:1000]
        names = {
            code: str(form.get(f"name_{code}", ""))[:1000]
            for code in NAMEABLE_LANGUAGES
            if f"name_{code}" in form
        }
        try:
            await name_service(
                container.units.service_naming(), service_id, name, names, actor=staff.email, via="web"
            )
        except LookupError as error:
            raise NotFoundException(str(error)) from None
        except NamingError as error:
            async with container.units.service_naming(read_only=True) as uow:
                found = await uow.services.service(service_id)
                if found is None:
                    raise NotFoundException(f"There is no service {service_id}.") from None
                languages = await _languages(uow, [found], container.settings.business_locale)
            template = self._form(request, found, name, names, languages, error=str(error))
            template.status_code = 422
            return template
        return after_change(request, PATH, saved=service_id)


def _video_service(found: NamedService | None, service_id: int) -> NamedService:
    """The video service this page names, or a 404 in words: clinic visits' messages come from the clinic
    system, in its names, so naming them here would change nothing a patient reads (the JSON API keeps them)."""
    if found is None:
        raise NotFoundException(f"There is no service {service_id}.")
    if found.kind != "video":
        raise NotFoundException(
            f"“{found.name}” is a clinic visit: its messages come from the clinic system in the names it sends, "
            "so it is not named here."
        )
    return found
