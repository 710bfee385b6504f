"""Hyperliquid public WebSocket (``l2Book`` full-book messages and ``trades``)."""
