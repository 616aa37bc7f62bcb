"""OTLP exemplars reach the real OpenTelemetry Collector, compared with the stock SDK's for the same recording.

The collector's debug exporter at ``detailed`` verbosity prints every exemplar it received (trace id, span
id, value, filtered attributes); both tradetel and the SDK's own MeterProvider send to the same collector.
Intended differences: tradetel's exemplars carry the caller's attributes (``order_id``), which the SDK
only keeps for measurement attributes that a view filtered out; the SDK empties its reservoirs at each
collection, tradetel keeps each bucket's latest exemplar (delta points only carry their interval's).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics._internal.exemplar import AlwaysOnExemplarFilter
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

import tradetel

pytestmark = pytest.mark.integration

ACK = {"exchange": "binance", "stage": "ack"}
BTC = {"exchange": "binance", "symbol": "BTC-USD", "side": "buy"}


def debug_exemplars(log: str) -> dict[str, list[dict[str, str]]]:
    """Metric name -> the exemplars the debug exporter printed for it, each as its ``-> Key: value`` lines."""
    found: dict[str, list[dict[str, str]]] = {}
    metric = ""
    current: dict[str, str] | None = None
    for line in log.splitlines():
        name = re.search(r"-> Name: (\S+)$", line)
        if name and current is None:
            metric = name.group(1)
            continue
        if re.search(r"Exemplar #\d+$", line):
            current = {}
            found.setdefault(metric, []).append(current)
            continue
        field = re.search(r"-> ([\w ]+): (.*)$", line)
        if current is not None and field:
            current[field.group(1).strip()] = field.group(2).strip()
        elif current is not None and not re.search(r"FilteredAttributes", line):
            current = None
    return found


@pytest.mark.parametrize("temporality", ["cumulative", "delta"])
def test_collector_receives_the_same_exemplar_ids_and_values_as_from_the_sdk(
    temporality: str,
    collector: Callable[..., Any],
    collector_env: Callable[..., dict[str, str]],
    wait_until: Callable[..., Any],
) -> None:
    """Trace id, span id and value of tradetel's exemplars equal the SDK's for the same span; order_id arrives too."""
    env = collector_env(DEBUG_VERBOSITY="detailed")
    otel = collector("gateway.yaml", env, wait_ports=[int(env["OTLP_GRPC_PORT"])])
    endpoint = f"http://127.0.0.1:{env['OTLP_GRPC_PORT']}"
    settings = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_METRICS_EXEMPLAR_FILTER": "always_on",
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": temporality,
    }
    sdk_exporter = OTLPMetricExporter(endpoint=endpoint, insecure=True)
    reader = PeriodicExportingMetricReader(sdk_exporter, export_interval_millis=3_600_000)
    with tradetel.configure(exporters="otlp", export_interval=3600, env=settings, service_name="ex-bot") as tel:
        bounds = tel.orders.latency.spec.buckets
        provider = MeterProvider(
            metric_readers=[reader],
            resource=Resource({"service.name": "sdk-bot"}),
            views=[View(instrument_name="sdk.latency", aggregation=ExplicitBucketHistogramAggregation(bounds))],
            exemplar_filter=AlwaysOnExemplarFilter(),
        )
        meter = provider.get_meter("sdk")
        sdk_latency = meter.create_histogram("sdk.latency", unit="s")
        sdk_filled = meter.create_counter("sdk.filled")
        tracer = TracerProvider().get_tracer("bot")
        try:
            with tracer.start_as_current_span("order") as span, tradetel.exemplar(order_id="bot-1"):
                for value in (0.012, 0.3):
                    tel.orders.latency.record(value, **ACK)
                    sdk_latency.record(value, ACK)
                tel.orders.filled.add(1, **BTC)
                sdk_filled.add(1, BTC)
            tel.force_flush()
            provider.force_flush()
        finally:
            provider.shutdown()

    def printed() -> dict[str, list[dict[str, str]]]:
        seen = debug_exemplars(otel.process.log.read_text(errors="replace"))
        wanted = ("trading.orders.latency", "trading.orders.filled", "sdk.latency", "sdk.filled")
        return seen if all(name in seen for name in wanted) else {}

    seen = wait_until(printed, "the debug exporter to print both senders' exemplars", alive=otel.process)
    context = span.get_span_context()

    def ids_and_values(name: str) -> list[tuple[str, str, float]]:
        return sorted((e["Trace ID"], e["Span ID"], float(e["Value"])) for e in seen[name])

    expected_latency = [(f"{context.trace_id:032x}", f"{context.span_id:016x}", v) for v in (0.012, 0.3)]
    assert ids_and_values("trading.orders.latency") == ids_and_values("sdk.latency") == expected_latency
    assert ids_and_values("trading.orders.filled") == ids_and_values("sdk.filled")
    assert [e["order_id"] for e in seen["trading.orders.latency"]] == ["Str(bot-1)", "Str(bot-1)"]
    assert [e["order_id"] for e in seen["trading.orders.filled"]] == ["Str(bot-1)"]
    assert all("order_id" not in e for e in seen["sdk.latency"] + seen["sdk.filled"])  # intended difference
