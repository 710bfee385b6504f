"""Which broker `mlthon run` starts when none answers: mosquitto when installed, else the
embedded amqtt broker, and a clear error when neither can serve what was asked."""

from __future__ import annotations

import pytest

from mlthon.app import launcher
from mlthon.basics.errors import ConfigError


@pytest.fixture
def machine(monkeypatch):
    """Set what this machine has: ``machine(mosquitto=..., amqtt=...)``."""

    def have(*, mosquitto: bool, amqtt: bool) -> None:
        monkeypatch.setattr(
            launcher, "find_mosquitto", lambda: "/usr/sbin/mosquitto" if mosquitto else None
        )
        monkeypatch.setattr(launcher, "embedded_broker_available", lambda: amqtt)

    return have


@pytest.mark.parametrize(
    ("mosquitto", "amqtt", "wanted", "chosen"),
    [
        (True, True, "auto", "mosquitto"),
        (False, True, "auto", "embedded"),
        (True, True, "embedded", "embedded"),
        (True, False, "mosquitto", "mosquitto"),
    ],
)
def test_the_broker_started(machine, mosquitto, amqtt, wanted, chosen):
    machine(mosquitto=mosquitto, amqtt=amqtt)
    assert launcher._broker_kind(wanted, False, "127.0.0.1", 1883) == chosen


def test_no_broker_at_all_says_how_to_get_one(machine):
    machine(mosquitto=False, amqtt=False)
    with pytest.raises(ConfigError) as err:
        launcher._broker_kind("auto", False, "127.0.0.1", 1883)
    text = str(err.value)
    assert "apt-get install -y mosquitto" in text
    assert "mlthon[broker]" in text
    assert "--single-process" in text


def test_secure_needs_mosquitto(machine):
    machine(mosquitto=False, amqtt=True)
    with pytest.raises(ConfigError, match="--secure needs mosquitto"):
        launcher._broker_kind("auto", True, "127.0.0.1", 1883)
    machine(mosquitto=True, amqtt=True)
    with pytest.raises(ConfigError, match="--secure needs mosquitto"):
        launcher._broker_kind("embedded", True, "127.0.0.1", 1883)
    assert launcher._broker_kind("auto", True, "127.0.0.1", 1883) == "mosquitto"


def test_mosquitto_asked_for_but_missing(machine):
    machine(mosquitto=False, amqtt=True)
    with pytest.raises(ConfigError, match="mosquitto is not installed"):
        launcher._broker_kind("mosquitto", False, "127.0.0.1", 1883)
