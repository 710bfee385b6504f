"""Entry points of ``mlthon status``, ``mlthon servers``, ``mlthon kill`` and ``mlthon doctor``.

Each takes the arguments after its command name and returns the exit code:

* ``status``: 0; 3 if the broker cannot be reached or refuses the login.
* ``servers``: 0; 3 if the broker cannot be reached or refuses the login.
* ``kill``: 0 once the target announced ``down`` (or its local pid got SIGTERM), 1 if it did not
  stop in time, 2 if nothing matches the target, 3 if the broker cannot be reached or refuses
  the login.
* ``doctor``: 0 if no check failed, 1 otherwise.

Each connects as every other bus client does (:func:`~mlthon.infra.security.bus_client_options`):
user ``mlthon-admin`` (``--user`` / ``$MLTHON_BUS_USERNAME``), the password of
``$MLTHON_BUS_PASSWORD``, ``--password-file`` or ``$MLTHON_BUS_PASSWORD_FILE``, TLS with
``--tls-ca`` / ``$MLTHON_BUS_TLS_CA``; a broker that refuses the login is reported as such.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from mlthon.basics.errors import ConfigError
from mlthon.infra.bus import messages as m
from mlthon.infra.clock import NS_PER_S, LiveClock
from mlthon.infra.config_schema import cli_number
from mlthon.infra.ops import doctor as dr
from mlthon.infra.ops.board import ComponentView, StatusBoard
from mlthon.infra.ops.collect import CREDENTIALS_HINT, BrokerRefused, BrokerUnreachable, watch
from mlthon.infra.ops.heartbeat import DOWN, STALE
from mlthon.infra.ops.shutdown import shutdown_topic, target_matches
from mlthon.infra.security import ADMIN_USER, add_bus_args, bus_client_options, client_options

_STYLE = {"up": "green", "degraded": "yellow", "down": "dim", "stale": "bold red"}


def _bus_args(p: argparse.ArgumentParser) -> None:
    add_bus_args(p)
    p.add_argument(
        "--settle",
        type=cli_number(0, 600, low_open=False),
        default=0.5,
        help="seconds to gather retained statuses (default 0.5)",
    )


def _parser(command: str, description: str, example: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog=f"mlthon {command}",
        description=description,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _when(ns: int) -> str:
    if not ns:
        return "-"
    return datetime.fromtimestamp(ns / NS_PER_S, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _fail_broker(exc: BrokerUnreachable | BrokerRefused) -> int:
    if isinstance(exc, BrokerRefused):
        print(f"{exc}; {CREDENTIALS_HINT}", file=sys.stderr)
    else:
        print(f"{exc}; is it running? (mlthon broker --port {exc.port})", file=sys.stderr)
    return 3


# --- status ------------------------------------------------------------------------------------


#: Below this console width the status table leaves out restarts, events/s and lag.
WIDE = 120


def status_table(board: StatusBoard, width: int = WIDE) -> Table:
    """The components as a rich table that fits ``width`` columns: each cell on one line (cut
    with an ellipsis rather than broken), the figures left out when narrow."""
    now = board.scheduler.now_ns()
    table = Table(title=f"mlthon components ({board.topics.root})", expand=True)
    wide = width >= WIDE
    for col in ("kind", "name", "state"):
        table.add_column(col, no_wrap=True, overflow="ellipsis")
    table.add_column("detail", overflow="ellipsis", no_wrap=True, ratio=1, min_width=8)
    for col in ("pid@host", "heard"):
        table.add_column(col, no_wrap=True, overflow="ellipsis")
    if wide:
        for col in ("restarts", "events/s", "lag ms"):
            table.add_column(col, no_wrap=True, justify="right")
    for v in board.sorted_views():
        st = v.status
        restarts = st.extra.get("restarts") if st else None
        row = [
            v.kind,
            v.name,
            f"[{_STYLE.get(v.state, '')}]{v.state}[/]",
            v.stale_reason
            if v.state == STALE
            else _risk_note(st)
            or (st.last_error if st and st.last_error else "")
            or (st.detail if st else v.venue),
            f"{st.pid}@{st.host}" if st else "-",
            f"{(now - v.heard_ns) / NS_PER_S:.1f}s ago" if v.heard_ns else "-",
        ]
        if wide:
            row += [
                "-" if restarts is None else str(restarts),
                f"{st.rates.get('events', 0.0):.1f}" if st else "-",
                f"{st.lag_ms:.1f}" if st else "-",
            ]
        table.add_row(*row)
    if not board.components:
        table.caption = "no component heard yet"
    elif not wide:
        table.caption = f"restarts, events/s and lag: a terminal of {WIDE}+ columns, or --json"
    return table


def status_main(argv: list[str]) -> int:
    """``mlthon status [--once] [--json] [--stale-after S]``: every component's status."""
    ap = _parser(
        "status",
        "Show every component: gateways, feeds, strategies, control, Telegram.",
        "mlthon status --once",
    )
    ap.add_argument("--once", action="store_true", help="print once and exit")
    ap.add_argument("--json", action="store_true", help="print the snapshot as JSON and exit")
    ap.add_argument(
        "--stale-after",
        type=cli_number(0, 86400),
        default=None,
        help="seconds of silence after which a component is stale (default: its heartbeat's)",
    )
    ap.add_argument(
        "--refresh",
        type=cli_number(0, 3600),
        default=0.5,
        help="live refresh period in seconds (default 0.5)",
    )
    _bus_args(ap)
    a = ap.parse_args(argv)
    try:
        return asyncio.run(_status(a))
    except (BrokerUnreachable, BrokerRefused) as exc:
        return _fail_broker(exc)
    except KeyboardInterrupt:
        return 0


async def _status(a: argparse.Namespace) -> int:
    async with watch(
        a.host,
        a.port,
        a.root,
        settle_s=a.settle,
        stale_after_s=a.stale_after,
        client_options=client_options(a),
    ) as board:
        if a.json:
            print(json.dumps(board.snapshot(), default=str))
            return 0
        console = Console()
        if a.once:
            console.print(status_table(board, console.width))
            return 0
        with Live(status_table(board, console.width), console=console, auto_refresh=False) as live:
            while True:
                await asyncio.sleep(a.refresh)
                board.check()
                live.update(status_table(board, console.width), refresh=True)


# --- servers -----------------------------------------------------------------------------------


def server_rows(board: StatusBoard) -> list[dict[str, Any]]:
    """The running (or stale) servers: name, kind, pid, host, state, since."""
    return [
        {
            "name": v.name,
            "kind": v.kind,
            "pid": v.status.pid,
            "host": v.status.host,
            "state": v.state,
            "since": v.status.since,
        }
        for v in board.sorted_views()
        if v.status is not None and v.state != DOWN
    ]


def servers_main(argv: list[str]) -> int:
    """``mlthon servers [--json]``: the running servers, as the control service of AATS lists
    its market and trade servers."""
    ap = _parser("servers", "List the running servers.", "mlthon servers --kind feed")
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument("--kind", help="only this kind (gateway, feed, strategy, control, telegram)")
    _bus_args(ap)
    a = ap.parse_args(argv)
    try:
        rows = asyncio.run(_servers(a))
    except (BrokerUnreachable, BrokerRefused) as exc:
        return _fail_broker(exc)
    if a.kind:
        rows = [r for r in rows if r["kind"] == a.kind]
    if a.json:
        print(json.dumps(rows))
        return 0
    table = Table(title="mlthon servers")
    for col in ("name", "kind", "pid", "host", "state", "since (UTC)"):
        table.add_column(col, no_wrap=True, overflow="ellipsis")
    for r in rows:
        table.add_row(r["name"], r["kind"], str(r["pid"]), r["host"], r["state"], _when(r["since"]))
    Console().print(table)
    return 0


async def _servers(a: argparse.Namespace) -> list[dict[str, Any]]:
    async with watch(
        a.host, a.port, a.root, settle_s=a.settle, client_options=client_options(a)
    ) as board:
        return server_rows(board)


# --- kill --------------------------------------------------------------------------------------


def find_targets(board: StatusBoard, target: str) -> list[ComponentView]:
    """The live components that ``target`` names (name, kind/name, pid or pid@host)."""
    return [
        v
        for v in board.sorted_views()
        if v.status is not None
        and v.state not in (DOWN,)
        and target_matches(target, [(v.kind, v.name)], v.status.pid, v.status.host)
    ]


def kill_main(argv: list[str]) -> int:
    """``mlthon kill <name|kind/name|pid> [--timeout S] [--reason TEXT]``: stop one server
    cleanly (a Shutdown on the bus; SIGTERM to a local pid if it does not answer)."""
    ap = _parser(
        "kill",
        "Stop one server cleanly: a shutdown on the bus, SIGTERM to a local pid if it does not "
        "answer.",
        "mlthon kill feed/Sim",
    )
    ap.add_argument("target", help="component name, kind/name, pid or pid@host")
    ap.add_argument(
        "--timeout",
        type=cli_number(0, 3600),
        default=10.0,
        help="seconds to wait for it to say it is down (default 10)",
    )
    ap.add_argument(
        "--reason", default="mlthon kill", help="why (logged by the target; default mlthon kill)"
    )
    ap.add_argument("--no-signal", action="store_true", help="never fall back to SIGTERM")
    _bus_args(ap)
    a = ap.parse_args(argv)
    try:
        return asyncio.run(_kill(a))
    except BrokerRefused as exc:
        return _fail_broker(exc)
    except BrokerUnreachable as exc:
        if a.target.isdigit() and not a.no_signal:
            return _sigterm(int(a.target))
        return _fail_broker(exc)


def _sigterm(pid: int) -> int:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        print(f"no process {pid}", file=sys.stderr)
        return 2
    except PermissionError:
        print(f"not allowed to signal process {pid}", file=sys.stderr)
        return 1
    print(f"SIGTERM sent to {pid}")
    return 0


async def _kill(a: argparse.Namespace) -> int:
    async with watch(
        a.host, a.port, a.root, settle_s=a.settle, client_options=client_options(a)
    ) as board:
        views = find_targets(board, a.target)
        if not views:
            if a.target.isdigit() and not a.no_signal:
                return _sigterm(int(a.target))
            print(f"no running server matches {a.target!r}", file=sys.stderr)
            return 2
        board.bus.publish(
            shutdown_topic(board.topics), m.Shutdown(target=a.target, reason=a.reason), qos=1
        )
        keys = [(v.kind, v.name) for v in views]
        clock = LiveClock()
        deadline = clock.now_ns() + int(a.timeout * NS_PER_S)
        while clock.now_ns() < deadline:
            if all(board.components[k].state in (DOWN, STALE) for k in keys):
                print("stopped: " + ", ".join(f"{k}/{n}" for k, n in keys))
                return 0
            await asyncio.sleep(0.05)
        here = socket.gethostname()
        local = [v.status.pid for v in views if v.status is not None and v.status.host == here]
        if local and not a.no_signal:
            print(f"no clean stop within {a.timeout}s; sending SIGTERM", file=sys.stderr)
            return max(_sigterm(pid) for pid in local)
        print(f"{a.target} did not stop within {a.timeout}s", file=sys.stderr)
        return 1


# --- doctor ------------------------------------------------------------------------------------


def doctor_main(argv: list[str]) -> int:
    """``mlthon doctor [--strategy S.toml]... [--telegram T.toml] [--secret F]... [--dir D]...``:
    pre-flight checks, one verdict per line; exit 1 if any FAIL."""
    ap = _parser(
        "doctor",
        "Pre-flight checks: broker, clock, configs, secrets, versions, disk; one verdict per line "
        "(OK, WARN, FAIL, SKIP); exit 1 if any fails.",
        "mlthon doctor --strategy dip.toml --telegram telegram.toml",
    )
    ap.add_argument(
        "--strategy",
        action="append",
        type=Path,
        default=[],
        metavar="TOML",
        help="a strategy config to check (repeat for several)",
    )
    ap.add_argument(
        "--instruments", type=Path, default=None, help="instruments file (default: the bundled one)"
    )
    ap.add_argument(
        "--telegram", type=Path, default=None, help="a telegram.toml whose token file is checked"
    )
    ap.add_argument(
        "--secret", action="append", type=Path, default=[], help="a secret file (repeatable)"
    )
    ap.add_argument(
        "--dir",
        action="append",
        type=Path,
        default=[],
        help="a log or journal folder whose free space is checked (repeatable; default: here "
        "and $MLTHON_LOG_DIR)",
    )
    ap.add_argument(
        "--min-free-mb",
        type=cli_number(0, 1e12, low_open=False),
        default=500.0,
        help="free disk space below which the disk check fails (MB, default 500)",
    )
    ap.add_argument(
        "--max-skew",
        type=cli_number(0, 86400),
        default=2.0,
        help="tolerated clock skew in seconds (default 2)",
    )
    ap.add_argument("--json", action="store_true", help="print the checks as JSON")
    ap.add_argument(
        "--connect-timeout",
        type=cli_number(0, 600),
        default=3.0,
        help="seconds to wait for the broker (default 3)",
    )
    _bus_args(ap)
    a = ap.parse_args(argv)
    opts = dr.DoctorOptions(
        host=a.host,
        port=a.port,
        root=a.root,
        strategies=a.strategy,
        instruments=a.instruments,
        telegram=a.telegram,
        secrets=a.secret,
        dirs=a.dir or dr.default_dirs(),
        min_free_mb=a.min_free_mb,
        max_skew_s=a.max_skew,
        connect_timeout_s=a.connect_timeout,
        user=a.user,
        password_file=a.password_file,
        tls_ca=a.tls_ca,
    )
    checks = asyncio.run(run_doctor(opts, settle_s=a.settle))
    if a.json:
        print(json.dumps([_check(c) for c in checks]))
    else:
        for c in checks:
            print(c.line())
        bad = sum(c.verdict == dr.FAIL for c in checks)
        skipped = sum(c.verdict == dr.SKIP for c in checks)
        print(f"{len(checks)} checks, {bad} failed, {skipped} skipped")
    return dr.verdict(checks)


def _check(c: dr.Check) -> dict[str, str]:
    return {"name": c.name, "verdict": c.verdict, "why": c.why, "fix": c.fix}


async def run_doctor(opts: dr.DoctorOptions, *, settle_s: float = 0.5) -> list[dr.Check]:
    """Every check: the local ones, then the broker and what the components report."""
    checks = dr.local_checks(opts)
    try:
        options = bus_client_options(
            ADMIN_USER, user=opts.user, password_file=opts.password_file, tls_ca=opts.tls_ca
        )
    except ConfigError as exc:
        checks.append(dr.Check("broker", dr.FAIL, f"cannot log in: {exc}", CREDENTIALS_HINT))
        return checks
    who = f" as {options['username']}" if options["username"] else ""
    try:
        async with watch(
            opts.host,
            opts.port,
            opts.root,
            settle_s=settle_s,
            connect_timeout_s=opts.connect_timeout_s,
            client_options=options,
        ) as board:
            checks.append(
                dr.Check("broker", dr.OK, f"{opts.host}:{opts.port} reachable, logged in{who}")
            )
            checks += dr.board_checks(board, opts)
    except BrokerRefused as exc:
        checks.append(dr.Check("broker", dr.FAIL, f"not authorized: {exc}", CREDENTIALS_HINT))
    except BrokerUnreachable as exc:
        checks.append(
            dr.Check("broker", dr.FAIL, str(exc), f"start it: mlthon broker --port {opts.port}")
        )
    return checks


def _risk_note(st: Any) -> str:
    """A strategy held by the risk layer (``docs/risk.md``): ``risk Halted: <why>``; else ""."""
    figures = st.extra.get("strategy") if st is not None and isinstance(st.extra, dict) else None
    if not isinstance(figures, dict):
        return ""
    state = figures.get("risk_state")
    if not state or state == "Active":
        return ""
    return f"risk {state}: {figures.get('risk_reason', '')}".rstrip(": ")
