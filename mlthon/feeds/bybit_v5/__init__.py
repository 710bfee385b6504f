"""Bybit v5 public market data (orderbook, publicTrade, tickers)."""
