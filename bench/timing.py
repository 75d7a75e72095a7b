"""The timing harness: calibrated batches, rounds interleaved across cases, medians.

Every case is a zero-argument callable. Each is calibrated once to a batch size
that takes about ``target`` seconds; then the harness runs ``rounds`` rounds,
and in each round times one batch of every case, in an order rotated from round
to round. Interleaving means a slow spell of the (shared, noisy) machine hits
the floor and the subject alike, instead of whichever case happened to run
then, so ratios between cases measured in one run stay meaningful.
"""

from __future__ import annotations

import gc
import itertools
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = ["Case", "Stats", "run_cases"]


@dataclass
class Stats:
    """Seconds per call over the rounds of one case.

    Attributes:
        per_round: seconds per call, one entry per round, in round order.
        batch: calls per timed batch.
    """

    per_round: list[float]
    batch: int

    @property
    def median(self) -> float:
        """Median seconds per call over the rounds."""
        return statistics.median(self.per_round)

    @property
    def low(self) -> float:
        """Fastest round, seconds per call."""
        return min(self.per_round)

    @property
    def high(self) -> float:
        """Slowest round, seconds per call."""
        return max(self.per_round)

    @property
    def spread(self) -> float:
        """``(slowest - fastest) / median`` over the rounds, as a fraction."""
        return (self.high - self.low) / self.median


@dataclass
class Case:
    """One thing to time.

    Attributes:
        key: unique id, used to look results up.
        call: the zero-argument callable timed.
        stats: filled in by :func:`run_cases`.
    """

    key: str
    call: Callable[[], object]
    stats: Stats | None = field(default=None)


def _time_batch(call: Callable[[], object], n: int) -> float:
    """Seconds for ``n`` calls of ``call``."""
    loop = itertools.repeat(None, n)
    start = time.perf_counter()
    for _ in loop:
        call()
    return time.perf_counter() - start


def _calibrate(call: Callable[[], object], target: float) -> int:
    """A batch size that takes about ``target`` seconds (this also warms the case up)."""
    n = 1
    while True:
        took = _time_batch(call, n)
        if took >= min(0.02, target):
            break
        n *= 10 if took < 0.002 else 2
    return max(1, round(n * target / took))


def run_cases(
    cases: Sequence[Case],
    rounds: int,
    target: float,
    *,
    keep_gc: bool = False,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Time every case, filling in ``case.stats``.

    Args:
        cases: the cases; their ``key`` values must be unique.
        rounds: rounds per case (the median is taken over them).
        target: seconds per timed batch.
        keep_gc: leave the cyclic garbage collector on while timing (by
            default it is off during each batch, as ``timeit`` does, and a
            collection runs between batches).
        progress: called with a short line after calibration and each round.
    """
    batches = {}
    for case in cases:
        batches[case.key] = _calibrate(case.call, target)
    if progress is not None:
        progress(f"calibrated {len(cases)} cases")
    times: dict[str, list[float]] = {case.key: [] for case in cases}
    order = list(cases)
    for round_no in range(rounds):
        shift = (round_no * 7) % len(order) if order else 0
        for case in order[shift:] + order[:shift]:
            n = batches[case.key]
            gc.collect()
            if not keep_gc:
                gc.disable()
            try:
                took = _time_batch(case.call, n)
            finally:
                gc.enable()
            times[case.key].append(took / n)
        if progress is not None:
            progress(f"round {round_no + 1}/{rounds} done")
    for case in cases:
        case.stats = Stats(times[case.key], batches[case.key])
