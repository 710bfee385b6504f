"""Pure Binance USD-M order-entry parsers on every recorded sample."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from mlthon.basics.mlt_enum import (
    TIF,
    Exchange,
    ExecInstructions,
    GtwRejectCode,
    OrderStatus,
    OrderType,
    Side,
)
from mlthon.gateways.binance_usdm import parse
from mlthon.gateways.binance_usdm.wire import (
    Balance,
    ExchangeInfo,
    Order,
    PositionRisk,
    PremiumIndex,
    UserTrade,
)
from mlthon.gateways.binance_usdm.ws import decode_user_frame, user_stream_url
from mlthon.gateways.live.model import OrderEvent, VenueUnavailable
from mlthon.infra.instruments import load_instruments
from tests.conftest import SHARED_DATA

ROOT = SHARED_DATA / "nautilus_trader/binance_futures"
USER_FILES = sorted((ROOT / "docs_fixtures/user_data_json").glob("*.json")) + sorted(
    (ROOT / "py_fixtures/ws_messages").glob("ws_futures_order_update_*.json")
)


def _raw(p: Path) -> bytes:
    return p.read_bytes()


def test_sign_query_matches_binance_documented_example() -> None:
    # the HMAC example of Binance's API documentation (SIGNED endpoint examples)
    secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
    params = {
        "symbol": "LTCBTC",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "1",
        "price": "0.1",
        "recvWindow": "5000",
        "timestamp": "1499827319559",
    }
    q = parse.sign_query(secret, params)
    assert q.endswith("&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71")


@pytest.mark.parametrize("path", USER_FILES, ids=lambda p: p.name)
def test_every_recorded_user_event_decodes(path: Path) -> None:
    events = decode_user_frame(_raw(path))
    data = json.loads(path.read_text())
    body = data.get("data", data)
    if body.get("e") != "ORDER_TRADE_UPDATE":
        assert events == []
        return
    (ev,) = events
    assert isinstance(ev, OrderEvent)
    o = body["o"]
    assert ev.order.venue_cid == o["c"] and ev.order.exch_id == str(o["i"])
    assert ev.order.qty == Decimal(o["q"]) and ev.order.filled == Decimal(o["z"])
    if o["x"] == "TRADE" and Decimal(o["l"]) > 0:
        assert ev.fill is not None
        assert ev.fill.qty == Decimal(o["l"]) and ev.fill.price == Decimal(o["L"])
        assert ev.fill.exec_id == f"{o['s']}:{o['t']}"
        assert ev.fill.maker is o["m"]
    else:
        assert ev.fill is None


def test_trade_update_fields() -> None:
    (ev,) = decode_user_frame(_raw(ROOT / "docs_fixtures/user_data_json/order_update_trade.json"))
    assert isinstance(ev, OrderEvent) and ev.fill is not None
    assert ev.order.status is OrderStatus.PartiallyFilled
    assert ev.fill.side is Side.Buy and ev.fill.fee == Decimal("0.01000000")
    assert ev.fill.fee_coin == "USDT" and ev.fill.ts == 1568879465651 * 1_000_000


def test_listen_key_expired_ends_the_stream() -> None:
    with pytest.raises(VenueUnavailable):
        decode_user_frame(b'{"e":"listenKeyExpired","E":1576653824250,"listenKey":"x"}')
    assert decode_user_frame(b'{"e":"ACCOUNT_UPDATE","E":1,"T":1,"a":{}}') == []
    assert user_stream_url("wss://x/", "abc") == "wss://x/ws/abc"


def test_malformed_user_frame_raises_decode_error() -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_user_frame(b'{"e":"ORDER_TRADE_UPDATE","o":{"s":1}}')


def test_order_response_and_open_orders() -> None:
    o = msgspec.json.decode(
        (ROOT / "docs_fixtures/http_json/order_response.json").read_bytes(), type=Order
    )
    vo = parse.order_to_venue_order(o)
    assert vo.status is OrderStatus.New and vo.exch_id == "12345678"
    assert vo.price == Decimal("50000.00") and vo.qty == Decimal("0.001")
    orders = msgspec.json.decode(
        (ROOT / "py_fixtures/http_responses/http_futures_account_orders.json").read_bytes(),
        type=list[Order],
    )
    assert [parse.order_to_venue_order(x).venue_cid for x in orders] == ["abc"]
    expired = parse.order_to_venue_order(msgspec.structs.replace(o, status="EXPIRED"))
    assert expired.status is OrderStatus.Cancelled and expired.cancel_code_hint == "ioc"


def test_user_trades_to_fills() -> None:
    trades = msgspec.json.decode(
        (ROOT / "py_fixtures/http_responses/http_futures_account_trades.json").read_bytes(),
        type=list[UserTrade],
    )
    fills = [parse.user_trade_to_fill(t, "cid") for t in trades]
    assert [f.exec_id for f in fills] == ["ETHUSDT:82357626", "ETHUSDT:82357629"]
    assert fills[0].side is Side.Sell and fills[1].fee == Decimal("0.00555800")
    assert not fills[0].maker


def test_exchange_info_to_instruments_keeps_ids_and_real_grids() -> None:
    info = msgspec.json.decode(
        (ROOT / "py_fixtures/http_responses/http_futures_market_exchange_info.json").read_bytes(),
        type=ExchangeInfo,
    )
    wanted = [i for i in load_instruments() if i.exchange is Exchange.BinanceUsdm]
    got = {i.name: i for i in parse.exchange_info_to_instruments(info, wanted)}
    assert set(got) == {"BTCUSDT", "ETHUSDT"}
    btc = got["BTCUSDT"]
    assert btc.instrument_id == 1001 and btc.tick_size == Decimal("0.10")
    assert btc.lot_size == Decimal("0.001") and btc.min_notional == Decimal("10")
    assert btc.settle_coin == "USDT"
    assert parse.weight_limit(info) == 6000 and parse.order_limit(info) == 1200


def test_new_order_params_per_kind() -> None:
    common = {
        "symbol": "BTCUSDT",
        "venue_cid": "s.1",
        "side": Side.Sell,
        "price": Decimal("50000.10"),
        "qty": Decimal("0.010"),
    }
    p = parse.new_order_params(
        ord_type=OrderType.Limit,
        tif=TIF.GTC,
        exec_instr=ExecInstructions.PostOnly,
        reduce_only=True,
        **common,  # type: ignore[arg-type]
    )
    assert p["timeInForce"] == "GTX" and p["reduceOnly"] == "true" and p["side"] == "SELL"
    assert p["price"] == "50000.10" and p["quantity"] == "0.010"
    p = parse.new_order_params(
        ord_type=OrderType.Limit,
        tif=TIF.FOK,
        exec_instr=ExecInstructions.Unset,
        reduce_only=False,
        **common,  # type: ignore[arg-type]
    )
    assert p["timeInForce"] == "FOK" and "reduceOnly" not in p
    p = parse.new_order_params(
        ord_type=OrderType.Market,
        tif=TIF.IOC,
        exec_instr=ExecInstructions.Unset,
        reduce_only=False,
        **common,  # type: ignore[arg-type]
    )
    assert p["type"] == "MARKET" and "price" not in p and "timeInForce" not in p


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (-2019, GtwRejectCode.InsufficientBalance),
        (-2011, GtwRejectCode.UnknownOrder),
        (-2013, GtwRejectCode.UnknownOrder),
        (-1121, GtwRejectCode.UnknownInstrument),
        (-4164, GtwRejectCode.InvalidQty),
        (-1022, GtwRejectCode.NotLoggedIn),
        (-2015, GtwRejectCode.NotLoggedIn),
        (-5022, GtwRejectCode.PostOnlyWouldCross),
        (-5021, GtwRejectCode.FokNotFilled),
        (-2022, GtwRejectCode.ReduceOnlyWouldIncrease),
        (-1003, GtwRejectCode.RateLimitExceeded),
        (-1, GtwRejectCode.ExchangeError),
    ],
)
def test_error_codes(code: int, expected: GtwRejectCode) -> None:
    assert parse.error_to_reject_code(code) is expected


def test_rate_headers_pick_the_fullest_budget() -> None:
    now = 61 * 10**9 + 5
    u = parse.headers_to_rate_usage(
        {"x-mbx-used-weight-1m": "100", "X-MBX-ORDER-COUNT-1M": "900"}, now, 2400, 1200
    )
    assert u is not None and u.name == "orders-1m" and u.used == 900 and u.limit == 1200
    assert u.reset_ts == 120 * 10**9
    assert parse.headers_to_rate_usage({}, now, 2400, 1200) is None


@pytest.mark.parametrize(
    ("rel", "typ"),
    [
        ("docs_fixtures/http_json/balance.json", list[Balance]),
        ("docs_fixtures/http_json/position_risk.json", list[PositionRisk]),
        (
            "py_fixtures/http_responses/http_futures_account_positions_one_way.json",
            list[PositionRisk],
        ),
        (
            "py_fixtures/http_responses/http_futures_account_positions_hedge.json",
            list[PositionRisk],
        ),
        ("py_fixtures/http_responses/http_futures_market_premium_index.json", PremiumIndex),
    ],
)
def test_account_samples_decode(rel: str, typ: Any) -> None:
    got = msgspec.json.decode((ROOT / rel).read_bytes(), type=typ)
    items = got if isinstance(got, list) else [got]
    assert items
    for x in items:
        if isinstance(x, PositionRisk):
            Decimal(x.positionAmt)
        elif isinstance(x, Balance):
            assert Decimal(x.balance) >= 0
        else:
            assert Decimal(x.lastFundingRate) and x.nextFundingTime > 0
