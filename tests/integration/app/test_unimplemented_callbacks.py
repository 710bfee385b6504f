"""Market-data callbacks a strategy does not implement are not called.

``Strategy`` gives every callback a do-nothing body. A strategy subscribed to a stream whose
callbacks it leaves at those bodies loses nothing when the env skips them, and a backtest saves a
call per book event; the reactor's callback count then counts only calls that were made. What a
strategy does implement, on its class or on the instance, is still called for every event.
"""

from __future__ import annotations

from typing import Any

from mlthon.api import MDSub, Strategy
from mlthon.app.backtest import Backtest
from mlthon.basics import Exchange
from mlthon.basics.mlt_enum import FeedHandlerStatus
from mlthon.infra.bus import messages as m
from mlthon.infra.env.strat_env import implemented_groups
from mlthon.infra.instruments import load_instruments
from tests import md

SIM = Exchange.Sim
IID = 9001
SUBS = (MDSub.PriceLevelBook, MDSub.LevelBook, MDSub.BBO)


def _data() -> list[m.Msg]:
    ex = SIM.value
    out: list[m.Msg] = [m.FeedStatus(ex=ex, iid=IID, status=FeedHandlerStatus.SnapshotStart, ts=1)]
    out.append(md.book(ex=ex, iid=IID, ts=1, ch=[(0, 1, "100.0", "1"), (0, 2, "100.2", "1")]))
    out.append(m.FeedStatus(ex=ex, iid=IID, status=FeedHandlerStatus.SnapshotEnd, ts=1))
    for i in range(2, 12):
        out.append(
            md.book(
                ex=ex, iid=IID, ts=i * 1_000_000, ch=[(1, 1, "100.0", str(i)), (1, 2, "100.2", "3")]
            )
        )
    return out


class PriceLevelsOnly(Strategy):
    """Subscribed to three streams, implements the price-level callbacks only."""

    def __init__(self) -> None:
        super().__init__("pl_only")
        self.calls: list[str] = []

    def on_start(self, params: str) -> None:
        for sub in SUBS:
            self.env.subscribe(SIM, IID, sub)

    def on_modify_price_level(self, *args: Any) -> None:
        self.calls.append("modify_price_level")

    def on_add_price_level(self, *args: Any) -> None:
        self.calls.append("add_price_level")


def _run(strat: Strategy) -> Any:
    insts = [i for i in load_instruments() if i.instrument_id == IID]
    return Backtest(strat, data=_data(), instruments=insts, name=strat.name, progress=False).run()


def test_only_implemented_groups_are_called_and_counted():
    strat = PriceLevelsOnly()
    assert implemented_groups(strat) == {"price_levels"}
    result = _run(strat)
    # The snapshot's two adds and two modifies in each of the ten updates.
    assert strat.calls == ["add_price_level"] * 2 + ["modify_price_level"] * 20
    # Only the calls made are counted: against a run of a strategy that subscribes to nothing,
    # the 22 price-level calls and the two feed statuses of the snapshot (the level and BBO
    # callbacks, 22 and 11 more, are neither made nor counted).
    bare = _run(Strategy("bare"))
    assert result.perf["callbacks"] - bare.perf["callbacks"] == 22 + 2


def test_a_callback_set_on_the_instance_is_called():
    strat = PriceLevelsOnly()
    levels: list[tuple[int, str]] = []
    bbo: list[str] = []
    strat.on_modify_level = lambda ex, iid, side, lid, qty, ts: levels.append((lid, str(qty)))  # type: ignore[method-assign]
    strat.on_best_bid_level_update = lambda ex, iid, px, qty, ts: bbo.append(str(qty))  # type: ignore[method-assign]
    assert implemented_groups(strat) == {"price_levels", "levels", "bbo"}
    _run(strat)
    # Level ids of a price-level feed are prices in ticks (tick 0.1).
    assert levels[:2] == [(1000, "2.000"), (1002, "3.000")]  # lot 0.001
    assert len(levels) == 20
    assert bbo == ["1.000"] + [f"{i}.000" for i in range(2, 12)]
