"""A callback that raises on every event is logged in full once, then in one line at its 10th,
100th... time; the count and the error hook see every one, and a different error from the
same callback is logged in full again."""

from __future__ import annotations

import logging

from mlthon.infra.clock import SimScheduler
from mlthon.infra.reactor import Reactor


def test_repeated_errors_are_logged_once_in_full_then_counted(caplog):
    hooked: list[str] = []
    r = Reactor(SimScheduler(), name="strategy[t]", on_error=lambda n, e: hooked.append(n))

    def on_tick(i: int) -> None:
        if i < 0:
            raise KeyError(i)
        raise ValueError(f"bad tick {i}")

    with caplog.at_level(logging.ERROR, logger="mlthon.infra.reactor"):
        for i in range(1, 151):
            assert r.invoke(on_tick, i) is None
        r.invoke(on_tick, -1)
    full = [rec for rec in caplog.records if rec.exc_info]
    lines = [rec.getMessage() for rec in caplog.records if not rec.exc_info]
    assert r.callback_errors == 151 and len(hooked) == 151
    # The first ValueError and the first KeyError come with their tracebacks ...
    assert [rec.exc_info[0] for rec in full] == [ValueError, KeyError]  # type: ignore[index]
    assert "on_tick(1) raised ValueError: bad tick 1" in full[0].getMessage()
    # ... the repeats of the ValueError in one line at the 10th and the 100th.
    assert len(lines) == 2
    assert "(10 times so far; last: bad tick 10)" in lines[0]
    assert "(100 times so far; last: bad tick 100)" in lines[1]
    assert "test_reactor_errors.py" in lines[0]
    assert r.last_error == "on_tick: KeyError: -1"
