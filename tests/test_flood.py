"""A million-measurement label flood with every backend on: memory, series and totals stay bounded and exact."""

from __future__ import annotations

import gc
import ipaddress
import logging
import random
import socket
import sys
import threading
import tracemalloc
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import HistogramDataPoint, MetricsData
from prometheus_client.parser import text_string_to_metric_families

import tradetel
from tradetel import Telemetry
from tradetel.labels import REJECTION_REASON
from tradetel.views import OVERFLOW_ATTRIBUTE, series_limit

MEASUREMENTS = 1_000_000
JUNK_SYMBOLS = 100_000
WARM_UP = 100_000
TRACED = 100_000  # tracemalloc makes every allocation several times slower: it watches the last 100,000
HEAP_LIMIT = 10 * 1024 * 1024
BLOCK_LIMIT = 100_000  # small-object blocks; a leak of one per measurement would add 900,000

REASONS = (
    "Insufficient balance",
    "max position size exceeded",
    "cooldown active",
    "exposure cap",
    "position_sizing",
    "stop_validation",
    "NetworkError",
    "risk",
    "spec_violation",
    "post_only_cross",
    "weird venue message",
    "прочее",
    "??",
)
DECORATIONS = ("", "/USDT", ":PERP", "|x", ",y", "#z", '"q', "\nn", "é", "🚀", "\\")


@dataclass(frozen=True)
class Flood:
    """Pre-built inputs, so that the measured loop allocates only what tradetel allocates."""

    symbols: list[str]
    reasons: list[str]
    clients: list[str]

    def count(self, kind: int) -> int:
        return len(range(kind, MEASUREMENTS, 3))


def _flood() -> Flood:
    rng = random.Random(20240611)
    junk = [f"JUNK{i:05d}{DECORATIONS[i % len(DECORATIONS)]}" for i in range(JUNK_SYMBOLS)]
    symbol_slots = len(range(0, MEASUREMENTS, 3)) + len(range(1, MEASUREMENTS, 3))
    junk_needed = symbol_slots - 2 * ((symbol_slots + 4) // 5)
    draws = junk * (junk_needed // JUNK_SYMBOLS + 1)
    rng.shuffle(draws)
    symbols = []
    taken = 0
    for slot in range(symbol_slots):
        phase = slot % 5
        if phase == 0:
            symbols.append("BTC-USD")
        elif phase == 1:
            symbols.append("ETH-USD")
        else:
            symbols.append(draws[taken])
            taken += 1
    assert len(set(symbols)) == JUNK_SYMBOLS + 2
    third = len(range(2, MEASUREMENTS, 3))
    reasons = [f"{rng.choice(REASONS)} #{rng.getrandbits(40):x}" for _ in range(len(range(1, MEASUREMENTS, 3)))]
    addresses = rng.sample(range(1 << 24, 0xE0000000), third)
    clients = [
        f"2001:db8:{a >> 16:x}:{a & 0xFFFF:x}::1" if a % 10 == 0 else str(ipaddress.IPv4Address(a)) for a in addresses
    ]
    assert len(set(clients)) == third
    return Flood(symbols, reasons, clients)


def _closed_port() -> int:
    """A local TCP port with nothing listening: OTLP exports to it fail fast, as to a dead collector."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Datagrams:
    """A UDP socket on 127.0.0.1 read by a thread that only counts what arrives (a DogStatsD sink)."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = int(self.socket.getsockname()[1])
        self.count = 0
        self.largest = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                size = len(self.socket.recv(65535))
            except TimeoutError:
                continue
            self.count += 1
            self.largest = max(self.largest, size)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.socket.close()


def _recorder(tel: Telemetry, flood: Flood) -> Callable[[int, int], None]:
    updates = tel.market_data.updates.add
    rejected = tel.orders.rejected.add
    limited = tel.security.rate_limited.add
    symbols, reasons, clients = flood.symbols, flood.reasons, flood.clients

    def run(start: int, stop: int) -> None:
        for i in range(start, stop):
            kind = i % 3
            if kind == 0:
                updates(1, symbol=symbols[i // 3 * 2], source="websocket")
            elif kind == 1:
                rejected(
                    1,
                    exchange="binance",
                    symbol=symbols[i // 3 * 2 + 1],
                    side="sell" if i & 4 else "buy",
                    order_type="limit",
                    reason=reasons[i // 3],
                )
            else:
                limited(1, client=clients[i // 3], route="/webhook")

    return run


def _points(data: MetricsData) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                out[metric.name] = list(metric.data.data_points)
    return out


def _total(points: list[Any], **attributes: object) -> float:
    selected = [p for p in points if all(p.attributes.get(k) == v for k, v in attributes.items())]
    return sum(p.count if isinstance(p, HistogramDataPoint) else p.value for p in selected)


@dataclass
class Result:
    telemetry: Telemetry
    flood: Flood
    heap_growth: int
    block_growth: int
    data: MetricsData
    exposition: str
    overflow_logs: list[str]
    datagrams: _Datagrams


@pytest.fixture(scope="module")
def flooded() -> Iterator[Result]:
    """Run the flood once for every assertion of this module; Prometheus, OTLP and DogStatsD are on."""
    flood = _flood()
    logger = logging.getLogger("tradetel")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    sink = _Datagrams()
    tel = tradetel.configure(
        exporters="prometheus,otlp,dogstatsd",
        env={},
        service_name="flood",
        prometheus_port=0,
        otlp_endpoint=f"http://127.0.0.1:{_closed_port()}",
        otlp_timeout=0.5,
        dogstatsd_url=f"udp://127.0.0.1:{sink.port}",
        export_interval=3.0,
        export_timeout=1.0,
    )
    try:
        run = _recorder(tel, flood)
        run(0, WARM_UP)
        tel.collect()
        gc.collect()
        blocks_before = sys.getallocatedblocks()
        run(WARM_UP, MEASUREMENTS - TRACED)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            run(MEASUREMENTS - TRACED, MEASUREMENTS)
            gc.collect()
            heap_growth = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        gc.collect()
        block_growth = sys.getallocatedblocks() - blocks_before
        assert tel.prometheus_url is not None
        with urllib.request.urlopen(tel.prometheus_url, timeout=30) as response:
            exposition = response.read().decode("utf-8")
        data = tel.collect()
        overflow_logs = [r.getMessage() for r in records if "series limit" in r.getMessage()]
        tel.force_flush()
        yield Result(tel, flood, heap_growth, block_growth, data, exposition, overflow_logs, sink)
    finally:
        logger.removeHandler(handler)
        tel.shutdown(timeout=2.0)
        sink.close()


def test_heap_growth_after_warm_up_is_bounded(flooded: Result) -> None:
    """After warm-up the Python heap grows by less than 10 MB (traced) and keeps no object per measurement."""
    assert flooded.heap_growth < HEAP_LIMIT, f"{flooded.heap_growth / 1e6:.1f} MB"
    assert flooded.block_growth < BLOCK_LIMIT, flooded.block_growth


def test_every_instrument_is_at_or_under_its_limit_plus_overflow(flooded: Result) -> None:
    """Every instrument has at most L + 1 series (L attribute sets, one overflow series); client networks overflow."""
    tel = flooded.telemetry
    points = _points(flooded.data)
    overflowed = set()
    for spec in tel.catalog.values():
        name = tel.catalog.full_name(spec)
        limit = series_limit(spec, tel.settings.cardinality_limit)
        series = points.get(name, [])
        assert len(series) <= limit + 1, (name, len(series), limit)
        if any(p.attributes.get(OVERFLOW_ATTRIBUTE) is True for p in series):
            overflowed.add(spec.name)
            assert len(series) == limit + 1
    assert "security.rate_limited" in overflowed  # a unique client network per measurement overflows
    assert "market_data.updates" not in overflowed  # top-N keeps symbols within the limit


def test_heavy_hitters_keep_their_own_series_with_exact_counts(flooded: Result) -> None:
    """BTC-USD and ETH-USD market data updates are counted exactly in their own series, whatever the junk."""
    updates = _points(flooded.data)["trading.market_data.updates"]
    symbols = flooded.flood.symbols[0::2][: flooded.flood.count(0)]
    for symbol in ("BTC-USD", "ETH-USD"):
        (series,) = [p for p in updates if p.attributes.get("symbol") == symbol]
        assert series.value == symbols.count(symbol) > 60_000
        assert dict(series.attributes) == {"symbol": symbol, "source": "websocket"}


def test_nothing_is_lost_only_folded(flooded: Result) -> None:
    """Over all series (overflow included) the totals equal the measurements, and folds and overflow are accounted."""
    points = _points(flooded.data)
    flood = flooded.flood
    updates = points["trading.market_data.updates"]
    rejected = points["trading.orders.rejected"]
    limited = points["trading.security.rate_limited"]
    assert _total(updates) == flood.count(0)
    assert _total(rejected) == flood.count(1)
    assert _total(limited) == flood.count(2)
    assert _total(updates) + _total(rejected) + _total(limited) == MEASUREMENTS

    folded = points["tradetel.attributes.folded"]
    assert _total(folded, instrument="trading.market_data.updates", key="symbol") == _total(updates, symbol="other")
    overflow = points["tradetel.cardinality.overflow"]
    for name, series in (("trading.security.rate_limited", limited), ("trading.orders.rejected", rejected)):
        assert _total(overflow, instrument=name) == _total(series, **{OVERFLOW_ATTRIBUTE: True})
    assert all(p.attributes["client"].count("/") == 1 for p in limited if "client" in p.attributes)


def test_rejection_reasons_are_categories(flooded: Result) -> None:
    """A third of a million unique free-text reasons become a handful of reason values."""
    rejected = _points(flooded.data)["trading.orders.rejected"]
    reasons = {p.attributes.get("reason") for p in rejected} - {None}
    assert reasons <= set(REJECTION_REASON.categories)
    assert {"insufficient_funds", "size_constraint", "invalid_order", "connection_error", "other"} <= reasons


def test_push_backends_ran_during_the_flood(flooded: Result) -> None:
    """DogStatsD datagrams (each at most 1432 bytes) arrived, and OTLP exports to the dead port were counted."""
    assert flooded.datagrams.count > 0
    assert flooded.datagrams.largest <= 1432
    failures = _points(flooded.telemetry.collect())["tradetel.export.failures"]
    assert _total(failures, exporter="otlp") >= 1


def test_overflow_is_logged_once_per_instrument(flooded: Result) -> None:
    """Each overflowing instrument is logged once, not once per measurement."""
    logs = flooded.overflow_logs
    assert len(logs) == len(set(logs))
    assert any("trading.security.rate_limited" in message for message in logs)


def test_prometheus_exposition_is_bounded_and_exact(flooded: Result) -> None:
    """The scraped exposition parses, has at most L + 1 series per family, exact heavy-hitter counts, no empty label."""
    tel = flooded.telemetry
    families = {f.name: f for f in text_string_to_metric_families(flooded.exposition)}
    limit = tel.settings.cardinality_limit
    for name in ("trading_market_data_updates", "trading_orders_rejected", "trading_security_rate_limited"):
        samples = [s for s in families[name].samples if s.name == name + "_total"]
        assert len(samples) <= limit + 1
        marked = [s for s in samples if "otel_metric_overflow" in s.labels]
        assert all(s.labels["otel_metric_overflow"] == "true" for s in marked)
        assert len(marked) <= 1
    updates = [s for s in families["trading_market_data_updates"].samples if s.name.endswith("_total")]
    symbols = flooded.flood.symbols[0::2][: flooded.flood.count(0)]
    for symbol in ("BTC-USD", "ETH-USD"):
        (sample,) = [s for s in updates if s.labels.get("symbol") == symbol]
        assert sample.value == symbols.count(symbol)
    assert 'otel_metric_overflow=""' not in flooded.exposition
