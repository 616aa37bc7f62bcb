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
Lines are packed into datagrams of at most ``max_packet_size`` bytes (UDP), the lines of one series in
one datagram, and sent through the ``datadog`` package's ``DogStatsd`` client. A datagram that does not
arrive does not move the delta baseline of its series: the next export sends those increments again.
Over UDP a send to a closed port "succeeds" and the loss only shows as an ICMP error on the socket, so
every datagram is followed by a look at the socket's pending error (``SO_ERROR``); on the same host that
error is there as soon as the send returns (see ``docs/reliability.md`` for what holds across a network).

Example::

    tel = tradetel.configure(exporters=["prometheus", "dogstatsd"], env={"DD_AGENT_HOST": "127.0.0.1"})
"""

from __future__ import annotations

import math
import re
import socket
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

from .._pipeline import DeltaTracker, ExportFailure, SeriesKey, series_key
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
        groups = self.series_lines(data)
        self.commit()
        return [line for _, lines in groups for line in lines]

    def series_lines(self, data: MetricsData) -> list[tuple[SeriesKey | None, list[str]]]:
        """The lines for one collection grouped by series, pending until :meth:`commit`.

        The key of a group names the series whose delta baseline the lines move (``None`` for gauges,
        which are sent whole every time); ``commit(lost=...)`` keeps the old baseline of lost series.
        """
        out: list[tuple[SeriesKey | None, list[str]]] = []
        for resource_metrics in data.resource_metrics:
            constant = self._constant_tags(resource_metrics.resource)
            for scope_metrics in resource_metrics.scope_metrics:
                prefix = scope_metrics.scope.name + "\x00"
                for metric in scope_metrics.metrics:
                    self._metric(prefix, metric, constant, out)
        return out

    def commit(self, lost: Iterable[SeriesKey] = ()) -> None:
        """The lines of the last :meth:`series_lines` were sent: deltas since then start there, except for ``lost``."""
        self._tracker.advance(lost)

    def reset(self) -> None:
        """Forget every baseline (a forked child: its series start from zero)."""
        self._tracker = DeltaTracker()

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

    def _metric(self, prefix: str, metric: Metric, constant: str, out: _Groups) -> None:
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

    def _count(self, key: str, name: str, point: NumberDataPoint, constant: str, out: _Groups) -> None:
        delta = self._tracker.sum(key, point)
        if delta is not None:
            line = f"{name}:{number(delta.value)}|c{_tags(point.attributes, constant)}"
        elif self.mode == "statsd":
            line = f"{name}:0|c{_tags(point.attributes, constant)}"
        else:
            return
        out.append((series_key(key, point.attributes), [line]))

    def _gauge(self, name: str, point: NumberDataPoint, constant: str, out: _Groups) -> None:
        value = point.value
        if not math.isfinite(value):
            return
        tags = _tags(point.attributes, constant)
        lines = [f"{name}:0|g{tags}"] if value < 0 and self.mode == "statsd" else []
        lines.append(f"{name}:{number(value)}|g{tags}")
        out.append((None, lines))

    def _distribution(self, key: str, name: str, point: HistogramDataPoint, constant: str, out: _Groups) -> None:
        delta = self._tracker.histogram(key, point)
        tags = _tags(point.attributes, constant)
        if delta is None:
            if self.mode == "statsd":
                out.append((series_key(key, point.attributes), [f"{name}.count:0|c{tags}", f"{name}.sum:0|c{tags}"]))
            return
        lines = list(_bucket_lines(name, delta, point, tags))
        lines.append(f"{name}.count:{delta.count}|c{tags}")
        lines.append(f"{name}.sum:{number(delta.sum)}|c{tags}")
        out.append((series_key(key, point.attributes), lines))


_Groups = list[tuple[SeriesKey | None, list[str]]]


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


_UDS_PACKET_SIZE = 8192
"""Datagrams on a Unix socket: the DataDog Agent's default DogStatsD buffer, and the client's default there."""


class DogStatsdExporter:
    """Sends each collection as DogStatsD datagrams; losses are raised as ``ExportFailure`` for the push loop to count.

    The lines of one series travel in one datagram. A datagram that fails to send, or whose loss the
    socket reports right after (UDP to a closed port), keeps its series' delta baseline, so their
    increments go out again with the next export instead of being lost.

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
        self._own_client = client is None
        self._client = client if client is not None else _client(settings)

    def __repr__(self) -> str:
        return f"DogStatsdExporter(url={self.settings.url!r}, mode={self.settings.mode!r})"

    def export(self, data: MetricsData, timeout: float) -> None:
        try:
            # Connect before taking deltas: while the socket is missing the deltas keep adding up.
            self._client.get_socket()
        except OSError as exc:
            raise ExportFailure(["unreachable"], f"DogStatsD at {self.settings.url}: {exc}") from None
        groups = self._serializer.series_lines(data)
        datagrams, too_long = _pack(groups, self.settings.max_packet_size if self._udp else _UDS_PACKET_SIZE)
        lost: list[SeriesKey] = []
        failed = done = 0
        try:
            for payload, keys in datagrams:
                if not self._transmit(payload):
                    failed += 1
                    lost.extend(keys)
                done += 1
        except BaseException:
            for _, keys in datagrams[done:]:
                lost.extend(keys)
            raise
        finally:
            self._serializer.commit(lost)
        reasons = []
        if too_long:
            reasons.append("line_too_long")
        if failed:
            reasons.append("send_failed")
        if reasons:
            detail = f"DogStatsD at {self.settings.url}: {too_long} line(s) over the packet size dropped"
            if failed:
                detail = f"DogStatsD send to {self.settings.url} failed: {failed} of {len(datagrams)} datagram(s)"
            raise ExportFailure(reasons, detail)

    def _transmit(self, payload: str) -> bool:
        """Send one datagram now; ``False`` if it failed or the socket reports it lost."""
        client = self._client
        # _send is the client's buffered path without its random sampling: rates here are weights.
        sent = client._send(payload) is not False
        sent = client.flush() is not False and sent
        return sent and not (self._udp and _refused(getattr(client, "socket", None)))

    def shutdown(self, timeout: float) -> None:
        self._client.flush()
        self._client.close_socket()

    def after_fork_in_child(self) -> None:
        """In a forked child: no baseline (its series start from zero) and a socket of its own."""
        self._serializer.reset()
        if self._own_client:
            self._client = _client(self.settings)


def _refused(sock: Any) -> bool:
    """Whether the socket holds an error from an earlier send (on UDP: an ICMP port unreachable), clearing it."""
    if not isinstance(sock, socket.socket):
        return False
    try:
        return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0
    except OSError:
        return False


def _pack(groups: _Groups, limit: int) -> tuple[list[tuple[str, list[SeriesKey]]], int]:
    """Datagrams of at most ``limit`` bytes (each line plus its newline), a series' lines kept together.

    Returns the datagrams with the series each one carries, and how many lines were too long for any
    datagram (dropped). Sizes are in bytes, so multi-byte characters cannot push a datagram over.
    """
    datagrams: list[tuple[str, list[SeriesKey]]] = []
    lines: list[str] = []
    keys: list[SeriesKey] = []
    size = 0
    too_long = 0

    def close() -> None:
        nonlocal lines, keys, size
        if lines:
            datagrams.append(("\n".join(lines), keys))
            lines, keys, size = [], [], 0

    for key, group in groups:
        sizes = [len(line.encode("utf-8")) + 1 for line in group]
        if size + sum(sizes) > limit:
            close()
        for line, length in zip(group, sizes, strict=True):
            if length > limit:
                too_long += 1
                continue
            if size + length > limit:
                close()  # only a series too big for one datagram is split
            lines.append(line)
            size += length
            if key is not None and key not in keys[-1:]:
                keys.append(key)
    close()
    return datagrams, too_long
