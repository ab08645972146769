"""The ASGI entry for uvicorn (`factory=True`): builds the app from the environment in each web process."""

from __future__ import annotations

from litestar import Litestar

from api.app import create_app
from switchboard.settings import Settings


def app_factory() -> Litestar:
    return create_app(Settings())
