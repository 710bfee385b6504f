"""Fake venues on loopback speaking each exchange's protocol (REST + websocket)."""
