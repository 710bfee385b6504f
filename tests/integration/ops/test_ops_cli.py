"""mlthon servers / kill / doctor against a real broker and a real feed process."""

from __future__ import annotations

import asyncio

import pytest

from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from mlthon.infra.ops import doctor as dr
from mlthon.infra.ops.board import StatusBoard
from mlthon.infra.ops.cli import run_doctor
from mlthon.infra.ops.heartbeat import Heartbeat
from tests.conftest import wait_until
from tests.integration.ops.ops_helpers import feed_config, mlthon_argv, run_json, spawn, stop

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_servers_lists_then_kill_stops_a_feed_cleanly(mosquitto, topic_root, tmp_path):
    port = str(mosquitto.port)
    bus_args = ["--port", port, "--root", topic_root, "--settle", "0.3"]
    feed = await spawn(
        mlthon_argv("feed", "--config", str(feed_config(tmp_path, mosquitto.port, topic_root))),
        MLTHON_HEARTBEAT_S="0.5",
    )
    try:
        async with MqttBus("127.0.0.1", mosquitto.port) as bus:
            await bus.wait_connected()
            board = StatusBoard(bus, LiveScheduler(), Topics(topic_root))
            board.start()
            await wait_until(lambda: board.get("feed", "Sim") is not None, 30, "feed heard")
            rows = await run_json(mlthon_argv("servers", "--json", *bus_args))
            (row,) = [r for r in rows if r["kind"] == "feed"]
            assert row["name"] == "Sim" and row["pid"] == feed.pid and row["state"] == "up"
            kill = await asyncio.create_subprocess_exec(
                *mlthon_argv("kill", "feed/Sim", "--no-signal", *bus_args),
                stdout=asyncio.subprocess.PIPE,
            )
            async with asyncio.timeout(30):
                out, _ = await kill.communicate()
                assert await feed.wait() == 0  # a clean exit, not a signal
            assert kill.returncode == 0, out
            await wait_until(lambda: board.get("feed", "Sim").state == "down", 30, "feed down")
            assert board.get("feed", "Sim").status.detail == "stopped"
            board.stop(unsubscribe=False)  # the bus closes next: no UNSUBACK in flight
    finally:
        await stop(feed)


async def test_kill_unknown_target_exits_2(mosquitto, topic_root):
    argv = mlthon_argv("kill", "nobody", "--port", str(mosquitto.port), "--root", topic_root)
    proc = await asyncio.create_subprocess_exec(*argv, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(30):
        _, err = await proc.communicate()
    assert proc.returncode == 2 and b"no running server" in err


async def test_doctor_against_running_components_all_ok(mosquitto, topic_root, tmp_path):
    async with MqttBus("127.0.0.1", mosquitto.port) as bus:
        await bus.wait_connected()
        hb = Heartbeat(bus, LiveScheduler(), Topics(topic_root), name="Sim", kind="gateway")
        hb.start()
        await bus.flush()
        opts = dr.DoctorOptions(
            port=mosquitto.port, root=topic_root, dirs=[tmp_path], min_free_mb=1
        )
        checks = await run_doctor(opts, settle_s=0.3)
        hb.stop()
        await bus.flush()
    verdicts = {c.name: c.verdict for c in checks}
    assert verdicts == {
        "config": "SKIP",
        "instruments": "OK",
        "secrets": "SKIP",
        "disk": "OK",
        "broker": "OK",
        "clock": "OK",
        "versions": "OK",
        "stale": "OK",
    }, [c.line() for c in checks]
    assert dr.verdict(checks) == 0
