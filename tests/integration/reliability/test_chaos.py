"""Chaos: kill -9 the sim gateway mid-stream, restart the broker, kill -9 a strategy; nothing is
lost or doubled, and a restarted strategy knows every order left open.

Each test injects its faults at seeded random moments and prints how many faults it injected and
how many orders and fills it checked.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sys
import time
from decimal import Decimal

import pytest

from mlthon.basics.mlt_enum import Exchange, GtwStatus, Side
from mlthon.infra.broker import MosquittoBroker
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.codec import decode
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from mlthon.infra.config import parse_strategy_config
from mlthon.infra.control import ControlService
from tests import md
from tests.conftest import REPO, wait_until
from tests.integration.reliability.chaos import (
    BOOK,
    IID,
    GatewayProc,
    Ledger,
    gateway_toml,
    order,
)

pytestmark = pytest.mark.integration
SIM = Exchange.Sim


def _ready(status: list[m.GatewayStatus]) -> bool:
    return bool(status) and status[-1].status is GtwStatus.ReadyToTrade


@pytest.mark.parametrize("seed", [1, 2])
async def test_gateway_kill9_mid_stream_loses_and_doubles_nothing(
    mosquitto, topic_root, tmp_path, seed
):
    rnd = random.Random(seed)
    root = f"{topic_root}_{seed}"
    topics = Topics(root)
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(gateway_toml(root, mosquitto.port, tmp_path / "sim.db"))
    gw = GatewayProc(cfg, tmp_path / "gateway.log")
    ledger = Ledger()
    status: list[m.GatewayStatus] = []
    faults = 0
    strat = "chaos"
    bus = MqttBus(mosquitto.host, mosquitto.port, client_id=f"strat-{root}", clean_session=False)
    bus.subscribe(topics.gtw_rpt(SIM, strat), ledger.on_report, qos=1)
    bus.subscribe(topics.gtw_status(SIM), lambda _t, msg: status.append(msg), qos=1)
    try:
        async with bus:
            await bus.wait_connected()
            await gw.start()
            await wait_until(lambda: _ready(status), timeout=20, what="gateway ready")
            n = 0
            for _ in range(2):
                kill_at = n + rnd.randint(5, 30)
                while n < kill_at:
                    if n % 10 == 0:
                        bus.publish(topics.md(SIM, IID), BOOK)
                    req = order(n, strat, time.time_ns())
                    ledger.sent[req.cl_id] = req
                    bus.publish(topics.gtw_req(SIM, strat), req, qos=1)
                    n += 1
                    await asyncio.sleep(rnd.uniform(0, 0.01))  # pacing of the stream
                await gw.kill9()
                faults += 1
                # orders sent while the gateway is down wait in its broker session
                for _ in range(rnd.randint(1, 5)):
                    req = order(n, strat, time.time_ns())
                    ledger.sent[req.cl_id] = req
                    bus.publish(topics.gtw_req(SIM, strat), req, qos=1)
                    n += 1
                await wait_until(lambda: not _ready(status), what="will: gateway lost")
                await gw.start()
                await wait_until(lambda: _ready(status), timeout=20, what="gateway ready again")
                bus.publish(topics.md(SIM, IID), BOOK)
            await wait_until(ledger.settled, timeout=10, what="every order answered")
            bus.publish(topics.gtw_req(SIM, strat), m.FetchOrders(strat=strat), qos=1)
            bus.publish(
                topics.gtw_req(SIM, strat), m.FetchPosition(strat=strat, instrument_id=IID), qos=1
            )
            await wait_until(lambda: len(ledger.infos) >= 2, what="orders and position")
    finally:
        await gw.stop()
    orders_info = next(i for i in ledger.infos if isinstance(i, m.OrdersInfo))
    position = next(i for i in ledger.infos if isinstance(i, m.PositionInfo))
    assert {o.cl_id for o in orders_info.orders} == ledger.open_orders()
    assert ledger.position() == Decimal(position.position)
    for cl_id, req in ledger.sent.items():
        assert not (cl_id in ledger.acked and cl_id in ledger.rejected), cl_id
        assert ledger.filled.get(cl_id, Decimal(0)) <= Decimal(req.qty), cl_id
    print(
        f"seed {seed}: {faults} gateway kill -9, {len(ledger.sent)} orders and "
        f"{len(ledger.fills)} fills checked, {ledger.repeats} repeated reports dropped by id, "
        f"{len(ledger.rejected)} rejects"
    )


async def test_broker_restart_delivers_reports_published_while_strategy_away(topic_root, tmp_path):
    """A strategy's persistent session keeps the reports sent while it was away, across a
    broker restart (mosquitto persistence)."""
    topics = Topics(topic_root)
    strat = "away"
    ledger = Ledger()
    with MosquittoBroker(persistence=True, workdir=tmp_path) as broker:
        cfg = tmp_path / "gateway.toml"
        cfg.write_text(gateway_toml(topic_root, broker.port, tmp_path / "sim.db"))
        gw = GatewayProc(cfg, tmp_path / "gateway.log")
        status: list[m.GatewayStatus] = []
        client_id = f"strat-{topic_root}"
        try:
            # 1. the strategy registers its persistent session, then goes away
            first = MqttBus(broker.host, broker.port, client_id=client_id, clean_session=False)
            first.subscribe(topics.gtw_rpt(SIM, strat), ledger.on_report, qos=1)
            async with first:
                await first.wait_connected()
                await first.flush()
            # 2. while it is away, orders are placed for it and answered by the gateway
            seen = Ledger()  # what an observer sees live
            async with MqttBus(broker.host, broker.port) as other:
                other.subscribe(topics.gtw_status(SIM), lambda _t, x: status.append(x), qos=1)
                other.subscribe(topics.gtw_rpt(SIM, strat), seen.on_report, qos=1)
                await other.wait_connected()
                await gw.start()
                await wait_until(lambda: _ready(status), timeout=20, what="gateway ready")
                other.publish(topics.md(SIM, IID), BOOK)
                for n in range(6):
                    req = order(n, strat, time.time_ns())
                    ledger.sent[req.cl_id] = seen.sent[req.cl_id] = req
                    other.publish(topics.gtw_req(SIM, strat), req, qos=1)
                other.publish(topics.gtw_req(SIM, strat), m.FetchOrders(strat=strat), qos=1)
                await wait_until(lambda: seen.settled() and seen.infos, what="gateway answers")
                await gw.stop()
            assert ledger.sent and not ledger.acked
            # 3. the broker restarts (its state is saved on the way down)
            broker.restart()
            # 4. the strategy returns under the same client id and gets everything
            again = MqttBus(broker.host, broker.port, client_id=client_id, clean_session=False)
            again.subscribe(topics.gtw_rpt(SIM, strat), ledger.on_report, qos=1)
            async with again:
                await wait_until(ledger.answered, timeout=10, what="reports kept for the session")
                await wait_until(lambda: ledger.infos, what="orders info")
        finally:
            await gw.stop()
    assert ledger.fills == seen.fills and ledger.acked == seen.acked
    print(
        f"1 broker restart, {len(ledger.sent)} orders and {len(ledger.fills)} fills delivered "
        "after the strategy came back"
    )


def _lines(path) -> list[bytes]:
    return path.read_bytes().splitlines() if path.exists() else []


def _journaled(db) -> list[bytes]:
    import sqlite3

    with sqlite3.connect(db) as con:
        return [bytes(r[0]) for r in con.execute("SELECT payload FROM reports ORDER BY seq")]


@pytest.mark.parametrize("seed", [3, 6])
async def test_strategy_kill9_gets_every_report_after_restart(
    mosquitto, topic_root, tmp_path, seed
):
    rnd = random.Random(seed)
    root = f"{topic_root}_{seed}"
    topics = Topics(root)
    strat = f"ks{seed}"
    db = tmp_path / "sim.db"
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(gateway_toml(root, mosquitto.port, db))
    gw = GatewayProc(cfg, tmp_path / "gateway.log")
    out = tmp_path / "reports.jsonl"
    status: list[m.GatewayStatus] = []
    client: list[asyncio.subprocess.Process] = []

    async def start_client(n_orders: int, *mode: str) -> None:
        client.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.integration.reliability.strat_client",
                str(mosquitto.port),
                root,
                strat,
                str(out),
                str(n_orders),
                "0",
                *mode,
                cwd=REPO,
            )
        )

    def marked(word: bytes) -> set[str]:
        return {ln.split()[1].decode() for ln in _lines(out) if ln.startswith(word + b" ")}

    def open_at_gateway() -> set[str]:
        """Orders the gateway holds open, from its journal: acked, not cancelled, not filled."""
        msgs = [decode("j", p) for p in _journaled(db)]
        acked = {x.cl_id for x in msgs if isinstance(x, m.NewOrderAck)}
        ended = {x.cl_id for x in msgs if isinstance(x, m.OrderCancelled)}
        ended |= {
            x.cl_id for x in msgs if isinstance(x, m.OrderExecution) and Decimal(x.leaves_qty) == 0
        }
        return acked - ended

    try:
        async with MqttBus(mosquitto.host, mosquitto.port) as bus:
            bus.subscribe(topics.gtw_status(SIM), lambda _t, x: status.append(x), qos=1)
            await bus.wait_connected()
            await gw.start()
            await wait_until(lambda: _ready(status), timeout=20, what="gateway ready")
            bus.publish(topics.md(SIM, IID), BOOK)
            await bus.flush()
            await start_client(60)
            kill_after = rnd.randint(5, 40)
            await wait_until(
                lambda: sum(ln.startswith(b"SENT") for ln in _lines(out)) >= kill_after,
                timeout=10,
                what="orders streaming",
            )
            client[0].send_signal(signal.SIGKILL)
            await client[0].wait()
            at_kill = len(_journaled(db))
            sent = {ln.split()[1].decode() for ln in _lines(out) if ln.startswith(b"SENT")}

            def answered() -> set[str]:
                msgs = [decode("j", p) for p in _journaled(db)]
                return {x.cl_id for x in msgs if isinstance(x, m.NewOrderAck | m.NewOrderReject)}

            # the orders the broker took are answered while the strategy is away (the last ones
            # may have died with the process before reaching the broker)
            await wait_until(lambda: len(answered()) >= len(sent) - 2, what="orders answered")
            await asyncio.sleep(0.2)  # let in-flight requests land before the trade
            resting = {c for c in answered() if int(c[1:]) % 5 == 4}
            # then its resting bids fill: a sell trades through them
            trade = md.trades(ex=1, iid=IID, ts=2, tr=[(2, "89.0", "5", 2, "t")])
            bus.publish(topics.md(SIM, IID), trade)

            def filled() -> set[str]:
                msgs = [decode("j", p) for p in _journaled(db)]
                return {x.cl_id for x in msgs if isinstance(x, m.OrderExecution)}

            await wait_until(lambda: resting <= filled(), what="resting orders filled")
            # Orders of its earlier life that stay open (as if sent just before the kill): the
            # restarted strategy never placed them and must learn of them.
            keeps = {f"k{k}" for k in range(rnd.randint(1, 4))}
            for k in range(len(keeps)):
                keep = m.NewOrder(
                    strat=strat, cl_id=f"k{k}", instrument_id=IID, side=Side.Buy,
                    price=f"8{k}.0", qty="0.010", ts=time.time_ns(),
                )  # fmt: skip
                bus.publish(topics.gtw_req(SIM, strat), keep, qos=1)
            await wait_until(lambda: keeps <= open_at_gateway(), what="orders left open")
            left_open = open_at_gateway()
            # The strategy comes back as a real strategy process (env, login, start) on the same
            # session: its env must adopt every order left open; it then cancels them.
            scfg = {"strategy": {"name": strat, "class": "x:X"}, "instruments": {"use": [IID]}}
            control = ControlService(
                bus, LiveScheduler(), topics, [parse_strategy_config(scfg, "<chaos>")]
            )
            control.start()
            await start_client(0, "env")
            # Reports journaled after the kill were published while the strategy was away: its
            # broker session must deliver every one. Those published just before the kill may be
            # lost: the MQTT client acknowledges (PUBACK) before the handler has run (known gap;
            # manual acknowledgement requested from the bus owner).
            await wait_until(
                lambda: set(_journaled(db)[at_kill:]) <= set(_lines(out)),
                timeout=10,
                what="every report published while away delivered to the strategy",
            )
            await wait_until(
                lambda: marked(b"ADOPTED") >= left_open, timeout=20, what="open orders adopted"
            )
            await wait_until(
                lambda: marked(b"CANCELLED") >= left_open, what="adopted orders cancelled"
            )
            # No order is left open that the strategy does not know about.
            await wait_until(lambda: not open_at_gateway(), what="nothing left open")
            journaled = _journaled(db)
    finally:
        for p in client:
            if p.returncode is None:
                p.kill()
                await p.wait()
        await gw.stop()
    received = [ln for ln in _lines(out) if ln.startswith(b"{")]
    fills = {p for p in journaled[at_kill:] if b'"k":"exec"' in p}
    assert fills and resting, "nothing filled while the strategy was away"
    assert left_open and marked(b"ADOPTED") == left_open
    lost = [p for p in journaled[:at_kill] if p not in set(received)]
    print(
        f"seed {seed}: 1 strategy kill -9 after {kill_after} orders, {len(sent)} orders sent, "
        f"{len(journaled) - at_kill} reports ({len(fills)} fills) published while away, all "
        f"delivered; {len(received) - len(set(received))} repeats; {len(lost)} of {at_kill} "
        "earlier reports lost in the PUBACK-before-handler window; after the restart "
        f"{len(left_open)} open orders adopted and "
        "cancelled, 0 left open"
    )
