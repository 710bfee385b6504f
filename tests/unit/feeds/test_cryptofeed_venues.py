"""BitMEX, Deribit and Coinbase decoders on small payloads shaped like the recorded ones, and the
cryptofeed reader's choice of decoder from the connect URL."""

from __future__ import annotations

import msgspec
import pytest

from mlthon.basics.book import ASK, BID
from mlthon.basics.mlt_enum import Exchange
from mlthon.feeds.bitmex.parse import BitmexDecoder
from mlthon.feeds.coinbase.parse import CoinbaseDecoder
from mlthon.feeds.deribit.parse import DeribitDecoder
from mlthon.feeds.events import (
    SEQ_NONE,
    SEQ_PREV,
    DepthDiff,
    DepthSnapshot,
    Disconnect,
    Ignored,
    OrderSnapshot,
    OrderUpdate,
    PartialDecode,
    Trades,
)
from mlthon.feeds.readers import read_cryptofeed
from mlthon.feeds.timefmt import iso_to_ns

XBT_PARTIAL = (
    b'{"table":"orderBookL2","action":"partial","keys":["symbol","id","side"],'
    b'"filter":{"symbol":"XBTUSD"},"data":['
    b'{"symbol":"XBTUSD","id":8796323950,"side":"Sell","size":100,"price":32040.5},'
    b'{"symbol":"XBTUSD","id":8796324000,"side":"Buy","size":2500,"price":32040}]}'
)


def test_bitmex_rows_before_the_partial_are_not_applied():
    dec = BitmexDecoder()
    early = (
        b'{"table":"orderBookL2","action":"insert",'
        b'"data":[{"symbol":"XBTUSD","id":1,"side":"Buy","size":1,"price":1}]}'
    )
    (ev,) = dec.decode(early)
    assert isinstance(ev, Ignored)
    (snap,) = dec.decode(XBT_PARTIAL)
    assert isinstance(snap, OrderSnapshot)
    assert snap.symbol == "XBTUSD"
    assert snap.orders == [(8796323950, ASK, "32040.5", "100"), (8796324000, BID, "32040", "2500")]


def test_bitmex_update_and_delete_without_price_resolved_by_id():
    dec = BitmexDecoder()
    dec.decode(XBT_PARTIAL)
    (up,) = dec.decode(
        b'{"table":"orderBookL2","action":"update","data":[{"symbol":"XBTUSD","id":8796323950,"side":"Sell","size":300}]}'
    )
    assert isinstance(up, OrderUpdate)
    assert (up.order_id, up.side, up.price, up.size, up.remove) == (
        8796323950,
        ASK,
        "32040.5",
        "300",
        False,
    )
    (gone,) = dec.decode(
        b'{"table":"orderBookL2","action":"delete","data":[{"symbol":"XBTUSD","id":8796324000,"side":"Buy"}]}'
    )
    assert (gone.order_id, gone.side, gone.price, gone.remove) == (8796324000, BID, "32040", True)


def test_bitmex_update_of_unknown_id_is_reported_and_other_rows_kept():
    dec = BitmexDecoder()
    dec.decode(XBT_PARTIAL)
    with pytest.raises(PartialDecode, match="unknown level 7") as info:
        dec.decode(
            b'{"table":"orderBookL2","action":"update","data":['
            b'{"symbol":"XBTUSD","id":7,"side":"Sell","size":1},'
            b'{"symbol":"XBTUSD","id":8796324000,"side":"Buy","size":10}]}'
        )
    (kept,) = info.value.events
    assert (kept.order_id, kept.price, kept.size) == (8796324000, "32040", "10")


def test_bitmex_trades_taker_side_exact_decimals_and_time():
    (tr,) = BitmexDecoder().decode(
        b'{"table":"trade","action":"insert","data":[{"timestamp":"2021-07-22T22:36:10.014Z",'
        b'"symbol":"XRPU21","side":"Sell","size":15,"price":0.00001819,"trdMatchID":"abc"}]}'
    )
    assert isinstance(tr, Trades)
    assert tr.trades == [(ASK, "0.00001819", "15", 1_626_993_370_014_000_000, "abc")]


def test_bitmex_quote_and_replies_ignored():
    dec = BitmexDecoder()
    assert isinstance(dec.decode(b'{"success":true,"subscribe":"quote:XBTUSD"}')[0], Ignored)
    assert isinstance(dec.decode(b'{"table":"quote","action":"insert","data":[]}')[0], Ignored)


def _deribit(data: str, channel: str = "book.BTC-PERPETUAL.raw") -> bytes:
    return (
        f'{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":"{channel}",'
        f'"data":{data}}}}}'
    ).encode()


def test_deribit_snapshot_and_change_chained_by_prev_change_id():
    dec = DeribitDecoder()
    (snap,) = dec.decode(
        _deribit(
            '{"type":"snapshot","timestamp":1626993723632,"instrument_name":"BTC-PERPETUAL",'
            '"change_id":10,"bids":[["new",32000.5,1000.0]],"asks":[["new",32001.0,20.0]]}'
        )
    )
    assert isinstance(snap, DepthSnapshot)
    assert (snap.last_id, snap.rule, snap.in_stream) == (10, SEQ_PREV, True)
    assert snap.bids == [("32000.5", "1000.0")]
    assert snap.ets == 1_626_993_723_632_000_000
    (diff,) = dec.decode(
        _deribit(
            '{"type":"change","timestamp":1,"instrument_name":"BTC-PERPETUAL","change_id":12,'
            '"prev_change_id":10,"bids":[["delete",32000.5,0.0]],"asks":[["change",32001.0,5.0]]}'
        )
    )
    assert isinstance(diff, DepthDiff)
    assert (diff.prev_id, diff.last_id, diff.rule) == (10, 12, SEQ_PREV)
    assert diff.bids == [("32000.5", "0")]
    assert diff.asks == [("32001.0", "5.0")]


def test_deribit_unknown_action_and_missing_prev_change_id_raise():
    dec = DeribitDecoder()
    with pytest.raises(ValueError, match="unknown book action"):
        dec.decode(
            _deribit(
                '{"type":"change","instrument_name":"X","change_id":2,"prev_change_id":1,'
                '"bids":[["move",1.0,1.0]],"asks":[]}'
            )
        )
    with pytest.raises(ValueError, match="prev_change_id"):
        dec.decode(
            _deribit('{"type":"change","instrument_name":"X","change_id":2,"bids":[],"asks":[]}')
        )
    with pytest.raises(msgspec.ValidationError):
        dec.decode(_deribit('{"type":"snapshot","instrument_name":"X"}'))


def test_deribit_trades_grouped_per_instrument_with_taker_side():
    evs = DeribitDecoder().decode(
        _deribit(
            '[{"trade_seq":1,"trade_id":"111","timestamp":1626993724000,"price":0.0015,'
            '"instrument_name":"BTC-24SEP21-8000-P","direction":"sell","amount":0.5},'
            '{"trade_seq":2,"trade_id":"112","timestamp":1626993724001,"price":32000.5,'
            '"instrument_name":"BTC-PERPETUAL","direction":"buy","amount":10}]',
            channel="trades.option.BTC.raw",
        )
    )
    assert [(e.symbol, e.trades) for e in evs] == [
        ("BTC-24SEP21-8000-P", [(ASK, "0.0015", "0.5", 1_626_993_724_000_000_000, "111")]),
        ("BTC-PERPETUAL", [(BID, "32000.5", "10", 1_626_993_724_001_000_000, "112")]),
    ]


def test_deribit_grouped_book_is_an_unsequenced_image_and_others_ignored():
    dec = DeribitDecoder()
    (snap,) = dec.decode(
        _deribit(
            '{"timestamp":5,"instrument_name":"BTC-PERPETUAL","change_id":3,'
            '"bids":[[32000.5,10.0]],"asks":[[32001.0,20.0]]}',
            channel="book.BTC-PERPETUAL.none.10.100ms",
        )
    )
    assert (snap.rule, snap.in_stream, snap.asks) == (SEQ_NONE, True, [("32001.0", "20.0")])
    assert isinstance(dec.decode(b'{"jsonrpc":"2.0","id":0,"result":[]}')[0], Ignored)
    assert isinstance(
        dec.decode(b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}')[0],
        Ignored,
    )


def test_coinbase_snapshot_l2update_and_deletes():
    dec = CoinbaseDecoder()
    (snap,) = dec.decode(
        b'{"type":"snapshot","product_id":"SKL-USD","bids":[["0.7900","10.0"]],"asks":[["0.7910","5"]]}'
    )
    assert isinstance(snap, DepthSnapshot)
    assert (snap.rule, snap.in_stream, snap.bids) == (SEQ_NONE, True, [("0.7900", "10.0")])
    (diff,) = dec.decode(
        b'{"type":"l2update","product_id":"SKL-USD","changes":[["sell","0.7910","0"],'
        b'["buy","0.7905","3.5"]],"time":"2021-04-17T16:43:37.075687Z"}'
    )
    assert isinstance(diff, DepthDiff)
    assert diff.asks == [("0.7910", "0")]
    assert diff.bids == [("0.7905", "3.5")]
    assert diff.ets == 1_618_677_817_075_687_000
    with pytest.raises(ValueError, match="unknown side"):
        dec.decode(b'{"type":"l2update","product_id":"X","changes":[["up","1","1"]],"time":""}')


def test_coinbase_match_taker_side_and_ticker_of_the_same_trade_published_once():
    dec = CoinbaseDecoder()
    ticker = (
        b'{"type":"ticker","sequence":1,"product_id":"BAND-GBP","price":"14.7775","side":"buy",'
        b'"time":"2021-04-17T16:43:30.244075Z","trade_id":881613,"last_size":"0.04"}'
    )
    match = (
        b'{"type":"last_match","trade_id":881613,"side":"sell","size":"0.04","price":"14.7775",'
        b'"product_id":"BAND-GBP","sequence":1,"time":"2021-04-17T16:43:30.244075Z"}'
    )
    (first,) = dec.decode(ticker)
    assert isinstance(first, Trades)
    assert first.trades == [(BID, "14.7775", "0.04", 1_618_677_810_244_075_000, "881613")]
    assert isinstance(dec.decode(match)[0], Ignored)
    # A match alone: the maker sold, so the taker bought.
    (alone,) = CoinbaseDecoder().decode(match)
    assert alone.trades == first.trades
    (no_trade,) = dec.decode(b'{"type":"ticker","product_id":"BAND-GBP","price":"1"}')
    assert isinstance(no_trade, Ignored)


def test_iso_to_ns_is_exact_and_strict():
    assert iso_to_ns("1970-01-01T00:00:01.000000001Z") == 1_000_000_001
    assert iso_to_ns("2021-07-22T22:36:10Z") == 1_626_993_370_000_000_000
    with pytest.raises(ValueError, match="ISO-8601"):
        iso_to_ns("22:36:10")


@pytest.mark.parametrize(
    ("url", "exchange", "hello"),
    [
        ("wss://www.bitmex.com/realtime", Exchange.Bitmex, '{"info":"Welcome"}'),
        ("wss://www.deribit.com/ws/api/v2", Exchange.Deribit, '{"jsonrpc":"2.0","result":[]}'),
        ("wss://ws-feed.pro.coinbase.com", Exchange.Coinbase, '{"type":"subscriptions"}'),
        ("wss://fstream.binance.com/stream", Exchange.BinanceUsdm, '{"result":null,"id":1}'),
    ],
)
def test_cryptofeed_reader_chooses_the_decoder_from_the_connect_url(url, exchange, hello):
    lines = [
        f"{url} <-> 1626993367.388005".encode(),
        f"1626993367.875267: {hello}".encode(),
        f"{url} <-> 1626993368".encode(),
    ]
    reports: list[tuple[str, str, int]] = []
    evs = list(read_cryptofeed(iter(lines), "t", lambda *a: reports.append(a)))
    assert reports == []
    assert [se.exchange for se in evs] == [exchange, exchange]
    assert isinstance(evs[1].event, Disconnect)


def test_cryptofeed_reader_unknown_venue_reported_once():
    lines = [b"wss://ws.kraken.com <-> 1", b"2: {}", b"3: {}"]
    reports: list[tuple[str, str, int]] = []
    assert list(read_cryptofeed(iter(lines), "t", lambda *a: reports.append(a))) == []
    assert [(why, line) for why, _, line in reports] == [
        ("messages of an unsupported venue (or before connect)", 2)
    ]
