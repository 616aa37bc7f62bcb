"""DogStatsD exporter: tradetel's shared collection as DogStatsD datagrams, over UDP or a Unix domain socket.

Each export turns the cumulative collection into lines (see ``docs/backends/dogstatsd.md``):

- monotonic sums (counters) → ``c`` with the delta since the previous export (a cumulative value that went
  down is a restart: the whole new value is sent); unchanged series send nothing;
- up-down counters and gauges → ``g`` with the current value;
- histograms → one ``d`` line per bucket that received values since the previous export, carrying a
  representative value with sample rate ``1/count``, so that the consumer weighs it ``count`` times; plus
  the exact count and sum of the interval as ``<name>.count`` and ``<name>.sum`` counts.

Attributes become ``key:value`` tags, sanitised so that no value can break a datagram; ``env``,
``service`` and ``version`` come from ``DD_ENV``/``DD_SERVICE``/``DD_VERSION`` or the resource.
Lines are written through the ``datadog`` package's buffered ``DogStatsd`` client, which packs them into
datagrams of at most ``max_packet_size`` bytes (UDP).

Example::

    tel = tradetel.configure(exporters=["prometheus", "dogstatsd"], env={"DD_AGENT_HOST": "127.0.0.1"})
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.resources import Resource

from .._pipeline import DeltaTracker, ExportFailure
from ..config import DOGSTATSD_MODES, DogStatsdSettings
from ..errors import ConfigurationError

__all__ = ["DogStatsdExporter", "DogStatsdSerializer", "metric_name", "sample_rate", "tag"]

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.]")
_VALUE_UNSAFE = re.compile(r"[|,#\x00-\x1f\x7f]")
_KEY_UNSAFE = re.compile(r"[|,#:\s\x00-\x1f\x7f]")
_UNIFIED_TAGS = (
    ("env", ("deployment.environment.name", "deployment.environment")),
    ("service", ("service.name",)),
    ("version", ("service.version",)),
)


def metric_name(name: str) -> str:
    """A DogStatsD metric name: the dotted OpenTelemetry name, other characters replaced by ``_``."""
    return _NAME_UNSAFE.sub("_", name) or "_"


def tag(key: str, value: object) -> str | None:
    """``key:value`` with the characters that would break a datagram replaced by ``_``; ``None`` if empty.

    ``|``, ``,``, ``#`` and control characters are replaced in keys and values, ``:`` and
    white space in keys too (``:`` in a value is kept: DogStatsD splits a tag at its first ``:``).
    """
    text = _tag_text(value)
    safe_key = _KEY_UNSAFE.sub("_", key)
    if not safe_key or not text:
        return None
    return safe_key + ":" + _VALUE_UNSAFE.sub("_", text)


def _tag_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ";".join(_tag_text(v) for v in value) + "]"
    return str(value)


def number(value: float | int) -> str:
    """A value as DogStatsD text: integers without a fraction, floats in their shortest exact form."""
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def sample_rate(count: int) -> str:
    """The sample rate that makes a consumer count one line ``count`` times.

    Both the collector's statsd receiver (``uint64(1/rate)``) and the DataDog Agent
    (``uint(1/rate)``) truncate the weight, so the rate is lowered by one ulp at a time
    until ``1/rate`` is at least ``count`` in float64 arithmetic.
    """
    rate = 1.0 / count
    while int(1.0 / rate) < count:
        rate = math.nextafter(rate, 0.0)
    return repr(rate)


def representative(index: int, bounds: Sequence[float], low: float, high: float) -> float:
    """A value inside bucket ``index`` (``(bounds[index-1], bounds[index]]``) standing for its values.

    The open first and last buckets use the observed minimum and maximum (clamped into the
    bucket); the others the midpoint of the bucket narrowed to ``[low, high]``.
    """
    if not bounds:
        return (low + high) / 2
    if index == 0:
        return min(low, bounds[0])
    if index == len(bounds):
        return max(high, math.nextafter(bounds[-1], math.inf))
    lower, upper = bounds[index - 1], bounds[index]
    start, end = max(lower, low), min(upper, high)
    if start > end:  # min/max are from an older interval than these values: use the bucket itself
        start, end = lower, upper
    middle = (start + end) / 2
    short = float(f"{middle:.12g}")  # 0.0375, not 0.037500000000000006
    if lower < short <= upper:
        return short
    return middle if middle > lower else upper


class DogStatsdSerializer:
    """Turns cumulative collections into DogStatsD lines, keeping the previous values to send counter deltas.

    ``mode="statsd"`` is for the OpenTelemetry Collector's statsd receiver and plain StatsD: a
    negative gauge is sent as ``0`` then the negative value, because a signed gauge value means
    "add" to StatsD; and unchanged counters (histogram ``.count``/``.sum`` included) send ``0``, so
    that every aggregation interval of the receiver has a point and the collector's Prometheus
    exporter, which only adds up contiguous deltas, keeps the totals.

    Example::

        serializer = DogStatsdSerializer(unified={"env": "paper"})
        for line in serializer.lines(tel.collect()):
            print(line)     # trading.orders.filled:3|c|#exchange:binance,side:buy,env:paper
    """

    def __init__(self, mode: str = "datadog", unified: Mapping[str, str | None] | None = None) -> None:
        if mode not in DOGSTATSD_MODES:
            raise ConfigurationError("TRADETEL_DOGSTATSD_MODE", mode, "datadog or statsd")
        self.mode = mode
        self._unified = {k: v for k, v in (unified or {}).items() if v}
        self._tracker = DeltaTracker()
        self._resource_tags: tuple[Resource | None, str] = (None, "")

    def lines(self, data: MetricsData) -> list[str]:
        """The lines for one collection; counter and histogram deltas are taken against the previous call."""
        out: list[str] = []
        for resource_metrics in data.resource_metrics:
            constant = self._constant_tags(resource_metrics.resource)
            for scope_metrics in resource_metrics.scope_metrics:
                prefix = scope_metrics.scope.name + "\x00"
                for metric in scope_metrics.metrics:
                    self._metric(prefix, metric, constant, out)
        self._tracker.advance()
        return out

    def _constant_tags(self, resource: Resource) -> str:
        cached, text = self._resource_tags
        if cached is resource:
            return text
        attributes = resource.attributes
        tags = []
        for key, sources in _UNIFIED_TAGS:
            value = self._unified.get(key) or next((attributes[s] for s in sources if attributes.get(s)), None)
            rendered = tag(key, value) if value is not None else None
            if rendered:
                tags.append(rendered)
        text = ",".join(tags)
        self._resource_tags = (resource, text)
        return text

    def _metric(self, prefix: str, metric: Metric, constant: str, out: list[str]) -> None:
        name = metric_name(metric.name)
        data = metric.data
        if isinstance(data, Sum) and data.is_monotonic:
            for point in data.data_points:
                if isinstance(point, NumberDataPoint):
                    self._count(prefix + metric.name, name, point, constant, out)
        elif isinstance(data, Sum | Gauge):
            for point in data.data_points:
                if isinstance(point, NumberDataPoint):
                    self._gauge(name, point, constant, out)
        elif isinstance(data, Histogram):
            for histogram_point in data.data_points:
                if isinstance(histogram_point, HistogramDataPoint):
                    self._distribution(prefix + metric.name, name, histogram_point, constant, out)

    def _count(self, key: str, name: str, point: NumberDataPoint, constant: str, out: list[str]) -> None:
        delta = self._tracker.sum(key, point)
        if delta is not None:
            out.append(f"{name}:{number(delta.value)}|c{_tags(point.attributes, constant)}")
        elif self.mode == "statsd":
            out.append(f"{name}:0|c{_tags(point.attributes, constant)}")

    def _gauge(self, name: str, point: NumberDataPoint, constant: str, out: list[str]) -> None:
        value = point.value
        if not math.isfinite(value):
            return
        tags = _tags(point.attributes, constant)
        if value < 0 and self.mode == "statsd":
            out.append(f"{name}:0|g{tags}")
        out.append(f"{name}:{number(value)}|g{tags}")

    def _distribution(self, key: str, name: str, point: HistogramDataPoint, constant: str, out: list[str]) -> None:
        delta = self._tracker.histogram(key, point)
        tags = _tags(point.attributes, constant)
        if delta is None:
            if self.mode == "statsd":
                out.extend((f"{name}.count:0|c{tags}", f"{name}.sum:0|c{tags}"))
            return
        out.extend(_bucket_lines(name, delta, point, tags))
        out.append(f"{name}.count:{delta.count}|c{tags}")
        out.append(f"{name}.sum:{number(delta.sum)}|c{tags}")


def _bucket_lines(name: str, delta: HistogramDataPoint, cumulative: HistogramDataPoint, tags: str) -> Iterable[str]:
    counts = delta.bucket_counts
    filled = [index for index, count in enumerate(counts) if count]
    low = delta.min if delta.min is not None else cumulative.min
    high = delta.max if delta.max is not None else cumulative.max
    for index in filled:
        count = counts[index]
        value = representative(index, delta.explicit_bounds, low, high)
        if len(filled) == 1:
            # The mean lies in the only bucket (clamped against rounding) and makes the sum exact.
            value = _clamp(delta.sum / count, index, delta.explicit_bounds)
        rate = f"|@{sample_rate(count)}" if count > 1 else ""
        yield f"{name}:{number(value)}|d{rate}{tags}"


def _clamp(value: float, index: int, bounds: Sequence[float]) -> float:
    if index > 0:
        value = max(value, math.nextafter(bounds[index - 1], math.inf))
    if index < len(bounds):
        value = min(value, bounds[index])
    return value


def _tags(attributes: Mapping[str, Any] | None, constant: str) -> str:
    parts = [rendered for key, value in (attributes or {}).items() if (rendered := tag(key, value))]
    if constant:
        parts.append(constant)
    return "|#" + ",".join(parts) if parts else ""


def _client(settings: DogStatsdSettings) -> Any:
    try:
        from datadog.dogstatsd.base import DogStatsd
    except ImportError:
        raise ConfigurationError(
            "OTEL_METRICS_EXPORTER", "dogstatsd", "the datadog extra installed: pip install 'tradetel[datadog]'"
        ) from None
    url = urlsplit(settings.url)
    if url.scheme == "udp":
        where: dict[str, Any] = {"host": url.hostname, "port": url.port or 8125}
    else:
        where = {"socket_path": settings.url}  # the client reads unix://, unixgram:// and unixstream://
    # Explicit host/port or socket, no constant tags and no origin detection: the client must not read
    # DD_* variables itself (tradetel.config is the one place settings come from). A flush interval of 0
    # starts no flush thread: every export flushes.
    return DogStatsd(
        **where,
        max_buffer_len=settings.max_packet_size if url.scheme == "udp" else 0,
        disable_buffering=False,
        disable_aggregation=True,
        flush_interval=0,
        disable_telemetry=True,
        origin_detection_enabled=False,
        constant_tags=[],
    )


class DogStatsdExporter:
    """Sends each collection as DogStatsD lines; losses are raised as ``ExportFailure`` for the push loop to count.

    Example::

        exporter = DogStatsdExporter(DogStatsdSettings(url="udp://127.0.0.1:8125", env="paper"))
    """

    name = "dogstatsd"

    def __init__(self, settings: DogStatsdSettings, *, client: Any = None) -> None:
        self.settings = settings
        self._udp = urlsplit(settings.url).scheme == "udp"
        self._serializer = DogStatsdSerializer(
            settings.mode, {"env": settings.env, "service": settings.service, "version": settings.version}
        )
        self._client = client if client is not None else _client(settings)

    def __repr__(self) -> str:
        return f"DogStatsdExporter(url={self.settings.url!r}, mode={self.settings.mode!r})"

    def export(self, data: MetricsData, timeout: float) -> None:
        try:
            # Connect before taking deltas: while the socket is missing the deltas keep adding up.
            self._client.get_socket()
        except OSError as exc:
            raise ExportFailure(["unreachable"], f"DogStatsD at {self.settings.url}: {exc}") from None
        reasons = []
        too_long, sent = self._send(self._serializer.lines(data))
        if too_long:
            reasons.append("line_too_long")
        if self._client.flush() is False or not sent:
            reasons.append("send_failed")
        if reasons:
            detail = f"DogStatsD at {self.settings.url}: {too_long} line(s) over the packet size dropped"
            raise ExportFailure(reasons, detail if too_long else f"DogStatsD send to {self.settings.url} failed")

    def _send(self, lines: Iterable[str]) -> tuple[int, bool]:
        """Buffer every line; return how many were too long for one datagram, and whether every send worked."""
        client = self._client
        limit = self.settings.max_packet_size if self._udp else 65_536
        dropped, sent = 0, True
        for line in lines:
            size = len(line.encode("utf-8"))
            if size > limit:
                dropped += 1
                continue
            if size != len(line):
                # The client sizes packets in characters: a multi-byte line goes on its own to stay within bytes.
                sent = client.flush() is not False and sent
            # _send is the client's buffered path without its random sampling: rates here are weights.
            sent = client._send(line) is not False and sent
            if size != len(line):
                sent = client.flush() is not False and sent
        return dropped, sent

    def shutdown(self, timeout: float) -> None:
        self._client.flush()
        self._client.close_socket()
