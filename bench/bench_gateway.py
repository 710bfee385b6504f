"""Throughput of the paper gateway over mosquitto, beside bare echo responders in the same run.

It starts a mosquitto (:class:`~mlthon.infra.broker.MosquittoBroker`, the config ``mlthon broker``
writes) and a real ``mlthon gateway`` process (the simulated exchange, journal on), then drives
new + cancel pairs at fixed rates from this process: QoS 1 requests on the strategy's request
topic, as the env sends them, and the reports read back at QoS 1. For each rate it prints the
requests sent and answered per second, the ack latency (NewOrder -> NewOrderAck/Reject,
CancelOrder -> CancelOrderAck/Reject) p50 and p99, the rejects by code, how many requests were
still unanswered after a drain period, and the CPU time of the answering process, of the client
and of the broker (``us/req``: the answering process's CPU per request, less what it spends
when idle, measured for 2 s before the first rate).

Beside it, in the same run and at the same rates, the baselines answer each request with its own
bytes (QoS 1):

* ``aiomqtt``: a bare aiomqtt request/response responder (``async for`` over the messages,
  ``publish`` straight to aiomqtt's paho client, no wait per PUBACK);
* ``paho``: a bare paho-mqtt responder (paho's own ``loop_forever``): the floor of the broker
  and the MQTT library alone.

The client. By default it is :class:`WireClient`, a minimal MQTT 3.1.1 client on an asyncio
protocol (a few microseconds per message), so that the client is never the limit on a 2-core
machine where it shares the CPU with the broker and the process measured. ``--client aiomqtt``
drives the same load through aiomqtt instead (what this bench did first: past ~3,000 requests/s
aiomqtt's reader was the bottleneck, and the latencies it printed were its own queue).

Usage::

    python bench/bench_gateway.py                       # rates 1000, 5000, 20000 /s, 3 s each
    python bench/bench_gateway.py --rates 1000,5000 --seconds 5 --echo aiomqtt
    python bench/bench_gateway.py --rates 5000 --no-echo --profile /tmp/gw.prof
    python bench/bench_gateway.py --in-process 20000   # the gateway's own CPU, no MQTT

A rate is order requests per second (half NewOrder, half CancelOrder). The pairs are sent in
bursts every millisecond (whatever is due by then).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import msgspec

from mlthon.basics.mlt_enum import GtwRejectCode, Side
from mlthon.infra.broker import MosquittoBroker
from mlthon.infra.bus.codec import decode, encode
from mlthon.infra.bus.messages import CancelOrder, GatewayStatus, NewOrder

STRAT = "bench"
IID = 9001  # SIMUSDT, the packaged instrument of the Sim exchange
REPO = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]  # as the MQTT bus sets it


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


# --- a minimal MQTT 3.1.1 client (the load generator) --------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(s: str) -> bytes:
    b = s.encode()
    return struct.pack("!H", len(b)) + b


class WireClient(asyncio.Protocol):
    """Just enough MQTT 3.1.1 to publish QoS 1 requests and read QoS 1 answers, cheaply.

    CONNECT (clean session, no keepalive), one SUBSCRIBE, PUBLISH at QoS 1 (packet ids wrap at
    65,535; the broker acknowledges a publish as soon as it has it, so none is still in flight
    when its id comes back), PUBACK for every QoS 1 message read. ``on_publish(topic, payload)``
    is called for every message read. Not for production: no TLS, no reconnect, no resend.
    """

    def __init__(self, client_id: str, on_publish: Callable[[bytes, bytes], None]) -> None:
        self.client_id = client_id
        self.on_publish = on_publish
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.mid = 0
        self.acked = 0  # PUBACKs the broker sent for our publishes
        self.connack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.suback: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @classmethod
    async def connect(
        cls, host: str, port: int, client_id: str, on_publish: Callable[[bytes, bytes], None]
    ) -> WireClient:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(lambda: cls(client_id, on_publish), host, port)
        assert proto.transport is not None
        body = _utf8("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 0) + _utf8(client_id)
        proto.transport.write(b"\x10" + _varint(len(body)) + body)
        async with asyncio.timeout(10):
            await proto.connack
        return proto

    async def subscribe(self, pattern: str, qos: int) -> None:
        assert self.transport is not None
        body = struct.pack("!H", 1) + _utf8(pattern) + bytes([qos])
        self.transport.write(b"\x82" + _varint(len(body)) + body)
        async with asyncio.timeout(10):
            await self.suback

    def publish_header(self, topic: str) -> bytes:
        """The topic part of a QoS 1 PUBLISH (computed once per topic)."""
        return _utf8(topic)

    def publish(self, topic_part: bytes, payload: bytes) -> None:
        """Write one QoS 1 PUBLISH (``topic_part`` from :meth:`publish_header`)."""
        mid = self.mid = self.mid % 65535 + 1
        n = len(topic_part) + 2 + len(payload)
        assert self.transport is not None
        self.transport.write(b"\x32" + _varint(n) + topic_part + struct.pack("!H", mid) + payload)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.write(b"\xe0\x00")  # DISCONNECT
            self.transport.close()

    # --- asyncio.Protocol ---
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        for fut in (self.connack, self.suback):
            if not fut.done():
                fut.set_exception(ConnectionError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos = 0
        end = len(buf)
        acks = bytearray()
        while end - pos >= 2:
            head = buf[pos]
            # remaining length: 1 to 4 bytes of 7 bits, low first
            n = shift = 0
            i = pos + 1
            complete = False
            while i < end and i - pos <= 4:
                b = buf[i]
                i += 1
                n |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    complete = True
                    break
            if not complete or i + n > end:
                break
            kind = head & 0xF0
            if kind == 0x30:  # PUBLISH
                tlen = (buf[i] << 8) | buf[i + 1]
                topic = bytes(buf[i + 2 : i + 2 + tlen])
                j = i + 2 + tlen
                if head & 0x06:
                    acks += b"\x40\x02" + buf[j : j + 2]
                    j += 2
                self.on_publish(topic, bytes(buf[j : i + n]))
            elif kind == 0x40:  # PUBACK
                self.acked += 1
            elif kind == 0x20:  # CONNACK
                if buf[i + 1] != 0:
                    self.connack.set_exception(ConnectionError(f"CONNACK code {buf[i + 1]}"))
                else:
                    self.connack.set_result(None)
            elif kind == 0x90 and not self.suback.done():  # SUBACK
                self.suback.set_result(None)
            pos = i + n
        del buf[:pos]
        if acks and self.transport is not None:
            self.transport.write(bytes(acks))


# --- one run at one rate -------------------------------------------------------------------------


class Phase:
    """One run at one rate: what was sent and what came back."""

    def __init__(self, name: str, rate: int, seconds: float) -> None:
        self.name = name
        self.rate = rate
        self.seconds = seconds
        self.sent: dict[tuple[str, str], int] = {}  # (kind, cl_id) -> send ns
        self.latency_ms: list[float] = []
        self.codes: Counter[str] = Counter()
        self.answered = 0
        self.first_send = 0
        self.last_send = 0
        self.last_answer = 0
        self.cpu_s = 0.0  # of the process answering (gateway or echo)
        self.client_cpu_s = 0.0
        self.broker_cpu_s = 0.0
        self.requests = 0
        self.wall_s = 0.0  # from the first send to the end of the drain
        self.idle_cpu_s = 0.0  # what the answering process spends idle in that time

    def answer(self, kind: str, cl_id: str, code: str | None) -> None:
        t = self.sent.pop((kind, cl_id), None)
        if t is None:
            return
        now = time.time_ns()
        self.answered += 1
        self.last_answer = now
        self.latency_ms.append((now - t) / 1e6)
        if code is not None:
            self.codes[code] += 1


class _Answer(msgspec.Struct):
    """The few fields of a report the client needs (decoding the whole message, with its
    checks, would cost the client more than the answer is worth)."""

    k: str
    cl_id: str = ""
    code: int = 0


_answer = msgspec.json.Decoder(_Answer)
_KIND = {"new_ack": "new", "new_rej": "new", "cancel_ack": "cancel", "cancel_rej": "cancel"}
_KIND.update({"new": "new", "cancel": "cancel"})  # the echo responders answer the request itself


def _on_report(phases: dict[str, Phase], payload: bytes) -> None:
    msg = _answer.decode(payload)
    kind = _KIND.get(msg.k)
    if kind is None:
        return
    phase = phases.get(msg.cl_id.rsplit("-", 1)[0])
    if phase is None:
        return
    phase.answer(kind, msg.cl_id, GtwRejectCode(msg.code).name if msg.code else None)


async def _drive(publish: Callable[[bytes], None], phase: Phase) -> None:
    """Send new + cancel pairs at ``phase.rate`` requests/s for ``phase.seconds``."""
    pairs = int(phase.rate * phase.seconds) // 2
    per_ns = 2e9 / phase.rate  # one pair every per_ns
    start = time.time_ns()
    phase.first_send = start
    i = 0
    while i < pairs:
        due = min(pairs, int((time.time_ns() - start) / per_ns) + 1)
        while i < due:
            cl_id = f"{phase.name}-{i}"
            now = time.time_ns()
            new = NewOrder(
                strat=STRAT,
                cl_id=cl_id,
                instrument_id=IID,
                side=Side.Buy,
                price="90.00",
                qty="1",
                ts=now,
            )
            cancel = CancelOrder(strat=STRAT, cl_id=cl_id, instrument_id=IID, ts=now)
            phase.sent[("new", cl_id)] = now
            phase.sent[("cancel", cl_id)] = now
            publish(encode(new))
            publish(encode(cancel))
            i += 1
        phase.requests = 2 * i
        phase.last_send = time.time_ns()
        await asyncio.sleep(0.001)


class _Client:
    """The load generator's connection: :class:`WireClient` or aiomqtt."""

    def __init__(self, kind: str, host: str, port: int, root: str) -> None:
        self.kind = kind
        self.host = host
        self.port = port
        self.req_topic = f"{root}/gtw/Sim/req/{STRAT}"
        self.rpt_topic = f"{root}/gtw/Sim/rpt/{STRAT}"
        self.phases: dict[str, Phase] = {}
        self._wire: WireClient | None = None
        self._aio: aiomqtt.Client | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Callable[[bytes], None]:
        ident = f"bench-client-{os.getpid()}"
        if self.kind == "wire":
            wire = self._wire = await WireClient.connect(
                self.host, self.port, ident, lambda _t, p: _on_report(self.phases, p)
            )
            await wire.subscribe(self.rpt_topic, 1)
            topic_part = wire.publish_header(self.req_topic)
            return lambda payload: wire.publish(topic_part, payload)
        aio = self._aio = aiomqtt.Client(
            self.host,
            self.port,
            identifier=ident,
            max_queued_outgoing_messages=None,
            socket_options=NODELAY,
        )
        await aio.__aenter__()
        await aio.subscribe(self.rpt_topic, qos=1)

        async def reader() -> None:
            async for m in aio.messages:
                payload = m.payload
                if isinstance(payload, bytes | bytearray):
                    _on_report(self.phases, bytes(payload))

        self._reader = asyncio.create_task(reader())
        paho = aio._client  # straight to paho: aiomqtt's publish waits for each PUBACK in turn
        topic = self.req_topic
        return lambda payload: paho.publish(topic, payload, 1)  # type: ignore[no-any-return]

    async def __aexit__(self, *exc: object) -> None:
        if self._wire is not None:
            self._wire.close()
        if self._reader is not None:
            self._reader.cancel()
        if self._aio is not None:
            await self._aio.__aexit__(None, None, None)


async def _measure(
    client_kind: str,
    host: str,
    port: int,
    root: str,
    rates: list[int],
    seconds: float,
    drain_s: float,
    peer_pid: int,
    broker_pid: int,
) -> list[Phase]:
    done: list[Phase] = []
    client = _Client(client_kind, host, port, root)
    async with client as publish:
        # the answering process's CPU when idle (timers, keepalive), subtracted per request
        idle0, t0 = _cpu_s(peer_pid), time.monotonic()
        await asyncio.sleep(2.0)
        idle_rate = (_cpu_s(peer_pid) - idle0) / (time.monotonic() - t0)
        for n, rate in enumerate(rates):
            phase = Phase(f"p{n}r{rate}", rate, seconds)
            client.phases[phase.name] = phase
            cpu0 = _cpu_s(peer_pid)
            mine0 = time.process_time()
            broker0 = _cpu_s(broker_pid)
            t_start = time.monotonic()
            await _drive(publish, phase)
            # drain: wait until everything is answered or nothing moved for a while
            last = -1
            deadline = time.monotonic() + drain_s
            while phase.sent and time.monotonic() < deadline:
                if phase.answered != last:
                    last = phase.answered
                    deadline = max(deadline, time.monotonic() + 1.0)
                await asyncio.sleep(0.05)
            phase.cpu_s = _cpu_s(peer_pid) - cpu0
            phase.wall_s = time.monotonic() - t_start
            phase.idle_cpu_s = idle_rate * phase.wall_s
            phase.client_cpu_s = time.process_time() - mine0
            phase.broker_cpu_s = _cpu_s(broker_pid) - broker0
            done.append(phase)
            await asyncio.sleep(0.5)
    return done


def _report(title: str, phases: list[Phase]) -> None:
    print(f"\n{title}")
    print(
        f"{'rate/s':>8} {'sent/s':>8} {'answered/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'unanswered':>10} {'cpu s':>6} {'us/req':>6} {'client':>6} {'broker':>6}  rejects"
    )
    for p in phases:
        span = max(p.last_send - p.first_send, 1) / 1e9
        total = len(p.latency_ms) + len(p.sent)
        answer_span = max(p.last_answer - p.first_send, 1) / 1e9
        rejects = ", ".join(f"{k} {v}" for k, v in sorted(p.codes.items())) or "-"
        per_req = 1e6 * max(p.cpu_s - p.idle_cpu_s, 0.0) / max(p.requests, 1)
        print(
            f"{p.rate:>8} {total / span:>8.0f} {len(p.latency_ms) / answer_span:>10.0f} "
            f"{_pct(p.latency_ms, 0.5):>8.2f} {_pct(p.latency_ms, 0.99):>8.2f} "
            f"{len(p.sent):>10} {p.cpu_s:>6.2f} {per_req:>6.0f} {p.client_cpu_s:>6.2f} "
            f"{p.broker_cpu_s:>6.2f}  {rejects}"
        )


# --- the gateway's own work, without MQTT --------------------------------------------------------


def in_process(pairs: int, per_commit: int) -> float:
    """CPU microseconds per request of the gateway's own work: SimGateway with its journal on
    the in-process bus (no MQTT, no broker), new + cancel pairs, ``per_commit`` requests per
    group commit (a read batch)."""
    from decimal import Decimal

    from mlthon.basics.mlt_enum import Exchange
    from mlthon.gateways.journal import OrderJournal
    from mlthon.gateways.sim.config import SimGatewayConfig
    from mlthon.gateways.sim.gateway import SimGateway
    from mlthon.infra.bus.inproc import InProcBus
    from mlthon.infra.bus.topics import Topics
    from mlthon.infra.clock import SimClock, SimScheduler
    from mlthon.infra.instruments import load_instruments

    sched = SimScheduler(SimClock(time.time_ns()))
    bus = InProcBus(sched)
    topics = Topics("bench")
    config = SimGatewayConfig(
        exchange=Exchange.Sim,
        instrument_ids=(IID,),
        root="bench",
        balances={"USDT": Decimal("1000000000000")},
    )
    with tempfile.TemporaryDirectory() as tmp:
        journal = OrderJournal(Path(tmp) / "gateway.db")
        gateway = SimGateway(bus, sched, topics, config, load_instruments(), journal=journal)
        gateway.start()
        sched.run_until(sched.now_ns())
        req = topics.gtw_req(Exchange.Sim, STRAT)
        t0 = time.process_time()
        for i in range(pairs):
            now = sched.now_ns()
            cl_id = f"c{i}"
            new = NewOrder(
                strat=STRAT,
                cl_id=cl_id,
                instrument_id=IID,
                side=Side.Buy,
                price="90.00",
                qty="1",
                ts=now,
            )
            bus.publish(req, new, qos=1)
            bus.publish(req, CancelOrder(strat=STRAT, cl_id=cl_id, instrument_id=IID, ts=now))
            if (2 * i + 2) % per_commit == 0:
                sched.run_until(now + 1000)
        sched.run_until(sched.now_ns() + 10_000)
        spent = time.process_time() - t0
        journal.close()
    return 1e6 * spent / (2 * pairs)


# --- the answering processes ---------------------------------------------------------------------


def _gateway_config(workdir: Path, host: str, port: int) -> Path:
    cfg = workdir / "gateway.toml"
    cfg.write_text(
        "[gateway]\n"
        'exchange = "Sim"\n'
        f"instruments = [{IID}]\n"
        'journal = "gateway.db"\n'
        "[bus]\n"
        f'host = "{host}"\n'
        f"port = {port}\n"
        "[account]\n"
        'balances = { USDT = "1000000000000" }\n'
    )
    return cfg


async def _wait_ready(host: str, port: int, root: str, timeout_s: float = 30.0) -> None:
    async with aiomqtt.Client(host, port) as client:
        await client.subscribe(f"{root}/gtw/Sim/status", qos=1)
        async with asyncio.timeout(timeout_s):
            async for m in client.messages:
                payload = m.payload
                if not isinstance(payload, bytes | bytearray):
                    continue
                st = decode("status", bytes(payload))
                if isinstance(st, GatewayStatus) and st.status.name == "ReadyToTrade":
                    return


async def _aiomqtt_echo(host: str, port: int, root: str) -> None:
    """The aiomqtt baseline: answer every request with its own bytes on the report topic."""
    async with aiomqtt.Client(
        host,
        port,
        identifier=f"bench-echo-{os.getpid()}",
        max_queued_outgoing_messages=None,
        socket_options=NODELAY,
    ) as client:
        await client.subscribe(f"{root}/gtw/Sim/req/+", qos=1)
        await client.publish(f"{root}/echo/ready", b"1", qos=1, retain=True)
        paho = client._client
        async for m in client.messages:
            strat = m.topic.value.rsplit("/", 1)[1]
            payload = m.payload
            if isinstance(payload, bytes | bytearray):
                # straight to paho, as the MQTT bus's fast path does (no wait per PUBACK)
                paho.publish(f"{root}/gtw/Sim/rpt/{strat}", bytes(payload), 1)


def _paho_echo(host: str, port: int, root: str) -> None:
    """The paho baseline: paho's own network loop, answering in ``on_message``."""
    from paho.mqtt import client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-paho-echo-{os.getpid()}")
    c.max_inflight_messages_set(0)
    c.max_queued_messages_set(0)

    def on_socket_open(_c: Any, _u: Any, sock: Any) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def on_connect(client: Any, *_: Any) -> None:
        client.subscribe(f"{root}/gtw/Sim/req/+", qos=1)
        client.publish(f"{root}/echo/ready", b"1", qos=1, retain=True)

    def on_message(client: Any, _u: Any, m: Any) -> None:
        strat = m.topic.rsplit("/", 1)[1]
        client.publish(f"{root}/gtw/Sim/rpt/{strat}", m.payload, 1)

    c.on_socket_open = on_socket_open
    c.on_connect = on_connect
    c.on_message = on_message
    c.connect(host, port, 60)
    c.loop_forever()


async def _wait_echo(host: str, port: int, root: str) -> None:
    async with aiomqtt.Client(host, port) as client:
        await client.subscribe(f"{root}/echo/ready", qos=1)
        async with asyncio.timeout(30):
            async for _ in client.messages:
                return


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with open(log, "wb") as fh:
        return subprocess.Popen([sys.executable, *args], stdout=fh, stderr=fh, env=env, cwd=REPO)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> int:
    p = argparse.ArgumentParser(
        prog="bench_gateway.py",
        description="Paper gateway (mlthon gateway, journal on) over mosquitto: new + cancel "
        "pairs at fixed rates; ack latency, rejects, unanswered requests and CPU, beside bare "
        "aiomqtt and paho echo responders at the same rates.",
    )
    p.add_argument(
        "--rates", default="1000,5000,20000", help="order requests per second, comma separated"
    )
    p.add_argument("--seconds", type=float, default=3.0, help="duration of each rate")
    p.add_argument("--drain", type=float, default=10.0, help="max wait for answers after a rate")
    p.add_argument(
        "--echo",
        default="aiomqtt,paho",
        help="echo baselines to run after the gateway: aiomqtt, paho (comma separated)",
    )
    p.add_argument("--no-echo", action="store_true", help="skip the echo baselines")
    p.add_argument("--no-gateway", action="store_true", help="skip the gateway")
    p.add_argument(
        "--client",
        choices=("wire", "aiomqtt"),
        default="wire",
        help="the load generator: a minimal MQTT client (default) or aiomqtt",
    )
    p.add_argument(
        "--profile", metavar="FILE", help="run the gateway under cProfile, stats to FILE"
    )
    p.add_argument("--broker-conf", default="", help="extra mosquitto.conf lines (\\n-separated)")
    p.add_argument(
        "--in-process",
        type=int,
        metavar="PAIRS",
        help="only measure the gateway's own CPU per request (SimGateway and journal on the "
        "in-process bus, no MQTT) over PAIRS new + cancel pairs, 10 requests per commit",
    )
    p.add_argument(
        "--echo-responder",
        nargs=4,
        metavar=("KIND", "HOST", "PORT", "ROOT"),
        help=argparse.SUPPRESS,
    )
    args = p.parse_args()
    if args.echo_responder:
        kind, host, port, root = args.echo_responder
        if kind == "paho":
            _paho_echo(host, int(port), root)
        else:
            asyncio.run(_aiomqtt_echo(host, int(port), root))
        return 0
    if args.in_process:
        us = in_process(args.in_process, 10)
        print(f"SimGateway + journal, in process: {us:.1f} us CPU per request; {_load()}")
        return 0
    rates = [int(r) for r in args.rates.split(",") if r]
    echoes = [] if args.no_echo else [e for e in args.echo.split(",") if e]
    work = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    print(f"client: {args.client}; {_load()} at start")
    with MosquittoBroker(extra_conf=args.broker_conf.replace("\\n", "\n")) as broker:
        host, port = broker.host, broker.port
        assert broker.proc is not None
        broker_pid = broker.proc.pid
        if not args.no_gateway:
            root = "benchgw"
            cfg = _gateway_config(work, host, port)
            prof = ["-m", "cProfile", "-o", args.profile] if args.profile else []
            gw = _spawn(
                [
                    *prof,
                    "-m",
                    "mlthon",
                    "--log-level",
                    "WARNING",
                    "gateway",
                    "--config",
                    str(cfg),
                    "--root",
                    root,
                ],
                work / "gateway.log",
            )
            try:
                asyncio.run(_wait_ready(host, port, root))
                phases = asyncio.run(
                    _measure(
                        args.client,
                        host,
                        port,
                        root,
                        rates,
                        args.seconds,
                        args.drain,
                        gw.pid,
                        broker_pid,
                    )
                )
            finally:
                _stop(gw)
            _report(f"mlthon gateway (SimGateway, journal on, MQTT QoS 1); {_load()}", phases)
        for kind in echoes:
            root = f"bench{kind}"
            echo = _spawn(
                [str(Path(__file__).resolve()), "--echo-responder", kind, host, str(port), root],
                work / f"echo-{kind}.log",
            )
            try:
                asyncio.run(_wait_echo(host, port, root))
                phases = asyncio.run(
                    _measure(
                        args.client,
                        host,
                        port,
                        root,
                        rates,
                        args.seconds,
                        args.drain,
                        echo.pid,
                        broker_pid,
                    )
                )
            finally:
                _stop(echo)
            _report(f"bare {kind} echo responder (baseline, same broker); {_load()}", phases)
    print(f"\nlogs: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
