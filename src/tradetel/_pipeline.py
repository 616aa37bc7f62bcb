"""Record once, fan out at collection time.

The MeterProvider has exactly one reader, :class:`SharedReader`, with
cumulative temporality, so a measurement is aggregated once however many
backends are on. Prometheus scrapes collect from it on demand; push
exporters (OTLP, DogStatsD, console) receive its collection from one
background thread, :class:`PushLoop`, each converting to the temporality it
needs with a :class:`DeltaTracker` of its own.

Nothing queues up while a backend is down: every export sends the current
cumulative state (or the delta since the last export that arrived), so a dead
collector costs one failed attempt per interval and no memory.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
    _Gauge,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    MetricReader,
    MetricsData,
    NumberDataPoint,
)

from ._exemplars import within
from ._health import Health
from ._sdk import renew_lock

_logger = logging.getLogger("tradetel")

_CUMULATIVE = dict.fromkeys(
    (Counter, UpDownCounter, Histogram, _Gauge, ObservableCounter, ObservableUpDownCounter, ObservableGauge),
    AggregationTemporality.CUMULATIVE,
)

SeriesKey = tuple[str, tuple[tuple[str, Any], ...]]


class PushExporter(Protocol):
    """What the push loop needs from a backend."""

    name: str

    def export(self, data: MetricsData, timeout: float) -> None:
        """Send one cumulative collection; raise on failure (the loop counts it)."""

    def shutdown(self, timeout: float) -> None:
        """Release sockets and threads."""


class ExportFailure(Exception):  # noqa: N818 - reads as "raise ExportFailure(...)", like the SDK's result names
    """An export lost data; ``reasons`` name each loss for ``tradetel.export.failures``.

    An exporter raises it after sending what it could, so that partial losses
    (a datagram too long to send, for instance) are counted like failures.
    """

    def __init__(self, reasons: Iterable[str], detail: str) -> None:
        self.reasons = tuple(reasons) or ("unknown",)
        super().__init__(detail)


class SharedReader(MetricReader):
    """The single cumulative reader whose collection every backend shares.

    ``cardinality_limit`` bounds the series of instruments no view limits: those created outside the
    catalog, such as the instrumentation packages' on the global MeterProvider.
    """

    def __init__(self, cardinality_limit: int | None = None) -> None:
        limits = dict.fromkeys(_CUMULATIVE, cardinality_limit) if cardinality_limit is not None else None
        super().__init__(preferred_temporality=_CUMULATIVE, cardinality_limits=limits)  # type: ignore[arg-type]
        self._lock = threading.Lock()
        self._received: MetricsData | None = None
        self.decorate: Callable[[MetricsData], MetricsData] | None = None  # adds exemplars (tradetel._exemplars)

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> None:
        self._received = metrics_data

    def snapshot(self, timeout: float = 10.0) -> MetricsData:
        """Collect now and return the cumulative data (empty if nothing was recorded)."""
        with self._lock:
            self.collect(timeout_millis=timeout * 1000)
            data, self._received = self._received, None
        if data is None:
            return MetricsData(resource_metrics=[])
        return self.decorate(data) if self.decorate is not None else data

    def observable_counter_names(self) -> frozenset[str]:
        """Names of the asynchronous counters registered on the provider (``lowmemory`` keeps them cumulative).

        Only instruments created directly on ``Telemetry.meter`` can be
        asynchronous; catalog instruments never are.
        """
        consumer = getattr(self._collect, "__self__", None)
        instruments = getattr(consumer, "_async_instruments", ())
        return frozenset(i.name for i in instruments if isinstance(i, ObservableCounter))

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass

    def after_fork_in_child(self) -> None:
        """In a forked child: a fresh lock (the parent may have held it) and no half-received collection."""
        renew_lock(self, "_lock")
        self._received = None


def connection_refused(endpoint: str, default_port: int, timeout: float) -> bool:
    """Whether a TCP connection to ``endpoint`` (``scheme://host:port/...`` or ``host:port``) is refused now.

    ``False`` for anything else: it connected, timed out, or the endpoint is not a TCP address
    (``unix:``, ``dns:///``...), which an exporter is then left to try within its own deadline.
    """
    parts = urlsplit(endpoint if "://" in endpoint else "tcp://" + endpoint)
    if parts.scheme not in ("http", "https", "tcp") or not parts.hostname:
        return False
    try:
        port = parts.port or (443 if parts.scheme == "https" else default_port)
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return False
    except ConnectionRefusedError:
        return True
    except (OSError, ValueError):
        return False


def series_key(metric: str, attributes: Mapping[str, Any] | None) -> SeriesKey:
    """A hashable identity for one series of one metric."""
    if not attributes:
        return metric, ()
    return metric, tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in attributes.items()))


@dataclass(frozen=True, slots=True)
class _SumState:
    start: int
    emitted: int
    value: float | int


@dataclass(frozen=True, slots=True)
class _HistogramState:
    start: int
    emitted: int
    point: HistogramDataPoint


class DeltaTracker:
    """Turns cumulative points into deltas since the previous :meth:`advance`, one series at a time.

    A cumulative value that goes down, or a new start time, means the source
    restarted: the delta is the whole new value. Series without a change
    give ``None``, as the SDK omits delta points of intervals without
    measurements. The start time of a delta is the time of the last point
    emitted for that series, so consecutive deltas of a series are
    contiguous (the collector's Prometheus exporter only adds up contiguous
    deltas). Series absent from a collection are forgotten at
    :meth:`advance`, so the state stays as small as the collection.

    A delta that did not reach the backend must not move the baseline:
    :meth:`discard` forgets a whole failed export and ``advance(failed=...)``
    the series of the datagrams that were lost, so the next delta of those
    series covers everything since the last one that arrived.
    """

    __slots__ = ("_next", "_previous")

    def __init__(self) -> None:
        self._previous: dict[SeriesKey, Any] = {}
        self._next: dict[SeriesKey, Any] = {}

    def advance(self, failed: Iterable[SeriesKey] = ()) -> None:
        """Make the points seen since the last call the baseline of the next deltas, except ``failed`` series."""
        staged, previous = self._next, self._previous
        for key in failed:
            before = previous.get(key)
            if before is None:
                staged.pop(key, None)  # never delivered: the next delta is the whole value again
            else:
                staged[key] = before
        self._previous, self._next = staged, {}

    def discard(self) -> None:
        """Forget the points seen since the last :meth:`advance`: the export carrying their deltas failed."""
        self._next = {}

    def sum(self, metric: str, point: NumberDataPoint) -> NumberDataPoint | None:
        """The delta of a monotonic cumulative sum point, or ``None`` when it did not change."""
        key = series_key(metric, point.attributes)
        before: _SumState | None = self._previous.get(key)
        if before is None or point.start_time_unix_nano != before.start or point.value < before.value:
            start, value = point.start_time_unix_nano, point.value
        else:
            start, value = before.emitted, point.value - before.value
            if value == 0:
                self._next[key] = before
                return None
        self._next[key] = _SumState(point.start_time_unix_nano, point.time_unix_nano, point.value)
        exemplars = within(point.exemplars, start, point.time_unix_nano) if point.exemplars else []
        return NumberDataPoint(point.attributes, start, point.time_unix_nano, value, exemplars)

    def histogram(self, metric: str, point: HistogramDataPoint) -> HistogramDataPoint | None:
        """The delta of a cumulative histogram point, or ``None`` when nothing was recorded since.

        ``min`` and ``max`` of a delta are exact or ``None``: a cumulative
        histogram only tells the interval's extremes when they are new
        all-time extremes.
        """
        key = series_key(metric, point.attributes)
        before: _HistogramState | None = self._previous.get(key)
        restarted = before is None or _histogram_restarted(before, point)
        if before is not None and not restarted:
            if point.count == before.point.count:
                self._next[key] = before
                return None
            delta = _histogram_difference(point, before.point, before.emitted)
        else:
            delta = point
        self._next[key] = _HistogramState(point.start_time_unix_nano, point.time_unix_nano, point)
        return delta


def _histogram_restarted(before: _HistogramState, point: HistogramDataPoint) -> bool:
    old = before.point
    return (
        point.start_time_unix_nano != before.start
        or point.count < old.count
        or tuple(point.explicit_bounds) != tuple(old.explicit_bounds)
        or any(new < was for new, was in zip(point.bucket_counts, old.bucket_counts, strict=True))
    )


def _histogram_difference(point: HistogramDataPoint, old: HistogramDataPoint, start: int) -> HistogramDataPoint:
    low: Any = point.min if point.min < old.min else None
    high: Any = point.max if point.max > old.max else None
    return HistogramDataPoint(
        attributes=point.attributes,
        start_time_unix_nano=start,
        time_unix_nano=point.time_unix_nano,
        count=point.count - old.count,
        sum=point.sum - old.sum,
        bucket_counts=tuple(new - was for new, was in zip(point.bucket_counts, old.bucket_counts, strict=True)),
        explicit_bounds=point.explicit_bounds,
        min=low,
        max=high,
        exemplars=within(point.exemplars, start, point.time_unix_nano) if point.exemplars else [],
    )


class PushLoop:
    """Collects every ``interval`` seconds and hands the data to each push exporter.

    A failing exporter is counted in ``tradetel.export.failures`` and never
    stops the others; the loop runs off the trading thread. Its final flush
    runs on the same thread, so :meth:`shutdown` can bound it with a deadline
    even when an exporter is stuck retrying a dead backend.
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
        self._owner: weakref.ref[object] | None = None
        for exporter in self._exporters:
            bind = getattr(exporter, "bind_reader", None)
            if bind is not None:
                bind(reader)

    @property
    def pushes(self) -> bool:
        """Whether there is any push exporter (something to flush at exit)."""
        return bool(self._exporters)

    def start(self, owner: object = None) -> None:
        """Start the export thread; it keeps ``owner`` (the Telemetry) alive until the loop stops.

        Without that, a Telemetry whose handles are still in use but which nobody references could be
        garbage collected, and its atexit flush would find nothing to flush.
        """
        self._owner = weakref.ref(owner) if owner is not None else None
        if self._exporters and self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._run, args=(owner,), name="tradetel-export", daemon=True)
            self._thread.start()

    def _run(self, owner: object) -> None:
        while not self._stop.wait(self._interval):
            self.export_once()
        self.export_once(final=True)  # shutdown() waits for it until its deadline

    def export_once(self, *, final: bool = False) -> None:
        """Collect and export now; ``final`` for the last flush, which skips a backend that refuses connections."""
        with self._export_lock:
            try:
                data = self._reader.snapshot(self._timeout)
            except Exception as exc:  # the SDK raises on collection timeouts
                self._health.export_failed("collect", type(exc).__name__, str(exc))
                return
            for exporter in self._exporters:
                if final and self._refuses(exporter, data):
                    continue
                self._export(exporter, data)

    def _refuses(self, exporter: PushExporter, data: MetricsData) -> bool:
        """Whether ``exporter``'s backend refuses connections right now; the loss is then counted and logged.

        Nothing can be delivered to a port nobody listens on, and an exporter would spend the whole
        shutdown deadline retrying it (the OTLP exporters back off for up to their timeout). A
        connection refused is immediate and certain; anything else (a timeout, an unknown host) is
        left to the exporter and the deadline.
        """
        probe = getattr(exporter, "refused", None)
        if probe is None or not probe(min(self._timeout, 1.0)):
            return False
        points = sum(
            len(metric.data.data_points)
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        )
        metrics = len({m.name for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics})
        self._health.export_failed(
            exporter.name,
            "refused",
            f"the backend refused the connection at the final flush: {points} points of {metrics} metrics "
            "recorded since the last export that arrived were not delivered",
        )
        return True

    def _export(self, exporter: PushExporter, data: MetricsData) -> None:
        start = time.perf_counter()
        try:
            exporter.export(data, self._timeout)
        except ExportFailure as failure:
            for reason in failure.reasons:
                self._health.export_failed(exporter.name, reason, str(failure))
        except Exception as exc:
            self._health.export_failed(exporter.name, type(exc).__name__, str(exc))
        finally:
            self._health.exported(exporter.name, time.perf_counter() - start)

    def shutdown(self, timeout: float) -> bool:
        """Stop the loop, flush the last interval, close the exporters, all within ``timeout`` seconds.

        Returns whether the final flush finished in time. When it did not (an
        exporter still retrying a dead backend), the miss is counted as
        ``tradetel.export.failures{exporter="shutdown",reason="deadline"}`` and
        logged, and closing the exporters aborts their retries.
        """
        deadline = time.monotonic() + timeout
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(timeout)
            flushed = not thread.is_alive()
        else:
            flushed = True
            if self._exporters:
                self.export_once(final=True)
        if not flushed:
            detail = f"the final flush did not finish within the shutdown deadline of {timeout:g} s"
            self._health.export_failed("shutdown", "deadline", detail)
        for exporter in self._exporters:
            try:
                exporter.shutdown(max(deadline - time.monotonic(), 0.0))
            except Exception:
                _logger.warning("tradetel: closing exporter %s failed", exporter.name, exc_info=True)
        return flushed

    def after_fork_in_child(self) -> None:
        """In a forked child: fresh locks, exporters reconnected, and a new thread if the parent's was running.

        Only the forking thread survives a fork, so the parent's export thread
        is gone, and a lock it held is held forever in the child.
        """
        running = self._thread is not None and not self._stop.is_set()
        self._stop = threading.Event()
        self._export_lock = threading.Lock()
        self._thread = None
        self._reader.after_fork_in_child()
        for exporter in self._exporters:
            hook = getattr(exporter, "after_fork_in_child", None)
            if hook is not None:
                hook()
        if running:
            self.start(self._owner() if self._owner is not None else None)
