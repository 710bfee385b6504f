"""The web status page, its live feed and ``/metrics``, served by the control service.

==================  ========================================================================
``GET /``           the status page (phone-friendly, self-contained)
``GET /api/status`` the board's snapshot as JSON (as ``mlthon status --json``)
``GET /api/page``   the page's view: the snapshot plus each strategy's latest orders, fills and
                    PnL over time, figures and UTC times as text (:mod:`~mlthon.infra.ops.pageview`)
``GET /events``     Server-Sent Events: one ``data: <page view JSON>`` per change
``GET /metrics``    Prometheus text exposition (:mod:`mlthon.infra.ops.metrics`)
``POST /api/kill``  ``{"target": ...}`` with ``Authorization: Bearer <token>``: sends Shutdown
==================  ========================================================================

Everything is read-only unless a token is configured and presented; without a configured token
``/api/kill`` always answers 403.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from typing import Any

from aiohttp import web

from mlthon.infra.bus import messages as m
from mlthon.infra.ops.activity import ActivityLog
from mlthon.infra.ops.board import StatusBoard
from mlthon.infra.ops.metrics import CONTENT_TYPE, registry_for, render
from mlthon.infra.ops.page import PAGE
from mlthon.infra.ops.pageview import page_view
from mlthon.infra.ops.shutdown import shutdown_topic

log = logging.getLogger(__name__)

TOKEN_ENV = "MLTHON_OPS_TOKEN"  # noqa: S105 (the variable's name, not a secret)


class StatusWeb:
    """Serves a :class:`StatusBoard` over HTTP.

    Use as ``async with StatusWeb(board, port=8787) as web:``; :attr:`port` is the bound port
    (useful with ``port=0``). While serving, an :class:`ActivityLog` on the board's bus
    (:attr:`activity`) follows every strategy's orders, fills and PnL for the page.

    Args:
        board: the board to show.
        host: interface to bind (default loopback only).
        port: TCP port (0: any free port).
        token: the ops token that unlocks actions (None: read-only).
        min_push_interval_s: at most one live update per this period per client.
        keepalive_s: a comment line is sent this often to keep idle streams open.
    """

    def __init__(
        self,
        board: StatusBoard,
        *,
        host: str = "127.0.0.1",
        port: int = 8787,
        token: str | None = None,
        min_push_interval_s: float = 0.2,
        keepalive_s: float = 15.0,
    ) -> None:
        self.board = board
        self.host = host
        self.port = port
        self._token = token or None
        self.min_push_interval_s = min_push_interval_s
        self.keepalive_s = keepalive_s
        self.registry = registry_for(board)
        self.activity = ActivityLog(
            board.bus, board.topics, board.scheduler, on_change=self._on_change
        )
        self._clients: set[asyncio.Event] = set()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.app = web.Application()
        self.app.router.add_get("/", self._page)
        self.app.router.add_get("/api/status", self._status)
        self.app.router.add_get("/api/page", self._page_view)
        self.app.router.add_get("/events", self._events)
        self.app.router.add_get("/metrics", self._metrics)
        self.app.router.add_post("/api/kill", self._kill)

    async def __aenter__(self) -> StatusWeb:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Bind and serve; :attr:`port` becomes the bound port."""
        self._closing.clear()
        self.activity.start()
        self.board.add_listener(self._on_change)
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        for addr in runner.addresses:
            if isinstance(addr, tuple) and len(addr) >= 2:
                self.port = int(addr[1])
                break
        log.info("ops web: status page on http://%s:%d/", self.host, self.port)

    async def close(self) -> None:
        """End the live streams and stop serving."""
        self.board.remove_listener(self._on_change)
        self.activity.stop()
        self._closing.set()
        for ev in self._clients:
            ev.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        """The page's address."""
        return f"http://{self.host}:{self.port}/"

    # --- handlers ------------------------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html", charset="utf-8")

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(self.board.snapshot())

    async def _page_view(self, request: web.Request) -> web.Response:
        return web.json_response(self.view())

    def view(self) -> dict[str, Any]:
        """The page's view now (what ``/api/page`` answers and ``/events`` pushes)."""
        return page_view(self.board.snapshot(), self.activity.to_json())

    async def _metrics(self, request: web.Request) -> web.Response:
        resp = web.Response(body=render(self.registry))
        resp.headers["Content-Type"] = CONTENT_TYPE
        return resp

    async def _events(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await resp.prepare(request)
        changed = asyncio.Event()
        self._clients.add(changed)
        try:
            await self._send(resp, self.view())
            while not self._closing.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.keepalive_s):
                        await changed.wait()
                if self._closing.is_set():
                    break
                if not changed.is_set():
                    await resp.write(b": keepalive\n\n")
                    continue
                changed.clear()
                await self._send(resp, self.view())
                # Coalesce bursts: at most one update per period per client.
                await asyncio.sleep(self.min_push_interval_s)
        except ConnectionResetError:
            log.debug("ops web: live client went away")
        finally:
            self._clients.discard(changed)
        return resp

    @staticmethod
    async def _send(resp: web.StreamResponse, snap: dict[str, Any]) -> None:
        await resp.write(b"data: " + json.dumps(snap, default=str).encode() + b"\n\n")

    async def _kill(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"ok": False, "error": "forbidden"}, status=403)
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"ok": False, "error": "body must be JSON"}, status=400)
        target = body.get("target") if isinstance(body, dict) else None
        if not isinstance(target, str) or not target.strip():
            return web.json_response({"ok": False, "error": "target missing"}, status=400)
        topics = self.board.topics
        self.board.bus.publish(
            shutdown_topic(topics), m.Shutdown(target=target, reason="web status page"), qos=1
        )
        log.warning("ops web: shutdown of %s requested from %s", target, request.remote)
        return web.json_response({"ok": True, "target": target})

    def _authorized(self, request: web.Request) -> bool:
        if self._token is None:
            return False
        got = request.headers.get("Authorization", "")
        return got.startswith("Bearer ") and hmac.compare_digest(
            got[len("Bearer ") :].encode(), self._token.encode()
        )

    def _on_change(self) -> None:
        for ev in self._clients:
            ev.set()
