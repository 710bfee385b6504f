"""`mlthon run`: paper trading in separate processes and in one, reaching fills, and a Ctrl-C
that stops everything and leaves no process behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlthon.infra.broker import free_port
from tests.conftest import REPO, wait_until
from tests.running import mlthon

pytestmark = pytest.mark.integration


def fast_mm_config(tmp_path: Path, port: int) -> Path:
    """The demo market maker, quoting tight and small so that it fills within seconds."""
    text = (REPO / "demo_strat" / "market_maker.toml").read_text()
    text = text.replace("spread_ticks = 4", "spread_ticks = 1")
    text = text.replace("requote_ms = 500", "requote_ms = 200")
    text += f'\n[bus]\nhost = "127.0.0.1"\nport = {port}\nroot = "runtest"\n'
    cfg = tmp_path / "mm.toml"
    cfg.write_text(text)
    return cfg


def children_of(pid: int) -> set[int]:
    out: set[int] = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                out.add(int(d.name))
                out |= children_of(int(d.name))
    return out


async def run_until_fill(args: list[str], wait_s: float = 60) -> tuple[int, list[str], set[int]]:
    """Run ``mlthon`` with ``args`` (``run ...``), wait for the market maker's first fill, press
    Ctrl-C; return the exit code, the output lines and the processes it had started."""
    async with mlthon(*args) as run:
        # The market maker's fills are announced on Telegram's topic and logged by the env.
        await wait_until(
            lambda: any("-> position" in ln for ln in run.lines),
            wait_s,
            "a fill of the market maker",
        )
        kids = children_of(run.proc.pid)
        rc = await run.interrupt()
    return rc, run.lines, kids


@pytest.mark.parametrize(
    ("single", "broker"),
    [(False, "mosquitto"), (False, "embedded"), (True, None)],
    ids=["processes", "processes-embedded-broker", "single-process"],
)
async def test_run_reaches_fills_and_ctrl_c_stops_everything(tmp_path, single, broker):
    cfg = fast_mm_config(tmp_path, free_port())
    args = ["--log-level", "INFO", "run", str(cfg), "--speed", "20"]
    if single:
        args.append("--single-process")
    else:
        # mosquitto when installed; the embedded amqtt broker of machines without it
        args += ["--broker", broker]
    rc, lines, kids = await run_until_fill(args)
    if not single:
        assert len(kids) >= 5  # broker, control, gateway, feed, strategy
    text = "\n".join(lines)
    assert rc == 0, text[-4000:]
    if broker == "embedded":
        assert "the embedded amqtt broker serves" in text
    assert "stopped (acknowledged)" in text or "acknowledged its stop" in text
    for pid in kids:
        assert (
            not Path(f"/proc/{pid}").exists()
            or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
        ), f"{pid} left running"


async def test_run_replays_a_recording_named_on_the_command_line(tmp_path):
    """`--data`, `--instruments` and `--set` reach every process of a paper run: the gateway and
    feed of the recording's venue, and the strategy's parameters (the file names Sim 9001)."""
    cfg = fast_mm_config(tmp_path, free_port())
    args = ["--log-level", "INFO", "run", str(cfg)]
    args += ["--data", str(REPO / "mlthon" / "data" / "sample_binance_usdm_btcusdt.gz")]
    args += ["--speed", "5", "--instruments", "1001"]
    args += ["--set", "exchange=BinanceUsdm", "instrument_id=1001", "size=0.002"]
    rc, lines, _kids = await run_until_fill(args, 90)
    text = "\n".join(lines)
    assert rc == 0, text[-4000:]
    fill = next(ln for ln in lines if "-> position" in ln)
    # BTCUSDT traded near 61,800 in the recording (the synthetic SIMUSDT starts at 100), in
    # lots of the parameter given on the command line.
    size, price = fill.split(": ", 2)[-1].split(" -> ")[0].split()[1::2]
    assert 50_000 < float(price) < 70_000, fill
    assert size in ("0.002", "0.001"), fill
