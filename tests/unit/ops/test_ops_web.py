"""StatusWeb on loopback: the page, the JSON, live updates (SSE), /metrics and kill's auth."""

from __future__ import annotations

import json

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlthon.infra.bus import messages as m
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from mlthon.infra.ops.board import StatusBoard
from mlthon.infra.ops.heartbeat import Heartbeat, Stats
from mlthon.infra.ops.metering import LatencyHistogram
from mlthon.infra.ops.shutdown import shutdown_topic
from mlthon.infra.ops.web import StatusWeb
from tests.conftest import wait_until


@pytest.fixture
async def world():
    sched = LiveScheduler()
    bus = InProcBus(sched)
    topics = Topics("w")
    board = StatusBoard(bus, sched, topics)
    board.start()
    web = StatusWeb(board, port=0, token="s3cret", min_push_interval_s=0.01)
    async with web, aiohttp.ClientSession(base_url=f"http://127.0.0.1:{web.port}") as http:
        yield bus, sched, topics, board, http
    board.stop()


def _latency() -> dict:
    h = LatencyHistogram()
    h.observe("cb:on_tick", 0.3)
    h.observe("cb:on_tick", 7.0)
    return h.to_wire()


async def test_web_page_and_status_json(world):
    bus, sched, topics, board, http = world
    Heartbeat(bus, sched, topics, name="Sim", kind="gateway").start()
    await wait_until(lambda: board.get("gateway", "Sim") is not None)
    async with http.get("/") as r:
        assert r.status == 200 and "EventSource" in await r.text()
    async with http.get("/api/status") as r:
        snap = await r.json()
    assert snap["components"][0]["name"] == "Sim" and snap["components"][0]["state"] == "up"


async def test_web_events_stream_pushes_status_changes(world):
    bus, sched, topics, _board, http = world
    hb = Heartbeat(bus, sched, topics, name="BinanceUsdm", kind="feed")
    hb.start()
    async with http.get("/events") as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")

        async def next_snapshot() -> dict:
            while True:
                line = (await r.content.readline()).decode()
                if line.startswith("data: "):
                    return json.loads(line[6:])

        first = await next_snapshot()
        hb.set_state("degraded", "venue slow")
        while True:
            snap = await next_snapshot()
            states = {c["name"]: c["state"] for c in snap["components"]}
            if states.get("BinanceUsdm") == "degraded":
                break
    assert first["ts"] < snap["ts"]


async def test_web_metrics_scrape_parses(world):
    bus, sched, topics, board, http = world
    stats = Stats(
        counters={"events": 120, "orders": 3, "rejects": 1, "fills": 2, "resyncs": 1},
        lag_ms=4.5,
        latency=_latency(),
        extra={
            "strategy": {"open_orders": 2, "pnl": "12.5", "positions": {"Sim:9001": {"qty": "-1"}}}
        },
    )
    Heartbeat(bus, sched, topics, name="s1", kind="strategy", stats=lambda: stats).start()
    await wait_until(lambda: board.get("strategy", "s1") is not None)
    async with http.get("/metrics") as r:
        assert r.status == 200
        text = await r.text()
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }

    def sample(name: str, **labels: str) -> float:
        return samples[(name, frozenset({"kind": "strategy", "name": "s1", **labels}.items()))]

    assert sample("mlthon_component_up") == 1.0
    assert sample("mlthon_events_total") == 120
    assert sample("mlthon_orders_total") == 3
    assert sample("mlthon_rejects_total") == 1
    assert sample("mlthon_fills_total") == 2
    assert sample("mlthon_book_resyncs_total") == 1
    assert sample("mlthon_bus_lag_milliseconds") == 4.5
    assert sample("mlthon_strategy_open_orders") == 2
    assert sample("mlthon_strategy_pnl") == 12.5
    assert sample("mlthon_strategy_position", instrument="Sim:9001") == -1
    assert sample("mlthon_callback_latency_seconds_count", callback="cb:on_tick") == 2
    assert sample("mlthon_callback_latency_seconds_bucket", callback="cb:on_tick", le="0.001") == 1
    assert sample("mlthon_callback_latency_seconds_bucket", callback="cb:on_tick", le="+Inf") == 2
    assert sample("mlthon_component_state", state="up") == 1.0


async def test_web_kill_needs_the_token(world):
    bus, _sched, topics, _board, http = world
    sent = []
    bus.subscribe(shutdown_topic(topics), lambda t, msg: sent.append(msg))
    async with http.post("/api/kill", json={"target": "feed/X"}) as r:
        assert r.status == 403
    headers = {"Authorization": "Bearer wrong"}
    async with http.post("/api/kill", json={"target": "feed/X"}, headers=headers) as r:
        assert r.status == 403
    headers = {"Authorization": "Bearer s3cret"}
    async with http.post("/api/kill", json={}, headers=headers) as r:
        assert r.status == 400
    async with http.post("/api/kill", json={"target": "feed/X"}, headers=headers) as r:
        assert r.status == 200
    await wait_until(lambda: sent)
    assert isinstance(sent[0], m.Shutdown) and sent[0].target == "feed/X"


async def test_web_without_token_is_read_only():
    sched = LiveScheduler()
    board = StatusBoard(InProcBus(sched), sched, Topics("w"))
    async with StatusWeb(board, port=0) as web, aiohttp.ClientSession() as http:
        headers = {"Authorization": "Bearer "}
        async with http.post(f"{web.url}api/kill", json={"target": "x"}, headers=headers) as r:
            assert r.status == 403
