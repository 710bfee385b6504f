"""A secure mosquitto: passwords, ACLs (a strategy cannot publish as a gateway nor as another
strategy), TLS, and a gateway process that drops requests sent in another strategy's name and
whose password never reaches a log."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import aiomqtt
import pytest

from mlthon.basics.mlt_enum import Exchange, GtwRejectCode, GtwStatus
from mlthon.infra.broker import MosquittoBroker, TlsFiles
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.security import ADMIN_USER, acl_text, client_tls_context
from tests.conftest import wait_until
from tests.integration.reliability.chaos import GatewayProc, gateway_toml

pytestmark = pytest.mark.integration
SIM = Exchange.Sim
PASSWORDS = {"strat-s1": "pw-strat-7f3a", "strat-s2": "pw-strat-92be", "gtw-Sim": "pw-gw-c41d9e"}


def _secure_broker(root: str, tmp_path) -> MosquittoBroker:
    return MosquittoBroker(
        workdir=tmp_path, secure=True, users=PASSWORDS, acl=acl_text(root, ["s1", "s2"], ["Sim"])
    )


def _bus(broker: MosquittoBroker, user: str | None, password: str | None) -> MqttBus:
    return MqttBus(broker.host, broker.port, username=user, password=password)


async def test_acl_refuses_a_strategy_publishing_on_gateway_topics(topic_root, tmp_path):
    topics = Topics(topic_root)
    got: list[tuple[str, object]] = []
    with _secure_broker(topic_root, tmp_path) as broker:
        async with (
            _bus(broker, ADMIN_USER, broker.admin_password) as admin,
            _bus(broker, "strat-s1", PASSWORDS["strat-s1"]) as strat,
        ):
            admin.subscribe(f"{topic_root}/#", lambda t, msg: got.append((t, msg)), qos=1)
            await admin.wait_connected()
            await strat.wait_connected()
            await admin.flush()
            forged_fill = m.OrderExecution(
                cl_id="x", exec_id="forged", instrument_id=9001, side=1, price="1",
                fill_qty="1", leaves_qty="0", exec_ts=1, fee="0", fee_coin="USDT", maker=False,
            )  # fmt: skip
            strat.publish(topics.gtw_rpt(SIM, "s1"), forged_fill, qos=1)
            strat.publish(topics.gtw_rpt(SIM, "other"), forged_fill, qos=1)
            strat.publish(topics.gtw_status(SIM), m.GatewayStatus(exchange=SIM, status=2), qos=1)
            strat.publish(topics.strat_ctl("other"), m.StratParams(params={}), qos=1)
            # another strategy's request topic: s1 cannot cancel s2's orders
            strat.publish(
                topics.gtw_req(SIM, "s2"), m.CancelAll(strat="s2", instrument_id=0), qos=1
            )
            # allowed, after the refused ones on the same connection: a barrier
            strat.publish(topics.gtw_req(SIM, "s1"), m.FetchAccount(strat="s1"), qos=1)
            await wait_until(lambda: got, what="the allowed request")
            assert [t for t, _ in got] == [topics.gtw_req(SIM, "s1")]


async def test_unknown_users_and_wrong_passwords_are_refused(topic_root, tmp_path):
    with _secure_broker(topic_root, tmp_path) as broker:
        for user, password in ((None, None), ("strat-s1", "wrong"), ("nobody", "x")):
            async with _bus(broker, user, password) as bus:
                with pytest.raises(TimeoutError):
                    await bus.wait_connected(timeout_s=0.5)


async def test_gateway_on_secure_broker_serves_and_never_logs_its_password(topic_root, tmp_path):
    topics = Topics(topic_root)
    secret = PASSWORDS["gtw-Sim"]
    with _secure_broker(topic_root, tmp_path) as broker:
        cfg = tmp_path / "gateway.toml"
        cfg.write_text(
            gateway_toml(topic_root, broker.port, tmp_path / "sim.db", 'username = "gtw-Sim"\n')
        )
        log_path = tmp_path / "gateway.log"
        gw = GatewayProc(cfg, log_path, env={"MLTHON_BUS_PASSWORD": secret})
        status: list[m.GatewayStatus] = []
        got: list[object] = []
        try:
            async with _bus(broker, "strat-s1", PASSWORDS["strat-s1"]) as strat:
                strat.subscribe(topics.gtw_status(SIM), lambda _t, x: status.append(x), qos=1)
                strat.subscribe(topics.gtw_rpt(SIM, "s1"), lambda _t, x: got.append(x), qos=1)
                await strat.wait_connected()
                await gw.start()
                await wait_until(
                    lambda: status and status[-1].status is GtwStatus.ReadyToTrade,
                    timeout=20,
                    what="gateway ready",
                )
                strat.publish(topics.gtw_req(SIM, "s1"), m.FetchAccount(strat="s1"), qos=1)
                await wait_until(lambda: got, what="account info")
                assert await gw.stop() == 0
        finally:
            await gw.stop()
    logs = [log_path, tmp_path / "mosquitto.log"]
    text = "".join(p.read_text(errors="replace") for p in logs)
    assert "ReadyToTrade" in text
    assert secret not in text
    assert isinstance(got[0], m.AccountInfo)


async def test_gateway_drops_a_request_naming_another_strategy(topic_root, tmp_path):
    topics = Topics(topic_root)
    with _secure_broker(topic_root, tmp_path) as broker:
        cfg = tmp_path / "gateway.toml"
        cfg.write_text(
            gateway_toml(topic_root, broker.port, tmp_path / "sim.db", 'username = "gtw-Sim"\n')
        )
        log_path = tmp_path / "gateway.log"
        gw = GatewayProc(cfg, log_path, env={"MLTHON_BUS_PASSWORD": PASSWORDS["gtw-Sim"]})
        status: list[m.GatewayStatus] = []
        to_s1: list[object] = []
        to_s2: list[object] = []
        try:
            async with (
                _bus(broker, "strat-s1", PASSWORDS["strat-s1"]) as s1,
                _bus(broker, "strat-s2", PASSWORDS["strat-s2"]) as s2,
            ):
                s1.subscribe(topics.gtw_status(SIM), lambda _t, x: status.append(x), qos=1)
                s1.subscribe(topics.gtw_rpt(SIM, "s1"), lambda _t, x: to_s1.append(x), qos=1)
                s2.subscribe(topics.gtw_rpt(SIM, "s2"), lambda _t, x: to_s2.append(x), qos=1)
                await s1.wait_connected()
                await s2.wait_connected()
                await s2.flush()
                await gw.start()
                await wait_until(
                    lambda: status and status[-1].status is GtwStatus.ReadyToTrade,
                    timeout=20,
                    what="gateway ready",
                )
                # s2 rests an order; s1, on its own topic, asks to cancel everything of s2
                s2.publish(
                    topics.gtw_req(SIM, "s2"),
                    m.NewOrder(strat="s2", cl_id="b1", instrument_id=9001, side=1,
                               price="90.0", qty="0.010"),
                    qos=1,
                )  # fmt: skip
                await wait_until(lambda: to_s2, what="s2's answer")
                s1.publish(
                    topics.gtw_req(SIM, "s1"), m.CancelAll(strat="s2", instrument_id=0), qos=1
                )
                await wait_until(lambda: to_s1, what="the refusal to s1")
                # the order of s2 is still there
                s2.publish(topics.gtw_req(SIM, "s2"), m.FetchOrders(strat="s2"), qos=1)
                await wait_until(
                    lambda: any(isinstance(x, m.OrdersInfo) for x in to_s2), what="s2's orders"
                )
                before_stop = list(to_s2)  # a clean stop cancels the open orders
                assert await gw.stop() == 0
        finally:
            await gw.stop()
    (refusal,) = to_s1
    assert isinstance(refusal, m.CancelAllReject)
    assert refusal.code is GtwRejectCode.InvalidRequest and "'s2'" in refusal.reason
    assert [type(x) for x in before_stop] == [m.NewOrderAck, m.OrdersInfo], before_stop
    assert [o.cl_id for o in before_stop[1].orders] == ["b1"]
    assert "dropped CancelAll" in log_path.read_text(errors="replace")


def _make_certs(d) -> TlsFiles:
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout",
        "server.key", "-out", "server.csr")  # fmt: skip
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "1", "-out", "server.pem", "-extfile", "ext.cnf")  # fmt: skip
    return TlsFiles(certfile=d / "server.pem", keyfile=d / "server.key")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl binary")
async def test_tls_listener_serves_clients_that_trust_its_ca(tmp_path):
    tls = _make_certs(tmp_path)
    with MosquittoBroker(workdir=tmp_path, tls=tls) as broker:
        ctx = client_tls_context(tmp_path / "ca.pem")
        async with aiomqtt.Client(broker.host, broker.port, tls_context=ctx) as client:
            await client.subscribe("tls/t", qos=1)
            await client.publish("tls/t", b"hello", qos=1)
            async with asyncio.timeout(30):
                async for msg in client.messages:
                    assert msg.payload == b"hello"
                    break
        # a plain-TCP client cannot talk to it
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(broker.host, broker.port, timeout=2):
                pass
