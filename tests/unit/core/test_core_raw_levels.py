"""Levels straight from the venue's JSON give what the text path gives: the same book changes,
statuses, counters and bad-data reports, whatever the texts (plain, off the grid, with an
exponent, a sign, too many digits or decimals, zero, not numbers at all)."""

from __future__ import annotations

import importlib

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange, InstrumentKind
from mlthon.feeds.engine import FeedEngine
from mlthon.feeds.events import SEQ_PREV, DepthDiff, DepthSnapshot
from mlthon.feeds.levels import py_count_levels, text_levels

try:
    core_levels = importlib.import_module("mlthon._core.levels")
except ImportError:  # pragma: no cover - a machine without a C compiler
    pytest.skip("compiled core not built", allow_module_level=True)

EX = Exchange.BinanceUsdm
INST = Instrument(
    instrument_id=1,
    name="AAA",
    exchange=EX,
    base="B",
    quote="Q",
    kind=InstrumentKind.Linear,
    tick_size="0.10",
    lot_size="0.001",
)

plain_price = st.integers(1, 5000).map(lambda t: f"{t / 10:.1f}")
odd_price = st.sampled_from(
    [
        "100.05",
        "100.10",
        "100.100",
        "0",
        "0.0",
        "-1.0",
        "1e2",
        " 100.0",
        ".5",
        "5.",
        "",
        ".",
        "1.2.3",
        "99999999999999999999.0",
        "100",
        "0100.0",
        "1E3",
        "nan",
        "\u0661\u0660\u0660",
        "10\u00b2",
    ]
)
plain_size = st.integers(0, 50_000).map(lambda n: f"{n / 1000:.3f}")
odd_size = st.sampled_from(
    [
        "0",
        "0.0005",
        "1.0001",
        "-0.001",
        "1e-3",
        "2",
        "2.",
        ".002",
        "0.0010",
        "12345678901234567890",
        "",
        "x",
        "0.00100",
    ]
)
level = st.tuples(
    st.one_of(plain_price, plain_price, plain_price, odd_price),
    st.one_of(plain_size, plain_size, plain_size, odd_size),
)


def _engine(out: list, reports: list) -> FeedEngine:
    eng = FeedEngine([INST], out.append)
    eng.bad_data = lambda why, src="", line=0: reports.append((why, src, line))  # type: ignore[method-assign]
    return eng


def _run(diffs: list[tuple[list, list]], raw: bool):
    out: list = []
    reports: list = []
    eng = _engine(out, reports)
    snap = DepthSnapshot("AAA", 0, 10, SEQ_PREV, False, [("90.0", "1.000")], [("110.0", "1.000")])
    eng.on_event(1, EX, snap, "t", 1)
    last = 10
    for k, (bids, asks) in enumerate(diffs):
        if raw:
            b: list | bytes = msgspec.json.encode(bids)
            a: list | bytes = msgspec.json.encode(asks)
            assert core_levels.count_levels(b) == len(bids)
        else:
            b, a = bids, asks
        eng.on_event(
            k + 2, EX, DepthDiff("AAA", 0, last + 1, last + 1, last, SEQ_PREV, b, a), "t", k
        )
        last += 1
    books = eng.price_book(EX, 1)
    return out, reports, eng.stats, (books.depth(1), books.depth(2))


@settings(max_examples=250, deadline=None)
@given(st.lists(st.tuples(st.lists(level, max_size=12), st.lists(level, max_size=12)), max_size=8))
def test_raw_levels_same_changes_reports_and_book_as_text(diffs):
    assert _run(diffs, raw=True) == _run(diffs, raw=False)


@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b' [ [ "1.0" , "2" ] , ["3","4"] ] ',
        b'[["1.0","2"]]',
    ],
)
def test_count_levels_takes_arrays_of_string_pairs(raw):
    assert core_levels.count_levels(raw) == py_count_levels(raw) == len(text_levels(raw))


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"[",
        b'[["1.0","2"]',
        b'[["1.0",2]]',
        b'[["1.0","2","3"]]',
        b'[["1.0"]]',
        b'[["1\\u0030","2"]]',
        b'[["1.0","2"]] x',
        b'{"a":1}',
        b'[["1.0","2"],]',
        b"5",
    ],
)
def test_count_levels_refuses_anything_else(raw):
    assert core_levels.count_levels(raw) == -1
