"""Errors of the venue adapters, translated at the boundary from aiohttp and the venues' own
error bodies::

    GatewayError (mlthon.basics.errors)
    ├── RateLimited        (mlthon.basics.errors) a budget is spent or the IP is banned
    ├── VenueRejected      the venue refused the request (code, venue_code, reason, http_status)
    ├── VenueTimeout       no answer in time: the request's outcome is unknown
    └── VenueUnavailable   connection failure, 5xx, maintenance (maintenance flag)
"""

from __future__ import annotations

from mlthon.basics.errors import GatewayError
from mlthon.basics.mlt_enum import GtwRejectCode


class VenueRejected(GatewayError):
    """The venue refused a request.

    Attributes:
        code: our closest reject code.
        venue_code: the venue's own error code.
        reason: the venue's text (kept verbatim, prefixed with its code).
        http_status: the HTTP status of the answer (0 on a stream).
    """

    def __init__(self, code: GtwRejectCode, venue_code: int, reason: str, http_status: int = 0):
        super().__init__(f"{code.name}: [{venue_code}] {reason}")
        self.code = code
        self.venue_code = venue_code
        self.reason = f"[{venue_code}] {reason}"
        self.http_status = http_status


class VenueTimeout(GatewayError):
    """A request got no answer in time; whether the venue acted on it is unknown.

    Attributes:
        what: the request (method and path).
    """

    def __init__(self, what: str):
        super().__init__(f"timeout: {what}")
        self.what = what


class VenueUnavailable(GatewayError):
    """The venue cannot be reached, answered 5xx, or is in maintenance.

    Attributes:
        detail: what happened.
        maintenance: True if the venue said it is in maintenance.
    """

    def __init__(self, detail: str, *, maintenance: bool = False):
        super().__init__(detail)
        self.detail = detail
        self.maintenance = maintenance
