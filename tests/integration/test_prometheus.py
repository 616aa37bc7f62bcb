"""A real Prometheus server scrapes tradetel: its own endpoint, a WSGI mount and an ASGI mount."""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

import tradetel
from tradetel.exporters.prometheus import CONTENT_TYPE, asgi_app, wsgi_app

pytestmark = pytest.mark.integration

LATENCY = "trading_orders_latency_seconds"


@pytest.fixture
def tel() -> Iterator[tradetel.Telemetry]:
    with tradetel.configure(exporters="prometheus", prometheus_port=0, env={}, service_name="scraped-bot") as telemetry:
        yield telemetry


def _scrape_both_phases(prom: Any, job: str, tel: tradetel.Telemetry, workload: Any) -> None:
    workload.record(tel, 1)
    prom.wait_for_scrape(job)
    prom.wait_for_value(f'sum(trading_orders_filled_total{{job="{job}"}})', 5)
    workload.record(tel, 2)
    workload.wait_for_totals(prom, job)
    workload.check_classic_histogram(prom, job, LATENCY)


def test_prometheus_reads_exact_totals_from_the_endpoint(
    tel: tradetel.Telemetry, prometheus_server: Callable[..., Any], workload: Any
) -> None:
    """PromQL gives the exact counter, up-down counter, gauge and histogram count/sum; the median is in its bucket."""
    assert tel.prometheus_url is not None
    prom = prometheus_server({"tradetel": tel.prometheus_url})
    _scrape_both_phases(prom, "tradetel", tel, workload)
    info = prom.labels('target_info{job="tradetel"}')
    assert [labels["service_name"] for labels in info] == ["scraped-bot"]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        pass


def _site(metrics: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """A WSGI site with its own page and tradetel mounted at /metrics."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/metrics":
            return metrics(environ, start_response)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"bot dashboard"]

    return app


@pytest.fixture
def wsgi_site(tel: tradetel.Telemetry) -> Iterator[str]:
    server: WSGIServer = make_server("127.0.0.1", 0, _site(wsgi_app(tel)), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _request(url: str, method: str) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return bytes(response.read())


@pytest.fixture
def asgi_site(tel: tradetel.Telemetry, free_ports: Callable[[], int], wait_until: Callable[..., Any]) -> Iterator[str]:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse("bot dashboard")

    app = Starlette(routes=[Route("/", home), Route("/metrics", asgi_app(tel), methods=["GET", "HEAD", "POST"])])
    port = free_ports()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started and _listening(port), "uvicorn to start", 20)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.mark.parametrize("site", ["wsgi_site", "asgi_site"])
def test_mounted_exposition_is_scraped_by_prometheus(
    site: str,
    tel: tradetel.Telemetry,
    prometheus_server: Callable[..., Any],
    workload: Any,
    request: pytest.FixtureRequest,
) -> None:
    """tradetel mounted in a WSGI app (wsgiref) or an ASGI app (Starlette on uvicorn) is scraped by Prometheus.

    The app's own pages keep working, HEAD gives headers only and other methods get 405.
    """
    base: str = request.getfixturevalue(site)
    prom = prometheus_server({site: f"{base}/metrics"})
    _scrape_both_phases(prom, site, tel, workload)
    assert _get(f"{base}/") == b"bot dashboard"
    assert _request(f"{base}/metrics", "HEAD") == (200, CONTENT_TYPE, b"")
    assert _request(f"{base}/metrics", "POST")[0] == 405
