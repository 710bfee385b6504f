"""A feed-handler (or gateway) process killed with SIGKILL goes stale everywhere ops looks,
``on_feed_handler_status(Disconnected)``, and a restart brings it all back."""

from __future__ import annotations

import aiohttp
import pytest

from mlthon.basics.mlt_enum import Exchange, FeedHandlerStatus, GtwStatus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler
from mlthon.infra.ops.board import StatusBoard
from mlthon.infra.ops.heartbeat import FEED_LOST, GATEWAY_LOST
from mlthon.infra.ops.web import StatusWeb
from tests.conftest import wait_until
from tests.harness import mqtt_system
from tests.integration.ops.ops_helpers import feed_config, mlthon_argv, run_json, spawn, stop

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

HEARTBEAT_S = "0.5"


def _feed_state(snapshot: dict) -> str | None:
    for c in snapshot["components"]:
        if (c["kind"], c["name"]) == ("feed", "Sim"):
            return str(c["state"])
    return None


async def test_killed_feed_goes_stale_then_recovers(mosquitto, topic_root, tmp_path):
    port = mosquitto.port
    cfg = feed_config(tmp_path, port, topic_root)
    status_argv = mlthon_argv(
        "status", "--json", "--port", str(port), "--root", topic_root, "--settle", "0.5"
    )
    sched = LiveScheduler()
    async with mqtt_system(port, topic_root) as system:
        # The board runs where the control service runs: on the system's bus.
        board = StatusBoard(system.sys_bus, sched, Topics(topic_root), check_interval_s=0.1)
        board.start()
        web = StatusWeb(board, port=0)
        async with web, aiohttp.ClientSession(base_url=f"http://127.0.0.1:{web.port}") as http:

            async def web_state() -> str | None:
                async with http.get("/api/status") as r:
                    return _feed_state(await r.json())

            def feed_calls() -> list[tuple]:
                return [
                    a for a in system.strat.of("on_feed_handler_status") if a[0] is Exchange.Sim
                ]

            def feed_state() -> str:
                view = board.get("feed", "Sim")
                return view.state if view is not None else "unknown"

            await wait_until(lambda: system.env is not None and system.env.strat_name, 30, "login")
            feed = await spawn(
                mlthon_argv("feed", "--config", str(cfg)), MLTHON_HEARTBEAT_S=HEARTBEAT_S
            )
            try:
                await wait_until(lambda: feed_state() == "up", 30, "feed up")
                await wait_until(
                    lambda: (
                        system.env._feed_status.get(Exchange.Sim) is FeedHandlerStatus.SnapshotEnd
                    ),
                    30,
                    "strategy sees the feed streaming",
                )
                feed.kill()
                await feed.wait()
                # The broker publishes the feed's will: the strategy hears it at once.
                await wait_until(
                    lambda: any(c[1] is FeedHandlerStatus.Disconnected for c in feed_calls()),
                    30,
                    "on_feed_handler_status(Disconnected)",
                )
                lost = [c for c in feed_calls() if c[1] is FeedHandlerStatus.Disconnected][-1]
                assert lost[2] == FEED_LOST
                await wait_until(lambda: feed_state() == "stale", 30, "board: feed stale")
                assert await web_state() == "stale"
                assert _feed_state(await run_json(status_argv)) == "stale"
                n_calls = len(feed_calls())
            finally:
                await stop(feed)

            feed = await spawn(
                mlthon_argv("feed", "--config", str(cfg)), MLTHON_HEARTBEAT_S=HEARTBEAT_S
            )
            try:
                await wait_until(lambda: feed_state() == "up", 30, "feed back up")
                await wait_until(
                    lambda: any(
                        c[1] is FeedHandlerStatus.SnapshotEnd for c in feed_calls()[n_calls:]
                    ),
                    30,
                    "strategy sees the feed back",
                )
                assert await web_state() == "up"
                assert _feed_state(await run_json(status_argv)) == "up"
            finally:
                await stop(feed)
        board.stop(unsubscribe=False)  # the bus closes next: no UNSUBACK in flight


async def test_killed_gateway_tells_strategies_and_goes_stale(mosquitto, topic_root, tmp_path):
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(
        f'[gateway]\nexchange = "BinanceUsdm"\ninstruments = [1001]\nroot = "{topic_root}"\n'
        f'[bus]\nport = {mosquitto.port}\n[account]\nbalances = {{ USDT = "1000" }}\n',
        encoding="utf-8",
    )
    async with mqtt_system(mosquitto.port, topic_root) as system:
        board = StatusBoard(system.sys_bus, LiveScheduler(), Topics(topic_root))
        board.start()

        def gw() -> str:
            view = board.get("gateway", "BinanceUsdm")
            return view.state if view is not None and view.status is not None else "unknown"

        def gw_calls() -> list[tuple[object, ...]]:
            return [c for c in system.strat.of("on_gateway_status") if c[0] is Exchange.BinanceUsdm]

        await wait_until(lambda: system.env is not None and system.env.strat_name, 30, "login")
        proc = await spawn(mlthon_argv("gateway", "--config", str(cfg)), MLTHON_HEARTBEAT_S="0.5")
        try:
            await wait_until(lambda: gw() == "up", 30, "gateway up")
            await wait_until(
                lambda: "ReadyToTrade" in board.get("gateway", "BinanceUsdm").venue, 30, "ready"
            )
            proc.kill()
            await proc.wait()
            lost = (GtwStatus.Connecting, GATEWAY_LOST)
            await wait_until(lambda: lost in [c[1:] for c in gw_calls()], 30, "on_gateway_status")
            await wait_until(lambda: gw() == "stale", 30, "gateway stale")
        finally:
            await stop(proc)
        board.stop(unsubscribe=False)  # the bus closes next: no UNSUBACK in flight
