"""Two waits in a strategy's life cycle, each bounded: the start waits for the statuses, the stop
acknowledgement waits for the cancels.

* :class:`StartGate`: when the ``Start`` arrives, ``on_start`` runs only once the env has heard
  the gateway status and the feed status of every exchange of its instruments (retained
  statuses arrive right after the env subscribed; over MQTT a gateway that started late may not
  have published yet), or after ``wait_s`` (then it starts anyway and logs a WARNING naming what
  it did not hear). The control messages that arrive meanwhile (parameters, a stop, a command)
  wait and are handled after ``on_start`` in the order they came, so ``on_start``,
  ``on_instruments`` and ``on_strat_params_update`` keep their order.
* :class:`StopAckHold`: when the strategy calls ``send_stop_ack`` while cancels it sent since the
  ``Stop`` are unanswered, the ``StopAck`` waits until each got its answer, or ``hold_s`` passed
  (then it is sent with a WARNING).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from mlthon.infra.bus import messages as m
from mlthon.infra.clock import Handle, Scheduler

log = logging.getLogger(__name__)


class StartGate:
    """Defers a start until the statuses are known; see the module docstring.

    Args:
        scheduler: for the bound.
        wait_s: the bound (0: never wait).
        missing: what is still to be heard (e.g. ``["the Sim gateway's status"]``).
        start: runs the start (``on_start`` and what follows it).
        replay: handles one control message held meanwhile, as if it arrived now.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        wait_s: float,
        missing: Callable[[], list[str]],
        start: Callable[[m.Start], None],
        replay: Callable[[str, Any], None],
    ) -> None:
        self._scheduler = scheduler
        self.wait_ns = max(0, int(wait_s * 1e9))
        self._missing = missing
        self._start = start
        self._replay = replay
        self._pending: m.Start | None = None
        self._timer: Handle | None = None
        self._backlog: list[tuple[str, Any]] = []

    @property
    def waiting(self) -> bool:
        """True while a start waits."""
        return self._pending is not None

    def request(self, msg: m.Start) -> None:
        """Start now if every status was heard, else when they are (or at the bound)."""
        missing = self._missing() if self.wait_ns else []
        if not missing:
            self._start(msg)
            return
        self._pending = msg
        log.info(
            "env: on_start waits (at most %gs) until the env has heard %s",
            self.wait_ns / 1e9,
            ", ".join(missing),
        )
        self._timer = self._scheduler.call_later(self.wait_ns, self._expire)

    def hold(self, topic: str, msg: Any) -> None:
        """A control message that arrived while the start waits: handled after it."""
        self._backlog.append((topic, msg))

    def heard(self) -> None:
        """A status arrived: start if nothing is missing any more."""
        if self._pending is not None and not self._missing():
            self._open()

    def _expire(self) -> None:
        self._timer = None
        if self._pending is None:
            return
        log.warning(
            "env: starting without having heard %s within %gs (requests to an exchange not heard "
            "from are refused GtwNotReady until its gateway reports)",
            ", ".join(self._missing()) or "every status",
            self.wait_ns / 1e9,
        )
        self._open()

    def _open(self) -> None:
        msg = self._pending
        self._pending = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if msg is None:
            return
        self._start(msg)
        backlog, self._backlog = self._backlog, []
        for topic, held in backlog:
            self._replay(topic, held)

    def close(self) -> None:
        """Forget a waiting start (the process is ending)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending = None
        self._backlog.clear()


class StopAckHold:
    """Holds the ``StopAck`` while cancels are unanswered; see the module docstring.

    Args:
        scheduler: for the bound.
        hold_s: the bound.
        in_flight: how many cancels sent since the stop are still unanswered.
        send: sends the ``StopAck`` (with a note for the log: "" when nothing was waited for).
    """

    def __init__(
        self,
        scheduler: Scheduler,
        hold_s: float,
        in_flight: Callable[[], int],
        send: Callable[[str], None],
    ) -> None:
        self._scheduler = scheduler
        self.hold_ns = max(0, int(hold_s * 1e9))
        self._in_flight = in_flight
        self._send = send
        self._timer: Handle | None = None
        self._since = 0
        self.held = 0

    @property
    def holding(self) -> bool:
        """True while an acknowledgement waits."""
        return self._timer is not None

    def request(self) -> None:
        """The strategy acknowledged its stop: send now, or once its cancels are answered."""
        if self.holding:
            return
        n = self._in_flight()
        if n == 0 or self.hold_ns == 0:
            self._send("")
            return
        self.held += 1
        self._since = self._scheduler.now_ns()
        log.info(
            "env: stop acknowledgement held until %d cancel request(s) sent since the stop are "
            "answered (at most %gs)",
            n,
            self.hold_ns / 1e9,
        )
        self._timer = self._scheduler.call_later(self.hold_ns, self._expire)

    def check(self) -> None:
        """A cancel was answered: send the held acknowledgement if none is left."""
        if self._timer is not None and self._in_flight() == 0:
            self._timer.cancel()
            self._timer = None
            waited = (self._scheduler.now_ns() - self._since) / 1e9
            self._send(f" after its cancels were answered ({waited:.3f}s)")

    def _expire(self) -> None:
        self._timer = None
        n = self._in_flight()
        log.warning(
            "env: %d cancel request(s) still unanswered %gs after the strategy acknowledged its "
            "stop; stop acknowledged anyway",
            n,
            self.hold_ns / 1e9,
        )
        self._send(f" with {n} cancel request(s) unanswered after {self.hold_ns / 1e9:g}s")

    def close(self) -> None:
        """Forget a held acknowledgement (the process is ending)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
