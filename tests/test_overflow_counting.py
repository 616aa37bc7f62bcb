"""Calls into the overflow series: counted exactly, through tradetel's own series of the self-metric.

The overflow count used to go through the OpenTelemetry API on every call (most of the cost of an
overflowing call); it now updates a series of ``tradetel.cardinality.overflow`` bound once per
instrument, and the SDK lookup of an attribute set past the limit is cached.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tradetel import Attribute, InstrumentSpec, Kind
from tradetel.labels import Free
from tradetel.testing import Capture, capture

LIMITED = InstrumentSpec(
    "test.flooded",
    Kind.COUNTER,
    "1",
    "A counter with a small series limit.",
    (Attribute("venue", Free()),),
    cardinality_limit=4,
)


@pytest.fixture
def fcap() -> Iterator[Capture]:
    logging.getLogger("tradetel").setLevel(logging.ERROR)  # the overflow warning is expected
    try:
        with capture(catalog=[LIMITED]) as captured:
            yield captured
    finally:
        logging.getLogger("tradetel").setLevel(logging.NOTSET)


def _fill(cap: Capture) -> Any:
    handle = cap.telemetry.instrument("test.flooded")
    for venue in ("a", "b", "c", "d"):  # the series limit: every new attribute set now overflows
        handle.add(1, venue=venue)
    return handle


def test_overflow_is_not_counted_through_the_public_api(fcap: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counting an overflow never calls Counter.add of the OpenTelemetry API, and is still exact."""
    handle = _fill(fcap)
    overflow = fcap.telemetry.instrument("cardinality.overflow").otel_instrument

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the overflow count went through the public API")

    monkeypatch.setattr(overflow, "add", refuse)
    for _ in range(3):
        handle.add(2, venue="late")  # the same attribute set past the limit: the cached lookup
    handle.add(1, venue="later")
    handle.bind(venue="bound").add(5)
    handle.add(1, venue="unknown-key", nope="x")  # the plain path
    monkeypatch.undo()
    assert fcap.value("tradetel.cardinality.overflow", instrument="trading.test.flooded") == 6
    overflow_series = [v for a, v in fcap.series("test.flooded") if "venue" not in a]
    assert overflow_series == [2 * 3 + 1 + 5 + 1]


def test_overflow_counts_are_exact_across_threads(fcap: Capture) -> None:
    """Eight threads flooding the overflow series (shared and distinct attribute sets) are each counted once."""
    handle = _fill(fcap)
    calls = 500
    start = threading.Barrier(8)

    def flood(index: int) -> None:
        bound = handle.bind(venue=f"bound-{index}")
        start.wait()
        for call in range(calls):
            handle.add(1, venue="shared" if call % 2 else f"t{index}-{call % 7}")
            bound.add(1)

    threads = [threading.Thread(target=flood, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert fcap.value("tradetel.cardinality.overflow", instrument="trading.test.flooded") == 8 * calls * 2
    assert fcap.value("test.flooded") == 4 + 8 * calls * 2


def test_the_overflow_self_metric_may_overflow_itself() -> None:
    """When tradetel.cardinality.overflow reaches its own limit, every overflow is counted once and nothing recurses."""
    flooded = [
        InstrumentSpec(
            f"test.flood{index}", Kind.COUNTER, "1", "Flooded.", (Attribute("venue", Free()),), cardinality_limit=2
        )
        for index in range(5)
    ]
    logging.getLogger("tradetel").setLevel(logging.ERROR)
    try:
        with capture(catalog=flooded, instruments={"cardinality.overflow": {"cardinality_limit": 2}}) as cap:
            for index in range(5):
                handle = cap.telemetry.instrument(f"test.flood{index}")
                for venue in ("a", "b", "c", "d"):  # two series, then two calls into the overflow series
                    handle.add(1, venue=venue)
                handle.bind(venue="e").add(1)
            assert cap.value("tradetel.cardinality.overflow") == 5 * 3
            assert len(cap.series("tradetel.cardinality.overflow")) == 3  # two instruments, then its overflow series
    finally:
        logging.getLogger("tradetel").setLevel(logging.NOTSET)
