"""Bitfinex WebSocket v2 raw book (precision R0): an order-level book keyed by order id."""
