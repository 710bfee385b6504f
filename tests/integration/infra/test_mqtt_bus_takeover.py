"""Two clients with one MQTT client id: the broker keeps one connection per id and closes the
older one each time the other connects. Without care both reconnect for ever and knock each
other off (issue 16: a second ``mlthon control`` flapped ~95 times a minute). The bus notices,
the newcomer gives up with a BusError naming the id, and the incumbent keeps its connection."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from mlthon.basics.errors import BusError
from mlthon.basics.mlt_enum import Exchange, GtwStatus
from mlthon.infra.broker import MosquittoBroker
from mlthon.infra.bus import mqtt as mqtt_mod
from mlthon.infra.bus.messages import FetchAccount, StopAck
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from tests.conftest import REPO, wait_until

pytestmark = pytest.mark.integration


async def _outlast_quick_window() -> None:
    # The rule is about how long a connection lasted: the incumbent's must outlive the window.
    await asyncio.sleep(mqtt_mod.TAKEOVER_QUICK_S + 0.5)


async def test_mqtt_bus_same_client_id_newcomer_raises_bus_error_and_incumbent_stays(
    mosquitto: MosquittoBroker, topic_root: str
) -> None:
    cid = f"dup-{topic_root.replace('/', '_')}"
    got: list[str] = []
    async with MqttBus(mosquitto.host, mosquitto.port, client_id=cid) as first:
        first.subscribe(f"{topic_root}/x", lambda _t, m: got.append(m.strat), qos=1)
        await first.wait_connected(30)
        await _outlast_quick_window()
        second = MqttBus(mosquitto.host, mosquitto.port, client_id=cid)

        async def hold_on() -> None:
            async with asyncio.timeout(60), second:
                await asyncio.Event().wait()  # until the bus ends the block

        with pytest.raises(BusError) as err:
            await hold_on()
        assert repr(cid) in str(err.value) and "in use by another client" in str(err.value)
        assert second.failure is err.value
        with pytest.raises(BusError):
            await second.wait_connected(1)
        # The incumbent reconnected and stays: it still gets its messages.
        await first.wait_connected(30)
        async with MqttBus(mosquitto.host, mosquitto.port) as other:
            await other.wait_connected(30)
            other.publish(f"{topic_root}/x", StopAck(strat="after"), qos=1)
            await wait_until(lambda: "after" in got, 30, "the incumbent to get a message")
        assert first.failure is None and first.connected


async def test_mqtt_bus_reconnects_after_broker_restarts_are_not_taken_for_a_takeover(
    broker: MosquittoBroker,
) -> None:
    """Losses where the broker is away (a restart) reset the count: no false alarm."""
    async with MqttBus(broker.host, broker.port, client_id="restarts", reconnect_max_s=0.2) as bus:
        for n in range(mqtt_mod.TAKEOVER_LOSSES + 1):
            await bus.wait_connected(30)
            connects = bus.connects
            broker.stop()
            await wait_until(lambda: not bus.connected, 30, "the loss")
            broker.start()
            await wait_until(lambda c=connects: bus.connects > c, 30, f"reconnect {n}")
        assert bus.failure is None and bus.connected


GATEWAY_TOML = """[gateway]
exchange = "Sim"
instruments = [9001]
[bus]
host = "{host}"
port = {port}
"""


def _gateway(cfg: Path, root: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mlthon", "gateway", "--config", str(cfg), "--root", root],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def test_mlthon_gateway_second_copy_exits_naming_the_client_id_and_first_serves_on(
    mosquitto: MosquittoBroker, topic_root: str, tmp_path: Path
) -> None:
    """Two real processes: a second ``mlthon gateway`` for the same exchange and root (the same
    client id) exits 1 with a clear error; the first keeps answering requests."""
    root = topic_root.replace("/", "_")
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(GATEWAY_TOML.format(host=mosquitto.host, port=mosquitto.port))
    topics = Topics(root)
    answers: list[object] = []
    async with MqttBus(mosquitto.host, mosquitto.port) as client:
        client.subscribe(topics.gtw_rpt(Exchange.Sim, "s1"), lambda _t, m: answers.append(m), qos=1)
        statuses: list[object] = []
        client.subscribe(topics.gtw_status(Exchange.Sim), lambda _t, m: statuses.append(m), qos=1)
        first = _gateway(cfg, root)
        second: subprocess.Popen[str] | None = None
        try:
            await wait_until(
                lambda: any(getattr(s, "status", None) is GtwStatus.ReadyToTrade for s in statuses),
                60,
                "the first gateway ReadyToTrade",
            )
            await _outlast_quick_window()
            second = _gateway(cfg, root)
            out, _ = await asyncio.to_thread(second.communicate, timeout=90)
            assert second.returncode == 1, out
            assert f"'gtw-Sim-{root}' is in use by another client" in out, out
            assert first.poll() is None
            client.publish(topics.gtw_req(Exchange.Sim, "s1"), FetchAccount(strat="s1"), qos=1)
            await wait_until(lambda: answers, 60, "the first gateway's answer")
        finally:
            for proc in (first, second):
                if proc is not None:
                    if proc.poll() is None:
                        proc.terminate()
                    await asyncio.to_thread(proc.communicate, timeout=30)
