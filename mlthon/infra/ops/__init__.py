"""The ops view: heartbeats and retained status, the status board, ``mlthon status`` /
``servers`` / ``kill`` / ``doctor``, the web status page and the Prometheus metrics.

Modules: :mod:`~mlthon.infra.ops.heartbeat` (what a process publishes),
:mod:`~mlthon.infra.ops.metering` (what it counts), :mod:`~mlthon.infra.ops.positions`,
:mod:`~mlthon.infra.ops.board` (what watchers see), :mod:`~mlthon.infra.ops.shutdown`,
:mod:`~mlthon.infra.ops.wiring` (attaching it all to a process), :mod:`~mlthon.infra.ops.web`,
:mod:`~mlthon.infra.ops.metrics`, :mod:`~mlthon.infra.ops.doctor` and
:mod:`~mlthon.infra.ops.cli`. See ``docs/operations.md``.
"""
