"""A real Prometheus negotiates OpenMetrics with tradetel and stores exact values from it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

import tradetel
from tradetel.exporters.prometheus import OPENMETRICS_CONTENT_TYPE, wsgi_app

pytestmark = pytest.mark.integration


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        pass


def _recording(app: Callable[..., Iterable[bytes]], seen: list[dict[str, str]]) -> Callable[..., Iterable[bytes]]:
    """``app``, noting each request's Accept and Accept-Encoding and the answer's content type and encoding."""

    def wrapper(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def noting(status: str, headers: list[tuple[str, str]]) -> Any:
            answer = dict(headers)
            seen.append(
                {
                    "accept": environ.get("HTTP_ACCEPT", ""),
                    "accept_encoding": environ.get("HTTP_ACCEPT_ENCODING", ""),
                    "content_type": answer.get("Content-Type", ""),
                    "content_encoding": answer.get("Content-Encoding", ""),
                }
            )
            return start_response(status, headers)

        return app(environ, noting)

    return wrapper


@pytest.fixture
def site() -> Iterator[tuple[tradetel.Telemetry, str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []
    with tradetel.configure(exporters="none", env={}, service_name="om-bot") as tel:
        server: WSGIServer = make_server("127.0.0.1", 0, _recording(wsgi_app(tel), seen), handler_class=_QuietHandler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield tel, f"http://127.0.0.1:{server.server_port}/metrics", seen
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)


def test_prometheus_scrapes_openmetrics_with_gzip_and_gets_exact_values(
    site: tuple[tradetel.Telemetry, str, list[dict[str, str]]],
    prometheus_server: Callable[..., Any],
    workload: Any,
) -> None:
    """Prometheus asks for OpenMetrics and gzip, gets both, and PromQL returns the exact totals and counts."""
    tel, url, seen = site
    tel.orders.slippage.record(-3.0, exchange="binance", symbol="BTC-USD", side="buy")
    tel.orders.slippage.record(2.0, exchange="binance", symbol="BTC-USD", side="buy")
    prom = prometheus_server({"om": url})
    workload.record(tel, 1)
    prom.wait_for_scrape("om")
    workload.record(tel, 2)
    workload.wait_for_totals(prom, "om")
    workload.check_classic_histogram(prom, "om", "trading_orders_latency_seconds")
    # A histogram with negative bounds has no _count in OpenMetrics; its +Inf bucket is the count.
    prom.wait_for_value('sum(trading_orders_slippage_basis_points_bucket{job="om",le="+Inf"})', 2)
    assert prom.query('trading_orders_slippage_basis_points_count{job="om"}') == []
    assert [labels["service_name"] for labels in prom.labels('target_info{job="om"}')] == ["om-bot"]
    assert seen and all("application/openmetrics-text" in request["accept"] for request in seen)
    assert all(request["content_type"] == OPENMETRICS_CONTENT_TYPE for request in seen)
    assert all(request["content_encoding"] == "gzip" for request in seen if "gzip" in request["accept_encoding"])
    assert any(request["content_encoding"] == "gzip" for request in seen)
