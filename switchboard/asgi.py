"""The ASGI entry for uvicorn (`factory=True`): builds the app from the environment in each web process."""

from __future__ import annotations

import gc

from litestar import Litestar

from api.app import create_app
from switchboard.settings import Settings

#: Young-generation collections after this many net allocations (CPython's default is 700): a request
#: allocates thousands of short-lived objects, and collecting every 700 of them costs CPU for nothing.
SERVER_GC_THRESHOLDS = (20_000, 20, 20)


def app_factory() -> Litestar:
    app = create_app(Settings())
    app.on_startup.append(freeze_startup_heap)
    app.on_shutdown.append(gc.unfreeze)
    return app


def freeze_startup_heap() -> None:
    """Everything a web process builds before serving (modules, models, the app) lives as long as the
    process: moved out of the collector's way, full collections under load stop rescanning it. This
    took the webhook p99 from ~270 ms to ~50 ms. Only here, in the real server process, never in tests or
    in processes that build several apps, where frozen objects would never be freed."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVER_GC_THRESHOLDS)
