"""Reconciliation of a restarted simulated gateway with its journal.

:func:`reconcile` loads the exchange state a previous run stored (accounts, then orders and id
counters) into a fresh :class:`~mlthon.gateways.sim.matching.MatchingEngine`, then checks it
against the journal's own record of what was reported:

* every stored position must equal the sum of the journaled fills of that strategy and instrument
  (the accounting check of the gateway side);
* every order the journal shows open (acked, not yet filled or cancelled) must be open in the
  stored state, and the reverse.

It returns what it found and what the gateway must still do: publish the reports committed after
the ``sent`` watermark (they may never have reached the broker) and answer the requests that
arrived but were never handled.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import attrs

from mlthon.basics.mlt_enum import InstrumentKind, Side
from mlthon.gateways.journal import JournaledReport, JournaledRequest, OrderJournal
from mlthon.gateways.sim.matching import MatchingEngine
from mlthon.gateways.sim.state import account_into, order_from_state
from mlthon.infra.bus.messages import (
    NewOrderAck,
    OrderCancelled,
    OrderExecution,
)


@attrs.define
class Reconciliation:
    """The outcome of a restart's reconciliation.

    Attributes:
        orders: orders restored (open or closed).
        open_orders: open orders restored, per strategy.
        fills: executions in the journal.
        unsent: reports to publish again (committed after the sent watermark), in order.
        pending: requests that arrived but were never handled, in order.
        differences: what did not agree (empty when everything did).
        strategies: strategies with anything in the journal.
    """

    orders: int = 0
    open_orders: dict[str, list[str]] = attrs.field(factory=dict)
    fills: int = 0
    unsent: list[JournaledReport] = attrs.field(factory=list)
    pending: list[JournaledRequest] = attrs.field(factory=list)
    differences: list[str] = attrs.field(factory=list)
    strategies: set[str] = attrs.field(factory=set)

    @property
    def clean(self) -> bool:
        """Nothing differed."""
        return not self.differences

    def summary(self) -> str:
        """One line for a status detail."""
        n_open = sum(len(v) for v in self.open_orders.values())
        return (
            f"reconciled: {self.orders} orders ({n_open} open), {self.fills} fills, "
            f"{len(self.unsent)} reports re-sent, {len(self.pending)} requests answered, "
            f"{len(self.differences)} differences"
        )

    def text(self, strat: str | None = None) -> str:
        """The full report (for the log and Telegram), optionally for one strategy."""
        lines = [self.summary()]
        for s, ids in sorted(self.open_orders.items()):
            if strat is None or s == strat:
                lines.append(f"open orders of {s}: {', '.join(ids)}")
        lines += [f"DIFFERENCE: {d}" for d in self.differences]
        if self.unsent:
            lines.append(f"action: {len(self.unsent)} reports published again (may be repeats)")
        if self.pending:
            lines.append(
                f"action: {len(self.pending)} requests never handled answered with GtwNotReady"
            )
        if self.differences:
            lines.append("action: the exchange state is kept as the truth")
        return "\n".join(lines)


def reconcile(engine: MatchingEngine, journal: OrderJournal) -> Reconciliation:
    """Load the stored state into ``engine`` and compare it with the journaled reports.

    Args:
        engine: a fresh engine (no request handled yet).
        journal: the gateway's journal.

    Returns:
        What was restored, what differed and what is left to do.
    """
    rec = Reconciliation()
    by_id = {i.instrument_id: i for i in engine.instruments}
    for strat, state in journal.accounts().items():
        account_into(engine.account(strat), state, by_id)
        rec.strategies.add(strat)
    orders = sorted((order_from_state(s) for s in journal.orders()), key=lambda o: o.created_ts)
    engine.restore(orders, (journal.meta_int("order_n"), journal.meta_int("exec_n")))
    rec.orders = len(orders)
    for o in engine.open_orders():
        rec.open_orders.setdefault(o.strat, []).append(o.cl_id)
    _check_reports(engine, journal, rec)
    rec.unsent = list(journal.reports(after=journal.sent_seq))
    rec.pending = journal.pending_requests()
    return rec


def _check_reports(engine: MatchingEngine, journal: OrderJournal, rec: Reconciliation) -> None:
    filled: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
    open_by_journal: set[tuple[str, str]] = set()
    for r in journal.reports():
        msg = r.msg
        rec.strategies.add(r.strat)
        if isinstance(msg, NewOrderAck):
            open_by_journal.add((r.strat, msg.cl_id))
        elif isinstance(msg, OrderExecution):
            rec.fills += 1
            qty = Decimal(msg.fill_qty)
            filled[(r.strat, msg.instrument_id)] += qty if msg.side is Side.Buy else -qty
            if Decimal(msg.leaves_qty) == 0:
                open_by_journal.discard((r.strat, msg.cl_id))
        elif isinstance(msg, OrderCancelled):
            open_by_journal.discard((r.strat, msg.cl_id))
    open_by_state = {o.key for o in engine.open_orders()}
    for strat, cl_id in sorted(open_by_journal - open_by_state):
        rec.differences.append(f"{strat}/{cl_id} open in the journal, closed on the exchange")
    for strat, cl_id in sorted(open_by_state - open_by_journal):
        rec.differences.append(f"{strat}/{cl_id} open on the exchange, not in the journal")
    keys = set(filled) | {
        (s, iid)
        for s in rec.strategies
        for iid, inst in ((i.instrument_id, i) for i in engine.instruments)
        if inst.kind is not InstrumentKind.Spot
    }
    for strat, iid in sorted(keys):
        inst = next((i for i in engine.instruments if i.instrument_id == iid), None)
        if inst is None or inst.kind is InstrumentKind.Spot:
            continue
        held = engine.account(strat).net_position(inst)
        if held != filled.get((strat, iid), Decimal(0)):
            rec.differences.append(
                f"{strat} position on {iid}: exchange {held}, sum of journaled fills "
                f"{filled.get((strat, iid), Decimal(0))}"
            )
