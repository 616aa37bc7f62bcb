"""OTLP exporter: temporality preferences, reset handling and failure accounting."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

import tradetel
from tradetel import ConfigurationError
from tradetel.config import OtlpSettings
from tradetel.exporters.otlp import OtlpExporter, TemporalityConverter
from tradetel.testing import Capture

FILL = {"exchange": "binance", "symbol": "BTC-USD", "side": "buy"}
LATENCY = {"exchange": "binance", "stage": "ack"}


def _metric(data: MetricsData, name: str) -> Metric | None:
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == name:
                    return metric
    return None


def _points(data: MetricsData, name: str) -> list[Any]:
    metric = _metric(data, name)
    return list(metric.data.data_points) if metric is not None else []


def _record(tel: tradetel.Telemetry, fills: int, latencies: tuple[float, ...], pending: int) -> None:
    tel.orders.filled.add(fills, **FILL)
    for value in latencies:
        tel.orders.latency.record(value, **LATENCY)
    tel.orders.pending.add(pending, exchange="binance", symbol="BTC-USD")


def test_cumulative_preference_sends_the_shared_collection(cap: Capture) -> None:
    """With the default preference the shared cumulative collection goes out unchanged."""
    _record(cap.telemetry, 2, (0.01,), 1)
    data = cap.telemetry.collect()
    assert TemporalityConverter("cumulative").convert(data) is data


def test_delta_preference_converts_counters_and_histograms_only(cap: Capture) -> None:
    """`delta` sends counters and histograms as deltas, up-down counters stay cumulative, as the spec says."""
    tel = cap.telemetry
    converter = TemporalityConverter("delta")
    _record(tel, 2, (0.01, 0.03), 3)
    first = converter.convert(tel.collect())
    _record(tel, 5, (0.2,), -1)
    second = converter.convert(tel.collect())

    fills = _metric(second, "trading.orders.filled")
    assert fills is not None and isinstance(fills.data, Sum)
    assert fills.data.aggregation_temporality is AggregationTemporality.DELTA and fills.data.is_monotonic
    assert [p.value for p in _points(first, "trading.orders.filled")] == [2]
    assert [p.value for p in _points(second, "trading.orders.filled")] == [5]
    (latency,) = _points(second, "trading.orders.latency")
    assert (latency.count, latency.sum) == (1, pytest.approx(0.2))
    pending = _metric(second, "trading.orders.pending")
    assert pending is not None and isinstance(pending.data, Sum)
    assert pending.data.aggregation_temporality is AggregationTemporality.CUMULATIVE
    assert [p.value for p in pending.data.data_points] == [2]


def test_delta_points_are_contiguous_and_unchanged_series_are_left_out(cap: Capture) -> None:
    """Each delta starts where the series' previous delta ended; an interval without change sends no point."""
    tel = cap.telemetry
    converter = TemporalityConverter("delta")
    tel.orders.filled.add(1, **FILL)
    (first,) = _points(converter.convert(tel.collect()), "trading.orders.filled")
    assert _points(converter.convert(tel.collect()), "trading.orders.filled") == []
    tel.orders.filled.add(4, **FILL)
    (third,) = _points(converter.convert(tel.collect()), "trading.orders.filled")
    assert third.value == 4
    assert third.start_time_unix_nano == first.time_unix_nano


def test_delta_histogram_min_max_are_exact_or_absent(cap: Capture) -> None:
    """A delta histogram carries min/max only when the interval set a new all-time extreme (then exactly)."""
    tel = cap.telemetry
    converter = TemporalityConverter("delta")
    for value in (0.01, 0.5):
        tel.orders.latency.record(value, **LATENCY)
    (first,) = _points(converter.convert(tel.collect()), "trading.orders.latency")
    tel.orders.latency.record(0.2, **LATENCY)
    tel.orders.latency.record(0.9, **LATENCY)
    (second,) = _points(converter.convert(tel.collect()), "trading.orders.latency")
    assert (first.min, first.max) == (0.01, 0.5)
    assert (second.min, second.max) == (None, 0.9)
    assert sum(second.bucket_counts) == second.count == 2


def _cumulative_histogram(count: int, start: int) -> MetricsData:
    point = HistogramDataPoint({}, start, start + 10, count, float(count), (0, count), (1.0,), 1.0, 1.0)
    metric = Metric("h", "", "s", Histogram([point], AggregationTemporality.CUMULATIVE))
    scope = ScopeMetrics(InstrumentationScope("x"), [metric], "")
    return MetricsData([ResourceMetrics(Resource({}), [scope], "")])


def test_histogram_reset_sends_the_new_cumulative_value() -> None:
    """A histogram whose count went down, or whose start time changed, restarted: the delta is the new value."""
    converter = TemporalityConverter("delta")
    counts = []
    for count, start in ((5, 1), (7, 1), (3, 1), (4, 99)):
        (point,) = _points(converter.convert(_cumulative_histogram(count, start)), "h")
        counts.append(point.count)
    assert counts == [5, 2, 3, 4]


def _cumulative_sum(value: int, start: int, time: int) -> MetricsData:
    point = NumberDataPoint({"side": "buy"}, start, time, value)
    metric = Metric("c", "", "1", Sum([point], AggregationTemporality.CUMULATIVE, is_monotonic=True))
    scope = ScopeMetrics(InstrumentationScope("x"), [metric], "")
    return MetricsData([ResourceMetrics(Resource({}), [scope], "")])


@given(st.lists(st.tuples(st.integers(0, 1000), st.booleans()), min_size=1, max_size=30))
def test_deltas_add_up_to_everything_recorded_across_restarts(steps: list[tuple[int, bool]]) -> None:
    """Whatever the increments and restarts (new start time, value from zero), the deltas sum to all increments."""
    converter = TemporalityConverter("delta")
    start, value, sent = 1, 0, 0
    for now, (increment, restart) in enumerate(steps, start=2):
        if restart:
            start, value = now, 0
        value += increment
        for point in _points(converter.convert(_cumulative_sum(value, start, now)), "c"):
            assert point.value >= 0
            sent += point.value
    assert sent == sum(increment for increment, _ in steps)


def test_lowmemory_keeps_observable_counters_cumulative() -> None:
    """`lowmemory` sends synchronous counters as deltas but asynchronous counters cumulative."""
    with tradetel.configure(exporters="none", env={}) as tel:
        calls = []

        def observe(options: CallbackOptions) -> list[Observation]:
            calls.append(1)
            return [Observation(10 * len(calls))]

        tel.meter.create_observable_counter("bot.heartbeats", callbacks=[observe])
        recorder = _Recorder()
        exporter = OtlpExporter(OtlpSettings(temporality="lowmemory"), sdk_exporter=recorder)
        exporter.bind_reader(tel._reader)  # what the push loop does for the exporters configure() builds
        tel.orders.filled.add(2, **FILL)
        exporter.export(tel.collect(), 1)
        tel.orders.filled.add(3, **FILL)
        exporter.export(tel.collect(), 1)
        sent = recorder.sent[-1]
    heartbeats = _metric(sent, "bot.heartbeats")
    assert heartbeats is not None and isinstance(heartbeats.data, Sum)
    assert heartbeats.data.aggregation_temporality is AggregationTemporality.CUMULATIVE
    assert [p.value for p in heartbeats.data.data_points] == [20]
    assert [p.value for p in _points(sent, "trading.orders.filled")] == [3]


def test_unknown_preference_is_a_configuration_error() -> None:
    """A temporality preference outside the spec's three names is rejected with the accepted forms."""
    with pytest.raises(ConfigurationError, match="cumulative, delta or lowmemory"):
        TemporalityConverter("deltas")
    with pytest.raises(ConfigurationError, match="OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"):
        tradetel.configure(exporters="none", env={"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "both"})


class _Recorder:
    """Stands in for the SDK's OTLP exporter."""

    def __init__(self, result: MetricExportResult = MetricExportResult.SUCCESS) -> None:
        self.result = result
        self.sent: list[MetricsData] = []

    def export(self, data: MetricsData, timeout_millis: float = 10_000) -> MetricExportResult:
        self.sent.append(data)
        return self.result

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        pass


def test_nothing_is_sent_when_every_delta_is_empty(cap: Capture) -> None:
    """With delta temporality and no new measurement, no empty request goes to the collector."""
    recorder = _Recorder()
    exporter = OtlpExporter(OtlpSettings(temporality="delta"), sdk_exporter=recorder)
    cap.telemetry.orders.filled.add(1, **FILL)
    exporter.export(cap.telemetry.collect(), 1)
    exporter.export(cap.telemetry.collect(), 1)
    assert len(recorder.sent) == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _failures(url: str) -> float:
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith('tradetel_export_failures_total{exporter="otlp"'):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_dead_collector_is_counted_and_never_reaches_the_bot(protocol: str) -> None:
    """OTLP to a closed port: failures grow on /metrics while the recording thread never sees an exception."""
    port = _closed_port()
    env = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "300",
        "OTEL_METRIC_EXPORT_INTERVAL": "100",
    }
    errors: list[BaseException] = []
    stop = threading.Event()
    with tradetel.configure(exporters=["prometheus", "otlp"], prometheus_port=0, env=env) as tel:
        url = tel.prometheus_url
        assert url is not None

        def bot() -> None:
            try:
                while not stop.is_set():
                    tel.orders.filled.add(1, **FILL)
                    time.sleep(0.001)
            except BaseException as exc:  # the point of the test: nothing may escape into the bot
                errors.append(exc)

        thread = threading.Thread(target=bot)
        thread.start()
        deadline = time.monotonic() + 20
        while _failures(url) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
        thread.join(5)
        assert _failures(url) >= 2
    assert errors == []
