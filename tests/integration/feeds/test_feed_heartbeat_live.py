"""A live venue feed (the Binance feed of `mlthon feed` with ``[source] kind = "live"``, against
the fake exchange, over mosquitto) heartbeats while the venue sends nothing, and stops when the
feed stops."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from mlthon.basics.mlt_enum import Exchange
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from tests.conftest import REPO, wait_until
from tests.fakes.venues.binance import FakeBinance

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_feed_heartbeat_live_feed_beats_while_the_venue_is_silent(
    mosquitto, topic_root, tmp_path: Path
):
    topics = Topics(topic_root)
    beats: list[tuple[float, m.FeedHeartbeat]] = []
    async with FakeBinance() as venue, MqttBus("127.0.0.1", mosquitto.port) as probe:
        await probe.wait_connected()
        probe.subscribe(
            topics.feed_heartbeat(Exchange.BinanceUsdm),
            lambda _t, x: beats.append((time.monotonic(), x)),
        )
        await probe.flush()
        cfg_path = tmp_path / "live.toml"
        cfg_path.write_text(
            'exchange = "BinanceUsdm"\nenvironment = "Testnet"\ninstrument_ids = [1001]\n'
            f'[source]\nkind = "live"\nws_url = "{venue.ws_url}"\nrest_url = "{venue.rest_url}"\n'
            "heartbeat_s = 0.4\n"
            f'[bus]\nhost = "127.0.0.1"\nport = {mosquitto.port}\ntopic_root = "{topic_root}"\n'
        )
        feed = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mlthon", "--log-level", "WARNING", "feed", "--config",
            str(cfg_path), cwd=REPO, stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await wait_until(lambda: len(venue.market_ws) == 1, 30, "the market connection")
            # Nothing is pushed by the venue: the heartbeats come all the same.
            await wait_until(lambda: len(beats) >= 6, 30, "six heartbeats")
            assert {b.limit_ms for _, b in beats} == {400}
            assert {b.ex for _, b in beats} == {Exchange.BinanceUsdm.value}
        finally:
            feed.terminate()
            await asyncio.wait_for(feed.wait(), 20)
        assert feed.returncode == 0
        stopped_at = time.monotonic()
        await probe.flush()
        count = len(beats)
        await asyncio.sleep(0.5)  # an observation window: a stopped feed sends none
        assert len(beats) == count, [t - stopped_at for t, _ in beats[count:]]
