"""The risk layer between a strategy's env and its gateways (``docs/risk.md``).

* :mod:`.limits`: the ``[risk]`` table, read and checked (:class:`~.limits.RiskConfig`);
* :mod:`.positions`: the strategy's positions, PnL and working orders, from its own fills;
* rates: :mod:`mlthon.basics.token_bucket` (the rolling-window limit the live gateways use too);
* :mod:`.guard`: the one check of every request, and the trading state
  (:class:`~.guard.RiskGuard`);
* :mod:`.states`: a trading state as an operator types it.
"""
