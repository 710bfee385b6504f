"""Binance market data: USD-M futures, and the COIN-M and spot variants of the same streams."""
