"""Venue parsers on small hand-written payloads (the recorded ones are in tests/integration)."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from mlthon.basics.book import ASK, BID
from mlthon.basics.mlt_enum import Exchange
from mlthon.feeds.binance_usdm.parse import BinanceDecoder, detect_market, market_from_url
from mlthon.feeds.bitfinex.parse import BitfinexDecoder
from mlthon.feeds.bybit_v5.parse import BybitDecoder
from mlthon.feeds.events import (
    SEQ_NEXT,
    SEQ_PREV,
    DepthDiff,
    DepthSnapshot,
    Funding,
    Ignored,
    OrderSnapshot,
    OrderUpdate,
    Trades,
)
from mlthon.feeds.readers import detect_format
from mlthon.feeds.tardis.parse import kind_of_header, read_rows

FUT_DEPTH = (
    b'{"stream":"xyzusdt@depth@0ms","data":{"e":"depthUpdate","E":1000,"T":999,"s":"XYZUSDT",'
    b'"U":10,"u":12,"pu":9,"b":[["1.50","2"]],"a":[["1.60","0.000"]]}}'
)
SPOT_DEPTH = (
    b'{"stream":"xyzusdt@depth@100ms","data":{"e":"depthUpdate","E":1000,"s":"XYZUSDT",'
    b'"U":10,"u":12,"b":[],"a":[["1.60","3"]]}}'
)


def test_binance_depth_futures_and_spot_rules():
    fut = BinanceDecoder(Exchange.BinanceUsdm).decode(FUT_DEPTH)[0]
    assert isinstance(fut, DepthDiff)
    assert (fut.first_id, fut.last_id, fut.prev_id, fut.rule) == (10, 12, 9, SEQ_PREV)
    assert fut.ets == 999_000_000
    assert fut.bids == [("1.50", "2")]
    spot = BinanceDecoder(Exchange.BinanceSpot).decode(SPOT_DEPTH)[0]
    assert spot.rule == SEQ_NEXT
    assert spot.prev_id == -1


def test_binance_rest_snapshot_without_symbol_takes_next_diff_symbol():
    dec = BinanceDecoder(Exchange.BinanceUsdm)
    assert dec.decode(b'{"lastUpdateId":11,"E":5,"T":4,"bids":[["1.5","1"]],"asks":[]}') == []
    snap, diff = dec.decode(FUT_DEPTH)
    assert isinstance(snap, DepthSnapshot)
    assert snap.symbol == "XYZUSDT"
    assert snap.last_id == 11
    assert not snap.in_stream
    assert snap.rule == SEQ_PREV
    assert isinstance(diff, DepthDiff)


@pytest.mark.parametrize(("m", "taker"), [("true", 2), ("false", 1)])
def test_binance_trade_maker_flag_gives_taker_side(m, taker):
    raw = (
        '{"stream":"x@aggTrade","data":{"e":"aggTrade","E":1,"a":77,"s":"XYZUSDT","p":"1.5",'
        f'"q":"3","f":1,"l":2,"T":2,"m":{m}}}}}'
    )
    (ev,) = BinanceDecoder(Exchange.BinanceUsdm).decode(raw.encode())
    assert isinstance(ev, Trades)
    assert ev.trades == [(taker, "1.5", "3", 2_000_000, "77")]


def test_binance_mark_price_is_funding_and_book_ticker_ignored():
    dec = BinanceDecoder(Exchange.BinanceUsdm)
    (f,) = dec.decode(
        b'{"e":"markPriceUpdate","E":7,"s":"XYZUSDT","p":"1.1","i":"1.0","P":"1.0",'
        b'"r":"0.0001","T":28800000}'
    )
    assert isinstance(f, Funding)
    assert (f.rate, f.next_ts, f.mark) == ("0.0001", 28_800_000_000_000, "1.1")
    (ig,) = dec.decode(b'{"stream":"x@bookTicker","data":{"u":1,"b":"1","B":"1","a":"2","A":"1"}}')
    assert isinstance(ig, Ignored)


def test_binance_malformed_depth_raises_validation_error():
    with pytest.raises(msgspec.ValidationError):
        BinanceDecoder(Exchange.BinanceUsdm).decode(
            b'{"stream":"x@depth","data":{"e":"depthUpdate"}}'
        )


def test_binance_market_detection():
    assert detect_market([FUT_DEPTH]) is Exchange.BinanceUsdm
    assert detect_market([SPOT_DEPTH]) is Exchange.BinanceSpot
    coinm = FUT_DEPTH.replace(b'"s":"XYZUSDT"', b'"s":"XYZUSD_PERP","ps":"XYZUSD"')
    assert detect_market([coinm]) is Exchange.BinanceCoinm
    assert (
        market_from_url("https://fapi.binance.com/fapi/v1/depth?symbol=X") is Exchange.BinanceUsdm
    )
    assert market_from_url("wss://dstream.binance.com/stream") is Exchange.BinanceCoinm
    assert market_from_url("wss://stream.binance.com:9443/ws") is Exchange.BinanceSpot
    assert market_from_url("wss://www.bitmex.com/realtime") is None


def test_bybit_orderbook_snapshot_delta_and_restart():
    dec = BybitDecoder()
    (s,) = dec.decode(
        b'{"topic":"orderbook.50.XYZ","type":"snapshot","ts":5,"data":{"s":"XYZ",'
        b'"b":[["1.0","2"]],"a":[["1.1","3"]],"u":40,"seq":9}}'
    )
    assert isinstance(s, DepthSnapshot)
    assert s.in_stream
    assert s.last_id == 40
    (d,) = dec.decode(
        b'{"topic":"orderbook.50.XYZ","type":"delta","ts":6,"data":{"s":"XYZ",'
        b'"b":[],"a":[["1.1","0"]],"u":41,"seq":12}}'
    )
    assert isinstance(d, DepthDiff)
    assert (d.first_id, d.last_id, d.rule) == (41, 41, SEQ_NEXT)
    (r,) = dec.decode(
        b'{"topic":"orderbook.50.XYZ","type":"delta","ts":7,"data":{"s":"XYZ",'
        b'"b":[],"a":[],"u":1,"seq":13}}'
    )
    assert isinstance(r, DepthSnapshot)  # u == 1: the service restarted


def test_bybit_ticker_delta_merge_emits_funding_on_change_only():
    dec = BybitDecoder()
    snap = (
        b'{"topic":"tickers.XYZ","type":"snapshot","ts":1,"data":{"symbol":"XYZ",'
        b'"fundingRate":"0.0001","nextFundingTime":"1000","markPrice":"5.0","lastPrice":"5"}}'
    )
    (f,) = dec.decode(snap)
    assert (f.rate, f.next_ts, f.mark) == ("0.0001", 1_000_000_000, "5.0")
    delta_same = (
        b'{"topic":"tickers.XYZ","type":"delta","ts":2,"data":{"symbol":"XYZ","lastPrice":"6"}}'
    )
    assert dec.decode(delta_same) == []
    delta = (
        b'{"topic":"tickers.XYZ","type":"delta","ts":3,"data":{"symbol":"XYZ","markPrice":"5.5"}}'
    )
    (f2,) = dec.decode(delta)
    assert (f2.rate, f2.mark) == ("0.0001", "5.5")


def test_bybit_public_trade_taker_side():
    (t,) = BybitDecoder().decode(
        b'{"topic":"publicTrade.XYZ","type":"snapshot","ts":1,"data":[{"T":9,"s":"XYZ",'
        b'"S":"Sell","v":"2","p":"1.5","L":"MinusTick","i":"abc","BT":false}]}'
    )
    assert t.trades == [(2, "1.5", "2", 9_000_000, "abc")]


def test_bitfinex_frames_exact_decimals_and_remove():
    dec = BitfinexDecoder()
    dec.decode(b'{"event":"subscribed","channel":"book","chanId":7,"symbol":"tXYZ","prec":"R0"}')
    (snap,) = dec.decode(b"[7,[[1,100.12345678,0.5],[2,101,-6.3e-05]]]")
    assert isinstance(snap, OrderSnapshot)
    assert snap.orders == [(1, BID, "100.12345678", "0.5"), (2, ASK, "101", "0.000063")]
    (rm,) = dec.decode(b"[7,[2,0,-1]]")
    assert isinstance(rm, OrderUpdate)
    assert rm.remove
    assert rm.side == ASK
    assert isinstance(dec.decode(b'[7,"hb"]')[0], Ignored)
    with pytest.raises(ValueError, match="unknown channel"):
        dec.decode(b"[8,[1,1,1]]")


def test_tardis_incremental_rows_grouped_by_message_and_snapshot_runs():
    rows = [
        "deribit,X,1,10,true,ask,5,1",
        "deribit,X,1,10,true,bid,4,1",
        "deribit,X,2,11,false,bid,4,0",
        "deribit,X,2,11,false,ask,6,2",
        "deribit,X,3,12,false,ask,5,0",
        "deribit,X,3,12,oops",
    ]
    bad = []
    evs = list(
        read_rows(
            "incremental_book_L2",
            enumerate(rows, 2),
            "f.csv",
            lambda why, src, line: bad.append((src, line)),
        )
    )
    assert [type(e.event) for e in evs] == [DepthSnapshot, DepthDiff, DepthDiff]
    assert evs[0].ts == 10_000
    assert evs[1].event.bids == [("4", "0")]
    assert evs[1].event.asks == [("6", "2")]
    assert evs[0].exchange is Exchange.Deribit
    assert bad == [("f.csv", 7)]


def test_format_detection_from_content():
    assert detect_format(b"1723161255030314667 {") == "capture"
    assert detect_format(b'{"topic":"orderbook.500.XRPUSDT"}') == "ndjson"
    assert detect_format(b'[{"event": "info"}') == "json_array"
    assert (
        detect_format(b"exchange,symbol,timestamp,local_timestamp,id,side,price,amount") == "tardis"
    )
    assert (
        detect_format(b"wss://fstream.binance.com/stream?streams=a <-> 1626992740.5")
        == "cryptofeed"
    )
    assert detect_format(b"1626992741.06217: {}") == "cryptofeed"
    assert detect_format(b"hello world") is None
    assert (
        kind_of_header(
            "exchange,symbol,timestamp,local_timestamp,asks[0].price,asks[0].amount,"
            "bids[0].price,bids[0].amount"
        )
        == "book_snapshot"
    )


def test_decimal_strings_never_go_through_float():
    dec = BitfinexDecoder()
    dec.decode(b'{"event":"subscribed","channel":"book","chanId":1,"symbol":"tX"}')
    (u,) = dec.decode(b"[1,[5,0.1,0.30000000000000004]]")
    assert Decimal(u.size) == Decimal("0.30000000000000004")


def test_replay_skips_and_reports_backwards_receive_time_in_csv(tmp_path):
    from mlthon.feeds.replay import replay_file
    from mlthon.infra.instruments import load_instruments

    f = tmp_path / "t.csv"
    f.write_text(
        "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
        "bitmex,XBTUSD,1,20,a,buy,100,1\n"
        "bitmex,XBTUSD,1,10,b,sell,100,1\n"
        "bitmex,XBTUSD,1,30,c,sell,100.5,2\n"
    )
    r = replay_file(f, load_instruments())
    msgs = list(r)
    assert [m.tr[0][4] for m in msgs] == ["a", "c"]
    assert r.stats.bad == 1
    assert r.stats.bad_records[0].line == 3


def test_binance_bulk_depth_csv_snapshot_then_chained_set(tmp_path):
    from mlthon.feeds.replay import replay_file
    from mlthon.infra.instruments import load_instruments

    f = tmp_path / "depth.csv"
    f.write_text(
        "symbol,timestamp,first_update_id,last_update_id,side,update_type,price,qty,pu\n"
        "BTCUSDT,1000,50,50,b,snap,100.00,1.000,-1\n"
        "BTCUSDT,1000,50,50,a,snap,100.10,2.000,-1\n"
        "BTCUSDT,1001,51,55,b,set,100.00,0.000,50\n"
        "BTCUSDT,1001,51,55,b,set,99.90,3.000,50\n"
        "BTCUSDT,1002,56,57,a,set,100.20,1.000,55\n"
    )
    r = replay_file(f, load_instruments())
    msgs = list(r)
    assert r.stats.syncs == 1
    assert r.stats.bad == 0
    assert [type(m).__name__ for m in msgs] == [
        "FeedStatus",
        "BookUpdate",
        "FeedStatus",
        "BookUpdate",
    ]
    # ticks of 0.10 and lots of 0.001 (BTCUSDT 1001)
    assert msgs[1].ch == [(0, 1, 999, 3000), (0, 2, 1001, 2000)]
    assert msgs[3].ch == [(0, 2, 1002, 1000)]


def test_binance_rest_snapshot_without_symbol_in_multi_symbol_stream_goes_by_id():
    dec = BinanceDecoder(Exchange.BinanceUsdm)
    dec.decode(FUT_DEPTH)  # XYZUSDT ids 10..12
    other = FUT_DEPTH.replace(b"XYZUSDT", b"ABCUSDT").replace(
        b'"U":10,"u":12,"pu":9', b'"U":900,"u":905,"pu":899'
    )
    dec.decode(other)
    (snap,) = dec.decode(b'{"lastUpdateId":11,"E":5,"T":4,"bids":[],"asks":[]}')
    assert snap.symbol == "XYZUSDT"
    (snap,) = dec.decode(b'{"lastUpdateId":907,"E":5,"T":4,"bids":[],"asks":[]}')
    assert snap.symbol == "ABCUSDT"
