"""A local stand-in for the Telegram Bot API (`POST /bot{token}/{method}`) that records every call."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import BackgroundServer

BOT_ID = 123456


@dataclass
class TelegramCall:
    method: str
    params: dict[str, Any]
    #: multipart file parts by field name: (filename, bytes)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)


@dataclass
class FakeTelegramApi:
    """Answers getMe, sendMessage, sendPhoto, sendDocument, answerCallbackQuery and message edits."""

    token: str
    calls: list[TelegramCall] = field(default_factory=list)
    _server: BackgroundServer | None = None
    _port: int = 0
    _message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(100))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self.api_method)
        self._server = BackgroundServer(app)
        self._server.start()
        self._port = self._server.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def methods(self) -> list[str]:
        return [call.method for call in self.calls]

    def of(self, method: str) -> list[TelegramCall]:
        return [call for call in self.calls if call.method == method]

    async def api_method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        files: dict[str, tuple[str, bytes]] = {}
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
            for name, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    files[name] = (value.filename, value.file.read())
                else:
                    params[name] = value
        for name in ("reply_markup",):
            if isinstance(params.get(name), str):
                params[name] = json.loads(params[name])
        self.calls.append(TelegramCall(method=method, params=params, files=files))
        return web.json_response({"ok": True, "result": self.result(method, params, files)})

    def bot_user(self) -> dict[str, Any]:
        return {"id": BOT_ID, "is_bot": True, "first_name": "Switchboard", "username": "switchboard_bot"}

    def message(self, params: dict[str, Any], **content: Any) -> dict[str, Any]:
        chat_id = int(params.get("chat_id", 0))
        message: dict[str, Any] = {
            "message_id": int(params.get("message_id") or next(self._message_ids)),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group", "title": "Staff"},
            "from": self.bot_user(),
            **content,
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        return message

    def result(self, method: str, params: dict[str, Any], files: dict[str, tuple[str, bytes]]) -> Any:
        if method == "getMe":
            return self.bot_user()
        if method in ("sendMessage", "editMessageText"):
            return self.message(params, text=params.get("text", ""))
        if method == "sendPhoto":
            size = {"file_id": "AgACphoto", "file_unique_id": "AQADphoto", "width": 800, "height": 400}
            return self.message(params, photo=[size], caption=params.get("caption"))
        if method == "sendDocument":
            name = next(iter(files.values()))[0] if files else "file"
            document = {"file_id": "BQACdoc", "file_unique_id": "AgADdoc", "file_name": name}
            return self.message(params, document=document)
        if method == "editMessageReplyMarkup":
            return self.message(params, text="")
        return True  # answerCallbackQuery, deleteWebhook and other yes/no methods
