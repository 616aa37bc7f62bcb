"""Interleaved timing: every subject once per round, medians of per-round ratios to the anchor.

The machine is shared and noisy, so absolute times drift between runs; a
ratio to an anchor measured in the same round, a few milliseconds apart,
does not. Each round measures every subject once, in an order rotated from
round to round so that no subject always runs right after a slow one. A
round's sample is the fastest of a few short runs (being preempted only
ever adds time); the reported figure is the median over rounds.
"""

from __future__ import annotations

import gc
import statistics
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Subject:
    """One measured call: a statement run in a namespace prepared by the suite."""

    key: str
    group: str
    label: str
    stmt: str
    target: float | None = None
    note: str = ""


@dataclass
class Result:
    """Per-round seconds per call and ratios to the anchor for one subject."""

    subject: Subject
    seconds: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)

    @property
    def ns(self) -> float:
        return statistics.median(self.seconds) * 1e9

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def spread(self) -> tuple[float, float]:
        """The interquartile range of the per-round ratios (min and max when there are few rounds)."""
        if len(self.ratios) < 4:
            return min(self.ratios), max(self.ratios)
        quartiles = statistics.quantiles(self.ratios, n=4)
        return quartiles[0], quartiles[2]

    def as_json(self) -> dict[str, Any]:
        low, high = self.spread
        return {
            "key": self.subject.key,
            "group": self.subject.group,
            "label": self.subject.label,
            "statement": self.subject.stmt,
            "ns_per_call": round(self.ns, 1),
            "ratio": round(self.ratio, 3),
            "ratio_iqr": [round(low, 3), round(high, 3)],
            "target": self.subject.target,
            "met": None if self.subject.target is None else self.ratio <= self.subject.target,
            "rounds": len(self.ratios),
        }


def _calibrate(timer: timeit.Timer, sample_seconds: float) -> int:
    number = 1
    while True:
        elapsed = timer.timeit(number)
        if elapsed >= sample_seconds / 4 or number >= 1 << 24:
            return max(1, int(number * sample_seconds / max(elapsed, 1e-9)))
        number *= 4


def interleaved(
    subjects: Sequence[Subject],
    namespace: dict[str, Any],
    anchor: str,
    *,
    rounds: int,
    sample_seconds: float,
    repeat: int = 3,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Result]:
    """Time every subject ``rounds`` times, interleaved; ratios are to the subject keyed ``anchor``."""
    timers = {s.key: timeit.Timer(s.stmt, globals=namespace) for s in subjects}
    for subject in subjects:  # a statement that fails should fail before any timing starts
        timers[subject.key].timeit(1)
    numbers = {key: _calibrate(timer, sample_seconds / repeat) for key, timer in timers.items()}
    results = {s.key: Result(s) for s in subjects}
    order = list(subjects)
    for index in range(rounds):
        progress(f"round {index + 1}/{rounds}")
        gc.collect()
        rotated = order[index % len(order) :] + order[: index % len(order)]
        seconds: dict[str, float] = {}
        for subject in rotated:
            number = numbers[subject.key]
            # The fastest of a few short runs: preemption by other processes only ever adds time.
            seconds[subject.key] = min(timers[subject.key].repeat(repeat, number)) / number
        for key, value in seconds.items():
            results[key].seconds.append(value)
            results[key].ratios.append(value / seconds[anchor])
    return results


def median_time(run: Callable[[], object], rounds: int) -> float:
    """Median wall time of ``run()`` over ``rounds`` calls, garbage collected before each."""
    samples = []
    for _ in range(rounds):
        gc.collect()
        start = timeit.default_timer()
        run()
        samples.append(timeit.default_timer() - start)
    return statistics.median(samples)
