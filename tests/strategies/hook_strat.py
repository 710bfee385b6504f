"""A small strategy for process-level tests: a command hook that answers with its params and
publishes them as a Telegram message, and an order on start."""

from __future__ import annotations

from mlthon.api import Strategy
from mlthon.basics import Exchange, Side


class HookStrat(Strategy):
    def __init__(self, params: dict) -> None:
        super().__init__()
        self.params = params

    def on_start(self, params: str) -> None:
        self.env.add_cmd_hook("echo", self.echo)

    def echo(self, params: list[str]) -> str:
        """Answer with the params."""
        self.env.publish_telegram("echo " + " ".join(params))
        return "echo:" + ",".join(params)

    def on_strat_params_update(self, strat_params: dict) -> None:
        self.params = strat_params
        if strat_params.get("order"):
            self.env.send_new_order(None, Exchange.Sim, 9001, Side.Buy, "100.0", "0.001")
