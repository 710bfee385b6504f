"""The portfolio view in a backtest: read synchronously in the fill's callback, it already holds
the fill; at the end its figures equal the backtest ledger's (the same fills, one arithmetic)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from mlthon.api import PositionView
from mlthon.app.backtest import Backtest
from mlthon.basics import Exchange
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.infra.instruments import load_instruments
from tests.integration.app.test_backtest import BuyThenSell, hand_data

pytestmark = pytest.mark.integration
SIM = Exchange.Sim


class Watching(BuyThenSell):
    """BuyThenSell, reading ``env.portfolio`` at each fill."""

    seen: list[PositionView | None]

    def on_order_execution(self, *args: Any) -> None:
        self.seen.append(self.env.portfolio.position(SIM, 9001))


def test_portfolio_in_the_fill_callback_and_equal_to_the_ledger() -> None:
    strat = Watching()
    strat.seen = []
    insts = [i for i in load_instruments() if i.instrument_id == 9001]
    gw = SimGatewayConfig.from_dict({"account": {"balances": {"USDT": "1000"}}})
    result = Backtest(strat, data=hand_data(), instruments=insts, name="hand", gateway=gw).run()
    first, last = strat.seen
    assert first is not None and last is not None
    # The buy: 0.010 at the ask, 100.2; marked at the book's mid then.
    assert (first.qty, first.avg_price, first.realised_pnl) == (
        Decimal("0.010"),
        Decimal("100.2"),
        0,
    )
    assert first.open_orders == ()  # an IOC filled in full: nothing rests
    # The sell at 100.5 closes it.
    assert (last.qty, last.realised_pnl) == (0, Decimal("0.010") * Decimal("0.3"))
    s = result.summary
    assert Decimal(str(s["realised_pnl"])) == last.realised_pnl
    assert Decimal(str(s["fees"])) == last.fees
    assert last.fills == s["fills"] == 2
