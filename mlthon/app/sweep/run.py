"""Running a sweep: the replay cache warmed once per node, then the trials a search asks for,
on an engine, retried once when they fail, ranked best first.

The permutations' backtests run :func:`mlthon.app.cli.run_backtest` with their parameters;
each returns its row of the table, its summary and its log records (replayed here, above the
progress bar). A trial whose run raised or whose process died is run once more; if it fails
again its row says why and the others go on. Ctrl-C cancels everything still running
(:class:`SweepCancelled` carries the rows done). With ``--prune`` the trials run rung by rung
over the first fractions of the data window, the hopeless ones pruned
(:mod:`mlthon.app.sweep.prune`).
"""

from __future__ import annotations

import argparse
import logging
import socket
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from mlthon.app.sweep.engines import Engine, Outcome
from mlthon.app.sweep.prune import Pruning, RungPool, Span, percent, prune_note, rung_settings
from mlthon.app.sweep.search import Search, Trial
from mlthon.basics.errors import ConfigError, MlthonError

if TYPE_CHECKING:
    from mlthon.feeds.events import SourceEvent
    from mlthon.infra.config import StrategyConfig

log = logging.getLogger(__name__)

#: How many times a failed permutation runs in all.
ATTEMPTS = 2

#: The summary's figures a sweep ranks by (``--rank``), and whether more is better.
RANK_FIGURES: dict[str, bool] = {
    "total_pnl": True,
    "realised_pnl": True,
    "return_pct": True,
    "sharpe": True,
    "sortino": True,
    "calmar": True,
    "win_rate": True,
    "profit_factor": True,
    "expectancy": True,
    "spread_captured": True,
    "round_trips": True,
    "fills": True,
    "fill_ratio": True,
    "maker_share": True,
    "turnover": True,
    "max_drawdown": False,
    "max_drawdown_duration_s": False,
    "fees": False,
    "rejects": False,
    "ack_latency_p50_ms": False,
    "ack_latency_p99_ms": False,
}
#: The columns of the sweep's table besides the parameters and the ranked figure.
SWEEP_FIGURES = ("total_pnl", "sharpe", "max_drawdown", "fills", "fill_ratio", "fees")
#: The columns that differ between two runs of the same sweep (where and how long it ran).
RUN_COLUMNS = ("attempts", "run_s", "cpu_s", "node", "folder")


def rank_figure(text: str) -> tuple[str, bool]:
    """``--rank``: a figure of :data:`RANK_FIGURES`, and whether more is better (its own
    direction; a leading ``-`` turns it round: ``--rank=-fills``).

    Raises:
        argparse.ArgumentTypeError: not one of them (the message lists them).
    """
    name = text.lstrip("-")
    if name not in RANK_FIGURES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a figure of the summary; one of: {', '.join(RANK_FIGURES)} "
            "(a leading '-' reverses the order: --rank=-fills)"
        )
    flipped = (len(text) - len(name)) % 2 == 1
    return name, RANK_FIGURES[name] != flipped


def rank_rows(rows: list[dict[str, Any]], figure: str, higher_is_better: bool) -> None:
    """Sort a sweep's rows best first by ``figure`` and number them (``rank``). Runs without a
    fill cannot be judged on their figures: they go last, unranked, marked in ``note``; so do
    runs whose figure is n/a, after the ranked ones, and runs that failed (no figures), last.
    Pruned rows (``pruned_at`` set: their figures are those of a shorter window) come after
    all of those, unranked, the latest rung first, in that rung's order, marked in ``note``.
    Ties keep the rows' order (give them in trial order for a table that does not depend on
    which run finished first)."""

    def key(r: dict[str, Any]) -> tuple[bool, float, bool, bool, bool, Decimal]:
        v = r[figure]
        value = Decimal(0) if v is None else Decimal(str(v))
        at = r.get("pruned_at")
        return (
            at is not None,
            -(at or 0.0),
            r["fills"] is None,
            not r["fills"],
            v is None,
            -value if higher_is_better else value,
        )

    rows.sort(key=key)
    n = 0
    for r in rows:
        if r.get("pruned_at") is not None:
            r["rank"], r["note"] = "", prune_note(figure, r)
        elif r["fills"] is None:
            r["rank"], r["note"] = "", "no result"
        elif not r["fills"]:
            r["rank"], r["note"] = "", "no fills"
        elif r[figure] is None:
            r["rank"], r["note"] = "", f"{figure} n/a"
        else:
            n += 1
            r["rank"], r["note"] = n, ""
        if r["failures"]:
            r["note"] = "; ".join(x for x in (r["note"], r["failures"]) if x)


def trial_value(row: dict[str, Any], figure: str, higher_is_better: bool) -> float | None:
    """What a search is told of a row: its figure, more is better; None when :func:`rank_rows`
    would not rank it."""
    v = row.get(figure)
    if not row.get("fills") or v is None:
        return None
    x = float(Decimal(str(v)))
    return x if higher_is_better else -x


# --- a permutation's run, in a worker ---------------------------------------------------------


@attrs.frozen
class Job:
    """One permutation's backtest: the config with its parameters, the settings (``out`` its own
    folder), its trial, the ranked figure and whether to write the HTML report."""

    cfg: StrategyConfig
    overrides: dict[str, Any]
    settings: dict[str, Any]
    trial: Trial
    figure: str
    report: bool = False


#: The log records of one run sent back at the most (the rest are counted).
MAX_RECORDS = 500
# The attributes of a log record that travel (plain values: a record's extras may not pickle).
_RECORD_FIELDS = (
    "name",
    "levelno",
    "levelname",
    "pathname",
    "filename",
    "module",
    "lineno",
    "funcName",
    "created",
    "msecs",
    "process",
    "processName",
    "exc_text",
    "stack_info",
)


class _Records(logging.Handler):
    """Keeps a worker's log records as plain dicts (they travel back with the result), the
    first :data:`MAX_RECORDS` of them."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[dict[str, Any]] = []
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.records) >= MAX_RECORDS:
            self.dropped += 1
            return
        d = {k: getattr(record, k, None) for k in _RECORD_FIELDS}
        d["msg"], d["args"] = record.getMessage(), None
        if record.exc_info and not d["exc_text"]:
            d["exc_text"] = logging.Formatter().formatException(record.exc_info)
        self.records.append(d)

    def sent(self) -> list[dict[str, Any]]:
        """The records, and one saying how many were left out."""
        if not self.dropped:
            return self.records
        last = {**self.records[-1], "msg": f"... and {self.dropped} more log lines of this run"}
        return [*self.records, {**last, "exc_text": None, "stack_info": None}]


def worker_logging(level: int) -> _Records:
    """Route this worker process's log to a list that goes back with its result: WARNING and
    up unless the sweep logs DEBUG (several runs' lifecycle lines are noise)."""
    root = logging.getLogger()
    handler = _Records()
    root.handlers[:] = [handler]
    root.setLevel(level if level <= logging.DEBUG else max(level, logging.WARNING))
    return handler


def replay_records(records: list[dict[str, Any]]) -> None:
    """Hand a worker's log records to this process's loggers of the same names."""
    for d in records:
        record = logging.makeLogRecord(d)
        logging.getLogger(record.name).handle(record)


def run_permutation(job_and_level: tuple[Job, int]) -> dict[str, Any]:
    """Run one permutation (in a worker): its row of the table, its summary, its log."""
    from mlthon.app.backtest import run_failures
    from mlthon.app.cli import run_backtest

    job, level = job_and_level
    records = worker_logging(level)
    cfg = attrs.evolve(job.cfg, params={**job.cfg.params, **job.overrides})
    t0, c0 = time.perf_counter(), time.process_time()
    summary, _perf, folder = run_backtest(cfg, job.settings, report=job.report)
    row = {
        "rank": "",
        "permutation_id": job.trial.perm_id,
        **{f"param.{k}": v for k, v in job.overrides.items()},
        **{k: summary.get(k) for k in dict.fromkeys((job.figure, *SWEEP_FIGURES))},
        "callback_errors": summary["callback_errors"],
        "failures": "; ".join(run_failures(summary)),
        "note": "",
        "trial": job.trial.number,
        "attempts": 1,
        "run_s": round(time.perf_counter() - t0, 3),
        "cpu_s": round(time.process_time() - c0, 3),
        "node": socket.gethostname(),
        "folder": str(folder),
    }
    return {"row": row, "summary": summary, "logs": records.sent()}


def failed_row(job: Job, error: str) -> dict[str, Any]:
    """The row of a permutation that failed every attempt: no figures, why in ``failures``."""
    return {
        "rank": "",
        "permutation_id": job.trial.perm_id,
        **{f"param.{k}": v for k, v in job.overrides.items()},
        **dict.fromkeys((job.figure, *SWEEP_FIGURES)),
        "callback_errors": None,
        "failures": f"failed {ATTEMPTS} times: {error.strip().splitlines()[0]}",
        "note": "",
        "trial": job.trial.number,
        "attempts": ATTEMPTS,
        "run_s": None,
        "cpu_s": None,
        "node": "",
        "folder": job.settings["out"],
    }


# --- the replay cache, warmed once per node -----------------------------------------------------


def warm_recording(path: str) -> dict[str, Any]:
    """Decode one recording into this node's replay cache unless it holds it already; how long
    that took (wall and CPU seconds)."""
    from mlthon.feeds.replay_cache import ReplayCache, file_sha256, read_footer

    cache = ReplayCache()
    t0, c0 = time.perf_counter(), time.process_time()
    footer = read_footer(cache.path_for(file_sha256(path)))
    decoded = footer is None or not footer[1]
    events, first, last = 0, None, None
    if decoded:
        events, first, last = _scan(cache.events(path, lambda *_a: None))
    return {
        "node": socket.gethostname(),
        "path": path,
        "decoded": decoded,
        "events": events,
        "first_ns": first,
        "last_ns": last,
        "wall_s": round(time.perf_counter() - t0, 3),
        "cpu_s": round(time.process_time() - c0, 3),
    }


def _scan(events: Iterable[SourceEvent]) -> tuple[int, int | None, int | None]:
    """How many events, the first and the last receive time."""
    n, first, last = 0, None, None
    for se in events:
        n += 1
        ts = se.ts
        if first is None or ts < first:
            first = ts
        if last is None or ts > last:
            last = ts
    return n, first, last


def recording_span(path_and_cache: tuple[str, bool]) -> tuple[int | None, int | None]:
    """The first and last receive times of a recording: read from the replay cache (``True``)
    or decoded (a pruned sweep's window when the warm-up did not decode it)."""
    from mlthon.feeds.readers import read_source
    from mlthon.feeds.replay_cache import ReplayCache

    path, cached = path_and_cache
    report = lambda *_a: None  # noqa: E731
    events = ReplayCache().events(path, report) if cached else read_source(path, report)
    _n, first, last = _scan(events)
    return first, last


def data_span(engine: Engine, paths: list[str], warm: list[dict[str, Any]], cache: bool) -> Span:
    """The span of the recordings (first to last receive time of them all): from the warm-up
    where it decoded them, else read once each (from the cache, or decoded with ``--no-cache``).

    Raises:
        ConfigError: a recording holds no event or could not be read.
    """
    spans: dict[str, tuple[int | None, int | None]] = {
        w["path"]: (w["first_ns"], w["last_ns"]) for w in warm if w["first_ns"] is not None
    }
    handles = {engine.submit(recording_span, (p, cache)): p for p in paths if p not in spans}
    while handles:
        for h, o in engine.wait(1.0):
            path = handles.pop(h)
            if o.error is not None:
                raise ConfigError(f"--prune: cannot read {path}: {o.error.strip().splitlines()[0]}")
            spans[path] = o.value
    firsts = [a for a, _b in spans.values() if a is not None]
    lasts = [b for _a, b in spans.values() if b is not None]
    if not firsts or not lasts:
        raise ConfigError("--prune: the recordings hold no event")
    return Span(min(firsts), max(lasts))


def warm_cache(engine: Engine, paths: list[str]) -> list[dict[str, Any]]:
    """Warm every node's replay cache with every recording, one call per node and recording,
    before the permutations start (they then read the cache instead of decoding)."""
    handles = {engine.submit(warm_recording, p, node): p for node in engine.nodes() for p in paths}
    out = []
    while handles:
        for h, o in engine.wait(1.0):
            path = handles.pop(h)
            if o.error is not None:
                # The runs will decode it themselves (and report what is wrong with it).
                log.warning("sweep: warming the cache with %s failed: %s", path, o.error)
                continue
            out.append(o.value)
    return out


def decode_note(warm: list[dict[str, Any]], runs: int) -> str:
    """The summary's line on decoding: paid once per node against once per run."""
    if not warm:
        return ""
    done = [w for w in warm if w["decoded"]]
    nodes = len({w["node"] for w in warm})
    if not done:
        return (
            f"data: {len({w['path'] for w in warm})} recordings already in the replay cache of "
            f"{nodes} node(s); {runs} runs read the cache"
        )
    wall = max(w["wall_s"] for w in done)
    cpu = sum(w["cpu_s"] for w in done)
    return (
        f"data: decoded once per node in {wall:.1f} s ({cpu:.1f} s CPU on {nodes} node(s)); "
        f"without the cache the {runs} runs would each have decoded it: {runs * cpu:.1f} s CPU"
    )


# --- the driver ---------------------------------------------------------------------------------


class SweepCancelled(MlthonError):
    """Ctrl-C: the runs still going were stopped; ``rows`` are those that had finished."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        super().__init__(f"sweep cancelled; {len(rows)} runs had finished")
        self.rows = rows


@attrs.define
class SweepRun:
    """What a sweep's driver did: the rows (trial order), retries and the wall time; with
    pruning, the CPU seconds of every run and those of the full-window runs."""

    rows: list[dict[str, Any]]
    summaries: dict[str, dict[str, Any]]
    retried: list[str]
    wall_s: float
    cpu_s: float = 0.0
    full_cpu_s: list[float] = attrs.Factory(list)


class _Runner:
    """Runs jobs on an engine, each failed one once more; ``poll`` gives the jobs that ended
    (their rows: a failed row after the second failure)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.level = logging.getLogger().getEffectiveLevel()
        self.running: dict[int, tuple[Job, int]] = {}
        self.summaries: dict[str, dict[str, Any]] = {}
        self.retried: list[str] = []

    def submit(self, job: Job, attempt: int = 1) -> None:
        self.running[self.engine.submit(run_permutation, (job, self.level))] = (job, attempt)

    def poll(self) -> list[tuple[Job, dict[str, Any]]]:
        done = []
        for h, out in self.engine.wait(0.5):
            job, attempt = self.running.pop(h)
            if out.error is not None and attempt < ATTEMPTS:
                log.warning(
                    "sweep: %s failed (%s); running it again",
                    job.trial.perm_id,
                    out.error.strip().splitlines()[0],
                )
                self.retried.append(job.trial.perm_id)
                self.submit(job, attempt + 1)
                continue
            done.append((job, _row_of(job, out, attempt, self.summaries)))
        return done


def run_trials(
    engine: Engine,
    search: Search,
    make_job: Callable[[Trial], Job],
    *,
    higher_is_better: bool,
    progress: bool,
    pruning: Pruning | None = None,
    span: Span | None = None,
    bracket: int | None = None,
) -> SweepRun:
    """Ask ``search`` for trials, run them on ``engine`` (as many at once as it has slots),
    retry a failed one once, tell the search each result; rows in trial order. With
    ``pruning``, the trials are taken in brackets of ``bracket`` (None: all of them) and run
    rung by rung (:mod:`mlthon.app.sweep.prune`) over ``span``.

    Raises:
        SweepCancelled: Ctrl-C (every call still running is stopped first).
    """
    from mlthon.app.backtest import ProgressBar

    runner = _Runner(engine)
    run = SweepRun([], runner.summaries, runner.retried, 0.0)
    t0 = time.perf_counter()

    def text() -> str:
        again = f", {len(run.retried)} retried" if run.retried else ""
        pruned = sum(1 for r in run.rows if r.get("pruned_at") is not None)
        cut = f", {pruned} pruned" if pruning is not None else ""
        return f"sweep: {len(run.rows)}/{search.total} runs{cut}{again}"

    with ProgressBar(progress, text(), total=search.total) as bar:
        bar.show(0, text())

        def add(row: dict[str, Any]) -> None:
            run.rows.append(row)
            bar.show(len(run.rows), text())

        try:
            if pruning is None:
                _run_all(runner, search, make_job, higher_is_better, add)
            else:
                _Pruned(runner, search, pruning, span or Span(), higher_is_better, run, add).run(
                    make_job, bracket
                )
        except KeyboardInterrupt:
            engine.cancel()
            raise SweepCancelled(sorted(run.rows, key=lambda r: int(r["trial"]))) from None
    run.rows.sort(key=lambda r: int(r["trial"]))
    run.wall_s = time.perf_counter() - t0
    return run


def _run_all(
    runner: _Runner,
    search: Search,
    make_job: Callable[[Trial], Job],
    higher_is_better: bool,
    add: Callable[[dict[str, Any]], None],
) -> None:
    """Every trial over the whole window, as many at once as the engine has slots."""
    slots = max(1, runner.engine.slots())
    while True:
        while len(runner.running) < slots:
            trial = search.ask()
            if trial is None:
                break
            runner.submit(make_job(trial))
        if not runner.running:
            return
        for job, row in runner.poll():
            search.tell(job.trial, trial_value(row, job.figure, higher_is_better))
            add(row)


class _Pruned:
    """The trials in brackets, each bracket rung by rung, then its survivors in full."""

    def __init__(
        self,
        runner: _Runner,
        search: Search,
        pruning: Pruning,
        span: Span,
        higher_is_better: bool,
        run: SweepRun,
        add: Callable[[dict[str, Any]], None],
    ) -> None:
        self.runner = runner
        self.search = search
        self.pruning = pruning
        self.span = span
        self.higher = higher_is_better
        self.run_ = run
        self.add = add
        self.pools = [RungPool() for _ in pruning.rungs]

    def _all(self, jobs: list[Job]) -> dict[int, dict[str, Any]]:
        """Run ``jobs`` (at once: the engine queues what it has no slot for); rows by trial."""
        for job in jobs:
            self.runner.submit(job)
        rows: dict[int, dict[str, Any]] = {}
        while self.runner.running:
            for job, row in self.runner.poll():
                rows[job.trial.number] = row
                self.run_.cpu_s += float(row["cpu_s"] or 0.0)
        return rows

    def run(self, make_job: Callable[[Trial], Job], bracket: int | None) -> None:
        while True:
            alive: list[Job] = []
            while bracket is None or len(alive) < bracket:
                trial = self.search.ask()
                if trial is None:
                    break
                alive.append(make_job(trial))
            if not alive:
                return
            self._bracket(alive)

    def _bracket(self, alive: list[Job]) -> None:
        spent: dict[int, list[dict[str, Any]]] = {j.trial.number: [] for j in alive}
        interim: dict[int, list[tuple[int, float | None]]] = {j.trial.number: [] for j in alive}
        for i, fraction in enumerate(self.pruning.rungs):
            rows = self._all([self._rung_job(j, fraction) for j in alive])
            pool = self.pools[i]
            for n, row in rows.items():
                pool.values[n] = trial_value(row, alive[0].figure, self.higher)
            decided = pool.decide(self.pruning, list(rows))
            going = []
            for job in alive:
                n = job.trial.number
                row = rows[n]
                spent[n].append(row)
                interim[n].append((i, pool.values[n]))
                keep, place, count = decided[n]
                if keep:
                    going.append(job)
                    continue
                self.search.tell_pruned(job.trial, interim[n])
                self.add(
                    _prune_columns(_summed(row, spent[n][:-1]), float(fraction), f"{place}/{count}")
                )
            alive = going
        for n, row in self._all(alive).items():
            job = next(j for j in alive if j.trial.number == n)
            self.run_.full_cpu_s.append(float(row["cpu_s"] or 0.0))
            self.search.tell(job.trial, trial_value(row, job.figure, self.higher))
            self.add(_prune_columns(_summed(row, spent[n]), None, ""))

    def _rung_job(self, job: Job, fraction: Decimal) -> Job:
        settings = rung_settings(job.settings, fraction, self.span)
        settings["out"] = str(Path(job.settings["out"]) / f"rung-{percent(fraction)[:-1]}pct")
        return attrs.evolve(job, settings=settings, report=False)


def _summed(row: dict[str, Any], before: list[dict[str, Any]]) -> dict[str, Any]:
    """A permutation's row with the attempts, wall and CPU seconds of its earlier rungs."""
    for col in ("attempts", "run_s", "cpu_s"):
        vals = [r[col] for r in (*before, row) if r[col] is not None]
        row[col] = round(sum(vals), 3) if vals else None
    return row


def _prune_columns(row: dict[str, Any], at: float | None, place: str) -> dict[str, Any]:
    """The row with ``pruned_at`` (the rung's fraction, None: ran in full) and
    ``interim_rank`` (its place at that rung: ``7/8``) after its ``note``."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        out[k] = v
        if k == "note":
            out["pruned_at"], out["interim_rank"] = at, place
    return out


def _row_of(
    job: Job, out: Outcome, attempt: int, summaries: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    if out.error is not None:
        log.error("sweep: %s failed again: %s", job.trial.perm_id, out.error.strip())
        return failed_row(job, out.error)
    replay_records(out.value["logs"])
    row: dict[str, Any] = out.value["row"]
    row["attempts"] = attempt
    summaries[row["permutation_id"]] = out.value["summary"]
    return row


def runs_folder(base: Path, perm_id: str) -> Path:
    """A permutation's folder in the sweep's."""
    from mlthon.app.sweep.space import folder_name

    return base / folder_name(perm_id)
