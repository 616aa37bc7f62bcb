"""Record once, fan out at collection time.

The MeterProvider has exactly one reader, :class:`SharedReader`, with
cumulative temporality, so a measurement is aggregated once however many
backends are on. Prometheus scrapes collect from it on demand; push
exporters (OTLP, DogStatsD, console) receive its collection from one
background thread, :class:`PushLoop`, each converting to the temporality it
needs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
    _Gauge,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricReader, MetricsData

from ._health import Health

_logger = logging.getLogger("tradetel")

_CUMULATIVE = dict.fromkeys(
    (Counter, UpDownCounter, Histogram, _Gauge, ObservableCounter, ObservableUpDownCounter, ObservableGauge),
    AggregationTemporality.CUMULATIVE,
)


class PushExporter(Protocol):
    """What the push loop needs from a backend."""

    name: str

    def export(self, data: MetricsData, timeout: float) -> None:
        """Send one cumulative collection; raise on failure (the loop counts it)."""

    def shutdown(self, timeout: float) -> None:
        """Release sockets and threads."""


class SharedReader(MetricReader):
    """The single cumulative reader whose collection every backend shares."""

    def __init__(self) -> None:
        super().__init__(preferred_temporality=_CUMULATIVE)  # type: ignore[arg-type]
        self._lock = threading.Lock()
        self._received: MetricsData | None = None

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> None:
        self._received = metrics_data

    def snapshot(self, timeout: float = 10.0) -> MetricsData:
        """Collect now and return the cumulative data (empty if nothing was recorded)."""
        with self._lock:
            self.collect(timeout_millis=timeout * 1000)
            data, self._received = self._received, None
        return data if data is not None else MetricsData(resource_metrics=[])

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


class PushLoop:
    """Collects every ``interval`` seconds and hands the data to each push exporter.

    A failing exporter is counted in ``tradetel.export.failures`` and never
    stops the others; the loop runs off the trading thread.
    """

    def __init__(
        self, reader: SharedReader, exporters: Sequence[PushExporter], interval: float, timeout: float, health: Health
    ) -> None:
        self._reader = reader
        self._exporters = list(exporters)
        self._interval = interval
        self._timeout = timeout
        self._health = health
        self._stop = threading.Event()
        self._export_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._exporters and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tradetel-export", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.export_once()

    def export_once(self) -> None:
        """Collect and export now (also used for the final flush)."""
        with self._export_lock:
            try:
                data = self._reader.snapshot(self._timeout)
            except Exception as exc:  # the SDK raises on collection timeouts
                self._health.export_failed("collect", type(exc).__name__, str(exc))
                return
            for exporter in self._exporters:
                try:
                    exporter.export(data, self._timeout)
                except Exception as exc:
                    self._health.export_failed(exporter.name, type(exc).__name__, str(exc))

    def shutdown(self, timeout: float) -> None:
        """Stop the loop, flush the last interval, close the exporters."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._exporters:
            self.export_once()
        for exporter in self._exporters:
            try:
                exporter.shutdown(timeout)
            except Exception:
                _logger.warning("tradetel: closing exporter %s failed", exporter.name, exc_info=True)
