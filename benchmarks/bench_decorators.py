"""What a decorator costs per call, as ratios to hand-written instrumentation measured in the same run.

    .venv/bin/python benchmarks/bench_decorators.py            # about 20 s
    .venv/bin/python benchmarks/bench_decorators.py --quick    # about 5 s

The anchor is a bare call plus one manual record, what you would write
without decorators::

    t0 = perf_counter(); work(); latency.record(perf_counter() - t0, exchange="binance", stage="ack")

Every subject runs once per round, in an order rotated from round to round;
a round's sample is the fastest of three short runs and the figure printed is
the median over rounds of the ratio to the anchor of the same round, so
machine noise between rounds cancels. ``prometheus_client``'s
``Counter.labels(a, b, c).inc()`` (the anchor of the design's performance
budget) is measured in the same rounds for reference.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import timeit
from collections.abc import Callable, Coroutine
from time import perf_counter
from typing import Any

import tradetel
from tradetel.decorators import counted, exchange_call, in_flight, order_placement, timed
from tradetel.testing import capture

ORDER = {"status": "closed", "filled": 1.0, "amount": 1.0, "average": 100.1, "side": "buy", "symbol": "BTC/USDT"}


def drive(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends, without an event loop (the loop's own cost is not under test)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("the coroutine suspended")


def subjects(tel: tradetel.Telemetry) -> dict[str, tuple[str, Callable[[], object]]]:
    """Label and zero-argument callable per subject; the first is the anchor."""
    latency = tel["orders.latency"]
    bound = latency.bind(exchange="binance", stage="ack")
    attrs = {"exchange": "binance", "stage": "ack"}

    def work() -> None:
        pass

    async def work_async() -> None:
        pass

    def work_order(symbol: str, side: str) -> dict[str, Any]:
        return ORDER

    def manual() -> None:
        start = perf_counter()
        work()
        latency.record(perf_counter() - start, exchange="binance", stage="ack")  # type: ignore[attr-defined]

    def manual_bound() -> None:
        start = perf_counter()
        work()
        bound.record(perf_counter() - start)

    def manual_async() -> None:
        start = perf_counter()
        drive(work_async())
        latency.record(perf_counter() - start, **attrs)  # type: ignore[attr-defined]

    timed_work = timed("orders.latency", telemetry=tel, **attrs)(work)
    timed_async = timed("orders.latency", telemetry=tel, **attrs)(work_async)
    timed_args = timed("orders.latency", telemetry=tel, from_args={"symbol": "symbol"}, **attrs)(work_order)
    timed_block = timed("orders.latency", telemetry=tel, **attrs)
    counted_work = counted("orders.filled", telemetry=tel, exchange="binance")(work)
    in_flight_work = in_flight("orders.pending", telemetry=tel, exchange="binance")(work)
    exchange_work = exchange_call(telemetry=tel, exchange="binance")(work)
    placed = order_placement(telemetry=tel, exchange="binance", reference_price=100.0)(work_order)
    undecorated = timed("orders.latency", **attrs)(work)  # no telemetry anywhere: runs plain

    def with_block() -> None:
        with timed_block:
            work()

    import prometheus_client

    registry = prometheus_client.CollectorRegistry()
    counter = prometheus_client.Counter("bench_total", "bench", ["a", "b", "c"], registry=registry)

    return {
        "manual": ("bare call + one manual record (anchor)", manual),
        "bare": ("bare call", work),
        "manual_bound": ("bare call + one record on a bound series", manual_bound),
        "prometheus": ("prometheus_client Counter.labels(a,b,c).inc()", lambda: counter.labels("x", "y", "z").inc()),
        "timed": ("@timed, static attributes", timed_work),
        "timed_from_args": ("@timed, one attribute from the arguments", lambda: timed_args("BTC/USDT", "buy")),
        "timed_with": ("with timed(...): block", with_block),
        "counted": ("@counted", counted_work),
        "in_flight": ("@in_flight (two records)", in_flight_work),
        "exchange_call": ("@exchange_call (three records and the streak)", exchange_work),
        "order_placement": ("@order_placement, filled order (five records)", lambda: placed("BTC/USDT", "buy")),
        "manual_async": ("bare coroutine + one manual record", manual_async),
        "timed_async": ("@timed coroutine", lambda: drive(timed_async())),
        "no_telemetry": ("@timed with no telemetry (runs plain)", undecorated),
    }


def measure(
    table: dict[str, tuple[str, Callable[[], object]]], rounds: int, sample: float
) -> dict[str, list[tuple[float, float]]]:
    """Per subject and round: (seconds per call, ratio to the anchor of that round)."""
    keys = list(table)
    numbers = {}
    for key in keys:
        timer = timeit.Timer(table[key][1])
        number = 1
        while timer.timeit(number) < sample / 4:
            number *= 4
        numbers[key] = number * 4
    results: dict[str, list[tuple[float, float]]] = {key: [] for key in keys}
    for round_index in range(rounds):
        order = keys[round_index % len(keys) :] + keys[: round_index % len(keys)]
        seconds: dict[str, float] = {}
        gc.disable()
        try:
            for key in order:
                timer = timeit.Timer(table[key][1])
                seconds[key] = min(timer.timeit(numbers[key]) for _ in range(3)) / numbers[key]
        finally:
            gc.enable()
        for key in keys:
            results[key].append((seconds[key], seconds[key] / seconds["manual"]))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    args = parser.parse_args(argv)
    rounds, sample = (5, 0.01) if args.quick else (15, 0.03)
    with capture() as cap:
        table = subjects(cap.telemetry)
        results = measure(table, rounds, sample)
        assert cap.value("orders.filled") > 0 and cap.histogram("orders.latency").count > 0
    print(f"{'subject':<50} {'ns/call':>9} {'ratio':>7}  (to the anchor; median of {rounds} rounds)")
    for key, (label, _) in table.items():
        samples = results[key]
        ns = statistics.median(s for s, _ in samples) * 1e9
        ratio = statistics.median(r for _, r in samples)
        print(f"{label:<50} {ns:>9.0f} {ratio:>7.2f}")
    anchor_to_prometheus = statistics.median(
        m[0] / p[0] for m, p in zip(results["manual"], results["prometheus"], strict=True)
    )
    print(f"\nthe anchor itself is {anchor_to_prometheus:.2f} x prometheus_client Counter.labels(a,b,c).inc()")


if __name__ == "__main__":
    main()
