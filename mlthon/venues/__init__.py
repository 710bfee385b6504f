"""Venue-neutral I/O pieces shared by the live gateways (``mlthon.gateways``) and the live feeds
(``mlthon.feeds``), which must not import each other: the websocket transport on aiohttp, the
reconnect back-off and the errors venue adapters raise. Imports only ``mlthon.basics``.
"""
