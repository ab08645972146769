"""A local stand-in for the Slack Web API (and response_url / file upload URLs) that records every call."""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import BackgroundServer

BOT_USER_ID = "UBOT"


@dataclass
class SlackCall:
    method: str
    params: dict[str, Any]
    body: bytes = b""


@dataclass
class FakeSlackApi:
    """Answers auth.test, chat.*, files.* (v2 upload flow) and views.open on 127.0.0.1 at a free port.

    Every call must carry `Authorization: Bearer <token>`; upload URLs and response URLs are served by
    the same server and recorded as "upload" and "response_url" calls.
    """

    token: str
    calls: list[SlackCall] = field(default_factory=list)
    #: method name -> Slack error code to answer with instead of ok
    failures: dict[str, str] = field(default_factory=dict)
    _server: BackgroundServer | None = None
    _port: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.url}/response/{name}"

    def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self.api_method)
        app.router.add_post("/upload/{file_id}", self.upload)
        app.router.add_post("/response/{name}", self.response)
        self._server = BackgroundServer(app)
        self._server.start()
        self._port = self._server.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def methods(self) -> list[str]:
        return [call.method for call in self.calls]

    def of(self, method: str) -> list[SlackCall]:
        return [call for call in self.calls if call.method == method]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[SlackCall]:
        """Listeners run after the HTTP ack, so tests wait for the calls they expect."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.of(method)) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"expected {count} {method} call(s); got {self.methods()}")
            await asyncio.sleep(0.01)
        return self.of(method)

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        return params

    async def api_method(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        params = await self._params(request)
        self.calls.append(SlackCall(method=method, params=params))
        if method in self.failures:
            return web.json_response({"ok": False, "error": self.failures[method]})
        return web.json_response(self.answer(method, params))

    def answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        n = next(self._ids)
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://fake.slack.com/",
                "team": "Fake",
                "user": "switchboard",
                "team_id": "T1",
                "user_id": BOT_USER_ID,
                "bot_id": "BBOT",
            }
        if method in ("chat.postMessage", "chat.update"):
            ts = params.get("ts") or f"1700000000.{n:06d}"
            return {
                "ok": True,
                "channel": params.get("channel"),
                "ts": ts,
                "message": {"text": params.get("text")},
            }
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"1700000000.{n:06d}"}
        if method == "files.getUploadURLExternal":
            file_id = f"F{n:04d}"
            return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = json.loads(params.get("files", "[]"))
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}
        if method == "views.open":
            return {"ok": True, "view": {"id": f"V{n}"}}
        return {"ok": False, "error": "unknown_method"}

    async def upload(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.calls.append(
            SlackCall(method="upload", params={"file_id": request.match_info["file_id"]}, body=body)
        )
        return web.Response(text=f"OK - {len(body)}")

    async def response(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.calls.append(SlackCall(method="response_url", params=json.loads(body or b"{}"), body=body))
        return web.Response(text="ok")
