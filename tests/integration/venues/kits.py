"""Both live venues behind one description, for tests that run the same scenario on each: the
fake exchange, the gateway factory, a test instrument and a config pointing at the fake."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import attrs

from mlthon.basics.mlt_enum import Exchange, Side
from mlthon.gateways.binance_usdm.gateway import build_gateway as build_binance
from mlthon.gateways.bybit_v5.gateway import build_gateway as build_bybit
from mlthon.gateways.live.config import Credentials, LiveGatewayConfig
from mlthon.infra.bus.messages import NewOrder
from tests.fakes.venues import binance, bybit
from tests.integration.venues.support import STRAT, Harness, running


@dataclass(frozen=True)
class Kit:
    """One venue: its fake, its gateway factory and the instrument the tests trade."""

    exchange: Exchange
    fake: Callable[[], Any]
    build: Callable[..., Any]
    iid: int
    creds: Credentials

    def config(self, fx: Any, **kw: object) -> LiveGatewayConfig:
        ws = fx.ws_url if self.exchange is Exchange.BinanceUsdm else fx.private_url
        base = LiveGatewayConfig(
            exchange=self.exchange,
            rest_url=fx.rest_url,
            ws_url=ws,
            request_timeout_s=1.0,
            reconnect_max_s=0.2,
            maintenance_probe_s=0.05,
        )
        return attrs.evolve(base, **kw)  # type: ignore[arg-type]

    def new(
        self,
        cl_id: str,
        price: str = "49000.0",
        qty: str = "0.010",
        strat: str = STRAT,
        **kw: object,
    ) -> NewOrder:
        fields: dict[str, object] = {
            "strat": strat,
            "cl_id": cl_id,
            "instrument_id": self.iid,
            "side": Side.Buy,
            "price": price,
            "qty": qty,
        }
        fields.update(kw)
        return NewOrder(**fields)  # type: ignore[arg-type]

    @contextlib.asynccontextmanager
    async def venue(self) -> AsyncIterator[Any]:
        """The fake exchange, its BTCUSDT book at 50000.0 / 50000.1."""
        async with self.fake() as fx:
            fx.best["BTCUSDT"] = (Decimal("50000.0"), Decimal("50000.1"))
            yield fx

    @contextlib.asynccontextmanager
    async def gateway(self, fx: Any, **kw: object) -> AsyncIterator[Harness]:
        """The venue's live gateway on an in-process bus, against ``fx``."""
        async with running(self.build, self.config(fx, **kw), self.creds, self.exchange) as h:
            yield h


BINANCE = Kit(
    Exchange.BinanceUsdm,
    binance.FakeBinance,
    build_binance,
    1001,
    Credentials(binance.API_KEY, binance.API_SECRET),
)
BYBIT = Kit(
    Exchange.Bybit, bybit.FakeBybit, build_bybit, 2001, Credentials(bybit.API_KEY, bybit.API_SECRET)
)
KITS = [BINANCE, BYBIT]
KIT_IDS = ["binance", "bybit"]
