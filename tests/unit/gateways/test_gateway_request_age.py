"""Requests carry their send time: a gateway refuses, without executing it, a request older than
its time-to-live (``RequestExpired``) or one that waited past the overload bound while the gateway
was up (``GatewayOverloaded``); cancels that have something to pull are executed all the same
(issue 15, items 5 and 6). One place for every gateway: ``GatewayBase._dispatch``."""

from __future__ import annotations

import sqlite3

import pytest

from mlthon.basics.errors import ConfigError
from mlthon.basics.mlt_enum import Exchange, GtwRejectCode, Side
from mlthon.gateways.journal import OrderJournal
from mlthon.gateways.live.config import LiveGatewayConfig
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.gateways.sim.gateway import SimGateway
from mlthon.gateways.sim.latency import FixedDelay, LatencyConfig
from mlthon.infra.bus.messages import (
    CancelAll,
    CancelAllAck,
    CancelOrder,
    CancelOrderAck,
    CancelOrderReject,
    ModifyOrder,
    ModifyOrderReject,
    NewOrderAck,
    NewOrderReject,
    OrderCancelled,
)
from tests.unit.gateways.helpers import LIN, SPOT, book, new
from tests.unit.gateways.test_sim_gateway import MS, T0, Rig

S = 1_000 * MS


def _expired(rig: Rig, cls: type) -> list:
    return [m for m in rig.msgs(cls) if m.code is GtwRejectCode.RequestExpired]


def test_request_older_than_ttl_rejected_expired_and_not_executed():
    rig = Rig()
    rig.md(book(1, [("100.0", "1.000")], [("100.1", "1.000")]), T0 + MS)
    rig.at(T0 + 10 * S)
    rig.req(new("old", Side.Buy, "100.1", "0.100", ts=T0 + 4 * S))  # 6 s old, TTL 5 s
    (rej,) = rig.msgs(NewOrderReject)
    assert rej.code is GtwRejectCode.RequestExpired
    assert "6000 ms" in rej.reason and "5000 ms" in rej.reason
    assert rig.gw.engine.order("s1", "old") is None  # nothing executed
    rig.req(ModifyOrder(strat="s1", cl_id="x", new_price="99.0", ts=T0 + 4 * S))
    assert _expired(rig, ModifyOrderReject)
    assert rig.gw.expired_requests == 2


def test_request_within_ttl_executed():
    rig = Rig(overload_lag_ns=0)  # a 4 s wait is overload by default: judge the TTL alone
    rig.at(T0 + 10 * S)
    rig.req(new("fresh", Side.Buy, "99.0", "0.100", ts=T0 + 6 * S))  # 4 s old
    assert rig.names() == ["NewOrderAck"]


def test_backtest_latencies_never_expire_with_the_default_ttl():
    # the same simulated clock on both sides: a request's age is its simulated latency
    lat = LatencyConfig(
        entry={"default": FixedDelay(50 * MS)},
        response={"default": FixedDelay(50 * MS)},
        market_data=FixedDelay(20 * MS),
    )
    rig = Rig(latency=lat)
    for i in range(5):
        rig.at(T0 + (i + 1) * S)
        rig.req(new(f"o{i}", Side.Buy, "99.0", "0.100", ts=rig.now))
    rig.at(T0 + 10 * S)
    assert len(rig.msgs(NewOrderAck)) == 5


def test_ttl_zero_never_expires_and_unstamped_requests_never_expire():
    rig = Rig(request_ttl_ns=0, overload_lag_ns=0)
    rig.at(T0 + 3600 * S)
    rig.req(new("ancient", Side.Buy, "99.0", "0.100", ts=T0))
    rig2 = Rig()
    rig2.at(T0 + 3600 * S)
    rig2.req(new("unstamped", Side.Buy, "99.0", "0.100"))  # ts 0: no send time
    assert rig.names() == ["NewOrderAck"] and rig2.names() == ["NewOrderAck"]


def test_expired_cancel_and_cancel_all_still_pull_the_orders():
    rig = Rig()
    rig.req(new("a", Side.Buy, "99.0", "0.100", ts=T0 + MS), T0 + MS)
    rig.req(new("b", Side.Buy, "98.0", "0.100", ts=T0 + 2 * MS), T0 + 2 * MS)
    rig.at(T0 + 60 * S)
    rig.req(CancelOrder(strat="s1", cl_id="a", instrument_id=1, ts=T0 + 3 * MS))
    rig.req(CancelAll(strat="s1", ts=T0 + 4 * MS))
    assert rig.names() == [
        "NewOrderAck",
        "NewOrderAck",
        "CancelOrderAck",
        "OrderCancelled",
        "CancelAllAck",
        "OrderCancelled",
    ]
    assert rig.gw.engine.open_orders() == [] and rig.gw.late_pulls == 2


def test_request_waiting_past_the_overload_bound_refused_overloaded():
    rig = Rig(overload_lag_ns=250 * MS)  # up since T0
    rig.at(T0 + 2 * S)
    rig.req(new("late", Side.Buy, "99.0", "0.100", ts=T0 + 2 * S - 300 * MS))
    (rej,) = rig.msgs(NewOrderReject)
    assert rej.code is GtwRejectCode.GatewayOverloaded
    assert "300 ms" in rej.reason and "250 ms" in rej.reason
    assert rig.gw.engine.order("s1", "late") is None
    rig.req(new("ok", Side.Buy, "99.0", "0.100", ts=rig.now - 200 * MS))
    assert rig.names() == ["NewOrderReject", "NewOrderAck"]
    assert rig.gw.overloaded_requests == 1


def test_overloaded_gateway_still_pulls_open_orders_and_sheds_empty_cancels():
    rig = Rig(overload_lag_ns=250 * MS)
    rig.req(new("a", Side.Buy, "99.0", "0.100", ts=T0 + MS), T0 + MS)
    rig.at(T0 + 2 * S)
    late = rig.now - 400 * MS
    rig.req(CancelOrder(strat="s1", cl_id="a", instrument_id=1, ts=late))
    rig.req(CancelOrder(strat="s1", cl_id="nothing", instrument_id=1, ts=late + 1))
    rig.req(CancelAll(strat="s1", ts=late + 2))
    assert rig.names() == [
        "NewOrderAck",
        "CancelOrderAck",
        "OrderCancelled",
        "CancelOrderReject",
        "CancelAllAck",
    ]
    assert rig.msgs(CancelOrderReject)[0].code is GtwRejectCode.GatewayOverloaded
    assert rig.msgs(CancelAllAck) and rig.msgs(CancelOrderAck) and rig.msgs(OrderCancelled)


def test_backlog_from_before_the_gateway_came_up_is_not_overload():
    # requests kept by the broker while the gateway was away: only the TTL applies to them
    rig = Rig()
    rig.req(new("kept", Side.Buy, "99.0", "0.100", ts=T0 - 2 * S))
    assert rig.names() == ["NewOrderAck"]


def test_repeated_stamped_request_dropped_before_its_age_is_judged():
    rig = Rig()
    req = new("a", Side.Buy, "99.0", "0.100", ts=T0 + MS)
    rig.req(req, T0 + MS)
    rig.at(T0 + 60 * S)
    rig.req(req)  # a QoS 1 redelivery, long after: dropped, not answered "expired"
    assert rig.names() == ["NewOrderAck"] and rig.gw.duplicate_requests == 1


def test_journaled_reports_are_committed_before_they_are_published(tmp_path):
    db = tmp_path / "gw.db"
    rig = Rig.__new__(Rig)
    seen: list[tuple[str, int]] = []
    Rig.__init__(rig)
    gw = SimGateway(
        rig.bus, rig.sched, rig.topics, rig.config, [LIN, SPOT], journal=OrderJournal(db)
    )
    rig.gw.stop()
    rig.gw = gw
    other = sqlite3.connect(db)

    def check(_t: str, m: object) -> None:
        rows = other.execute("SELECT COUNT(*) FROM reports WHERE kind = ?", (type(m).__name__,))
        seen.append((type(m).__name__, rows.fetchone()[0]))

    rig.bus.subscribe(rig.topics.gtw_rpt(rig.config.exchange, "s2"), check)
    gw.start()
    rig.sched.run_until(rig.now)
    for i in range(3):
        rig.req(new(f"o{i}", Side.Buy, "99.0", "0.100", strat="s2", ts=rig.now + i))
    rig.req(CancelOrder(strat="s2", cl_id="o1", instrument_id=1, ts=rig.now))
    assert [k for k, _ in seen] == ["NewOrderAck"] * 3 + ["CancelOrderAck", "OrderCancelled"]
    assert [n for _, n in seen] == [1, 2, 3, 1, 1]  # each was in the journal when published
    assert gw.journal is not None
    assert gw.journal.meta_int("order_n") == 3


@pytest.mark.parametrize("key", ["request_ttl_ms", "overload_lag_ms"])
def test_request_age_config_validated(key):
    sim = SimGatewayConfig.from_dict({"gateway": {key: 1500}})
    assert getattr(sim, key.replace("_ms", "_ns")) == 1_500 * MS
    live = LiveGatewayConfig.from_dict({"gateway": {"exchange": "Bybit", key: 0}})
    assert getattr(live, key.replace("_ms", "_ns")) == 0
    for bad in (-1, "5s", 1.5, True):
        with pytest.raises(ConfigError) as err:
            SimGatewayConfig.from_dict({"gateway": {key: bad}})
        assert err.value.key == f"gateway.{key}"
        with pytest.raises(ConfigError):
            LiveGatewayConfig.from_dict({"gateway": {"exchange": "Bybit", key: bad}})
    assert SimGatewayConfig().request_ttl_ns == 5_000 * MS
    assert LiveGatewayConfig(exchange=Exchange.Bybit).overload_lag_ns == 1_000 * MS
