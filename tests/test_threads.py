"""Concurrent recording gives exact totals: 8 threads and 8 asyncio tasks on shared handles.

The fast path updates SDK aggregations under each aggregation's own lock;
collection swaps the SDK's delta state under the same lock. A thread switch
interval of a microsecond makes the interpreter switch threads inside those
sequences as often as it can, so a missing lock would lose updates here.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tradetel.testing import Capture

WORKERS = 8
ROUNDS = 1500
FILL = {"exchange": "binance", "symbol": "BTC-USD", "side": "buy"}
SLIP = {"exchange": "binance", "symbol": "BTC-USD", "side": "sell"}
PENDING = {"exchange": "binance", "symbol": "BTC-USD"}


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads as often as the interpreter allows, for the duration of one test."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def _record_once(handles: dict[str, Any], tel: Any, i: int) -> None:
    """One round of a worker: bound and unbound calls on every kind, values whose sums are exact."""
    handles["fills"].add(1)
    tel.orders.filled.add(2, **FILL)
    handles["slippage"].record(i % 5 - 2)
    tel.orders.slippage.record(0.5, **SLIP)
    handles["pending"].add(1)
    tel.orders.pending.add(-1, **PENDING)
    handles["equity"].set(100)


def _handles(tel: Any) -> dict[str, Any]:
    return {
        "fills": tel.orders.filled.bind(**FILL),
        "slippage": tel.orders.slippage.bind(**SLIP),
        "pending": tel.orders.pending.bind(**PENDING),
        "equity": tel.account.equity.bind(account="main"),
    }


def _assert_exact(cap: Capture, workers: int) -> None:
    calls = workers * ROUNDS
    assert cap.value("orders.filled", **FILL) == calls * (1 + 2)
    slippage = cap.histogram("orders.slippage", **SLIP)
    per_round = ROUNDS // 5 * sum(range(-2, 3))  # the bound handle's values -2..2 sum to 0 every 5 rounds
    assert slippage.count == 2 * calls
    assert slippage.sum == workers * per_round + calls * 0.5
    assert slippage.min == -2 and slippage.max == 2
    assert cap.value("orders.pending", **PENDING) == 0
    assert cap.value("account.equity", account="main") == 100
    assert cap.dropped() == 0


def test_threads_and_tasks_give_exact_totals(cap: Capture, busy_switching: None) -> None:
    """8 threads and 8 asyncio tasks, recording at once on shared bound and unbound handles, lose nothing."""
    tel = cap.telemetry
    handles = _handles(tel)
    start = threading.Barrier(WORKERS + 1)

    def thread_worker() -> None:
        start.wait()
        for i in range(ROUNDS):
            _record_once(handles, tel, i)

    async def task_worker() -> None:
        for i in range(ROUNDS):
            _record_once(handles, tel, i)
            if i % 7 == 0:
                await asyncio.sleep(0)

    async def tasks() -> None:
        start.wait()
        await asyncio.gather(*(task_worker() for _ in range(WORKERS)))

    threads = [threading.Thread(target=thread_worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    asyncio.run(tasks())
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive()
    _assert_exact(cap, 2 * WORKERS)


def test_collection_during_recording_loses_nothing(cap: Capture, busy_switching: None) -> None:
    """Scrapes running while 8 threads record see monotonic totals, and the final totals are exact."""
    tel = cap.telemetry
    handles = _handles(tel)
    stop = threading.Event()
    seen: list[float] = []

    def scraper() -> None:
        while not stop.is_set():
            seen.append(cap.value("orders.filled", **FILL))

    def worker() -> None:
        for i in range(ROUNDS):
            _record_once(handles, tel, i)

    collector = threading.Thread(target=scraper)
    collector.start()
    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    stop.set()
    collector.join(timeout=60)
    assert len(seen) > 1
    assert seen == sorted(seen)
    _assert_exact(cap, WORKERS)


def test_new_series_created_concurrently_are_exact(cap: Capture, busy_switching: None) -> None:
    """Threads creating the same new series at the same moment share one series per attribute set."""
    tel = cap.telemetry
    symbols = [f"SYM{i}" for i in range(20)]
    start = threading.Barrier(WORKERS)

    def worker() -> None:
        start.wait()
        for _ in range(50):
            for symbol in symbols:
                tel.orders.filled.add(1, exchange="binance", symbol=symbol, side="buy")
                tel.orders.latency.bind(exchange="binance", symbol=symbol).record(0.01)

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    series = cap.series("orders.filled")
    assert len(series) == len(symbols)
    assert {value for _, value in series} == {WORKERS * 50}
    assert cap.histogram("orders.latency").count == WORKERS * 50 * len(symbols)


class _DeltaSink:
    """A push exporter that converts to delta temporality, as the OTLP exporter does, and adds the deltas up."""

    name = "sink"

    def __init__(self) -> None:
        from tradetel.exporters.otlp import TemporalityConverter

        self.converter = TemporalityConverter("delta")
        self.fills = 0.0
        self.slippage_count = 0
        self.exports = 0

    def export(self, data: Any, timeout: float) -> None:
        self.exports += 1
        for resource in self.converter.convert(data).resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        if metric.name == "trading.orders.filled" and dict(point.attributes) == FILL:
                            self.fills += point.value
                        elif metric.name == "trading.orders.slippage" and dict(point.attributes) == SLIP:
                            self.slippage_count += point.count

    def shutdown(self, timeout: float) -> None:
        pass


def test_threads_and_tasks_with_the_push_loop_exporting_deltas(cap: Capture, busy_switching: None) -> None:
    """Threads and asyncio tasks record while the push loop exports every few ms; the deltas add up exactly."""
    from tradetel._pipeline import PushLoop

    tel = cap.telemetry
    sink = _DeltaSink()
    loop = PushLoop(tel._reader, [sink], interval=0.002, timeout=5, health=tel.health)
    loop.start()
    handles = _handles(tel)
    rounds = ROUNDS // 3

    def thread_worker() -> None:
        for i in range(rounds):
            _record_once(handles, tel, i)

    async def tasks() -> None:
        async def task_worker() -> None:
            for i in range(rounds):
                _record_once(handles, tel, i)
                if i % 7 == 0:
                    await asyncio.sleep(0)

        await asyncio.gather(*(task_worker() for _ in range(WORKERS // 2)))

    threads = [threading.Thread(target=thread_worker) for _ in range(WORKERS // 2)]
    for thread in threads:
        thread.start()
    asyncio.run(tasks())
    for thread in threads:
        thread.join(timeout=120)
    assert loop.shutdown(10) is True  # the final flush carries the last deltas
    calls = WORKERS * rounds
    assert sink.exports > 2
    assert sink.fills == calls * 3
    assert sink.slippage_count == 2 * calls
