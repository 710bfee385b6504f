"""A fake Bybit v5 exchange (category ``linear``) on 127.0.0.1 (aiohttp HTTP + websockets).

* Signed REST checks ``X-BAPI-API-KEY`` (``10003``), ``X-BAPI-SIGN`` = HMAC-SHA256 of
  timestamp + key + recvWindow + (query string | JSON body) (``10004``) and
  ``X-BAPI-TIMESTAMP`` against the venue's clock (:attr:`clock`, the host's plus
  ``clock.offset_ms``: ``10002`` outside the receive window or 1 s ahead), served on ``GET
  /v5/market/time``; ``orderLinkId`` must be Bybit's alphabet and length (``10001``); the
  private stream's ``auth`` must expire in the venue's future; every answer is the
  ``{"retCode","retMsg","result","retExtInfo","time"}`` envelope with HTTP 200, and carries the
  ``X-Bapi-Limit*`` headers.
* A small order state: create only acknowledges, the outcome comes on the ``order`` topic, like
  the real venue: ``New``, fills on command (:meth:`FakeBybit.fill`, ``execution`` topic then
  ``order``), cancel, amend; post-only crossing :attr:`best` is cancelled with
  ``EC_PostOnlyWillTakeLiquidity``, an IOC with nothing to fill with ``EC_NoImmediateQtyToFill``,
  a FOK without :attr:`fok_liquidity` with ``EC_CancelForNoFullFill``; reduce-only with no
  position is ``110017``, too large an order ``110007``.
* ``/v5/private`` checks the ``auth`` signature (``GET/realtime<expires>``), answers
  ``subscribe`` and ``ping``; ``/v5/public/linear`` answers subscriptions and relays what the test
  pushes (:meth:`push_market`).
* Payloads are built on the samples of ``shared/data/nautilus_trader/bybit_v5``.
* Faults: :meth:`fail` (any retCode, e.g. 10006 with a reset timestamp), :meth:`delay`,
  :meth:`drop_private_streams`, :attr:`hold_pushes`, :attr:`duplicate_pushes`,
  :attr:`reverse_pushes`, :attr:`limit_remaining`.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from tests.fakes.venues.clock import BYBIT_LINK_ID, FakeVenueClock

API_KEY = "test-bybit-key-0123456789"
API_SECRET = "test-bybit-secret-abcdefghij"
SAMPLES = Path(__file__).resolve().parents[3].parent / "shared/data/nautilus_trader/bybit_v5"
LIMIT = 10


def _load(rel: str) -> Any:
    return json.loads((SAMPLES / rel).read_text())


@dataclass
class Fault:
    path: str
    code: int
    msg: str
    times: int = 1
    http_status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeOrder:
    order_id: str
    link_id: str
    symbol: str
    side: str
    type: str
    tif: str
    price: Decimal
    qty: Decimal
    filled: Decimal = Decimal(0)
    status: str = "New"
    reduce_only: bool = False
    reject_reason: str = "EC_NoError"
    cancel_type: str = "UNKNOWN"
    created: int = 0


class FakeBybit:
    """The fake exchange: ``async with FakeBybit() as fx:`` serves on ``fx.rest_url``,
    ``fx.private_url`` and ``fx.public_url``."""

    def __init__(self, api_key: str = API_KEY, api_secret: str = API_SECRET) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.clock = FakeVenueClock()
        self.orders: dict[str, FakeOrder] = {}
        self.executions: list[dict[str, Any]] = []
        self.positions: dict[str, Decimal] = {}
        self.balance = Decimal("10000")
        self.best: dict[str, tuple[Decimal, Decimal]] = {}
        self.fok_liquidity = False
        self.limit_remaining = LIMIT - 1
        self.faults: list[Fault] = []
        self.delays: dict[str, float] = {}
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.hold_pushes = False
        self.duplicate_pushes = False
        self.reverse_pushes = False
        self.lost: list[str] = []
        self.private_ws: list[web.WebSocketResponse] = []
        self.public_ws: list[web.WebSocketResponse] = []
        self.public_subscriptions: list[str] = []
        self.public_unsubscriptions: list[str] = []
        self.pings = 0
        self.auths = 0
        self.connections = 0
        self._seq = 0
        self._now_ms = 1_700_000_000_000
        self._runner: web.AppRunner | None = None
        self._bg: set[asyncio.Task[None]] = set()
        self.port = 0
        self._instruments = _load("docs_examples/http_responses/linear/instruments.json")
        self._tickers = _load("docs_examples/http_responses/linear/tickers.json")
        self._wallet = _load("rust_fixtures/http_get_wallet_balance.json")
        self._positions_tpl = _load("rust_fixtures/http_get_positions.json")
        self._order_push = _load("rust_fixtures/ws_account_order.json")
        self._exec_push = _load("rust_fixtures/ws_account_execution.json")
        self._order_rec = _load("rust_fixtures/http_get_orders_realtime.json")["result"]["list"][0]
        self._exec_rec = _load("rust_fixtures/http_get_executions.json")["result"]["list"][0]
        self._auth_ok = _load("rust_fixtures/ws_auth_success.json")
        self._auth_fail = _load("rust_fixtures/ws_auth_failure.json")

    # ------------------------------------------------------------------ server
    async def __aenter__(self) -> FakeBybit:
        app = web.Application()
        app.router.add_route("*", "/v5/private", self._private)
        app.router.add_route("*", "/v5/public/linear", self._public)
        app.router.add_route("*", "/v5/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for ws in [*self.private_ws, *self.public_ws]:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def private_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v5/private"

    @property
    def public_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v5/public/linear"

    def tick(self) -> int:
        self._now_ms += 1
        return self._now_ms

    # ------------------------------------------------------------------ faults
    def fail(
        self,
        path: str,
        code: int,
        msg: str,
        times: int = 1,
        http_status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``path`` with ``retCode`` ``code``."""
        self.faults.append(Fault(path, code, msg, times, http_status, headers or {}))

    def delay(self, path: str, seconds: float) -> None:
        """Act on ``path`` at once but answer only after ``seconds``."""
        self.delays[path] = seconds

    async def drop_private_streams(self) -> None:
        for ws in list(self.private_ws):
            await ws.close()
        self.private_ws.clear()

    async def drop_public_streams(self) -> None:
        for ws in list(self.public_ws):
            await ws.close()
        self.public_ws.clear()

    # ------------------------------------------------------------------ commands
    async def fill(
        self, link_id: str, qty: str | None = None, price: str | None = None, maker: bool = True
    ) -> dict[str, Any]:
        """Fill (part of) an open order: ``execution`` then ``order`` pushes."""
        o = self.orders[link_id]
        q = Decimal(qty) if qty is not None else o.qty - o.filled
        px = Decimal(price) if price is not None else o.price
        ex = self._execute(o, q, px, maker)
        await self._push([self._exec_frame([ex]), self._order_frame(o)])
        return ex

    async def cancel_by_venue(self, link_id: str) -> None:
        o = self.orders[link_id]
        o.status = "Cancelled"
        o.cancel_type = "CancelByAdmin"
        await self._push([self._order_frame(o)])

    def _execute(self, o: FakeOrder, q: Decimal, px: Decimal, maker: bool) -> dict[str, Any]:
        o.filled += q
        o.status = "Filled" if o.filled >= o.qty else "PartiallyFilled"
        sign = 1 if o.side == "Buy" else -1
        self.positions[o.symbol] = self.positions.get(o.symbol, Decimal(0)) + sign * q
        self._seq += 1
        ex: dict[str, Any] = copy.deepcopy(self._exec_rec)
        ex.update(
            symbol=o.symbol,
            orderId=o.order_id,
            orderLinkId=o.link_id,
            side=o.side,
            orderPrice=str(o.price),
            orderQty=str(o.qty),
            leavesQty=str(o.qty - o.filled),
            orderType=o.type,
            execFee=str((q * px * Decimal("0.0002")).quantize(Decimal("0.00000001"))),
            execId=f"e-{self._seq:08d}-{o.order_id}",
            execPrice=str(px),
            execQty=str(q),
            execType="Trade",
            execValue=str(q * px),
            execTime=str(self.tick()),
            feeCurrency="USDT",
            isMaker=maker,
            seq=self._seq,
        )
        self.executions.append(ex)
        return ex

    # ------------------------------------------------------------------ pushes
    def _record(self, o: FakeOrder) -> dict[str, Any]:
        r: dict[str, Any] = copy.deepcopy(self._order_push["data"][0])
        r.update(
            symbol=o.symbol,
            orderId=o.order_id,
            orderLinkId=o.link_id,
            side=o.side,
            orderType=o.type,
            timeInForce=o.tif,
            price=str(o.price),
            qty=str(o.qty),
            orderStatus=o.status,
            cumExecQty=str(o.filled),
            leavesQty=str(o.qty - o.filled if o.status in ("New", "PartiallyFilled") else 0),
            reduceOnly=o.reduce_only,
            rejectReason=o.reject_reason,
            cancelType=o.cancel_type,
            stopOrderType="",
            createdTime=str(o.created),
            updatedTime=str(self.tick()),
        )
        return r

    def _order_frame(self, o: FakeOrder) -> str:
        env = copy.deepcopy(self._order_push)
        env["creationTime"] = self.tick()
        env["data"] = [self._record(o)]
        return json.dumps(env)

    def _exec_frame(self, execs: list[dict[str, Any]]) -> str:
        env = copy.deepcopy(self._exec_push)
        env["creationTime"] = self.tick()
        env["data"] = execs
        return json.dumps(env)

    async def _push(self, frames: list[str]) -> None:
        if self.hold_pushes or not self.private_ws:
            self.lost.extend(frames)
            return
        seq = list(reversed(frames)) if self.reverse_pushes else frames
        if self.duplicate_pushes:
            seq = [f for f in seq for _ in (0, 1)]
        for ws in list(self.private_ws):
            for f in seq:
                await ws.send_str(f)

    async def push_raw_private(self, frames: list[str]) -> None:
        for ws in list(self.private_ws):
            for f in frames:
                await ws.send_str(f)

    async def push_market(self, raw: str) -> None:
        for ws in list(self.public_ws):
            await ws.send_str(raw)

    # ------------------------------------------------------------------ websockets
    async def _private(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        authed = False
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                break
            req = json.loads(msg.data)
            op = req.get("op")
            if op == "auth":
                self.auths += 1
                key, expires, sig = req["args"]
                want = hmac.new(
                    self.api_secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256
                ).hexdigest()
                authed = (
                    key == self.api_key
                    and hmac.compare_digest(sig, want)
                    and str(expires).isdigit()
                    and int(expires) > self.clock.now_ms()  # expired: refused
                )
                await ws.send_str(json.dumps(self._auth_ok if authed else self._auth_fail))
            elif op == "subscribe":
                ok = authed
                await ws.send_str(
                    json.dumps(
                        {
                            "success": ok,
                            "ret_msg": "" if ok else "Request not authorized",
                            "conn_id": "fake",
                            "op": "subscribe",
                        }
                    )
                )
                if ok:
                    self.private_ws.append(ws)
            elif op == "ping":
                self.pings += 1
                await ws.send_str(
                    json.dumps(
                        {"req_id": "", "op": "pong", "args": [str(self.tick())], "conn_id": "fake"}
                    )
                )
        if ws in self.private_ws:
            self.private_ws.remove(ws)
        return ws

    async def _public(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        self.public_ws.append(ws)
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                break
            req = json.loads(msg.data)
            op = req.get("op")
            if op in ("subscribe", "unsubscribe"):
                (
                    self.public_subscriptions if op == "subscribe" else self.public_unsubscriptions
                ).extend(req.get("args", []))
                await ws.send_str(
                    json.dumps(
                        {
                            "success": True,
                            "ret_msg": "",
                            "conn_id": "fake",
                            "req_id": req.get("req_id", ""),
                            "op": op,
                        }
                    )
                )
            elif op == "ping":
                self.pings += 1
                await ws.send_str(json.dumps({"success": True, "ret_msg": "pong", "op": "ping"}))
        if ws in self.public_ws:
            self.public_ws.remove(ws)
        return ws

    # ------------------------------------------------------------------ REST
    def _headers(self) -> dict[str, str]:
        return {
            "X-Bapi-Limit": str(LIMIT),
            "X-Bapi-Limit-Status": str(self.limit_remaining),
            "X-Bapi-Limit-Reset-Timestamp": str(self._now_ms),
        }

    def _answer(
        self, result: Any, code: int = 0, msg: str = "OK", status: int = 200
    ) -> web.Response:
        return web.json_response(
            {
                "retCode": code,
                "retMsg": msg,
                "result": result,
                "retExtInfo": {},
                "time": self.tick(),
            },
            status=status,
            headers=self._headers(),
        )

    def _error(self, code: int, msg: str) -> web.Response:
        return self._answer({}, code, msg)

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        resp = await self._serve(request)
        wait = self.delays.get(request.path)
        if wait:
            await asyncio.sleep(wait)
        return resp

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        body_text = await request.text() if request.method == "POST" else ""
        params: dict[str, Any] = (
            json.loads(body_text) if body_text else dict(parse_qsl(request.query_string))
        )
        self.requests.append((request.method, path, params))
        for f in self.faults:
            if f.path == path and f.times > 0:
                f.times -= 1
                if f.http_status != 200:
                    return web.Response(status=f.http_status, text="forbidden", headers=f.headers)
                resp = self._error(f.code, f.msg)
                resp.headers.update(f.headers)
                return resp
        public = {
            "/v5/market/instruments-info",
            "/v5/market/tickers",
            "/v5/market/orderbook",
            "/v5/market/time",
        }
        if path not in public:
            if request.headers.get("X-BAPI-API-KEY") != self.api_key:
                return self._error(10003, "API key is invalid.")
            payload = request.query_string if request.method == "GET" else body_text
            ts = request.headers.get("X-BAPI-TIMESTAMP", "")
            rw = request.headers.get("X-BAPI-RECV-WINDOW", "")
            want = hmac.new(
                self.api_secret.encode(),
                f"{ts}{self.api_key}{rw}{payload}".encode(),
                hashlib.sha256,
            ).hexdigest()
            if not hmac.compare_digest(request.headers.get("X-BAPI-SIGN", ""), want):
                return self._error(10004, "error sign! origin_string[...]")
            if self.clock.problem(ts, rw) is not None:
                return self._error(
                    10002,
                    "invalid request, please check your server timestamp or recv_window param. "
                    f"req_timestamp[{ts}],server_timestamp[{self.clock.now_ms()}],"
                    f"recv_window[{rw}]",
                )
        handler = {
            "/v5/market/time": self._time,
            "/v5/market/instruments-info": self._instruments_info,
            "/v5/market/tickers": self._ticker,
            "/v5/order/create": self._create,
            "/v5/order/amend": self._amend,
            "/v5/order/cancel": self._cancel,
            "/v5/order/realtime": self._realtime,
            "/v5/order/history": self._history,
            "/v5/execution/list": self._execution_list,
            "/v5/account/wallet-balance": self._wallet_balance,
            "/v5/position/list": self._position_list,
            "/v5/user/query-api": self._query_api,
        }.get(path)
        if handler is None:
            return web.Response(status=404, text=f"fake: no route {path}")
        return await handler(params)

    async def _time(self, p: dict[str, Any]) -> web.Response:
        ns = self.clock.now_ns()
        return self._answer({"timeSecond": str(ns // 10**9), "timeNano": str(ns)})

    async def _instruments_info(self, p: dict[str, Any]) -> web.Response:
        return self._answer(
            {**self._instruments["result"], "category": "linear", "nextPageCursor": ""}
        )

    async def _ticker(self, p: dict[str, Any]) -> web.Response:
        res = copy.deepcopy(self._tickers["result"])
        res["category"] = "linear"
        for t in res["list"]:
            t["symbol"] = p.get("symbol", t["symbol"])
        return self._answer(res)

    async def _query_api(self, p: dict[str, Any]) -> web.Response:
        return self._answer(
            {
                "id": "13770661",
                "note": "fake",
                "apiKey": self.api_key,
                "readOnly": 0,
                "secret": "",
                "userID": 24617703,
            }
        )

    async def _create(self, p: dict[str, Any]) -> web.Response:
        symbol = p["symbol"]
        if symbol not in {s["symbol"] for s in self._instruments["result"]["list"]}:
            return self._error(10001, "params error: symbol invalid")
        link = p["orderLinkId"]
        if BYBIT_LINK_ID.fullmatch(link) is None:
            return self._error(10001, f"params error: orderLinkId {link[:40]!r} invalid")
        if link in self.orders:
            return self._error(110072, "OrderLinkedID is duplicate")
        qty = Decimal(p["qty"])
        side = p["side"]
        typ = p["orderType"]
        tif = p.get("timeInForce", "GTC")
        price = Decimal(p.get("price", "0"))
        reduce_only = bool(p.get("reduceOnly"))
        bid, ask = self.best.get(symbol, (Decimal(0), Decimal("1e12")))
        if reduce_only and self.positions.get(symbol, Decimal(0)) == 0:
            return self._error(110017, "current position is zero, cannot fix reduce-only order qty")
        ref = price if typ == "Limit" else (ask if side == "Buy" else bid)
        if not reduce_only and qty * ref / 10 > self.balance:
            return self._error(110007, "ab not enough for new order")
        self._seq += 1
        o = FakeOrder(
            order_id=f"{self._seq:04d}-fake-order",
            link_id=link,
            symbol=symbol,
            side=side,
            type=typ,
            tif=tif,
            price=price,
            qty=qty,
            reduce_only=reduce_only,
            created=self.tick(),
        )
        self.orders[link] = o
        crosses = (side == "Buy" and price >= ask) or (side == "Sell" and 0 < price <= bid)
        frames: list[str] = []
        if tif == "PostOnly" and crosses:
            o.status, o.reject_reason = "Cancelled", "EC_PostOnlyWillTakeLiquidity"
            frames.append(self._order_frame(o))
        elif typ == "Market" or (tif == "FOK" and self.fok_liquidity):
            ex = self._execute(o, qty, ref, maker=False)
            frames += [self._exec_frame([ex]), self._order_frame(o)]
        elif tif == "FOK":
            o.status, o.reject_reason = "Cancelled", "EC_CancelForNoFullFill"
            frames.append(self._order_frame(o))
        elif tif == "IOC":
            o.status, o.reject_reason = "Cancelled", "EC_NoImmediateQtyToFill"
            frames.append(self._order_frame(o))
        else:
            frames.append(self._order_frame(o))
        task = asyncio.get_running_loop().create_task(self._push_later(frames))
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)
        return self._answer({"orderId": o.order_id, "orderLinkId": link})

    async def _push_later(self, frames: list[str]) -> None:
        await asyncio.sleep(0)
        await self._push(frames)

    def _open(self, p: dict[str, Any]) -> FakeOrder | None:
        o = self.orders.get(p.get("orderLinkId", ""))
        if o is None or o.status not in ("New", "PartiallyFilled"):
            return None
        return o

    async def _amend(self, p: dict[str, Any]) -> web.Response:
        o = self._open(p)
        if o is None:
            return self._error(110001, "order not exists or too late to replace")
        o.price = Decimal(p.get("price", o.price))
        o.qty = Decimal(p.get("qty", o.qty))
        await self._push([self._order_frame(o)])
        return self._answer({"orderId": o.order_id, "orderLinkId": o.link_id})

    async def _cancel(self, p: dict[str, Any]) -> web.Response:
        o = self._open(p)
        if o is None:
            return self._error(110001, "order not exists or too late to cancel")
        o.status, o.cancel_type = "Cancelled", "CancelByUser"
        await self._push([self._order_frame(o)])
        return self._answer({"orderId": o.order_id, "orderLinkId": o.link_id})

    def _records(self, orders: list[FakeOrder]) -> list[dict[str, Any]]:
        out = []
        for o in orders:
            r = copy.deepcopy(self._order_rec)
            r.update(self._record(o))
            out.append(r)
        return out

    async def _realtime(self, p: dict[str, Any]) -> web.Response:
        link = p.get("orderLinkId")
        if link:
            sel = [self.orders[link]] if link in self.orders else []
        else:
            sel = [o for o in self.orders.values() if o.status in ("New", "PartiallyFilled")]
        return self._answer(
            {"list": self._records(sel), "nextPageCursor": "", "category": "linear"}
        )

    async def _history(self, p: dict[str, Any]) -> web.Response:
        return self._answer({"list": [], "nextPageCursor": "", "category": "linear"})

    async def _execution_list(self, p: dict[str, Any]) -> web.Response:
        link = p.get("orderLinkId")
        sel = [e for e in self.executions if e["orderLinkId"] == link]
        return self._answer({"list": sel, "nextPageCursor": "", "category": "linear"})

    async def _wallet_balance(self, p: dict[str, Any]) -> web.Response:
        res = copy.deepcopy(self._wallet["result"])
        coin = res["list"][0]["coin"][0]
        coin.update(
            coin=p.get("coin", "USDT"),
            walletBalance=str(self.balance),
            availableToWithdraw=str(self.balance),
            locked="0",
        )
        res["list"][0]["coin"] = [coin]
        return self._answer(res)

    async def _position_list(self, p: dict[str, Any]) -> web.Response:
        res = copy.deepcopy(self._positions_tpl["result"])
        sym = p.get("symbol", "BTCUSDT")
        pos = self.positions.get(sym, Decimal(0))
        entry = res["list"][0]
        entry.update(
            symbol=sym, size=str(abs(pos)), side="Buy" if pos > 0 else ("Sell" if pos < 0 else "")
        )
        res["list"] = [entry]
        return self._answer(res)


__all__ = ["API_KEY", "API_SECRET", "FakeBybit"]
