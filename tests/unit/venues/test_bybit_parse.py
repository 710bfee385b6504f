"""Pure Bybit v5 order-entry parsers on every recorded sample."""

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
from mlthon.gateways.bybit_v5 import parse
from mlthon.gateways.bybit_v5.wire import (
    Envelope,
    Execution,
    InstrumentInfo,
    OrderRecord,
    PagedList,
    Position,
    Ticker,
    WalletAccount,
)
from mlthon.gateways.bybit_v5.ws import decode_private_frame
from mlthon.gateways.live.model import OrderEvent
from mlthon.infra.instruments import load_instruments
from tests.conftest import SHARED_DATA

ROOT = SHARED_DATA / "nautilus_trader/bybit_v5"
FIX = ROOT / "rust_fixtures"
ORDER_PUSHES = sorted(FIX.glob("ws_account_order*.json"))
EXEC_PUSHES = sorted(FIX.glob("ws_account_execution*.json"))
ORDER_LISTS = [
    *sorted(FIX.glob("http_get_orders_*.json")),
    FIX / "http_get_order_partially_filled_rejected.json",
]


def test_rest_signature_recipe() -> None:
    # HMAC_SHA256(secret, timestamp + key + recvWindow + payload), hex
    sig = parse.sign("secret", 1658384314791, "key", 5000, "category=linear&symbol=BTCUSDT")
    import hashlib
    import hmac

    want = hmac.new(
        b"secret", b"1658384314791key5000category=linear&symbol=BTCUSDT", hashlib.sha256
    ).hexdigest()
    assert sig == want and len(sig) == 64
    key, expires, wsig = parse.ws_auth_args("key", "secret", 1700000000000)
    assert (key, expires) == ("key", "1700000000000")
    assert wsig == hmac.new(b"secret", b"GET/realtime1700000000000", hashlib.sha256).hexdigest()


@pytest.mark.parametrize("path", ORDER_PUSHES, ids=lambda p: p.name)
def test_every_recorded_order_push_decodes(path: Path) -> None:
    data = json.loads(path.read_text())
    events = decode_private_frame(path.read_bytes())
    assert len(events) == len(data["data"])
    for ev, rec in zip(events, data["data"], strict=True):
        assert isinstance(ev, OrderEvent) and ev.fill is None
        assert ev.order.venue_cid == rec["orderLinkId"] and ev.order.exch_id == rec["orderId"]
        assert ev.order.filled == Decimal(rec["cumExecQty"])


@pytest.mark.parametrize("path", EXEC_PUSHES, ids=lambda p: p.name)
def test_every_recorded_execution_push_decodes(path: Path) -> None:
    data = json.loads(path.read_text())
    events = decode_private_frame(path.read_bytes())
    trades = [e for e in data["data"] if e.get("execType", "Trade") == "Trade" and e["orderLinkId"]]
    assert len(events) == len(trades)
    for ev, rec in zip(events, trades, strict=True):
        assert isinstance(ev, OrderEvent) and ev.fill is not None
        assert ev.fill.exec_id == rec["execId"] and ev.fill.qty == Decimal(rec["execQty"])
        assert ev.fill.price == Decimal(rec["execPrice"]) and ev.fill.maker is rec["isMaker"]


def test_execution_fields() -> None:
    (ev,) = decode_private_frame((FIX / "ws_account_execution.json").read_bytes())
    assert isinstance(ev, OrderEvent) and ev.fill is not None
    assert ev.fill.side is Side.Sell and ev.fill.fee == Decimal("26.3725275")
    assert ev.order.status is OrderStatus.Filled and ev.fill.ts == 1746270400353 * 1_000_000


@pytest.mark.parametrize("path", ORDER_LISTS, ids=lambda p: p.name)
def test_every_recorded_order_list_decodes(path: Path) -> None:
    env = msgspec.json.decode(path.read_bytes(), type=Envelope)
    assert env.retCode == 0
    page = msgspec.json.decode(env.result, type=PagedList)
    recs = msgspec.json.decode(page.list, type=list[OrderRecord])
    assert recs
    for r in recs:
        vo = parse.order_record_to_venue_order(r)
        assert vo.venue_cid == r.orderLinkId and vo.qty == Decimal(r.qty)


def test_cancel_reasons_become_rejects_or_ioc() -> None:
    base = msgspec.json.decode(
        json.dumps(json.loads((FIX / "ws_account_order.json").read_text())["data"][0]),
        type=OrderRecord,
    )
    user = parse.order_record_to_venue_order(base)
    assert user.status is OrderStatus.Cancelled and user.reject_code is None
    assert user.reason == "CancelByUser"
    po = parse.order_record_to_venue_order(
        msgspec.structs.replace(base, rejectReason="EC_PostOnlyWillTakeLiquidity")
    )
    assert po.reject_code is GtwRejectCode.PostOnlyWouldCross
    fok = parse.order_record_to_venue_order(
        msgspec.structs.replace(base, rejectReason="EC_CancelForNoFullFill")
    )
    assert fok.reject_code is GtwRejectCode.FokNotFilled
    ioc = parse.order_record_to_venue_order(
        msgspec.structs.replace(base, rejectReason="EC_NoImmediateQtyToFill")
    )
    assert ioc.reject_code is None and ioc.cancel_code_hint == "ioc"


def test_executions_list_and_instruments() -> None:
    env = msgspec.json.decode((FIX / "http_get_executions.json").read_bytes(), type=Envelope)
    page = msgspec.json.decode(env.result, type=PagedList)
    execs = msgspec.json.decode(page.list, type=list[Execution])
    fills = [parse.execution_to_fill(e) for e in execs]
    assert fills[0].exec_id == "e0cbe81d-0f18-5866-9415-cf319b5dab3b" and fills[0].maker
    for name in ("docs_examples/http_responses/linear/instruments.json",):
        env = msgspec.json.decode((ROOT / name).read_bytes(), type=Envelope)
        page = msgspec.json.decode(env.result, type=PagedList)
        infos = msgspec.json.decode(page.list, type=list[InstrumentInfo])
        wanted = [i for i in load_instruments() if i.exchange is Exchange.Bybit]
        got = {i.name: i for i in parse.instruments_from_info(infos, wanted)}
        assert got["BTCUSDT"].instrument_id == 2001
        assert got["BTCUSDT"].tick_size == Decimal("0.10")
        assert got["BTCUSDT"].lot_size == Decimal("0.001")
        assert got["BTCUSDT"].min_notional == Decimal("5")
        assert "XRPUSDT" not in got


def test_new_order_body_per_kind() -> None:
    common: dict[str, Any] = {
        "symbol": "BTCUSDT",
        "venue_cid": "s.1",
        "side": Side.Buy,
        "price": Decimal("30000.0"),
        "qty": Decimal("0.010"),
    }
    b = parse.new_order_body(
        ord_type=OrderType.Limit,
        tif=TIF.GTC,
        exec_instr=ExecInstructions.PostOnly,
        reduce_only=True,
        **common,
    )  # type: ignore[arg-type]
    assert b["timeInForce"] == "PostOnly" and b["reduceOnly"] is True and b["price"] == "30000.0"
    assert b["category"] == "linear" and b["orderLinkId"] == "s.1" and b["side"] == "Buy"
    b = parse.new_order_body(
        ord_type=OrderType.Market,
        tif=TIF.GTC,
        exec_instr=ExecInstructions.Unset,
        reduce_only=False,
        **common,
    )  # type: ignore[arg-type]
    assert b["orderType"] == "Market" and "price" not in b and "reduceOnly" not in b


def test_rate_headers() -> None:
    u = parse.headers_to_rate_usage(
        {
            "X-Bapi-Limit": "100",
            "X-Bapi-Limit-Status": "99",
            "X-Bapi-Limit-Reset-Timestamp": "1672738134824",
        },
        "/v5/order/create",
    )
    assert u is not None and (u.limit, u.used) == (100, 1)
    assert u.reset_ts == 1672738135000 * 1_000_000
    assert parse.headers_to_rate_usage({}, "x") is None


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (110001, GtwRejectCode.UnknownOrder),
        (110007, GtwRejectCode.InsufficientBalance),
        (110017, GtwRejectCode.ReduceOnlyWouldIncrease),
        (10003, GtwRejectCode.NotLoggedIn),
        (10004, GtwRejectCode.NotLoggedIn),
        (10006, GtwRejectCode.RateLimitExceeded),
        (10001, GtwRejectCode.InvalidRequest),
        (999999, GtwRejectCode.ExchangeError),
    ],
)
def test_error_codes(code: int, expected: GtwRejectCode) -> None:
    assert parse.error_to_reject_code(code) is expected


@pytest.mark.parametrize(
    ("rel", "typ"),
    [
        ("rust_fixtures/http_get_wallet_balance.json", list[WalletAccount]),
        ("rust_fixtures/http_get_wallet_balance_with_spot_borrow.json", list[WalletAccount]),
        ("rust_fixtures/http_get_positions.json", list[Position]),
        ("rust_fixtures/http_get_positions_with_open_time.json", list[Position]),
        ("docs_examples/http_responses/linear/tickers.json", list[Ticker]),
        ("rust_fixtures/http_get_instruments_linear.json", list[InstrumentInfo]),
        ("docs_examples/http_responses/linear/instrument_btc_usdt.json", list[InstrumentInfo]),
    ],
)
def test_account_samples_decode(rel: str, typ: Any) -> None:
    env = msgspec.json.decode((ROOT / rel).read_bytes(), type=Envelope)
    assert env.retCode == 0
    page = msgspec.json.decode(env.result, type=PagedList)
    items = msgspec.json.decode(page.list, type=typ)
    assert items
