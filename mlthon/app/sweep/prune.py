"""Pruning by successive halving (``--prune``): each permutation first runs over the first
fractions of the data window (the rungs); at each rung only the best share (``--prune-keep``)
goes on, the rest are pruned; the survivors then run over the whole window.

The driver (:mod:`mlthon.app.sweep.run`) takes the permutations in brackets: a grid's (and a
random search's) permutations all together, an optuna search's one round of ``--batch`` at a
time (random with ``--patience`` too). Each bracket runs its rung 0, then its rung 1... A
permutation is kept at a rung when its interim figure is among the best ``ceil(keep * n)`` of
the ``n`` permutations that ran that rung so far (this bracket's and the earlier ones'): with
one bracket this is successive halving; over several it is the promotion rule of ASHA, decided
in trial order once a bracket's rung is over, so the same search gives the same pruning on
any engine. Runs without a fill, failed, or whose figure is n/a at a rung are hopeless: last
of the rung, never kept.

The window: a synthetic market is cut at the fraction of its seconds (its first seconds are the
same market); recordings at the fraction of their span (``--start``/``--end`` where given, else
their first and last receive times, read when the replay cache is warmed).
"""

from __future__ import annotations

import argparse
import math
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

#: Where a synthetic market starts (``mlthon.app.cli._synthetic``'s fixed start).
SYNTHETIC_START_NS = 1_700_000_000 * 1_000_000_000
NS_PER_S = 1_000_000_000


def _share(text: str) -> Decimal:
    try:
        x = Decimal(text.strip())
    except InvalidOperation:
        x = Decimal("NaN")
    if not x.is_finite() or not 0 < x < 1:
        raise argparse.ArgumentTypeError(
            f"{text.strip()!r} is not a fraction between 0 and 1 (both excluded)"
        )
    return x


def prune_rungs(text: str) -> tuple[Decimal, ...]:
    """``--prune 0.25,0.5``: the rungs, fractions of the data window, rising, each in (0, 1).

    Raises:
        argparse.ArgumentTypeError: not such a list (argparse names ``--prune``).
    """
    rungs = tuple(_share(t) for t in text.split(","))
    if list(rungs) != sorted(set(rungs)):
        raise argparse.ArgumentTypeError(f"{text!r}: the fractions must rise")
    return rungs


def prune_keep(text: str) -> Decimal:
    """``--prune-keep 0.5``: the share kept at each rung, in (0, 1).

    Raises:
        argparse.ArgumentTypeError: not such a number (argparse names ``--prune-keep``).
    """
    return _share(text)


def percent(fraction: Decimal) -> str:
    """``0.25`` -> ``25%``."""
    return f"{(fraction * 100).normalize():f}%"


@attrs.frozen
class Span:
    """The data window a fraction is taken of: ``lo``..``hi`` (ns) of recordings, or None for a
    synthetic market (its seconds)."""

    lo: int | None = None
    hi: int | None = None


def window(settings: dict[str, Any], span: Span) -> tuple[int | None, int | None]:
    """The data window a fraction is taken of (ns): ``--start``/``--end`` where given, else a
    synthetic market's start and end, or the recordings' first and last receive times."""
    first: int | None
    last: int | None
    if not settings["data"]:
        first = settings["start"] if settings["start"] is not None else SYNTHETIC_START_NS
        seconds = Decimal(str(settings["synthetic_seconds"]))
        last = SYNTHETIC_START_NS + int(seconds * NS_PER_S)
        if settings["end"] is not None:
            last = min(last, settings["end"])
        return first, last
    first = settings["start"] if settings["start"] is not None else span.lo
    last = settings["end"] if settings["end"] is not None else span.hi
    return first, last


def check_window(settings: dict[str, Any], span: Span) -> None:
    """The data window a pruned sweep cuts must not be empty.

    Raises:
        ConfigError: ``--end`` at or before ``--start`` or the recordings' first event, or
            ``--start`` at or after their last.
    """
    from mlthon.basics.errors import ConfigError

    first, last = window(settings, span)
    if first is None or last is None or last <= first:
        raise ConfigError(
            f"--prune: the data window is empty (from {first} to {last} ns; the recordings "
            f"span {span.lo} to {span.hi} ns): check --start/--end"
        )


def rung_settings(settings: dict[str, Any], fraction: Decimal, span: Span) -> dict[str, Any]:
    """A run's settings over the first ``fraction`` of its data window."""
    first, last = window(settings, span)
    if first is None or last is None:
        raise ValueError("the recordings' span is not known")
    cut = first + int((last - first) * fraction)
    out = dict(settings)
    if settings["end"] is not None or settings["data"]:
        out["end"] = cut
    if not settings["data"]:
        # The market is made up to the cut only (the same first seconds as the whole one).
        out["synthetic_seconds"] = float(Decimal(cut - SYNTHETIC_START_NS) / NS_PER_S)
    return out


@attrs.frozen
class Pruning:
    """``--prune`` and ``--prune-keep``: the rungs and the share kept at each."""

    rungs: tuple[Decimal, ...]
    keep: Decimal = Decimal("0.5")

    def kept(self, n: int) -> int:
        """How many of ``n`` runs of a rung go on (at least one)."""
        return max(1, math.ceil(self.keep * n))


@attrs.define
class RungPool:
    """The interim values of the runs of one rung so far, in trial order: (trial, value: more
    is better; None: hopeless)."""

    values: dict[int, float | None] = attrs.Factory(dict)

    def decide(self, pruning: Pruning, trials: list[int]) -> dict[int, tuple[bool, int, int]]:
        """Add ``trials`` (their values set already) and say for each: kept, its place among
        the rung's runs so far (1 = best) and how many they are."""
        order = sorted(
            self.values.items(),
            key=lambda tv: (tv[1] is None, -(tv[1] or 0.0), tv[0]),
        )
        place = {t: i + 1 for i, (t, _v) in enumerate(order)}
        n = len(order)
        k = pruning.kept(n)
        return {t: (self.values[t] is not None and place[t] <= k, place[t], n) for t in trials}


def prune_note(figure: str, row: dict[str, Any]) -> str:
    """The ``note`` of a pruned row: ``pruned at 25% (total_pnl -0.003, rank 7/8)``."""
    at = percent(Decimal(str(row["pruned_at"])))
    if row["fills"] is None:
        why = "no result"
    elif not row["fills"]:
        why = "no fills"
    elif row[figure] is None:
        why = f"{figure} n/a"
    else:
        why = f"{figure} {row[figure]}"
    return f"pruned at {at} ({why}, rank {row['interim_rank']})"


def saved_note(rows: list[dict[str, Any]], cpu_full: list[float], cpu_all: float) -> str:
    """The summary's line: how many runs were pruned and the CPU time saved against running
    every permutation over the whole window (estimated with the full runs' mean)."""
    pruned = sum(1 for r in rows if r.get("pruned_at") is not None)
    if not cpu_full:
        return f"pruning: {pruned} of {len(rows)} permutations pruned; no full run to compare"
    mean = sum(cpu_full) / len(cpu_full)
    every = mean * len(rows)
    return (
        f"pruning: {pruned} of {len(rows)} permutations pruned; {cpu_all:.1f} s CPU in all "
        f"against about {every:.1f} s for every one in full ({len(cpu_full)} full runs, "
        f"{mean:.2f} s each): {every - cpu_all:.1f} s CPU saved"
    )
