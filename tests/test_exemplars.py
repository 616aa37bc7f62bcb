"""Exemplars: the filter values, the reservoir policy, the label budget and the recording paths they leave alone."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics._internal.exemplar import (
    AlwaysOffExemplarFilter,
    AlwaysOnExemplarFilter,
    TraceBasedExemplarFilter,
)
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult, MetricsData
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

import tradetel
from tradetel import _exemplars
from tradetel._pipeline import ExportFailure
from tradetel.config import OtlpSettings
from tradetel.exporters.otlp import OtlpExporter, TemporalityConverter
from tradetel.testing import Capture, capture

BTC = {"exchange": "binance", "symbol": "BTC-USD", "side": "buy"}
ACK = {"exchange": "binance", "stage": "ack"}


def points(data: MetricsData, name: str) -> list[Any]:
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def exemplars_of(data: MetricsData, name: str) -> list[Any]:
    return [exemplar for point in points(data, name) for exemplar in point.exemplars]


@pytest.fixture
def tracing() -> Iterator[TracerProvider]:
    """A real SDK tracer provider set as the global one for the test (OpenTelemetry sets it once per process)."""
    provider = TracerProvider(sampler=ALWAYS_ON)
    saved = trace._TRACER_PROVIDER
    trace._TRACER_PROVIDER = provider
    try:
        yield provider
    finally:
        trace._TRACER_PROVIDER = saved
        provider.shutdown()


@pytest.fixture
def on() -> Iterator[Capture]:
    with capture(exemplar_filter="always_on") as cap:
        yield cap


def _generated(function: Any) -> bool:
    return str(function.__code__.co_filename).startswith("<tradetel-")


# --- the filter ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["always_off", "trace_based"])
def test_off_leaves_the_generated_recording_functions_in_place(value: str) -> None:
    """always_off, and trace_based without a tracer provider, keep every recording method the generated function."""
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)
    with capture(exemplar_filter=value) as cap:
        tel = cap.telemetry
        assert tel._exemplars is None and tel._reader.decorate is None
        for handle in tel.instruments().values():
            method = getattr(handle, type(handle)._method)
            assert _generated(method), handle.name
            assert handle._exemplars is None
        bound = tel.orders.latency.bind(**ACK)
        assert _generated(bound.record)
        assert _generated(tel.orders.filled.bind(**BTC).add)
        with capture(exemplar_filter="always_off") as reference:
            # The very code objects a build without exemplars runs (the factories are compiled once per shape).
            assert tel.orders.latency.record.__code__ is reference.telemetry.orders.latency.record.__code__
            assert bound.record.__code__ is reference.telemetry.orders.latency.bind(**ACK).record.__code__


def test_on_wraps_only_counters_and_histograms_of_the_catalog(on: Capture) -> None:
    """always_on wraps catalog counters and histograms (and their bound series); gauges, up-down counters and
    tradetel's own metrics keep the generated function."""
    tel = on.telemetry
    assert not _generated(tel.orders.latency.record) and not _generated(tel.orders.filled.add)
    assert not _generated(tel.orders.latency.bind(**ACK).record)
    assert _generated(tel.orders.pending.add) and _generated(tel.account.equity.set)
    assert _generated(tel.instrument("measurements.dropped").add)


def test_always_off_records_no_exemplar_even_inside_a_sampled_span(tracing: TracerProvider) -> None:
    """always_off: a sampled span and exemplar attributes give no exemplar anywhere."""
    with capture(exemplar_filter="always_off") as cap:
        with tracing.get_tracer("t").start_as_current_span("order"), tradetel.exemplar(order_id="c1"):
            cap.telemetry.orders.latency.record(0.01, **ACK)
            cap.telemetry.orders.filled.add(1, **BTC)
        data = cap.telemetry.collect()
    assert points(data, "trading.orders.latency") and not exemplars_of(data, "trading.orders.latency")
    assert not exemplars_of(data, "trading.orders.filled")


def test_always_on_keeps_exemplars_without_a_span_and_adds_ids_inside_one(on: Capture) -> None:
    """always_on: an exemplar without a span has no trace id; inside a span it has the span's trace and span ids."""
    tel = on.telemetry
    with tradetel.exemplar(order_id="c1"):
        tel.orders.latency.record(0.01, **ACK)
    untraced = exemplars_of(tel.collect(), "trading.orders.latency")
    assert [(e.value, e.filtered_attributes, e.trace_id, e.span_id) for e in untraced] == [
        (0.01, {"order_id": "c1"}, None, None)
    ]
    with TracerProvider().get_tracer("t").start_as_current_span("order") as span:
        tel.orders.latency.record(0.2, **ACK)
    context = span.get_span_context()
    traced = [e for e in exemplars_of(tel.collect(), "trading.orders.latency") if e.value == 0.2]
    assert [(e.filtered_attributes, e.trace_id, e.span_id) for e in traced] == [({}, context.trace_id, context.span_id)]


@pytest.mark.parametrize("span_key", ["found", "absent"])
def test_trace_based_samples_only_inside_a_sampled_span(
    span_key: str, tracing: TracerProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trace_based: a sampled span gives an exemplar; an unsampled span or no span gives none.

    The span is read with the context key the API's public setter reveals (the key the API itself
    uses), or through ``trace.get_current_span()`` when no such key is found: the same either way.
    """
    if span_key == "found":
        from opentelemetry.trace.propagation import _SPAN_KEY  # the API's own, to compare with

        assert _exemplars._SPAN_KEY == _SPAN_KEY
    else:
        monkeypatch.setattr(_exemplars, "_SPAN_KEY", None)
    with capture() as cap:  # the default filter
        assert cap.telemetry.settings.exemplar_filter == "trace_based"
        tel = cap.telemetry
        tel.orders.latency.record(0.003, **ACK)  # no span
        with TracerProvider(sampler=ALWAYS_OFF).get_tracer("t").start_as_current_span("unsampled"):
            tel.orders.latency.record(0.03, **ACK)
        with tracing.get_tracer("t").start_as_current_span("sampled") as span:
            tel.orders.latency.record(0.3, **ACK)
        found = exemplars_of(tel.collect(), "trading.orders.latency")
    assert [(e.value, e.trace_id) for e in found] == [(0.3, span.get_span_context().trace_id)]
    assert cap.histogram("orders.latency", **ACK).count == 3  # every measurement is recorded either way


@pytest.mark.parametrize("filter_name", ["always_on", "always_off", "trace_based"])
def test_filters_pick_the_measurements_the_sdk_picks(filter_name: str, tracing: TracerProvider) -> None:
    """For each filter value, the measurements that carry an exemplar, their values and ids match the SDK's own."""
    sdk_filter = {
        "always_on": AlwaysOnExemplarFilter(),
        "always_off": AlwaysOffExemplarFilter(),
        "trace_based": TraceBasedExemplarFilter(),
    }[filter_name]
    with capture(exemplar_filter=filter_name) as cap:
        tel = cap.telemetry
        bounds = tel.orders.latency.spec.buckets
        reader = InMemoryMetricReader()
        aggregation = ExplicitBucketHistogramAggregation(boundaries=bounds)
        provider = MeterProvider(
            metric_readers=[reader],
            views=[View(instrument_name="latency", aggregation=aggregation)],
            exemplar_filter=sdk_filter,
        )
        histogram = provider.get_meter("sdk").create_histogram("latency")
        unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("t")
        sampled = tracing.get_tracer("t")
        spans = []
        # One value per bucket, so that the SDK's reservoir (one per bucket, latest) keeps each of them.
        for value, tracer in ((0.0004, None), (0.003, unsampled), (0.03, sampled), (0.3, sampled)):
            if tracer is None:
                histogram.record(value, {"exchange": "binance", "stage": "ack"})
                tel.orders.latency.record(value, **ACK)
                continue
            with tracer.start_as_current_span("s") as span:
                histogram.record(value, {"exchange": "binance", "stage": "ack"})
                tel.orders.latency.record(value, **ACK)
            spans.append(span)
        theirs = exemplars_of(reader.get_metrics_data(), "latency")
        ours = exemplars_of(tel.collect(), "trading.orders.latency")
        provider.shutdown()

    def seen(found: list[Any]) -> list[tuple[Any, ...]]:
        return sorted((e.value, e.trace_id, e.span_id) for e in found)

    assert seen(ours) == seen(theirs)
    assert len(ours) == {"always_on": 4, "always_off": 0, "trace_based": 2}[filter_name]


# --- the reservoir ------------------------------------------------------------------------------------


def test_one_exemplar_per_bucket_latest_wins(on: Capture) -> None:
    """Many measurements in two buckets leave exactly two exemplars, the latest of each bucket, aligned with it."""
    tel = on.telemetry
    for index in range(100):
        with tradetel.exemplar(order_id=f"c{index}"):
            tel.orders.latency.record(0.0101 + index * 1e-6, **ACK)  # one bucket: (0.01, 0.025]
            tel.orders.latency.record(7.0, **ACK)  # (5, 10]
    (point,) = points(tel.collect(), "trading.orders.latency")
    found = sorted((e.value, e.filtered_attributes["order_id"]) for e in point.exemplars)
    assert found == [(0.0101 + 99 * 1e-6, "c99"), (7.0, "c99")]
    assert point.count == 200


def test_counter_keeps_its_latest_exemplar_per_series(on: Capture) -> None:
    """A counter series keeps one exemplar, the latest increment's, and each series its own."""
    tel = on.telemetry
    for order_id in ("a", "b", "c"):
        with tradetel.exemplar(order_id=order_id):
            tel.orders.filled.add(1, **BTC)
    with tradetel.exemplar(order_id="z"):
        tel.orders.filled.add(2, **{**BTC, "side": "sell"})
    found = {
        p.attributes["side"]: [e.filtered_attributes["order_id"] for e in p.exemplars]
        for p in points(tel.collect(), "trading.orders.filled")
    }
    assert found == {"buy": ["c"], "sell": ["z"]}


def test_bad_values_are_dropped_and_counted_on_the_exemplar_path(on: Capture) -> None:
    """A NaN or a negative counter increment on the sampled path is dropped and counted, and leaves no exemplar."""
    tel = on.telemetry
    tel.orders.latency.record(float("nan"), **ACK)
    tel.orders.filled.add(-1, **BTC)
    tel.orders.latency.bind(**ACK).record(float("inf"))
    data = tel.collect()
    assert not exemplars_of(data, "trading.orders.latency") and not exemplars_of(data, "trading.orders.filled")
    assert on.dropped("nan") == 1 and on.dropped("negative") == 1 and on.dropped("infinite") == 1


def test_exemplar_attributes_never_become_series_attributes(on: Capture) -> None:
    """An order id given as exemplar attribute leaves the series' attributes exactly as without it."""
    tel = on.telemetry
    with tradetel.exemplar(order_id="c1", strategy="grid"):
        tel.orders.latency.record(0.01, **ACK)
    (point,) = points(tel.collect(), "trading.orders.latency")
    assert dict(point.attributes) == ACK
    assert point.exemplars[0].filtered_attributes == {"order_id": "c1", "strategy": "grid"}


def test_nested_blocks_add_to_the_outer_attributes() -> None:
    """An inner exemplar() block adds to the outer one and the outer attributes come back after it."""
    with tradetel.exemplar(strategy="grid"):
        with tradetel.exemplar(order_id=42):
            assert tradetel._exemplars.exemplar_attributes() == {"strategy": "grid", "order_id": "42"}
        assert tradetel._exemplars.exemplar_attributes() == {"strategy": "grid"}
    assert tradetel._exemplars.exemplar_attributes() is None


def test_attributes_beyond_the_label_budget_are_left_out_and_counted(on: Capture, tracing: TracerProvider) -> None:
    """An attribute that would push the label set past 128 characters is left out, never truncated, and counted."""
    tel = on.telemetry
    long_id = "x" * 60  # 8 + 60 = 68 characters: fits alone (128), not beside a trace id and span id (63 more)
    with tradetel.exemplar(order_id=long_id, trace_id="forged"):
        tel.orders.latency.record(0.01, **ACK)
        with tracing.get_tracer("t").start_as_current_span("s"):
            tel.orders.latency.record(7.0, **ACK)
    found = {e.value: e.filtered_attributes for e in exemplars_of(tel.collect(), "trading.orders.latency")}
    assert found == {0.01: {"order_id": long_id}, 7.0: {}}
    dropped = on.series("tradetel.attributes.dropped")
    counts = {a["key"]: v for a, v in dropped if a["key"].startswith("exemplar.")}
    assert counts == {"exemplar.trace_id": 2, "exemplar.order_id": 1}


def test_delta_points_carry_only_the_exemplars_of_their_interval(on: Capture) -> None:
    """Converted to delta, a point carries the exemplars measured since the previous conversion, no older ones."""
    tel = on.telemetry
    converter = TemporalityConverter("delta")
    with tradetel.exemplar(order_id="first"):
        tel.orders.latency.record(0.01, **ACK)
    first = converter.convert(tel.collect())
    assert [e.filtered_attributes for e in exemplars_of(first, "trading.orders.latency")] == [{"order_id": "first"}]
    with tradetel.exemplar(order_id="second"):
        tel.orders.latency.record(7.0, **ACK)
    second = converter.convert(tel.collect())
    assert [e.filtered_attributes for e in exemplars_of(second, "trading.orders.latency")] == [{"order_id": "second"}]
    assert len(exemplars_of(tel.collect(), "trading.orders.latency")) == 2  # cumulative: both buckets' exemplars


def test_overflow_series_gets_the_exemplar_of_what_it_absorbed() -> None:
    """Past the series limit, a sampled measurement lands in the overflow series, counted, with its exemplar there."""
    with capture(exemplar_filter="always_on", cardinality_limit=2) as cap:
        tel = cap.telemetry
        for symbol in ("A", "B", "C", "D"):
            with tradetel.exemplar(order_id=symbol):
                tel.orders.filled.add(1, **{**BTC, "symbol": symbol})
        found = {
            tuple(sorted(p.attributes.items())): [e.filtered_attributes["order_id"] for e in p.exemplars]
            for p in points(tel.collect(), "trading.orders.filled")
        }
        assert cap.value("tradetel.cardinality.overflow", instrument="trading.orders.filled") >= 1
    overflow = [ids for key, ids in found.items() if ("otel.metric.overflow", True) in key]
    assert overflow == [["D"]]
    assert sum(len(ids) for ids in found.values()) == len(found)


class _Recorder:
    """Stands in for the SDK's OTLP exporter: keeps what it is given, answers as told."""

    def __init__(self) -> None:
        self.result = MetricExportResult.SUCCESS
        self.sent: list[MetricsData] = []

    def export(self, data: MetricsData, timeout_millis: float = 10_000) -> MetricExportResult:
        self.sent.append(data)
        return self.result

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        pass


@pytest.mark.parametrize("temporality", ["cumulative", "delta"])
def test_otlp_sends_each_exemplar_once_and_again_after_a_failed_export(temporality: str, on: Capture) -> None:
    """An exporter sends an exemplar in the first export that arrives after it, not in later ones."""
    tel = on.telemetry
    recorder = _Recorder()
    exporter = OtlpExporter(OtlpSettings(temporality=temporality), sdk_exporter=recorder)
    with tradetel.exemplar(order_id="first"):
        tel.orders.latency.record(0.01, **ACK)
    recorder.result = MetricExportResult.FAILURE
    with pytest.raises(ExportFailure):
        exporter.export(tel.collect(), 1)
    recorder.result = MetricExportResult.SUCCESS
    exporter.export(tel.collect(), 1)
    tel.orders.filled.add(1, **BTC)  # something new, so that a delta export is not empty
    exporter.export(tel.collect(), 1)
    with tradetel.exemplar(order_id="second"):
        tel.orders.latency.record(7.0, **ACK)
    exporter.export(tel.collect(), 1)

    def ids(data: MetricsData) -> list[str]:
        return [e.filtered_attributes["order_id"] for e in exemplars_of(data, "trading.orders.latency")]

    assert [ids(data) for data in recorder.sent] == [["first"], ["first"], [], ["second"]]


_FORK_SCRIPT = """
import json, os
import tradetel
tel = tradetel.configure(exporters="none", env={"OTEL_METRICS_EXEMPLAR_FILTER": "always_on"}, runtime_metrics=False)
def ids():
    return sorted(e.filtered_attributes["order_id"] for r in tel.collect().resource_metrics
                  for s in r.scope_metrics for m in s.metrics for p in m.data.data_points for e in p.exemplars)
with tradetel.exemplar(order_id="parent"):
    tel.orders.latency.record(0.01, exchange="binance", stage="ack")
pid = os.fork()
if pid == 0:
    try:
        with tradetel.exemplar(order_id="child"):
            tel.orders.latency.record(7.0, exchange="binance", stage="ack")
        print(json.dumps({"child": ids()}), flush=True)
    finally:
        os._exit(0)
os.waitpid(pid, 0)
print(json.dumps({"parent": ids()}), flush=True)
tel.shutdown()
"""


def test_a_forked_child_starts_without_the_parents_exemplars() -> None:
    """After os.fork the child exports only its own exemplars and the parent keeps its own."""
    import json
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", _FORK_SCRIPT], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    reports = {k: v for line in result.stdout.splitlines() for k, v in json.loads(line).items()}
    assert reports == {"child": ["child"], "parent": ["parent"]}


def test_capture_reads_exemplars_by_series(on: Capture) -> None:
    """tradetel.testing's Capture.exemplars gives the exemplars of the matching series, oldest first."""
    tel = on.telemetry
    for order_id, value in (("a", 0.01), ("b", 7.0)):
        with tradetel.exemplar(order_id=order_id):
            tel.orders.latency.record(value, **ACK)
    with tradetel.exemplar(order_id="c"):
        tel.orders.latency.record(0.01, exchange="okx", stage="ack")
    assert [e.filtered_attributes["order_id"] for e in on.exemplars("orders.latency", exchange="binance")] == ["a", "b"]
    assert [e.value for e in on.exemplars("orders.latency", exchange="okx")] == [0.01]
    assert on.exemplars("orders.filled") == []


def test_grafana_quantile_queries_ask_for_exemplars() -> None:
    """Every generated quantile query of a time-series panel asks Grafana for exemplars, and no other query does."""
    from tradetel.ops._dashboards import dashboards
    from tradetel.ops._model import Objectives

    asked: dict[bool, list[str]] = {True: [], False: []}
    titles = set()
    for board in dashboards(tradetel.DEFAULT_CATALOG, Objectives()).values():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                quantile = panel["type"] == "timeseries" and target["expr"].startswith("histogram_quantile(")
                asked[quantile].append(str(target.get("exemplar", False)))
                if quantile:
                    titles.add(panel["title"])
    assert set(asked[True]) == {"True"} and set(asked[False]) == {"False"}
    assert "Order latency" in titles


def _hostile_calls(tel: tradetel.Telemetry) -> None:
    from decimal import Decimal

    calls: list[tuple[Any, Any, dict[str, Any]]] = [
        (tel.orders.latency.record, 0.01, ACK),
        (tel.orders.latency.record, Decimal("0.2"), ACK),
        (tel.orders.latency.record, float("nan"), ACK),
        (tel.orders.latency.record, True, ACK),
        (tel.orders.latency.record, 0.5, {**ACK, "venue": "x"}),  # unknown key: dropped attribute, kept value
        (tel.orders.latency.record, 0.5, {"exchange": 7, "stage": "ack"}),  # a non-text value is rendered
        (tel.orders.latency.record, 0.5, {"exchange": "x" * 400, "stage": "ack"}),
        (tel.orders.filled.add, -1, BTC),
        (tel.orders.filled.add, 2, BTC),
        (tel.orders.filled.add, 1, {**BTC, "side": "sideways"}),  # folded by the side policy
        (tel.orders.filled.bind(**BTC).add, 3, {}),
        (tel.orders.latency.bind(**ACK).record, float("inf"), {}),
    ]
    for method, value, attributes in calls:
        method(value, **attributes)


def _without_exemplars_and_times(data: MetricsData) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """Every metric's points as sorted (field, repr) tuples, leaving out exemplars and timestamps."""
    skipped = {"exemplars", "start_time_unix_nano", "time_unix_nano"}
    out = []
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points = [
                    tuple(sorted((f.name, repr(getattr(p, f.name))) for f in fields(p) if f.name not in skipped))
                    for p in metric.data.data_points
                ]
                out.append((metric.name, sorted(points)))
    return sorted(out)


def test_the_exemplar_path_records_exactly_what_the_generated_path_records() -> None:
    """The same hostile calls through always_off and always_on give the same data and the same drop counts."""
    collected = []
    for value in ("always_off", "always_on"):
        with capture(exemplar_filter=value) as cap:
            _hostile_calls(cap.telemetry)
            collected.append(_without_exemplars_and_times(cap.telemetry.collect()))
    assert collected[0] == collected[1]
    names = dict(collected[0])
    assert names["tradetel.measurements.dropped"] and names["tradetel.attributes.dropped"]


def test_strict_mode_raises_on_the_exemplar_path_as_on_the_generated_one() -> None:
    """In strict mode a NaN raises InvalidValueError whether or not the measurement would become an exemplar."""
    for value in ("always_off", "always_on"):
        with capture(strict=True, exemplar_filter=value) as cap, pytest.raises(tradetel.InvalidValueError):
            cap.telemetry.orders.latency.record(float("nan"), **ACK)
