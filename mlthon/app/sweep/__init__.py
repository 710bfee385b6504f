"""Parameter sweeps and searches of backtests, on local processes or a Ray cluster.

* :mod:`~mlthon.app.sweep.space`: ``--grid`` words, a search space checked against the
  strategy's parameters;
* :mod:`~mlthon.app.sweep.search`: grid, random and optuna searches (ask and tell);
* :mod:`~mlthon.app.sweep.engines`: where the runs execute (local processes, Ray tasks);
* :mod:`~mlthon.app.sweep.run`: the driver (cache warm-up, retries, ranking);
* :mod:`~mlthon.app.sweep.report`: ``sweep.html`` and each permutation's page;
* :mod:`~mlthon.app.sweep.cli`: ``mlthon sweep``.

``docs/sweeps.md`` tells how to use them.
"""
