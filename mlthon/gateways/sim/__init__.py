"""The simulated exchange: a pure matching core (:mod:`.matching`) with queue, latency and fee
models and accounts, served on the bus by :class:`~mlthon.gateways.sim.gateway.SimGateway`.

In-process backtest without a bus::

    engine = MatchingEngine(instruments, sink, queue_model=power_queue(2.0, seed=1))
    engine.on_market_data(book_update, ts)     # every market-data message, in time order
    engine.new_order(new_order_msg, ts)        # requests at their exchange arrival time
"""

from mlthon.gateways.sim.accounting import Account, FundingPayment, Leg, Position
from mlthon.gateways.sim.config import PROFILES, SimGatewayConfig
from mlthon.gateways.sim.fees import FeeModel, FeeRates
from mlthon.gateways.sim.gateway import SimGateway
from mlthon.gateways.sim.latency import (
    FixedDelay,
    LatencyConfig,
    LatencyModel,
    LogNormalDelay,
    UniformDelay,
)
from mlthon.gateways.sim.matching import MatchingEngine, ReportSink
from mlthon.gateways.sim.queue import (
    ConservativeQueue,
    ProbabilisticQueue,
    QueueModel,
    log_queue,
    power_queue,
    queue_model_from_name,
)

__all__ = [
    "PROFILES",
    "Account",
    "ConservativeQueue",
    "FeeModel",
    "FeeRates",
    "FixedDelay",
    "FundingPayment",
    "LatencyConfig",
    "LatencyModel",
    "Leg",
    "LogNormalDelay",
    "MatchingEngine",
    "Position",
    "ProbabilisticQueue",
    "QueueModel",
    "ReportSink",
    "SimGateway",
    "SimGatewayConfig",
    "UniformDelay",
    "log_queue",
    "power_queue",
    "queue_model_from_name",
]
