"""Throughput of the paper gateway over mosquitto, beside a bare aiomqtt echo in the same run.

It starts a mosquitto (:class:`~mlthon.infra.broker.MosquittoBroker`) and a real ``mlthon gateway``
process (the simulated exchange, journal on), then drives new + cancel pairs at fixed rates from
this process (the client: a plain aiomqtt connection, QoS 1 requests on the strategy's request
topic, as the env sends them). For each rate it prints the requests sent and answered per second,
the ack latency (NewOrder -> NewOrderAck/Reject, CancelOrder -> CancelOrderAck/Reject) p50 and p99,
the rejects by code, how many requests were still unanswered after a drain period, and the CPU
time the gateway process spent. Beside it, in the same run and at the same rates, a minimal aiomqtt
responder process answers each request with its own bytes: the baseline of the broker and the
client library alone.

Usage::

    python bench/bench_gateway.py                       # rates 1000, 5000, 20000 /s, 3 s each
    python bench/bench_gateway.py --rates 1000,5000 --seconds 5 --no-echo

A rate is order requests per second (half NewOrder, half CancelOrder). The pairs are sent in
bursts every millisecond (whatever is due by then).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

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


async def _drive(client: aiomqtt.Client, root: str, phase: Phase) -> None:
    """Send new + cancel pairs at ``phase.rate`` requests/s for ``phase.seconds``."""
    paho = client._client
    topic = f"{root}/gtw/Sim/req/{STRAT}"
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
            # straight to paho: awaiting aiomqtt's publish would wait for each PUBACK in turn
            paho.publish(topic, encode(new), 1)
            paho.publish(topic, encode(cancel), 1)
            i += 1
        phase.last_send = time.time_ns()
        await asyncio.sleep(0.001)


class _Answer(msgspec.Struct):
    """The few fields of a report the client needs (decoding the whole message, with its
    checks, would make the client the bottleneck)."""

    k: str
    cl_id: str = ""
    code: int = 0


_answer = msgspec.json.Decoder(_Answer)
_KIND = {"new_ack": "new", "new_rej": "new", "cancel_ack": "cancel", "cancel_rej": "cancel"}
_KIND.update({"new": "new", "cancel": "cancel"})  # the echo responder answers the request itself


def _on_report(phases: dict[str, Phase], payload: bytes) -> None:
    msg = _answer.decode(payload)
    kind = _KIND.get(msg.k)
    if kind is None:
        return
    phase = phases.get(msg.cl_id.rsplit("-", 1)[0])
    if phase is None:
        return
    phase.answer(kind, msg.cl_id, GtwRejectCode(msg.code).name if msg.code else None)


async def _measure(
    host: str, port: int, root: str, rates: list[int], seconds: float, drain_s: float
) -> list[Phase]:
    phases: dict[str, Phase] = {}
    done: list[Phase] = []
    async with aiomqtt.Client(
        host,
        port,
        identifier=f"bench-client-{os.getpid()}",
        max_queued_outgoing_messages=None,
        socket_options=NODELAY,
    ) as client:
        await client.subscribe(f"{root}/gtw/Sim/rpt/{STRAT}", qos=1)

        async def reader() -> None:
            async for m in client.messages:
                payload = m.payload
                if isinstance(payload, bytes | bytearray):
                    _on_report(phases, bytes(payload))

        rtask = asyncio.create_task(reader())
        try:
            for n, rate in enumerate(rates):
                phase = Phase(f"p{n}r{rate}", rate, seconds)
                phases[phase.name] = phase
                cpu0 = _cpu_s(_PEER_PID[0])
                mine0 = time.process_time()
                broker0 = _cpu_s(_PEER_PID[1])
                await _drive(client, root, phase)
                # drain: wait until everything is answered or nothing moved for a while
                last = -1
                deadline = time.monotonic() + drain_s
                while phase.sent and time.monotonic() < deadline:
                    if phase.answered != last:
                        last = phase.answered
                        deadline = max(deadline, time.monotonic() + 1.0)
                    await asyncio.sleep(0.05)
                phase.cpu_s = _cpu_s(_PEER_PID[0]) - cpu0
                phase.client_cpu_s = time.process_time() - mine0
                phase.broker_cpu_s = _cpu_s(_PEER_PID[1]) - broker0
                done.append(phase)
                await asyncio.sleep(0.5)
        finally:
            rtask.cancel()
    return done


_PEER_PID = [0, 0]  # the answering process, the broker


def _report(title: str, phases: list[Phase]) -> None:
    print(f"\n{title}")
    print(
        f"{'rate/s':>8} {'sent/s':>8} {'answered/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'unanswered':>10} {'cpu s':>6} {'client':>6} {'broker':>6}  rejects"
    )
    for p in phases:
        span = max(p.last_send - p.first_send, 1) / 1e9
        total = len(p.latency_ms) + len(p.sent)
        answer_span = max(p.last_answer - p.first_send, 1) / 1e9
        rejects = ", ".join(f"{k} {v}" for k, v in sorted(p.codes.items())) or "-"
        print(
            f"{p.rate:>8} {total / span:>8.0f} {len(p.latency_ms) / answer_span:>10.0f} "
            f"{_pct(p.latency_ms, 0.5):>8.2f} {_pct(p.latency_ms, 0.99):>8.2f} "
            f"{len(p.sent):>10} {p.cpu_s:>6.2f} {p.client_cpu_s:>6.2f} {p.broker_cpu_s:>6.2f}"
            f"  {rejects}"
        )


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


async def _echo_responder(host: str, port: int, root: str) -> None:
    """The baseline: answer every request with its own bytes on the report topic (QoS 1)."""
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


def main() -> int:
    p = argparse.ArgumentParser(
        prog="bench_gateway.py",
        description="Paper gateway (mlthon gateway, journal on) over mosquitto: new + cancel "
        "pairs at fixed rates; ack latency, rejects, unanswered requests and CPU, beside a bare "
        "aiomqtt echo responder at the same rates.",
    )
    p.add_argument(
        "--rates", default="1000,5000,20000", help="order requests per second, comma separated"
    )
    p.add_argument("--seconds", type=float, default=3.0, help="duration of each rate")
    p.add_argument("--drain", type=float, default=10.0, help="max wait for answers after a rate")
    p.add_argument("--no-echo", action="store_true", help="skip the aiomqtt echo baseline")
    p.add_argument("--no-gateway", action="store_true", help="skip the gateway")
    p.add_argument(
        "--profile", metavar="FILE", help="run the gateway under cProfile, stats to FILE"
    )
    p.add_argument(
        "--echo-responder", nargs=3, metavar=("HOST", "PORT", "ROOT"), help=argparse.SUPPRESS
    )
    args = p.parse_args()
    if args.echo_responder:
        host, port, root = args.echo_responder
        asyncio.run(_echo_responder(host, int(port), root))
        return 0
    rates = [int(r) for r in args.rates.split(",") if r]
    work = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    with MosquittoBroker() as broker:
        host, port = broker.host, broker.port
        assert broker.proc is not None
        _PEER_PID[1] = broker.proc.pid
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
                _PEER_PID[0] = gw.pid
                phases = asyncio.run(_measure(host, port, root, rates, args.seconds, args.drain))
            finally:
                _stop(gw)
            _report("mlthon gateway (SimGateway, journal on, MQTT QoS 1)", phases)
        if not args.no_echo:
            root = "benchecho"
            echo = _spawn(
                [str(Path(__file__).resolve()), "--echo-responder", host, str(port), root],
                work / "echo.log",
            )
            try:
                asyncio.run(_wait_echo(host, port, root))
                _PEER_PID[0] = echo.pid
                phases = asyncio.run(_measure(host, port, root, rates, args.seconds, args.drain))
            finally:
                _stop(echo)
            _report("bare aiomqtt echo responder (baseline, same broker, same rates)", phases)
    print(f"\nlogs: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
