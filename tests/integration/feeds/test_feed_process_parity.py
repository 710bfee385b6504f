"""A strategy process gets the same market-data callbacks, in the same order, from a feed-handler
process over mosquitto as from the in-process replay of the same file."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import sys

import pytest

from mlthon.app.backtest import Backtest
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.instruments import load_instruments
from tests.conftest import REPO, wait_until
from tests.strategies.md_recorder import MdRecorder

pytestmark = pytest.mark.integration


async def test_feed_process_over_mosquitto_matches_in_process_replay(
    mosquitto, topic_root, shared_data, tmp_path
):
    capture = shared_data / "hftbacktest" / "binance_usdm_futures" / "btcusdt_20240808.gz"
    excerpt = tmp_path / "excerpt.gz"
    with gzip.open(capture, "rb") as src, gzip.open(excerpt, "wb") as dst:
        for i, line in enumerate(src):
            if i >= 4000:
                break
            dst.write(line)
    # In-process reference: the same production replay, the same env, no exchange.
    insts = [i for i in load_instruments() if i.instrument_id == 1001]
    ref = MdRecorder({"instrument_id": 1001})
    Backtest(ref, data=[excerpt], instruments=insts, name="mdrec", simulate_exchange=False).run()
    expected = json.loads(json.dumps(ref.calls))
    assert len(expected) > 5000
    # Over mosquitto: control + strategy processes, then the feed process as fast as it goes.
    (tmp_path / "feed.toml").write_text(
        f'exchange = "BinanceUsdm"\ninstrument_ids = [1001]\nspeed = "max"\n'
        f'[source]\nkind = "replay"\nfiles = ["{excerpt}"]\n'
        f'[bus]\nhost = "127.0.0.1"\nport = {mosquitto.port}\ntopic_root = "{topic_root}"\n'
    )
    (tmp_path / "s.toml").write_text(
        '[strategy]\nname = "mdrec"\nclass = "tests.strategies.md_recorder:MdRecorder"\n'
        "[params]\ninstrument_id = 1001\n[instruments]\nuse = [1001]\n"
        f'[bus]\nhost = "127.0.0.1"\nport = {mosquitto.port}\nroot = "{topic_root}"\n'
    )
    env = {
        **os.environ,
        "MDREC_OUT_FILE": str(tmp_path / "got.json"),
        "MDREC_READY_FILE": str(tmp_path / "ready"),
    }

    async def spawn(*args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mlthon",
            "--log-level",
            "WARNING",
            *args,
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )

    # The env sends its snapshot request (QoS 1) after the broker acknowledged its market-data
    # subscription: seeing the request means the strategy will receive everything.
    requests: list[object] = []
    probe = MqttBus("127.0.0.1", mosquitto.port)
    await probe.__aenter__()
    await probe.wait_connected()
    probe.subscribe(Topics(topic_root).feed_req_all(), lambda t, msg: requests.append(msg), qos=1)
    await probe.flush()
    control = await spawn(
        "control",
        "--strategy",
        str(tmp_path / "s.toml"),
        "--port",
        str(mosquitto.port),
        "--root",
        topic_root,
    )
    strat = await spawn("strategy", str(tmp_path / "s.toml"))
    feed = None
    try:
        await wait_until(lambda: requests, 30, "the strategy market-data subscription")
        feed = await spawn("feed", "--config", str(tmp_path / "feed.toml"))
        await asyncio.wait_for(feed.wait(), 60)
        await wait_until(lambda: (tmp_path / "got.json").exists(), 30, "the recorded calls")
    finally:
        await probe.close()
        for p in (feed, strat, control):
            if p is not None and p.returncode is None:
                p.terminate()
                await asyncio.wait_for(p.wait(), 20)
    got = json.loads((tmp_path / "got.json").read_text())
    # The process run also hears the feed's own start/stop statuses; the book is the same.
    strip = [c for c in got if c[0] != "status"]
    want = [c for c in expected if c[0] != "status"]
    assert strip == want
    assert [c for c in got if c[0] == "status"][-1] == ["status", "Disconnected"]
