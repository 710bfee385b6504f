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
        m.BookUpdate(ex=1, iid=1, ts=1, ch=[(m.ADD, m.BID, "1.0", "2")]),
        m.TradeUpdate(ex=1, iid=1, ts=1, tr=[(1, "1.0", "2", 1, "t")]),
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
