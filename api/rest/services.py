"""/api/services: the services the business books, and their names in the languages patients read.

A practice system keeps its catalogue's translations here, as managers do on /communication/video/services.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, put
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody

from api.rest.common import (
    API_SECURITY,
    RowId,
    Unprocessable,
    api_actor,
    container_of,
    problems,
    require_api_token,
)
from domain.services import NAME_LENGTH, NAMEABLE_LANGUAGES, NamedService, NamingError, name_service

NAMES_HELP = (
    "the name per language patients read, by language code ("
    + ", ".join(sorted(NAMEABLE_LANGUAGES))
    + "); a language left out or empty reads `name`"
)


class ServiceNamesIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=4 * NAME_LENGTH)]
    names: Annotated[
        dict[str, str], msgspec.Meta(max_length=len(NAMEABLE_LANGUAGES), description=NAMES_HELP)
    ] = msgspec.field(default_factory=dict)


def service_json(service: NamedService) -> dict[str, Any]:
    return {
        "id": service.service_id,
        "code": service.code,
        "name": service.name,
        "names": dict(service.names),
        "kind": service.kind,
        "duration_minutes": service.duration_minutes,
    }


class ServicesController(Controller):
    path = "/api/services"
    guards = [require_api_token]
    security = API_SECURITY
    tags = ["services"]

    @get("/", responses=problems())
    async def services(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Every service with its staff name and its names in other languages."""
        async with container_of(request).units.service_naming(read_only=True) as uow:
            return {"services": [service_json(s) for s in await uow.services.services()]}

    @put("/{service_id:int}", responses=problems(404, body=True))
    async def name(
        self, request: Request[Any, Any, Any], service_id: FromPath[RowId], data: JSONBody[ServiceNamesIn]
    ) -> dict[str, Any]:
        """Set the service's staff name and its names in other languages (all of them: a language not given
        is no longer named); audited as `service.named`."""
        try:
            named = await name_service(
                container_of(request).units.service_naming(),
                service_id,
                data.name,
                data.names,
                actor=api_actor(request),
                via="api",
            )
        except LookupError as error:
            raise NotFoundException(str(error)) from None
        except NamingError as error:
            raise Unprocessable(str(error)) from None
        return service_json(named)
