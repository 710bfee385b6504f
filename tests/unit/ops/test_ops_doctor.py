"""mlthon doctor: one test per failing check, and the exit code."""

from __future__ import annotations

import socket
from pathlib import Path

from mlthon.infra.bus import messages as m
from mlthon.infra.clock import NS_PER_S
from mlthon.infra.ops import doctor as dr
from mlthon.infra.ops.board import StatusBoard
from mlthon.infra.ops.cli import doctor_main, run_doctor

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "demo_strat" / "market_maker.toml"


def _board_with(sim, *statuses):
    board = StatusBoard(sim.bus, sim.sched, sim.topics)
    board.start()
    for st in statuses:
        sim.bus.publish(sim.topics.component_status(st.kind, st.name), st, retain=True)
    sim.run_for(0)
    return board


def _status(sim, name, *, version="0.1.0", ts_offset_s=0.0):
    return m.ComponentStatus(
        name=name,
        kind="feed",
        state="up",
        ts=sim.sched.now_ns() + int(ts_offset_s * NS_PER_S),
        version=version,
        heartbeat_s=5.0,
    )


def test_doctor_config_ok_and_bad_file_fails(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[strategy\nname=", encoding="utf-8")
    ok, fail = dr.check_config([DEMO, bad])
    assert ok.verdict == dr.OK
    assert fail.verdict == dr.FAIL and "bad.toml" in fail.why and fail.fix


def test_doctor_bad_instruments_file_fails(tmp_path):
    bad = tmp_path / "instruments.toml"
    bad.write_text('[[instrument]]\ninstrument_id = "x"\n', encoding="utf-8")
    assert dr.check_instruments(None).verdict == dr.OK
    assert dr.check_instruments(bad).verdict == dr.FAIL


def test_doctor_world_readable_token_file_fails(tmp_path):
    token = tmp_path / "token"
    token.write_text("123:abc", encoding="utf-8")
    tg = tmp_path / "telegram.toml"
    tg.write_text('[telegram]\ntoken_file = "token"\n', encoding="utf-8")
    token.chmod(0o644)
    (check,) = dr.check_secrets(tg, [])
    assert check.verdict == dr.FAIL and check.fix == f"chmod 600 {token}"
    token.chmod(0o600)
    assert dr.check_secrets(tg, [])[0].verdict == dr.OK
    (missing,) = dr.check_secrets(None, [tmp_path / "nope"])
    assert missing.verdict == dr.FAIL


def test_doctor_low_disk_fails(tmp_path):
    (check,) = dr.check_disk([tmp_path / "logs" / "not-yet"], min_free_mb=1e15)
    assert check.verdict == dr.FAIL and "MB free" in check.why
    assert dr.check_disk([tmp_path], min_free_mb=0.001)[0].verdict == dr.OK


def test_doctor_clock_ahead_fails_and_no_component_warns(sim):
    assert dr.check_clock(_board_with(sim), 2.0).verdict == dr.WARN
    board = _board_with(sim, _status(sim, "a"), _status(sim, "b", ts_offset_s=10))
    check = dr.check_clock(board, 2.0)
    assert check.verdict == dr.FAIL and "feed/b is 10.0s ahead" in check.why


def test_doctor_versions_disagree_fails(sim):
    board = _board_with(sim, _status(sim, "a", version="0.1.0"), _status(sim, "b", version="0.2.0"))
    check = dr.check_versions(board, local="0.1.0")
    assert check.verdict == dr.FAIL and "0.2.0: feed/b" in check.why
    agreed = _board_with(sim, _status(sim, "b", version="0.1.0"))  # b upgraded
    assert dr.check_versions(agreed, local="0.1.0").verdict == dr.OK
    assert dr.check_versions(agreed, local="0.3.0").verdict == dr.WARN


def test_doctor_stale_component_warns(sim):
    board = _board_with(sim, _status(sim, "old", ts_offset_s=-60))
    assert dr.check_stale(board).verdict == dr.WARN


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_doctor_unreachable_broker_fails():
    opts = dr.DoctorOptions(port=_free_port(), connect_timeout_s=0.3)
    checks = await run_doctor(opts, settle_s=0)
    broker = [c for c in checks if c.name == "broker"]
    assert broker[0].verdict == dr.FAIL and "mlthon broker" in broker[0].fix
    assert dr.verdict(checks) == 1


def test_doctor_main_exit_code_and_lines(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("nope", encoding="utf-8")
    argv = ["--strategy", str(bad), "--port", str(_free_port()), "--connect-timeout", "0.3"]
    assert doctor_main([*argv, "--settle", "0", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] config:" in out and "[FAIL] broker:" in out and "failed" in out
