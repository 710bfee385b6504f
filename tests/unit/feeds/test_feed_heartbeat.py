"""Feed heartbeats: every limit/4 on the feed's own scheduler, whether or not the market moves,
with a limit from ``[source] heartbeat_s`` (default by source kind, validated)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
import pytest

from mlthon.basics.errors import ConfigError
from mlthon.basics.mlt_enum import Exchange
from mlthon.feeds.feed_config import load_feed_file
from mlthon.feeds.handler import run_feed
from mlthon.feeds.heartbeat import DEFAULT_HEARTBEAT_S, HeartbeatSender
from mlthon.feeds.live_cli import load_live_feed_config
from mlthon.feeds.synthetic import synthetic_market
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.messages import BookUpdate, FeedHeartbeat
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import NS_PER_S, LiveClock, LiveScheduler, SimClock, SimScheduler
from mlthon.infra.instruments import load_instruments
from tests.conftest import wait_until


def _load(path):
    feed = load_feed_file(path)
    assert feed.config is not None
    return feed.config


SIM = next(i for i in load_instruments() if i.instrument_id == 9001)
T0 = 1_700_000_000 * NS_PER_S


def test_feed_heartbeat_every_quarter_limit_on_its_scheduler_until_stopped():
    sched = SimScheduler(SimClock(T0))
    bus = InProcBus(sched)
    topics = Topics("t")
    got: list[tuple[str, Any]] = []
    bus.subscribe(topics.feed_heartbeat_all(), lambda t, x: got.append((t, x)))
    beats = HeartbeatSender(bus, sched, topics, 2.0, (Exchange.Sim,))
    beats.start()
    sched.run_until(T0 + 2 * NS_PER_S)
    assert [x.ts for _, x in got] == [T0 + k * NS_PER_S // 2 for k in range(5)]
    assert {t for t, _ in got} == {topics.feed_heartbeat(Exchange.Sim)}
    assert all(x == FeedHeartbeat(ex=Exchange.Sim.value, ts=x.ts, limit_ms=2000) for _, x in got)
    beats.stop()
    sched.run_until(T0 + 10 * NS_PER_S)
    assert len(got) == 5


async def test_feed_heartbeat_continues_while_the_market_is_quiet():
    """A replay with a 1.2 s hole between two messages, at recorded speed: the feed process is
    alive, so it heartbeats through the hole (a stale market is not a dead feed)."""
    sched = LiveScheduler()
    bus = InProcBus(sched)
    topics = Topics("t")
    beats: list[tuple[int, FeedHeartbeat]] = []
    md: list[int] = []
    clock = LiveClock()
    bus.subscribe(topics.feed_heartbeat_all(), lambda _t, x: beats.append((clock.now_ns(), x)))
    bus.subscribe(
        topics.md(Exchange.Sim, 9001),
        lambda _t, x: md.append(clock.now_ns()) if isinstance(x, BookUpdate) else None,
    )
    msgs = list(synthetic_market(SIM, seed=1, start_ns=T0, n_events=2))
    books = [x for x in msgs if isinstance(x, BookUpdate)]
    quiet = [books[0], msgspec.structs.replace(books[1], ts=books[0].ts + int(1.2 * NS_PER_S))]
    n = await run_feed(
        bus,
        topics,
        quiet,
        speed=1.0,
        stop=asyncio.Event(),
        clock=clock,
        exchange=Exchange.Sim,
        heartbeat_s=0.4,
    )
    assert n == 2
    await wait_until(lambda: len(md) == 2, what="the second message delivered")
    during = [x for at, x in beats if md[0] < at < md[1]]
    assert len(during) >= 8, len(during)  # 1.2 s / 0.1 s, less scheduling slack
    assert {x.limit_ms for _, x in beats} == {400}
    count = len(beats)
    await asyncio.sleep(0.3)
    assert len(beats) == count  # no heartbeat once the feed has ended


def _feed_toml(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "feed.toml"
    path.write_text(f'exchange = "Sim"\ninstrument_ids = [9001]\n[source]\n{source}\n')
    return path


@pytest.mark.parametrize("kind", ["synthetic", "replay"])
def test_feed_heartbeat_limit_defaults_by_source_kind(tmp_path, kind):
    files = 'files = ["x.gz"]\n' if kind == "replay" else ""
    cfg = _load(_feed_toml(tmp_path, f'kind = "{kind}"\n{files}'))
    assert cfg.heartbeat_s == DEFAULT_HEARTBEAT_S[kind]
    cfg = _load(_feed_toml(tmp_path, f'kind = "{kind}"\n{files}heartbeat_s = 0.5'))
    assert cfg.heartbeat_s == 0.5


@pytest.mark.parametrize("bad", ['"fast"', "0", "-1", "true"])
def test_feed_heartbeat_limit_is_validated(tmp_path, bad):
    with pytest.raises(ConfigError) as err:
        _load(_feed_toml(tmp_path, f'kind = "synthetic"\nheartbeat_s = {bad}'))
    assert "source.heartbeat_s" in str(err.value)


def test_live_feed_heartbeat_limit_default_and_validation(tmp_path):
    path = tmp_path / "live.toml"
    path.write_text('exchange = "BinanceUsdm"\n[source]\nkind = "live"\n')
    assert load_live_feed_config(path)["heartbeat_s"] == DEFAULT_HEARTBEAT_S["live"] == 5.0
    path.write_text('exchange = "BinanceUsdm"\n[source]\nkind = "live"\nheartbeat_s = 0\n')
    with pytest.raises(ConfigError, match="heartbeat_s"):
        load_live_feed_config(path)
