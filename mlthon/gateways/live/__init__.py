"""Shared pieces of the live (real venue) gateways: config and secrets, order book-keeping,
de-duplication, back-off, and the supervisor every venue gateway builds on.

A venue is a folder (``mlthon/gateways/<venue>/``); this package holds only what every venue
needs, so that a third venue adds a folder and an entry in :data:`mlthon.gateways.live.cli.VENUES`.
"""
