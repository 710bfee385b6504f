"""A strategy that records every callback it receives, in order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlthon.api import IStrategy, Strategy

CALLBACKS = sorted(IStrategy.__abstractmethods__ | {"on_instruments", "on_strat_params_update"})


class Recorder(Strategy):
    """Records ``(callback name, args)`` in :attr:`calls`; ``before`` hooks may act on a call.

    ``hooks[name]`` (if set) runs after recording, with the same arguments, so a test can make the
    strategy react (send orders, raise...).
    """

    def __init__(self, name: str = "rec", *, auto_ack_stop: bool = True) -> None:
        super().__init__(name)
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.hooks: dict[str, Callable[..., Any]] = {}
        self.auto_ack_stop = auto_ack_stop

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]

    def of(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.calls if n == name]


def _make(name: str) -> Callable[..., Any]:
    base = getattr(Strategy, name)

    def cb(self: Recorder, *args: Any) -> Any:
        self.calls.append((name, args))
        if name == "on_framework_connected":
            base(self, *args)  # keeps env and logs in
        elif name == "on_stop" and self.auto_ack_stop:
            base(self, *args)
        hook = self.hooks.get(name)
        if hook is not None:
            return hook(*args)
        return None

    cb.__name__ = name
    return cb


for _n in CALLBACKS:
    setattr(Recorder, _n, _make(_n))
