"""The real processes: `mlthon control`, `mlthon strategy` and `mlthon cmd` over mosquitto."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from mlthon.basics import Exchange
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from tests.conftest import wait_until
from tests.fakes.scripted_gateway import ScriptedGateway
from tests.running import start

pytestmark = pytest.mark.integration


def write_cfg(tmp_path: Path, port: int, root: str) -> Path:
    cfg = tmp_path / "hook.toml"
    cfg.write_text(f"""
[strategy]
name = "hooky"
class = "tests.strategies.hook_strat:HookStrat"
stop_ack_timeout_s = 5

[params]
order = true
size = "0.001"

[instruments]
use = [9001]

[bus]
host = "127.0.0.1"
port = {port}
root = "{root}"
""")
    return cfg


async def test_command_hook_from_cli_to_callback_across_processes(mosquitto, topic_root, tmp_path):
    cfg = write_cfg(tmp_path, mosquitto.port, topic_root)
    topics = Topics(topic_root)
    bus_args = ["--port", str(mosquitto.port), "--root", topic_root]
    async with MqttBus("127.0.0.1", mosquitto.port) as bus:
        await bus.wait_connected()
        gw = ScriptedGateway(bus, topics, Exchange.Sim)
        gw.start()
        tg: list[m.TelegramPublish] = []
        bus.subscribe(topics.telegram("hooky"), lambda t, msg: tg.append(msg), qos=1)
        statuses: list[m.StratStatus] = []
        bus.subscribe(topics.strat_status("hooky"), lambda t, msg: statuses.append(msg), qos=1)
        await bus.flush()
        control = await start("control", "--strategy", str(cfg), *bus_args)
        strat = await start("strategy", str(cfg))
        try:
            # The strategy logged in, got its params and sent its order to the gateway.
            await wait_until(
                lambda: any(isinstance(r, m.NewOrder) for r in gw.requests),
                30,
                "the strategy's first order",
            )
            await wait_until(
                lambda: statuses and any(h.name == "echo" for h in statuses[-1].hooks),
                30,
                "the echo hook published",
            )
            assert [h.name for h in statuses[-1].hooks] == ["echo", "risk"]  # risk: the env's
            assert statuses[-1].hooks[0].help == "Answer with the params."
            cmd = await start("cmd", "hooky", "ECHO", "a", "b c", *bus_args, "--timeout", "10")
            out, err = await asyncio.wait_for(cmd.communicate(), 20)
            assert cmd.returncode == 0, err.decode()
            assert out.decode().strip() == "ok: echo:a,b c"
            await wait_until(lambda: tg, 30, "telegram message")
            assert tg[0].text == "echo a b c" and tg[0].strat == "hooky"
            # An unknown hook and a bad params update fail with a clear message and exit code.
            cmd = await start("cmd", "hooky", "nosuch", *bus_args, "--timeout", "10")
            out, _ = await asyncio.wait_for(cmd.communicate(), 20)
            assert cmd.returncode == 1 and "unknown command 'nosuch'" in out.decode()
            cmd = await start("params", "hooky", "order=maybe", *bus_args, "--timeout", "10")
            out, _ = await asyncio.wait_for(cmd.communicate(), 20)
            assert cmd.returncode == 1 and "order is a bool" in out.decode()
            # SIGTERM: the strategy stops cleanly (on_stop -> send_stop_ack).
            strat.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(strat.communicate(), 20)
            assert strat.returncode == 0, err.decode()
            assert "stopped (acknowledged)" in err.decode()
        finally:
            for p in (strat, control):
                if p.returncode is None:
                    p.send_signal(signal.SIGTERM)
                    await asyncio.wait_for(p.wait(), 10)
        assert control.returncode == 0


async def test_cmd_without_control_service_times_out_clearly(mosquitto, topic_root):
    cmd = await start(
        "cmd",
        "nobody",
        "status",
        "--port",
        str(mosquitto.port),
        "--root",
        topic_root,
        "--timeout",
        "0.5",
    )
    _, err = await asyncio.wait_for(cmd.communicate(), 20)
    assert cmd.returncode == 2 and "is the control service running" in err.decode()


async def test_bad_strategy_config_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[strategy]\nname = "x y"\nclass = "a:B"\n')
    p = await start("strategy", str(bad))
    _, err = await asyncio.wait_for(p.communicate(), 20)
    assert p.returncode == 2
    assert "bad.toml: [strategy.name]" in err.decode() and "letters, digits" in err.decode()
