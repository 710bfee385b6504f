"""BitMEX realtime WebSocket: ``orderBookL2`` (a level-keyed L2 book) and ``trade``."""
