"""Failed exports lose nothing and keep nothing: delta baselines stay put, memory stays flat.

The end-to-end versions, with the real collector killed and a DogStatsD port closed, are in
tests/integration/test_faults.py.
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


class _Client:
    """Stands in for datadog's DogStatsd; ``fail`` lists the datagram numbers (from 0) whose send fails."""

    def __init__(self, fail: set[int]) -> None:
        self.fail = fail
        self.buffer: list[str] = []
        self.attempts = 0
        self.delivered: list[str] = []

    def get_socket(self) -> None:
        pass

    def _send(self, payload: str) -> bool:
        self.buffer.append(payload)
        return True

    def flush(self) -> bool:
        payload, self.buffer = "\n".join(self.buffer), []
        number, self.attempts = self.attempts, self.attempts + 1
        if number in self.fail:
            return False
        self.delivered.extend(payload.split("\n"))
        return True

    def close_socket(self) -> None:
        pass


def _counts(lines: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in lines:
        name_value, kind = line.split("|")[:2]
        if kind == "c":
            symbol = line.split("symbol:")[1].split(",")[0]
            out[symbol] = out.get(symbol, 0) + int(name_value.split(":")[1])
    return out


def test_lost_dogstatsd_datagram_resends_only_its_own_series(cap: Capture) -> None:
    """When one datagram of an export fails, its series' increments go out again next time, the others' do not."""
    client = _Client(fail={1})
    exporter = DogStatsdExporter(DogStatsdSettings(url="udp://127.0.0.1:8125", max_packet_size=512), client=client)
    symbols = [f"SYM{i:02}" for i in range(30)]  # enough series for several 512-byte datagrams
    for symbol in symbols:
        cap.telemetry.orders.filled.add(1, exchange="binance", symbol=symbol, side="buy")
    with pytest.raises(ExportFailure) as failure:
        exporter.export(cap.telemetry.collect(), 1)
    assert failure.value.reasons == ("send_failed",)
    assert client.attempts > 2
    assert 0 < len(_counts(client.delivered)) < len(symbols)
    for symbol in symbols:
        cap.telemetry.orders.filled.add(2, exchange="binance", symbol=symbol, side="buy")
    exporter.export(cap.telemetry.collect(), 1)
    assert _counts(client.delivered) == dict.fromkeys(symbols, 3)


@pytest.fixture
def closed_udp_port() -> int:
    """A 127.0.0.1 UDP port nothing listens on (sends to it draw ICMP port unreachable)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_udp_loss_to_a_closed_port_is_seen_and_resent(cap: Capture, closed_udp_port: int) -> None:
    """Real UDP: every datagram to a closed port counts as lost, although send() succeeds for every other one.

    Once a listener binds the port, the next export delivers the whole delta since the last delivery.
    """
    settings = DogStatsdSettings(url=f"udp://127.0.0.1:{closed_udp_port}")
    exporter = DogStatsdExporter(settings)
    fills = cap.telemetry.orders.filled.bind(**FILL)
    for amount in (1, 2, 4):
        fills.add(amount)
        with pytest.raises(ExportFailure) as failure:
            exporter.export(cap.telemetry.collect(), 1)
        assert failure.value.reasons == ("send_failed",)
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
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{tcp_port}"
            + ("/v1/metrics" if backend == "otlp-http" else ""),
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
