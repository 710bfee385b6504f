"""Tardis.dev downloadable CSV files (``incremental_book_L2``, ``trades``, ``quotes``,
``book_snapshot_N``, ``derivative_ticker``, ``liquidations``)."""
