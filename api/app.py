"""The Litestar application factory: builds the web app for a settings object, doing no work at import."""

from __future__ import annotations

import logging
from pathlib import Path

from litestar import Litestar, Router, get
from litestar.config.csrf import CSRFConfig
from litestar.exceptions import HTTPException, ValidationException
from litestar.logging import LoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.template.config import TemplateConfig

from api.bad_input import BadInputGuard, strict_body_types
from api.csat import csat_handlers
from api.health import healthz, readyz
from api.media_links import media_link_handlers
from api.metrics import metrics
from api.pages import PAGE_CONTROLLERS
from api.problems import client_problem, server_error, stamp_request_id
from api.rest import API_CONTROLLERS
from api.rest.common import BEARER, ExactJsonRenderPlugin, validation_failed
from api.security_headers import add_security_headers
from api.slack_events import slack_events
from api.table_exports import TableExports
from api.unsubscribe import unsubscribe_handlers
from api.video_links import video_link_handlers
from api.webhooks import webhook_handlers
from api.widget import widget_handlers
from switchboard.background import BackgroundServices
from switchboard.logs import QUIET_LIBRARIES, flush_queued_logs, formatter_config
from switchboard.settings import Settings
from switchboard.wiring import Container, build_container

log = logging.getLogger("switchboard.web")

HERE = Path(__file__).parent
#: Machine-to-machine routes carry their own authentication; only the dashboard's form posts need CSRF tokens.
CSRF_EXEMPT = [
    "^/api/",
    "^/webhooks/",
    "^/slack/events",
    "^/unsubscribe/",
    "^/csat/",
    "^/healthz",
    "^/readyz",
    "^/metrics",
]


def logging_config(settings: Settings) -> LoggingConfig:
    """Our own logs at SWITCHBOARD_LOG_LEVEL; chatty libraries (scheduler ticks, HTTP clients) only when they warn."""
    quiet = {"level": "WARNING", "handlers": ["queue_listener"], "propagate": False}
    return LoggingConfig(
        formatters={"standard": formatter_config(settings.log_format)},
        root={"handlers": ["queue_listener"], "level": settings.log_level.upper()},
        loggers={
            "litestar": {
                "level": settings.log_level.upper(),
                "handlers": ["queue_listener"],
                "propagate": False,
            },
            **{name: quiet for name in QUIET_LIBRARIES},
        },
    )


@get("/favicon.ico", name="favicon", exclude_from_auth=True, include_in_schema=False)
async def favicon() -> Redirect:
    """Browsers ask for /favicon.ico on pages that name no icon (the unsubscribe page, a JSON answer)."""
    return Redirect("/static/favicon.svg", status_code=301)


def create_app(settings: Settings, container: Container | None = None) -> Litestar:
    """The web app for `settings`; pass `container` to share one already built (tests, `serve` with a worker)."""
    built = container or build_container(settings)
    if built.slack_app is None and not built.front_ends_installed:  # the caller may have built its own
        built.install_staff_front_ends()

    worker = BackgroundServices(built, role="web") if settings.worker_in_process else None

    async def start_background() -> None:
        if worker is not None:
            await worker.start()

    async def close_container() -> None:
        # Reached on SIGTERM after the server stopped taking connections and gave the requests it had read (webhooks
        # included) its graceful time to finish (uvicorn's --timeout-graceful-shutdown; cancelled after that).
        log.info("web process stopping: no new connections; requests already read were given time to finish")
        if worker is not None:
            await worker.stop()
        if container is None:  # only close what this app built
            await built.close()
        flush_queued_logs()

    app = Litestar(
        route_handlers=[
            healthz,
            readyz,
            metrics,
            # The dashboard is for people, not an API: its pages stay out of the OpenAPI document.
            Router(path="/", route_handlers=PAGE_CONTROLLERS, include_in_schema=False),
            *API_CONTROLLERS,
            *webhook_handlers,
            *unsubscribe_handlers,
            *csat_handlers,
            *media_link_handlers,
            slack_events,
            *widget_handlers,
            *video_link_handlers,
            favicon,
            create_static_files_router(path="/static", directories=[HERE / "static"], name="static"),
        ],
        template_config=TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine),
        openapi_config=OpenAPIConfig(
            title="Switchboard API",
            version="0.1.0",
            path="/api/schema",
            render_plugins=[ExactJsonRenderPlugin()],
            components=Components(
                security_schemes={
                    BEARER: SecurityScheme(type="http", scheme="bearer", description="SWITCHBOARD_API_TOKEN")
                }
            ),
        ),
        csrf_config=CSRFConfig(
            secret=settings.session_secret.get_secret_value(),
            exclude=CSRF_EXEMPT,
            cookie_secure=settings.secure_cookies,
        ),
        middleware=[BadInputGuard(), TableExports()],
        before_request=strict_body_types,
        before_send=[stamp_request_id, add_security_headers],
        exception_handlers={
            ValidationException: validation_failed,
            HTTPException: client_problem,
            HTTP_500_INTERNAL_SERVER_ERROR: server_error,
        },
        logging_config=logging_config(settings),
        on_startup=[start_background],
        on_shutdown=[close_container],
        debug=False,
    )
    app.state.container = built
    app.state.settings = settings
    return app
