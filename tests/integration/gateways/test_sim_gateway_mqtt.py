"""The sim gateway over a real mosquitto (the `mlthon gateway` run path) answers exactly as the
in-process gateway on InProcBus + SimScheduler does, with zero latency configured."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from functools import partial

import msgspec
import pytest

from mlthon.basics.mlt_enum import TIF, Exchange, GtwStatus, OrderType, Side
from mlthon.gateways.sim.cli import _run, gateway_main
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.gateways.sim.gateway import SimGateway
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.messages import (
    ADD,
    ASK,
    BID,
    CancelOrder,
    FetchAccount,
    FetchOrders,
    FetchPosition,
    FetchWallet,
    GatewayStatus,
    ModifyOrder,
    NewOrder,
)
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import SimClock, SimScheduler
from mlthon.infra.instruments import load_instruments
from tests import md
from tests.conftest import wait_until

pytestmark = pytest.mark.integration

EX = Exchange.BinanceUsdm
IID = 1001
_ID_FIELDS = ("exch_id", "exec_id")
_TIME_FIELDS = ("ts", "exec_ts", "engine_ts", "reset_ts")


def _order(cl_id: str, side: Side, price: str, qty: str, **kw) -> NewOrder:
    return NewOrder(
        strat="s1", cl_id=cl_id, instrument_id=IID, side=side, price=price, qty=qty, **kw
    )


BARRIER = FetchAccount(strat="s1")
SCRIPT = [
    (
        "md",
        md.book(
            ex=EX.value,
            iid=IID,
            ts=1,
            ch=[
                (ADD, BID, "60000.0", "1.000"),
                (ADD, BID, "59999.9", "2.000"),
                (ADD, ASK, "60000.1", "0.500"),
                (ADD, ASK, "60000.2", "3.000"),
            ],
        ),
    ),
    ("req", BARRIER),
    ("req", _order("p1", Side.Buy, "60000.0", "0.100")),
    ("req", _order("t1", Side.Buy, "60000.2", "0.700", tif=TIF.IOC)),
    ("md", md.trades(ex=EX.value, iid=IID, ts=2, tr=[(2, "60000.0", "1.050", 2, "x")])),
    ("req", BARRIER),
    ("req", ModifyOrder(strat="s1", cl_id="p1", new_qty="0.080")),
    ("req", _order("m1", Side.Sell, "0", "0.200", ord_type=OrderType.Market)),
    ("req", _order("bad", Side.Buy, "60000.05", "0.100")),
    ("req", CancelOrder(strat="s1", cl_id="p1", instrument_id=IID)),  # gone: self-trade prevented
    ("req", _order("p2", Side.Sell, "60001.0", "0.100")),
    ("req", CancelOrder(strat="s1", cl_id="p2", instrument_id=IID)),
    ("req", FetchOrders(strat="s1")),
    ("req", FetchPosition(strat="s1", instrument_id=IID)),
    ("req", FetchWallet(strat="s1", coin="USDT")),
]


def _config(root: str, port: int = 1883) -> SimGatewayConfig:
    return SimGatewayConfig(
        exchange=EX,
        instrument_ids=(IID,),
        root=root,
        bus_port=port,
        balances={"USDT": Decimal("100000")},
        leverage=Decimal("10"),
    )


def _at_least(got: list, n: int) -> bool:
    return len(got) >= n


def _untagged(m):
    """Ids without the run tag of a gateway without a journal (``sim.<start>-x1`` -> ``sim-x1``):
    the two runs start at different times."""
    ids = {
        f: re.sub(r"^sim\.[0-9a-z]+-", "sim-", getattr(m, f)) for f in _ID_FIELDS if hasattr(m, f)
    }
    return msgspec.structs.replace(m, **ids)


def _normalise(msgs):
    return [
        _untagged(msgspec.structs.replace(m, **{f: 0 for f in _TIME_FIELDS if hasattr(m, f)}))
        for m in msgs
    ]


def run_inproc(root: str) -> tuple[list, list[int]]:
    """The script on InProcBus + SimScheduler; the reports and the count after each step."""
    sched = SimScheduler(SimClock(10**18))
    bus = InProcBus(sched)
    topics = Topics(root)
    gw = SimGateway(bus, sched, topics, _config(root), load_instruments())
    got: list = []
    bus.subscribe(topics.gtw_rpt(EX, "s1"), lambda _t, m: got.append(m))
    gw.start()
    sched.run_all()
    counts = []
    for kind, msg in SCRIPT:
        topic = topics.md(EX, IID) if kind == "md" else topics.gtw_req(EX, msg.strat)
        bus.publish(topic, msg)
        sched.run_all()
        counts.append(len(got))
    return got, counts


def test_inproc_script_covers_the_order_surface(topic_root):
    got, _ = run_inproc(topic_root)
    names = [type(m).__name__ for m in got]
    for expected in (
        "NewOrderAck",
        "OrderExecution",
        "OrderCancelled",
        "ModifyOrderAck",
        "NewOrderReject",
        "CancelOrderAck",
        "CancelOrderReject",
        "OrdersInfo",
        "PositionInfo",
        "WalletInfo",
    ):
        assert expected in names


async def test_mqtt_gateway_gives_the_same_reports_as_inproc(mosquitto, topic_root):
    expected, counts = run_inproc(topic_root)
    topics = Topics(topic_root)
    shutdown = asyncio.Event()
    config = _config(topic_root, mosquitto.port)
    server = asyncio.create_task(_run(config, mosquitto.host, mosquitto.port, shutdown), name="gw")
    got: list = []
    status: list[GatewayStatus] = []
    try:
        async with MqttBus(mosquitto.host, mosquitto.port) as bus:
            bus.subscribe(topics.gtw_rpt(EX, "s1"), lambda _t, m: got.append(m), qos=1)
            bus.subscribe(topics.gtw_status(EX), lambda _t, m: status.append(m), qos=1)
            await bus.wait_connected()
            await wait_until(
                lambda: status and status[-1].status is GtwStatus.ReadyToTrade, what="ready"
            )
            for (kind, msg), n in zip(SCRIPT, counts, strict=True):
                topic = topics.md(EX, IID) if kind == "md" else topics.gtw_req(EX, msg.strat)
                bus.publish(topic, msg, qos=1)
                await wait_until(partial(_at_least, got, n), what=f"{n} reports")
            shutdown.set()
            await asyncio.wait_for(server, 10)
            await wait_until(lambda: "stopped" in status[-1].detail, what="stopped status")
    finally:
        shutdown.set()
        if not server.done():
            server.cancel()
    assert _normalise(got[: len(expected)]) == _normalise(expected)


def test_gateway_main_reports_config_errors(tmp_path, capsys):
    bad = tmp_path / "gw.toml"
    bad.write_text('[matching]\nqueue_model = "magic"\n')
    assert gateway_main(["--config", str(bad)]) == 2
    assert "matching.queue_model" in capsys.readouterr().err


async def test_gateway_process_serves_and_stops_on_sigterm(mosquitto, topic_root, tmp_path):
    import signal
    import sys

    from tests.conftest import REPO

    cfg = tmp_path / "gateway.toml"
    cfg.write_text(
        f'[gateway]\nexchange = "BinanceUsdm"\ninstruments = [{IID}]\nroot = "{topic_root}"\n'
        f'[bus]\nport = {mosquitto.port}\n[account]\nbalances = {{ USDT = "1000" }}\n'
    )
    topics = Topics(topic_root)
    status: list[GatewayStatus] = []
    got: list = []
    async with MqttBus(mosquitto.host, mosquitto.port) as bus:
        bus.subscribe(topics.gtw_status(EX), lambda _t, m: status.append(m), qos=1)
        bus.subscribe(topics.gtw_rpt(EX, "s1"), lambda _t, m: got.append(m), qos=1)
        await bus.wait_connected()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mlthon",
            "gateway",
            "--config",
            str(cfg),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await wait_until(
                lambda: status and status[-1].status is GtwStatus.ReadyToTrade,
                timeout=20,
                what="gateway ready",
            )
            bus.publish(topics.gtw_req(EX, "s1"), FetchAccount(strat="s1"), qos=1)
            await wait_until(lambda: bool(got), what="account info")
            proc.send_signal(signal.SIGTERM)
            rc = await asyncio.wait_for(proc.wait(), 20)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        _, err = await proc.communicate()
        assert rc == 0, err.decode()
        await wait_until(lambda: "stopped" in status[-1].detail, what="stopped status")
    assert type(got[0]).__name__ == "AccountInfo"
