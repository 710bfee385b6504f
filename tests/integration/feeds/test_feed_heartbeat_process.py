"""A feed process (`mlthon feed`, over mosquitto) heartbeats every limit/4; frozen by SIGSTOP it
goes silent (what the strategies' watchdog detects), and heartbeats again after SIGCONT."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import pytest

from mlthon.basics.mlt_enum import Exchange
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from tests.conftest import REPO, wait_until

pytestmark = pytest.mark.integration
LIMIT_S = 0.8


async def test_feed_heartbeat_process_stops_when_frozen_and_resumes(
    mosquitto, topic_root, tmp_path
):
    cfg = tmp_path / "feed.toml"
    cfg.write_text(
        'exchange = "Sim"\ninstrument_ids = [9001]\nspeed = 1\n'
        f'[source]\nkind = "synthetic"\nduration_s = 3600\nheartbeat_s = {LIMIT_S}\n'
        f'[bus]\nhost = "127.0.0.1"\nport = {mosquitto.port}\ntopic_root = "{topic_root}"\n'
    )
    topics = Topics(topic_root)
    beats: list[tuple[float, m.FeedHeartbeat]] = []
    async with MqttBus("127.0.0.1", mosquitto.port) as bus:
        await bus.wait_connected()
        bus.subscribe(
            topics.feed_heartbeat(Exchange.Sim),
            lambda _t, x: beats.append((time.monotonic(), x)),
            qos=0,
        )
        await bus.flush()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mlthon", "--log-level", "WARNING", "feed", "--config", str(cfg),
            cwd=REPO, stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await wait_until(lambda: len(beats) >= 6, 30, "six heartbeats")
            hb = beats[-1][1]
            assert (hb.ex, hb.limit_ms) == (Exchange.Sim.value, 800)
            gaps = [b[0] - a[0] for a, b in zip(beats[-6:], beats[-5:], strict=False)]
            assert min(gaps) > 0.05 and sorted(gaps)[len(gaps) // 2] < 0.6, gaps
            os.kill(proc.pid, signal.SIGSTOP)
            frozen_at = time.monotonic()
            # Observe the frozen process for twice its limit (messages already in flight when
            # it stopped may still land during the first tenth of a second).
            await asyncio.sleep(2 * LIMIT_S)
            late = [t for t, _ in beats if t > frozen_at + 0.1]
            assert late == [], "a frozen feed process heartbeats"
            os.kill(proc.pid, signal.SIGCONT)
            count = len(beats)
            await wait_until(lambda: len(beats) >= count + 2, 30, "heartbeats after SIGCONT")
        finally:
            os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 20)
        assert proc.returncode == 0
