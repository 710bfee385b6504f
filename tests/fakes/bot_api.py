"""A fake Telegram Bot API server on loopback, for python-telegram-bot to talk to.

Serves ``/bot{token}/{method}`` like ``api.telegram.org`` (see shared/data/FORMATS.md §6):

* ``getMe``, ``deleteWebhook``, ``setMyCommands`` / ``getMyCommands``, ``answerCallbackQuery``,
  ``close``, ``logOut`` return canned results;
* ``getUpdates`` long-polls a queue the test fills with :meth:`FakeBotApi.push` (``offset``
  confirms, ``limit`` and ``timeout`` are honoured);
* ``sendMessage`` and ``editMessageText`` return a ``Message`` and, like every call, are recorded
  in :attr:`FakeBotApi.calls`; a text over 4096 characters gets Telegram's 400 "message is too
  long".

Bodies may be form-encoded (PTB), multipart or JSON. Faults: :meth:`FakeBotApi.fail` answers the
next calls of a method with an error (a 429 with ``retry_after``, a 5xx, ...), and
:attr:`FakeBotApi.outage` makes methods answer 502 until cleared. Every error uses Telegram's
envelope ``{"ok": false, "error_code": ..., "description": ..., "parameters"?: ...}`` with the
HTTP status equal to ``error_code``.

Usage::

    async with FakeBotApi() as api:
        app = ApplicationBuilder().token(api.token).base_url(api.base_url).build()
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

JSON_FIELDS = frozenset(
    {"reply_markup", "allowed_updates", "entities", "commands", "reply_parameters", "scope"}
)
MAX_TEXT = 4096


@dataclass
class ApiCall:
    """One request the server received."""

    method: str
    params: dict[str, Any]
    at: float  # time.monotonic()
    status: int = 200


@dataclass
class Fault:
    """An error to answer instead of the real result."""

    method: str
    status: int
    description: str
    parameters: dict[str, Any] | None = None
    times: int = 1


@dataclass
class _Updates:
    items: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 1


class FakeBotApi:
    """The fake server. Start with ``async with`` (or :meth:`start` / :meth:`close`).

    Args:
        token: the token the server accepts (others get 401).
        bot_username: the bot's @username (``getMe``).
    """

    def __init__(
        self,
        token: str = "123456789:AAFakeTokenForTests_0123456789abcdef",
        bot_username: str = "mlthon_test_bot",
    ) -> None:
        self.token = token
        self.bot = {
            "id": int(token.split(":")[0]),
            "is_bot": True,
            "first_name": "mlthon test",
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.calls: list[ApiCall] = []
        self.outage: set[str] | None = None  # methods answering 502; {"*"} = every method
        self._faults: list[Fault] = []
        self._updates = _Updates()
        self._update_event = asyncio.Event()
        self._call_event = asyncio.Event()
        self._message_id = 1000
        self._commands: list[Any] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- life cycle -----------------------------------------------------------------------------

    async def start(self) -> FakeBotApi:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr,attr-defined]
        return self

    async def close(self) -> None:
        self._update_event.set()  # end pending long polls at once
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotApi:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """What to pass to ``ApplicationBuilder().base_url(...)``."""
        return f"http://127.0.0.1:{self.port}/bot"

    # --- test controls --------------------------------------------------------------------------

    def push(self, update: dict[str, Any]) -> int:
        """Queue ``update`` for getUpdates; its ``update_id`` is replaced by the next one."""
        update = dict(update)
        update["update_id"] = self._updates.next_id
        self._updates.next_id += 1
        self._updates.items.append(update)
        self._update_event.set()
        return int(update["update_id"])

    def fail(
        self,
        method: str,
        status: int,
        description: str = "",
        *,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with an error (with ``parameters``
        ``retry_after`` or ``migrate_to_chat_id`` when given)."""
        params: dict[str, Any] | None = None
        if retry_after is not None:
            params = {"retry_after": retry_after}
        elif migrate_to_chat_id is not None:
            params = {"migrate_to_chat_id": migrate_to_chat_id}
            description = description or "Bad Request: group chat was upgraded to a supergroup chat"
        if not description:
            description = (
                f"Too Many Requests: retry after {retry_after}"
                if retry_after is not None
                else {500: "Internal Server Error", 502: "Bad Gateway"}.get(status, "Bad Request")
            )
        self._faults.append(Fault(method, status, description, params, times))

    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """The parameters of every successful sendMessage (to ``chat_id`` if given)."""
        return [
            c.params
            for c in self.calls
            if c.method == "sendMessage"
            and c.status == 200
            and (chat_id is None or int(c.params.get("chat_id", 0)) == chat_id)
        ]

    def texts(self, chat_id: int | None = None) -> list[str]:
        """The texts of :meth:`sent`."""
        return [str(p["text"]) for p in self.sent(chat_id)]

    def calls_of(self, method: str) -> list[ApiCall]:
        """Every call of ``method``, failed ones included."""
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, pred: Callable[[], bool], timeout: float = 30.0) -> None:
        """Wait until ``pred()`` holds (checked after every request), or fail after ``timeout``."""
        async with asyncio.timeout(timeout):
            while not pred():
                self._call_event.clear()
                await self._call_event.wait()

    # --- the API ---------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        call = ApiCall(method, params, time.monotonic())
        self.calls.append(call)
        try:
            if request.match_info["token"] != self.token:
                return self._error(call, 401, "Unauthorized")
            if self.outage is not None and ("*" in self.outage or method in self.outage):
                return self._error(call, 502, "Bad Gateway")
            for fault in self._faults:
                if fault.method == method and fault.times > 0:
                    fault.times -= 1
                    return self._error(call, fault.status, fault.description, fault.parameters)
            handler = getattr(self, f"_m_{method}", None)
            if handler is None:
                return self._error(call, 404, "Not Found: method not found")
            result = await handler(params)
            if isinstance(result, web.Response):
                call.status = result.status
                return result
            return web.json_response({"ok": True, "result": result})
        finally:
            self._call_event.set()

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:  # application/x-www-form-urlencoded or multipart/form-data
                for key, value in (await request.post()).items():
                    if isinstance(value, str):
                        params[key] = json.loads(value) if key in JSON_FIELDS else value
        return params

    def _error(
        self,
        call: ApiCall,
        code: int,
        description: str,
        parameters: dict[str, Any] | None = None,
    ) -> web.Response:
        call.status = code
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=code)

    def _message(self, chat_id: Any, text: str) -> dict[str, Any]:
        self._message_id += 1
        cid = int(chat_id)
        chat = {"id": cid, "type": "private" if cid > 0 else "supergroup"}
        if cid < 0:
            chat["title"] = "desk"
        return {
            "message_id": self._message_id,
            "from": {k: self.bot[k] for k in ("id", "is_bot", "first_name", "username")},
            "chat": chat,
            "date": int(time.time()),
            "text": text,
        }

    async def _m_getMe(self, params: dict[str, Any]) -> Any:
        return self.bot

    async def _m_deleteWebhook(self, params: dict[str, Any]) -> Any:
        if str(params.get("drop_pending_updates", "")).lower() == "true":
            self._updates.items.clear()
        return True

    async def _m_getUpdates(self, params: dict[str, Any]) -> Any:
        offset = int(params.get("offset", 0) or 0)
        limit = min(max(int(params.get("limit", 100) or 100), 1), 100)
        timeout = float(params.get("timeout", 0) or 0)
        items = self._updates.items
        if offset > 0:
            items[:] = [u for u in items if u["update_id"] >= offset]
        elif offset < 0:
            items[:] = items[offset:]
        if not items and timeout > 0:
            self._update_event.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._update_event.wait()
            except TimeoutError:
                pass
        return items[:limit]

    async def _m_sendMessage(self, params: dict[str, Any]) -> Any:
        text = str(params.get("text", ""))
        if "chat_id" not in params:
            return self._error(self.calls[-1], 400, "Bad Request: chat_id is empty")
        if not text:
            return self._error(self.calls[-1], 400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT:
            return self._error(self.calls[-1], 400, "Bad Request: message is too long")
        return self._message(params["chat_id"], text)

    async def _m_editMessageText(self, params: dict[str, Any]) -> Any:
        msg = self._message(params.get("chat_id", 1), str(params.get("text", "")))
        msg["message_id"] = int(params.get("message_id", msg["message_id"]))
        return msg

    async def _m_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_setMyCommands(self, params: dict[str, Any]) -> Any:
        self._commands = list(params.get("commands", []))
        return True

    async def _m_getMyCommands(self, params: dict[str, Any]) -> Any:
        return self._commands

    async def _m_close(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_logOut(self, params: dict[str, Any]) -> Any:
        return True
