"""tradetel's own export metrics: how long each push takes and which pushes fail, per exporter."""

from __future__ import annotations

from opentelemetry.sdk.metrics.export import MetricsData

from tradetel.config import load_settings
from tradetel.telemetry import Telemetry
from tradetel.testing import Capture


class _Exporter:
    """A push exporter of our own that succeeds or raises on demand."""

    def __init__(self, name: str, fail: bool) -> None:
        self.name = name
        self.fail = fail
        self.exports = 0

    def export(self, data: MetricsData, timeout: float) -> None:
        self.exports += 1
        if self.fail:
            raise ConnectionError("collector unavailable")

    def shutdown(self, timeout: float) -> None:
        pass


def test_every_push_is_timed_per_exporter_and_failures_counted() -> None:
    """Each push records tradetel.export.duration for its exporter, failed ones too, and failures by reason."""
    settings = load_settings({"exporters": "none", "export_interval": 3600}, env={})
    healthy, broken = _Exporter("healthy", fail=False), _Exporter("broken", fail=True)
    telemetry = Telemetry(settings, exporters=[healthy, broken])
    try:
        telemetry.orders.filled.add(1, exchange="binance")
        telemetry.force_flush()
        telemetry.force_flush()
        cap = Capture(telemetry)
        assert (healthy.exports, broken.exports) == (2, 2)
        assert cap.histogram("tradetel.export.duration", exporter="healthy").count == 2
        assert cap.histogram("tradetel.export.duration", exporter="broken").count == 2
        assert cap.value("tradetel.export.failures", exporter="broken", reason="ConnectionError") == 2
        assert cap.value("tradetel.export.failures", exporter="healthy") == 0
    finally:
        telemetry.shutdown(timeout=1.0)


class _Declaring(_Exporter):
    failure_reasons = ("unavailable", "unauthenticated")


def test_failure_and_overflow_series_exist_at_zero_from_start_up() -> None:
    """Each reason an exporter declares, and each instrument's overflow, is a series at 0 before anything fails.

    An alert on ``increase(...) > 0`` sees the first failure only if the series existed before it.
    """
    settings = load_settings({"exporters": "none", "export_interval": 3600}, env={})
    exporter = _Declaring("collector", fail=False)
    telemetry = Telemetry(settings, exporters=[exporter])
    try:
        cap = Capture(telemetry)
        failures = {labels["reason"]: value for labels, value in cap.series("tradetel.export.failures")}
        assert failures == {"unavailable": 0, "unauthenticated": 0}
        overflow = {labels["instrument"]: value for labels, value in cap.series("tradetel.cardinality.overflow")}
        assert overflow["trading.orders.filled"] == 0
        assert set(overflow.values()) == {0}
        assert len(overflow) == len(telemetry.instruments()) - 1  # all but the overflow counter itself
        exporter.fail = True
        telemetry.force_flush()
        assert cap.value("tradetel.export.failures", exporter="collector", reason="ConnectionError") == 1
    finally:
        telemetry.shutdown(timeout=1.0)


def test_the_otlp_exporter_declares_every_reason_its_failures_can_have() -> None:
    """Every HTTP status and gRPC code a collector can answer maps to a reason created at start-up."""
    import grpc

    from tradetel.exporters.otlp import OtlpExporter, failure_reason

    answers: list[object] = [None, *range(100, 600), *grpc.StatusCode]
    assert {failure_reason(answer) for answer in answers} == set(OtlpExporter.failure_reasons)
