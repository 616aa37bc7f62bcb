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
