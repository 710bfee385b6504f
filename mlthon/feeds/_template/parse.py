"""Template: the decoder every venue provides (see the package docstring)."""

from __future__ import annotations

from mlthon.basics.mlt_enum import Exchange
from mlthon.feeds.events import Event


class TemplateDecoder:
    """Decodes one received message of the venue into venue-neutral events."""

    exchange = Exchange.Unset

    def decode(self, raw: bytes | str) -> list[Event]:
        """Events of one message.

        Raises:
            NotImplementedError: always; a real venue decodes ``raw`` with its ``wire`` structs.
        """
        raise NotImplementedError("copy mlthon/feeds/_template and implement decode()")
