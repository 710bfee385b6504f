"""Backtests: the strategy's own code in simulated time over recorded (or synthetic) data.

The parts are the production ones, in one process: the feed's normalised messages, the
in-process bus, the control service, the simulated exchange gateway (one per exchange) and the
strategy's env, all on a :class:`~mlthon.infra.clock.SimScheduler`. The driver loop, for each
market-data message in time order::

    scheduler.run_until(msg.ts)     # timers, delayed requests and answers due before it
    bus.publish(md topic, msg)      # to the sim exchange and to the env
    scheduler.run_soon()            # everything that follows from it, at that instant

There is one book per instrument, in integer ticks and lots, read by the simulated exchange and
by the env alike: the replay's feed engine's when the data are files (it applies each venue
event before its messages come out), else a :class:`~mlthon.feeds.mirror.BookKeeper`'s, which
applies each message once, just before it is published.

Nothing reads the wall clock, so the same inputs give the same outputs, byte for byte.

Use it from Python (notebooks)::

    from mlthon.app.backtest import Backtest
    result = Backtest(MyStrategy, data=["capture.gz"], instruments=insts,
                      params={"spread_ticks": 2}).run()
    print(result.summary["total_pnl"])
    result.tables.fills()                   # a pandas DataFrame (plain rows without pandas)
    result.tables.risk_events()             # the risk layer's refusals and state changes
    result.write("results/run1")            # tables, summary/stats/run.json, report.html
    result.write()                          # results/<strategy>/<run id>/, and latest -> it
    result.failures()                       # callback errors, no event...: [] when it went well
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from decimal import Decimal
from itertools import chain, repeat
from operator import attrgetter
from pathlib import Path
from typing import Any

import attrs

from mlthon.api.istrategy import IStrategy
from mlthon.app.ledger import FILL_COLUMNS, ORDER_COLUMNS, ORDER_EVENT_COLUMNS, Ledger
from mlthon.app.run_info import RunInfo, describe_run
from mlthon.app.stats import Statistics, money
from mlthon.app.tables import ResultTables, funding_rows, risk_event_rows, statistics_of
from mlthon.basics.errors import ConfigError, StrategyError
from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange, InstrumentKind
from mlthon.basics.tickbook import TickBook
from mlthon.feeds.engine import FeedEngine
from mlthon.feeds.mirror import BookKeeper
from mlthon.feeds.replay import Replay, replay_files
from mlthon.gateways.sim.config import SimGatewayConfig
from mlthon.gateways.sim.gateway import SimGateway
from mlthon.infra.bus import messages as m
from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import NS_PER_S, SimClock, SimScheduler
from mlthon.infra.config import StrategyConfig
from mlthon.infra.control import ControlService
from mlthon.infra.env.strat_env import RUNNING, StratEnv
from mlthon.infra.instruments import load_instruments
from mlthon.infra.reactor import Reactor
from mlthon.infra.risk.limits import RiskConfig
from mlthon.infra.runner import instantiate_strategy, set_login_name
from mlthon.infra.strategy_params import param_rules

log = logging.getLogger(__name__)

_GC_GEN0_THRESHOLD = 100_000

# The default silence (s of simulated time) after which a backtest's feed counts as stale, by
# the data's kind: recordings replayed here (quiet markets in the bundled ones go up to 5 s
# without an update), and messages given as objects (a synthetic market: never silent).
FEED_SILENCE_S = {"replay": 10.0, "messages": 0.0}


@attrs.define
class BacktestResult:
    """What a backtest produced: the deterministic summary, plain tables, and run figures."""

    summary: dict[str, Any]
    orders: list[dict[str, str]]
    fills: list[dict[str, str]]
    curve: list[dict[str, str]]
    perf: dict[str, float]
    logs: list[str] = attrs.field(factory=list)
    run: RunInfo | None = None
    order_events: list[dict[str, str]] = attrs.field(factory=list)
    funding: list[dict[str, str]] = attrs.field(factory=list)
    stats: Statistics | None = None
    #: The risk layer's refusals and trading-state changes (``risk_events.csv``; [] without one).
    risk_events: list[dict[str, str]] = attrs.field(factory=list)

    @property
    def tables(self) -> ResultTables:
        """The tables for notebooks: ``result.tables.fills()`` is a pandas DataFrame with pandas
        installed (a list of dicts without it); see :mod:`mlthon.app.tables`."""
        return ResultTables(self)

    def write(self, folder: str | Path | None = None, *, report: bool = True) -> Path:
        """Write the results folder (``docs/reports.md``): the tables as CSV (and Parquet with
        pyarrow), summary.json, stats.json, run.json, perf.json and, if asked, report.html
        (interactive with plotly). Returns the folder.

        ``folder`` None: a new run folder ``results/<strategy>/<run id>/`` (:func:`new_run_folder`)
        and ``results/<strategy>/latest`` pointed at it, so that no run overwrites another."""
        from mlthon.app.report import write_results

        if folder is not None:
            return write_results(self, Path(folder), report=report)
        out = write_results(self, new_run_folder(RESULTS / self.summary["strategy"]), report=report)
        point_latest(out)
        return out

    def failures(self) -> list[str]:
        """What makes this run one not to trust (``--strict`` fails on it): callbacks that
        raised, no market-data event, positions the exchange disagrees with. [] otherwise."""
        return run_failures(self.summary)


#: Where run folders go by default: ``results/<strategy>/<run id>/``.
RESULTS = Path("results")


def run_failures(summary: dict[str, Any]) -> list[str]:
    """The failures of a run from its summary (see :meth:`BacktestResult.failures`)."""
    out = []
    if summary.get("callback_errors"):
        out.append(f"{summary['callback_errors']:,} callback errors (see the log)")
    if not summary.get("events"):
        out.append("no market-data event was replayed")
    wrong = sorted(k for k, c in summary.get("accounting_check", {}).items() if not c["match"])
    if wrong:
        out.append(f"the exchange's position differs from the strategy's on {', '.join(wrong)}")
    return out


def new_run_folder(base: str | Path, *, prefix: str = "") -> Path:
    """Make and return a new folder ``base/<prefix><run id>``: the run id is the UTC time and
    four random hex digits (``20261207T064512Z-3f2a``), so runs started in the same second (by
    several processes) get folders of their own."""
    root = Path(base)
    root.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    while True:
        folder = root / f"{prefix}{stamp}-{secrets.token_hex(2)}"
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder


def point_latest(folder: Path, name: str = "latest") -> Path:
    """Point ``<parent>/<name>`` at ``folder``: a relative symlink, replaced atomically (a
    reader sees the old run or the new one, never none). Where symlinks cannot be made (some
    file systems, Windows without the privilege) ``<name>.txt`` holds the folder's name instead.
    Returns the link or the pointer file."""
    parent = folder.parent
    link = parent / name
    tmp = parent / f".{name}-{secrets.token_hex(4)}"
    try:
        tmp.symlink_to(folder.name, target_is_directory=True)
        os.replace(tmp, link)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        log.debug("results: no symlink %s (%s); writing %s.txt", link, exc, name)
        pointer = parent / f"{name}.txt"
        tmp.write_text(folder.name + "\n", encoding="utf-8")
        os.replace(tmp, pointer)
        return pointer
    (parent / f"{name}.txt").unlink(missing_ok=True)  # a pointer left by an earlier fallback
    return link


def _rows(items: Iterable[Any], fields: list[str]) -> list[dict[str, str]]:
    """The ``fields`` of each item as text: None is empty, booleans are lower case.

    Made a column at a time, in C loops where a column holds one kind of value (text as it is,
    whole numbers through ``str``): a run's order events are tens of thousands of rows."""
    items = list(items)
    if not fields:
        return [{} for _ in items]
    columns = []
    for f in fields:
        values = list(map(attrgetter(f), items))
        kinds = set(map(type, values))
        if kinds <= {str}:
            columns.append(values)
        elif kinds <= {int, Decimal}:
            columns.append(list(map(str, values)))
        else:
            columns.append(list(map(_text, values)))
    return list(map(dict, map(zip, repeat(fields), zip(*columns, strict=True))))


def _text(v: Any) -> str:
    if type(v) is str:
        return v
    if v is None:
        return ""
    if type(v) is bool:
        return "true" if v else "false"
    return str(v)


class Backtest:
    """One backtest run.

    Args:
        strategy: an IStrategy instance, or a class (called with the params dict if its
            ``__init__`` takes one, else with nothing).
        data: normalised market-data messages in time order, or paths of recordings (replayed
            through the production parsers).
        instruments: the instruments the strategy may trade.
        params: the strategy's parameters (``on_strat_params_update``).
        name: the strategy's name (its login).
        gateway: the simulated exchange's settings (latency, fees, queue model, balances...);
            the same for every exchange of the instruments.
        start_ns, end_ns: replay only this window of the data.
        start_params: the text given to ``on_start``.
        sample_every_s: spacing of the equity curve's points (plus one per fill).
        capital: the capital the Sharpe ratio's returns are measured on.
        progress: show a progress bar (rich) while running.
        stop_ack_timeout_s: how long the strategy has to acknowledge the final stop.
        simulate_exchange: False runs market data only (no gateway: orders are refused with
            GtwNotReady), for signal research and replay benchmarks.
        timezone: the time zone of daily callbacks (the strategy's ``timezone``); never the
            host's, so a backtest gives the same result on every machine.
        feed_silence_s: a feed silent for longer than this, in simulated time, is reported to
            the strategy (a hole in a recording); None: :data:`FEED_SILENCE_S` of the data's
            kind; 0: never.
        cache: read recordings decoded before from the replay cache, and cache the others
            (``feeds/replay_cache.py``); False decodes every file.
        risk: the strategy's risk limits (its ``[risk]`` table, ``docs/risk.md``); None: none.
        data_span_s: how long the data last in simulated seconds, when known before the run
            (a synthetic market): the progress bar's total for data that are neither files nor
            a list.
    """

    def __init__(
        self,
        strategy: IStrategy | type,
        *,
        data: Iterable[m.Msg] | list[str | Path],
        instruments: list[Instrument],
        params: dict[str, Any] | None = None,
        name: str = "backtest",
        gateway: SimGatewayConfig | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
        start_params: str = "",
        sample_every_s: float = 1.0,
        capital: Decimal | str = "100000",
        progress: bool = False,
        stop_ack_timeout_s: float = 10.0,
        simulate_exchange: bool = True,
        timezone: str = "UTC",
        feed_silence_s: float | None = None,
        data_label: str = "",
        data_seed: int | None = None,
        cache: bool = True,
        risk: RiskConfig | None = None,
        data_span_s: float | None = None,
    ) -> None:
        if not instruments:
            raise ConfigError("a backtest needs at least one instrument")
        self.instruments = instruments
        # Checked against the strategy's parameter schema, if it declares one (every parameter,
        # defaults filled in, decimals as text); free-form otherwise.
        cls = strategy if isinstance(strategy, type) else type(strategy)
        self.params = param_rules(cls).check(dict(params or {}), name)
        self.name = name
        self.capital = Decimal(str(capital))
        # Without a gateway config, the account holds ``capital`` in each settlement coin (as
        # ``mlthon backtest`` gives a strategy file without [sim.account]).
        self.gateway_cfg = gateway or SimGatewayConfig(
            balances=dict.fromkeys(sorted({i.settlement for i in instruments}), self.capital)
        )
        self.data_label = data_label
        self.data_seed = data_seed
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.start_params = start_params
        self.sample_every_ns = max(1, int(sample_every_s * NS_PER_S))
        self.progress = progress
        self.stop_ack_timeout_s = stop_ack_timeout_s
        self.simulate_exchange = simulate_exchange
        self.timezone = timezone or "UTC"
        if feed_silence_s is not None and not 0 <= feed_silence_s <= 86400:
            raise ConfigError(
                f"feed_silence_s must be from 0 (never) to 86400, got {feed_silence_s!r}"
            )
        self.feed_silence_s = feed_silence_s
        self._strategy_arg = strategy
        self._data = data
        self.cache = cache
        self.risk = risk
        self.data_span_s = data_span_s
        self.events = 0

    def _make_strategy(self) -> IStrategy:
        s = self._strategy_arg
        if isinstance(s, IStrategy):
            set_login_name(s, self.name)
            return s
        if isinstance(s, type):
            return instantiate_strategy(s, self.params, self.name)
        raise ConfigError(f"strategy must be an IStrategy instance or class, got {s!r}")

    def _messages(self) -> tuple[Iterator[m.Msg], FeedEngine | None]:
        """The messages to replay, and the feed engine that makes them when the data are files
        replayed in this process (None for messages given as objects)."""
        data = self._data
        if isinstance(data, list) and data and isinstance(data[0], str | Path):
            replay = replay_files(
                [Path(p) for p in data],
                self.instruments,  # type: ignore[arg-type]
                start_ns=self.start_ns,
                end_ns=self.end_ns,
                cache=self.cache,
            )
            return replay, replay.engine
        it: Iterator[m.Msg] = iter(data)  # type: ignore[arg-type]
        if self.start_ns is None and self.end_ns is None:
            return it, None
        lo = self.start_ns or 0
        hi = self.end_ns
        window = (x for x in it if getattr(x, "ts", 0) >= lo and (hi is None or x.ts <= hi))  # type: ignore[attr-defined]
        return window, None

    def _feed_silence(self, recorded: bool) -> float | None:
        """The env's feed-silence limit (None: off): there is no feed process (and no heartbeat)
        in a backtest, so the env watches the market data themselves, in simulated time."""
        limit = self.feed_silence_s
        if limit is None:
            limit = FEED_SILENCE_S["replay" if recorded else "messages"]
        return limit if limit > 0 else None

    def _why_no_data(self, engine: FeedEngine | None) -> str:
        """What to tell a user whose data gave no message: usually, the data's instruments are
        not among the backtest's (``[instruments] use``), and the bundled list may have them."""
        why = "the data holds no market-data message"
        if self.start_ns is not None or self.end_ns is not None:
            why += " in the chosen window (--start/--end)"
        unknown = sorted(engine.stats.unknown_symbols) if engine is not None else []
        if not unknown:
            waiting = engine.waiting_reasons() if engine is not None else []
            return why + (": " + "; ".join(waiting) if waiting else "")
        ours = ", ".join(
            f"{i.exchange.name} {i.name} ({i.instrument_id})" for i in self.instruments
        )
        catalogue = {(i.exchange.name, i.name.upper()): i for i in _bundled_instruments()}
        found = []
        for key in unknown:
            ex, _, sym = key.partition(":")
            inst = catalogue.get((ex, sym.upper()))
            found.append(
                f"{ex} {sym} (instrument {inst.instrument_id} in the bundled list)"
                if inst is not None
                else f"{ex} {sym} (not in the bundled list: `mlthon instruments --data <file>` "
                "drafts its table for an instruments file, [instruments] file = ...)"
            )
        return (
            f"{why} for this backtest's instruments ({ours}); the data is of "
            + "; ".join(found)
            + ". Add its instrument id to [instruments] use (or --instruments) and point the "
            "strategy's parameters at it (--set key=value)"
        )

    def run(self) -> BacktestResult:
        """Run to the end of the data and return the result."""
        # The replay allocates millions of short-lived tuples and lists; with the default
        # thresholds the cyclic collector runs every 700 allocations and rescans every long-lived
        # object (instruments, caches, books) in its older generations, which cost a fifth of
        # the run. Objects made before the run are frozen out of collection and collections are
        # made rarer for the run's duration; both are restored afterwards.
        thresholds = gc.get_threshold()
        gc.freeze()
        gc.set_threshold(_GC_GEN0_THRESHOLD, thresholds[1], thresholds[2])
        try:
            return self._run()
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()

    def _progress_of(self, t0: int) -> Callable[[int, int], float | None]:
        """How far the run is, from (events so far, simulated time): the bytes read of the
        files, the events of a list of messages, the simulated time of a market of known
        length; None when it cannot be known."""
        data = self._data
        if isinstance(data, list) and data and isinstance(data[0], str | Path):
            read = _ReadProgress([Path(p) for p in data], self.cache)
            return lambda _events, _ts: read.fraction()
        if isinstance(data, Sized) and len(data):
            n = len(data)
            return lambda events, _ts: events / n
        if self.data_span_s:
            span = self.data_span_s * NS_PER_S
            return lambda _events, ts: (ts - t0) / span
        return lambda _events, _ts: None

    def _run(self) -> BacktestResult:
        with ProgressBar(self.progress, "backtest: starting") as bar:
            return self._run_shown(bar)

    def _run_shown(self, bar: ProgressBar) -> BacktestResult:
        wall0 = time.perf_counter()
        msgs, engine = self._messages()
        first = next(msgs, None)
        if first is None:
            raise ConfigError(self._why_no_data(engine))
        t0 = first.ts  # type: ignore[attr-defined]
        done_of = self._progress_of(t0)
        sched = SimScheduler(SimClock(t0))
        bus = InProcBus(sched, redelivers=False)  # each publish is delivered once
        topics = Topics("bt")
        strategy = self._make_strategy()
        cfg = StrategyConfig(
            name=self.name,
            class_path="<in-process>",
            params=self.params,
            start_params=self.start_params,
            stop_ack_timeout_s=self.stop_ack_timeout_s,
            preset_instruments=tuple(self.instruments),
        )
        control = ControlService(
            bus, sched, topics, [cfg], param_rules={self.name: param_rules(type(strategy))}
        )
        control.start()
        # The one book per instrument: the replay engine's, or the keeper's (message objects).
        keeper = None if engine is not None else BookKeeper()
        book_of: Callable[[Exchange, int], TickBook | None] = (
            engine.price_book if engine is not None else keeper.book  # type: ignore[union-attr]
        )
        gateways: dict[Exchange, SimGateway] = {}
        exchanges = sorted({i.exchange for i in self.instruments}, key=lambda e: e.value)
        for ex in exchanges if self.simulate_exchange else []:
            gcfg = attrs.evolve(self.gateway_cfg, exchange=ex, instrument_ids=())
            gw = SimGateway(
                bus,
                sched,
                topics,
                gcfg,
                self.instruments,
                books=lambda iid, ex=ex: book_of(ex, iid),  # type: ignore[misc]
            )
            gw.start()
            gateways[ex] = gw

        def mid_of(iid: int) -> Decimal | None:
            for gw in gateways.values():
                try:
                    st = gw.engine.market(iid)
                except KeyError:
                    continue
                m2 = st.mid2()
                return None if m2 is None else m2 * st.tick_size / 2
            return None

        ledger = Ledger(self.instruments, mid_of, now=sched.now_ns)
        bus.subscribe(topics.gtw_rpt_all_exchanges(self.name), ledger.on_report)
        for ex in gateways:
            bus.subscribe(topics.gtw_req_all(ex), ledger.on_request)
        # Slow callbacks on CPU time, counted for the summary: a busy machine is not the strategy.
        reactor = Reactor(sched, name=f"strategy[{self.name}]", cpu_time=True)
        env = StratEnv(
            strategy,
            bus,
            reactor,
            topics,
            tz=self.timezone,
            feed_silence_s=self._feed_silence(engine is not None),
            risk=self.risk,
        )
        # The replay's engine (or the keeper) runs in this process and each message is delivered
        # before the next one is applied: the env reads its books, no second copy.
        env.share_feed_books(book_of)

        def sample() -> None:
            ledger.sample(sched.now_ns())
            sched.call_later(self.sample_every_ns, sample)

        sched.call_at(t0, sample)
        # Log in, start, and let the gateways become ready before the first event.
        sched.run_until(t0)
        if env.state != RUNNING:
            raise StrategyError(
                f"strategy {self.name!r} did not start (state {env.state}): it must call "
                f"env.login({self.name!r}) in on_framework_connected"
                + (f"; last error: {reactor.last_error}" if reactor.last_error else "")
            )

        md_topics: dict[tuple[int, int], str] = {}
        venue_topics: dict[int, list[str]] = {}
        publish = bus.publish
        publish_now = bus.publish_now
        soon = sched.soon_queue
        keep = None if keeper is None else keeper.apply
        run_until = sched.run_until
        run_soon = sched.run_soon
        events = 0
        last_ts = t0
        show_at = 0.0  # when the bar is next redrawn (wall clock, display only)

        def show(ts: int) -> None:
            nonlocal show_at
            now = time.perf_counter()
            if now >= show_at:
                show_at = now + 0.1
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts / NS_PER_S))
                bar.show(done_of(events, ts), f"backtest: {events:,} events, {stamp}")

        # The replay's engine applies a venue event to the books the env reads before its
        # messages come out: the timers due by then must run first (no look-ahead), so the replay
        # moves the clock itself, once per receive time; messages given as objects are timed here.
        timed_here = True
        if isinstance(msgs, Replay):
            msgs.advance = run_until
            timed_here = False

        def feed_status(msg: m.Msg, key: tuple[int, int]) -> None:
            # A feed-wide status (iid 0: the venue connection went away): where a feed process
            # puts it, on the venue's status topic and on each of its books'.
            publish(topics.feed_status(Exchange(key[0])), msg, qos=1, retain=True)
            for t in venue_topics.get(key[0], ()):
                publish(t, msg)
            run_soon()

        engine0 = time.perf_counter()
        # The loop of the run, once per message: written out here rather than as a function
        # called per message (a Python call is a fair share of what a message costs).
        for msg in chain((first,), msgs):
            ts = msg.ts  # type: ignore[attr-defined]
            if ts > last_ts:
                if timed_here:
                    run_until(ts)
                last_ts = ts
            if keep is not None:
                keep(msg)  # the one book, before anyone reads it
            key = (msg.ex, msg.iid)  # type: ignore[attr-defined]
            topic = md_topics.get(key)
            if topic is None:
                if not key[1]:
                    feed_status(msg, key)
                    events += 1
                    continue
                topic = md_topics[key] = topics.md(Exchange(key[0]), key[1])
                venue_topics.setdefault(key[0], []).append(topic)
            if soon:
                publish(topic, msg)
                run_soon()
            else:  # nothing else due first: deliver it now (the same order, fewer calls)
                publish_now(topic, msg)
                if soon:
                    run_soon()
            events += 1
            if events & 0x3FF == 0:
                show(ts)
        end_ts = last_ts
        bar.show(1.0, f"backtest: {events:,} events; winding down")
        # The end: stop the strategy as the system would, and let it wind down.
        control.request_stop(self.name, "end of data", by="backtest")
        sched.run_until(end_ts + int(self.stop_ack_timeout_s * NS_PER_S) + 1)
        ledger.funding = -sum(
            (
                fp.amount
                for gw in gateways.values()
                for fp in gw.engine.funding_payments
                if fp.strat == self.name
            ),
            Decimal(0),
        )
        ledger.sample(sched.now_ns())
        for gw in gateways.values():
            gw.stop()
        sched.run_soon()
        self.events = events
        timing = {"startup_s": engine0 - wall0, "engine_s": time.perf_counter() - engine0}
        result = self._result(ledger, env, reactor, t0, end_ts, events, timing, gateways)
        if reactor.slow_callbacks:
            log.info(
                "backtest: %d callbacks ran longer than %.0f ms of CPU time (%s)",
                reactor.slow_callbacks,
                reactor.slow_callback_ns / 1e6,
                ", ".join(
                    f"{name} {n}x, at most {ms:.1f} ms"
                    for name, (n, ms) in sorted(reactor.slow_by_name.items())
                ),
            )
        result.perf["results_s"] = round(time.perf_counter() - wall0 - sum(timing.values()), 3)
        result.perf["wall_time_s"] = round(time.perf_counter() - wall0, 3)
        return result

    def _result(
        self,
        ledger: Ledger,
        env: StratEnv,
        reactor: Reactor,
        t0: int,
        t1: int,
        events: int,
        timing: dict[str, float],
        gateways: dict[Exchange, SimGateway],
    ) -> BacktestResult:
        span_s = max(1e-9, (t1 - t0) / NS_PER_S)
        realised = ledger.realised()
        unrealised = ledger.unrealised()
        total = realised + unrealised - ledger.fees + ledger.funding
        check = {}
        for ex, gw in gateways.items():
            acct = gw.engine.account(self.name)
            for inst in gw.instruments:
                ours = ledger.pos[inst.instrument_id].qty
                if inst.kind is InstrumentKind.Spot:
                    # Spot has no position: the exchange's side is the base coin's wallet,
                    # shared by every spot instrument of that base.
                    ours = sum(
                        (
                            ledger.pos[i.instrument_id].qty
                            for i in gw.instruments
                            if i.kind is InstrumentKind.Spot and i.base == inst.base
                        ),
                        Decimal(0),
                    )
                    theirs = acct.holding_change(inst.base)
                else:
                    theirs = acct.net_position(inst)
                check[inst.name] = {
                    "strategy_side": str(ours),
                    "exchange_side": str(theirs),
                    "match": ours == theirs,
                }
                if ours != theirs:
                    log.error(
                        "backtest: position mismatch on %s %s: ledger %s, exchange %s",
                        ex.name,
                        inst.name,
                        ours,
                        theirs,
                    )
        summary: dict[str, Any] = {
            "strategy": self.name,
            "instruments": [i.name for i in self.instruments],
            "start_ns": t0,
            "end_ns": t1,
            "duration_s": round(span_s, 3),
            "events": events,
            "orders": len(ledger.order_list),
            "modifies": ledger.modifies,
            "cancels": ledger.cancels,
            "rejects": ledger.rejects,
            "risk_refusals": env.risk_refusals,
            "risk_state": env.risk_state.name,
            "risk_refused_by": dict(env.risk.refused_by) if env.risk is not None else {},
            "fills": len(ledger.fills),
            "filled_qty": str(sum((f.qty for f in ledger.fills), Decimal(0))),
            "turnover": money(ledger.turnover),
            "fees": money(ledger.fees),
            "funding": money(ledger.funding),
            "realised_pnl": money(realised),
            "unrealised_pnl": money(unrealised),
            "total_pnl": money(total),
            "final_position": {
                i.name: str(ledger.pos[i.instrument_id].qty) for i in self.instruments
            },
            "callback_errors": reactor.callback_errors,
            "accounting_check": check,
        }
        engine_s = timing["engine_s"]
        perf = {
            # wall_time_s = startup_s + engine_s + results_s (the statistics); events/s is the
            # engine's alone (the replay loop and the wind-down), as docs/performance.md counts.
            "wall_time_s": 0.0,
            "startup_s": round(timing["startup_s"], 3),
            "engine_s": round(engine_s, 3),
            "results_s": 0.0,
            "events_per_s": round(events / engine_s, 1) if engine_s else 0.0,
            "callbacks": reactor.callbacks,
            "slow_callbacks": reactor.slow_callbacks,
            "slowest_callback_ms": round(
                max((ms for _n, ms in reactor.slow_by_name.values()), default=0.0), 1
            ),
            "slow_callback_ms": reactor.slow_callback_ns / 1e6,
            "pid": float(os.getpid()),
        }
        # avg_price and reject are computed below, the rest are the rows' attributes.
        orders = _rows(ledger.order_list, ORDER_COLUMNS[:-2])
        for row, o in zip(orders, ledger.order_list, strict=True):
            row["avg_price"] = o.avg_price()
            row["reject"] = o.reject
        fills = _rows(ledger.fills, FILL_COLUMNS)
        for row in fills:
            row["realised"] = money(Decimal(row["realised"]))
        curve = [
            {
                "ts": str(ts),
                "equity": money(eq),
                "position": str(pos),
                "mid": "" if mid is None else str(mid),
            }
            for ts, eq, pos, mid in ledger.curve
        ]
        payments = [
            fp
            for gw in gateways.values()
            for fp in gw.engine.funding_payments
            if fp.strat == self.name
        ]
        result = BacktestResult(
            summary,
            orders,
            fills,
            curve,
            perf,
            run=describe_run(
                self,
                env.strategy,
                t0,
                t1,
                data=self._data,
                data_label=self.data_label,
                data_seed=self.data_seed,
                risk=env.risk.config if env.risk is not None else None,
            ),
            order_events=_rows(ledger.events, ORDER_EVENT_COLUMNS),
            funding=funding_rows(payments),
            risk_events=risk_event_rows(env.risk.events) if env.risk is not None else [],
        )
        result.stats = statistics_of(result)
        summary.update(result.stats.headline())
        summary["spread_captured"] = money(result.stats.spread_captured)
        return result


def _bundled_instruments() -> list[Instrument]:
    try:
        return load_instruments()
    except ConfigError:
        return []


class _ReadProgress:
    """How far a replay has read its files, as a fraction of their bytes: the positions of this
    process's open files (``/proc/self/fdinfo``, Linux) among the recordings and the replay
    cache's files. None where that cannot be seen."""

    def __init__(self, paths: list[Path], cache: bool) -> None:
        from mlthon.feeds.replay_cache import SUFFIX, default_cache_dir

        self._size: dict[str, int] = {}
        for p in paths:
            try:
                self._size[os.path.realpath(p)] = p.stat().st_size
            except OSError:
                continue
        self._total = sum(self._size.values()) or 1
        self._cache_dir = os.path.realpath(default_cache_dir()) + os.sep if cache else None
        self._suffix = SUFFIX
        self._direct: dict[str, float] = {}  # recording -> fraction read
        self._cached: dict[str, tuple[int, int]] = {}  # cache file -> (position, size)
        self._last = 0.0

    def _open_files(self) -> dict[str, int] | None:
        try:
            fds = os.listdir("/proc/self/fd")
        except OSError:
            return None
        out = {}
        for fd in fds:
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
                ours = target in self._size or (
                    self._cache_dir is not None
                    and target.startswith(self._cache_dir)
                    and target.endswith(self._suffix)
                )
                if ours:
                    with open(f"/proc/self/fdinfo/{fd}", encoding="ascii") as f:
                        out[target] = int(f.readline().split()[1])
            except (OSError, ValueError, IndexError):
                continue
        return out

    def fraction(self) -> float | None:
        """The fraction read so far (never less than the last one given)."""
        now = self._open_files()
        if now is None:
            return None
        # A file seen open before and closed now was read to its end.
        for path in self._direct:
            if path not in now:
                self._direct[path] = 1.0
        for path, (_pos, size) in self._cached.items():
            if path not in now:
                self._cached[path] = (size, size)
        for path, pos in now.items():
            if path in self._size:
                self._direct[path] = max(self._direct.get(path, 0.0), pos / (self._size[path] or 1))
            else:
                try:
                    self._cached[path] = (pos, os.path.getsize(path))
                except OSError:
                    continue
        direct_share = sum(self._size[p] for p in self._direct) / self._total
        done = sum(f * self._size[p] for p, f in self._direct.items()) / self._total
        # The recordings not read directly are read from their cache files (of other sizes).
        pos = sum(p for p, _ in self._cached.values())
        size = sum(s for _, s in self._cached.values())
        if size:
            done += (1.0 - direct_share) * pos / size
        self._last = max(self._last, min(done, 1.0))
        return self._last


class ProgressBar:
    """A rich progress bar on a terminal (stderr), silent otherwise: what runs, the percent
    done and the time left when the total is known (a spinner and the time spent when not).
    While it shows, the root logger's lines to stderr go through rich's handler, printed above
    the bar, so that a log line never lands in the bar's line.

    Args:
        enabled: show it (when stderr is a terminal).
        description: the first text.
        total: what ``show`` counts up to (1.0: fractions); None: unknown.
    """

    def __init__(self, enabled: bool, description: str, total: float | None = 1.0) -> None:
        self._p: Any = None
        self._task: Any = None
        self._total = total
        self._handlers: list[tuple[logging.Handler, logging.Handler]] = []
        if not (enabled and os.isatty(2)):
            return
        from rich.console import Console
        from rich.logging import RichHandler
        from rich.progress import (
            BarColumn,
            Progress,
            SpinnerColumn,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        self._p = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=10),
            TaskProgressColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
            transient=True,
        )
        root = logging.getLogger()
        for h in list(root.handlers):
            if type(h) is logging.StreamHandler and h.stream in (sys.stderr, sys.__stderr__):
                rich_h = RichHandler(
                    console=self._p.console,
                    show_path=False,
                    level=h.level,
                    log_time_format="%H:%M:%S",
                )
                rich_h.setFormatter(logging.Formatter("%(name)s: %(message)s"))
                root.removeHandler(h)
                root.addHandler(rich_h)
                self._handlers.append((h, rich_h))
        self._p.start()
        self._task = self._p.add_task(description, total=None)
        self._p.refresh()

    def show(self, completed: float | None, description: str) -> None:
        """Redraw with this much done (of ``total``; None: unknown) and this text."""
        if self._p is None:
            return
        if completed is None:
            self._p.update(self._task, description=description)
        else:
            self._p.update(
                self._task, total=self._total, completed=completed, description=description
            )
        self._p.refresh()  # now, not at the next tick of rich's timer: callers call it sparingly

    def close(self) -> None:
        """Take the bar away and give the log its handlers back."""
        if self._p is None:
            return
        self._p.stop()
        self._p = None
        root = logging.getLogger()
        for h, rich_h in self._handlers:
            root.removeHandler(rich_h)
            root.addHandler(h)
        self._handlers = []

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


StrategyFactory = Callable[[dict[str, Any]], IStrategy]
