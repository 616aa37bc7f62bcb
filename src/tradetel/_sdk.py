"""The one module that touches OpenTelemetry SDK internals: the compatibility adapter.

tradetel's fast path records straight into the SDK's aggregation objects. It
looks the aggregation for an attribute set up once, through the SDK's own
``_get_or_create_aggregation``, so views, cardinality limits and the overflow
series behave exactly as in the SDK; then it updates that aggregation's
fields under the aggregation's own lock, doing exactly what the
aggregation's ``aggregate()`` does, without building a ``Measurement`` for
every call.

Every private name tradetel uses is listed in :data:`PRIVATE_NAMES` and
resolved here, nowhere else. :func:`contract_problems` checks them against the
installed SDK once per process, by name and by use: a probe MeterProvider is
built, recorded into through the fast path, collected through the public
reader API, reset as a forked child resets it, and compared with the values
it must hold. Any problem (a missing or renamed name, a changed signature,
aggregations with ``__slots__``, a different result) turns the fast path off:
:mod:`tradetel._series` then aggregates catalog instruments itself and hands
the SDK's public data classes to the same exporters. Importing tradetel never
depends on a private name.

Why internals at all: the public API costs 5-13 times a ``prometheus_client``
labelled increment per call, mostly cleaning and hashing the attribute dict
per reader; the public ``Histogram.record`` also refuses negative values
(signed slippage, R-multiples) which the aggregation itself handles.
Instrument enablement (``_is_enabled``, meter configurators) is not
consulted: tradetel owns its MeterProvider and never disables instruments.
"""

from __future__ import annotations

import importlib
import inspect
import threading
import time
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider, ObservableCounter
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource

__all__ = [
    "PRIVATE_NAMES",
    "ForkAwareMeterProvider",
    "SeriesStore",
    "aggregation_attributes",
    "contract_problems",
    "enable_provider",
    "exemplar_bounds",
    "observable_counter_names",
    "private_names_markdown",
    "provider_resource",
    "renew_lock",
    "reset_after_fork",
    "set_resource_attributes",
    "sync_gauge_class",
    "view_instrument_match",
]


@dataclass(frozen=True, slots=True)
class PrivateName:
    """One private SDK name the fast path uses: a module attribute, or an attribute of the SDK's objects.

    ``owner`` is a module path for module attributes, else the role of the object that carries the
    attribute (``provider``, ``consumer``, ``storage``, ``match``, ``view``, ``factory``, ``sum``,
    ``last_value``, ``histogram``); :func:`contract_problems` checks those on a probe.
    """

    owner: str
    name: str

    @property
    def module(self) -> bool:
        return self.owner.startswith("opentelemetry.")

    def __str__(self) -> str:
        return f"{self.owner}.{self.name}"


_VIM = "opentelemetry.sdk.metrics._internal._view_instrument_match"
_AGGREGATION = "opentelemetry.sdk.metrics._internal.aggregation"

PRIVATE_NAMES: tuple[PrivateName, ...] = (
    PrivateName(_VIM, "_OVERFLOW_KEY"),
    PrivateName(_VIM, "_hash_attributes"),
    PrivateName(_AGGREGATION, "_SumAggregation"),
    PrivateName(_AGGREGATION, "_LastValueAggregation"),
    PrivateName(_AGGREGATION, "_ExplicitBucketHistogramAggregation"),
    PrivateName(_AGGREGATION, "_ExponentialBucketHistogramAggregation"),
    PrivateName("opentelemetry.sdk.metrics._internal.measurement", "Measurement"),
    PrivateName("provider", "_measurement_consumer"),
    PrivateName("provider", "_meters"),
    PrivateName("provider", "_sdk_config"),
    PrivateName("provider", "_disabled"),
    PrivateName("consumer", "_reader_storages"),
    PrivateName("consumer", "_lock"),
    PrivateName("consumer", "_async_instruments"),
    PrivateName("meter", "_instrument_registration_lock"),
    PrivateName("storage", "_get_or_init_view_instrument_match"),
    PrivateName("storage", "_instrument_view_instrument_matches"),
    PrivateName("storage", "_lock"),
    PrivateName("match", "_get_or_create_aggregation"),
    PrivateName("match", "_attributes_aggregation"),
    PrivateName("match", "_cardinality_limit"),
    PrivateName("match", "_instrument"),
    PrivateName("match", "_aggregation"),
    PrivateName("match", "_view"),
    PrivateName("match", "_lock"),
    PrivateName("match", "_instrument_class_aggregation"),
    PrivateName("view", "_aggregation"),
    PrivateName("view", "_exemplar_reservoir_factory"),
    PrivateName("factory", "_create_aggregation"),
    PrivateName("sum", "_lock"),
    PrivateName("sum", "_value"),
    PrivateName("sum", "_attributes"),
    PrivateName("last_value", "_value"),
    PrivateName("histogram", "_value"),
    PrivateName("histogram", "_sum"),
    PrivateName("histogram", "_min"),
    PrivateName("histogram", "_max"),
    PrivateName("histogram", "_boundaries"),
    PrivateName("histogram", "_record_min_max"),
)
"""Every private SDK name tradetel uses, checked by :func:`contract_problems` before the fast path is used."""

_ROLES = {
    "provider": "`MeterProvider`",
    "consumer": "its measurement consumer",
    "meter": "each `Meter`",
    "storage": "the reader's storage",
    "match": "`_ViewInstrumentMatch` (one per instrument and view)",
    "view": "`View`",
    "factory": "the view's `Aggregation`",
    "sum": "`_SumAggregation` (a series)",
    "last_value": "`_LastValueAggregation` (a series)",
    "histogram": "`_ExplicitBucketHistogramAggregation` (a series)",
}


def private_names_markdown() -> str:
    """The table of :data:`PRIVATE_NAMES` in ``docs/performance.md`` (a test keeps it current)."""
    rows = ["| where | private name |", "|---|---|"]
    for entry in PRIVATE_NAMES:
        where = f"module `{entry.owner}`" if entry.module else _ROLES[entry.owner]
        rows.append(f"| {where} | `{entry.name}` |")
    return "\n".join(rows)


# The signatures the fast path calls, by parameter names (checked on the probe's objects).
_SIGNATURES: dict[tuple[str, str], tuple[str, ...]] = {
    ("match", "_get_or_create_aggregation"): ("aggr_key", "attributes"),
    ("storage", "_get_or_init_view_instrument_match"): ("instrument",),
    ("factory", "_create_aggregation"): ("instrument", "attributes", "reservoir_factory", "start_time_unix_nano"),
}


class _Internals:
    """The resolved module-level private names (set by :func:`contract_problems` when the contract holds)."""

    overflow_key: Any = None
    hash_attributes: Callable[[Any], Any] | None = None
    sum_class: type | None = None
    last_value_class: type | None = None
    histogram_class: type | None = None
    exponential_class: type | None = None
    measurement_class: type | None = None


_INTERNALS = _Internals()
_CHECKED: list[tuple[str, ...]] = []  # the cached result of contract_problems(), once computed
_CHECK_LOCK = threading.Lock()


def _resolve_module_name(entry: PrivateName) -> Any:
    return getattr(importlib.import_module(entry.owner), entry.name)


def sync_gauge_class() -> type | None:
    """The SDK's synchronous gauge instrument class (exported as ``_Gauge``), if this SDK has one."""
    import opentelemetry.sdk.metrics as sdk_metrics

    found: type | None = getattr(sdk_metrics, "_Gauge", None)
    return found


def contract_problems(*, refresh: bool = False) -> tuple[str, ...]:
    """What keeps the fast path from working with the installed SDK; empty when it works.

    Computed once per process (``refresh`` computes again): the SDK cannot change under a running
    process. Every entry of :data:`PRIVATE_NAMES` is resolved, the called signatures are compared,
    aggregations must carry a ``__dict__`` (a forked child resets them in place), and a probe
    MeterProvider recorded into through the fast path must collect, through the public reader API,
    exactly the values written, before and after a reset like a forked child's.
    """
    with _CHECK_LOCK:
        if _CHECKED and not refresh:
            return _CHECKED[0]
        try:
            problems = tuple(_check())
        except Exception as error:  # any failure of the probe is a reason to stay on the public API
            problems = (f"the fast-path probe failed: {type(error).__name__}: {error}",)
        if problems:
            for name in vars(_Internals):
                if not name.startswith("_"):
                    setattr(_INTERNALS, name, None)
        _CHECKED[:] = [problems]
        return problems


def _check() -> list[str]:
    problems: list[str] = []
    resolved: dict[str, Any] = {}
    for entry in PRIVATE_NAMES:
        if entry.module:
            try:
                resolved[entry.name] = _resolve_module_name(entry)
            except (ImportError, AttributeError):
                problems.append(f"{entry} is missing")
    if problems:
        return problems
    internals = _Internals()
    internals.overflow_key = resolved["_OVERFLOW_KEY"]
    internals.hash_attributes = resolved["_hash_attributes"]
    internals.sum_class = resolved["_SumAggregation"]
    internals.last_value_class = resolved["_LastValueAggregation"]
    internals.histogram_class = resolved["_ExplicitBucketHistogramAggregation"]
    internals.exponential_class = resolved["_ExponentialBucketHistogramAggregation"]
    internals.measurement_class = resolved["Measurement"]
    problems += _probe(internals)
    return problems


_PROBE_BOUNDS = (-1.0, 0.0, 2.5)


def _probe(internals: _Internals) -> list[str]:
    """Build a probe MeterProvider and use it exactly as the fast path and a forked child do."""
    from opentelemetry.sdk.metrics import Counter, Histogram, UpDownCounter
    from opentelemetry.sdk.metrics.export import (
        AggregationTemporality,
        HistogramDataPoint,
        InMemoryMetricReader,
        NumberDataPoint,
    )
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

    for name, value in vars(internals).items():
        setattr(_INTERNALS, name, value)
    problems: list[str] = []
    cumulative = dict.fromkeys((Counter, UpDownCounter, Histogram), AggregationTemporality.CUMULATIVE)
    reader = InMemoryMetricReader(preferred_temporality=cumulative)  # type: ignore[arg-type]
    views = [
        View(instrument_name="probe.sum", aggregation_cardinality_limit=2),
        View(
            instrument_name="probe.histogram",
            aggregation=ExplicitBucketHistogramAggregation(boundaries=list(_PROBE_BOUNDS)),
            aggregation_cardinality_limit=2,
        ),
    ]
    # An explicit resource: the default one runs the resource detectors, in threads.
    provider = MeterProvider(
        metric_readers=[reader], resource=Resource.get_empty(), views=views, shutdown_on_exit=False
    )
    try:
        meter = provider.get_meter("tradetel.probe")
        gauge_class = sync_gauge_class()
        if gauge_class is None:
            problems.append("opentelemetry.sdk.metrics._Gauge is missing")
            return problems
        instruments = {
            "sum": meter.create_counter("probe.sum"),
            "last_value": meter.create_gauge("probe.gauge"),
            "histogram": meter.create_histogram("probe.histogram"),
        }
        roles: dict[str, Any] = {"provider": provider}
        roles["consumer"] = getattr(provider, _name("provider", "_measurement_consumer"))
        roles["meter"] = next(iter(getattr(provider, _name("provider", "_meters")).values()))
        storages = getattr(roles["consumer"], _name("consumer", "_reader_storages"))
        roles["storage"] = storages[reader]
        stores = {role: SeriesStore(view_instrument_match(provider, reader, i)) for role, i in instruments.items()}
        roles["match"] = stores["histogram"]._match
        roles["view"] = getattr(roles["match"], _name("match", "_view"))
        roles["factory"] = getattr(roles["view"], _name("view", "_aggregation"))
        series = {role: store.aggregation({"k": "a"}) for role, store in stores.items()}
        roles.update(series)
        for entry in PRIVATE_NAMES:
            if not entry.module and not hasattr(roles[entry.owner], entry.name):
                problems.append(f"{entry} is missing")
        for (role, name), parameters in _SIGNATURES.items():
            found = tuple(inspect.signature(getattr(roles[role], name)).parameters)
            if found[: len(parameters)] != parameters:
                problems.append(f"{role}.{name} takes {found}, not {parameters}")
        for role, aggregation in series.items():
            if not _has_instance_dict(aggregation):
                problems.append(f"{role} aggregations have __slots__ (a forked child cannot reset them in place)")
            if writer_for(stores[role].aggregation_class) is None:
                problems.append(f"{role} aggregations are {type(aggregation).__name__}: tradetel has no writer")
        if problems:
            return problems

        def record() -> None:
            for value in (2, 0.5):
                stores["sum"].write(series["sum"], value)
            stores["last_value"].write(series["last_value"], 7)
            for value in (-1.5, 3):
                stores["histogram"].write(series["histogram"], value)
            for index in range(3):  # the third attribute set goes to the overflow series
                overflow = stores["sum"].aggregation({"k": f"o{index}"})
                stores["sum"].write(overflow, 1)

        def points() -> dict[tuple[str, tuple[Any, ...]], Any]:
            data = reader.get_metrics_data()
            found: dict[tuple[str, tuple[Any, ...]], Any] = {}
            for resource_metrics in data.resource_metrics if data is not None else ():
                for scope_metrics in resource_metrics.scope_metrics:
                    for metric in scope_metrics.metrics:
                        for point in metric.data.data_points:
                            key = (metric.name, tuple(sorted((point.attributes or {}).items())))
                            if isinstance(point, HistogramDataPoint):
                                found[key] = (point.count, point.sum, tuple(point.bucket_counts), point.min, point.max)
                            else:
                                assert isinstance(point, NumberDataPoint)
                                found[key] = point.value
            return found

        expected: dict[tuple[str, tuple[Any, ...]], Any] = {
            ("probe.sum", (("k", "a"),)): 2.5,
            ("probe.sum", (("k", "o0"),)): 1,
            ("probe.sum", (("otel.metric.overflow", True),)): 2,
            ("probe.gauge", (("k", "a"),)): 7,
            ("probe.histogram", (("k", "a"),)): (2, 1.5, (1, 0, 0, 1), -1.5, 3),
        }
        record()
        if points() != expected:
            return [f"the probe collected {points()}, not {expected}"]
        reset_after_fork(provider, "probe")
        if points():
            return [f"after a reset like a forked child's the probe collected {points()}, not nothing"]
        record()
        if points() != expected:
            return [f"after a reset the probe collected {points()}, not {expected}"]
        return problems
    finally:
        provider.shutdown()


def _name(owner: str, name: str) -> str:
    """The attribute name :data:`PRIVATE_NAMES` gives for ``owner.name`` (tests rename entries there)."""
    for entry in PRIVATE_NAMES:
        if entry.owner == owner and entry.name.startswith(name):
            return entry.name
    return name + "<not in PRIVATE_NAMES>"


def _has_instance_dict(aggregation: Any) -> bool:
    """Whether ``aggregation`` keeps its state in a ``__dict__`` (no class in its hierarchy gives up the dict)."""
    if not hasattr(aggregation, "__dict__"):
        return False
    return not all("__slots__" in vars(cls) for cls in type(aggregation).__mro__[:-1])


# --- writing into an aggregation -------------------------------------------------------------------
#
# How a value is written into each aggregation class: the bodies of the SDK's ``aggregate()`` methods,
# with exemplar sampling left out (tradetel configures AlwaysOffExemplarFilter, so the SDK would pass
# should_sample_exemplar=False) and ``min()``/``max()`` written as comparisons, which pick the same
# operand (the first one on ties). tradetel's own aggregations (``tradetel._series``) keep the same
# fields, so the same writers serve both paths.


def write_sum(aggregation: Any, value: float | int) -> None:
    """``_SumAggregation.aggregate``: add ``value``."""
    with aggregation._lock:
        previous = aggregation._value
        aggregation._value = (0 if previous is None else previous) + value


def write_last_value(aggregation: Any, value: float | int) -> None:
    """``_LastValueAggregation.aggregate``: keep ``value``."""
    with aggregation._lock:
        aggregation._value = value


def write_histogram(aggregation: Any, value: float | int, _bisect: Any = bisect_left, _len: Any = len) -> None:
    """``_ExplicitBucketHistogramAggregation.aggregate``: count ``value`` in its bucket, sum, min and max."""
    with aggregation._lock:
        counts = aggregation._value
        if counts is None:
            counts = aggregation._value = [0] * (_len(aggregation._boundaries) + 1)
        aggregation._sum += value
        if aggregation._record_min_max:
            if value < aggregation._min:
                aggregation._min = value
            if value > aggregation._max:
                aggregation._max = value
        counts[_bisect(aggregation._boundaries, value)] += 1


def writer_for(aggregation_class: type) -> Callable[[Any, Any], None] | None:
    """The writer of an SDK aggregation class resolved by the contract check, or ``None``."""
    found: Callable[[Any, Any], None] | None = {
        _INTERNALS.sum_class: write_sum,
        _INTERNALS.last_value_class: write_last_value,
        _INTERNALS.histogram_class: write_histogram,
    }.get(aggregation_class)
    return found


_WRITE_KINDS = {write_sum: "sum", write_last_value: "last_value", write_histogram: "histogram"}
"""Writer → the kind of ``tradetel._codegen``'s write snippets that does the same."""


def _generic_writer(instrument: Any) -> Callable[[Any, Any], None]:
    """Any other aggregation a view may select (an exponential histogram, a drop): its own ``aggregate()``."""
    measurement = _INTERNALS.measurement_class
    assert measurement is not None

    def write(aggregation: Any, value: float | int) -> None:
        aggregation.aggregate(measurement(value, 0, instrument, None, None), False)

    return write


def view_instrument_match(provider: MeterProvider, reader: MetricReader, instrument: Any) -> Any:
    """The SDK's per-instrument aggregation table behind ``reader`` (exactly one view per instrument)."""
    storage = provider._measurement_consumer._reader_storages[reader]
    matches = storage._get_or_init_view_instrument_match(instrument)
    if len(matches) != 1:
        raise RuntimeError(f"instrument {instrument.name} matches {len(matches)} views; tradetel expects one")
    return matches[0]


def exemplar_bounds(aggregation: Any) -> tuple[float, ...] | None:
    """How exemplars of ``aggregation`` are kept: by its bucket bounds (a histogram), ``()`` for one slot
    (a sum), or ``None`` for any other aggregation, which keeps none (``tradetel._exemplars``).

    ``aggregation`` is an SDK aggregation (fast path) or a series of ``tradetel._series`` (public path),
    which says it itself.
    """
    own = getattr(type(aggregation), "exemplar_bounds", None)
    if own is not None:
        bounds: tuple[float, ...] | None = own(aggregation)
        return bounds
    histogram: Any = _INTERNALS.histogram_class
    if histogram is not None and isinstance(aggregation, histogram):
        return tuple(aggregation._boundaries)
    total: Any = _INTERNALS.sum_class
    if total is not None and isinstance(aggregation, total):
        return ()
    return None


def aggregation_attributes(aggregation: Any) -> Any:
    """The attributes of the series ``aggregation`` holds, as its data points carry them (either path)."""
    return aggregation._attributes


class SeriesStore:
    """Attribute set → SDK aggregation for one instrument, with a bounded lookup cache.

    ``write(aggregation, value)`` updates an aggregation exactly as its ``aggregate()`` would.
    """

    __slots__ = (
        "_aggregation_class",
        "_cache",
        "_match",
        "_max_cache",
        "instrument",
        "overflowed",
        "write",
        "write_kind",
    )

    def __init__(self, match: Any) -> None:
        if _INTERNALS.hash_attributes is None and contract_problems():
            raise RuntimeError("the installed OpenTelemetry SDK does not keep the fast path's contract")
        self._match = match
        self.instrument = match._instrument
        # The view's template aggregation has the class every series of this instrument gets.
        self._aggregation_class: type = type(match._aggregation)
        self._cache: dict[tuple[tuple[str, str], ...], Any] = {}
        self._max_cache = 2 * match._cardinality_limit + 64
        self.overflowed = False
        writer = writer_for(self._aggregation_class)
        self.write: Callable[[Any, Any], None] = writer if writer is not None else _generic_writer(self.instrument)
        self.write_kind = _WRITE_KINDS.get(writer, "generic")  # type: ignore[arg-type]

    @property
    def cardinality_limit(self) -> int:
        return int(self._match._cardinality_limit)

    @property
    def aggregation_class(self) -> type:
        """The class of every aggregation of this instrument."""
        return self._aggregation_class

    def aggregation(self, attributes: dict[str, str], *, cache: bool = True) -> Any:
        """The aggregation that ``attributes`` record into (the overflow series once the limit is reached).

        ``cache=False`` when the caller keeps the result itself (the handles' memo), so that a
        series is not indexed twice. Attribute sets that land in the overflow series are cached
        anyway (the handles never memoise them): an attribute set past the limit keeps coming back,
        and hashing it the SDK's way on every call was most of the cost of an overflowing call.
        The reader is cumulative, so an attribute set never gets a series of its own later.
        """
        key = tuple(attributes.items())
        found = self._cache.get(key)
        if found is not None:
            return found
        match = self._match
        hash_attributes = _INTERNALS.hash_attributes
        assert hash_attributes is not None
        with match._lock:
            aggregation = match._get_or_create_aggregation(hash_attributes(attributes), dict(attributes))
            overflow = match._attributes_aggregation.get(_INTERNALS.overflow_key) is aggregation
            if overflow:
                self.overflowed = True
        if cache or overflow:
            if len(self._cache) >= self._max_cache:
                self._cache.clear()  # bounded under a flood of distinct attribute sets
            self._cache[key] = aggregation
        return aggregation

    def is_overflow(self, aggregation: Any) -> bool:
        return self.overflowed and self._match._attributes_aggregation.get(_INTERNALS.overflow_key) is aggregation


def observable_counter_names(provider: MeterProvider) -> frozenset[str]:
    """Names of the asynchronous counters registered on ``provider``; empty when the fast path is off.

    Only the fast path reads them (the consumer's ``_async_instruments``); on the public path
    :class:`tradetel._pipeline.SharedReader` tracks the ones created through ``Telemetry.meter``.
    """
    if contract_problems():
        return frozenset()
    consumer = provider._measurement_consumer
    return frozenset(i.name for i in consumer._async_instruments if isinstance(i, ObservableCounter))


# --- after os.fork -----------------------------------------------------------------------------------


def renew_lock(owner: Any, attribute: str) -> None:
    """Make ``owner.<attribute>`` a fresh, released lock, in place where the lock type allows it.

    After a fork only the forking thread exists; a lock another thread held at
    that moment stays held in the child forever. ``_at_fork_reinit`` is what the
    standard library itself uses on its locks (threading, logging, queues); it
    keeps the lock object, so every reference to it sees the released state.
    """
    lock = getattr(owner, attribute, None)
    if lock is None:
        return
    reinit = getattr(lock, "_at_fork_reinit", None)
    if reinit is not None:
        reinit()
    else:
        setattr(owner, attribute, type(lock)())


def _untouched(aggregation: Any) -> bool:
    """Whether a reset aggregation has received nothing since (it then exports nothing)."""
    exponential: Any = _INTERNALS.exponential_class
    if isinstance(aggregation, exponential):
        return not aggregation._count
    return aggregation._value is None


_INHERITED: dict[type, type] = {}


def _inherited_class(cls: type) -> type:
    """A subclass of an aggregation class whose series stays silent until the child records into it.

    A cumulative sum or histogram exports a point at every collection once it
    exists, zero or not; a fresh process has no such series until it records.
    The first collection that finds a value turns the object back into ``cls``.
    """
    made = _INHERITED.get(cls)
    if made is None:
        base_collect = cls.collect  # type: ignore[attr-defined]

        def collect(self: Any, temporality: Any, start: int) -> Any:
            if _untouched(self):
                return None
            self.__class__ = cls
            return base_collect(self, temporality, start)

        made = _INHERITED[cls] = type("Inherited" + cls.__name__, (cls,), {"__slots__": (), "collect": collect})
    return made


def _fresh_aggregation(match: Any, attributes: Any, start: int) -> Any:
    """A new aggregation for ``attributes``, made the way ``_get_or_create_aggregation`` makes one."""
    from opentelemetry.sdk.metrics.view import DefaultAggregation

    view = match._view
    factory = view._aggregation
    if isinstance(factory, DefaultAggregation):
        factory = match._instrument_class_aggregation[match._instrument.__class__]
    return factory._create_aggregation(match._instrument, attributes, view._exemplar_reservoir_factory, start)


class ForkAwareMeterProvider(MeterProvider):
    """The SDK's MeterProvider, keeping the ``service.instance.id`` :func:`reset_after_fork` gave a child.

    The SDK registers a fork hook per provider that re-runs the process-dependent resource
    detectors in the child; it may run after tradetel's and would replace the child's instance id.
    """

    instance_id: str | None = None

    def _handle_fork(self) -> None:
        super()._handle_fork()
        if self.instance_id is not None:
            self._update_resource(Resource({"service.instance.id": self.instance_id}))


def provider_resource(provider: MeterProvider) -> Resource:
    """The resource ``provider`` puts on every collection, as it is now (it changes after a fork)."""
    resource: Resource = provider._sdk_config.resource
    return resource


def reset_after_fork(provider: MeterProvider, instance_id: str) -> Resource:
    """In a forked child: fresh SDK locks, every series back to empty, and a new ``service.instance.id``.

    Each aggregation object is reset in place (its state replaced by that of a
    new one starting now), because bound series and recording memos hold the
    objects themselves; the reset series export nothing until the child
    records into them. Returns the provider's new resource. Only called when
    :func:`contract_problems` found nothing: the probe ran this very reset.
    """
    consumer = provider._measurement_consumer
    renew_lock(consumer, "_lock")
    for meter in list(provider._meters.values()):
        renew_lock(meter, "_instrument_registration_lock")
    start = time.time_ns()
    silent_until_recorded = (_INTERNALS.sum_class, _INTERNALS.histogram_class, _INTERNALS.exponential_class)
    for storage in consumer._reader_storages.values():
        renew_lock(storage, "_lock")
        for matches in storage._instrument_view_instrument_matches.values():
            for match in matches:
                renew_lock(match, "_lock")
                for aggregation in match._attributes_aggregation.values():
                    fresh = _fresh_aggregation(match, aggregation._attributes, start)
                    vars(aggregation).clear()
                    vars(aggregation).update(vars(fresh))  # a fresh _lock included
                    if isinstance(fresh, silent_until_recorded):  # type: ignore[arg-type]
                        aggregation.__class__ = _inherited_class(type(fresh))
    config = provider._sdk_config
    config.resource = config.resource.merge(Resource({"service.instance.id": instance_id}))
    if isinstance(provider, ForkAwareMeterProvider):
        provider.instance_id = instance_id
    resource: Resource = config.resource
    return resource


def set_resource_attributes(provider: MeterProvider, attributes: dict[str, str]) -> Resource:
    """Merge ``attributes`` into the resource of every later collection of ``provider`` (a worker's identity)."""
    config = provider._sdk_config
    config.resource = config.resource.merge(Resource(attributes))
    if isinstance(provider, ForkAwareMeterProvider) and "service.instance.id" in attributes:
        provider.instance_id = attributes["service.instance.id"]
    resource: Resource = config.resource
    return resource


def enable_provider(provider: MeterProvider) -> bool:
    """Make ``provider`` hand out real meters even when ``OTEL_SDK_DISABLED=true`` is in ``os.environ``.

    tradetel reads that variable itself, from the environment it was given, and when it is set
    collects and exports nothing; its handles need real instruments either way. Returns whether it
    could (the fast path's contract holds); on the public path the SDK's own reading stands, which
    only matters to instruments created through ``Telemetry.meter`` and the runtime metrics.
    """
    if contract_problems():
        return False
    provider._disabled = False
    return True
