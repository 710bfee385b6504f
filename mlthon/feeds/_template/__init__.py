"""Template of a venue folder: copy it to ``mlthon/feeds/<venue>/`` and fill it in.

A venue provides, in this order of work:

``wire.py``
    ``msgspec.Struct`` classes of the venue's payloads, **allowing unknown fields** (venues add
    fields). Prices and sizes stay ``str`` (or are decoded as ``Decimal`` with ``float_hook``
    when the venue sends JSON numbers). Never ``float``.

``parse.py``
    Pure functions ``<venue_msg>_to_<event>(struct) -> Event`` producing the venue-neutral events
    of :mod:`mlthon.feeds.events`, and a decoder class with::

        exchange: Exchange                        # the venue
        def decode(self, raw: bytes | str) -> list[Event]: ...

    ``decode`` raises ``msgspec.DecodeError`` / ``msgspec.ValidationError`` / ``ValueError`` on a
    malformed message (the reader reports it with its file and line). It must say how depth
    messages are sequenced: ``DepthDiff.rule`` = ``SEQ_PREV`` (a ``pu``-style previous id),
    ``SEQ_NEXT`` (first id = previous last id + 1) or ``SEQ_NONE``; snapshots are ``in_stream``
    (valid at this point of the stream) or out-of-band REST answers bridged by ``last_id``.
    Order-level venues produce ``OrderSnapshot`` / ``OrderUpdate``.

``ws.py`` / ``rest.py`` (live only)
    I/O only: connect, subscribe, read frames, fetch snapshots when the engine's
    ``on_snapshot_needed`` asks, translate library errors at the boundary, and feed each raw
    message to a :class:`~mlthon.feeds.record.RawRecorder` if recording.

Then:

* register the decoder in :func:`mlthon.feeds.readers.choose_decoder` (how to recognise a message
  of the venue from its content);
* add the venue's instruments to ``mlthon/data/instruments.toml`` with the real grid, naming the
  source of each value;
* add parser unit tests on hand-written payloads and an integration test replaying a real
  recording through :func:`mlthon.feeds.replay.replay_file` with the venue's own checks.
"""
