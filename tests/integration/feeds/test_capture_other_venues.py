"""The BitMEX, Deribit and Coinbase decoders also serve raw captures (``<recv_ns> <json>`` per
line, as hftbacktest and ``mlthon record`` write them): the venue is recognised from the JSON,
and the replay publishes exactly what the same session replayed from its cryptofeed log does."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from mlthon.feeds.readers import detect_format
from mlthon.feeds.replay import replay_files
from mlthon.infra.instruments import load_instruments

RECV = re.compile(r"^(\d+(?:\.\d+)?): (.*)$", re.S)


def _as_capture(log: Path, out: Path) -> int:
    """The received messages of a cryptofeed log as a capture; returns how many."""
    lines = []
    for text in log.read_text(encoding="utf-8").splitlines():
        m = RECV.match(text)
        if m:
            lines.append(f"{int(Decimal(m.group(1)) * 1_000_000_000)} {m.group(2)}")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


@pytest.mark.parametrize("venue", ["BITMEX.ws.1.0", "DERIBIT.ws.1.0", "COINBASE.ws.28.0"])
def test_a_capture_replays_like_the_cryptofeed_log(shared_data, tmp_path, venue):
    log = shared_data / "cryptofeed" / "sample_data" / venue
    cap = tmp_path / "capture.txt"
    assert _as_capture(log, cap) > 100
    assert detect_format(cap.read_bytes().split(b"\n", 1)[0]) == "capture"
    insts = load_instruments()
    from_log = replay_files([log], insts)
    msgs_log = list(from_log)
    from_cap = replay_files([cap], insts)
    msgs_cap = list(from_cap)
    assert from_cap.stats.bad == from_log.stats.bad == 0
    assert from_cap.stats.syncs == from_log.stats.syncs > 0
    assert msgs_cap == msgs_log
