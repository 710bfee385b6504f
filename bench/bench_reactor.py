"""Reactor and bus figures, each beside a baseline measured in the same run.

1. Callbacks/s through the in-process bus: BookUpdate batches -> env (book copy, exact values)
   -> a strategy's price-level callbacks; baseline: a bare loop that builds the same callback
   arguments and calls the same method. Target: within 3x of the baseline per event.
2. Round-trip time of an env request over mosquitto (env -> gateway -> env callback) at QoS 0
   and QoS 1, p50 and p99; baseline: a bare aiomqtt publish/echo between two clients.
   Target: within 1.5x of the baseline.

Run: python bench/bench_reactor.py [--events 200000] [--round-trips 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiomqtt

from mlthon.api import MDSub, Strategy
from mlthon.basics import Exchange, Price, Qty, Side
from mlthon.infra.broker import MosquittoBroker
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import LiveScheduler, SimScheduler
from mlthon.infra.config import parse_strategy_config
from mlthon.infra.control import ControlService
from mlthon.infra.env.strat_env import StratEnv
from mlthon.infra.reactor import Reactor

SIM = Exchange.Sim


class Counter(Strategy):
    def __init__(self) -> None:
        super().__init__("bench")
        self.n = 0
        self.ready = False

    def on_strat_params_update(self, strat_params: dict) -> None:
        self.ready = True

    def on_add_price_level(self, exchange, instrument_id, side, price, qty, recv_ts) -> None:
        self.n += 1

    def on_modify_price_level(self, exchange, instrument_id, side, price, new_qty, recv_ts):
        self.n += 1

    def on_delete_price_level(self, exchange, instrument_id, side, price, recv_ts) -> None:
        self.n += 1


def make_batches(n_events: int, batch: int) -> list[m.BookUpdate]:
    """A book of 50 levels a side, then modifies of those levels (the common case)."""
    out = []
    ch: list[tuple[int, int, str, str]] = []
    for i in range(50):
        ch.append((0, 1, f"{1000 - i}.0", "1.000"))
        ch.append((0, 2, f"{1001 + i}.0", "1.000"))
    out.append(m.BookUpdate(ex=SIM.value, iid=9001, ts=1, ch=ch))
    k = 0
    while k < n_events:
        ch = []
        for _ in range(batch):
            lvl = k % 50
            side = 1 if k % 2 else 2
            px = f"{1000 - lvl}.0" if side == 1 else f"{1001 + lvl}.0"
            ch.append((1, side, px, f"{1 + (k % 7)}.000"))
            k += 1
        out.append(m.BookUpdate(ex=SIM.value, iid=9001, ts=2 + k, ch=ch))
    return out


def bench_inproc(n_events: int, batch: int, repeats: int = 5) -> tuple[float, float]:
    """Best of ``repeats`` interleaved runs of ours and of the baseline (ns per event each)."""
    sched = SimScheduler()
    bus = InProcBus(sched)
    topics = Topics()
    cfg = parse_strategy_config(
        {"strategy": {"name": "bench", "class": "x:Y"}, "instruments": {"use": [9001]}}
    )
    ControlService(bus, sched, topics, [cfg]).start()
    strat = Counter()
    env = StratEnv(strat, bus, Reactor(sched), topics)
    sched.run_all()
    assert strat.ready
    env.subscribe(SIM, 9001, MDSub.PriceLevelBook)
    sched.run_all()
    batches = make_batches(n_events, batch)
    topic = topics.md(SIM, 9001)
    publish = bus.publish
    drain = sched.run_soon
    # Baseline: build the same callback arguments from the same tuples and call the method.
    base = Counter()
    cache_p = {s: Price(s) for b in batches for (_, _, s, _) in b.ch}
    cache_q = {s: Qty(s) for b in batches for (_, _, _, s) in b.ch}
    sides = {1: Side.Buy, 2: Side.Sell}
    best_ours = best_base = float("inf")
    for _ in range(repeats):
        strat.n = 0
        t0 = time.perf_counter()
        for b in batches:
            publish(topic, b)
            drain()
        best_ours = min(best_ours, (time.perf_counter() - t0) / strat.n)
        base.n = 0
        t0 = time.perf_counter()
        for b in batches:
            ts = b.ts
            for _a, side, ps, qs in b.ch:
                base.on_modify_price_level(SIM, 9001, sides[side], cache_p[ps], cache_q[qs], ts)
        best_base = min(best_base, (time.perf_counter() - t0) / base.n)
    return best_ours, best_base


async def bare_echo(port: int, qos: int, n: int) -> list[float]:
    sock = [(6, 1, 1)]  # IPPROTO_TCP, TCP_NODELAY, on
    async with (
        aiomqtt.Client("127.0.0.1", port, socket_options=sock) as a,
        aiomqtt.Client("127.0.0.1", port, socket_options=sock) as b,
    ):
        await a.subscribe("bench/pong", qos)
        await b.subscribe("bench/ping", qos)

        async def echo() -> None:
            async for msg in b.messages:
                await b.publish("bench/pong", msg.payload, qos=qos)

        task = asyncio.create_task(echo())
        payload = b'{"k":"f_account","v":1,"strat":"bench"}'
        rtts = []
        it = a.messages
        for _ in range(n):
            t0 = time.perf_counter()
            await a.publish("bench/ping", payload, qos=qos)
            await it.__anext__()
            rtts.append(time.perf_counter() - t0)
        task.cancel()
        # aiomqtt may swallow a cancellation racing with an acknowledgement: do not wait forever.
        await asyncio.wait({task}, timeout=1.0)
        return rtts


async def env_round_trip(port: int, qos: int, n: int) -> list[float]:
    """env.fetch_account_info -> gateway on another client -> on_account_info."""
    topics = Topics(f"bench{qos}")
    sched = LiveScheduler()
    cfg = parse_strategy_config(
        {"strategy": {"name": "bench", "class": "x:Y"}, "instruments": {"use": [9001]}}
    )
    done = asyncio.Event()
    rtts: list[float] = []

    class Pinger(Counter):
        def on_account_info(self, exchange, user_id) -> None:
            rtts.append(time.perf_counter() - self.t0)
            if len(rtts) >= n:
                done.set()
                return
            self.t0 = time.perf_counter()
            self.env.fetch_account_info(SIM)

    async with MqttBus("127.0.0.1", port) as sys_bus, MqttBus("127.0.0.1", port) as s_bus:
        await sys_bus.wait_connected()

        def on_req(topic, req) -> None:
            sys_bus.publish(topics.gtw_rpt(SIM, req.strat), m.AccountInfo(user_id="u"), qos=qos)

        sys_bus.subscribe(topics.gtw_req_all(SIM), on_req, qos=qos)
        sys_bus.publish(
            topics.gtw_status(SIM), m.GatewayStatus(exchange=SIM, status=1), qos=1, retain=True
        )
        ControlService(sys_bus, sched, topics, [cfg]).start()
        await sys_bus.flush()
        strat = Pinger()
        env = StratEnv(strat, s_bus, Reactor(sched), topics)
        while not strat.ready:
            await asyncio.sleep(0.01)
        # Requests go out at the chosen QoS: patch the env's publish for the bench only.
        orig = s_bus.publish
        s_bus.publish = lambda t, msg, qos_=qos, retain=False, **kw: orig(
            t,
            msg,
            qos=qos_,  # type: ignore[method-assign]
            retain=retain,
        )
        strat.t0 = time.perf_counter()
        env.fetch_account_info(SIM)
        await asyncio.wait_for(done.wait(), 120)
        sys_bus.publish(
            topics.gtw_status(SIM), m.GatewayStatus(exchange=SIM, status=1), qos=1, retain=True
        )
    return rtts


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


async def bench_mqtt(port: int, n: int) -> None:
    for qos in (0, 1):
        base = (await bare_echo(port, qos, n))[n // 10 :]
        ours = (await env_round_trip(port, qos, n))[n // 10 :]
        b50, b99 = statistics.median(base) * 1e6, pct(base, 0.99) * 1e6
        o50, o99 = statistics.median(ours) * 1e6, pct(ours, 0.99) * 1e6
        print(
            f"MQTT QoS {qos} round trip: env request p50 {o50:7.0f} us  p99 {o99:7.0f} us | "
            f"bare aiomqtt echo p50 {b50:7.0f} us  p99 {b99:7.0f} us | "
            f"ratio p50 {o50 / b50:.2f}x (target <= 1.5x)"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--round-trips", type=int, default=2000)
    a = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    ours, base = bench_inproc(a.events, a.batch)
    print(
        f"in-process dispatch (best of 5 interleaved runs): {1 / ours:,.0f} callbacks/s "
        f"({ours * 1e9:.0f} ns/event, "
        f"batches of {a.batch}) | baseline bare loop {1 / base:,.0f}/s ({base * 1e9:.0f} "
        f"ns/event) | ratio {ours / base:.2f}x (target <= 3x)"
    )
    with MosquittoBroker() as broker:
        asyncio.run(bench_mqtt(broker.port, a.round_trips))


if __name__ == "__main__":
    main()
