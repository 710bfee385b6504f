"""Databento MBO CSV layout, record flags and action / side codes."""

from __future__ import annotations

# The columns of a Databento MBO CSV (``dbn`` CSV transcode) the reader needs, found by name in
# the header whatever their order; ``symbol`` (written with ``map_symbols``) is optional, the
# instrument id stands in for it. Timestamps are integer ns, or ISO 8601 with ``pretty_ts``;
# prices are decimals (``pretty_px``, the CSV default).
MBO_REQUIRED = (
    "ts_recv",
    "ts_event",
    "publisher_id",
    "instrument_id",
    "action",
    "side",
    "price",
    "size",
    "order_id",
    "flags",
)
MBO_OPTIONAL = ("symbol",)

# ``flags`` bits.
F_LAST = 128  # last record of an event: read the book only after it
F_TOB = 64  # top-of-book message (not MBO)
F_SNAPSHOT = 32  # the record belongs to a snapshot (replay of the book at the start)
F_MBP = 16  # aggregated price level, not an order
F_BAD_TS_RECV = 8  # ts_recv is not the real receive time
F_MAYBE_BAD_BOOK = 4  # an unrecoverable gap was detected on the channel

# ``action``: Add, Cancel, Modify, clear (R), Trade, Fill, None.
ADD = "A"
CANCEL = "C"
MODIFY = "M"
CLEAR = "R"
TRADE = "T"
FILL = "F"
NONE = "N"
