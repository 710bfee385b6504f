"""Coinbase Exchange (ex-Pro) legacy WebSocket feed: ``level2`` / ``level2_batch`` books and the
``matches`` / ``ticker`` trades."""
