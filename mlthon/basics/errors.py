"""The mlthon error tree. Every exception mlthon raises on purpose derives from MlthonError::

    MlthonError
    ├── ConfigError              a config, instruments or strategy file is wrong (file, key, why)
    ├── InvalidArgument          an env call got a bad argument (param, value); also a ValueError
    │   └── InvalidArgumentType  ... of the wrong type (e.g. a float price); also a TypeError
    ├── BusError                 the message bus failed
    │   ├── MalformedMessage     a bus payload could not be decoded (topic, payload excerpt)
    │   ├── BusDisconnected      the broker is unreachable
    │   └── BusRefused           the broker refused the connection (reason: "Not authorized"...)
    ├── GatewayError             an order-entry failure on the gateway side
    │   ├── OrderRejected        (reason, client_ord_id)
    │   └── RateLimited          (retry_after_s)
    ├── FeedError                market data failure
    │   └── BadMarketData        a line or message that cannot be used (source, line, why)
    └── StrategyError            a strategy could not be loaded or misbehaved

Exceptions carry their data as attributes; the message repeats it for humans.
"""

from __future__ import annotations

from typing import Any


class MlthonError(Exception):
    """Root of every error raised by mlthon."""


class ConfigError(MlthonError):
    """A configuration file or value is wrong.

    Attributes:
        source: the file (or other origin) of the bad value, if known.
        key: the key that is wrong, if known.
    """

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None):
        where = ""
        if source:
            where += f"{source}: "
        if key:
            where += f"[{key}] "
        super().__init__(f"{where}{message}")
        self.source = source
        self.key = key


class InvalidArgument(MlthonError, ValueError):
    """An env call received a bad argument; raised at once, before anything is sent.

    Attributes:
        param: the parameter's name.
        value: the value received.
    """

    def __init__(self, param: str, value: Any, why: str):
        super().__init__(f"{param}={value!r}: {why}")
        self.param = param
        self.value = value
        self.why = why


class InvalidArgumentType(InvalidArgument, TypeError):
    """An env call received an argument of the wrong type (a float where a Price is needed...)."""


class BusError(MlthonError):
    """The message bus failed."""


class MalformedMessage(BusError):
    """A bus payload could not be decoded.

    Attributes:
        topic: the topic it came on.
        excerpt: the start of the payload (at most 200 bytes).
    """

    def __init__(self, topic: str, payload: bytes, why: str):
        self.topic = topic
        self.excerpt = bytes(payload[:200])
        self.why = why
        super().__init__(f"malformed message on {topic!r}: {why}; payload={self.excerpt!r}")


class BusDisconnected(BusError):
    """The broker cannot be reached."""


class BusRefused(BusError):
    """The broker answered and refused the connection.

    Attributes:
        reason: the broker's reason, as it says it (``Not authorized``, ``Bad user name or
            password``).
    """

    def __init__(self, where: str, reason: str):
        super().__init__(f"broker {where} refused the connection: {reason}")
        self.reason = reason


class GatewayError(MlthonError):
    """An order-entry failure on the gateway side."""


class OrderRejected(GatewayError):
    """An order request was refused.

    Attributes:
        reason: the human-readable reason.
        client_ord_id: the request's client order id, if any.
    """

    def __init__(self, reason: str, client_ord_id: str | None = None):
        super().__init__(f"order {client_ord_id} rejected: {reason}")
        self.reason = reason
        self.client_ord_id = client_ord_id


class RateLimited(GatewayError):
    """A request budget is exhausted.

    Attributes:
        retry_after_s: seconds until the budget resets.
    """

    def __init__(self, retry_after_s: float):
        super().__init__(f"rate limited; retry after {retry_after_s:.3f}s")
        self.retry_after_s = retry_after_s


class FeedError(MlthonError):
    """A market-data failure."""


class BadMarketData(FeedError):
    """A recorded line or venue message that cannot be used.

    Attributes:
        source: file name or stream.
        line: 1-based line number in the source, if known.
        why: what is wrong.
    """

    def __init__(self, why: str, *, source: str = "", line: int | None = None):
        at = f"{source}:{line}: " if line is not None else (f"{source}: " if source else "")
        super().__init__(f"{at}{why}")
        self.source = source
        self.line = line
        self.why = why


class StrategyError(MlthonError):
    """A strategy could not be loaded or misbehaved."""
