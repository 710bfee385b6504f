"""A second ``mlthon control`` beside a running one: it connects under its own client id (the two
never knock each other off the broker), serves only the status page with ``--web`` (logins and
commands stay with the first), and refuses to start without it."""

from __future__ import annotations

import asyncio
import json
import os
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mlthon.infra.broker import free_port
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from tests.conftest import wait_until
from tests.integration.ops.ops_helpers import mlthon_argv, stop

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _strategy_file(tmp_path: Path, port: int, root: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(
        '[strategy]\nname = "s1"\nclass = "tests.fakes.recorder:Recorder"\n'
        "[instruments]\nuse = [9001]\n"
        f'[bus]\nhost = "127.0.0.1"\nport = {port}\nroot = "{root}"\n',
        encoding="utf-8",
    )
    return path


async def _control(cfg: Path, port: int, root: str, *extra: str) -> asyncio.subprocess.Process:
    argv = mlthon_argv(
        "control", "--strategy", str(cfg), "--port", str(port), "--root", root, "--state", "",
        *extra,
    )  # fmt: skip
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "MLTHON_HEARTBEAT_S": "0.5"},
    )


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


async def test_second_control_serves_only_the_page_and_never_knocks_the_first_off(
    mosquitto, topic_root, tmp_path
):
    topics = Topics(topic_root)
    cfg = _strategy_file(tmp_path, mosquitto.port, topic_root)
    heard: list[m.ComponentStatus] = []
    answers: list[m.CmdResult] = []
    first = await _control(cfg, mosquitto.port, topic_root)
    second = third = None
    try:
        async with MqttBus("127.0.0.1", mosquitto.port) as bus:
            bus.subscribe(
                topics.component_status("control", "control"),
                lambda _t, x: heard.append(x),
                qos=1,
            )
            bus.subscribe(topics.reply("cli"), lambda _t, x: answers.append(x), qos=1)
            await bus.wait_connected(10)
            await wait_until(
                lambda: any(h.pid == first.pid and h.state == "up" for h in heard), 30, "first up"
            )
            web = free_port()
            second = await _control(cfg, mosquitto.port, topic_root, "--web", f"127.0.0.1:{web}")

            async def page() -> Any:
                try:
                    return await asyncio.to_thread(_get_json, f"http://127.0.0.1:{web}/api/status")
                except OSError:
                    return None

            snapshot = None
            for _ in range(600):
                snapshot = await page()
                if snapshot is not None or second.returncode is not None:
                    break
                await asyncio.sleep(0.05)
            assert snapshot is not None, "the second control serves no page"
            assert ("control", "control") in {
                (c["kind"], c["name"]) for c in snapshot["components"]
            }
            # Its page shows the first control up; meanwhile neither is knocked off the broker.
            heard.clear()
            await asyncio.sleep(3.0)  # six heartbeat periods: any flap would show
            assert heard and {(h.pid, h.state) for h in heard} == {(first.pid, "up")}, heard
            # Commands are answered once, by the first.
            bus.publish(
                topics.cmd(),
                m.CmdRequest(cmd_id="q1", strat="", name="strategies",
                             reply_to=topics.reply("cli"), sender="test"),
                qos=1,
            )  # fmt: skip
            await wait_until(lambda: answers, 30, "an answer")
            await asyncio.sleep(0.5)
            assert [a.cmd_id for a in answers] == ["q1"]
            # Without --web, a second control refuses to start.
            third = await _control(cfg, mosquitto.port, topic_root)
            async with asyncio.timeout(60):
                _, err = await third.communicate()
            assert third.returncode == 2, err
            assert b"another control service serves topic root" in err
            assert f"pid {first.pid}".encode() in err
    finally:
        for proc in (third, second, first):
            if proc is not None:
                await stop(proc)
