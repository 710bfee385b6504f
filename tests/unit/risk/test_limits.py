"""The [risk] table of a strategy file: read with every other table, refused with the key named."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from mlthon.basics.errors import ConfigError
from mlthon.infra.config import parse_strategy_config
from mlthon.infra.risk.limits import InstrumentLimits, RiskConfig


def config(risk: Any) -> dict[str, Any]:
    return {
        "strategy": {"name": "s", "class": "m:C"},
        "instruments": {"use": [9001]},
        "risk": risk,
    }


def test_risk_table_absent_or_empty_gives_no_risk_layer():
    assert parse_strategy_config(config({})).risk is None
    data = config({})
    del data["risk"]
    assert parse_strategy_config(data).risk is None


def test_risk_table_read_with_instrument_overrides():
    cfg = parse_strategy_config(
        config(
            {
                "max_order_qty": "0.5",
                "price_band_pct": 5,
                "max_open_orders": 10,
                "max_daily_loss": "100",
                "flatten_on_halt": True,
                "instruments": {"BTCUSDT": {"max_position": "1"}, "9001": {"max_order_qty": "2"}},
            }
        )
    ).risk
    assert cfg is not None
    assert cfg.every == InstrumentLimits(max_order_qty=Decimal("0.5"), price_band_pct=Decimal(5))
    assert cfg.instruments["BTCUSDT"].max_position == Decimal(1)
    assert cfg.max_open_orders == 10 and cfg.flatten_on_halt and cfg.watches_loss
    assert cfg.max_cancel_rate is None and cfg.max_gross_exposure is None


@pytest.mark.parametrize(
    ("risk", "key", "text"),
    [
        ({"max_order_qtty": "1"}, "risk.max_order_qtty", "unknown key 'max_order_qtty'"),
        ({"max_order_qty": 0.5}, "risk.max_order_qty", "got the float 0.5"),
        ({"max_order_qty": "-1"}, "risk.max_order_qty", ""),
        ({"max_open_orders": 0}, "risk.max_open_orders", ">= 1"),
        ({"max_order_rate": 1.5}, "risk.max_order_rate", "must be an integer"),
        ({"price_band_pct": float("nan")}, "risk.price_band_pct", "finite"),
        ({"flatten_on_halt": "yes"}, "risk.flatten_on_halt", "true or false"),
        (
            {"instruments": {"BTCUSDT": {"max_open_orders": 1}}},
            "risk.instruments.BTCUSDT.max_open_orders",
            "unknown key",
        ),
        ({"instruments": {"BTC USDT": {}}}, "risk.instruments.BTC USDT", "id or name"),
        ("strict", "risk", "must be a table"),
    ],
)
def test_risk_table_bad_value_refused_naming_the_key(risk, key, text):
    with pytest.raises(ConfigError) as info:
        parse_strategy_config(config(risk), "s.toml")
    assert info.value.key == key
    assert text in str(info.value)


def test_with_defaults_own_keys_win_and_left_off_ones_come_from_the_desk() -> None:
    D = Decimal
    desk = RiskConfig(
        every=InstrumentLimits(max_order_qty=D(1), price_band_pct=D(5)),
        instruments={"BTCUSDT": InstrumentLimits(max_position=D(3), max_order_qty=D("0.5"))},
        max_open_orders=10,
        max_daily_loss=D(100),
        flatten_on_halt=True,
        loss_check_s=0.5,
    )
    own = RiskConfig(
        every=InstrumentLimits(max_order_qty=D(2)),
        instruments={"BTCUSDT": InstrumentLimits(max_position=D(1))},
        max_open_orders=3,
    )
    merged = own.with_defaults(desk)
    assert merged.every == InstrumentLimits(max_order_qty=D(2), price_band_pct=D(5))
    assert merged.instruments["BTCUSDT"] == InstrumentLimits(
        max_order_qty=D("0.5"), max_position=D(1)
    )
    assert (merged.max_open_orders, merged.max_daily_loss) == (3, D(100))
    assert merged.flatten_on_halt and merged.loss_check_s == 0.5
    assert RiskConfig().with_defaults(desk) == desk
