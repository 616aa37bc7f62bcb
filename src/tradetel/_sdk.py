"""The one module that touches OpenTelemetry SDK internals.

tradetel records straight into the SDK's aggregation objects. It looks the
aggregation for an attribute set up once, through the SDK's own
``_get_or_create_aggregation``, so views, cardinality limits and the
overflow series behave exactly as in the SDK; then it updates that
aggregation's fields under the aggregation's own lock, doing exactly what
the aggregation's ``aggregate()`` does, without building a ``Measurement``
(whose constructor cleans the attribute dict again) for every call.

Why internals at all: the public API costs 5-13 times a ``prometheus_client``
labelled increment per call, mostly cleaning and hashing the attribute dict
per reader; the public ``Histogram.record`` also refuses negative values
(signed slippage, R-multiples) which the aggregation itself handles.

Everything here depends on the SDK version pinned in ``pyproject.toml``
(``>=1.45,<1.46``). ``tests/test_fastpath_equivalence.py`` compares what this
path exports with what the public API exports for the same input; run it
before widening the pin. Instrument enablement (``_is_enabled``, meter
configurators) is not consulted: tradetel owns its MeterProvider and never
disables instruments.
"""

from __future__ import annotations

import hashlib
import linecache
import time
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics._internal._view_instrument_match import (
    _OVERFLOW_KEY,
    _hash_attributes,
    _ViewInstrumentMatch,
)
from opentelemetry.sdk.metrics._internal.aggregation import (
    DefaultAggregation,
    _ExplicitBucketHistogramAggregation,
    _ExponentialBucketHistogramAggregation,
    _LastValueAggregation,
    _SumAggregation,
)
from opentelemetry.sdk.metrics._internal.measurement import Measurement
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource

__all__ = [
    "WRITE_GLOBALS",
    "ForkAwareMeterProvider",
    "Measurement",
    "SeriesStore",
    "aggregation_attributes",
    "compile_function",
    "exemplar_bounds",
    "provider_resource",
    "renew_lock",
    "reset_after_fork",
    "set_resource_attributes",
    "view_instrument_match",
    "write_source",
]

# How a value is written into each aggregation class, as source lines using the
# names ``_agg`` (the aggregation) and ``_value`` (a checked int or float).
# These are the bodies of the SDK 1.45 ``aggregate()`` methods, with exemplar
# sampling left out (tradetel configures AlwaysOffExemplarFilter, so the SDK
# would pass should_sample_exemplar=False) and ``min()``/``max()`` written as
# comparisons, which pick the same operand (the first one on ties).
# They are spliced into generated recording functions so that a hot call pays
# no extra Python call frame; see ``compile_function``.
_WRITE_SUM = """\
with _agg._lock:
    _previous = _agg._value
    _agg._value = (0 if _previous is None else _previous) + _value
"""
_WRITE_LAST_VALUE = """\
with _agg._lock:
    _agg._value = _value
"""
_WRITE_HISTOGRAM = """\
with _agg._lock:
    _counts = _agg._value
    if _counts is None:
        _counts = _agg._value = [0] * (_len(_agg._boundaries) + 1)
    _agg._sum += _value
    if _agg._record_min_max:
        if _value < _agg._min:
            _agg._min = _value
        if _value > _agg._max:
            _agg._max = _value
    _counts[_bisect(_agg._boundaries, _value)] += 1
"""
# Any other aggregation a view may select (exponential histogram, drop): the
# public aggregate() with a Measurement, which is always correct.
_WRITE_GENERIC = """\
_agg.aggregate(_Measurement(_value, 0, _agg_instrument, None, None), False)
"""

WRITE_GLOBALS: dict[str, Any] = {"_bisect": bisect_left, "_len": len, "_Measurement": Measurement}
"""Names the write snippets need besides ``_agg``, ``_value`` and ``_agg_instrument``.

Generated code names everything with a leading underscore, builtins included:
its parameters are catalog attribute keys, which never start with one, so a
key such as ``len`` or ``type`` cannot shadow what the code calls.
"""


def write_source(aggregation_class: type, indent: str) -> str:
    """Source lines that write ``_value`` into ``_agg``, an aggregation of ``aggregation_class``."""
    if aggregation_class is _SumAggregation:
        source = _WRITE_SUM
    elif aggregation_class is _LastValueAggregation:
        source = _WRITE_LAST_VALUE
    elif aggregation_class is _ExplicitBucketHistogramAggregation:
        source = _WRITE_HISTOGRAM
    else:
        source = _WRITE_GENERIC
    return "".join(indent + line + "\n" for line in source.splitlines())


def exemplar_bounds(aggregation: Any) -> tuple[float, ...] | None:
    """How exemplars of ``aggregation`` are kept: by its bucket bounds (a histogram), ``()`` for one slot
    (a sum), or ``None`` for any other aggregation, which keeps none (``tradetel._exemplars``)."""
    if isinstance(aggregation, _ExplicitBucketHistogramAggregation):
        return tuple(aggregation._boundaries)
    if isinstance(aggregation, _SumAggregation):
        return ()
    return None


def aggregation_attributes(aggregation: Any) -> Any:
    """The attributes of the series ``aggregation`` holds, as its data points carry them."""
    return aggregation._attributes


def compile_function(
    source: str, factory: str, filename: str, names: dict[str, Any] | None = None
) -> Callable[..., Any]:
    """Compile ``source``, which defines the function ``factory``, with :data:`WRITE_GLOBALS` and ``names``.

    The source is registered with :mod:`linecache` under a ``<...>`` name made from
    its digest, so tracebacks through generated code show its lines, and the same
    source compiled again (each ``configure()``) reuses the entry instead of adding one.
    """
    namespace: dict[str, Any] = {**WRITE_GLOBALS, **(names or {})}
    if filename.endswith(">"):
        filename = f"{filename[:-1]}-{hashlib.blake2b(source.encode(), digest_size=8).hexdigest()}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    # The source is built from the fixed snippets above and catalog keys checked to be identifiers.
    exec(compile(source, filename, "exec"), namespace)
    made: Callable[..., Any] = namespace[factory]
    return made


def view_instrument_match(provider: MeterProvider, reader: MetricReader, instrument: Any) -> _ViewInstrumentMatch:
    """The SDK's per-instrument aggregation table behind ``reader`` (exactly one view per instrument)."""
    storage = provider._measurement_consumer._reader_storages[reader]
    matches = storage._get_or_init_view_instrument_match(instrument)
    if len(matches) != 1:
        raise RuntimeError(f"instrument {instrument.name} matches {len(matches)} views; tradetel expects one")
    match: _ViewInstrumentMatch = matches[0]
    return match


_WRITER_SOURCE = """\
def _make_writer(_agg_instrument):
    def write(_agg, _value):
{body}
    return write
"""


class SeriesStore:
    """Attribute set → SDK aggregation for one instrument, with a bounded lookup cache.

    ``write(aggregation, value)`` updates an aggregation exactly as its
    ``aggregate()`` would; ``write_source(indent)`` gives the same update as
    source lines for generated hot-path functions.
    """

    __slots__ = ("_aggregation_class", "_cache", "_match", "_max_cache", "instrument", "overflowed", "write")

    def __init__(self, match: _ViewInstrumentMatch) -> None:
        self._match = match
        self.instrument = match._instrument
        # The view's template aggregation has the class every series of this instrument gets.
        self._aggregation_class = type(match._aggregation)
        self._cache: dict[tuple[tuple[str, str], ...], Any] = {}
        self._max_cache = 2 * match._cardinality_limit + 64
        self.overflowed = False
        make = compile_function(
            _WRITER_SOURCE.format(body=write_source(self._aggregation_class, " " * 8)),
            "_make_writer",
            "<tradetel-write>",
        )
        self.write: Callable[[Any, float | int], None] = make(self.instrument)

    @property
    def cardinality_limit(self) -> int:
        return int(self._match._cardinality_limit)

    def write_source(self, indent: str) -> str:
        """The update of ``_agg`` by ``_value`` for this instrument's aggregations, as source lines."""
        return write_source(self._aggregation_class, indent)

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
        with match._lock:
            aggregation = match._get_or_create_aggregation(_hash_attributes(attributes), dict(attributes))
            overflow = match._attributes_aggregation.get(_OVERFLOW_KEY) is aggregation
            if overflow:
                self.overflowed = True
        if cache or overflow:
            if len(self._cache) >= self._max_cache:
                self._cache.clear()  # bounded under a flood of distinct attribute sets
            self._cache[key] = aggregation
        return aggregation

    def is_overflow(self, aggregation: Any) -> bool:
        return self.overflowed and self._match._attributes_aggregation.get(_OVERFLOW_KEY) is aggregation


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
    if isinstance(aggregation, _ExponentialBucketHistogramAggregation):
        return not aggregation._count
    return aggregation._value is None


_INHERITED: dict[type, type] = {}
_SILENT_UNTIL_RECORDED = (_SumAggregation, _ExplicitBucketHistogramAggregation, _ExponentialBucketHistogramAggregation)


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


def _fresh_aggregation(match: _ViewInstrumentMatch, attributes: Any, start: int) -> Any:
    """A new aggregation for ``attributes``, made the way ``_get_or_create_aggregation`` makes one."""
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
    records into them. Returns the provider's new resource.
    """
    consumer = provider._measurement_consumer
    renew_lock(consumer, "_lock")
    for meter in list(provider._meters.values()):
        renew_lock(meter, "_instrument_registration_lock")
    start = time.time_ns()
    for storage in consumer._reader_storages.values():
        renew_lock(storage, "_lock")
        for matches in storage._instrument_view_instrument_matches.values():
            for match in matches:
                renew_lock(match, "_lock")
                for aggregation in match._attributes_aggregation.values():
                    fresh = _fresh_aggregation(match, aggregation._attributes, start)
                    vars(aggregation).clear()
                    vars(aggregation).update(vars(fresh))  # a fresh _lock included
                    if isinstance(fresh, _SILENT_UNTIL_RECORDED):
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


def enable_provider(provider: MeterProvider) -> None:
    """Make ``provider`` hand out real meters even when ``OTEL_SDK_DISABLED=true`` is in ``os.environ``.

    tradetel reads that variable itself, from the environment it was given, and when it is set
    collects and exports nothing; its handles need real instruments either way.
    """
    provider._disabled = False
