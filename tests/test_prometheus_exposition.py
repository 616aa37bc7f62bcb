"""Prometheus exposition details: escaping, histograms, overflow series, and the WSGI/ASGI apps' HTTP behaviour."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import Iterable
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import (
    Gauge,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client.parser import text_string_to_metric_families

import tradetel
from tradetel.exporters.prometheus import CONTENT_TYPE, asgi_app, render, wsgi_app
from tradetel.testing import Capture

AWKWARD = ['quote " inside', "back\\slash", "new\nline", "ünïcödé €", "", "a,b|c#d:e"]


def _gauge_data(values: Iterable[str]) -> MetricsData:
    points = [NumberDataPoint({"note": value, "1bad-key": "x"}, 0, 1, index) for index, value in enumerate(values)]
    metric = Metric("bot.notes", "Notes with\nawkward \\ text.", "{note}", Gauge(points))
    scope = ScopeMetrics(InstrumentationScope("bot"), [metric], "")
    return MetricsData([ResourceMetrics(Resource({"service.name": 'grid "bot"'}), [scope], "")])


def _samples(text: bytes) -> dict[str, list[Any]]:
    families: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text.decode()):
        families.setdefault(family.name, []).extend(family.samples)
    return families


def test_awkward_label_values_round_trip_and_pass_promtool(promtool: str) -> None:
    """Quotes, backslashes, newlines and non-ASCII in label values and help text are escaped, not corrupted."""
    text = render(_gauge_data(AWKWARD))
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    samples = _samples(text)["bot_notes"]
    assert [s.labels["note"] for s in samples] == AWKWARD
    assert {s.labels["_1bad_key"] for s in samples} == {"x"}
    assert _samples(text)["target_info"][0].labels["service_name"] == 'grid "bot"'


def test_histogram_buckets_are_cumulative_and_end_at_the_count(cap: Capture) -> None:
    """Bucket counts accumulate, `+Inf` equals `_count`, `_sum` is exact, negative observations included."""
    tel = cap.telemetry
    values = [-2.5, -0.2, 0.4, 1.2, 12.0]
    for value in values:
        tel.trades.r_multiple.record(value, symbol="EURUSD", strategy="breakout")
    samples = _samples(render(tel.collect()))["trading_trades_r_multiple"]
    buckets = [(s.labels["le"], s.value) for s in samples if s.name.endswith("_bucket")]
    counts = [count for _, count in buckets]
    assert counts == sorted(counts) and buckets[-1] == ("+Inf", 5.0)
    assert dict(buckets)["-2"] == 1 and dict(buckets)["0.5"] == 3
    by_name = {s.name: s.value for s in samples if not s.name.endswith("_bucket")}
    assert by_name["trading_trades_r_multiple_count"] == 5
    assert by_name["trading_trades_r_multiple_sum"] == pytest.approx(sum(values))


def test_only_the_overflow_series_carries_the_overflow_label() -> None:
    """Past the series limit, one extra series is labelled otel_metric_overflow="true"; the others are untouched."""
    overrides = {"orders.filled": {"cardinality_limit": 3}}
    with tradetel.configure(exporters="none", env={}, instruments=overrides) as tel:
        for index in range(6):
            tel.orders.filled.add(1, exchange="binance", symbol=f"S{index}-USD", side="buy")
        samples = _samples(render(tel.collect()))["trading_orders_filled"]
    flagged = [s for s in samples if "otel_metric_overflow" in s.labels]
    assert len(flagged) == 1 and flagged[0].labels["otel_metric_overflow"] == "true"
    assert sum(s.value for s in samples) == 6
    assert all(s.labels.get("otel_metric_overflow", "true") == "true" for s in samples)


class _Broken:
    def collect(self) -> MetricsData:
        raise RuntimeError("collection exploded")


def _call_wsgi(app: Any, method: str) -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app({"REQUEST_METHOD": method, "PATH_INFO": "/metrics"}, start_response))
    return seen["status"], seen["headers"], body


def test_wsgi_app_methods_and_failures(cap: Capture, caplog: pytest.LogCaptureFixture) -> None:
    """GET gives the exposition, HEAD only headers, POST 405, and a failing collection a logged 500."""
    cap.telemetry.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
    status, headers, body = _call_wsgi(wsgi_app(cap.telemetry), "GET")
    assert status == "200 OK" and headers["Content-Type"] == CONTENT_TYPE and b"trading_orders_filled" in body
    head = _call_wsgi(wsgi_app(cap.telemetry), "HEAD")
    assert head[0] == "200 OK" and head[2] == b"" and int(head[1]["Content-Length"]) == len(body)
    assert _call_wsgi(wsgi_app(cap.telemetry), "POST")[0] == "405 Method Not Allowed"
    with caplog.at_level(logging.ERROR, logger="tradetel"):
        assert _call_wsgi(wsgi_app(_Broken()), "GET")[0] == "500 Internal Server Error"
    assert "rendering the Prometheus exposition failed" in caplog.text


def _call_asgi(app: Any, scope: dict[str, Any], incoming: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_asgi_app_answers_http_and_lifespan(cap: Capture) -> None:
    """The ASGI app completes lifespan start-up/shutdown and answers GET, HEAD and POST like the WSGI app."""
    app = asgi_app(cap.telemetry)
    lifespan = _call_asgi(app, {"type": "lifespan"}, [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    assert [m["type"] for m in lifespan] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    cap.telemetry.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
    get = _call_asgi(app, {"type": "http", "method": "GET", "path": "/metrics"}, [])
    assert get[0]["status"] == 200 and b"trading_orders_filled_total{" in get[1]["body"]
    assert (b"content-type", CONTENT_TYPE.encode()) in get[0]["headers"]
    assert _call_asgi(app, {"type": "http", "method": "HEAD", "path": "/"}, [])[1]["body"] == b""
    assert _call_asgi(app, {"type": "http", "method": "POST", "path": "/"}, [])[0]["status"] == 405


def test_rendering_is_read_only(cap: Capture) -> None:
    """Scraping changes nothing: two renderings of the same state give identical text, gauges included."""
    cap.telemetry.account.equity.set(5.5, account="main")
    cap.telemetry.orders.filled.add(2, exchange="binance", symbol="BTC-USD", side="buy")
    first = render(cap.telemetry.collect())
    assert first == render(cap.telemetry.collect())
    assert b'trading_account_equity{account="main"} 5.5' in first
