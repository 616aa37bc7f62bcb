"""Collection and scrape cost per series, and memory per series.

The same series (3 attributes, values spread over the buckets) are recorded
into tradetel, into ``prometheus_client`` and into the stock OpenTelemetry
SDK. A tradetel scrape is ``render(telemetry.collect())``: the SDK
collection plus the text exposition, exactly what ``/metrics`` serves
(without HTTP). The reference is ``prometheus_client.generate_latest`` of a
registry holding the same series, and, for scale, the stock OpenTelemetry
Prometheus exporter (``PrometheusMetricReader``) at 1k series.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from typing import Any

from timing import median_time

LABELS = ("exchange", "symbol", "side")
SIDES = ("buy", "sell")


def series_labels(count: int) -> list[tuple[str, str, str]]:
    """``count`` distinct label value triples, built before any measurement so their strings are not counted."""
    return [(f"venue{i % 10}", f"SYM{i // 20}-USD", SIDES[(i // 10) % 2]) for i in range(count)]


def _buckets() -> tuple[float, ...]:
    from tradetel.catalog import DEFAULT_CATALOG

    buckets = DEFAULT_CATALOG["orders.slippage"].buckets
    assert buckets is not None
    return buckets


def _value(i: int) -> float:
    return float(i % 61 - 30)


class TradetelSeries:
    """A Telemetry with a free-text counter and histogram, limits raised above the series count.

    ``fast_path=False`` measures the public path (tradetel's own series, the SDK's public data classes).
    """

    def __init__(self, limit: int, fast_path: bool = True) -> None:
        import tradetel
        from tradetel import InstrumentSpec, Kind
        from tradetel.catalog import Attribute
        from tradetel.labels import Free

        attributes = tuple(Attribute(key, Free()) for key in LABELS)
        specs = [
            InstrumentSpec("scrape.fills", Kind.COUNTER, "{fill}", "Fills.", attributes, cardinality_limit=limit),
            InstrumentSpec(
                "scrape.slippage",
                Kind.HISTOGRAM,
                "[bp]",
                "Slippage.",
                attributes,
                buckets=_buckets(),
                cardinality_limit=limit,
            ),
        ]
        self.telemetry = tradetel.configure(catalog=specs, exporters="none", env={}, fast_path=fast_path)

    def fill(self, kind: str, labels: list[tuple[str, str, str]]) -> None:
        if kind == "counter":
            add = self.telemetry.instrument("scrape.fills").add
            for i, (exchange, symbol, side) in enumerate(labels):
                add(i % 7 + 1, exchange=exchange, symbol=symbol, side=side)
        else:
            record = self.telemetry.instrument("scrape.slippage").record
            for i, (exchange, symbol, side) in enumerate(labels):
                for j in range(3):
                    record(_value(i + j), exchange=exchange, symbol=symbol, side=side)

    def scrape(self) -> bytes:
        from tradetel.exporters.prometheus import render

        return render(self.telemetry.collect())

    def close(self) -> None:
        self.telemetry.shutdown()


class PrometheusClientSeries:
    """A fresh ``prometheus_client`` registry with the same counter and histogram."""

    def __init__(self) -> None:
        import prometheus_client

        self.registry = prometheus_client.CollectorRegistry()
        self.counter = prometheus_client.Counter("scrape_fills", "Fills.", LABELS, registry=self.registry)
        self.histogram = prometheus_client.Histogram(
            "scrape_slippage_basis_points", "Slippage.", LABELS, buckets=_buckets(), registry=self.registry
        )

    def fill(self, kind: str, labels: list[tuple[str, str, str]]) -> None:
        if kind == "counter":
            for i, values in enumerate(labels):
                self.counter.labels(*values).inc(i % 7 + 1)
        else:
            for i, values in enumerate(labels):
                child = self.histogram.labels(*values)
                for j in range(3):
                    child.observe(_value(i + j))

    def scrape(self) -> bytes:
        import prometheus_client

        return prometheus_client.generate_latest(self.registry)

    def close(self) -> None:
        pass


class OtelSeries:
    """The stock SDK with one reader: the in-memory reader, or the OpenTelemetry Prometheus exporter."""

    def __init__(self, limit: int, prometheus: bool = False) -> None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

        self.registry: Any = None
        reader: Any
        if prometheus:
            import prometheus_client
            from opentelemetry.exporter.prometheus import PrometheusMetricReader

            self.registry = prometheus_client.CollectorRegistry()
            reader = PrometheusMetricReader(registry=self.registry)
        else:
            reader = InMemoryMetricReader()
        views = [
            View(instrument_name="scrape.fills", aggregation_cardinality_limit=limit),
            View(
                instrument_name="scrape.slippage",
                aggregation=ExplicitBucketHistogramAggregation(boundaries=list(_buckets())),
                aggregation_cardinality_limit=limit,
            ),
        ]
        self.provider = MeterProvider(metric_readers=[reader], views=views)
        meter = self.provider.get_meter("scrape")
        self.counter = meter.create_counter("scrape.fills", unit="{fill}")
        self.histogram = meter.create_histogram("scrape.slippage", unit="[bp]")

    def fill(self, kind: str, labels: list[tuple[str, str, str]]) -> None:
        for i, (exchange, symbol, side) in enumerate(labels):
            attributes = {"exchange": exchange, "symbol": symbol, "side": side}
            if kind == "counter":
                self.counter.add(i % 7 + 1, attributes)
            else:
                for j in range(3):
                    # the public Histogram.record refuses negative values
                    self.histogram.record(abs(_value(i + j)), attributes)

    def scrape(self) -> bytes:
        import prometheus_client

        return prometheus_client.generate_latest(self.registry)

    def close(self) -> None:
        self.provider.shutdown()


def scrape_costs(sizes: tuple[int, ...], rounds: int, stock_otel_sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    """Per-series scrape time of tradetel, prometheus_client and (at ``stock_otel_sizes``) the stock exporter."""
    rows: list[dict[str, Any]] = []
    for kind in ("counter", "histogram"):
        for size in sizes:
            labels = series_labels(size)
            subjects: dict[str, Any] = {
                "tradetel": TradetelSeries(2 * size),
                "tradetel_public": TradetelSeries(2 * size, fast_path=False),
                "prometheus_client": PrometheusClientSeries(),
            }
            if size in stock_otel_sizes:
                subjects["otel_prometheus_exporter"] = OtelSeries(2 * size, prometheus=True)
            try:
                for subject in subjects.values():
                    subject.fill(kind, labels)
                seconds = {
                    name: median_time(subject.scrape, rounds if name != "otel_prometheus_exporter" else 1)
                    for name, subject in subjects.items()
                }
                tradetel = subjects["tradetel"]
                collect = median_time(tradetel.telemetry.collect, rounds)
                body = tradetel.scrape()
            finally:
                for subject in subjects.values():
                    subject.close()
            row = {
                "kind": kind,
                "series": size,
                "tradetel_ms": round(seconds["tradetel"] * 1e3, 2),
                "tradetel_collect_ms": round(collect * 1e3, 2),
                "tradetel_public_ms": round(seconds["tradetel_public"] * 1e3, 2),
                "prometheus_client_ms": round(seconds["prometheus_client"] * 1e3, 2),
                "tradetel_us_per_series": round(seconds["tradetel"] / size * 1e6, 2),
                "prometheus_client_us_per_series": round(seconds["prometheus_client"] / size * 1e6, 2),
                "ratio": round(seconds["tradetel"] / seconds["prometheus_client"], 3),
                "exposition_bytes": len(body),
            }
            if "otel_prometheus_exporter" in seconds:
                row["otel_prometheus_exporter_us_per_series"] = round(
                    seconds["otel_prometheus_exporter"] / size * 1e6, 2
                )
            rows.append(row)
    return rows


def _bytes_per_series(make: Callable[[], Any], kind: str, labels: list[tuple[str, str, str]]) -> float:
    subject = make()
    try:
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        subject.fill(kind, labels)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    finally:
        subject.close()
    return used / len(labels)


def memory_per_series(count: int) -> list[dict[str, Any]]:
    """Bytes allocated per new series (tracemalloc), label strings excluded."""
    labels = series_labels(count)
    makers: dict[str, Callable[[], Any]] = {
        "tradetel": lambda: TradetelSeries(2 * count),
        "tradetel_public": lambda: TradetelSeries(2 * count, fast_path=False),
        "prometheus_client": PrometheusClientSeries,
        "otel_sdk_1_reader": lambda: OtelSeries(2 * count),
    }
    rows = []
    for kind in ("counter", "histogram"):
        row: dict[str, Any] = {"kind": kind, "series": count}
        for name, make in makers.items():
            row[f"{name}_bytes"] = round(_bytes_per_series(make, kind, labels))
        rows.append(row)
    return rows
