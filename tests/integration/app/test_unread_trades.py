"""Trades a strategy does not read: subscribed to ``PublicTrades`` without an ``on_public_trade``
of its own, the env counts each trade message and goes no further (no Price or Qty made, no
call); the simulated exchange still fills on them, so the results are the same either way."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mlthon.api import MDSub, Strategy
from mlthon.app.backtest import Backtest
from mlthon.basics import TIF, Exchange, ExecInstructions, FeedHandlerStatus, OrderType, Side
from mlthon.infra.bus import messages as m
from mlthon.infra.env.md_callbacks import implemented_groups
from mlthon.infra.instruments import load_instruments
from tests import md

SIM = Exchange.Sim
IID = 9001  # tick 0.10, lot 0.001


def _data() -> list[m.Msg]:
    ex = SIM.value
    out: list[m.Msg] = [
        m.FeedStatus(ex=ex, iid=IID, status=FeedHandlerStatus.SnapshotStart, ts=1),
        md.book(ex=ex, iid=IID, ts=1, ch=[(0, 1, "100.0", "1"), (0, 2, "100.2", "1")]),
        m.FeedStatus(ex=ex, iid=IID, status=FeedHandlerStatus.SnapshotEnd, ts=1),
    ]
    for i in range(1, 6):
        # sells at our bid's price: the sim fills the resting bid on them
        out.append(
            md.trades(ex=ex, iid=IID, ts=i * 1_000_000, tr=[(2, "100.0", "0.5", i, f"t{i}")])
        )
    return out


class Quoter(Strategy):
    """One bid at 100.0 once the book is there; reads trades only if ``Reader`` says so."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.sent = False
        self.fills: list[tuple[Any, ...]] = []

    def on_start(self, params: str) -> None:
        self.env.subscribe(SIM, IID, MDSub.PublicTrades)
        self.env.subscribe(SIM, IID, MDSub.BBO)

    def on_best_bid_level_update(self, exchange, instrument_id, price, qty, recv_ts) -> None:
        if not self.sent:
            self.sent = True
            self.env.send_new_order(
                None, SIM, IID, Side.Buy, "100.0", "0.002",
                ExecInstructions.Unset, OrderType.Limit, TIF.GTC, False,
            )  # fmt: skip

    def on_order_execution(self, exchange, client_id, *args: Any) -> None:
        self.fills.append(args)


class Reader(Quoter):
    def __init__(self) -> None:
        super().__init__("reader")
        self.trades: list[tuple[Any, ...]] = []

    def on_public_trade(self, exchange, instrument_id, side, price, qty, exec_ts, recv_ts):
        self.trades.append((side, price, qty, exec_ts, recv_ts))


def _run(strat: Strategy) -> Any:
    insts = [i for i in load_instruments() if i.instrument_id == IID]
    return Backtest(strat, data=_data(), instruments=insts, name=strat.name).run()


def test_trades_without_on_public_trade_are_counted_not_called_and_fill_all_the_same():
    quiet = Quoter("quiet")
    reader = Reader()
    assert "trades" not in implemented_groups(quiet)
    assert "trades" in implemented_groups(reader)
    r_quiet = _run(quiet)
    r_reader = _run(reader)
    assert len(reader.trades) == 5
    assert reader.trades[0][1] == Decimal("100.0") and reader.trades[0][0] is Side.Sell
    # one callback per trade more for the reader, nothing else differs
    assert r_reader.perf["callbacks"] - r_quiet.perf["callbacks"] == 5
    assert quiet.fills == reader.fills and len(quiet.fills) >= 1
    assert r_quiet.fills == r_reader.fills
    assert r_quiet.summary["events"] == r_reader.summary["events"]
