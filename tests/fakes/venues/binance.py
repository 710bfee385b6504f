"""A fake Binance USD-M futures exchange on 127.0.0.1 (aiohttp HTTP + websockets).

It speaks the real protocol closely enough for :mod:`mlthon.gateways.binance_usdm` and
:mod:`mlthon.feeds.binance_usdm`:

* SIGNED endpoints check ``X-MBX-APIKEY`` (``-2015``), the HMAC-SHA256 query signature
  (``-1022``) with the test key, and the ``timestamp`` against the venue's clock (:attr:`clock`,
  the host's plus ``clock.offset_ms``; ``-1021`` outside ``recvWindow`` or 1 s ahead), served on
  ``GET /fapi/v1/time``; ``newClientOrderId`` must match Binance's documented rule (``-1100``);
* a small order state: accept (``NEW``), rest, fill on command (:meth:`FakeBinance.fill`), cancel,
  amend; post-only (GTX) against :attr:`FakeBinance.best` (``-5022``), FOK (``-5021``), IOC
  (expires what it cannot fill), reduce-only with no position (``-2022``), margin (``-2019``);
* answers are built on the recorded samples of ``shared/data/nautilus_trader/binance_futures``
  (order object, ORDER_TRADE_UPDATE, balance, position risk, exchangeInfo...);
* the user-data stream ``/ws/<listenKey>`` and the combined market stream ``/stream?streams=``
  (the test pushes recorded lines with :meth:`push_market`), ``GET /fapi/v1/depth`` (a snapshot set
  by the test);
* faults: :meth:`fail` (any status/code, e.g. 429, 418, -2019), :meth:`delay` (timeouts),
  :meth:`drop_user_streams` (disconnect), :attr:`hold_pushes` (updates produced while a client is
  away are lost, as on a real disconnect), :attr:`duplicate_pushes` / :attr:`reverse_pushes`
  (duplicated and out-of-order private messages), rate-limit headers via :attr:`used_weight`.
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

from tests.fakes.venues.clock import BINANCE_CID, FakeVenueClock

API_KEY = "test-binance-key-0123456789"
API_SECRET = "test-binance-secret-abcdefghijkl"
SAMPLES = Path(__file__).resolve().parents[3].parent / "shared/data/nautilus_trader/binance_futures"


def _load(rel: str) -> Any:
    return json.loads((SAMPLES / rel).read_text())


@dataclass
class Fault:
    """An error answered instead of the real result."""

    method: str
    path: str
    status: int
    code: int
    msg: str
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeOrder:
    order_id: int
    cid: str
    symbol: str
    side: str
    type: str
    tif: str
    price: Decimal
    qty: Decimal
    filled: Decimal = Decimal(0)
    status: str = "NEW"
    reduce_only: bool = False
    time: int = 0


class FakeBinance:
    """The fake exchange. ``async with FakeBinance() as fx:`` serves on ``fx.rest_url`` /
    ``fx.ws_url``."""

    def __init__(self, api_key: str = API_KEY, api_secret: str = API_SECRET) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.clock = FakeVenueClock()
        self.orders: dict[str, FakeOrder] = {}
        self.trades: list[dict[str, Any]] = []
        self.positions: dict[str, Decimal] = {}
        self.balance = Decimal("10000")
        self.best: dict[str, tuple[Decimal, Decimal]] = {}  # symbol -> (bid, ask)
        self.fok_liquidity = False
        self.used_weight = 1
        self.order_count = 0
        self.faults: list[Fault] = []
        self.delays: dict[tuple[str, str], float] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.hold_pushes = False
        self.duplicate_pushes = False
        self.reverse_pushes = False
        self.lost: list[str] = []
        self.depth: dict[str, Any] = {}  # symbol -> REST depth answer
        self.depth_requests: list[str] = []
        self.listen_keys: list[str] = []
        self.keepalives = 0
        self.user_ws: list[web.WebSocketResponse] = []
        self.market_ws: list[web.WebSocketResponse] = []
        self.market_subscriptions: list[list[str]] = []
        self.connections = 0
        self._next_id = 8_886_774
        self._next_trade = 12_345_678
        self._now_ms = 1_700_000_000_000
        self._runner: web.AppRunner | None = None
        self._bg: set[asyncio.Task[None]] = set()
        self.port = 0
        self._info = _load("py_fixtures/http_responses/http_futures_market_exchange_info.json")
        self._order_tpl = _load("docs_fixtures/http_json/order_response.json")
        self._update_tpl = _load("docs_fixtures/user_data_json/order_update_trade.json")
        self._balance_tpl = _load("docs_fixtures/http_json/balance.json")
        self._position_tpl = _load("docs_fixtures/http_json/position_risk.json")
        self._premium_tpl = _load(
            "py_fixtures/http_responses/http_futures_market_premium_index.json"
        )
        self._trade_tpl = _load("py_fixtures/http_responses/http_futures_account_trades.json")[0]

    # ------------------------------------------------------------------ server
    async def __aenter__(self) -> FakeBinance:
        app = web.Application()
        app.router.add_route("*", "/fapi/{tail:.*}", self._rest)
        app.router.add_get("/ws/{key}", self._user_stream)
        app.router.add_get("/stream", self._market_stream)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for ws in [*self.user_ws, *self.market_ws]:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ faults
    def fail(
        self,
        method: str,
        path: str,
        status: int,
        code: int,
        msg: str,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method path`` with an error body."""
        self.faults.append(Fault(method, path, status, code, msg, times, headers or {}))

    def delay(self, method: str, path: str, seconds: float) -> None:
        """Answer ``method path`` only after ``seconds`` (client timeouts)."""
        self.delays[(method, path)] = seconds

    async def drop_user_streams(self) -> None:
        """Close every user-data connection (the client must reconnect)."""
        for ws in list(self.user_ws):
            await ws.close()
        self.user_ws.clear()

    async def drop_market_streams(self) -> None:
        """Close every market-data connection."""
        for ws in list(self.market_ws):
            await ws.close()
        self.market_ws.clear()

    # ------------------------------------------------------------------ order commands
    def tick(self) -> int:
        self._now_ms += 1
        return self._now_ms

    async def fill(
        self, cid: str, qty: str | None = None, price: str | None = None, maker: bool = True
    ) -> dict[str, Any]:
        """Fill (part of) an open order and push the ORDER_TRADE_UPDATE; returns the trade."""
        o = self.orders[cid]
        q = Decimal(qty) if qty is not None else o.qty - o.filled
        px = Decimal(price) if price is not None else o.price
        trade = self._trade(o, q, px, maker)
        await self._push_update(o, "TRADE", trade)
        return trade

    def _trade(self, o: FakeOrder, q: Decimal, px: Decimal, maker: bool) -> dict[str, Any]:
        o.filled += q
        o.status = "FILLED" if o.filled >= o.qty else "PARTIALLY_FILLED"
        sign = 1 if o.side == "BUY" else -1
        self.positions[o.symbol] = self.positions.get(o.symbol, Decimal(0)) + sign * q
        self._next_trade += 1
        trade: dict[str, Any] = copy.deepcopy(self._trade_tpl)
        trade.update(
            symbol=o.symbol,
            id=self._next_trade,
            orderId=o.order_id,
            side=o.side,
            price=str(px),
            qty=str(q),
            commission=str((q * px * Decimal("0.0002")).quantize(Decimal("0.00000001"))),
            commissionAsset="USDT",
            time=self.tick(),
            buyer=o.side == "BUY",
            maker=maker,
        )
        self.trades.append(trade)
        return trade

    async def cancel_by_venue(self, cid: str) -> None:
        """The venue cancels an order on its own (liquidation, expiry...)."""
        o = self.orders[cid]
        o.status = "CANCELED"
        await self._push_update(o, "CANCELED", None)

    # ------------------------------------------------------------------ pushes
    def _update_payload(
        self, o: FakeOrder, x: str, trade: dict[str, Any] | None, status: str | None = None
    ) -> str:
        ev = copy.deepcopy(self._update_tpl)
        t = self.tick()
        ev["E"] = ev["T"] = t
        ev["o"].update(
            s=o.symbol,
            c=o.cid,
            S=o.side,
            o=o.type,
            f=o.tif,
            q=str(o.qty),
            p=str(o.price),
            ap=str(trade["price"]) if trade else "0",
            x=x,
            X=status or o.status,
            i=o.order_id,
            l=str(trade["qty"]) if trade else "0",
            z=str(o.filled),
            L=str(trade["price"]) if trade else "0",
            N="USDT",
            n=str(trade["commission"]) if trade else "0",
            T=t,
            t=trade["id"] if trade else 0,
            m=bool(trade["maker"]) if trade else False,
            R=o.reduce_only,
            ps="BOTH",
        )
        return json.dumps(ev)

    async def _push_update(
        self, o: FakeOrder, x: str, trade: dict[str, Any] | None, status: str | None = None
    ) -> None:
        payload = self._update_payload(o, x, trade, status)
        if self.hold_pushes or not self.user_ws:
            self.lost.append(payload)
            return
        frames = [payload, payload] if self.duplicate_pushes else [payload]
        for ws in list(self.user_ws):
            for f in frames:
                await ws.send_str(f)

    async def push_raw_user(self, frames: list[str]) -> None:
        """Send frames to every user-data client (in the given order)."""
        for ws in list(self.user_ws):
            for f in frames:
                await ws.send_str(f)

    async def push_market(self, raw: str) -> None:
        """Send one combined-stream frame to every market-data client."""
        for ws in list(self.market_ws):
            await ws.send_str(raw)

    # ------------------------------------------------------------------ websockets
    async def _user_stream(self, request: web.Request) -> web.WebSocketResponse:
        key = request.match_info["key"]
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        if key not in self.listen_keys:
            await ws.close()
            return ws
        self.connections += 1
        self.user_ws.append(ws)
        async for msg in ws:
            if msg.type is WSMsgType.ERROR:
                break
        if ws in self.user_ws:
            self.user_ws.remove(ws)
        return ws

    async def _market_stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.market_subscriptions.append(request.query.get("streams", "").split("/"))
        self.connections += 1
        self.market_ws.append(ws)
        async for msg in ws:
            if msg.type is WSMsgType.ERROR:
                break
        if ws in self.market_ws:
            self.market_ws.remove(ws)
        return ws

    # ------------------------------------------------------------------ REST
    def _headers(self) -> dict[str, str]:
        return {
            "X-MBX-USED-WEIGHT-1M": str(self.used_weight),
            "X-MBX-ORDER-COUNT-1M": str(self.order_count),
        }

    def _error(self, status: int, code: int, msg: str) -> web.Response:
        return web.json_response({"code": code, "msg": msg}, status=status, headers=self._headers())

    def _ok(self, body: Any) -> web.Response:
        return web.json_response(body, headers=self._headers())

    def _check_signature(self, request: web.Request) -> web.Response | None:
        if request.headers.get("X-MBX-APIKEY") != self.api_key:
            return self._error(401, -2015, "Invalid API-key, IP, or permissions for action.")
        raw = request.query_string
        head, sep, sig = raw.rpartition("&signature=")
        want = hmac.new(self.api_secret.encode(), head.encode(), hashlib.sha256).hexdigest()
        if not sep or not hmac.compare_digest(sig, want):
            return self._error(400, -1022, "Signature for this request is not valid.")
        params = dict(parse_qsl(head))
        if "timestamp" not in params or "recvWindow" not in params:
            return self._error(400, -1102, "Mandatory parameter 'timestamp' was not sent.")
        late = self.clock.problem(params["timestamp"], params["recvWindow"])
        if late == "ahead":
            return self._error(
                400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        if late is not None:
            return self._error(
                400, -1021, "Timestamp for this request is outside of the recvWindow."
            )
        return None

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        resp = await self._serve(request)
        wait = self.delays.get((request.method, request.path))
        if wait:  # the venue acted; only its answer is late
            await asyncio.sleep(wait)
        return resp

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        method = request.method
        params = dict(parse_qsl(request.query_string.split("&signature=")[0]))
        self.requests.append((method, path, params))
        self.used_weight += 1
        for f in self.faults:
            if f.method == method and f.path == path and f.times > 0:
                f.times -= 1
                resp = self._error(f.status, f.code, f.msg)
                resp.headers.update(f.headers)
                return resp
        public = {
            "/fapi/v1/exchangeInfo",
            "/fapi/v1/depth",
            "/fapi/v1/premiumIndex",
            "/fapi/v1/time",
        }
        if path == "/fapi/v1/listenKey":
            if request.headers.get("X-MBX-APIKEY") != self.api_key:
                return self._error(401, -2015, "Invalid API-key, IP, or permissions for action.")
            if method == "POST":
                key = f"lk{len(self.listen_keys)}xyz"
                self.listen_keys.append(key)
                return self._ok({"listenKey": key})
            self.keepalives += 1
            return self._ok({})
        if path not in public:
            bad = self._check_signature(request)
            if bad is not None:
                return bad
        handler = {
            ("GET", "/fapi/v1/time"): self._time,
            ("GET", "/fapi/v1/exchangeInfo"): self._exchange_info,
            ("GET", "/fapi/v1/depth"): self._depth,
            ("GET", "/fapi/v1/premiumIndex"): self._premium,
            ("POST", "/fapi/v1/order"): self._new,
            ("PUT", "/fapi/v1/order"): self._amend,
            ("DELETE", "/fapi/v1/order"): self._cancel,
            ("GET", "/fapi/v1/order"): self._query,
            ("GET", "/fapi/v1/openOrders"): self._open_orders,
            ("GET", "/fapi/v1/userTrades"): self._user_trades,
            ("GET", "/fapi/v2/balance"): self._balance,
            ("GET", "/fapi/v2/positionRisk"): self._position,
        }.get((method, path))
        if handler is None:
            return self._error(404, -1000, f"fake: no route {method} {path}")
        return await handler(params)

    async def _time(self, p: dict[str, str]) -> web.Response:
        return self._ok({"serverTime": self.clock.now_ms()})

    async def _exchange_info(self, p: dict[str, str]) -> web.Response:
        return self._ok(self._info)

    async def _depth(self, p: dict[str, str]) -> web.Response:
        sym = p.get("symbol", "")
        self.depth_requests.append(sym)
        if sym not in self.depth:
            return self._error(400, -1121, "Invalid symbol.")
        return self._ok(self.depth[sym])

    async def _premium(self, p: dict[str, str]) -> web.Response:
        body = copy.deepcopy(self._premium_tpl)
        body["symbol"] = p.get("symbol", body.get("symbol"))
        return self._ok(body)

    def _order_body(self, o: FakeOrder) -> dict[str, Any]:
        body: dict[str, Any] = copy.deepcopy(self._order_tpl)
        body.update(
            orderId=o.order_id,
            symbol=o.symbol,
            status=o.status,
            clientOrderId=o.cid,
            price=str(o.price),
            origQty=str(o.qty),
            executedQty=str(o.filled),
            timeInForce=o.tif,
            type=o.type,
            origType=o.type,
            reduceOnly=o.reduce_only,
            side=o.side,
            time=o.time,
            updateTime=self.tick(),
        )
        return body

    async def _new(self, p: dict[str, str]) -> web.Response:
        self.order_count += 1
        symbol = p["symbol"]
        if symbol not in {s["symbol"] for s in self._info["symbols"]}:
            return self._error(400, -1121, "Invalid symbol.")
        cid = p["newClientOrderId"]
        if BINANCE_CID.match(cid) is None:
            return self._error(
                400,
                -1100,
                "Illegal characters found in parameter 'newClientOrderId'; legal range is "
                "'^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
            )
        if cid in self.orders and self.orders[cid].status in ("NEW", "PARTIALLY_FILLED"):
            return self._error(400, -4015, "Client order id is not valid.")
        qty = Decimal(p["quantity"])
        typ = p["type"]
        tif = p.get("timeInForce", "GTC")
        price = Decimal(p.get("price", "0"))
        side = p["side"]
        bid, ask = self.best.get(symbol, (Decimal(0), Decimal("1e12")))
        crosses = (side == "BUY" and price >= ask) or (side == "SELL" and 0 < price <= bid)
        if tif == "GTX" and crosses:
            return self._error(
                400,
                -5022,
                "Due to the order could not be executed as maker, the Post Only order will be "
                "rejected. The order will not be recorded in the order history",
            )
        if tif == "FOK" and not self.fok_liquidity:
            return self._error(
                400,
                -5021,
                "Due to the order could not be filled immediately, the FOK order has been "
                "rejected. The order will not be recorded in the order history",
            )
        reduce_only = p.get("reduceOnly") == "true"
        if reduce_only and self.positions.get(symbol, Decimal(0)) == 0:
            return self._error(400, -2022, "ReduceOnly Order is rejected.")
        ref = price if typ == "LIMIT" else (ask if side == "BUY" else bid)
        if not reduce_only and qty * ref / 10 > self.balance:
            return self._error(400, -2019, "Margin is insufficient.")
        self._next_id += 1
        o = FakeOrder(
            order_id=self._next_id,
            cid=cid,
            symbol=symbol,
            side=side,
            type=typ,
            tif=tif,
            price=price,
            qty=qty,
            reduce_only=reduce_only,
            time=self.tick(),
        )
        self.orders[cid] = o
        pushes: list[tuple[str, str, dict[str, Any] | None]] = [("NEW", "NEW", None)]
        if typ == "MARKET":
            trade = self._trade(o, qty, ref, maker=False)
            pushes.append(("TRADE", o.status, trade))
        elif tif == "IOC":
            o.status = "EXPIRED"
            pushes.append(("EXPIRED", "EXPIRED", None))
        elif tif == "FOK":
            trade = self._trade(o, qty, price, maker=False)
            pushes.append(("TRADE", o.status, trade))
        body = self._order_body(o)
        body["status"] = "NEW"
        body["executedQty"] = "0"
        # the stream updates follow the REST answer
        seq = list(reversed(pushes)) if self.reverse_pushes else pushes
        task = asyncio.get_running_loop().create_task(self._push_all(o, seq))
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)
        return self._ok(body)

    async def _push_all(
        self, o: FakeOrder, pushes: list[tuple[str, str, dict[str, Any] | None]]
    ) -> None:
        await asyncio.sleep(0)
        for x, status, trade in pushes:
            await self._push_update(o, x, trade, status)

    async def _amend(self, p: dict[str, str]) -> web.Response:
        o = self.orders.get(p.get("origClientOrderId", ""))
        if o is None or o.status not in ("NEW", "PARTIALLY_FILLED"):
            return self._error(400, -2013, "Order does not exist.")
        o.price = Decimal(p["price"])
        o.qty = Decimal(p["quantity"])
        await self._push_update(o, "AMENDMENT", None)
        return self._ok(self._order_body(o))

    async def _cancel(self, p: dict[str, str]) -> web.Response:
        o = self.orders.get(p.get("origClientOrderId", ""))
        if o is None or o.status not in ("NEW", "PARTIALLY_FILLED"):
            return self._error(400, -2011, "Unknown order sent.")
        o.status = "CANCELED"
        body = self._order_body(o)
        await self._push_update(o, "CANCELED", None)
        return self._ok(body)

    async def _query(self, p: dict[str, str]) -> web.Response:
        o = self.orders.get(p.get("origClientOrderId", ""))
        if o is None:
            return self._error(400, -2013, "Order does not exist.")
        return self._ok(self._order_body(o))

    async def _open_orders(self, p: dict[str, str]) -> web.Response:
        return self._ok(
            [
                self._order_body(o)
                for o in self.orders.values()
                if o.status in ("NEW", "PARTIALLY_FILLED")
            ]
        )

    async def _user_trades(self, p: dict[str, str]) -> web.Response:
        oid = int(p.get("orderId", "0"))
        return self._ok(
            [t for t in self.trades if t["symbol"] == p.get("symbol") and t["orderId"] == oid]
        )

    async def _balance(self, p: dict[str, str]) -> web.Response:
        b = copy.deepcopy(self._balance_tpl)
        b[0].update(balance=str(self.balance), availableBalance=str(self.balance))
        return self._ok(b)

    async def _position(self, p: dict[str, str]) -> web.Response:
        sym = p.get("symbol", "BTCUSDT")
        pos = copy.deepcopy(self._position_tpl[0])
        pos.update(symbol=sym, positionAmt=str(self.positions.get(sym, Decimal(0))))
        return self._ok([pos])


__all__ = ["API_KEY", "API_SECRET", "FakeBinance"]
