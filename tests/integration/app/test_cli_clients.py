"""``python -m mlthon`` clients against a real mosquitto: options before or after the command,
quiet by default, one clear message when the broker is away, ``run --web`` (issue 18)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
import urllib.request
from pathlib import Path

import pytest

from mlthon.infra.broker import free_port
from tests.integration.ops.ops_helpers import env_with, feed_config, spawn, stop

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parents[3]


async def _mlthon(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mlthon",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env_with(),
        cwd=REPO,
    )
    async with asyncio.timeout(timeout):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _feed_heard(port: int, root: str) -> None:
    """Until ``mlthon servers`` lists the feed (it heartbeats once connected)."""
    async with asyncio.timeout(60):
        while True:
            rc, out, _ = await _mlthon("servers", "--json", "--port", str(port), "--root", root)
            if rc == 0 and any(r["kind"] == "feed" for r in json.loads(out)):
                return
            await asyncio.sleep(0.2)  # polling a subprocess, not synchronising on time


async def test_servers_connection_options_before_command_reach_the_broker(
    mosquitto, topic_root, tmp_path
):
    feed = await spawn(
        [
            *(sys.executable, "-m", "mlthon", "feed"),
            *("--config", str(feed_config(tmp_path, mosquitto.port, topic_root))),
        ]
    )
    try:
        await _feed_heard(mosquitto.port, topic_root)
        before = await _mlthon(
            *("--port", str(mosquitto.port), "--root", topic_root, "servers", "--json")
        )
        after = await _mlthon(
            *("servers", "--json", "--port", str(mosquitto.port), "--root", topic_root)
        )
        assert before[0] == after[0] == 0, before[2] + after[2]
        assert [r["kind"] for r in json.loads(before[1])] == ["feed"]
        assert json.loads(before[1])[0]["pid"] == json.loads(after[1])[0]["pid"] == feed.pid
    finally:
        await stop(feed)


async def test_kill_default_quiet_log_level_after_command_shows_connected(
    mosquitto, topic_root, tmp_path
):
    bus = ("--port", str(mosquitto.port), "--root", topic_root)
    feed = await spawn(
        [
            *(sys.executable, "-m", "mlthon", "feed"),
            *("--config", str(feed_config(tmp_path, mosquitto.port, topic_root))),
        ]
    )
    try:
        await _feed_heard(mosquitto.port, topic_root)
        rc, out, err = await _mlthon("status", "--json", *bus, "--log-level", "INFO")
        assert rc == 0, err
        assert "connected to 127.0.0.1" in err  # INFO shows when asked for, after the command
        rc, out, err = await _mlthon("kill", "feed/Sim", "--no-signal", *bus)
        assert rc == 0, err
        assert out.strip() == "stopped: feed/Sim"
        assert err == ""  # no INFO "connected", no "Future exception was never retrieved"
        async with asyncio.timeout(30):
            assert await feed.wait() == 0
    finally:
        await stop(feed)


async def test_servers_unreachable_broker_one_clear_message_no_retry_warnings():
    rc, out, err = await _mlthon("servers", "--port", str(free_port()))
    assert rc == 3
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "no MQTT broker answered" in lines[0] and "mlthon broker --port" in lines[0]


async def test_cmd_unreachable_broker_quiet_flag_before_command_one_message():
    rc, _out, err = await _mlthon("-q", "cmd", "nobody", "status", "--port", str(free_port()))
    assert rc == 3
    assert len(err.strip().splitlines()) == 1, err


async def test_run_single_process_web_serves_the_status_page(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "mlthon", "run", "demo_strat/market_maker.toml"),
        *("--single-process", "--web", "0"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env_with(),
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        url = None
        async with asyncio.timeout(120):
            while url is None:
                line = (await proc.stdout.readline()).decode()
                assert line, "mlthon run ended before serving the page"
                found = re.search(r"status page on (http://\S+/)", line)
                url = found.group(1) if found else None
        page = await asyncio.to_thread(_get, url)
        assert "<html" in page.lower()
        metrics = await asyncio.to_thread(_get, url + "metrics")
        assert "mlthon" in metrics
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(60):
            await proc.wait()
        assert proc.returncode == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return str(resp.read().decode())


async def test_run_host_port_root_options_replace_the_files_bus(topic_root):
    """`mlthon run --port P --root R` starts its broker on P and every part on root R: the
    demo's file names neither (the default broker 1883, root mlt)."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "mlthon", "run", "demo_strat/market_maker.toml"),
        *("--port", str(port), "--root", topic_root),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env_with(),
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(150):
            while True:
                line = (await proc.stdout.readline()).decode()
                assert line, "mlthon run ended before trading"
                if "paper trading" in line:
                    break
        assert f"broker 127.0.0.1:{port}" in line
        wanted = {("strategy", "demo_mm"), ("gateway", "Sim"), ("control", "control")}
        async with asyncio.timeout(60):
            while True:  # the strategy announces itself once logged in
                rc, out, err = await _mlthon(
                    "status", "--json", "--port", str(port), "--root", topic_root
                )
                assert rc == 0, err
                kinds = {(c["kind"], c["name"]) for c in json.loads(out)["components"]}
                if wanted <= kinds:
                    break
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(90):
            await proc.wait()
        assert proc.returncode == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
