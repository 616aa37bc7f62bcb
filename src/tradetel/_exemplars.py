"""Exemplars: a measurement's trace id, span id and caller ids, kept next to the series it went into.

The generated recording functions never see an exemplar. When the effective filter lets measurements
through (``OTEL_METRICS_EXEMPLAR_FILTER=always_on``, or ``trace_based`` with a tracer provider set), the
recording methods of the catalog's counters and histograms are replaced by thin wrappers: a measurement
the filter does not let through goes to the generated method unchanged; one it lets through takes the
plain path (check, normalise, look up, write, as ``Instrument._record`` does) and is then offered to the
series' reservoir. With ``always_off``, or ``trace_based`` without a tracer provider, nothing is
replaced: the handles are the objects they would be without this module.

Sampling policy: every histogram bucket and every counter series keeps one exemplar, the latest
measurement the filter let through (latest wins). Memory is bounded by series * (buckets + 1), and the
series by the cardinality limit. Every collection attaches the exemplar each bucket holds, so a Prometheus
scrape shows the latest exemplar of each bucket; a push destination (OTLP) gets each exemplar once: delta
points carry the exemplars of their interval, cumulative points those measured since the last export
that arrived.

Exemplar attributes come from :func:`exemplar` (a context manager over a ``ContextVar``) and, for the
order tracker, from the order. They never become series attributes. Their label set is bounded as
OpenMetrics bounds it: names and values of ``trace_id``, ``span_id`` and the caller's attributes
together at most :data:`MAX_LABEL_CHARS` characters. An attribute that does not fit, whose label
name repeats another (``trace_id`` and ``span_id`` are reserved), or whose value holds a character
OpenMetrics escapes (``"``, ``\\``, newline: Prometheus 2.42 stores exemplar label values still escaped,
and prometheus_client's parser refuses an escaped quote in them) is left out of the exemplar and counted
in ``tradetel.attributes.dropped`` under the key ``exemplar.<key>``, never truncated into a wrong id.
"""

from __future__ import annotations

import contextvars
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)

from ._sdk import aggregation_attributes, exemplar_bounds

if TYPE_CHECKING:
    from ._health import Health
    from ._instruments import BoundSeries, Instrument

__all__ = [
    "MAX_LABEL_CHARS",
    "RESERVED_KEYS",
    "Exemplars",
    "collected_at",
    "exemplar",
    "exemplar_attributes",
    "reset_exemplar_attributes",
    "sampler_for",
    "sent_once",
    "set_exemplar_attributes",
    "within",
]

MAX_LABEL_CHARS = 128
"""Characters of label names and values an OpenMetrics exemplar may carry in all."""
RESERVED_KEYS = frozenset({"trace_id", "span_id"})
_TRACE_CHARS = len("trace_id") + 32 + len("span_id") + 16

_ATTRIBUTES: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "tradetel_exemplar", default=None
)


@contextmanager
def exemplar(**attributes: object) -> Iterator[None]:
    """Attach ``attributes`` (an order id) to the exemplars of what is recorded inside the ``with`` block.

    Values are kept as text; nested blocks add to the outer ones. The attributes never become series
    attributes, and nothing is kept when exemplars are off (see ``docs/exemplars.md``).

    Example::

        with tradetel.exemplar(order_id="c-42"):
            tel.orders.latency.record(0.012, exchange="binance", stage="ack")
    """
    outer = _ATTRIBUTES.get()
    added = {key: value if type(value) is str else str(value) for key, value in attributes.items()}
    token = _ATTRIBUTES.set({**outer, **added} if outer else added)
    try:
        yield
    finally:
        _ATTRIBUTES.reset(token)


def exemplar_attributes() -> Mapping[str, str] | None:
    """The attributes :func:`exemplar` blocks around the caller give, or ``None``."""
    return _ATTRIBUTES.get()


def set_exemplar_attributes(attributes: Mapping[str, str] | None) -> contextvars.Token[Mapping[str, str] | None]:
    """Set the exemplar attributes directly (the order tracker); reset with the returned token."""
    return _ATTRIBUTES.set(attributes)


def reset_exemplar_attributes(token: contextvars.Token[Mapping[str, str] | None]) -> None:
    _ATTRIBUTES.reset(token)


# --- filters ------------------------------------------------------------------------------------------

# A sampler returns None when the measurement is not to become an exemplar, else (trace_id, span_id),
# both 0 when no valid span is active.
Sampler = Callable[[], "tuple[int, int] | None"]


def _span_key() -> str | None:
    """The context key the API keeps the current span under, found through its public setter.

    Reading the context with it is what ``trace.get_current_span()`` does, minus its calls: outside a
    span this look-up is all a trace_based measurement pays (1.2 against 1.4 times the benchmark's
    anchor with the public call). ``None`` if the API no longer keeps the span under one key: the
    public call is used then.
    """
    probe = trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)
    context = trace.set_span_in_context(probe, otel_context.Context())
    keys = [key for key, value in context.items() if value is probe]
    return keys[0] if len(keys) == 1 else None


_SPAN_KEY = _span_key()
_get_current = otel_context.get_current


def _public_current_span() -> Any:
    """The active span through the public call, or ``None`` outside a span (when there is no key)."""
    span = trace.get_current_span()
    return None if span is trace.INVALID_SPAN else span


def _span_ids() -> tuple[int, int]:
    span: Any = _get_current().get(_SPAN_KEY) if _SPAN_KEY is not None else _public_current_span()
    if span is None:
        return 0, 0
    context = span.get_span_context()
    if context.is_valid:
        return context.trace_id, context.span_id
    return 0, 0


def _sampled_span_ids() -> tuple[int, int] | None:
    """The OpenTelemetry ``TraceBased`` filter: only measurements inside a sampled span."""
    span: Any = _get_current().get(_SPAN_KEY) if _SPAN_KEY is not None else _public_current_span()
    if span is None:
        return None
    context = span.get_span_context()
    if context.trace_flags.sampled:
        return context.trace_id, context.span_id
    return None


def tracing_configured() -> bool:
    """Whether a real tracer provider is set globally (one that can start sampled spans)."""
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def sampler_for(exemplar_filter: str) -> Sampler | None:
    """The sampler of an ``OTEL_METRICS_EXEMPLAR_FILTER`` value, or ``None`` when nothing can be sampled.

    ``trace_based`` without a tracer provider set at :func:`tradetel.configure` gives ``None``: no span
    can be sampled, and the hot path stays exactly as it is with ``always_off``.
    """
    if exemplar_filter == "always_on":
        return _span_ids
    if exemplar_filter == "trace_based" and tracing_configured():
        return _sampled_span_ids
    return None


# --- storage ------------------------------------------------------------------------------------------

# (value, time_unix_nano, trace_id, span_id, attributes); one tuple, so a collection never reads half of one.
_Sample = tuple[float | int, int, int, int, Mapping[str, str]]


class _Reservoir:
    """The exemplars of one series: one slot per histogram bucket, or one for a counter."""

    __slots__ = ("aggregation", "bounds", "slots")

    def __init__(self, aggregation: Any, bounds: tuple[float, ...]) -> None:
        self.aggregation = aggregation
        self.bounds = bounds  # () for a counter: one slot
        self.slots: list[_Sample | None] = [None] * (len(bounds) + 1)

    def offer(self, sample: _Sample) -> None:
        bounds = self.bounds
        # The bucket the aggregation counts the value in: the first bound it does not exceed.
        self.slots[bisect_left(bounds, sample[0]) if bounds else 0] = sample


class Exemplars:
    """The exemplar reservoirs of one :class:`~tradetel.Telemetry`, and the wrappers that fill them."""

    def __init__(self, sampler: Sampler, health: Health) -> None:
        self._sampler = sampler
        self._health = health
        # instrument name -> id(aggregation) -> reservoir (the reservoir keeps its aggregation alive)
        self._reservoirs: dict[str, dict[int, _Reservoir]] = {}
        self._labels: dict[tuple[Any, ...], Mapping[str, str]] = {}

    @property
    def sampler(self) -> Sampler:
        return self._sampler

    def clear(self) -> None:
        """Forget every exemplar (a forked child starts from empty series)."""
        self._reservoirs = {}

    # --- filling ----------------------------------------------------------------------------------

    def offer(self, name: str, aggregation: Any, value: float | int, ids: tuple[int, int]) -> None:
        """Keep ``value`` as the exemplar of its bucket of ``aggregation`` (latest wins)."""
        series = self._reservoirs.get(name)
        if series is None:
            series = self._reservoirs.setdefault(name, {})
        reservoir = series.get(id(aggregation))
        if reservoir is None:
            bounds = exemplar_bounds(aggregation)
            if bounds is None:
                return  # a view chose another aggregation (exponential histogram): no exemplar slots
            reservoir = series.setdefault(id(aggregation), _Reservoir(aggregation, bounds))
        attributes = _ATTRIBUTES.get()
        labels = self._fitted(name, attributes, ids[0] != 0) if attributes else _NO_LABELS
        reservoir.offer((value, time.time_ns(), ids[0], ids[1], labels))

    def _fitted(self, name: str, attributes: Mapping[str, str], traced: bool) -> Mapping[str, str]:
        """``attributes`` within the OpenMetrics budget; what does not fit is left out and counted."""
        key = (traced, *attributes.items())
        found = self._labels.get(key)
        if found is not None:
            return found
        from .exporters._exposition import _name_of

        room = MAX_LABEL_CHARS - (_TRACE_CHARS if traced else 0)
        kept: dict[str, str] = {}
        names = set(RESERVED_KEYS)
        complete = True
        for label, value in attributes.items():
            text = _name_of(label, False)[0] if type(label) is str else ""
            if not text or text in names or type(value) is not str:
                why = "its label name repeats another (trace_id and span_id are reserved) or its value is not text"
                self._dropped(name, str(label), why)
                complete = False
                continue
            if '"' in value or "\\" in value or "\n" in value:
                self._dropped(name, label, _NEEDS_ESCAPING)
                complete = False
                continue
            names.add(text)
            size = len(text) + len(value)
            if size > room:
                self._dropped(name, label, f"it does not fit the {MAX_LABEL_CHARS}-character exemplar label set")
                complete = False
                continue
            room -= size
            kept[label] = value
        if complete:  # a set with drops is fitted again each time, so that each measurement counts its drops
            if len(self._labels) >= 1024:
                self._labels.clear()
            self._labels[key] = kept
        return kept

    def _dropped(self, name: str, key: str, why: str) -> None:
        self._health.exemplar_attribute_dropped(name, key, why)

    # --- wrapping ---------------------------------------------------------------------------------

    def install(self, handle: Instrument) -> None:
        """Replace ``handle``'s recording method by one that also fills the reservoirs."""
        method = type(handle)._method
        fast = getattr(handle, method)
        wrapper = _unbound_wrapper(self, handle, fast)
        wrapper.__qualname__ = fast.__qualname__
        wrapper.__doc__ = fast.__doc__
        object.__setattr__(handle, method, wrapper)
        handle._exemplars = self

    def install_bound(self, handle: Instrument, series: BoundSeries) -> None:
        """Replace the recording method of a series ``handle.bind()`` returned."""
        method = type(handle)._method
        fast = getattr(series, method)
        wrapper = _bound_wrapper(self, handle, series, fast)
        wrapper.__qualname__ = fast.__qualname__
        wrapper.__doc__ = fast.__doc__
        object.__setattr__(series, method, wrapper)

    # --- collection -------------------------------------------------------------------------------

    def attach(self, data: MetricsData) -> MetricsData:
        """``data`` with the exemplars each series holds on its data points (a new object when any)."""
        reservoirs = self._reservoirs
        if not reservoirs or not any(reservoirs.values()):
            return data

        def attach_to(metric: Metric) -> Metric:
            series = reservoirs.get(metric.name)
            return _with_exemplars(metric, series) if series else metric

        return _map_metrics(data, attach_to)


_NO_LABELS: Mapping[str, str] = {}
_NEEDS_ESCAPING = (
    "its value holds a double quote, backslash or newline, which Prometheus 2.42 keeps escaped in exemplar labels"
)


def _key(attributes: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((attributes or {}).items()))


def _with_exemplars(metric: Metric, series: dict[int, _Reservoir]) -> Metric:
    data = metric.data
    if not isinstance(data, Histogram | Sum):
        return metric
    by_attributes = {_key(aggregation_attributes(r.aggregation)): r for r in list(series.values())}
    points: list[Any] = []
    changed = False
    for point in data.data_points:
        reservoir = by_attributes.get(_key(point.attributes))
        samples = [s for s in reservoir.slots if s is not None] if reservoir is not None else []
        if samples and isinstance(point, HistogramDataPoint | NumberDataPoint):
            point = replace(point, exemplars=[_exemplar(s) for s in samples])
            changed = True
        points.append(point)
    return _with_points(metric, points) if changed else metric


def _with_points(metric: Metric, points: list[Any]) -> Metric:
    """``metric`` (a histogram or a sum) with other data points."""
    data: Any = metric.data
    body: Any = (
        Histogram(points, data.aggregation_temporality)
        if isinstance(data, Histogram)
        else Sum(points, data.aggregation_temporality, data.is_monotonic)
    )
    return Metric(metric.name, metric.description, metric.unit, body)


def _map_metrics(data: MetricsData, transform: Callable[[Metric], Metric]) -> MetricsData:
    """``data`` with every metric passed through ``transform``; ``data`` itself when none changed."""
    resources = []
    changed = False
    for resource_metrics in data.resource_metrics:
        scopes = []
        for scope_metrics in resource_metrics.scope_metrics:
            metrics = [transform(metric) for metric in scope_metrics.metrics]
            changed = changed or any(new is not old for new, old in zip(metrics, scope_metrics.metrics, strict=True))
            scopes.append(ScopeMetrics(scope_metrics.scope, metrics, scope_metrics.schema_url))
        resources.append(ResourceMetrics(resource_metrics.resource, scopes, resource_metrics.schema_url))
    return MetricsData(resource_metrics=resources) if changed else data


def sent_once(data: MetricsData, after: int) -> MetricsData:
    """``data`` without the exemplars measured at or before ``after`` (a push destination already has them)."""
    if not after:
        return data

    def unsent(metric: Metric) -> Metric:
        body: Any = metric.data
        if not isinstance(body, Histogram | Sum) or not any(p.exemplars for p in body.data_points):
            return metric
        points: list[Any] = [
            replace(p, exemplars=within(p.exemplars, after, p.time_unix_nano)) if p.exemplars else p
            for p in body.data_points
        ]
        return _with_points(metric, points)

    return _map_metrics(data, unsent)


def collected_at(data: MetricsData) -> int:
    """The latest point time in ``data`` (its collection time), 0 when it has no points."""
    return max(
        (
            point.time_unix_nano
            for resource_metrics in data.resource_metrics
            for scope_metrics in resource_metrics.scope_metrics
            for metric in scope_metrics.metrics
            for point in metric.data.data_points
        ),
        default=0,
    )


def _exemplar(sample: _Sample) -> Exemplar:
    value, at, trace_id, span_id, labels = sample
    return Exemplar(dict(labels), value, at, span_id or None, trace_id or None)


def within(exemplars: Any, start: int, end: int) -> list[Exemplar]:
    """The exemplars measured after ``start`` and at or before ``end`` (a delta point's interval)."""
    return [e for e in exemplars or () if start < e.time_unix_nano <= end]


# --- wrappers -----------------------------------------------------------------------------------------


def _unbound_wrapper(exemplars: Exemplars, handle: Instrument, fast: Callable[..., None]) -> Callable[..., None]:
    sampler = exemplars.sampler
    offer = exemplars.offer
    store = handle._store
    health = handle._health
    name = handle.name
    check = handle._check
    resolve = handle.attributes

    def sampled(value: Any, attributes: dict[str, Any], ids: tuple[int, int]) -> None:
        number = check(value)
        if number is None:
            return
        resolved = resolve(attributes)
        if resolved is None:
            return
        aggregation = store.aggregation(resolved)
        if store.is_overflow(aggregation):
            health.overflow(name)
        store.write(aggregation, number)
        offer(name, aggregation, number, ids)

    if type(handle)._default:  # counters: add(amount=1, /, **attributes)

        def add(value: Any = 1, /, **attributes: Any) -> None:
            ids = sampler()
            if ids is None:
                fast(value, **attributes)
            else:
                sampled(value, attributes, ids)

        return add

    def record(value: Any, /, **attributes: Any) -> None:
        ids = sampler()
        if ids is None:
            fast(value, **attributes)
        else:
            sampled(value, attributes, ids)

    return record


def _bound_wrapper(
    exemplars: Exemplars, handle: Instrument, series: BoundSeries, fast: Callable[..., None]
) -> Callable[..., None]:
    sampler = exemplars.sampler
    offer = exemplars.offer
    store = handle._store
    name = handle.name
    check = handle._check
    aggregation = store.aggregation(dict(series.attributes))
    overflowed = store.is_overflow(aggregation)
    on_overflow = series._on_overflow
    write = store.write

    def record(value: Any = 1, /) -> None:
        ids = sampler()
        if ids is None:
            fast(value)
            return
        number = check(value)
        if number is None:
            return
        if overflowed:
            on_overflow()
        write(aggregation, number)
        offer(name, aggregation, number, ids)

    return record
