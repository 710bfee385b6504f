"""SimGateway end to end on InProcBus + SimScheduler: requests in, reports out."""

from __future__ import annotations

from decimal import Decimal as D

import attrs
import pytest

from mlthon.basics.mlt_enum import CancelCode, Exchange, GtwRejectCode, GtwStatus, Side
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.gateways.sim.gateway import SimGateway
from mlthon.gateways.sim.latency import FixedDelay, LatencyConfig
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.messages import (
    CancelOrder,
    FetchAccount,
    FetchWallet,
    FundingUpdate,
    GatewayStatus,
    ModifyOrder,
    NewOrderAck,
    NewOrderReject,
    OrderCancelled,
    OrderExecution,
    RateLimitInfo,
    RequestReject,
    UnsupportedOp,
    WalletInfo,
)
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import SimClock, SimScheduler
from tests.unit.gateways.helpers import BALANCES, LIN, SPOT, book, get, new, trade

MS = 1_000_000
T0 = 1_000 * MS


class Rig:
    """A gateway on an in-process bus; records what strategy s1 receives, with the time."""

    def __init__(self, **cfg) -> None:
        cfg.setdefault("balances", BALANCES)
        self.config = SimGatewayConfig(**cfg)
        self.sched = SimScheduler(SimClock(T0))
        self.bus = InProcBus(self.sched)
        self.topics = Topics("t")
        self.gw = SimGateway(self.bus, self.sched, self.topics, self.config, [LIN, SPOT])
        self.got: list[tuple[int, object]] = []
        self.status: list[GatewayStatus] = []
        ex = self.config.exchange
        self.bus.subscribe(
            self.topics.gtw_rpt(ex, "s1"), lambda _t, m: self.got.append((self.now, m))
        )
        self.bus.subscribe(self.topics.gtw_status(ex), lambda _t, m: self.status.append(m))
        self.gw.start()
        self.sched.run_until(T0)

    @property
    def now(self) -> int:
        return self.sched.now_ns()

    def at(self, ts: int) -> None:
        self.sched.run_until(ts)

    def md(self, msg, ts: int | None = None) -> None:
        if ts is not None:
            self.at(ts)
        self.bus.publish(self.topics.md(self.config.exchange, msg.iid), msg)
        self.sched.run_until(self.now)

    def req(self, msg, ts: int | None = None) -> None:
        if ts is not None:
            self.at(ts)
        self.bus.publish(self.topics.gtw_req(self.config.exchange, msg.strat), msg)
        self.sched.run_until(self.now)

    def msgs(self, cls=None):
        return [m for _, m in self.got if cls is None or isinstance(m, cls)]

    def names(self):
        return [type(m).__name__ for _, m in self.got]


def test_status_goes_connecting_then_ready():
    rig = Rig(connect_delay_ns=5 * MS)
    assert [s.status for s in rig.status] == [GtwStatus.Connecting]
    rig.req(new("early", Side.Buy, "99.0", "0.100"), T0 + MS)
    assert rig.msgs(NewOrderReject)[0].code is GtwRejectCode.GtwNotReady
    rig.at(T0 + 5 * MS)
    assert [s.status for s in rig.status] == [GtwStatus.Connecting, GtwStatus.ReadyToTrade]
    assert rig.status[-1].exchange is Exchange.Sim


def test_order_life_cycle_end_to_end():
    rig = Rig()
    rig.md(book(1, [("100.0", "1.000")], [("100.1", "1.000")]), T0 + MS)
    rig.req(new("a", Side.Buy, "100.0", "0.500"), T0 + 2 * MS)
    rig.md(trade(1, Side.Sell, "100.0", "1.200"), T0 + 3 * MS)  # 1.000 ahead, 0.200 to us
    rig.req(CancelOrder(strat="s1", cl_id="a", instrument_id=1), T0 + 4 * MS)
    rig.req(FetchAccount(strat="s1"), T0 + 5 * MS)
    assert rig.names() == [
        "NewOrderAck",
        "OrderExecution",
        "CancelOrderAck",
        "OrderCancelled",
        "AccountInfo",
    ]
    x = rig.msgs(OrderExecution)[0]
    assert (x.fill_qty, x.leaves_qty, x.maker, x.exec_ts) == ("0.200", "0.300", True, T0 + 3 * MS)
    assert [t for t, _ in rig.got] == [
        T0 + 2 * MS,
        T0 + 3 * MS,
        T0 + 4 * MS,
        T0 + 4 * MS,
        T0 + 5 * MS,
    ]


def test_entry_latency_order_meets_the_book_as_it_is_on_arrival():
    lat = LatencyConfig(
        entry={"default": FixedDelay(5 * MS)}, response={"default": FixedDelay(3 * MS)}
    )
    rig = Rig(latency=lat)
    rig.md(book(1, [("100.0", "1.000")], [("100.1", "0.500"), ("100.3", "1.000")]), T0 + MS)
    rig.req(new("a", Side.Buy, "100.1", "0.500"), T0 + 10 * MS)  # sent at 10 ms: ask 100.1 there
    rig.md(book(1, deletes=[(2, "100.1")]), T0 + 12 * MS)  # gone at 12 ms, before it arrives
    rig.at(T0 + 30 * MS)
    # arrives at 15 ms, rests (no fill); the ack reaches us at 15 + 3 = 18 ms
    assert rig.names() == ["NewOrderAck"]
    assert rig.got[0][0] == T0 + 18 * MS
    assert rig.msgs()[0].ts == T0 + 15 * MS  # exchange time of the answer
    o = get(rig.gw.engine, "a")
    assert o.created_ts == T0 + 15 * MS and o.filled == 0


def test_entry_latency_fill_when_the_book_still_has_it():
    lat = LatencyConfig(entry={"new": FixedDelay(1 * MS)})
    rig = Rig(latency=lat)
    rig.md(book(1, [("100.0", "1.000")], [("100.1", "0.500"), ("100.3", "1.000")]), T0 + MS)
    rig.req(new("a", Side.Buy, "100.1", "0.500"), T0 + 10 * MS)
    rig.md(book(1, deletes=[(2, "100.1")]), T0 + 12 * MS)
    assert rig.names() == ["NewOrderAck", "OrderExecution"]
    assert rig.got[1][0] == T0 + 11 * MS


@pytest.mark.parametrize(("removal_ms", "fills"), [(16, False), (18, True)])
def test_market_data_latency_shifts_what_the_exchange_has_seen(removal_ms, fills):
    # entry 5 ms: arrives at exchange time 15 ms. Market data lags 2 ms: a change we receive at
    # 16 ms happened at the exchange at 14 ms (before our order), one received at 18 ms at 16 ms.
    lat = LatencyConfig(entry={"default": FixedDelay(5 * MS)}, market_data=FixedDelay(2 * MS))
    rig = Rig(latency=lat)
    rig.md(book(1, [("100.0", "1.000")], [("100.1", "0.500"), ("100.3", "1.000")]), T0 + MS)
    rig.req(new("a", Side.Buy, "100.1", "0.500"), T0 + 10 * MS)
    rig.md(book(1, deletes=[(2, "100.1")]), T0 + removal_ms * MS)
    rig.at(T0 + 30 * MS)
    assert bool(rig.msgs(OrderExecution)) is fills


def test_requests_of_one_strategy_stay_in_order_under_random_latency():
    from mlthon.gateways.sim.latency import UniformDelay

    lat = LatencyConfig(entry={"default": UniformDelay(1 * MS, 9 * MS)}, seed=3)
    rig = Rig(latency=lat)
    rig.md(book(1, [("99.0", "1.000")], [("101.0", "1.000")]), T0 + MS)
    for i in range(20):
        rig.req(new(f"o{i}", Side.Buy, "98.0", "0.100"), T0 + (2 + i) * MS // 10 + 2 * MS)
    rig.at(T0 + 100 * MS)
    assert [m.cl_id for m in rig.msgs(NewOrderAck)] == [f"o{i}" for i in range(20)]


def test_rate_limit_info_at_50_90_100_then_rejects_until_reset():
    rig = Rig(rate_limit=10, rate_window_ns=1000 * MS)
    for i in range(10):
        rig.req(FetchAccount(strat="s1"), T0 + i * MS)
    infos = rig.msgs(RateLimitInfo)
    # window [1000 ms, 2000 ms): 50 % at the 5th request (5 left), 90 % at the 9th, 100 % at 10th
    assert [(r.rate_limit, r.rate_remaining, r.reset_ts) for r in infos] == [
        (10, 5, 2000 * MS),
        (10, 1, 2000 * MS),
        (10, 0, 2000 * MS),
    ]
    rig.req(new("x", Side.Buy, "99.0", "0.100"), T0 + 20 * MS)
    rig.req(FetchAccount(strat="s1"), T0 + 21 * MS)
    assert rig.msgs(NewOrderReject)[0].code is GtwRejectCode.RateLimitExceeded
    rr = rig.msgs(RequestReject)[0]
    assert (rr.code, rr.rqst_type) == (GtwRejectCode.RateLimitExceeded, "FetchAccount")
    rig.req(new("y", Side.Buy, "99.0", "0.100"), 2000 * MS)  # new window
    assert rig.msgs(NewOrderAck)[0].cl_id == "y"


def test_maintenance_window_rejects_and_announces():
    rig = Rig(maintenance=((T0 + 10 * MS, T0 + 20 * MS),))
    rig.at(T0 + 10 * MS)
    assert [s.status for s in rig.status][-1] is GtwStatus.Maintenance
    rig.req(new("m", Side.Buy, "99.0", "0.100"), T0 + 15 * MS)
    rej = rig.msgs(NewOrderReject)[0]
    assert rej.code is GtwRejectCode.GtwNotReady and "maintenance" in rej.reason
    rig.at(T0 + 20 * MS)
    assert [s.status for s in rig.status][-1] is GtwStatus.ReadyToTrade
    rig.req(new("n", Side.Buy, "99.0", "0.100"), T0 + 21 * MS)
    assert rig.msgs(NewOrderAck)[0].cl_id == "n"


def test_unsupported_operation_answers_unsupported_op():
    rig = Rig(unsupported=frozenset({"ModifyOrder"}))
    rig.md(book(1, [("99.0", "1.000")], [("101.0", "1.000")]), T0 + MS)
    rig.req(new("a", Side.Buy, "99.0", "0.100"), T0 + 2 * MS)
    rig.req(ModifyOrder(strat="s1", cl_id="a", new_qty="0.200"), T0 + 3 * MS)
    assert rig.msgs(UnsupportedOp)[0].msg_type == "ModifyOrder"
    assert get(rig.gw.engine, "a").qty == 100


def test_stop_cancels_open_orders_and_announces():
    rig = Rig()
    rig.md(book(1, [("99.0", "1.000")], [("101.0", "1.000")]), T0 + MS)
    rig.req(new("a", Side.Buy, "99.0", "0.100"), T0 + 2 * MS)
    rig.gw.stop()
    rig.at(T0 + 3 * MS)
    c = rig.msgs(OrderCancelled)[0]
    assert (c.cl_id, c.cancel_code, c.unsolicited) == ("a", CancelCode.ExchangeCancel, True)
    assert rig.status[-1].status is GtwStatus.Connecting and "stopped" in rig.status[-1].detail
    rig.req(new("b", Side.Buy, "99.0", "0.100"), T0 + 4 * MS)  # nobody listens any more
    assert not rig.msgs(NewOrderAck)[1:]


def test_funding_paid_at_funding_time_from_the_feed():
    rig = Rig()
    rig.md(book(1, [("99.9", "5.000")], [("100.0", "5.000")]), T0 + MS)
    rig.req(new("l", Side.Buy, "100.0", "1.000"), T0 + 2 * MS)
    due = T0 + 50 * MS
    rig.md(FundingUpdate(ex=1, iid=1, ts=T0, rate="0.0003", next_ts=due, mark="100.0"), T0 + 3 * MS)
    rig.req(FetchWallet(strat="s1", coin="USDT"), T0 + 10 * MS)
    rig.at(due)
    rig.req(FetchWallet(strat="s1", coin="USDT"), due + MS)
    before, after = (D(w.total) for w in rig.msgs(WalletInfo))
    # long 1.000 at mark 100.0 pays 1 * 100.0 * 0.0003 = 0.03 USDT
    assert before - after == D("0.03")


def test_config_reaches_the_engine():
    rig = Rig(queue_model="power", queue_power=3.0, leverage=D("5"), hedge_mode=True)
    assert rig.gw.engine.queue_model.name == "power3"
    assert rig.gw.engine.account("x").leverage == D("5")


def test_instrument_selection_errors():
    from mlthon.basics.errors import ConfigError
    from mlthon.infra.clock import SimScheduler as S

    sched = S()
    bus = InProcBus(sched)
    with pytest.raises(ConfigError, match="unknown instrument ids"):
        SimGateway(bus, sched, Topics(), SimGatewayConfig(instrument_ids=(5,)), [LIN])
    with pytest.raises(ConfigError, match="no instrument of BinanceUsdm"):
        SimGateway(bus, sched, Topics(), SimGatewayConfig(exchange=Exchange.BinanceUsdm), [LIN])
    cfg = attrs.evolve(SimGatewayConfig(), instrument_ids=(2,))
    assert SimGateway(bus, sched, Topics(), cfg, [LIN, SPOT]).instruments == [SPOT]


def test_fill_from_market_data_reaches_the_strategy_after_response_latency():
    # market data lags 2 ms, answers take 3 ms: a trade received at 20 ms happened at 18 ms at
    # the exchange, so its fill is stamped 18 ms and reaches the strategy at 18 + 3 = 21 ms
    lat = LatencyConfig(response={"default": FixedDelay(3 * MS)}, market_data=FixedDelay(2 * MS))
    rig = Rig(latency=lat)
    rig.md(book(1, [("100.0", "1.000")], [("100.1", "1.000")]), T0 + MS)
    rig.req(new("a", Side.Buy, "100.0", "0.500"), T0 + 2 * MS)
    rig.md(trade(1, Side.Sell, "100.0", "1.500"), T0 + 20 * MS)
    rig.at(T0 + 30 * MS)
    (t_fill, x) = next((t, m) for t, m in rig.got if isinstance(m, OrderExecution))
    assert x.exec_ts == T0 + 18 * MS
    assert t_fill == T0 + 21 * MS
