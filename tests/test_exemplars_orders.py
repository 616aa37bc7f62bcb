"""The order tracker's lifecycle latencies and slippage carry the order id and the trace id as exemplars."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

import tradetel
from test_orders_ccxt import BINANCE_MARKET, T0, OfflineVenue, binance_reply, binance_report, binance_rest
from tradetel.retrofit import instrument_ccxt
from tradetel.testing import Capture, capture

BTC = {"exchange": "binance", "symbol": "BTC-USD", "side": "buy"}


@pytest.fixture
def on() -> Iterator[Capture]:
    with capture(exemplar_filter="always_on") as cap:
        yield cap


def exemplars(cap: Capture, name: str) -> list[tuple[dict[str, Any], Any]]:
    """(point attributes, exemplar) for every exemplar of the catalog instrument ``name``."""
    full = cap.telemetry.instrument(name).name
    return [
        (dict(point.attributes), exemplar)
        for resource in cap.telemetry.collect().resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == full
        for point in metric.data.data_points
        for exemplar in point.exemplars
    ]


def test_latencies_and_slippage_carry_the_client_id_and_the_trace_id(on: Capture) -> None:
    """Inside a span, every stage latency and both slippages of an order carry its client id and the span's ids."""
    tracker = on.telemetry.order_tracker
    with TracerProvider().get_tracer("bot").start_as_current_span("place") as span:
        tracker.open("c-1", **BTC, amount=2, price=100, decision_price=99.5, submitted=False)
        tracker.submitted("c-1")
        tracker.acked("c-1", exchange_id="X1")
        tracker.fill("X1", 2.0, 99.0, fee=0.1, trade_id="t1")
    context = span.get_span_context()
    latency = exemplars(on, "orders.latency")
    slippage = exemplars(on, "orders.slippage")
    assert {attributes["stage"] for attributes, _ in latency} == {"submit", "ack", "fill", "final"}
    assert {attributes["reference"] for attributes, _ in slippage} == {"decision", "limit"}
    for _, exemplar in latency + slippage:
        assert exemplar.filtered_attributes == {"order_id": "c-1"}
        assert (exemplar.trace_id, exemplar.span_id) == (context.trace_id, context.span_id)
    limit = [e.value for a, e in slippage if a["reference"] == "limit"]
    assert limit == [pytest.approx((99.0 - 100) / 100 * 1e4)]


def test_an_order_known_only_by_its_exchange_id_carries_that_id(on: Capture) -> None:
    """An order seen first in a venue update without client id carries its exchange id; no trace id outside a span."""
    tracker = on.telemetry.order_tracker
    base = {"id": "X9", "symbol": "BTC/USDT", "side": "sell", "type": "limit", "amount": 1.0, "price": 50.0}
    tracker.update({**base, "status": "open", "timestamp": 1_000, "filled": 0.0})
    tracker.update({**base, "status": "closed", "filled": 1.0, "average": 50.5, "lastUpdateTimestamp": 3_000})
    found = exemplars(on, "orders.latency") + exemplars(on, "orders.slippage")
    assert found
    assert {(e.filtered_attributes["order_id"], e.trace_id) for _, e in found} == {("X9", None)}


def test_caller_attributes_stay_beside_the_order_id(on: Capture) -> None:
    """A caller's exemplar() block around the tracker adds its attributes to the order id."""
    tracker = on.telemetry.order_tracker
    with tradetel.exemplar(strategy="grid"):
        tracker.open("c-2", **BTC, amount=1, price=100, submitted=False)
        tracker.submitted("c-2")
    (_, exemplar), *_ = exemplars(on, "orders.latency")
    assert exemplar.filtered_attributes == {"strategy": "grid", "order_id": "c-2"}
    assert tradetel._exemplars.exemplar_attributes() is None


def test_exemplars_off_record_the_same_values_without_exemplars() -> None:
    """With exemplars off the tracker records the same latencies and no exemplar."""
    with capture(exemplar_filter="always_off") as cap:
        tracker = cap.telemetry.order_tracker
        tracker.open("c-3", **BTC, amount=1, price=100, submitted=False)
        tracker.submitted("c-3")
        assert cap.histogram("orders.latency", stage="submit").count == 1
        assert exemplars(cap, "orders.latency") == []


def test_ccxt_wiring_carries_the_client_order_id(on: Capture) -> None:
    """A real ccxt binance exchange, instrumented: the tracker's exemplars carry the clientOrderId and the span."""
    import ccxt.pro

    tracer = TracerProvider().get_tracer("bot")

    async def main() -> Any:
        exchange = ccxt.pro.binance({"apiKey": "key", "secret": "secret"})
        try:
            exchange.set_markets([BINANCE_MARKET])
            venue = OfflineVenue(exchange, binance_rest, binance_reply)
            instrument_ccxt(exchange, telemetry=on.telemetry, reference_price=99.95)
            with tracer.start_as_current_span("trade") as span:
                await exchange.create_order("BTC/USDT", "limit", "buy", 2, 100, {"clientOrderId": "bot-1"})
                url = exchange.urls["api"]["ws"]["ws-api"]["spot"]
                report = binance_report("PARTIALLY_FILLED", "0.5", "49.95", "0.5", "99.9", "0.05", 1, T0 + 1000)
                await venue.stream(url, exchange.watch_orders, report)
                await exchange.fetch_order("28", "BTC/USDT")
            return span
        finally:
            await exchange.close()

    span = asyncio.run(main())
    context = span.get_span_context()
    found = exemplars(on, "orders.latency") + exemplars(on, "orders.slippage")
    assert {a.get("stage") or a["reference"] for a, _ in found} >= {"ack", "fill", "final", "limit", "decision"}
    assert {(e.filtered_attributes["order_id"], e.trace_id) for _, e in found} == {("bot-1", context.trace_id)}
