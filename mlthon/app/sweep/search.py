"""Searches over a :class:`~mlthon.app.sweep.space.Space`: which permutations a sweep runs.

Every search answers :meth:`Search.ask` (the next trial to run, or None: nothing until some
results are told, or nothing more) and takes :meth:`Search.tell` (a trial's value: the ranked
figure, oriented so that more is better, or None when the run cannot be judged: it failed, made
no fill, or its figure is n/a). The driver (:mod:`mlthon.app.sweep.run`) asks and tells the
same way whatever the engine runs the trials on.

* ``grid``: every point of the space, in order.
* ``random``: ``trials`` distinct points drawn with ``random.Random(seed)`` (the whole grid when
  the space has no more points than that).
* ``optuna``: Optuna's TPE sampler (seeded) on an in-memory study, driven with ask and tell. The
  trials are asked in rounds of ``batch`` and each round's results are told in trial order once
  the round is over, so that a search is the same whatever finished first: the same seed and
  batch give the same trials on one machine or a cluster. A point asked again is not run again:
  it is told the value it had.

``patience`` (random and optuna) stops asking once that many trials in a row, in trial order,
did not beat the best so far (the trials already running finish).

A trial pruned at a rung (``--prune``) is told with :meth:`Search.tell_pruned`: it did not beat
the best; optuna records it as pruned, with its interim values.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import attrs

from mlthon.app.sweep.space import Point, Space, permutation_id
from mlthon.basics.errors import ConfigError

log = logging.getLogger(__name__)

SEARCHES = ("grid", "random", "optuna")


@attrs.frozen
class Trial:
    """One permutation to run: its number (the order it was asked in) and its point."""

    number: int
    point: Point

    @property
    def perm_id(self) -> str:
        """Its name (:func:`~mlthon.app.sweep.space.permutation_id`)."""
        return permutation_id(self.point)


class Search:
    """The base of the searches: numbering, the patience rule and the told values in order."""

    name = ""

    def __init__(self, total: int, patience: int | None = None) -> None:
        self.total = total
        self._patience = patience
        self._asked = 0
        self._results: dict[int, float | None] = {}
        self._next_in_order = 0
        self._best: float | None = None
        self._since_best = 0
        self.stopped_early = False

    def _trial(self, point: Point) -> Trial:
        t = Trial(self._asked, point)
        self._asked += 1
        return t

    def ask(self) -> Trial | None:
        """The next trial to run; None when it needs results first, or is done."""
        raise NotImplementedError

    def tell(self, trial: Trial, value: float | None) -> None:
        """The result of ``trial``: more is better; None: it cannot be judged."""
        self._results[trial.number] = value
        while self._next_in_order in self._results:
            v = self._results[self._next_in_order]
            self._next_in_order += 1
            if v is not None and (self._best is None or v > self._best):
                self._best, self._since_best = v, 0
            else:
                self._since_best += 1
        if self._patience is not None and self._since_best >= self._patience:
            if not self.stopped_early:
                log.info("sweep: %d trials without a better one; stopping", self._patience)
            self.stopped_early = True

    def tell_pruned(self, trial: Trial, interim: list[tuple[int, float | None]]) -> None:
        """``trial`` was pruned (``--prune``): its interim values by rung (the rung's number,
        the value: more is better, None: hopeless). It did not beat the best."""
        self.tell(trial, None)


class GridSearch(Search):
    """Every point of the space, in order."""

    name = "grid"

    def __init__(self, space: Space) -> None:
        self._points = list(space.grid())
        super().__init__(len(self._points))

    def ask(self) -> Trial | None:
        if self._asked >= len(self._points):
            return None
        return self._trial(self._points[self._asked])


class RandomSearch(Search):
    """``trials`` distinct points drawn with a seeded generator."""

    name = "random"

    def __init__(self, space: Space, trials: int, seed: int, patience: int | None = None) -> None:
        size = space.size()
        if size is not None and size <= trials:
            points = list(space.grid())
            random.Random(seed).shuffle(points)
        else:
            rng = random.Random(seed)
            seen: dict[str, Point] = {}
            for _ in range(trials * 100):
                p = space.sample(rng)
                seen.setdefault(permutation_id(p), p)
                if len(seen) == trials:
                    break
            points = list(seen.values())
        self._points = points
        super().__init__(len(points), patience)

    def ask(self) -> Trial | None:
        if self.stopped_early or self._asked >= len(self._points):
            return None
        return self._trial(self._points[self._asked])


@attrs.frozen
class _Pruned:
    """What a pruned trial is told: its interim values by rung."""

    interim: tuple[tuple[int, float | None], ...]


class OptunaSearch(Search):
    """Optuna's TPE sampler, seeded, asked in rounds of ``batch`` (see the module docstring)."""

    name = "optuna"

    def __init__(
        self,
        space: Space,
        trials: int,
        seed: int,
        *,
        batch: int = 4,
        patience: int | None = None,
    ) -> None:
        try:
            import optuna
        except ImportError:
            raise ConfigError(
                "--search optuna needs optuna: pip install 'mlthon[cluster]'"
            ) from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        super().__init__(trials, patience)
        self._space = space
        self._batch = max(1, batch)
        sampler = optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=max(1, min(10, trials // 3))
        )
        self._study = optuna.create_study(direction="maximize", sampler=sampler)
        self._fail = optuna.trial.TrialState.FAIL
        self._pruned = optuna.trial.TrialState.PRUNED
        # perm id -> its value once told (a pruned one: its interim values, _Pruned)
        self._known: dict[str, float | _Pruned | None] = {}
        # This round: perm id -> the optuna trials waiting for its value (the first one runs).
        self._round: dict[str, list[Any]] = {}
        self._round_values: dict[str, float | _Pruned | None] = {}
        self._round_trials: dict[str, Trial] = {}
        self._round_asked = 0
        self._optuna_asked = 0

    def ask(self) -> Trial | None:
        if self.stopped_early:
            return None
        while self._optuna_asked < self.total:
            if self._round_asked >= self._batch:
                if self._round:
                    return None  # the round's results first
                self._round_asked = 0  # a round of points known already: the next round
            ot = self._study.ask()
            self._optuna_asked += 1
            self._round_asked += 1
            point = self._space.suggest(ot)
            pid = permutation_id(point)
            if pid in self._known:
                self._tell_optuna(ot, self._known[pid])
                continue
            if pid in self._round:
                self._round[pid].append(ot)
                continue
            self._round[pid] = [ot]
            trial = self._trial(point)
            self._round_trials[pid] = trial
            return trial
        return None

    def _tell_optuna(self, ot: Any, value: float | _Pruned | None) -> None:
        if isinstance(value, _Pruned):
            for step, v in value.interim:
                if v is not None:
                    ot.report(v, step)
            self._study.tell(ot, state=self._pruned)
        elif value is None:
            self._study.tell(ot, state=self._fail)
        else:
            self._study.tell(ot, value)

    def tell(self, trial: Trial, value: float | None) -> None:
        super().tell(trial, value)
        self._told(trial, value)

    def tell_pruned(self, trial: Trial, interim: list[tuple[int, float | None]]) -> None:
        """Told to the study as pruned (``TrialState.PRUNED``) with its interim values reported
        at their rungs' steps: TPE ranks a pruned trial after every complete one, the pruned
        ones among themselves by the last rung they reached and their value there."""
        super().tell(trial, None)
        self._told(trial, _Pruned(tuple(interim)))

    def _told(self, trial: Trial, value: float | _Pruned | None) -> None:
        self._round_values[trial.perm_id] = value
        if len(self._round_values) < len(self._round):
            return
        if self._round_asked < self._batch and self._optuna_asked < self.total:
            # Not all of the round is asked yet (its first runs ended before the driver asked
            # for the rest): the round stays open, whatever finished first.
            return
        # The round is over: every optuna trial of it is told, in the order it was asked.
        waiting = sorted(
            ((ot.number, ot, pid) for pid, ots in self._round.items() for ot in ots),
            key=lambda x: x[0],
        )
        for _n, ot, pid in waiting:
            self._tell_optuna(ot, self._round_values[pid])
        self._known.update(self._round_values)
        self._round, self._round_values, self._round_trials = {}, {}, {}
        self._round_asked = 0


def make_search(
    kind: str,
    space: Space,
    *,
    trials: int | None,
    seed: int,
    batch: int,
    patience: int | None,
) -> Search:
    """The search ``--search`` names.

    Raises:
        ConfigError: ``--trials`` or ``--patience`` with a grid, ``--trials`` below 1.
    """
    if kind == "grid":
        if trials is not None or patience is not None:
            raise ConfigError(
                "--trials and --patience are for --search random or optuna; a grid runs "
                f"every combination ({space.size() or 'a continuous range: no'} here)"
            )
        return GridSearch(space)
    n = 20 if trials is None else trials
    if n < 1:
        raise ConfigError(f"--trials must be >= 1, got {n}")
    if patience is not None and patience < 1:
        raise ConfigError(f"--patience must be >= 1, got {patience}")
    if kind == "random":
        return RandomSearch(space, n, seed, patience)
    return OptunaSearch(space, n, seed, batch=batch, patience=patience)
