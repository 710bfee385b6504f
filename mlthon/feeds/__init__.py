"""Market data: venue parsers, the feed engine, replay, the synthetic market and the feed process.

Entry points: :func:`mlthon.feeds.replay.replay_file`, :func:`mlthon.feeds.replay.replay_files`,
:func:`mlthon.feeds.synthetic.synthetic_market`, :func:`mlthon.feeds.handler.run_feed`,
:func:`mlthon.feeds.cli.feed_main`, :func:`mlthon.feeds.cli.record_main`. The books themselves are
in :mod:`mlthon.basics.tickbook` (price levels, integer ticks and lots) and
:mod:`mlthon.basics.book` (order levels); venue text becomes ticks and lots in :mod:`.grid`. See
``docs/market-data.md``.
"""
