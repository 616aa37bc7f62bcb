"""Every recording path exports exactly what the stock OpenTelemetry SDK exports for the same input.

tradetel records either into SDK aggregations directly (the fast path,
``tradetel._sdk``) or into aggregations of its own handed to the exporters as
the SDK's public data classes (the public path, ``tradetel._series``), through
generated methods or plain closures with a per-handle memo. Every test here
runs on the four combinations (``PATHS``). The reference is the stock SDK: a
separate MeterProvider with an InMemoryMetricReader, the same resource,
views with the same buckets and series limits, label policies applied per
call by fresh normalisers, and the public ``add``/``set``/``record`` calls.
Randomised sequences (hypothesis) must give the same points, the same
Prometheus samples and the same DogStatsD lines.

On SDKs older than 1.45, which have no series limits, the reference applies
the limit itself (the catalog's promise: ``L`` attribute sets, then one
overflow series ``otel.metric.overflow=true``), and the fast path is off.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections import Counter as Tally
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics._internal.measurement import Measurement
from opentelemetry.sdk.metrics.export import (
    Histogram,
    HistogramDataPoint,
    InMemoryMetricReader,
    MetricsData,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from prometheus_client.parser import text_string_to_metric_families

import tradetel
from tradetel import InstrumentSpec, Kind
from tradetel._sdk import contract_problems, view_instrument_match
from tradetel.catalog import Attribute, Catalog
from tradetel.exporters.prometheus import render
from tradetel.labels import Categorize, Free, OneOf, TopN
from tradetel.telemetry import METER_NAME, Telemetry
from tradetel.views import series_limit

PATHS = [
    pytest.param({"fast_path": True, "recording": "generated"}, id="fast-generated"),
    pytest.param({"fast_path": True, "recording": "plain"}, id="fast-plain"),
    pytest.param({"fast_path": False, "recording": "generated"}, id="public-generated"),
    pytest.param({"fast_path": False, "recording": "plain"}, id="public-plain"),
]
SDK_LIMITS = "aggregation_cardinality_limit" in inspect.signature(View).parameters
"""Whether the installed SDK has series limits on views (1.45 and later)."""

NAMESPACE = "eqv"
LIMIT = 6
BUCKETS = (-2.0, 0.0, 1.0, 2.5, 5.0, 10.0)

SYMBOL = Attribute("symbol", TopN(n=1))
SIDE = Attribute("side", OneOf(("buy", "sell"), aliases={"long": "buy", "short": "sell"}))
VENUE = Attribute("venue", Free(max_length=8))
REASON = Attribute("reason", Categorize((("timeout", ("timeout",)), ("funds", ("insufficient", "balance")))))

SPECS = (
    InstrumentSpec("fills", Kind.COUNTER, "{fill}", "Fills.", (SYMBOL, SIDE, VENUE), cardinality_limit=LIMIT),
    InstrumentSpec("rejects", Kind.COUNTER, "{order}", "Rejects.", (VENUE, REASON)),
    InstrumentSpec("pending", Kind.UP_DOWN_COUNTER, "{order}", "Pending.", (SYMBOL, VENUE)),
    InstrumentSpec("equity", Kind.GAUGE, "{quote}", "Equity.", (VENUE,)),
    InstrumentSpec("bare", Kind.COUNTER, "1", "No attributes."),
    InstrumentSpec(
        "slippage", Kind.HISTOGRAM, "[bp]", "Slippage.", (SYMBOL, SIDE), buckets=BUCKETS, cardinality_limit=LIMIT
    ),
)
CATALOG = Catalog(SPECS, namespace=NAMESPACE)
NAMES = tuple(spec.name for spec in SPECS)

# Values the policies treat differently, including ones Python finds equal (1, 1.0, True) and
# strings too long to memoise.
ATTRIBUTE_VALUES: dict[str, list[Any]] = {
    "symbol": ["BTC", "ETH", "SOL", 1, 1.0, True],
    "side": ["buy", "SELL", "long", "hold", 1, True, 1.0, " Short "],
    "venue": ["a", "b", "venue-with-a-long-name", 7, 7.0, None, "x" * 300],
    "reason": ["Timeout", "insufficient balance", "weird", 3.5],
}


@dataclass
class Step:
    """One measurement: which instrument, how it is called, the value and the raw attributes."""

    name: str
    mode: str  # "call", "bind" (a fresh bound handle) or "reuse" (the last bound handle of the instrument)
    value: float | int
    attributes: dict[str, Any] = field(default_factory=dict)


def _values(kind: Kind, public_histogram: bool) -> st.SearchStrategy[float | int]:
    if kind is Kind.COUNTER:
        return st.one_of(st.integers(0, 5), st.sampled_from([0.5, 2.25, 1e-3, 0.0]))
    if kind is Kind.HISTOGRAM:
        edges = st.sampled_from([*BUCKETS, 0.1, 3.0, 12.0, 100.0, 0])
        if public_histogram:  # the public Histogram.record refuses negative values
            return st.one_of(edges.filter(lambda v: v >= 0), st.integers(0, 20))
        return st.one_of(edges, st.integers(-20, 20), st.floats(-50, 50, allow_nan=False))
    return st.one_of(st.integers(-5, 5), st.floats(-1e6, 1e6, allow_nan=False))


@st.composite
def sequences(draw: st.DrawFn, public_histogram: bool = True) -> list[Step]:
    """A few call sites (instrument, mode, raw attributes) repeated in random order with fresh values.

    Repeats are what exercise the memo: warm entries, re-counted folds, and
    TopN demotions between two calls with the same raw values.
    """
    sites = []
    for _ in range(draw(st.integers(1, 8))):
        spec = CATALOG[draw(st.sampled_from(NAMES))]
        keys = list(spec.attribute_keys)
        chosen = draw(st.lists(st.sampled_from(keys), unique=True)) if keys else []
        attributes = {key: draw(st.sampled_from(ATTRIBUTE_VALUES[key])) for key in chosen}
        if draw(st.integers(0, 9)) == 0:
            attributes["order_id"] = "o-1"  # unknown key: dropped and counted on every call
        sites.append((spec, draw(st.sampled_from(["call", "call", "call", "bind", "reuse"])), attributes))
    order = draw(st.lists(st.integers(0, len(sites) - 1), max_size=120))
    return [
        Step(spec.name, mode, draw(_values(spec.kind, public_histogram)), attributes)
        for spec, mode, attributes in (sites[i] for i in order)
    ]


# --- the two paths --------------------------------------------------------------------------------


def fast_path(telemetry: Telemetry, sequence: Sequence[Step]) -> None:
    """Record through tradetel's handles: generated methods, memo, bound series."""
    bound: dict[str, Any] = {}
    for step in sequence:
        handle = telemetry.instrument(step.name)
        method = _method(handle.spec.kind)
        if step.mode == "call":
            getattr(handle, method)(step.value, **step.attributes)
            continue
        if step.mode == "bind" or step.name not in bound:
            bound[step.name] = handle.bind(**step.attributes)
        getattr(bound[step.name], method)(step.value)


class Reference:
    """The standard path: public OTel API calls, label policies applied by fresh normalisers."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.reader = InMemoryMetricReader()
        views = []
        for spec in telemetry.catalog.values():
            limit = series_limit(spec, telemetry.settings.cardinality_limit)
            buckets = ExplicitBucketHistogramAggregation(boundaries=list(spec.buckets or ()))
            views.append(
                View(
                    instrument_name=telemetry.catalog.full_name(spec),
                    aggregation=buckets if spec.kind is Kind.HISTOGRAM else None,
                    **({"aggregation_cardinality_limit": limit} if SDK_LIMITS else {}),
                )
            )
        self.provider = MeterProvider(
            metric_readers=[self.reader], resource=telemetry.resource, views=views, shutdown_on_exit=False
        )
        meter = self.provider.get_meter(METER_NAME, tradetel.__version__)
        create = {
            Kind.COUNTER: meter.create_counter,
            Kind.UP_DOWN_COUNTER: meter.create_up_down_counter,
            Kind.GAUGE: meter.create_gauge,
            Kind.HISTOGRAM: meter.create_histogram,
        }
        self.instruments: dict[str, Any] = {}
        self.normalizers: dict[str, dict[str, Any]] = {}
        self.limits: dict[str, int] = {}
        for spec in SPECS:
            full = CATALOG.full_name(spec)
            self.instruments[spec.name] = create[spec.kind](full, unit=spec.unit, description=spec.description)
            self.normalizers[spec.name] = {a.key: a.policy.build() for a in spec.attributes}
            self.limits[spec.name] = spec.cardinality_limit or telemetry.settings.cardinality_limit
        self.series: dict[str, list[frozenset[tuple[str, str]]]] = {name: [] for name in NAMES}
        self.overflowed: Tally[str] = Tally()
        self.unknown: Tally[str] = Tally()

    def normalise(self, name: str, raw: Mapping[str, Any]) -> dict[str, str]:
        """The label policy: unknown keys dropped, values normalised, keys in catalog order."""
        normalizers = self.normalizers[name]
        self.unknown.update({name: sum(key not in normalizers for key in raw)})
        return {key: normalize(raw[key]) for key, normalize in normalizers.items() if key in raw}

    def record(self, sequence: Sequence[Step], *, public: bool = True) -> None:
        bound: dict[str, dict[str, str]] = {}
        for step in sequence:
            if step.mode == "call":
                attributes = self.normalise(step.name, step.attributes)
            else:
                if step.mode == "bind" or step.name not in bound:
                    bound[step.name] = self.normalise(step.name, step.attributes)
                attributes = bound[step.name]
            if self._count_overflow(step.name, attributes) and not SDK_LIMITS:
                attributes = {"otel.metric.overflow": True}  # type: ignore[dict-item]
            instrument = self.instruments[step.name]
            if public:
                getattr(instrument, _method(CATALOG[step.name].kind))(step.value, attributes)
            else:
                # The SDK's consumer path below the public call, which lets histograms take negative values.
                match = view_instrument_match(self.provider, self.reader, instrument)
                match.consume_measurement(Measurement(step.value, 0, instrument, None, attributes), False)

    def _count_overflow(self, name: str, attributes: dict[str, str]) -> bool:
        """Whether ``attributes`` land in the overflow series (counted)."""
        key = frozenset(attributes.items())
        seen = self.series[name]
        if key in seen:
            return False
        if len(seen) < self.limits[name]:
            seen.append(key)
            return False
        self.overflowed[name] += 1
        return True

    def folded(self) -> dict[tuple[str, str], int]:
        return {
            (CATALOG.full_name(CATALOG[name]), key): normalize.folded
            for name, normalizers in self.normalizers.items()
            for key, normalize in normalizers.items()
            if normalize.folded
        }

    def collect(self) -> MetricsData:
        return self.reader.get_metrics_data() or MetricsData(resource_metrics=[])


def _method(kind: Kind) -> str:
    return {Kind.COUNTER: "add", Kind.UP_DOWN_COUNTER: "add", Kind.GAUGE: "set", Kind.HISTOGRAM: "record"}[kind]


# --- what is compared -----------------------------------------------------------------------------


def _ours(data: MetricsData) -> Iterator[Any]:
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name.startswith(NAMESPACE + "."):
                    yield metric


def points(data: MetricsData) -> dict[str, Any]:
    """Every test metric: its shape, and each point's attributes and values (timestamps left out)."""
    out: dict[str, Any] = {}
    for metric in _ours(data):
        shape: tuple[Any, ...] = (metric.unit, metric.description, type(metric.data).__name__)
        if isinstance(metric.data, Sum | Histogram):
            shape += (metric.data.aggregation_temporality,)
        if isinstance(metric.data, Sum):
            shape += (metric.data.is_monotonic,)
        series = {}
        for point in metric.data.data_points:
            attributes = frozenset((point.attributes or {}).items())
            if isinstance(point, HistogramDataPoint):
                series[attributes] = (
                    point.count,
                    _typed(point.sum),
                    tuple(point.bucket_counts),
                    tuple(point.explicit_bounds),
                    _typed(point.min),
                    _typed(point.max),
                )
            else:
                assert isinstance(point, NumberDataPoint)
                series[attributes] = _typed(point.value)
        out[metric.name] = (shape, series)
    return out


def _typed(value: float | int) -> tuple[str, float | int]:
    """A value with its type: an int and a float export differently (OTLP as_int / as_double)."""
    return (type(value).__name__, value)


def prometheus_samples(data: MetricsData) -> set[tuple[str, frozenset[tuple[str, str]], float]]:
    """The exposition parsed by prometheus_client's own parser, as a set of (name, labels, value)."""
    text = render(data, target_info=False).decode()
    samples = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith(NAMESPACE + "_"):
                samples.add((sample.name, frozenset(sample.labels.items()), float(sample.value)))
    return samples


def dogstatsd_lines(data: MetricsData) -> list[str] | None:
    """DogStatsD lines from the DogStatsD exporter's serializer, when that exporter exists."""
    if importlib.util.find_spec("tradetel.exporters.dogstatsd") is None:
        return None
    from tradetel.exporters.dogstatsd import DogStatsdSerializer

    return sorted(line for line in DogStatsdSerializer().lines(data) if line.startswith(NAMESPACE + "."))


def self_metric(data: MetricsData, name: str) -> dict[tuple[str, ...], float]:
    out: dict[tuple[str, ...], float] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        assert isinstance(point, NumberDataPoint)
                        out[tuple(str(v) for v in (point.attributes or {}).values())] = point.value
    return out


def _telemetry(path: Mapping[str, Any]) -> Telemetry:
    telemetry = tradetel.configure(catalog=CATALOG, exporters="none", env={}, **path)
    fast = path["fast_path"] and not contract_problems()
    assert telemetry.recording_path == ("fast" if fast else "public")
    return telemetry


def _check_equivalent(path: Mapping[str, Any], sequence: Sequence[Step], *, public: bool = True) -> None:
    telemetry = _telemetry(path)
    try:
        reference = Reference(telemetry)
        fast_path(telemetry, sequence)
        reference.record(sequence, public=public)
        ours, theirs = telemetry.collect(), reference.collect()
        assert points(ours) == points(theirs)
        assert prometheus_samples(ours) == prometheus_samples(theirs)
        lines = dogstatsd_lines(ours)
        if lines is not None:
            assert lines == dogstatsd_lines(theirs)
        # Per-call bookkeeping survives the memo: folds, overflow and unknown keys are counted per call.
        assert self_metric(ours, "tradetel.attributes.folded") == reference.folded()
        overflow = {key: n for key, n in self_metric(ours, "tradetel.cardinality.overflow").items() if n}  # 0: at start
        assert overflow == {(CATALOG.full_name(CATALOG[n]),): c for n, c in reference.overflowed.items() if c}
        unknown = self_metric(ours, "tradetel.attributes.dropped")
        assert unknown == {(CATALOG.full_name(CATALOG[n]), "order_id"): c for n, c in reference.unknown.items() if c}
    finally:
        telemetry.shutdown()
        reference.provider.shutdown()


_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("path", PATHS)
@_SETTINGS
@given(sequence=sequences())
def test_random_sequences_export_the_same_as_the_public_api(path: dict[str, Any], sequence: list[Step]) -> None:
    """Random measurements give identical points, Prometheus samples, DogStatsD lines and self-metrics."""
    _check_equivalent(path, sequence)


@pytest.mark.parametrize("path", PATHS)
@_SETTINGS
@given(sequence=sequences(public_histogram=False))
def test_negative_histogram_values_match_the_sdk_aggregation(path: dict[str, Any], sequence: list[Step]) -> None:
    """With negative histogram values every path equals the SDK's own aggregate() below Histogram.record."""
    _check_equivalent(path, sequence, public=False)


@pytest.mark.parametrize("path", PATHS)
def test_repeated_series_match_after_the_memo_is_warm(path: dict[str, Any]) -> None:
    """Thousands of repeats of a few series (the memo's steady state) still match the public API exactly."""
    sequence = [
        Step("fills", "call", i % 3, {"symbol": ("BTC", "ETH", "SOL")[i % 3], "side": "buy", "venue": "a"})
        for i in range(3000)
    ] + [Step("slippage", "call", (i % 13) / 4, {"symbol": "BTC", "side": "long"}) for i in range(3000)]
    _check_equivalent(path, sequence)


@pytest.mark.parametrize("path", PATHS)
def test_collection_between_measurements_matches(path: dict[str, Any]) -> None:
    """Collecting in the middle (cumulative conversion resets the SDK's delta state) changes nothing."""
    first = [Step("slippage", "call", v, {"symbol": "BTC"}) for v in (0.5, 3.0, 12.0)]
    first += [Step("fills", "call", 2, {"symbol": "BTC"}), Step("pending", "call", -1.5, {"venue": "a"})]
    second = [Step("slippage", "call", v, {"symbol": "BTC"}) for v in (1.0, 100.0)]
    second += [Step("fills", "call", 0.25, {"symbol": "BTC"}), Step("pending", "call", 4, {"venue": "a"})]
    telemetry = _telemetry(path)
    reference = Reference(telemetry)
    try:
        fast_path(telemetry, first)
        reference.record(first)
        assert points(telemetry.collect()) == points(reference.collect())
        fast_path(telemetry, second)
        reference.record(second)
        assert points(telemetry.collect()) == points(reference.collect())
    finally:
        telemetry.shutdown()
        reference.provider.shutdown()


@pytest.mark.parametrize("path", PATHS)
def test_topn_demotion_between_memoised_calls_matches(path: dict[str, Any]) -> None:
    """A memoised value that its TopN policy demotes later lands in the fallback series, as per call."""
    symbols = ["BTC", "BTC"] + ["ETH"] * 12 + ["BTC"] * 3
    policy = SYMBOL.policy.build()
    outcomes = [policy(s) for s in symbols]  # what a fresh policy does with this sequence
    assert outcomes[0] == "BTC" and outcomes[-1] == "other", "the sequence must demote BTC to exercise the recheck"
    sequence = [Step("fills", "call", 1, {"symbol": s, "side": "buy"}) for s in symbols]
    sequence += [Step("slippage", "call", 1.0, {"symbol": s}) for s in symbols]
    _check_equivalent(path, sequence)


@pytest.mark.parametrize("path", PATHS)
def test_folded_values_are_counted_per_call(path: dict[str, Any]) -> None:
    """A repeated value that a cacheable policy folds is counted in attributes.folded on every call."""
    sequence = [Step("fills", "call", 1, {"side": "hold", "venue": "a-very-long-venue"}) for _ in range(5)]
    _check_equivalent(path, sequence)


@pytest.mark.parametrize("path", PATHS)
def test_overflow_is_counted_per_call(path: dict[str, Any]) -> None:
    """Calls that land in the overflow series are counted in cardinality.overflow on every call."""
    venues = [f"v{i}" for i in range(LIMIT + 3)]
    sequence = [Step("fills", "call", 1, {"venue": v}) for v in venues * 3]
    sequence += [Step("fills", "bind", 2, {"venue": "late"}), Step("fills", "reuse", 3, {})]
    _check_equivalent(path, sequence)
