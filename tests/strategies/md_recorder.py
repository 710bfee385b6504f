"""A strategy that records its market-data callbacks and writes them to a file when the feed
says it is done (for process-level comparisons)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mlthon.api import MDSub, Strategy
from mlthon.basics import Exchange, FeedHandlerStatus

MD_CALLBACKS = (
    "on_add_price_level",
    "on_modify_price_level",
    "on_delete_price_level",
    "on_best_bid_level_update",
    "on_best_ask_level_update",
    "on_public_trade",
    "on_funding_info",
)


class MdRecorder(Strategy):
    def __init__(self, params: dict[str, Any] | None = None) -> None:
        super().__init__("mdrec")
        self.params = params or {}
        self.calls: list[list[Any]] = []

    def on_start(self, params: str) -> None:
        iid = int(self.params.get("instrument_id", 1001))
        for sub in (MDSub.PriceLevelBook, MDSub.BBO, MDSub.PublicTrades, MDSub.Funding):
            self.env.subscribe(Exchange.BinanceUsdm, iid, sub)
        ready = os.environ.get("MDREC_READY_FILE")
        if ready:
            Path(ready).write_text("subscribed")

    def on_feed_handler_status(self, exchange, status, detail) -> None:
        self.calls.append(["status", status.name])
        out = os.environ.get("MDREC_OUT_FILE")
        if out and status is FeedHandlerStatus.Disconnected:
            Path(out).write_text(json.dumps(self.calls))


def _recorder(name: str):
    def cb(self: MdRecorder, *args: Any) -> None:
        self.calls.append(
            [
                name,
                *(
                    a.name if hasattr(a, "name") and not isinstance(a, str) else str(a)
                    for a in args
                ),
            ]
        )

    cb.__name__ = name
    return cb


for _n in MD_CALLBACKS:
    setattr(MdRecorder, _n, _recorder(_n))
