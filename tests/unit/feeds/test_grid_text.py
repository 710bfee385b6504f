"""Venue text that Python calls digits but int() refuses is bad data, not a crash of the feed."""

from __future__ import annotations

import pytest

from mlthon.basics.instrument import Instrument
from mlthon.basics.mlt_enum import Exchange, InstrumentKind
from mlthon.feeds.grid import BadValue, Grid

INST = Instrument(
    instrument_id=1,
    name="AAA",
    exchange=Exchange.BinanceUsdm,
    base="B",
    quote="Q",
    kind=InstrumentKind.Linear,
    tick_size="0.10",
    lot_size="0.001",
)


@pytest.mark.parametrize("text", ["10\u00b2", "1\u00b9.0", "\u00b3"])
def test_grid_superscript_digits_price_and_size_are_bad_values(text):
    grid = Grid(INST)
    with pytest.raises(BadValue):
        grid.tick_of(text)
    with pytest.raises(BadValue):
        grid.lots_of(text)


def test_grid_plain_text_still_converts():
    grid = Grid(INST)
    assert grid.tick_of("61800.30") == 618003
    assert grid.lots_of("0.014") == 14
