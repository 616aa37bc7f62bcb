"""DogStatsD exporter: tradetel's shared collection as DogStatsD datagrams, over UDP or a Unix domain socket.

Each export turns the cumulative collection into lines (see ``docs/backends/dogstatsd.md``):

- monotonic sums (counters) → ``c`` with the delta since the previous export (a cumulative value that went
  down is a restart: the whole new value is sent); unchanged series send nothing;
- up-down counters and gauges → ``g`` with the current value;
- histograms → one ``d`` line per bucket that received values since the previous export, carrying a
  representative value with sample rate ``1/count``, so that the consumer weighs it ``count`` times; plus
  the exact count and sum of the interval as ``<name>.count`` and ``<name>.sum`` counts.

Attributes become ``key:value`` tags, sanitised so that no value can break a datagram, followed by the
constant tags (``DD_TAGS``), ``dd.internal.entity_id`` (``DD_ENTITY_ID``) and ``env``, ``service`` and
``version`` (``DD_ENV``/``DD_SERVICE``/``DD_VERSION``, else the resource); in ``datadog`` mode the
container id (``|c:``, from cgroups) and ``DD_EXTERNAL_ENV`` (``|e:``) end each line, in the order the
``datadog`` client writes them.

Lines are packed into datagrams of at most ``max_packet_size`` bytes (UDP; 8192 on a Unix socket), the
lines of one series in one datagram, and sent over a socket the exporter owns
(:mod:`tradetel.exporters._dogstatsd_socket`), which says for each datagram whether it was delivered:
the ``datadog`` client's ``flush()`` returns ``None`` whatever happened. A datagram that was not
delivered does not move the delta baseline of its series: the next export sends those increments again.

Example::

    tel = tradetel.configure(exporters=["prometheus", "dogstatsd"], env={"DD_AGENT_HOST": "127.0.0.1"})
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

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
from ._dogstatsd_socket import SEND_REASONS, DogStatsdSocket, SendError
from ._origin import container_id

__all__ = ["DogStatsdExporter", "DogStatsdSerializer", "metric_name", "sample_rate", "tag"]

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.]")
_VALUE_UNSAFE = re.compile(r"[|,#\x00-\x1f\x7f]")
_KEY_UNSAFE = re.compile(r"[|,#:\s\x00-\x1f\x7f]")
_UNIFIED_TAGS = (
    ("env", ("deployment.environment.name", "deployment.environment")),
    ("service", ("service.name",)),
    ("version", ("service.version",)),
)
_UNIFIED_KEYS = frozenset(key for key, _ in _UNIFIED_TAGS)


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

    def __init__(
        self,
        mode: str = "datadog",
        unified: Mapping[str, str | None] | None = None,
        *,
        tags: Sequence[str] = (),
        entity_id: str | None = None,
        container_id: str | None = None,
        external_env: str | None = None,
    ) -> None:
        if mode not in DOGSTATSD_MODES:
            raise ConfigurationError("TRADETEL_DOGSTATSD_MODE", mode, "datadog or statsd")
        self.mode = mode
        self._unified = {k: v for k, v in (unified or {}).items() if v}
        self._tags: list[str] = []
        for constant in tags:
            key, colon, value = constant.partition(":")
            if colon and key in _UNIFIED_KEYS:
                self._unified.setdefault(key, value)  # DD_ENV beats env: in DD_TAGS; one env tag either way
            else:
                self._tags.append(constant)
        if entity_id:
            self._tags.append(f"dd.internal.entity_id:{entity_id}")
        # The statsd receiver rejects a line with a field it does not know: origin fields only for DataDog.
        fields = (("|c:", container_id), ("|e:", external_env)) if mode == "datadog" else ()
        self._suffix = "".join(prefix + value for prefix, value in fields if value)
        self._tracker = DeltaTracker()
        self._resource_tags: tuple[Resource | None, _Constant] = (None, ("", ""))

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

    def _constant_tags(self, resource: Resource) -> _Constant:
        cached, constant = self._resource_tags
        if cached is resource:
            return constant
        attributes = resource.attributes
        tags = list(self._tags)
        for key, sources in _UNIFIED_TAGS:
            value = self._unified.get(key) or next((attributes[s] for s in sources if attributes.get(s)), None)
            rendered = tag(key, value) if value is not None else None
            if rendered:
                tags.append(rendered)
        constant = (",".join(tags), self._suffix)
        self._resource_tags = (resource, constant)
        return constant

    def _metric(self, prefix: str, metric: Metric, constant: _Constant, out: _Groups) -> None:
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

    def _count(self, key: str, name: str, point: NumberDataPoint, constant: _Constant, out: _Groups) -> None:
        delta = self._tracker.sum(key, point)
        if delta is not None and (delta.value or self.mode == "statsd"):
            # A new series at 0 (tradetel's failure and overflow counters exist from start-up) carries
            # nothing for DataDog, and each series sent is a custom metric there.
            line = f"{name}:{number(delta.value)}|c{_tags(point.attributes, constant)}"
        elif self.mode == "statsd":
            line = f"{name}:0|c{_tags(point.attributes, constant)}"
        else:
            return
        out.append((series_key(key, point.attributes), [line]))

    def _gauge(self, name: str, point: NumberDataPoint, constant: _Constant, out: _Groups) -> None:
        value = point.value
        if not math.isfinite(value):
            return
        tags = _tags(point.attributes, constant)
        lines = [f"{name}:0|g{tags}"] if value < 0 and self.mode == "statsd" else []
        lines.append(f"{name}:{number(value)}|g{tags}")
        out.append((None, lines))

    def _distribution(self, key: str, name: str, point: HistogramDataPoint, constant: _Constant, out: _Groups) -> None:
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
_Constant = tuple[str, str]
"""The constant tags of a resource, joined, and the origin fields that end every line."""


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


def _tags(attributes: Mapping[str, Any] | None, constant: _Constant) -> str:
    """The end of a line: ``|#`` and the tags (attributes, then the constant ones), then the origin fields."""
    tags, suffix = constant
    parts = [rendered for key, value in (attributes or {}).items() if (rendered := tag(key, value))]
    if tags:
        parts.append(tags)
    return ("|#" + ",".join(parts) if parts else "") + suffix


_UDS_PACKET_SIZE = 8192
"""Datagrams on a Unix socket: the DataDog Agent's default DogStatsD buffer, and the ``datadog`` client's."""

_SMALLEST_PACKET = 256
"""A socket that refuses datagrams this small (``EMSGSIZE``) gets its lines one at a time."""


class DogStatsdExporter:
    """Sends each collection as DogStatsD datagrams over a socket of its own; losses raise ``ExportFailure``.

    The lines of one series travel in one datagram. A datagram that is not delivered keeps its
    series' delta baseline, so their increments go out again with the next export (except a series
    split over several datagrams and delivered in part: re-sent, its delivered part would count twice,
    so its lost part is dropped and counted as ``partial_series``); each export that
    lost something is counted in ``tradetel.export.failures`` with the reasons (see
    :class:`~tradetel.exporters._dogstatsd_socket.SendError`). A datagram larger than the socket
    accepts (``EMSGSIZE``) is split and sent again at once, and later datagrams are packed smaller.

    Example::

        exporter = DogStatsdExporter(DogStatsdSettings(url="udp://127.0.0.1:8125", env="paper"))
    """

    failure_reasons = (*SEND_REASONS, "line_too_long", "partial_series")
    """Every ``reason`` this exporter reports in ``tradetel.export.failures`` (created at 0 at start-up)."""

    name = "dogstatsd"

    def __init__(self, settings: DogStatsdSettings, *, sock: DogStatsdSocket | None = None) -> None:
        self.settings = settings
        self._serializer = DogStatsdSerializer(
            settings.mode,
            {"env": settings.env, "service": settings.service, "version": settings.version},
            tags=settings.tags,
            entity_id=settings.entity_id,
            container_id=container_id() if settings.origin_detection and settings.mode == "datadog" else None,
            external_env=settings.external_env,
        )
        self._own_socket = sock is None
        self._socket = sock if sock is not None else DogStatsdSocket(settings.url)
        self._limit = settings.max_packet_size if self._socket.udp else _UDS_PACKET_SIZE

    def __repr__(self) -> str:
        return f"DogStatsdExporter(url={self.settings.url!r}, mode={self.settings.mode!r})"

    def export(self, data: MetricsData, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        try:
            # Connect before taking deltas: while the socket is missing the deltas keep adding up.
            self._socket.open()
        except SendError as exc:
            raise ExportFailure([exc.reason], str(exc)) from None
        datagrams, too_long = _pack(self._serializer.series_lines(data), self._limit)
        lost: list[SeriesKey] = []
        failed: dict[str, int] = {}
        last = ""
        if too_long:
            failed["line_too_long"] = too_long
            last = f"DogStatsD at {self.settings.url}: {too_long} line(s) longer than a datagram dropped"
        pending = deque(datagrams)
        delivered: set[SeriesKey] = set()
        try:
            while pending:
                datagram = pending[0]
                try:
                    self._socket.send(_payload(datagram), deadline)
                    delivered.update(_keys(datagram))
                except SendError as exc:
                    if exc.reason == "too_large" and len(datagram) > 1:
                        self._limit = max(min(self._limit, len(_payload(datagram))) // 2, _SMALLEST_PACKET)
                        half = len(datagram) // 2
                        pending.popleft()
                        pending.extendleft([datagram[half:], datagram[:half]])
                        continue
                    failed[exc.reason] = failed.get(exc.reason, 0) + 1
                    last = str(exc)
                    if exc.reason != "too_large":  # a line no socket takes is dropped, not tried forever
                        lost.extend(_keys(datagram))
                pending.popleft()
        except BaseException:
            for datagram in pending:
                lost.extend(_keys(datagram))
            raise
        finally:
            # A series split over several datagrams and delivered in part is not sent again: the consumer
            # would count the delivered part twice. Its lost part is dropped, and counted.
            partial = delivered.intersection(lost)
            self._serializer.commit(key for key in lost if key not in partial)
        if partial:
            failed["partial_series"] = len(partial)
        if failed:
            counts = ", ".join(f"{count} {reason}" for reason, count in failed.items())
            raise ExportFailure(failed, f"{last} ({counts}; {len(datagrams)} datagram(s) in this export)")

    def shutdown(self, timeout: float) -> None:
        self._socket.close()

    def after_fork_in_child(self) -> None:
        """In a forked child: no baseline (its series start from zero) and a socket of its own."""
        self._serializer.reset()
        if self._own_socket:
            self._socket.close()  # the child's copy only: the parent's socket stays open
            self._socket = DogStatsdSocket(self.settings.url)


_Datagram = list[tuple[str, SeriesKey | None]]
"""The lines of one datagram, each with the series whose baseline it moves."""


def _payload(datagram: _Datagram) -> bytes:
    return "".join(line + "\n" for line, _ in datagram).encode("utf-8")


def _keys(datagram: _Datagram) -> list[SeriesKey]:
    return list(dict.fromkeys(key for _, key in datagram if key is not None))


def _pack(groups: _Groups, limit: int) -> tuple[list[_Datagram], int]:
    """Datagrams of at most ``limit`` bytes (each line plus its newline), a series' lines kept together.

    Returns the datagrams, and how many lines were too long for any datagram (dropped). Sizes are
    in bytes, so multi-byte characters cannot push a datagram over.
    """
    datagrams: list[_Datagram] = []
    current: _Datagram = []
    size = 0
    too_long = 0
    for key, group in groups:
        sizes = [len(line.encode("utf-8")) + 1 for line in group]
        if size + sum(sizes) > limit and current:
            datagrams.append(current)
            current, size = [], 0
        for line, length in zip(group, sizes, strict=True):
            if length > limit:
                too_long += 1
                continue
            if size + length > limit:  # only a series too big for one datagram is split
                datagrams.append(current)
                current, size = [], 0
            current.append((line, key))
            size += length
    if current:
        datagrams.append(current)
    return datagrams, too_long
