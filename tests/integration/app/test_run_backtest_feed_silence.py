"""A backtest has no feed process (no heartbeat): a hole in a recording longer than
``feed_silence_s`` (``[backtest] feed_silence_s``; 10 s by default for recordings, 0 = never) is
reported to the strategy as a stale feed, in simulated time, and again when the data resume."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest

from mlthon.api import MDSub, Strategy
from mlthon.app.backtest import FEED_SILENCE_S, Backtest
from mlthon.basics import Exchange, FeedHandlerStatus
from mlthon.infra.instruments import load_instruments
from tests.conftest import REPO

pytestmark = pytest.mark.integration

SAMPLE = REPO / "mlthon" / "data" / "sample_binance_usdm_btcusdt.gz"
HOLE_S = 15
NS = 1_000_000_000
INSTS = [i for i in load_instruments() if i.instrument_id == 1001]


class StatusRecorder(Strategy):
    """Subscribes to BTCUSDT and records the feed statuses it is told, with the env's time."""

    def __init__(self) -> None:
        super().__init__("silence")
        self.statuses: list[tuple[FeedHandlerStatus, int]] = []

    def on_start(self, params: str) -> None:
        self.env.subscribe(Exchange.BinanceUsdm, 1001, MDSub.BBO)

    def on_feed_handler_status(self, exchange: Any, status: Any, detail: str) -> None:
        self.statuses.append((status, self.env.get_time_ns()))

    def on_stop(self, params: str) -> None:
        self.env.send_stop_ack()


def _with_hole(tmp_path: Path) -> tuple[Path, int, int]:
    """The sample recording with every receive time after line 1,500 moved HOLE_S later."""
    out = tmp_path / "hole.gz"
    with gzip.open(SAMPLE, "rt") as src, gzip.open(out, "wt") as dst:
        for n, line in enumerate(src):
            ts, _, rest = line.partition(" ")
            if n == 1499:
                before = int(ts)
            if n >= 1500:
                ts = str(int(ts) + HOLE_S * NS)
                if n == 1500:
                    after = int(ts)
            dst.write(f"{ts} {rest}")
    return out, before, after


def _statuses(data: Path, **kw: Any) -> list[tuple[FeedHandlerStatus, int]]:
    strat = StatusRecorder()
    Backtest(strat, data=[data], instruments=INSTS, name="silence", **kw).run()
    return [(s, t) for s, t in strat.statuses if s in (FeedHandlerStatus.Stale,
                                                          FeedHandlerStatus.Resumed)]  # fmt: skip


def test_run_backtest_hole_in_a_recording_is_reported_in_simulated_time(tmp_path):
    data, before, after = _with_hole(tmp_path)
    limit_ns = int(FEED_SILENCE_S["replay"] * NS)
    got = _statuses(data)
    assert [s for s, _ in got] == [FeedHandlerStatus.Stale, FeedHandlerStatus.Resumed], got
    (_, stale_at), (_, resumed_at) = got
    # Between the limit and the limit plus a quarter of it after the last message.
    assert before + limit_ns <= stale_at <= before + limit_ns * 5 // 4, (stale_at - before) / NS
    assert after <= resumed_at <= after + limit_ns // 4, (resumed_at - after) / NS
    # 0 turns the watch off; a shorter limit reports it sooner.
    assert _statuses(data, feed_silence_s=0) == []
    short = _statuses(data, feed_silence_s=2)
    assert short[0][1] - before <= 3 * NS


def test_run_backtest_recording_without_a_hole_is_never_stale():
    assert _statuses(SAMPLE) == []
