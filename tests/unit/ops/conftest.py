"""Helpers for the ops unit tests: an in-process bus on simulated time."""

from __future__ import annotations

from typing import Any

import pytest

from mlthon.infra.bus.inproc import InProcBus
from mlthon.infra.bus.topics import Topics
from mlthon.infra.clock import NS_PER_S, SimScheduler

T0 = 1_700_000_000 * NS_PER_S


class Sim:
    """A simulated-time world with one in-process bus and a log of what was published."""

    def __init__(self) -> None:
        self.sched = SimScheduler()
        self.sched.clock.advance_to(T0)
        self.bus = InProcBus(self.sched)
        self.topics = Topics("t")
        self.seen: list[tuple[str, Any]] = []
        self.bus.subscribe("t/#", lambda topic, msg: self.seen.append((topic, msg)))

    def run_for(self, seconds: float) -> None:
        self.sched.run_until(self.sched.now_ns() + int(seconds * NS_PER_S))

    def of(self, cls: type) -> list[Any]:
        return [msg for _, msg in self.seen if isinstance(msg, cls)]


@pytest.fixture
def sim() -> Sim:
    return Sim()
