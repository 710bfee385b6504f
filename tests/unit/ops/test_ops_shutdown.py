"""mlthon kill's bus side: who a target names, and the listener's trigger."""

from __future__ import annotations

import pytest

from mlthon.infra.bus import messages as m
from mlthon.infra.ops.shutdown import ShutdownListener, shutdown_topic, target_matches


@pytest.mark.parametrize(
    ("target", "expected"),
    [("f1", True), ("feed/f1", True), ("42", True), ("42@h", True), ("43", False), ("g", False)],
)
def test_target_matches(target, expected):
    assert target_matches(target, [("feed", "f1")], 42, "h") is expected


def test_shutdown_listener_triggers_only_for_its_target(sim):
    reasons = []
    lst = ShutdownListener(sim.bus, sim.topics, [("feed", "f1")], reasons.append, pid=42, host="h")
    lst.start()
    sim.bus.publish(shutdown_topic(sim.topics), m.Shutdown(target="other"))
    sim.bus.publish(shutdown_topic(sim.topics), m.Shutdown(target="feed/f1", reason="ops"))
    sim.run_for(0)
    assert reasons == ["ops"]
    lst.stop()
    sim.bus.publish(shutdown_topic(sim.topics), m.Shutdown(target="f1"))
    sim.run_for(0)
    assert reasons == ["ops"]
