"""The public path: catalog instruments aggregated by tradetel, exported as the SDK's public data classes.

When the fast path's contract with the installed SDK does not hold (see
``tradetel._sdk``), or ``configure(fast_path=False)`` asks for it, catalog
instruments are not registered on the SDK's Meter at all. Each one keeps its
series here, in objects that do what the SDK's cumulative sum, last-value and
explicit-bucket histogram aggregations do, field for field (so the same
writers update both), with the same series limit and overflow series as a
view with ``aggregation_cardinality_limit``. At collection they become
``opentelemetry.sdk.metrics.export`` ``Metric``/``NumberDataPoint``/
``HistogramDataPoint`` objects, put in front of what the SDK collected for the
other instruments of the MeterProvider (runtime metrics, instruments created
on ``Telemetry.meter``), and the same exporters receive them. Nothing here
touches an SDK internal; negative histogram values are accepted, as on the
fast path.

``tests/test_fastpath_equivalence.py`` checks that both paths export the same
data as the stock SDK for the same measurements.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from ._sdk import write_histogram, write_last_value, write_sum
from .catalog import Kind

__all__ = ["OWN_KINDS", "OwnInstrument", "OwnMetrics", "OwnSeriesStore", "TrackingMeter"]

_CUMULATIVE = AggregationTemporality.CUMULATIVE
_OVERFLOW_ATTRIBUTES = {"otel.metric.overflow": True}


class _SumSeries:
    """One series of a counter or up-down counter: the SDK's ``_SumAggregation`` of a synchronous instrument."""

    __slots__ = ("_attributes", "_lock", "_previous_value", "_silent", "_start", "_value")

    def __init__(self, attributes: Mapping[str, Any], start: int) -> None:
        self._attributes = attributes
        self._lock = threading.Lock()
        self._start = start
        self._value: float | int | None = None
        self._previous_value: float | int = 0
        self._silent = False

    def collect(self, now: int) -> NumberDataPoint | None:
        with self._lock:
            value, self._value = self._value, None
            if self._silent:
                if value is None:
                    return None
                self._silent = False
            self._previous_value = (0 if value is None else value) + self._previous_value
            total = self._previous_value
            return NumberDataPoint(
                attributes=self._attributes, start_time_unix_nano=self._start, time_unix_nano=now, value=total
            )

    def reset(self, start: int) -> None:
        """A forked child's fresh start: empty, silent until it records, with a new lock."""
        self.__init__(self._attributes, start)  # type: ignore[misc]
        self._silent = True

    def exemplar_bounds(self) -> tuple[float, ...]:
        """One exemplar slot, as the SDK's sum aggregation keeps (``tradetel._exemplars``)."""
        return ()


class _LastValueSeries:
    """One series of a gauge: the SDK's ``_LastValueAggregation`` of a synchronous instrument."""

    __slots__ = ("_attributes", "_lock", "_value")

    def __init__(self, attributes: Mapping[str, Any], start: int) -> None:
        self._attributes = attributes
        self._lock = threading.Lock()
        self._value: float | int | None = None

    def collect(self, now: int) -> NumberDataPoint | None:
        with self._lock:
            value = self._value
        if value is None:
            return None
        return NumberDataPoint(attributes=self._attributes, start_time_unix_nano=None, time_unix_nano=now, value=value)  # type: ignore[arg-type]

    def reset(self, start: int) -> None:
        self.__init__(self._attributes, start)  # type: ignore[misc]


class _HistogramSeries:
    """One series of a histogram: the SDK's ``_ExplicitBucketHistogramAggregation``, negative values included."""

    __slots__ = (
        "_attributes",
        "_boundaries",
        "_lock",
        "_max",
        "_min",
        "_previous_max",
        "_previous_min",
        "_previous_sum",
        "_previous_value",
        "_record_min_max",
        "_silent",
        "_start",
        "_sum",
        "_value",
    )

    def __init__(self, attributes: Mapping[str, Any], start: int, boundaries: tuple[float, ...]) -> None:
        self._attributes = attributes
        self._lock = threading.Lock()
        self._start = start
        self._boundaries = boundaries
        self._record_min_max = True
        self._value: list[int] | None = None
        self._min: float | int = math.inf
        self._max: float | int = -math.inf
        self._sum: float | int = 0
        self._previous_value: list[int] | None = None
        self._previous_min: float | int = math.inf
        self._previous_max: float | int = -math.inf
        self._previous_sum: float | int = 0
        self._silent = False

    def collect(self, now: int) -> HistogramDataPoint | None:
        with self._lock:
            value, sum_, min_, max_ = self._value, self._sum, self._min, self._max
            self._value, self._sum, self._min, self._max = None, 0, math.inf, -math.inf
            if self._silent:
                if value is None:
                    return None
                self._silent = False
            empty = [0] * (len(self._boundaries) + 1)
            if value is None:
                value = empty
            previous = self._previous_value if self._previous_value is not None else empty
            self._previous_value = [new + old for new, old in zip(value, previous)]  # noqa: B905 - the SDK's zip
            self._previous_min = min(min_, self._previous_min)
            self._previous_max = max(max_, self._previous_max)
            self._previous_sum = sum_ + self._previous_sum
            return HistogramDataPoint(
                attributes=self._attributes,
                start_time_unix_nano=self._start,
                time_unix_nano=now,
                count=sum(self._previous_value),
                sum=self._previous_sum,
                bucket_counts=tuple(self._previous_value),
                explicit_bounds=self._boundaries,
                min=self._previous_min,
                max=self._previous_max,
            )

    def reset(self, start: int) -> None:
        self.__init__(self._attributes, start, self._boundaries)  # type: ignore[misc]
        self._silent = True

    def exemplar_bounds(self) -> tuple[float, ...]:
        """One exemplar slot per bucket, as the SDK's histogram aggregation keeps (``tradetel._exemplars``)."""
        return self._boundaries


OWN_KINDS = {
    Kind.COUNTER: write_sum,
    Kind.UP_DOWN_COUNTER: write_sum,
    Kind.GAUGE: write_last_value,
    Kind.HISTOGRAM: write_histogram,
}
_WRITE_KINDS = {write_sum: "sum", write_last_value: "last_value", write_histogram: "histogram"}


def _series_key(attributes: Mapping[str, Any]) -> tuple[Any, ...]:
    """The identity of an attribute set, as the SDK's ``_hash_attributes`` tells them apart (1, 1.0, True differ)."""
    return tuple(sorted((key, type(value).__name__, _hashable(value)) for key, value in attributes.items()))


def _hashable(value: Any) -> Any:
    return tuple(_hashable(v) for v in value) if isinstance(value, list | tuple) else value


class OwnInstrument:
    """A catalog instrument on the public path: what ``Instrument.otel_instrument`` is there.

    It takes the calls of an OpenTelemetry synchronous instrument (``add``, ``set``, ``record``
    with an attribute mapping) and records them into the same series as the handle, as the
    SDK's instrument behind the catalog's view would: no label policy, attribute keys outside the
    catalog's left out, and a negative ``Counter.add`` refused.
    """

    def __init__(self, name: str, unit: str, description: str, kind: Kind, keys: Iterable[str] = ()) -> None:
        self.name = name
        self.unit = unit
        self.description = description
        self.kind = kind
        self._keys = frozenset(keys)
        self._store: OwnSeriesStore | None = None

    def _record(self, value: float | int, attributes: Mapping[str, Any] | None) -> None:
        store = self._store
        if store is None or (self.kind is Kind.COUNTER and value < 0):
            return
        keys = self._keys
        store.write(store.aggregation({k: v for k, v in (attributes or {}).items() if k in keys}), value)

    def add(self, amount: float | int, attributes: Mapping[str, Any] | None = None, context: Any = None) -> None:
        self._record(amount, attributes)

    def set(self, amount: float | int, attributes: Mapping[str, Any] | None = None, context: Any = None) -> None:
        self._record(amount, attributes)

    def record(self, amount: float | int, attributes: Mapping[str, Any] | None = None, context: Any = None) -> None:
        self._record(amount, attributes)

    def __repr__(self) -> str:
        return f"<OwnInstrument {self.name} {self.kind.value}>"


class OwnSeriesStore:
    """Attribute set → series for one instrument on the public path; the interface of ``_sdk.SeriesStore``."""

    __slots__ = (
        "_boundaries",
        "_cache",
        "_limit",
        "_lock",
        "_max_cache",
        "_new",
        "_overflow",
        "_series",
        "instrument",
        "overflowed",
        "write",
        "write_kind",
    )

    def __init__(self, instrument: OwnInstrument, limit: int, boundaries: Sequence[float] = ()) -> None:
        self.instrument = instrument
        instrument._store = self
        self._limit = limit
        self._boundaries = tuple(boundaries)
        self._series: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()
        self._cache: dict[tuple[tuple[str, Any], ...], Any] = {}
        self._max_cache = 2 * limit + 64
        self._overflow: Any = None
        self.overflowed = False
        self.write: Callable[[Any, Any], None] = OWN_KINDS[instrument.kind]
        self.write_kind = _WRITE_KINDS[self.write]
        boundaries_ = self._boundaries
        if instrument.kind is Kind.HISTOGRAM:
            self._new: Callable[[Mapping[str, Any], int], Any] = lambda a, s: _HistogramSeries(a, s, boundaries_)
        elif instrument.kind is Kind.GAUGE:
            self._new = _LastValueSeries
        else:
            self._new = _SumSeries

    @property
    def cardinality_limit(self) -> int:
        return self._limit

    def aggregation(self, attributes: dict[str, Any], *, cache: bool = True) -> Any:
        """The series ``attributes`` record into (the overflow series once the limit is reached)."""
        key = tuple(attributes.items())
        try:
            found = self._cache.get(key)
        except TypeError:  # an unhashable attribute value given through otel_instrument
            found, cache = None, False
        if found is not None:
            return found
        identity = _series_key(attributes)
        with self._lock:
            series = self._series.get(identity)
            overflow = False
            if series is None:
                if len(self._series) >= self._limit + (self._overflow is not None):
                    overflow = True
                    if self._overflow is None:
                        self._overflow = self._new(dict(_OVERFLOW_ATTRIBUTES), time.time_ns())
                        self._series[("overflow",)] = self._overflow
                    series = self._overflow
                    self.overflowed = True
                else:
                    series = self._series[identity] = self._new(dict(attributes), time.time_ns())
        if cache or overflow:
            if len(self._cache) >= self._max_cache:
                self._cache.clear()
            try:
                self._cache[key] = series
            except TypeError:
                pass
        return series

    def is_overflow(self, aggregation: Any) -> bool:
        return self.overflowed and aggregation is self._overflow

    def collect(self, now: int) -> Metric | None:
        with self._lock:
            series = list(self._series.values())
        points = [point for point in (s.collect(now) for s in series) if point is not None]
        if not points:
            return None
        instrument = self.instrument
        kind = instrument.kind
        data: Any
        if kind is Kind.HISTOGRAM:
            data = Histogram(data_points=points, aggregation_temporality=_CUMULATIVE)
        elif kind is Kind.GAUGE:
            data = Gauge(data_points=points)
        else:
            data = Sum(data_points=points, aggregation_temporality=_CUMULATIVE, is_monotonic=kind is Kind.COUNTER)
        return Metric(name=instrument.name, description=instrument.description, unit=instrument.unit, data=data)

    def reset_after_fork(self, start: int) -> None:
        """In a forked child: every series empty and silent until recorded into, fresh locks."""
        self._lock = threading.Lock()
        for series in self._series.values():
            series.reset(start)


class OwnMetrics:
    """The public path's catalog instruments of one Telemetry, collected in front of the SDK's collection."""

    def __init__(self, scope: InstrumentationScope, resource: Resource) -> None:
        self.scope = scope
        self.resource = resource
        self._stores: list[OwnSeriesStore] = []

    def add(self, store: OwnSeriesStore) -> None:
        self._stores.append(store)

    def merge(self, collected: MetricsData | None) -> MetricsData | None:
        """``collected`` (the SDK's collection, or ``None``) with the catalog instruments in front.

        Everything carries tradetel's resource: the catalog's metrics, in catalog order, first in the
        scope of tradetel's Meter, as the SDK itself orders instruments registered first.
        """
        now = time.time_ns()
        own = [metric for metric in (store.collect(now) for store in self._stores) if metric is not None]
        scopes: list[ScopeMetrics] = []
        if collected is not None:
            scopes = [s for rm in collected.resource_metrics for s in rm.scope_metrics]
        if own:
            for index, scope_metrics in enumerate(scopes):
                if scope_metrics.scope == self.scope:
                    scopes[index] = ScopeMetrics(
                        scope=self.scope, metrics=own + list(scope_metrics.metrics), schema_url=scope_metrics.schema_url
                    )
                    break
            else:
                scopes.insert(0, ScopeMetrics(scope=self.scope, metrics=own, schema_url=self.scope.schema_url or ""))
        if not scopes:
            return None
        resource = self.resource
        return MetricsData(
            resource_metrics=[ResourceMetrics(resource=resource, scope_metrics=scopes, schema_url=resource.schema_url)]
        )

    def reset_after_fork(self, instance_id: str) -> Resource:
        start = time.time_ns()
        for store in self._stores:
            store.reset_after_fork(start)
        self.resource = self.resource.merge(Resource({"service.instance.id": instance_id}))
        return self.resource

    def stores(self) -> Iterable[OwnSeriesStore]:
        return list(self._stores)


class TrackingMeter:
    """The SDK's Meter on the public path, noting the observable counters created through it.

    The ``lowmemory`` OTLP temporality keeps asynchronous counters cumulative; the fast path asks the
    SDK's consumer which instruments those are, the public path remembers them here.
    """

    def __init__(self, meter: Any) -> None:
        self._meter = meter
        self._observable_counters: set[str] = set()

    def create_observable_counter(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self._observable_counters.add(name)
        return self._meter.create_observable_counter(name, *args, **kwargs)

    def observable_counter_names(self) -> frozenset[str]:
        return frozenset(self._observable_counters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._meter, name)

    def __repr__(self) -> str:
        return f"<TrackingMeter {self._meter!r}>"
