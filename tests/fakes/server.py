"""Runs a fake provider (an aiohttp app) on 127.0.0.1 at a free port, in a thread with its own event loop.

A thread of its own because litestar's AsyncTestClient runs the app under test in a blocking portal:
while a request is in flight the test's event loop is blocked, so a fake served from that loop
could never answer the app's calls.
"""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class BackgroundServer:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="fake-provider", daemon=True)
        self._ready = threading.Event()
        self._runner = web.AppRunner(app, access_log=None)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(timeout=10):
            raise RuntimeError("fake provider did not start")

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._listen())
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

    async def _listen(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sockets = getattr(site._server, "sockets", None)  # aiohttp keeps the listening asyncio.Server here
        assert sockets
        self.port = int(sockets[0].getsockname()[1])
