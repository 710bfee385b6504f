"""Sweeps beyond one machine (issue 20): a sweep on a real Ray head (loopback) through
``--address`` survives a killed worker (the permutation runs again) and gives the table the local
engine gives; the local engine survives a killed process too; an Optuna search is repeatable and
finds a known optimum; recordings are decoded once per node before the runs."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlthon.app.sweep.run import RUN_COLUMNS
from tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

NO_RAY = "Ray is not installed (pip install 'mlthon[cluster]')"
NO_OPTUNA = "optuna is not installed (pip install 'mlthon[cluster]')"

# A strategy whose fills peak at known parameters: 30 - |x - 17| - |y - 5| market orders, one
# every 20 ms, buying and selling in turn. A file ``kill-<x>`` beside it makes the first run with
# that x kill its own process (it removes the file first: the run again goes through); each run
# leaves ``started-<x>`` there when it starts.
PEAK = """\
import os
import signal
from pathlib import Path

import attrs

from mlthon.api import MDSub, Strategy, param
from mlthon.basics import TIF, Exchange, ExecInstructions, OrderType, Side


@attrs.frozen
class PeakParams:
    x: int = param(0, low=0, high=100, help="the first coordinate")
    y: int = param(0, low=0, high=100, help="the second coordinate")


class Peak(Strategy):
    Params = PeakParams

    def __init__(self, params):
        super().__init__("peak")
        self.p = PeakParams(**params)
        self.left = 0
        self.side = Side.Buy
        self.price = None

    def on_start(self, params):
        Path(__file__).with_name(f"started-{self.p.x}").touch()
        try:
            Path(__file__).with_name(f"kill-{self.p.x}").unlink()
        except FileNotFoundError:
            pass
        else:
            os.kill(os.getpid(), signal.SIGKILL)
        self.left = max(0, 30 - abs(self.p.x - 17) - abs(self.p.y - 5))
        self.env.subscribe(Exchange.Sim, 9001, MDSub.BBO)

    def on_best_ask_level_update(self, exchange, instrument_id, price, qty, recv_ts):
        if self.price is None:
            self.price = price
            self.env.setup_timer(20, self.send)

    def send(self):
        if self.left <= 0:
            return False
        self.left -= 1
        inst = self.env.get_instrument(Exchange.Sim, 9001)
        self.env.send_new_order(
            None, Exchange.Sim, 9001, self.side, self.price, inst.min_qty,
            ExecInstructions.Unset, OrderType.Market, TIF.IOC, False,
        )
        self.side = Side.Sell if self.side is Side.Buy else Side.Buy
        return True

    def on_stop(self, params):
        self.env.send_cancel_all(Exchange.Sim, 9001)
        self.env.send_stop_ack()
"""
PEAK_TOML = """\
[strategy]
name = "peak"
class = "peak:Peak"

[instruments]
use = [9001]

[params]
x = 0
y = 0

[sim.account]
balances = { USDT = "100000" }
"""
# Ray on loopback only, without a token (a test cluster of this machine's).
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}


@pytest.fixture
def peak(tmp_path: Path) -> Path:
    folder = tmp_path / "strat"
    folder.mkdir()
    (folder / "peak.py").write_text(PEAK)
    (folder / "peak.toml").write_text(PEAK_TOML)
    return folder


def sweep(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlthon", "--log-level", "WARNING", "sweep", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=280,
        env={**os.environ, **(env or {})},
    )


def table(out: Path) -> list[dict[str, object]]:
    """The ranked rows without where and how long each ran."""
    rows = json.loads((out / "sweep.json").read_text())
    return [{k: v for k, v in r.items() if k not in RUN_COLUMNS} for r in rows]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _session_pids(sid: int) -> list[int]:
    """The processes of session ``sid`` (the Ray head started it and its children in it)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if int(fields[3]) == sid:  # state ppid pgrp session
            out.append(int(entry))
    return out


@pytest.fixture
def ray_head() -> Iterator[str]:
    """A Ray head on loopback (2 CPUs, no dashboard, its own temp dir), in a session of its
    own; stopped in teardown, its processes ended by id even when the test failed."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip(NO_RAY)
    temp = tempfile.mkdtemp(prefix="ray-")  # short: Ray's socket paths have a length limit
    port = _free_port()
    log = Path(temp) / "head.log"
    with log.open("w") as f:
        head = subprocess.Popen(
            [
                # the ray command of this interpreter's Ray, wherever its scripts went
                *(sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block"),
                *("--num-cpus", "2"),
                *("--port", str(port), "--node-ip-address", "127.0.0.1"),
                *("--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", temp),
            ],
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **RAY_ENV},
        )
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log.read_text():
            assert head.poll() is None, f"ray start exited: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no Ray head after 120 s: {log.read_text()}"
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        for pid in _session_pids(head.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def test_ray_cluster_sweep_killed_worker_retried_same_table_as_local(peak, ray_head):
    grid = ("--grid", "x=15:18", "y=4,5", "--rank", "fills", "--synthetic-seconds", "2")
    (peak / "kill-17").touch()  # the first run with x=17 kills its Ray worker
    p = sweep(peak, "peak.toml", *grid, "--address", ray_head, "--out", "ray", env=RAY_ENV)
    assert p.returncode == 0, p.stderr[-3000:]
    assert not (peak / "kill-17").exists()
    info = json.loads((peak / "ray" / "sweep_run.json").read_text())
    assert info["engine"] == "ray" and info["address"] == ray_head
    killed = [
        r for r in json.loads((peak / "ray" / "sweep.json").read_text()) if r["attempts"] == 2
    ]
    assert len(killed) == 1 and killed[0]["permutation_id"].startswith("x=17-"), killed
    assert sorted(info["retried"]) == [killed[0]["permutation_id"]]
    assert "running it again" in p.stderr
    p = sweep(peak, "peak.toml", *grid, "--engine", "local", "--jobs", "2", "--out", "local")
    assert p.returncode == 0, p.stderr[-3000:]
    ray_rows, local_rows = table(peak / "ray"), table(peak / "local")
    assert len(ray_rows) == 8 and ray_rows == local_rows
    assert ray_rows[0]["permutation_id"] == "x=17-y=5" and ray_rows[0]["fills"] == 30
    html = (peak / "ray" / "sweep.html").read_text()
    assert 'href="x=17-y=5/summary.html"' in html and "fig-heatmap" in html
    assert (peak / "ray" / "x=17-y=5" / "summary.html").exists()


def test_local_killed_process_retried_others_keep_going(peak):
    (peak / "kill-16").touch()
    p = sweep(
        peak,
        "peak.toml",
        "--grid",
        "x=15:17",
        "--rank",
        "fills",
        "--synthetic-seconds",
        "2",
        "--jobs",
        "2",
        "--out",
        "out",
    )
    assert p.returncode == 0, p.stderr[-3000:]
    rows = json.loads((peak / "out" / "sweep.json").read_text())
    assert [(r["permutation_id"], r["attempts"]) for r in rows] == [
        ("x=17", 1),
        ("x=16", 2),
        ("x=15", 1),
    ]
    assert "x=16 failed (its process was killed by SIGKILL); running it again" in p.stderr


def test_optuna_search_seeded_repeatable_finds_the_peak(peak):
    if importlib.util.find_spec("optuna") is None:
        pytest.skip(NO_OPTUNA)
    args = ("peak.toml", "--grid", "x=8:26", "y=0:12", "--search", "optuna", "--trials", "30")
    args += ("--search-seed", "3", "--rank", "fills", "--synthetic-seconds", "2", "--jobs", "2")
    first = sweep(peak, *args, "--out", "a")
    assert first.returncode == 0, first.stderr[-3000:]
    second = sweep(peak, *args, "--out", "b")
    assert second.returncode == 0, second.stderr[-3000:]
    a, b = table(peak / "a"), table(peak / "b")
    assert a == b  # the same trials, in the same order, with the same results
    assert a[0]["permutation_id"] == "x=17-y=5" and a[0]["fills"] == 30
    assert len(a) <= 30 < 19 * 13  # a search, not the grid
    assert "fig-trials" in (peak / "a" / "sweep.html").read_text()


def test_recordings_decoded_once_before_the_runs(shared_data, tmp_path):
    cache = tmp_path / "cache"
    recording = shared_data / "hftbacktest" / "binance_spot" / "btcusdt_20240808.gz"
    args = (
        str(REPO / "demo_strat" / "market_maker.toml"),
        *("--data", str(recording), "--instruments", "1201"),
        *("--set", "exchange=BinanceSpot", "instrument_id=1201"),
        # the capture runs from 23:54:13 to midnight
        *("--end", "2024-08-08T23:58:00", "--grid", "spread_ticks=4,8", "--jobs", "2"),
    )
    env = {"MLTHON_CACHE_DIR": str(cache)}
    p = sweep(tmp_path, *args, "--out", "first", env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    assert not [r for r in table(tmp_path / "first") if r["failures"]]  # the runs ran
    (warm,) = json.loads((tmp_path / "first" / "sweep_run.json").read_text())["warm_up"]
    assert warm["decoded"] and warm["events"] > 1000 and warm["path"] == str(recording)
    assert "decoded once per node in" in p.stdout and "2 runs would each" in p.stdout
    assert len(list(cache.glob("*.mlrc"))) == 1
    p = sweep(tmp_path, *args, "--out", "again", env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    (warm,) = json.loads((tmp_path / "again" / "sweep_run.json").read_text())["warm_up"]
    assert not warm["decoded"] and "already in the replay cache" in p.stdout
    assert table(tmp_path / "first") == table(tmp_path / "again")


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (children, theirs...)."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if entry.isdigit():
                stat = Path(f"/proc/{entry}/stat").read_text()
                parent[int(entry)] = int(stat.rpartition(")")[2].split()[1])
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


@pytest.mark.parametrize(
    ("engine", "sig"),
    [("local", signal.SIGINT), ("local", signal.SIGTERM), ("ray", signal.SIGINT)],
    ids=["local-SIGINT", "local-SIGTERM", "ray-SIGINT"],
)
def test_ctrl_c_cancels_the_whole_sweep(peak, engine, sig):
    if engine == "ray" and importlib.util.find_spec("ray") is None:
        pytest.skip(NO_RAY)
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "mlthon", "--log-level", "WARNING", "sweep", "peak.toml"),
            *("--grid", "x=1:6", "--synthetic-seconds", "100000", "--jobs", "2", "--out", "out"),
            *("--engine", engine),
        ],
        cwd=peak,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **RAY_ENV},
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(peak.glob("started-*"))) < 2:  # both runs going
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the runs did not start within 120 s"
            time.sleep(0.05)
        below = _descendants(proc.pid)
        assert len(below) >= 2
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err[-3000:]
    assert "mlthon sweep: cancelled; 0 runs had finished" in err
    assert "Traceback" not in err
    # Every process the sweep started is gone (the workers are stopped before it exits; helpers
    # such as multiprocessing's resource tracker go once they see their parent gone).
    deadline = time.monotonic() + 60
    while left := [pid for pid in below if Path(f"/proc/{pid}").exists()]:
        assert time.monotonic() < deadline, [Path(f"/proc/{p}/cmdline").read_text() for p in left]
        time.sleep(0.05)
    assert len(list(peak.glob("started-*"))) == 2  # nothing started after Ctrl-C


def test_random_search_with_full_reports_links_each_run_report(peak):
    args = ("peak.toml", "--grid", "x=10:20", "y=5", "--search", "random", "--trials", "2")
    p = sweep(peak, *args, "--synthetic-seconds", "2", "--reports", "--jobs", "2", "--out", "out")
    assert p.returncode == 0, p.stderr[-3000:]
    rows = json.loads((peak / "out" / "sweep.json").read_text())
    assert len(rows) == 2 and sorted(r["trial"] for r in rows) == [0, 1]
    html = (peak / "out" / "sweep.html").read_text()
    for r in rows:
        folder = Path(r["folder"])
        assert (peak / folder / "report.html").exists()
        assert not (peak / folder / "summary.html").exists()
        assert f'href="{folder.name}/report.html"' in html
    info = json.loads((peak / "out" / "sweep_run.json").read_text())
    assert info["search"] == "random" and info["search_seed"] == 1


NOISY = """\
import logging

from mlthon.api import Strategy

log = logging.getLogger("noisy")


class Noisy(Strategy):
    def on_start(self, params):
        for i in range(600):
            log.warning("noisy line %d", i)

    def on_stop(self, params):
        self.env.send_stop_ack()
"""


def test_workers_log_lines_printed_by_the_sweep_at_most_500_a_run(tmp_path):
    (tmp_path / "noisy.py").write_text(NOISY)
    (tmp_path / "noisy.toml").write_text(
        '[strategy]\nname = "noisy"\nclass = "noisy:Noisy"\n\n[instruments]\nuse = [9001]\n'
        "\n[params]\nk = 1\n"
    )
    p = sweep(tmp_path, "noisy.toml", "--grid", "k=1", "--synthetic-seconds", "1", "--out", "o")
    assert p.returncode == 0, p.stderr[-3000:]
    lines = [line for line in p.stderr.splitlines() if "noisy: noisy line" in line]
    assert len(lines) == 500 and lines[0].endswith("noisy line 0"), p.stderr[-2000:]
    assert "noisy: ... and 100 more log lines of this run" in p.stderr
