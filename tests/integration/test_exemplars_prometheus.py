"""A real Prometheus with exemplar storage scrapes tradetel's OpenMetrics and answers query_exemplars."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

import tradetel

pytestmark = pytest.mark.integration

ACK = {"exchange": "binance", "stage": "ack"}
BTC = {"exchange": "binance", "symbol": "BTC-USD", "side": "buy"}


def _exemplars(prom: Any, selector: str, since: float) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """(series labels, exemplar) pairs Prometheus's query_exemplars gives for ``selector`` since ``since``."""
    data = prom.api("query_exemplars", query=selector, start=str(since - 60), end=str(time.time() + 60))
    return [(series["seriesLabels"], exemplar) for series in data for exemplar in series["exemplars"]]


def test_query_exemplars_returns_the_order_id_and_trace_id(
    prometheus_server: Callable[..., Any], wait_until: Callable[..., Any]
) -> None:
    """The histogram bucket and counter exemplars recorded in a span come back with order id, trace id and value.

    The ``note`` holds a double quote: Prometheus 2.42 would store it still escaped (``say \\"hi\\"``), so
    tradetel leaves it out of the exemplar and counts it.
    """
    started = time.time()
    env = {"OTEL_METRICS_EXEMPLAR_FILTER": "always_on"}
    with tradetel.configure(exporters="prometheus", prometheus_port=0, env=env, service_name="ex-bot") as tel:
        assert tel.prometheus_url is not None
        tracer = TracerProvider().get_tracer("bot")
        with tracer.start_as_current_span("order") as span, tradetel.exemplar(order_id="bot-1", note='say "hi"'):
            tel.orders.latency.record(0.012, **ACK)
            tel.orders.filled.add(1, **BTC)
        context = span.get_span_context()
        prom = prometheus_server({"bot": tel.prometheus_url}, feature_flags=["exemplar-storage"])
        prom.wait_for_scrape("bot")
        found: list[Any] = []

        def arrived() -> bool:
            found[:] = _exemplars(prom, '{__name__=~"trading_orders_(latency_seconds_bucket|filled_total)"}', started)
            return len(found) >= 2

        wait_until(arrived, "both exemplars in query_exemplars", alive=prom.process)
        dropped = prom.value('sum(tradetel_attributes_dropped_total{job="bot",key="exemplar.note"})')
    expected = {
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "order_id": "bot-1",
    }
    by_name = {labels["__name__"]: (labels, exemplar) for labels, exemplar in found}
    bucket_labels, bucket = by_name["trading_orders_latency_seconds_bucket"]
    assert bucket_labels["le"] == "0.025" and bucket_labels["job"] == "bot"
    assert bucket["labels"] == expected and float(bucket["value"]) == 0.012
    assert started - 1 <= float(bucket["timestamp"]) <= time.time()
    total_labels, total = by_name["trading_orders_filled_total"]
    assert total_labels["side"] == "buy"
    assert total["labels"] == expected and float(total["value"]) == 1
    assert len(found) == 2  # one exemplar each, however many scrapes saw it
    assert dropped == 2  # the note, left out of both exemplars


def test_an_order_latency_exemplar_leads_from_prometheus_to_the_order(
    prometheus_server: Callable[..., Any], wait_until: Callable[..., Any]
) -> None:
    """The order tracker's ack latency, recorded in a span, reaches query_exemplars with the client id and trace id."""
    started = time.time()
    env = {"OTEL_METRICS_EXEMPLAR_FILTER": "always_on"}
    with tradetel.configure(exporters="prometheus", prometheus_port=0, env=env, service_name="ex-bot") as tel:
        assert tel.prometheus_url is not None
        tracker = tel.order_tracker
        with TracerProvider().get_tracer("bot").start_as_current_span("place") as span:
            tracker.open("grid-17", exchange="binance", symbol="BTC/USDT", side="buy", amount=1, price=100)
            tracker.acked("grid-17", exchange_id="9911")
        prom = prometheus_server({"bot": tel.prometheus_url}, feature_flags=["exemplar-storage"])
        found: list[Any] = []

        def arrived() -> bool:
            found[:] = _exemplars(prom, 'trading_orders_latency_seconds_bucket{stage="ack"}', started)
            return bool(found)

        wait_until(arrived, "the ack latency exemplar in query_exemplars", alive=prom.process)
    ((labels, exemplar),) = found
    assert labels["clock"] == "local" and labels["exchange"] == "binance"
    assert exemplar["labels"] == {
        "order_id": "grid-17",
        "trace_id": f"{span.get_span_context().trace_id:032x}",
        "span_id": f"{span.get_span_context().span_id:016x}",
    }
    assert float(exemplar["value"]) <= float(labels["le"])
