"""Exact conversion of the venues' ISO-8601 UTC timestamps to int nanoseconds (no floats)."""

from __future__ import annotations

import calendar
import re

NS = 1_000_000_000

_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:Z|[+-]00:?00)$"
)


def iso_to_ns(text: str) -> int:
    """Nanoseconds since the epoch of a UTC timestamp such as ``2021-07-22T22:36:10.014Z``.

    Raises:
        ValueError: not an ISO-8601 UTC timestamp.
    """
    m = _ISO_RE.match(text)
    if m is None:
        raise ValueError(f"not an ISO-8601 UTC timestamp: {text!r}")
    y, mo, d, h, mi, s, frac = m.groups()
    secs = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s), 0, 0, 0))
    return secs * NS + (int(frac.ljust(9, "0")) if frac else 0)
