"""OpenMetrics exemplars as prometheus_client's own parser reads them; text 0.0.4 never carries any."""

from __future__ import annotations

import math
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import MetricsData
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.parser import text_string_to_metric_families as text_families

import tradetel
from tradetel.exporters.prometheus import render, render_openmetrics
from tradetel.testing import Capture, capture

ACK = {"exchange": "binance", "stage": "ack"}
BTC = {"exchange": "binance", "symbol": "BTC-USD", "side": "buy"}


@pytest.fixture
def on() -> Iterator[Capture]:
    with capture(exemplar_filter="always_on") as cap:
        yield cap


def parsed_exemplars(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], Any]:
    """(sample name, sorted labels) -> exemplar, for every sample that has one, as prometheus_client parses it."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.exemplar
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
        if sample.exemplar is not None
    }


def recorded(data: Any, name: str) -> list[Any]:
    return [
        exemplar
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
        for exemplar in point.exemplars
    ]


def test_histogram_and_counter_exemplars_round_trip(on: Capture) -> None:
    """Value, labels (trace id, span id, order id) and nanosecond timestamp survive rendering and parsing."""
    tel = on.telemetry
    with TracerProvider().get_tracer("t").start_as_current_span("order") as span, tradetel.exemplar(order_id="c-7"):
        tel.orders.latency.record(0.012, **ACK)
        tel.orders.filled.add(1, **BTC)
    data = tel.collect()
    found = parsed_exemplars(render_openmetrics(data))
    context = span.get_span_context()
    labels = {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}", "order_id": "c-7"}
    (latency,) = recorded(data, "trading.orders.latency")
    (filled,) = recorded(data, "trading.orders.filled")
    bucket = found[("trading_orders_latency_seconds_bucket", tuple(sorted({**ACK, "le": "0.025"}.items())))]
    assert bucket.labels == labels and bucket.value == 0.012
    assert bucket.timestamp.sec * 10**9 + bucket.timestamp.nsec == latency.time_unix_nano
    total = found[("trading_orders_filled_total", tuple(sorted(BTC.items())))]
    assert total.labels == labels and total.value == 1
    assert total.timestamp.sec * 10**9 + total.timestamp.nsec == filled.time_unix_nano
    assert len(found) == 2


def test_each_exemplar_sits_on_the_bucket_that_counted_its_value(on: Capture) -> None:
    """Negative, boundary and beyond-the-last-bound values carry their exemplar on the bucket that counts them."""
    tel = on.telemetry
    attributes = {**BTC, "reference": "limit"}
    bounds = tel.orders.slippage.spec.buckets
    values = [bounds[0], bounds[1] + 0.001, 0.0, 1e9]  # a bound itself is counted in its own bucket (upper bound)
    for value in values:
        with tradetel.exemplar(order_id=repr(value)):
            tel.orders.slippage.record(value, **attributes)
    found = parsed_exemplars(render_openmetrics(tel.collect()))
    assert sorted(exemplar.value for exemplar in found.values()) == sorted(values)  # four buckets, one each
    edges = [-math.inf, *bounds, math.inf]
    for (_, labels), exemplar in found.items():
        upper = float(dict(labels)["le"])  # "+Inf" parses as inf
        lower = edges[edges.index(upper) - 1]
        assert lower < exemplar.value <= upper


def test_values_that_need_escaping_are_left_out_and_counted(on: Capture) -> None:
    """Exemplar values with a quote, backslash or newline are left out (counted); the rest parses back as given.

    OpenMetrics escapes them in label values, but Prometheus 2.42 keeps exemplar label values escaped
    (tests/integration/test_exemplars_prometheus.py shows it) and prometheus_client 0.26 refuses an
    escaped quote there: the id would arrive wrong, so it is not sent.
    """
    tel = on.telemetry
    hostile = {"quote": 'a"b', "backslash": "a\\b", "newline": "a\nb"}
    with tradetel.exemplar(order_id="c-1#{x}", **hostile):
        tel.orders.filled.add(1, **BTC)
    (exemplar,) = parsed_exemplars(render_openmetrics(tel.collect())).values()
    assert exemplar.labels == {"order_id": "c-1#{x}"}
    dropped = {a["key"]: v for a, v in on.series("tradetel.attributes.dropped") if a["key"].startswith("exemplar.")}
    assert dropped == {"exemplar.quote": 1, "exemplar.backslash": 1, "exemplar.newline": 1}


def test_long_attributes_never_make_an_invalid_exposition(on: Capture) -> None:
    """Exemplar attributes far past 128 characters leave a label set the parser accepts (it refuses longer ones)."""
    tel = on.telemetry
    many = {"order_id": "o" * 40, "strategy": "s" * 5, "note": "n" * 500, "order.id": "dup"}
    with TracerProvider().get_tracer("t").start_as_current_span("s"), tradetel.exemplar(**many):
        tel.orders.latency.record(0.01, **ACK)
    (exemplar,) = parsed_exemplars(render_openmetrics(tel.collect())).values()
    assert set(exemplar.labels) == {"trace_id", "span_id", "order_id", "strategy"}
    assert sum(len(k) + len(v) for k, v in exemplar.labels.items()) <= 128


def test_name_filter_keeps_the_exemplars_of_the_kept_lines(on: Capture) -> None:
    """``name[]`` asking for the bucket samples only keeps their exemplars."""
    tel = on.telemetry
    with tradetel.exemplar(order_id="c1"):
        tel.orders.latency.record(0.012, **ACK)
    text = render_openmetrics(tel.collect(), names={"trading_orders_latency_seconds_bucket"})
    assert [e.labels for e in parsed_exemplars(text).values()] == [{"order_id": "c1"}]


def test_text_format_never_carries_exemplars_and_promtool_accepts_it(on: Capture, promtool: str) -> None:
    """Text 0.0.4 of data with exemplars equals the text of the same data without them, and promtool accepts it.

    (promtool 2.42 ``check metrics`` reads text 0.0.4 only: an OpenMetrics exemplar fails it as a bad
    timestamp, so the OpenMetrics side is checked by prometheus_client's parser and a real Prometheus.)
    """
    tel = on.telemetry
    with tradetel.exemplar(order_id="c1"):
        tel.orders.latency.record(0.012, **ACK)
        tel.orders.filled.add(1, **BTC)
    data = tel.collect()
    assert recorded(data, "trading.orders.latency")
    text = render(data)
    assert text == render(MetricsData(resource_metrics=_without_exemplars(data)))
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert sum(1 for family in text_families(text.decode()) for _ in family.samples) > 0


def _without_exemplars(data: Any) -> list[Any]:
    from dataclasses import replace

    from opentelemetry.sdk.metrics.export import Histogram, Metric, ResourceMetrics, ScopeMetrics, Sum

    resources = []
    for resource in data.resource_metrics:
        scopes = []
        for scope in resource.scope_metrics:
            metrics = []
            for metric in scope.metrics:
                points = [replace(point, exemplars=[]) for point in metric.data.data_points]
                body = metric.data
                if isinstance(body, Histogram):
                    body = Histogram(points, body.aggregation_temporality)
                elif isinstance(body, Sum):
                    body = Sum(points, body.aggregation_temporality, body.is_monotonic)
                metrics.append(Metric(metric.name, metric.description, metric.unit, body))
            scopes.append(ScopeMetrics(scope.scope, metrics, scope.schema_url))
        resources.append(ResourceMetrics(resource.resource, scopes, resource.schema_url))
    return resources
