"""Failed exports lose nothing and keep nothing: delta baselines stay put, memory stays flat.

The end-to-end versions, with the real collector killed and a DogStatsD port closed, are in
tests/integration/test_faults.py; DogStatsD over Unix sockets in tests/test_dogstatsd_delivery.py.
"""

from __future__ import annotations

import gc
import socket
import tracemalloc
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import MetricExportResult, MetricsData, NumberDataPoint, Sum

import tradetel
from tradetel._pipeline import ExportFailure
from tradetel.config import DogStatsdSettings, OtlpSettings
from tradetel.exporters.dogstatsd import DogStatsdExporter
from tradetel.exporters.otlp import OtlpExporter
from tradetel.testing import Capture

FILL = {"exchange": "binance", "symbol": "BTC-USD", "side": "buy"}


class _FlakySdkExporter:
    """Stands in for the SDK's OTLP exporter: answers with the queued results, records what it was given."""

    def __init__(self, *results: Any) -> None:
        self.results = list(results)
        self.sent: list[MetricsData] = []

    def export(self, data: MetricsData, timeout_millis: float = 10_000) -> MetricExportResult:
        self.sent.append(data)
        result = self.results.pop(0)
        if isinstance(result, BaseException):
            raise result
        return MetricExportResult(result)

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        pass


def _fills(data: MetricsData) -> list[float]:
    return [
        point.value
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "trading.orders.filled" and isinstance(metric.data, Sum)
        for point in metric.data.data_points
        if isinstance(point, NumberDataPoint)
    ]


@pytest.mark.parametrize("failure", [MetricExportResult.FAILURE, ConnectionError("reset")], ids=["result", "raised"])
def test_failed_otlp_delta_export_keeps_the_baseline(cap: Capture, failure: Any) -> None:
    """With delta temporality, the export after a failed one carries both intervals' increments."""
    sdk = _FlakySdkExporter(MetricExportResult.SUCCESS, failure, MetricExportResult.SUCCESS)
    exporter = OtlpExporter(OtlpSettings(temporality="delta"), sdk_exporter=sdk)
    fills = cap.telemetry.orders.filled.bind(**FILL)
    fills.add(1)
    exporter.export(cap.telemetry.collect(), 1)
    fills.add(2)
    with pytest.raises((ExportFailure, ConnectionError)):
        exporter.export(cap.telemetry.collect(), 1)
    fills.add(4)
    exporter.export(cap.telemetry.collect(), 1)
    assert [_fills(data) for data in sdk.sent] == [[1], [2], [6]]


@pytest.fixture
def closed_udp_port() -> int:
    """A 127.0.0.1 UDP port nothing listens on (sends to it draw ICMP port unreachable)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_udp_loss_to_a_closed_port_is_seen_and_resent(cap: Capture, closed_udp_port: int) -> None:
    """Real UDP: every datagram to a closed port counts as refused, although send() succeeds for every other one.

    Once a listener binds the port, the next export delivers the whole delta since the last delivery.
    """
    settings = DogStatsdSettings(url=f"udp://127.0.0.1:{closed_udp_port}")
    exporter = DogStatsdExporter(settings)
    fills = cap.telemetry.orders.filled.bind(**FILL)
    for amount in (1, 2, 4):
        fills.add(amount)
        with pytest.raises(ExportFailure) as failure:
            exporter.export(cap.telemetry.collect(), 1)
        assert failure.value.reasons == ("refused",)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", closed_udp_port))
        listener.settimeout(5)
        fills.add(8)
        exporter.export(cap.telemetry.collect(), 1)
        received = listener.recv(65_536).decode()
    exporter.shutdown(1)
    assert received.startswith("trading.orders.filled:15|c|")


def _python_memory_growth(export: Any, warm_up: int = 10, rounds: int = 40) -> int:
    for _ in range(warm_up):
        export()
    tracemalloc.start()
    try:
        gc.collect()  # failed exports leave exception cycles behind; what counts is what survives a collection
        before = tracemalloc.take_snapshot()
        for _ in range(rounds):
            export()
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    return sum(stat.size_diff for stat in after.compare_to(before, "filename"))


@pytest.mark.parametrize("backend", ["otlp-grpc", "otlp-http", "dogstatsd"])
def test_memory_stays_flat_while_the_backend_is_down(backend: str, closed_udp_port: int) -> None:
    """Forty failed exports to a dead backend, with new measurements before each, hold no more Python memory.

    Nothing queues up: each export carries the current state, so a long outage costs no memory.
    """
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        tcp_port = unused.getsockname()[1]  # bound, never listening: connections are refused
        env = {
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc" if backend == "otlp-grpc" else "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{tcp_port}",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "50",
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta",
            "DD_DOGSTATSD_URL": f"udp://127.0.0.1:{closed_udp_port}",
        }
        exporter = "dogstatsd" if backend == "dogstatsd" else "otlp"
        with tradetel.configure(exporters=exporter, export_interval=3600, env=env) as tel:
            fills = tel.orders.filled.bind(**FILL)

            def export() -> None:
                fills.add(1)
                tel.force_flush()

            growth = _python_memory_growth(export)
            assert Capture(tel).value("tradetel.export.failures", exporter=exporter) >= 50
            assert Capture(tel).value("orders.filled", **FILL) == 50
    assert growth < 64 * 1024, f"{growth} bytes more after 40 failed exports"
