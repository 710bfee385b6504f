"""Building the strategy a config names: what a user is told when it cannot be built."""

from __future__ import annotations

import pytest

from mlthon.api import IStrategy, Strategy
from mlthon.basics.errors import ConfigError
from mlthon.infra.runner import instantiate_strategy


class HalfDone(IStrategy):
    def on_framework_connected(self, env):  # type: ignore[no-untyped-def]
        env.login("half")


class NeedsTwo(Strategy):
    def __init__(self, params: dict, extra: int) -> None:  # type: ignore[type-arg]
        super().__init__()


class WithParams(Strategy):
    def __init__(self, params: dict) -> None:  # type: ignore[type-arg]
        super().__init__()
        self.params = params


def test_an_istrategy_with_missing_callbacks_is_pointed_at_strategy():
    with pytest.raises(ConfigError) as err:
        instantiate_strategy(HalfDone, {}, "half")
    text = str(err.value)
    assert "cannot construct HalfDone" in text
    assert "leaves 33 IStrategy callbacks unimplemented (on_account_info, on_add_level" in text
    assert "derive it from mlthon.api.Strategy" in text


def test_a_constructor_that_cannot_be_called_says_why():
    with pytest.raises(ConfigError) as err:
        instantiate_strategy(NeedsTwo, {}, "two")
    assert "cannot construct NeedsTwo" in str(err.value) and "extra" in str(err.value)


def test_not_a_strategy_is_refused_and_params_are_passed():
    with pytest.raises(ConfigError, match="is not an IStrategy"):
        instantiate_strategy(dict, {}, "x")  # type: ignore[arg-type]
    s = instantiate_strategy(WithParams, {"size": "0.01"}, "wp")
    assert isinstance(s, WithParams) and s.params == {"size": "0.01"}
