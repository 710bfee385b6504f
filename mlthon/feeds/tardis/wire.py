"""Tardis CSV layouts: the header of each data type, and Tardis exchange ids."""

from __future__ import annotations

from mlthon.basics.mlt_enum import Exchange

COMMON = ("exchange", "symbol", "timestamp", "local_timestamp")
INCREMENTAL_L2 = (*COMMON, "is_snapshot", "side", "price", "amount")
TRADES = (*COMMON, "id", "side", "price", "amount")
QUOTES = (*COMMON, "ask_amount", "ask_price", "bid_price", "bid_amount")
DERIVATIVE_TICKER = (
    *COMMON,
    "funding_timestamp",
    "funding_rate",
    "predicted_funding_rate",
    "open_interest",
    "last_price",
    "index_price",
    "mark_price",
)

# Tardis exchange id -> mlthon Exchange.
EXCHANGES: dict[str, Exchange] = {
    "binance": Exchange.BinanceSpot,
    "binance-futures": Exchange.BinanceUsdm,
    "binance-delivery": Exchange.BinanceCoinm,
    "bybit": Exchange.Bybit,
    "bybit-spot": Exchange.Bybit,
    "bitfinex": Exchange.Bitfinex,
    "bitfinex-derivatives": Exchange.Bitfinex,
    "bitmex": Exchange.Bitmex,
    "deribit": Exchange.Deribit,
    "coinbase": Exchange.Coinbase,
    "huobi": Exchange.Huobi,
    "huobi-dm": Exchange.Huobi,
    "huobi-dm-swap": Exchange.Huobi,
    "huobi-dm-linear-swap": Exchange.Huobi,
    "hyperliquid": Exchange.Hyperliquid,
}
