"""The order tracker: one lifecycle update as a ratio to prometheus_client, and a million orders in bounded memory.

    .venv/bin/python benchmarks/bench_orders.py            # about a minute
    .venv/bin/python benchmarks/bench_orders.py --quick    # about 15 s: fewer rounds, 100,000 streamed orders

Per call, as ratios to ``prometheus_client`` ``Counter.labels(a, b, c).inc()``
measured in the same rounds (see ``timing.py``):

- ``update, no change``: a ccxt order dict the tracker has already applied
  (``watch_orders`` returns its whole cache on every push);
- ``update, fill progress``: an open order whose cumulative ``filled`` grew;
- ``lifecycle, per update``: open, then four ccxt updates (open, two partial
  fills, closed) of a new order, every metric of the order recorded;
  the time of the five calls divided by five.

Then ``--orders`` orders (default 1,000,000) are streamed through a tracker
that keeps at most 1,000 open: every third one fills, the others are evicted
for capacity. The traced heap is reported along the way, with the eviction
count against the exact expected number.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import prometheus_client
from timing import Subject, interleaved

from tradetel.orders import OrderTracker
from tradetel.testing import Capture, capture

TARGET = 3.0


def namespace(cap: Capture) -> dict[str, Any]:
    registry = prometheus_client.CollectorRegistry()
    counter = prometheus_client.Counter("orders", "Orders.", ["exchange", "symbol", "side"], registry=registry)
    tracker = OrderTracker(cap.telemetry, max_open=100_000)
    base = {"id": "X1", "clientOrderId": "c1", "symbol": "BTC/USDT", "side": "buy", "type": "limit",
            "amount": 1e15, "price": 100.0, "timestamp": 1_700_000_000_000}  # fmt: skip
    tracker.open("c1", exchange="binance", symbol="BTC/USDT", side="buy", amount=1e15, price=100.0)
    seen = {**base, "status": "open", "filled": 5.0, "average": 99.9, "cost": 499.5,
            "fee": {"cost": 0.1, "currency": "USDT"}, "lastTradeTimestamp": 1_700_000_001_000}  # fmt: skip
    tracker.update(seen, exchange="binance")
    progress = dict(seen)
    filled = itertools.count(6)
    ids = itertools.count()

    def grow() -> None:
        progress["filled"] = float(next(filled))
        tracker.update(progress, exchange="binance")

    def lifecycle() -> None:
        n = next(ids)
        cid, xid = f"c-{n}", f"x-{n}"
        tracker.open(cid, exchange="binance", symbol="BTC/USDT", side="buy", amount=2.0, price=100.0,
                     decision_price=99.95, intent="entry")  # fmt: skip
        order = {"id": xid, "clientOrderId": cid, "symbol": "BTC/USDT", "side": "buy", "type": "limit",
                 "amount": 2.0, "price": 100.0, "timestamp": 1_700_000_000_000}  # fmt: skip
        tracker.update({**order, "status": "open", "filled": 0.0}, exchange="binance")
        tracker.update({**order, "status": "open", "filled": 0.5, "average": 99.9,
                        "lastTradeTimestamp": 1_700_000_001_000}, exchange="binance")  # fmt: skip
        tracker.update({**order, "status": "open", "filled": 1.5, "average": 99.95}, exchange="binance")
        tracker.update({**order, "status": "closed", "filled": 2.0, "average": 99.975,
                        "fee": {"cost": 0.2, "currency": "USDT"},
                        "lastUpdateTimestamp": 1_700_000_003_000}, exchange="binance")  # fmt: skip

    return {"counter": counter, "tracker": tracker, "seen": seen, "grow": grow, "lifecycle": lifecycle}


SUBJECTS = (
    Subject(
        "anchor", "prometheus_client", "Counter.labels(a,b,c).inc()", "counter.labels('binance', 'BTC', 'buy').inc()"
    ),
    Subject("dup", "tracker", "update, no change", "tracker.update(seen, exchange='binance')", target=TARGET),
    Subject("grow", "tracker", "update, fill progress", "grow()", target=TARGET),
    Subject("life", "tracker", "lifecycle (open + 4 updates), per call", "lifecycle()"),
)


def stream(count: int) -> None:
    """``count`` orders through a tracker capped at 1,000 open: heap along the way and exact evictions."""
    with capture() as cap:
        clock = itertools.count()
        tracker = OrderTracker(cap.telemetry, max_open=1_000, max_ended=1_000, clock=lambda: next(clock) * 1e-3)
        gc.collect()
        tracemalloc.start()
        marks: list[tuple[int, float]] = []
        started = time.perf_counter()
        try:
            for n in range(count):
                tracker.open(n, exchange="binance", symbol="BTC/USDT", side="buy", amount=1.0, price=100.0)
                if n % 3 == 0:
                    tracker.fill(n, 1.0, 100.0, trade_id=n)
                if (n + 1) % (count // 10) == 0:
                    marks.append((n + 1, tracemalloc.get_traced_memory()[0] / 1e6))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        elapsed = time.perf_counter() - started
        filled = len(range(0, count, 3))
        expected = count - filled - tracker.open_orders
        evicted = cap.value("tradetel.orders.evicted", reason="capacity")
        print(f"\n{count:,} orders streamed, at most 1,000 open ({elapsed:.1f} s with tracemalloc on)")
        print("  orders seen   traced heap (MB)")
        for seen, megabytes in marks:
            print(f"  {seen:>11,}   {megabytes:8.2f}")
        print(f"  peak {peak / 1e6:.2f} MB; open {tracker.open_orders}; pending {cap.value('orders.pending'):.0f}")
        print(f"  evicted {evicted:,.0f} (expected {expected:,}): {'exact' if evicted == expected else 'WRONG'}")
        print(f"  filled {cap.value('orders.filled'):,.0f} (expected {filled:,})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds and 100,000 streamed orders")
    parser.add_argument("--orders", type=int, default=None, help="orders to stream (default 1,000,000)")
    args = parser.parse_args(argv)
    rounds = 5 if args.quick else 15
    with capture() as cap:
        results = interleaved(SUBJECTS, namespace(cap), "anchor", rounds=rounds, sample_seconds=0.02)
    print(f"{'subject':<45} {'ns/call':>9} {'ratio':>7}  {'IQR':>13}  target")
    for result in results.values():
        low, high = result.spread
        target = result.subject.target
        verdict = "" if target is None else f"<= {target:g} {'met' if result.ratio <= target else 'MISSED'}"
        label = f"{result.subject.group}: {result.subject.label}"
        print(f"{label:<45} {result.ns:9.0f} {result.ratio:7.2f}  {low:5.2f}-{high:5.2f}  {verdict}")
    stream(args.orders or (100_000 if args.quick else 1_000_000))


if __name__ == "__main__":
    main()
