"""Fuzzing every wire decoder: any input gives a result or the decoder's documented error.

* the bus codec: arbitrary bytes and mutated valid messages give a message or
  ``MalformedMessage``, never another exception;
* the venue feed decoders: a list of events or one of the errors their callers catch and
  report (``DECODE_ERRORS``, the tuple of ``mlthon.feeds.readers``), never another exception;
* the venue gateways' user-stream decoders: events, ``msgspec.DecodeError`` or an mlthon error
  (what their stream loops catch).
"""

from __future__ import annotations

import contextlib

import msgspec
import pytest
from hypothesis import given

from mlthon.basics.errors import MalformedMessage, MlthonError
from mlthon.basics.mlt_enum import Exchange, Side
from mlthon.feeds.binance_usdm.parse import BinanceDecoder
from mlthon.feeds.bitfinex.parse import BitfinexDecoder
from mlthon.feeds.bybit_v5.parse import BybitDecoder
from mlthon.feeds.hyperliquid.parse import HyperliquidDecoder
from mlthon.gateways.binance_usdm.ws import decode_user_frame
from mlthon.gateways.bybit_v5.ws import decode_private_frame
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.codec import decode, encode
from tests.unit.reliability.fuzzing import FUZZ, inputs

DECODE_ERRORS = (
    MlthonError,
    msgspec.DecodeError,
    msgspec.ValidationError,
    ValueError,
    TypeError,
    KeyError,
)

# what the live gateways' user-stream loops catch
USER_STREAM_ERRORS = (msgspec.DecodeError, MlthonError)

BUS_SEEDS = [
    encode(msg)
    for msg in (
        m.NewOrder(strat="s", cl_id="1", instrument_id=1, side=Side.Buy, price="1.5", qty="2"),
        m.OrderExecution(
            cl_id="1",
            exec_id="x",
            instrument_id=1,
            side=Side.Sell,
            price="1",
            fill_qty="1",
            leaves_qty="0",
            exec_ts=1,
            fee="0.1",
            fee_coin="USDT",
            maker=True,
        ),
        m.BookUpdate(ex=1, iid=1, ts=1, ch=[(m.ADD, m.BID, 10, 2)]),
        m.TradeUpdate(ex=1, iid=1, ts=1, tr=[(1, 10, 2, 1, "t")]),
        m.CmdRequest(cmd_id="c", strat="s", name="stop", args=["a"], reply_to="r", sender="u"),
        m.GatewayStatus(exchange=Exchange.Sim, status=2, detail="ok", ts=1),
        m.TelegramPublish(strat="s", text="hi", priority=0),
    )
]


@FUZZ
@given(inputs(BUS_SEEDS))
def test_fuzz_bus_codec_gives_a_message_or_malformed(raw: bytes):
    try:
        msg = decode("t/fuzz", raw)
    except MalformedMessage:
        return
    assert encode(msg)  # whatever decodes encodes again


def test_bus_codec_invalid_utf8_in_a_string_is_malformed():
    with pytest.raises(MalformedMessage):
        decode("t/fuzz", b'{"k":"\xffnew","v":1}')


BINANCE_SEEDS = [
    b'{"stream":"xyzusdt@depth@0ms","data":{"e":"depthUpdate","E":1000,"T":999,"s":"XYZUSDT",'
    b'"U":10,"u":12,"pu":9,"b":[["1.50","2"]],"a":[["1.60","0.000"]]}}',
    b'{"stream":"xyzusdt@trade","data":{"e":"trade","E":1,"T":1,"s":"XYZUSDT","t":5,'
    b'"p":"1.5","q":"2","m":true}}',
    b'{"lastUpdateId":12,"E":1,"T":1,"bids":[["1.5","1"]],"asks":[["1.6","1"]]}',
]
BYBIT_SEEDS = [
    b'{"topic":"orderbook.50.XYZUSDT","type":"snapshot","ts":1,"data":{"s":"XYZUSDT",'
    b'"b":[["1.5","2"]],"a":[["1.6","1"]],"u":1,"seq":1},"cts":1}',
    b'{"topic":"publicTrade.XYZUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"XYZUSDT",'
    b'"S":"Buy","v":"1","p":"1.5","i":"a"}]}',
]
HYPERLIQUID_SEEDS = [
    b'{"channel":"l2Book","data":{"coin":"BTC","time":1,"levels":[[{"px":"1.5","sz":"2",'
    b'"n":1}],[{"px":"1.6","sz":"1","n":1}]]}}',
    b'{"channel":"trades","data":[{"coin":"BTC","side":"B","px":"1.5","sz":"1","time":1,"tid":1}]}',
]
BITFINEX_SEEDS = [
    b'{"event":"subscribed","channel":"book","chanId":1,"symbol":"tBTCUSD","prec":"R0"}',
    b"[1,[[1,100.5,2],[2,101,-1]]]",
    b"[1,[3,100.5,0]]",
]
BINANCE_USER_SEEDS = [
    b'{"e":"ORDER_TRADE_UPDATE","E":1,"T":1,"o":{"s":"BTCUSDT","c":"cid","S":"BUY",'
    b'"o":"LIMIT","f":"GTC","q":"1","p":"100","ap":"0","sp":"0","x":"TRADE","X":"FILLED",'
    b'"i":7,"l":"1","z":"1","L":"100","N":"USDT","n":"0.01","T":1,"t":9,"m":false}}',
]
BYBIT_USER_SEEDS = [
    b'{"topic":"execution","data":[{"category":"linear","symbol":"BTCUSDT","orderId":"o",'
    b'"orderLinkId":"c","side":"Buy","execId":"e","execPrice":"100","execQty":"1",'
    b'"execFee":"0.01","execType":"Trade","isMaker":false,"execTime":"1","leavesQty":"0"}]}',
    b'{"topic":"order","data":[{"category":"linear","symbol":"BTCUSDT","orderId":"o",'
    b'"orderLinkId":"c","side":"Buy","price":"100","qty":"1","cumExecQty":"0",'
    b'"orderStatus":"New","updatedTime":"1"}]}',
]


@FUZZ
@given(inputs(BINANCE_SEEDS))
def test_fuzz_binance_feed_decoder(raw: bytes):
    with contextlib.suppress(DECODE_ERRORS):
        assert isinstance(BinanceDecoder(Exchange.BinanceUsdm).decode(raw), list)


@FUZZ
@given(inputs(BYBIT_SEEDS))
def test_fuzz_bybit_feed_decoder(raw: bytes):
    with contextlib.suppress(DECODE_ERRORS):
        assert isinstance(BybitDecoder().decode(raw), list)


@FUZZ
@given(inputs(HYPERLIQUID_SEEDS))
def test_fuzz_hyperliquid_feed_decoder(raw: bytes):
    with contextlib.suppress(DECODE_ERRORS):
        assert isinstance(HyperliquidDecoder().decode(raw), list)


@FUZZ
@given(inputs(BITFINEX_SEEDS))
def test_fuzz_bitfinex_feed_decoder(raw: bytes):
    dec = BitfinexDecoder()
    dec.decode(BITFINEX_SEEDS[0])
    with contextlib.suppress(DECODE_ERRORS):
        assert isinstance(dec.decode(raw), list)


@FUZZ
@given(inputs(BINANCE_USER_SEEDS))
def test_fuzz_binance_user_stream_decoder(raw: bytes):
    with contextlib.suppress(*USER_STREAM_ERRORS):
        assert isinstance(decode_user_frame(raw), list)


@FUZZ
@given(inputs(BYBIT_USER_SEEDS))
def test_fuzz_bybit_user_stream_decoder(raw: bytes):
    with contextlib.suppress(*USER_STREAM_ERRORS):
        assert isinstance(decode_private_frame(raw), list)


@pytest.mark.parametrize(
    ("decoder", "raw"),
    [
        (decode_user_frame, BINANCE_USER_SEEDS[0].replace(b'"L":"100"', b'"L":"1 00"')),
        (decode_private_frame, BYBIT_USER_SEEDS[1].replace(b'"qty":"1"', b'"qty":"!1"')),
        (decode_user_frame, BINANCE_USER_SEEDS[0].replace(b'"FILLED"', b'"\x80ILLED"')),
        (decode_private_frame, BYBIT_USER_SEEDS[0].replace(b'"execution"', b'"\x80xecution"')),
        (decode_private_frame, BYBIT_USER_SEEDS[0].replace(b'"execTime":"1"', b'"execTime":"1e9"')),
    ],
)
def test_user_stream_bad_decimal_is_a_decode_error(decoder, raw):
    with pytest.raises(USER_STREAM_ERRORS):
        decoder(raw)


# --- the decoders of recorded-data formats added later: BitMEX, Deribit, Coinbase (cryptofeed
# logs and captures), Tardis Machine JSON, Databento MBO CSV records --------------------------
BITMEX_SEEDS = [
    b'{"table":"orderBookL2","action":"partial","keys":["symbol","id","side"],"data":['
    b'{"symbol":"XBTUSD","id":8799000,"side":"Sell","size":10,"price":10000.5},'
    b'{"symbol":"XBTUSD","id":8799001,"side":"Buy","size":7,"price":9999.5}]}',
    b'{"table":"orderBookL2","action":"update","data":[{"symbol":"XBTUSD","id":8799000,'
    b'"side":"Sell","size":123}]}',
    b'{"table":"orderBookL2","action":"delete","data":[{"symbol":"XBTUSD","id":8799001,'
    b'"side":"Buy"}]}',
    b'{"table":"trade","action":"insert","data":[{"timestamp":"2021-07-22T22:36:10.014Z",'
    b'"symbol":"XBTUSD","side":"Buy","size":52,"price":10000.5,"trdMatchID":"a"}]}',
]
DERIBIT_SEEDS = [
    b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-PERPETUAL.raw",'
    b'"data":{"type":"snapshot","timestamp":1,"instrument_name":"BTC-PERPETUAL","change_id":5,'
    b'"bids":[["new",100.5,10.0]],"asks":[["new",101.0,3.0]]}}}',
    b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-PERPETUAL.raw",'
    b'"data":{"type":"change","timestamp":2,"prev_change_id":5,"instrument_name":"BTC-PERPETUAL",'
    b'"change_id":6,"bids":[["delete",100.5,0.0]],"asks":[["change",101.0,4.0]]}}}',
    b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC-PERPETUAL.raw",'
    b'"data":[{"trade_id":"1","timestamp":3,"price":101.0,"amount":1.0,"direction":"buy",'
    b'"instrument_name":"BTC-PERPETUAL"}]}}',
]
COINBASE_SEEDS = [
    b'{"type":"snapshot","product_id":"BTC-USD","asks":[["101.01","1.5"]],"bids":[["100.99","2"]]}',
    b'{"type":"l2update","product_id":"BTC-USD","changes":[["sell","101.01","0"],'
    b'["buy","100.98","3"]],"time":"2021-04-17T16:43:37.075687Z"}',
    b'{"type":"match","trade_id":1,"side":"sell","size":"0.5","price":"100.99",'
    b'"product_id":"BTC-USD","sequence":2,"time":"2021-04-17T16:43:37.089723Z"}',
]
MACHINE_SEEDS = [
    b'{"type":"book_change","symbol":"XBTUSD","exchange":"bitmex","isSnapshot":true,'
    b'"bids":[{"price":7633.5,"amount":1906067}],"asks":[{"price":7634,"amount":1467849}],'
    b'"timestamp":"2019-10-23T11:29:53.469Z","localTimestamp":"2019-10-23T11:29:53.469Z"}',
    b'{"type":"trade","symbol":"XBTUSD","exchange":"bitmex","id":"a","price":7996,"amount":50,'
    b'"side":"sell","timestamp":"2019-10-23T10:32:49.669Z","localTimestamp":'
    b'"2019-10-23T10:32:49.740Z"}',
    b'{"type":"derivative_ticker","symbol":"BTC-PERPETUAL","exchange":"deribit","lastPrice":1,'
    b'"openInterest":1,"fundingRate":-0.00001568,"indexPrice":1,"markPrice":7987.56,'
    b'"timestamp":"2019-10-23T11:34:29.302Z","localTimestamp":"2019-10-23T11:34:29.416Z"}',
]
MBO_HEADER = (
    "ts_recv,ts_event,rtype,publisher_id,instrument_id,action,side,price,size,channel_id,"
    "order_id,flags,ts_in_delta,sequence,symbol"
)
MBO_SEEDS = [
    b"1715126400000000000,1714910404570304567,160,1,5602,R,N,,0,0,0,40,0,0,ESM4",
    b"1715126400000000000,1714910404570304567,160,1,5602,A,B,5155.500000000,5,0,11,168,0,685,ESM4",
    b"1715126400059830547,1715126400059699395,160,1,5602,C,B,5155.500000000,2,0,11,130,0,1,ESM4",
    b"1715126400059830547,1715126400059699395,160,1,5602,T,A,5155.500000000,2,0,0,130,0,1,ESM4",
]


def _primed(decoder, seeds):  # type: ignore[no-untyped-def]
    for s in seeds:
        decoder.decode(s)
    return decoder


@FUZZ
@given(inputs(BITMEX_SEEDS))
def test_fuzz_bitmex_feed_decoder(raw: bytes):
    from mlthon.feeds.bitmex.parse import BitmexDecoder

    dec = _primed(BitmexDecoder(), BITMEX_SEEDS[:1])
    with contextlib.suppress(DECODE_ERRORS):
        assert isinstance(dec.decode(raw), list)


@FUZZ
@given(inputs(DERIBIT_SEEDS))
def test_fuzz_deribit_feed_decoder(raw: bytes):
    from mlthon.feeds.deribit.parse import DeribitDecoder

    dec = _primed(DeribitDecoder(), DERIBIT_SEEDS[:1])
    with contextlib.suppress(DECODE_ERRORS):
        assert isinstance(dec.decode(raw), list)


@FUZZ
@given(inputs(COINBASE_SEEDS))
def test_fuzz_coinbase_feed_decoder(raw: bytes):
    from mlthon.feeds.coinbase.parse import CoinbaseDecoder

    dec = _primed(CoinbaseDecoder(), COINBASE_SEEDS[:1])
    with contextlib.suppress(DECODE_ERRORS):
        assert isinstance(dec.decode(raw), list)


@FUZZ
@given(inputs(MACHINE_SEEDS))
def test_fuzz_tardis_machine_decoder(raw: bytes):
    from mlthon.feeds.tardis.machine import MachineDecoder

    dec = _primed(MachineDecoder(), MACHINE_SEEDS[:1])
    with contextlib.suppress(DECODE_ERRORS):
        ts, ex, events = dec.decode(raw)
        assert isinstance(ts, int) and isinstance(ex, Exchange) and isinstance(events, list)


@FUZZ
@given(inputs(MBO_SEEDS))
def test_fuzz_databento_mbo_records(raw: bytes):
    from mlthon.feeds.databento.parse import MboDecoder, MboLayout

    layout = MboLayout.from_header(MBO_HEADER)
    assert layout is not None
    dec = MboDecoder(layout)
    dec.record(MBO_SEEDS[0].decode().split(","), 2)
    with contextlib.suppress(DECODE_ERRORS):
        out = dec.record(raw.decode("utf-8", "replace").split(","), 3)
        assert out is None or isinstance(out[2], list)
