"""Live keep-up: the highest market-data rate a receiver process keeps up with over mosquitto.

In one run, on one mosquitto on loopback, four receiver processes run side by side, each on a
topic root of its own: for each event loop (uvloop, asyncio's, chosen by ``MLTHON_LOOP``,
:mod:`mlthon.infra.loop`)

* **bare**: a bare aiomqtt subscriber (the relay baseline): it receives each message, decodes it
  with mlthon's codec (what any consumer must do to read it) and notes its stamp;
* **strategy**: a real ``mlthon strategy`` process (with ``mlthon control`` to start it), whose
  no-op strategy (:class:`LagProbe`) subscribes to the book (``MDSub.PriceLevelBook``): every
  message goes through the bus, the env's book and one price-level callback per level;
* **baseline** (with ``--baseline TREE``): the same strategy process run from another copy of
  the code (a checkout or an unpacked snapshot of the code before a change), so that a change is
  measured before and after in one run, under the same load.

This process publishes ``BookUpdate`` messages (the feed's message format, made by the feed's own
decoder and engine from the Binance BTCUSDT capture, whose book deltas are cut into messages of
``--levels`` levels; stamped with the wall clock and numbered as the feed numbers them) on the
feed's market-data topic with mlthon's bus (QoS 0, as the feed does), for ``--seconds`` at each
rate, stepping the rate up; at each rate every receiver still in the race gets one step in turn
(the order alternates), so that all see the same load on the box. A step is kept up with when
the receiver got every message and its lag (receive time minus publish stamp) over the last tenth
of the step's messages is at most ``--lag-ms``: a receiver that falls behind sees its backlog,
hence its lag, grow through the step. A failed step is run once more (this box's load moves
single steps); a receiver that fails it again leaves the race, and the rate before is its rate.

Printed: every step (rate, lag p50/p99/end, loss, CPU time per message of the receiver, of
mosquitto and of the publisher), then the highest rates, strategy beside bare with the ratio,
uvloop beside asyncio, and the receivers' CPU time per message (at their highest rate and at the
highest rate all kept up with). Receiver pids are printed so that a step can be profiled from
outside (``py-spy record -p PID``; hold one rate with ``--rates R --seconds 30``).

``--read-path`` measures instead the MQTT receive path alone, in this process: paho's packet reads
as the bus drove them up to issue 17 beside the bus's own reader (one ``recv`` of up to 64 KiB,
packets cut by :class:`~mlthon.infra.bus.mqtt_packets.PacketReader`).

Run: python bench/bench_live.py [--rates 1000,2000,...] [--seconds 4] [--lag-ms 100]
     [--levels 20] [--loops uvloop,asyncio] [--receivers bare,strategy] [--rounds 1]
     [--baseline TREE]
     python bench/bench_live.py --read-path
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import itertools
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec

from mlthon.api import MDSub, Strategy
from mlthon.basics import Exchange
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.codec import decode
from mlthon.infra.bus.topics import Topics

SCRIPT = Path(__file__).resolve()
REPO = SCRIPT.parents[1]
EXCHANGE = Exchange.BinanceUsdm
IID = 1001  # BTCUSDT, the capture's instrument
STRAT = "bench"
OUT_ENV = "BENCH_LIVE_OUT"  # where a receiver appends its (publish stamp, receive time) pairs
FLUSH_S = 0.1  # how often a receiver appends its pairs to its file
DEFAULT_RATES = (
    "1000,2000,3000,4000,5000,6000,7000,8000,10000,12000,14000,16000,20000,24000,28000,32000"
)


# --- the receivers -------------------------------------------------------------------------------


class LagProbe(Strategy):
    """The strategy receiver: subscribed to the book, does nothing with it but note, once per
    message, its publish stamp (the callbacks' ``recv_ts``) and the wall time it got there."""

    def __init__(self) -> None:
        super().__init__(STRAT)
        self.pairs = array("q")
        self.last = 0
        self.out = os.environ[OUT_ENV]

    def on_start(self, params: str) -> None:
        self.env.subscribe(EXCHANGE, IID, MDSub.PriceLevelBook)
        self.env.setup_timer(int(FLUSH_S * 1000), self._flush)

    def _flush(self) -> bool:
        append_pairs(self.out, self.pairs)
        return True

    def _note(self, ts: int) -> None:
        self.last = ts
        self.pairs.append(ts)
        self.pairs.append(time.time_ns())

    def on_add_price_level(self, exchange, instrument_id, side, price, qty, recv_ts):
        if recv_ts != self.last:
            self._note(recv_ts)

    def on_modify_price_level(self, exchange, instrument_id, side, price, new_qty, recv_ts):
        if recv_ts != self.last:
            self._note(recv_ts)

    def on_delete_price_level(self, exchange, instrument_id, side, price, recv_ts):
        if recv_ts != self.last:
            self._note(recv_ts)


def append_pairs(out: str, pairs: array[int]) -> None:
    """Append a receiver's pairs to its file and forget them."""
    if pairs:
        with open(out, "ab") as f:
            pairs.tofile(f)
        del pairs[:]


def log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


async def bare_receiver(port: int, topic: str, out: str) -> None:
    """The bare receiver: aiomqtt subscriber, decode, note (publish stamp, receive time)."""
    import aiomqtt

    pairs = array("q")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def flush() -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            append_pairs(out, pairs)

    async def receive(client: aiomqtt.Client) -> None:
        now = time.time_ns
        async for message in client.messages:
            msg = decode(message.topic.value, message.payload)  # type: ignore[arg-type]
            pairs.append(msg.ts)
            pairs.append(now())

    nodelay = [(6, 1, 1)]  # IPPROTO_TCP, TCP_NODELAY
    async with aiomqtt.Client("127.0.0.1", port, socket_options=nodelay) as client:
        await client.subscribe(topic, 0)  # returns at the SUBACK
        print("ready", flush=True)
        tasks = [asyncio.create_task(flush()), asyncio.create_task(receive(client))]
        await stop.wait()
        for t in tasks:
            t.cancel()


# --- the messages --------------------------------------------------------------------------------


def book_messages(capture: Path, lines: int, levels: int) -> list[m.BookUpdate]:
    """The capture's book deltas, in order, cut into BookUpdates of ``levels`` levels (the feed's
    own decoder and engine make them)."""
    from mlthon.feeds.handler import FeedConfig, build_source
    from mlthon.infra.instruments import load_instruments

    excerpt = Path(tempfile.mkdtemp()) / "excerpt.gz"
    with gzip.open(capture, "rb") as src, gzip.open(excerpt, "wb") as dst:
        dst.writelines(itertools.islice(src, lines))
    cfg = FeedConfig(
        exchange=EXCHANGE,
        instruments=[i for i in load_instruments() if i.instrument_id == IID],
        source="replay",
        files=[excerpt],
    )
    books = [msg for msg in build_source(cfg) if type(msg) is m.BookUpdate]
    deltas = [d for msg in books for d in msg.ch]
    template = books[0]
    excerpt.unlink()
    excerpt.parent.rmdir()
    return [
        msgspec.structs.replace(template, ch=deltas[k : k + levels])
        for k in range(0, len(deltas) - levels + 1, levels)
    ]


# --- measuring -----------------------------------------------------------------------------------


def cpu_s(pid: int) -> float:
    """CPU time (user + system) of process ``pid`` so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PairsFile:
    """Reads what a receiver appended to its file since the last read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.stamps = array("q")  # publish stamps, in arrival order
        self.lags_ns = array("q")

    def read(self) -> int:
        """Take in the new pairs; return how many came."""
        if not self.path.exists():
            return 0
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        data = data[: len(data) - len(data) % 16]
        self.offset += len(data)
        pairs = array("q")
        pairs.frombytes(data)
        self.stamps.extend(pairs[0::2])
        self.lags_ns.extend(r - s for s, r in zip(pairs[0::2], pairs[1::2], strict=True))
        return len(pairs) // 2


class Step(msgspec.Struct):
    """One rate step's outcome."""

    rate: int
    sent: int
    achieved: float  # messages/s the publisher managed
    got: int
    lag_p50_ms: float
    lag_p99_ms: float
    lag_end_ms: float  # median over the last tenth of the step's messages
    cpu_us: float  # the receiver's CPU per message received
    broker_cpu_us: float
    pub_cpu_us: float
    ok: bool


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


class Publisher:
    """Publishes the messages, restamped, on the feed's topic with mlthon's bus (QoS 0)."""

    def __init__(self, bus: Any, topic: str, msgs: list[m.BookUpdate]) -> None:
        self.bus = bus
        self.topic = topic
        self.cycle: Iterator[m.BookUpdate] = itertools.cycle(msgs)
        self.seq = 0  # the feed's per-instrument counter: consecutive, from 1
        self.last_ts = 0

    async def run(self, rate: int, seconds: float) -> tuple[int, int, int, float]:
        """Publish ``rate`` messages/s for ``seconds``; return (sent, first stamp, last stamp,
        the rate achieved)."""
        loop = asyncio.get_running_loop()
        total = int(rate * seconds)
        publish = self.bus.publish
        replace = msgspec.structs.replace
        topic = self.topic
        sent = 0
        first = 0
        t0 = loop.time()
        while sent < total:
            due = min(total, int((loop.time() - t0) * rate) + 1, sent + 500)
            while sent < due:
                ts = max(time.time_ns(), self.last_ts + 1)
                self.last_ts = ts
                self.seq += 1
                publish(topic, replace(next(self.cycle), ts=ts, seq=self.seq), qos=0)
                sent += 1
                if not first:
                    first = ts
            # The bus writes on the loop's next turn; the pace is kept by the clock above (a
            # publisher behind it only yields).
            behind = int((loop.time() - t0) * rate) + 1 > sent
            await asyncio.sleep(0 if behind or sent >= total else 0.001)
        achieved = total / max(1e-9, loop.time() - t0)
        return sent, first, self.last_ts, achieved


async def run_step(
    pub: Publisher,
    receiver: PairsFile,
    pids: tuple[int, int],
    rate: int,
    seconds: float,
    lag_ms: float,
) -> Step:
    """One step at ``rate``: publish, wait until the receiver got everything (or stopped getting
    anything for 2 s), judge."""
    recv_pid, broker_pid = pids
    receiver.read()
    base = len(receiver.stamps)
    cpu0, bcpu0, pcpu0 = cpu_s(recv_pid), cpu_s(broker_pid), time.process_time()
    sent, first, last, achieved = await pub.run(rate, seconds)
    pcpu = time.process_time() - pcpu0
    idle_since = time.monotonic()
    deadline = idle_since + 60
    while time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        if receiver.read():
            idle_since = time.monotonic()
        got = sum(1 for s in receiver.stamps[base:] if first <= s <= last)
        if got >= sent or time.monotonic() - idle_since > 2.0:
            break
    cpu, bcpu = cpu_s(recv_pid) - cpu0, cpu_s(broker_pid) - bcpu0
    lags = [
        lag / 1e6
        for s, lag in zip(receiver.stamps[base:], receiver.lags_ns[base:], strict=True)
        if first <= s <= last
    ]
    got = len(lags)
    tail = lags[-max(1, got // 10) :]
    end = statistics.median(tail) if lags else float("inf")
    return Step(
        rate=rate,
        sent=sent,
        achieved=achieved,
        got=got,
        lag_p50_ms=quantile(lags, 0.5),
        lag_p99_ms=quantile(lags, 0.99),
        lag_end_ms=end,
        cpu_us=cpu / max(1, got) * 1e6,
        broker_cpu_us=bcpu / max(1, sent) * 1e6,
        pub_cpu_us=pcpu / max(1, sent) * 1e6,
        ok=got >= sent and end <= lag_ms,
    )


# --- the receive path alone ---------------------------------------------------------------------


def read_path_costs(n: int = 50_000, size: int = 584) -> None:
    """CPU time per incoming QoS 0 PUBLISH of ``size`` payload bytes, in this process, without a
    broker: (a) paho's ``loop_read`` on a socket as ``PahoLink`` drove it up to issue 17 (one
    packet per call, a peek after each), (b) the same with the socket's bytes served from memory
    (paho's parsing alone, no system calls), (c) the bus's own reader as ``PahoLink`` drives it
    now (one ``recv`` of up to 64 KiB, packets cut by ``PacketReader``). Each includes writing
    the packets into the socket. Reaches into paho's client (a bench only)."""
    import socket

    from paho.mqtt import client as paho
    from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

    topic = Topics("bl1").md(EXCHANGE, IID).encode()
    body = len(topic).to_bytes(2, "big") + topic + b"x" * size
    length, rest = bytearray(), len(body)
    while True:
        rest, digit = divmod(rest, 128)
        length.append(digit | (128 if rest else 0))
        if not rest:
            break
    packet = b"\x30" + bytes(length) + body
    batch = 200
    peek = socket.MSG_PEEK | socket.MSG_DONTWAIT

    def pair() -> tuple[socket.socket, socket.socket]:
        a, b = socket.socketpair()
        a.setblocking(False)
        return a, b

    def client(count: list[int]) -> Any:
        c = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311, manual_ack=True)
        c.on_message = lambda _c, _u, _m: count.append(1)
        c._state = paho._ConnectionState.MQTT_CS_CONNECTED
        return c

    def paho_socket() -> float:
        a, b = pair()
        count: list[int] = []
        c = client(count)
        c._sock = a
        t0 = time.process_time()
        while len(count) < n:
            b.sendall(packet * batch)
            for _ in range(batch):
                if c.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
                try:
                    if not a.recv(1, peek):
                        break
                except BlockingIOError:
                    break
        dt = time.process_time() - t0
        c._sock = None
        a.close()
        b.close()
        return dt

    class Memory:
        def __init__(self, data: bytes) -> None:
            self.view = memoryview(data)
            self.pos = 0

        def recv(self, k: int) -> bytes:
            if self.pos >= len(self.view):
                raise BlockingIOError
            out = bytes(self.view[self.pos : self.pos + k])
            self.pos += len(out)
            return out

        def close(self) -> None:
            pass

    def paho_memory() -> float:
        count: list[int] = []
        c = client(count)
        c._sock = Memory(packet * n)
        t0 = time.process_time()
        while len(count) < n:
            c.loop_read()
        return time.process_time() - t0

    def link_reader() -> float:
        from mlthon.infra.bus.mqtt_packets import PacketReader
        from mlthon.infra.bus.paho_link import READ_SIZE

        a, b = pair()
        got = [0]

        def on_publish(topic: bytes, payload: bytes, *_: Any) -> None:
            got[0] += 1

        reader = PacketReader(on_publish, lambda *_: None)
        t0 = time.process_time()
        while got[0] < n:
            b.sendall(packet * batch)
            while True:  # as PahoLink._read: one recv per readable event
                try:
                    data = a.recv(READ_SIZE)
                except BlockingIOError:
                    break
                reader.feed(data)
        dt = time.process_time() - t0
        a.close()
        b.close()
        return dt

    print(f"receive path, {n:,} QoS 0 PUBLISH packets of {len(packet)} bytes, CPU per packet "
          "(best of 3):")  # fmt: skip
    for name, fn in (
        ("before: paho loop_read on a socket, a peek after each", paho_socket),
        ("paho loop_read, bytes from memory (no system calls)", paho_memory),
        ("now: one recv of up to 64 KiB, PacketReader", link_reader),
    ):
        print(f"  {name:58} {min(fn() for _ in range(3)) / n * 1e6:5.1f} us", flush=True)


# --- starting the receivers ----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def strategy_subscription(
    port: int, root: str, exchange: Exchange, strat: str
) -> AsyncIterator[Callable[[float], Awaitable[None]]]:
    """Watch for a strategy's market-data subscription: on ``env.subscribe`` the env subscribes
    to the book's topic, then asks the feed for a snapshot (``SnapshotRequest`` on the feed's
    request topic, after the SUBSCRIBE on the same connection, so the broker has the
    subscription when the request is seen). Enter before starting the strategy; await the
    yielded function (with a timeout in seconds) to wait for it.

    Raises:
        TimeoutError: (from the awaited function) no request came in time.
    """
    from mlthon.infra.bus.mqtt import MqttBus

    seen = asyncio.Event()
    echoed = asyncio.Event()
    probe = f"probe-{os.getpid()}"

    def on_request(topic: str, msg: Any) -> None:
        if isinstance(msg, m.SnapshotRequest):
            if msg.strat == strat:
                seen.set()
            elif msg.strat == probe:
                echoed.set()

    async with MqttBus("127.0.0.1", port) as bus:
        await bus.wait_connected()
        req = Topics(root).feed_req(exchange)
        bus.subscribe(req, on_request, qos=1)
        # Our own request coming back proves the watch is in place before the strategy starts.
        bus.publish(req, m.SnapshotRequest(ex=exchange.value, iid=0, strat=probe), qos=1)
        async with asyncio.timeout(30):
            await echoed.wait()

        async def wait(timeout_s: float) -> None:
            async with asyncio.timeout(timeout_s):
                await seen.wait()

        yield wait


async def spawn(*args: str, env: dict[str, str], log: Path, **kw: Any) -> Any:
    with log.open("ab") as err:
        return await asyncio.create_subprocess_exec(
            *args, env=env, stdin=subprocess.DEVNULL, stderr=err, **kw
        )


async def stop_all(procs: list[Any]) -> None:
    for p in procs:
        if p.returncode is None:
            p.terminate()
    for p in procs:
        try:
            async with asyncio.timeout(10):
                await p.wait()
        except TimeoutError:
            p.kill()
            await p.wait()


@contextlib.asynccontextmanager
async def bare_process(
    port: int, topic: str, out: Path, env: dict[str, str], log: Path
) -> AsyncIterator[int]:
    proc = await spawn(
        sys.executable,
        str(SCRIPT),
        "--role",
        "bare",
        "--port",
        str(port),
        "--topic",
        topic,
        "--out",
        str(out),
        env=env,
        log=log,
        stdout=subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            line = await proc.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"bare receiver did not start: {log_tail(log)}")
        yield proc.pid
    finally:
        await stop_all([proc])


@contextlib.asynccontextmanager
async def strategy_process(
    port: int, root: str, out: Path, env: dict[str, str], log: Path, tmp: Path, tree: Path
) -> AsyncIterator[int]:
    cfg = tmp / f"{root}.toml"
    cfg.write_text(
        f'[strategy]\nname = "{STRAT}"\nclass = "bench_live:LagProbe"\n'
        "start_wait_s = 0  # no gateway and no feed process here: nothing to wait for\n"
        f"[instruments]\nuse = [{IID}]\n"
        f'[bus]\nhost = "127.0.0.1"\nport = {port}\nroot = "{root}"\n'
    )
    mlthon = (sys.executable, "-m", "mlthon", "--log-level", "WARNING")
    bus_args = ("--port", str(port), "--root", root)
    procs = []
    try:
        async with strategy_subscription(port, root, EXCHANGE, STRAT) as subscribed:
            # run from ``tree`` (python -m puts the working folder first on the path)
            procs.append(
                await spawn(
                    *mlthon, "control", "--strategy", str(cfg), *bus_args, env=env, log=log,
                    cwd=tree,
                )
            )  # fmt: skip
            procs.append(await spawn(*mlthon, "strategy", str(cfg), env=env, log=log, cwd=tree))
            try:
                await subscribed(60)
            except TimeoutError:
                raise RuntimeError(f"the strategy did not subscribe: {log_tail(log)}") from None
        yield procs[1].pid
    finally:
        await stop_all(procs)


# --- the ladder ----------------------------------------------------------------------------------


class Receiver:
    """One receiver process under test (one loop, one kind), on a topic root of its own."""

    def __init__(
        self, loop_kind: str, kind: str, index: int, port: int, tmp: Path, tree: Path = REPO
    ) -> None:
        from mlthon.infra.loop import LOOP_ENV

        self.loop_kind = loop_kind
        self.kind = kind
        self.tree = tree  # where the strategy process's code comes from
        self.root = f"bl{index}"
        self.topic = Topics(self.root).md(EXCHANGE, IID)
        self.out = tmp / f"{self.root}.pairs"
        self.log = tmp / f"{self.root}.log"
        self.port = port
        self.tmp = tmp
        self.env = {
            **os.environ,
            LOOP_ENV: loop_kind,
            OUT_ENV: str(self.out),
            "PYTHONPATH": os.pathsep.join([str(tree / "bench"), str(tree)]),
        }
        self.pairs = PairsFile(self.out)
        self.steps: list[Step] = []
        self.active = True
        self.pid = 0
        self.publisher: Publisher | None = None

    @property
    def name(self) -> str:
        return f"{self.loop_kind} {self.kind}"

    def start(self) -> contextlib.AbstractAsyncContextManager[int]:
        if self.kind == "bare":
            return bare_process(self.port, self.topic, self.out, self.env, self.log)
        return strategy_process(
            self.port, self.root, self.out, self.env, self.log, self.tmp, self.tree
        )


async def ladders(
    receivers: list[Receiver],
    *,
    bus: Any,
    broker_pid: int,
    msgs: list[m.BookUpdate],
    rates: list[int],
    seconds: float,
    lag_ms: float,
) -> None:
    """Step the rate up for every receiver at once: at each rate, one step per receiver still
    keeping up, in turn (alternating the order), so that all see the same load on the box. A
    receiver drops out after a failed step confirmed by a second one."""
    for r in receivers:
        r.publisher = Publisher(bus, r.topic, msgs)
        r.active = True
    for k, rate in enumerate(rates):
        active = [r for r in receivers if r.active]
        if not active:
            return
        for r in active if k % 2 == 0 else reversed(active):
            assert r.publisher is not None
            pids = (r.pid, broker_pid)
            step = await run_step(r.publisher, r.pairs, pids, rate, seconds, lag_ms)
            if not step.ok:  # confirm: one step can fail on a load spike
                print_step(r.name, step, note="(trying again)")
                step = await run_step(r.publisher, r.pairs, pids, rate, seconds, lag_ms)
            print_step(r.name, step)
            r.steps.append(step)
            r.active = step.ok
            if step.achieved < 0.97 * rate:
                print(f"  the publisher managed only {step.achieved:,.0f}/s: stopping here")
                return


def print_step(name: str, s: Step, note: str = "") -> None:
    verdict = "kept up" if s.ok else "FELL BEHIND"
    print(
        f"  {name:16} {s.rate:>7,}/s  got {s.got:,}/{s.sent:,}  lag p50 {s.lag_p50_ms:7.1f} p99 "
        f"{s.lag_p99_ms:7.1f} end {s.lag_end_ms:7.1f} ms  CPU/msg {s.cpu_us:5.1f} us "
        f"(mosquitto {s.broker_cpu_us:4.1f}, publisher {s.pub_cpu_us:4.1f})  {verdict} {note}",
        flush=True,
    )


async def coordinate(a: argparse.Namespace) -> None:
    from bench_pipeline import CAPTURE

    from mlthon.infra.broker import MosquittoBroker
    from mlthon.infra.bus.mqtt import MqttBus
    from mlthon.infra.loop import choose_loop

    capture = a.capture or CAPTURE
    msgs = book_messages(capture, a.lines, a.levels)
    rates = [int(r) for r in a.rates.split(",")]
    loops = a.loops.split(",")
    if "uvloop" in loops and choose_loop({}).name != "uvloop":
        print("uvloop is not installed (pip install 'mlthon[fast]'): asyncio only")
        loops = [k for k in loops if k != "uvloop"]
    kinds = a.receivers.split(",")
    trees = dict.fromkeys(kinds, REPO)
    if a.baseline is not None:
        kinds.append("baseline")
        trees["baseline"] = a.baseline.resolve()
    size = statistics.mean(len(msgspec.json.encode(x)) for x in msgs[:1000])
    print(
        f"{len(msgs):,} BookUpdates of {a.levels} levels ({size:,.0f} bytes) from {capture.name}; "
        f"steps of {a.seconds:g} s; kept up = every message and lag at the end <= {a.lag_ms:g} "
        f"ms; publisher on {choose_loop().describe().split(': ', 1)[1]}; load "
        f"{os.getloadavg()[0]:.1f}",
        flush=True,
    )
    with MosquittoBroker() as broker, tempfile.TemporaryDirectory() as tmpdir:
        assert broker.proc is not None
        tmp = Path(tmpdir)
        receivers = [
            Receiver(lk, kind, k, broker.port, tmp, trees[kind])
            for k, (lk, kind) in enumerate((lk, kind) for lk in loops for kind in kinds)
        ]
        async with contextlib.AsyncExitStack() as stack:
            for r in receivers:
                r.pid = await stack.enter_async_context(r.start())
                print(f"  {r.name}: pid {r.pid}", flush=True)
            bus = await stack.enter_async_context(MqttBus("127.0.0.1", broker.port))
            await bus.wait_connected()
            for rnd in range(a.rounds):
                if a.rounds > 1:
                    print(f"round {rnd + 1}", flush=True)
                await ladders(
                    receivers,
                    bus=bus,
                    broker_pid=broker.proc.pid,
                    msgs=msgs,
                    rates=rates,
                    seconds=a.seconds,
                    lag_ms=a.lag_ms,
                )
    print_summary(receivers, loops, kinds, rates, a.rounds, os.getloadavg()[0])


def print_summary(
    receivers: list[Receiver],
    loops: list[str],
    kinds: list[str],
    rates: list[int],
    rounds: int,
    load: float,
) -> None:
    by = {(r.loop_kind, r.kind): r for r in receivers}

    def top(loop_kind: str, kind: str) -> Step | None:
        r = by.get((loop_kind, kind))
        kept = [s for s in r.steps if s.ok] if r else []
        return max(kept, key=lambda s: s.rate) if kept else None

    def rate_text(s: Step | None) -> str:
        if s is None:
            return "none"
        return f"{s.rate:,}/s" + ("+" if s.rate == rates[-1] else "")

    def cpu_at(loop_kind: str, kind: str, rate: int) -> str:
        r = by.get((loop_kind, kind))
        cpus = [s.cpu_us for s in (r.steps if r else []) if s.rate == rate and s.ok]
        return f"{min(cpus):.0f} us" if cpus else "-"

    tops = [top(lk, kind) for lk in loops for kind in kinds]
    common = min((s.rate for s in tops if s is not None), default=0)
    print(
        f"\nhighest rate kept up with (best of {rounds} round{'s' * (rounds > 1)}; + = the "
        f"highest rate tried), beside the bare aiomqtt relay on the same loop; CPU time per "
        f"message at that rate and at {common:,}/s, the highest rate all kept up with (load at "
        f"the end {load:.1f}):"
    )
    at = f"CPU at {common:,}/s"
    print(
        f"  {'loop':8} {'receiver':10} {'kept up with':>13} {'/ bare':>7} {'CPU/msg':>8} {at:>16}"
    )
    for lk in loops:
        bare = top(lk, "bare")
        for kind in kinds:
            s = top(lk, kind)
            ratio = f"{s.rate / bare.rate:.2f}" if bare and s else "-"
            cpu = f"{s.cpu_us:.0f} us" if s else "-"
            print(
                f"  {lk:8} {kind:10} {rate_text(s):>13} {ratio:>7} {cpu:>8} "
                f"{cpu_at(lk, kind, common):>16}"
            )
    if len(loops) == 2:
        for kind in kinds:
            u, x = top(loops[0], kind), top(loops[1], kind)
            if u and x:
                print(f"  {kind}: {loops[0]} / {loops[1]} = {u.rate / x.rate:.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="bench_live.py",
        description="The highest market-data rate a bare aiomqtt subscriber and a real strategy "
        "process keep up with over mosquitto, with uvloop and asyncio, in one run.",
    )
    ap.add_argument("--rates", default=DEFAULT_RATES, help="messages/s to step through")
    ap.add_argument("--seconds", type=float, default=4.0, help="length of a step (default 4)")
    ap.add_argument(
        "--lag-ms",
        type=float,
        default=100.0,
        help="most lag at the end of a step that counts as kept up (default 100)",
    )
    ap.add_argument("--levels", type=int, default=20, help="levels per BookUpdate (default 20)")
    ap.add_argument("--lines", type=int, default=40_000, help="capture lines to cut messages from")
    ap.add_argument("--capture", type=Path, default=None, help="a Binance USD-M capture")
    ap.add_argument("--loops", default="uvloop,asyncio", help="loops to measure the receivers on")
    ap.add_argument("--receivers", default="bare,strategy", help="bare, strategy or both")
    ap.add_argument("--rounds", type=int, default=1, help="ladders per configuration")
    ap.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="also run the strategy receiver from this copy of the code (before a change)",
    )
    ap.add_argument(
        "--read-path",
        action="store_true",
        help="only measure the MQTT receive path in this process (paho against a buffered read)",
    )
    ap.add_argument("--role", choices=["bare"], help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--topic", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    from mlthon.infra.loop import run_process

    logging.basicConfig(level=logging.WARNING)
    if a.role == "bare":
        run_process(bare_receiver(a.port, a.topic, a.out))
    elif a.read_path:
        read_path_costs()
    else:
        run_process(coordinate(a))
    return 0


if __name__ == "__main__":
    sys.exit(main())
