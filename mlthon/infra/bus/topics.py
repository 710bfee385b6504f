"""The topic layout. Every topic starts with a configurable root (default ``mlt``).

==================================  =====================  ==================================
topic                               publisher -> reader    messages
==================================  =====================  ==================================
``{root}/ctl/login/{strat}``        strategy -> control    Login (payload ``strat`` = ``{strat}``)
``{root}/ctl/cmd``                  CLI/Telegram -> ctl    CmdRequest
``{root}/ctl/probe/{client}``       control -> itself      a start-up probe (any message)
``{root}/strat/{strat}/ctl``        control -> strategy    Start, Stop, Instruments, StratParams,
                                                           CmdHook, LoginReject, StopEscalated
``{root}/strat/{strat}/up``         strategy -> control    StopAck, CmdResult
``{root}/strat/{strat}/status``     strategy (retained)    StratStatus
``{root}/tg/{strat}``               strategy -> Telegram   TelegramPublish
``{root}/reply/{client}``           control -> requester   CmdResult
``{root}/gtw/{exchange}/req/{strat}`` strategy -> gateway  NewOrder ... FetchOrders (payload
                                                           ``strat`` must equal ``{strat}``)
``{root}/gtw/{exchange}/rpt/{strat}`` gateway -> strategy  acks, rejects, executions, infos
``{root}/gtw/{exchange}/status``    gateway (retained)     GatewayStatus
``{root}/md/{exchange}/{iid}``      feed -> strategies     BookUpdate, LevelUpdate, TradeUpdate,
                                                           FundingUpdate, FeedStatus (per book)
``{root}/feed/{exchange}/status``   feed (retained)        FeedStatus (whole feed)
``{root}/feed/{exchange}/events``   feed -> ops            FeedStatus per book (BookInvalid...)
``{root}/feed/{exchange}/req``      strategy -> feed       SnapshotRequest
``{root}/feed/{exchange}/hb``       feed -> strategies     FeedHeartbeat (QoS 0, every limit/4)
``{root}/status/{kind}/{name}``     every process (ret.)   ComponentStatus (heartbeat, last will)
==================================  =====================  ==================================

``{exchange}`` is the Exchange member's name (``BinanceUsdm``), ``{iid}`` the instrument id.

Each strategy sends its requests on its own topic, so that the broker's ACL can let a strategy
publish only its own requests (``topic write {root}/gtw/+/req/<name>``) and a gateway, which
reads ``gtw_req_all``, drops any request whose payload names another strategy than its topic.
"""

from __future__ import annotations

import re
from typing import TypeVar

from mlthon.basics.mlt_enum import Exchange

DEFAULT_ROOT = "mlt"

_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def check_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it is safe inside a topic level; raise ValueError otherwise."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(
            f"{what} {name!r} must be 1-64 characters of letters, digits, '_', '.' or '-'"
        )
    return name


class Topics:
    """Builds the topic names under one root."""

    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.root = root.rstrip("/")
        self._exchange_by_topic: dict[str, Exchange | None] = {}  # read on every report
        self._made: dict[tuple[Exchange, str, str], str] = {}

    def login(self, strat: str) -> str:
        """Where strategy ``strat`` logs in (its own topic, so that a secured broker's ACL lets
        a strategy log in under its own name only)."""
        return f"{self.root}/ctl/login/{strat}"

    def login_all(self) -> str:
        """Every strategy's login (the control service's subscription)."""
        return f"{self.root}/ctl/login/+"

    def login_strat(self, topic: str) -> str | None:
        """The strategy level of a ``ctl/login/{strat}`` topic (None if not one)."""
        parts = topic[len(self.root) + 1 :].split("/")
        if len(parts) == 3 and parts[0] == "ctl" and parts[1] == "login":
            return parts[2]
        return None

    def cmd(self) -> str:
        return f"{self.root}/ctl/cmd"

    def ctl_probe(self, client: str) -> str:
        """A starting control service's probe: its echo says every retained status was heard."""
        return f"{self.root}/ctl/probe/{client}"

    def strat_ctl(self, strat: str) -> str:
        return f"{self.root}/strat/{strat}/ctl"

    def strat_up(self, strat: str) -> str:
        return f"{self.root}/strat/{strat}/up"

    def strat_up_all(self) -> str:
        return f"{self.root}/strat/+/up"

    def strat_status(self, strat: str) -> str:
        return f"{self.root}/strat/{strat}/status"

    def strat_status_all(self) -> str:
        return f"{self.root}/strat/+/status"

    def telegram(self, strat: str) -> str:
        return f"{self.root}/tg/{strat}"

    def telegram_all(self) -> str:
        return f"{self.root}/tg/+"

    def reply(self, client: str) -> str:
        return f"{self.root}/reply/{client}"

    def gtw_req(self, exchange: Exchange, strat: str) -> str:
        """Where strategy ``strat`` sends its requests to the gateway of ``exchange``."""
        key = (exchange, strat, "req")
        topic = self._made.get(key)
        if topic is None:
            topic = _keep(self._made, key, f"{self.root}/gtw/{exchange.name}/req/{strat}")
        return topic

    def gtw_req_all(self, exchange: Exchange) -> str:
        """Every strategy's requests to the gateway of ``exchange`` (a gateway's subscription)."""
        return f"{self.root}/gtw/{exchange.name}/req/+"

    def req_strat(self, topic: str) -> str | None:
        """The strategy level of a ``gtw/{exchange}/req/{strat}`` topic (None if not one)."""
        parts = topic[len(self.root) + 1 :].split("/")
        if len(parts) == 4 and parts[0] == "gtw" and parts[2] == "req":
            return parts[3]
        return None

    def gtw_rpt(self, exchange: Exchange, strat: str) -> str:
        key = (exchange, strat, "rpt")
        topic = self._made.get(key)
        if topic is None:
            topic = _keep(self._made, key, f"{self.root}/gtw/{exchange.name}/rpt/{strat}")
        return topic

    def gtw_rpt_all_exchanges(self, strat: str) -> str:
        return f"{self.root}/gtw/+/rpt/{strat}"

    def gtw_status(self, exchange: Exchange) -> str:
        return f"{self.root}/gtw/{exchange.name}/status"

    def gtw_status_all(self) -> str:
        return f"{self.root}/gtw/+/status"

    def md(self, exchange: Exchange, instrument_id: int) -> str:
        return f"{self.root}/md/{exchange.name}/{instrument_id}"

    def feed_status(self, exchange: Exchange) -> str:
        return f"{self.root}/feed/{exchange.name}/status"

    def feed_events(self, exchange: Exchange) -> str:
        return f"{self.root}/feed/{exchange.name}/events"

    def feed_req(self, exchange: Exchange) -> str:
        return f"{self.root}/feed/{exchange.name}/req"

    def feed_heartbeat(self, exchange: Exchange) -> str:
        return f"{self.root}/feed/{exchange.name}/hb"

    def feed_heartbeat_all(self) -> str:
        return f"{self.root}/feed/+/hb"

    def feed_req_all(self) -> str:
        return f"{self.root}/feed/+/req"

    def feed_status_all(self) -> str:
        return f"{self.root}/feed/+/status"

    def component_status(self, kind: str, name: str) -> str:
        return f"{self.root}/status/{kind}/{name}"

    def component_status_all(self) -> str:
        return f"{self.root}/status/+/+"

    def exchange_of(self, topic: str) -> Exchange | None:
        """The exchange named in a ``gtw/...``, ``md/...`` or ``feed/...`` topic, if any."""
        known = self._exchange_by_topic
        try:
            return known[topic]
        except KeyError:
            pass
        return _keep(known, topic, self._exchange_of(topic))

    def _exchange_of(self, topic: str) -> Exchange | None:
        parts = topic[len(self.root) + 1 :].split("/")
        if len(parts) >= 2 and parts[0] in ("gtw", "md", "feed"):
            try:
                return Exchange[parts[1]]
            except KeyError:
                return None
        return None


def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT wildcard matching: ``+`` is one level, a final ``#`` is any number of levels."""
    p = pattern.split("/")
    t = topic.split("/")
    for i, part in enumerate(p):
        if part == "#":
            return True
        if i >= len(t):
            return False
        if part != "+" and part != t[i]:
            return False
    return len(p) == len(t)


_K = TypeVar("_K")
_V = TypeVar("_V")


def _keep(cache: dict[_K, _V], key: _K, value: _V) -> _V:
    """Remember ``value`` under ``key`` (topic names and the exchanges named in topics are
    asked on every request and report): the cache starts over past 4,096 entries."""
    if len(cache) >= 4096:
        cache.clear()
    cache[key] = value
    return value
