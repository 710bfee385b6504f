"""The MQTT bus beside a bare aiomqtt client, over one private mosquitto, in the same run.

1. QoS 0 stream: a publisher sends N market-data messages (a ``BookUpdate`` of five deltas, as
   a feed does, a chunk per loop turn); a subscriber counts them. Messages/s from the first
   publish to the last receive, messages lost, and the process CPU time per message.
2. QoS 1 burst: N QoS 1 messages to a QoS 1 subscriber, until every one is received and every
   PUBACK came back (``flush``).
3. QoS 1 round trip: a requester publishes a QoS 1 request, a responder answers at QoS 1, the
   requester waits for the answer before the next one: p50 / p99.

Both sides run in this process (so CPU time covers publisher and subscriber; mosquitto runs
beside), on the loop every mlthon process runs on (:mod:`mlthon.infra.loop`: uvloop when
installed, ``MLTHON_LOOP`` chooses). Rounds interleave the clients so a busy machine hurts all
alike. With ``--baseline TREE`` the bus's rounds also run from another copy of the code (a
checkout or an unpacked snapshot from before a change), in a child process, interleaved with
the others: a change measured before and after in one run.

Run: python bench/bench_bus.py [--n 50000] [--n1 10000] [--rtt 2000] [--rounds 3]
     [--baseline TREE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
TREE_ENV = "BENCH_TREE"  # the copy of the code to import mlthon from (default: this one)
sys.path.insert(0, os.environ.get(TREE_ENV) or str(SCRIPT.parents[1]))

import aiomqtt

from mlthon.infra.broker import MosquittoBroker
from mlthon.infra.bus.codec import encode
from mlthon.infra.bus.messages import BookUpdate, NewOrder
from mlthon.infra.bus.mqtt import MqttBus

_NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
CHUNK = 500


def _book(i: int) -> BookUpdate:
    # (action, side, tick, lots): the wire's integer ticks and lots
    ch = [(1, i % 2, 600_001 + 10 * ((i + j) % 50), 4 * j + 5) for j in range(5)]
    return BookUpdate(ex=2, iid=1001, ts=1_700_000_000_000_000_000 + i, seq=i, ch=ch)


class Result:
    def __init__(self, name: str) -> None:
        self.name = name
        self.rate: list[float] = []
        self.cpu_us: list[float] = []
        self.lost: list[int] = []
        self.rate1: list[float] = []
        self.cpu1_us: list[float] = []
        self.rtt: list[float] = []


async def _wait(pred: Callable[[], bool], idle_s: float, progress: Callable[[], int]) -> None:
    """Until ``pred()``, or ``idle_s`` without progress."""
    last, t_last = progress(), time.perf_counter()
    while not pred():
        await asyncio.sleep(0.002)
        now = progress()
        if now != last:
            last, t_last = now, time.perf_counter()
        elif time.perf_counter() - t_last > idle_s:
            return


# --- the bus ------------------------------------------------------------------------------------


async def bus_round(port: int, n: int, n1: int, rtt: int, res: Result, tag: str) -> None:
    msgs = [_book(i) for i in range(n)]
    async with MqttBus("127.0.0.1", port) as pub, MqttBus("127.0.0.1", port) as sub:
        await pub.wait_connected()
        await sub.wait_connected()
        got = [0]
        got1 = [0]

        def on_md(_t: str, _m: Any) -> None:
            got[0] += 1

        def on_q1(_t: str, _m: Any) -> None:
            got1[0] += 1

        sub.subscribe(f"b/{tag}/md/#", on_md)
        sub.subscribe(f"b/{tag}/q1/#", on_q1, qos=1)
        await sub.flush()
        await asyncio.sleep(0.2)
        # 1. QoS 0 stream
        topic = f"b/{tag}/md/1001"
        c0, t0 = time.process_time(), time.perf_counter()
        for i in range(0, n, CHUNK):
            for m in msgs[i : i + CHUNK]:
                pub.publish(topic, m)
            await asyncio.sleep(0)
        await _wait(lambda: got[0] >= n, 2.0, lambda: got[0])
        t1, c1 = time.perf_counter(), time.process_time()
        res.rate.append(got[0] / (t1 - t0))
        res.cpu_us.append((c1 - c0) / max(got[0], 1) * 1e6)
        res.lost.append(n - got[0])
        # 2. QoS 1 burst
        topic = f"b/{tag}/q1/x"
        c0, t0 = time.process_time(), time.perf_counter()
        for i in range(0, n1, CHUNK):
            for m in msgs[i : i + CHUNK]:
                pub.publish(topic, m, qos=1)
            await asyncio.sleep(0)
        await _wait(lambda: got1[0] >= n1, 5.0, lambda: got1[0])
        await pub.flush(30.0)
        t1, c1 = time.perf_counter(), time.process_time()
        res.rate1.append(got1[0] / (t1 - t0))
        res.cpu1_us.append((c1 - c0) / max(got1[0], 1) * 1e6)
        # 3. QoS 1 round trip
        answer: asyncio.Future[None] | None = None

        def on_req(_t: str, m: Any) -> None:
            sub.publish(f"b/{tag}/rsp", m, qos=1)  # the request echoed as the answer

        def on_rsp(_t: str, _m: Any) -> None:
            if answer is not None and not answer.done():
                answer.set_result(None)

        sub.subscribe(f"b/{tag}/req", on_req, qos=1)
        pub.subscribe(f"b/{tag}/rsp", on_rsp, qos=1)
        await pub.flush()
        await sub.flush()
        await asyncio.sleep(0.2)
        loop = asyncio.get_running_loop()
        for i in range(rtt):
            answer = loop.create_future()
            t0 = time.perf_counter()
            pub.publish(f"b/{tag}/req", _order(i), qos=1)
            await asyncio.wait_for(answer, 10)
            res.rtt.append(time.perf_counter() - t0)


def _order(i: int) -> NewOrder:
    return NewOrder(
        strat="b", cl_id=f"c{i}", instrument_id=1001, side=1, price="60000.1", qty="1", ts=i
    )


# --- bare aiomqtt -------------------------------------------------------------------------------


def _client(port: int) -> aiomqtt.Client:
    client = aiomqtt.Client(
        "127.0.0.1", port, socket_options=_NODELAY, max_queued_outgoing_messages=None
    )
    client.pending_calls_threshold = 1 << 30  # no warning per QoS 1 publish of a burst
    return client


async def bare_round(port: int, n: int, n1: int, rtt: int, res: Result, tag: str) -> None:
    payloads = [encode(_book(i)) for i in range(n)]
    async with _client(port) as pub, _client(port) as sub, asyncio.TaskGroup() as tg:
        got = [0]
        got1 = [0]
        answer: list[asyncio.Future[None] | None] = [None]
        await sub.subscribe(f"c/{tag}/md/#")
        await sub.subscribe(f"c/{tag}/q1/#", qos=1)
        await sub.subscribe(f"c/{tag}/req", qos=1)
        await pub.subscribe(f"c/{tag}/rsp", qos=1)
        pending: set[asyncio.Task[None]] = set()

        def spawn(aw: Awaitable[None]) -> None:
            t = tg.create_task(aw)  # type: ignore[arg-type]
            pending.add(t)
            t.add_done_callback(pending.discard)

        async def read_sub() -> None:
            async for msg in sub.messages:
                t = msg.topic.value
                if "/md/" in t:
                    got[0] += 1
                elif "/q1/" in t:
                    got1[0] += 1
                else:
                    spawn(sub.publish(f"c/{tag}/rsp", msg.payload, qos=1))

        async def read_pub() -> None:
            async for _msg in pub.messages:
                fut = answer[0]
                if fut is not None and not fut.done():
                    fut.set_result(None)

        readers = [tg.create_task(read_sub()), tg.create_task(read_pub())]
        await asyncio.sleep(0.2)
        # 1. QoS 0 stream
        topic = f"c/{tag}/md/1001"
        c0, t0 = time.process_time(), time.perf_counter()
        for i in range(0, n, CHUNK):
            for p in payloads[i : i + CHUNK]:
                await pub.publish(topic, p)
            await asyncio.sleep(0)
        await _wait(lambda: got[0] >= n, 2.0, lambda: got[0])
        t1, c1 = time.perf_counter(), time.process_time()
        res.rate.append(got[0] / (t1 - t0))
        res.cpu_us.append((c1 - c0) / max(got[0], 1) * 1e6)
        res.lost.append(n - got[0])
        # 2. QoS 1 burst: each publish awaits its PUBACK in its own task, as a bus would
        topic = f"c/{tag}/q1/x"
        c0, t0 = time.process_time(), time.perf_counter()
        for i in range(0, n1, CHUNK):
            for p in payloads[i : i + CHUNK]:
                spawn(pub.publish(topic, p, qos=1, timeout=60))
            await asyncio.sleep(0)
        await _wait(lambda: got1[0] >= n1 and not pending, 5.0, lambda: got1[0] + len(pending))
        t1, c1 = time.perf_counter(), time.process_time()
        res.rate1.append(got1[0] / (t1 - t0))
        res.cpu1_us.append((c1 - c0) / max(got1[0], 1) * 1e6)
        # 3. QoS 1 round trip
        loop = asyncio.get_running_loop()
        for i in range(rtt):
            fut: asyncio.Future[None] = loop.create_future()
            answer[0] = fut
            t0 = time.perf_counter()
            spawn(pub.publish(f"c/{tag}/req", encode(_order(i)), qos=1))
            await asyncio.wait_for(fut, 10)
            res.rtt.append(time.perf_counter() - t0)
        await _wait(lambda: not pending, 5.0, lambda: len(pending))
        for r in readers:
            r.cancel()


def _report(res: Result) -> str:
    rtt = sorted(res.rtt)
    p50 = rtt[len(rtt) // 2] * 1e6
    p99 = rtt[int(len(rtt) * 0.99)] * 1e6
    return (
        f"{res.name:<14} QoS0 {statistics.median(res.rate):>9,.0f} msg/s "
        f"(cpu {statistics.median(res.cpu_us):5.1f} us/msg, lost {max(res.lost)}) | "
        f"QoS1 burst {statistics.median(res.rate1):>8,.0f} msg/s "
        f"(cpu {statistics.median(res.cpu1_us):5.1f} us/msg) | "
        f"QoS1 rtt p50 {p50:6.0f} us p99 {p99:6.0f} us"
    )


async def baseline_round(
    tree: Path, port: int, a: argparse.Namespace, res: Result, tag: str
) -> None:
    """One bus round run from ``tree``, in a child process; its figures added to ``res``."""
    args = ["--role", "bus", "--port", str(port), "--tag", tag]
    args += ["--n", str(a.n), "--n1", str(a.n1), "--rtt", str(a.rtt)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        *args,
        env={**os.environ, TREE_ENV: str(tree), "PYTHONPATH": str(tree)},
        cwd=tree,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"the baseline round failed ({proc.returncode})")
    got = json.loads(out.decode().strip().splitlines()[-1])
    for name in ("rate", "cpu_us", "lost", "rate1", "cpu1_us", "rtt"):
        getattr(res, name).extend(got[name])


async def one_bus_round(a: argparse.Namespace) -> None:
    """``--role bus``: one bus round against ``--port``; its figures as JSON on stdout."""
    res = Result("bus")
    await bus_round(a.port, a.n, a.n1, a.rtt, res, a.tag)
    print(json.dumps({k: v for k, v in vars(res).items() if k != "name"}), flush=True)


async def main_async(a: argparse.Namespace) -> None:
    from mlthon.infra.loop import choose_loop

    bus, bare = Result("MqttBus"), Result("bare aiomqtt")
    base = Result("MqttBus (base)")
    with MosquittoBroker() as broker:
        for r in range(a.rounds):
            await bus_round(broker.port, a.n, a.n1, a.rtt, bus, f"r{r}")
            if a.baseline is not None:
                await baseline_round(a.baseline.resolve(), broker.port, a, base, f"r{r}b")
            await bare_round(broker.port, a.n, a.n1, a.rtt, bare, f"r{r}")
    print(
        f"{a.rounds} rounds, median of rounds; QoS0 {a.n:,} msgs, QoS1 {a.n1:,} msgs, "
        f"{a.rtt:,} round trips; {choose_loop().describe()}; load {os.getloadavg()[0]:.1f}"
    )
    print(_report(bus))
    if a.baseline is not None:
        print(_report(base) + f"  [{a.baseline}]")
    print(_report(bare))


def main() -> None:
    from mlthon.infra.loop import run_process

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=50_000, help="QoS 0 messages per round")
    p.add_argument("--n1", type=int, default=10_000, help="QoS 1 messages per round")
    p.add_argument("--rtt", type=int, default=2_000, help="QoS 1 round trips per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--baseline", type=Path, default=None, help="also run the bus's rounds from this copy"
    )
    p.add_argument("--role", choices=["bus"], help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--tag", help=argparse.SUPPRESS)
    a = p.parse_args()
    run_process(one_bus_round(a) if a.role == "bus" else main_async(a))


if __name__ == "__main__":
    main()
