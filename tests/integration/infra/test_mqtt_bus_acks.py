"""An incoming QoS 1 message is acknowledged only after its handler ran: a subscriber process
killed -9 inside its handler gets the message again when it comes back (persistent session)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from mlthon.infra.bus import messages as m
from mlthon.infra.bus.mqtt import MqttBus
from tests.conftest import REPO

pytestmark = pytest.mark.integration

# The subscriber: a persistent session; its handler writes what it got, then (mode "die") kills
# its own process with SIGKILL before the handler returns.
SUBSCRIBER = """
import asyncio, os, signal, sys
from mlthon.infra.bus.mqtt import MqttBus

port, topic, out, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

async def main():
    ready, handled = asyncio.Event(), asyncio.Event()
    async with MqttBus("127.0.0.1", port, client_id="victim", clean_session=False) as bus:
        def on_msg(_t, msg):
            with open(out, "a") as f:
                f.write(f"{msg.detail} {os.getpid()}\\n")
            if mode == "die":
                os.kill(os.getpid(), signal.SIGKILL)
            handled.set()
        bus.subscribe(topic, on_msg, qos=1)
        bus.subscribe(topic + "/probe", lambda _t, _m: ready.set(), qos=1)
        await bus.wait_connected()
        bus.publish(topic + "/probe", msg_probe(), qos=1)  # comes back after the SUBSCRIBEs
        await ready.wait()
        print("ready", flush=True)
        try:
            await asyncio.wait_for(handled.wait(), 20)
        except TimeoutError:
            sys.exit("no message within 20 s")
        await bus.flush()  # the PUBACK is on the wire

def msg_probe():
    from mlthon.infra.bus.messages import StopAck
    return StopAck(strat="probe")

asyncio.run(main())
"""


def _start(port: int, topic: str, out: Path, mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SUBSCRIBER, str(port), topic, str(out), mode],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _wait(proc: subprocess.Popen[str]) -> int:
    """The exit code (the pipe closed)."""
    try:
        return proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    finally:
        assert proc.stdout is not None
        proc.stdout.close()


async def test_mqtt_bus_subscriber_killed_inside_its_handler_gets_the_message_again(
    broker, topic_root, tmp_path
):
    topic = f"{topic_root}/orders"
    out = tmp_path / "handled.txt"
    victim = await asyncio.to_thread(_start, broker.port, topic, out, "die")
    async with MqttBus(broker.host, broker.port) as pub:
        await pub.wait_connected()
        pub.publish(topic, m.StratStatus(strat="x", state="running", detail="order-7"), qos=1)
        assert await pub.flush()
    assert await asyncio.to_thread(_wait, victim) == -9
    first = out.read_text().split()
    assert first[0] == "order-7"
    again = await asyncio.to_thread(_start, broker.port, topic, out, "live")
    assert await asyncio.to_thread(_wait, again) == 0
    lines = out.read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["order-7", "order-7"]
    assert lines[0].split()[1] != lines[1].split()[1]  # two processes


async def test_mqtt_bus_work_before_acks_runs_after_the_handler_before_anything_queued(
    mosquitto, topic_root
):
    """A handler's ``before_acks`` work (a journal commit) runs once the handlers of the batch
    ran, before the loop gets to what was queued meanwhile (paho writes the acks from there)."""
    order: list[str] = []
    got = asyncio.Event()
    async with MqttBus(mosquitto.host, mosquitto.port) as bus:

        def on_msg(_topic: str, _msg: object) -> None:
            asyncio.get_running_loop().call_soon(order.append, "queued")
            assert bus.before_acks(lambda: order.append("before acks"))
            order.append("handler")
            asyncio.get_running_loop().call_soon(got.set)

        bus.subscribe(f"{topic_root}/x", on_msg, qos=1)
        await bus.wait_connected()
        assert not bus.before_acks(lambda: None)  # not inside a delivery: the caller's own way
        bus.publish(f"{topic_root}/x", m.FeedStatus(ex=1, status=m.FeedHandlerStatus.Stale), qos=1)
        async with asyncio.timeout(10):
            await got.wait()
    assert order == ["handler", "before acks", "queued"]
