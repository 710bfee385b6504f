from decimal import Decimal

import pytest

from mlthon.api.istrat_env import MDSub
from mlthon.basics import (
    CancelCode,
    Exchange,
    FeedHandlerStatus,
    GtwRejectCode,
    GtwStatus,
    Instrument,
    InstrumentKind,
    MltEnum,
    Side,
)


def test_reference_enum_members_exist_with_reference_values():
    assert GtwRejectCode.GtwNotReady.value == 1000
    assert {m.name for m in MDSub} >= {
        "OrderBook",
        "LevelBook",
        "PriceLevelBook",
        "BBO",
        "PublicTrades",
    }
    assert (MDSub.OrderBook.value, MDSub.PublicTrades.value) == (0, 4)
    assert {"ReadyToTrade", "Connecting", "Maintenance"} <= {m.name for m in GtwStatus}
    assert {"SnapshotStart", "SnapshotEnd", "Disconnected"} <= {m.name for m in FeedHandlerStatus}
    assert {"Unset", "CanceledByUser", "SelfTradePrevention"} <= {m.name for m in CancelCode}
    assert issubclass(MDSub, MltEnum) and issubclass(Side, MltEnum)


def test_from_name_is_case_insensitive_and_lists_valid_names():
    assert Exchange.from_name("bybit") is Exchange.Bybit
    with pytest.raises(ValueError, match="valid: Unset, Buy, Sell"):
        Side.from_name("long")


def test_instrument_accessors_and_grid():
    inst = Instrument(
        instrument_id=30000000000,
        name="BTCUSD",
        exchange=Exchange.Bybit,
        base="BTC",
        quote="USD",
        kind=InstrumentKind.Inverse,
        tick_size="0.5",
        lot_size="1",
    )
    assert inst.get_instrument_name() == "BTCUSD"
    assert inst.get_instrument_id() == 30000000000
    assert inst.settlement == "BTC"
    assert inst.price("9226.5").value == Decimal("9226.5")
    with pytest.raises(ValueError, match="tick"):
        inst.price("9226.3")
    assert inst.round_price("9226.3") == inst.price("9226.5")


@pytest.mark.parametrize(
    "field,value", [("tick_size", "0"), ("lot_size", "-1"), ("tick_size", 0.1)]
)
def test_instrument_rejects_bad_grid(field, value):
    kw = dict(
        instrument_id=1,
        name="X",
        exchange=Exchange.Sim,
        base="A",
        quote="B",
        kind=InstrumentKind.Spot,
        tick_size="0.1",
        lot_size="1",
    )
    kw[field] = value
    with pytest.raises((ValueError, TypeError)):
        Instrument(**kw)
