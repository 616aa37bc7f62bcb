"""The built-in server, the WSGI and the ASGI mounts answer alike: status, headers, negotiation, gzip, name[]."""

from __future__ import annotations

import asyncio
import gzip
import logging
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import prometheus_client
import pytest
from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

import tradetel
from tradetel.exporters._http import gzip_accepted as tradetel_gzip_accepted
from tradetel.exporters._http import openmetrics_accepted
from tradetel.exporters.prometheus import (
    CONTENT_TYPE,
    OPENMETRICS_CONTENT_TYPE,
    PrometheusServer,
    asgi_app,
    wsgi_app,
)
from tradetel.testing import Capture

OM = "application/openmetrics-text; version=1.0.0; charset=utf-8"
Answer = tuple[int, dict[str, str], bytes]


@pytest.fixture
def tel() -> Iterator[tradetel.Telemetry]:
    with tradetel.configure(exporters="prometheus", prometheus_port=0, env={}, service_name="http-bot") as telemetry:
        telemetry.orders.filled.add(3, exchange="binance", symbol="BTC-USD", side="buy")
        telemetry.orders.latency.record(0.02, exchange="binance", stage="ack")
        yield telemetry


def _builtin(tel: tradetel.Telemetry, method: str, target: str, headers: dict[str, str]) -> Answer:
    url = tel.prometheus_url
    assert url is not None
    base = url.rsplit("/", 1)[0]
    request = urllib.request.Request(base + target, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def _wsgi(tel: tradetel.Telemetry, method: str, target: str, headers: dict[str, str]) -> Answer:
    path, _, query = target.partition("?")
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query}
    environ.update({"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()})
    seen: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = int(status.split()[0]), {k.lower(): v for k, v in response_headers}

    body = b"".join(wsgi_app(tel)(environ, start_response))
    return seen["status"], seen["headers"], body


def _asgi(tel: tradetel.Telemetry, method: str, target: str, headers: dict[str, str]) -> Answer:
    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(asgi_app(tel)(scope, receive, send))
    response_headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    return sent[0]["status"], response_headers, sent[1]["body"]


TRANSPORTS = {"builtin": _builtin, "wsgi": _wsgi, "asgi": _asgi}


def _stable(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in ("date", "server", "connection")}


@pytest.mark.parametrize(
    ("method", "target", "headers"),
    [
        ("GET", "/metrics", {}),
        ("HEAD", "/metrics", {}),
        ("POST", "/metrics", {}),
        ("DELETE", "/metrics", {}),
        ("GET", "/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"}),
        ("GET", "/metrics?name[]=trading_orders_filled_total", {"Accept-Encoding": "gzip, deflate"}),
    ],
)
def test_every_transport_answers_the_same(
    tel: tradetel.Telemetry, method: str, target: str, headers: dict[str, str]
) -> None:
    """Status, headers (except Date/Server/Connection) and decoded body are the same on all three transports."""
    answers = {name: call(tel, method, target, headers) for name, call in TRANSPORTS.items()}
    statuses = {name: answer[0] for name, answer in answers.items()}
    assert len(set(statuses.values())) == 1, statuses
    reference = _stable(answers["builtin"][1])
    for name, (_, response_headers, body) in answers.items():
        if "content-encoding" not in response_headers:
            assert _stable(response_headers) == reference, name
        if method == "HEAD":
            assert body == b"" and int(response_headers["content-length"]) > 0
        else:
            assert int(response_headers["content-length"]) == len(body)
    if method in ("POST", "DELETE"):
        assert statuses["builtin"] == 405 and reference["allow"] == "GET, HEAD"


def test_builtin_server_answers_404_elsewhere_and_405_with_allow(tel: tradetel.Telemetry) -> None:
    """Another path is 404 on the built-in server; POST to /metrics is 405 with an Allow header, not 501."""
    assert _builtin(tel, "GET", "/other", {})[0] == 404
    status, headers, _ = _builtin(tel, "POST", "/metrics", {})
    assert status == 405 and headers["allow"] == "GET, HEAD"


def test_openmetrics_is_negotiated_and_parses(tel: tradetel.Telemetry) -> None:
    """Accept: application/openmetrics-text gives OpenMetrics 1.0 that the OpenMetrics parser reads exactly."""
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    status, headers, body = _builtin(tel, "GET", "/metrics", {"Accept": accept})
    assert status == 200 and headers["content-type"] == OPENMETRICS_CONTENT_TYPE == OM
    families = {f.name: f for f in parse_openmetrics(body.decode())}
    filled = families["trading_orders_filled"]
    assert filled.type == "counter" and [s.value for s in filled.samples] == [3]
    latency = families["trading_orders_latency_seconds"]
    assert latency.unit == "seconds" and latency.type == "histogram"
    assert families["target"].type == "info"
    assert body.endswith(b"# EOF\n")
    plain = _builtin(tel, "GET", "/metrics", {})
    assert plain[1]["content-type"] == CONTENT_TYPE and b"# EOF" not in plain[2]


def test_gzip_and_name_filter(tel: tradetel.Telemetry) -> None:
    """Accept-Encoding: gzip compresses; name[] keeps exactly the named samples (histograms by sample name)."""
    target = "/metrics?name[]=trading_orders_filled_total&name[]=trading_orders_latency_seconds_count"
    status, headers, body = _builtin(tel, "GET", target, {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["content-encoding"] == "gzip"
    samples = [s for family in parse_text(gzip.decompress(body).decode()) for s in family.samples]
    assert sorted(s.name for s in samples) == ["trading_orders_filled_total", "trading_orders_latency_seconds_count"]
    assert {s.name: s.value for s in samples} == {
        "trading_orders_filled_total": 3,
        "trading_orders_latency_seconds_count": 1,
    }


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "",
        "text/plain",
        "application/openmetrics-text",
        "application/openmetrics-text; version=1.0.0",
        "application/openmetrics-text;version=0.0.1",
        "application/openmetrics-text;version=0.0.1,application/openmetrics-text;version=1.0.0;q=0.9",
        "text/plain;version=0.0.4;q=0.5,application/openmetrics-text;version=1.0.0",
        "*/*",
        "application/json",
    ],
)
def test_format_choice_matches_prometheus_client(accept: str | None) -> None:
    """tradetel picks OpenMetrics exactly when prometheus_client's choose_encoder does."""
    _, content_type = choose_encoder(accept)  # type: ignore[arg-type]
    assert openmetrics_accepted(accept) == content_type.startswith("application/openmetrics-text")


@pytest.mark.parametrize("encoding", [None, "", "gzip", "GZIP;q=0.5", "deflate, gzip", "br", "x-gzip", "identity"])
def test_gzip_choice_matches_prometheus_client(encoding: str | None) -> None:
    """tradetel compresses exactly when prometheus_client's gzip_accepted says so."""
    assert tradetel_gzip_accepted(encoding) == gzip_accepted(encoding)  # type: ignore[arg-type]


def test_basic_auth_gives_401_on_every_path_and_method(cap: Capture) -> None:
    """With basic auth, a request without credentials gets 401 with a challenge, whatever its method or path."""
    server = PrometheusServer(cap.telemetry.collect, port=0, basic_auth=("u", "p"))
    try:
        for method, path in [("GET", "/metrics"), ("POST", "/metrics"), ("GET", "/x"), ("HEAD", "/metrics")]:
            request = urllib.request.Request(server.url.replace("/metrics", path), method=method)
            with pytest.raises(urllib.error.HTTPError) as error:
                urllib.request.urlopen(request, timeout=10)
            assert error.value.code == 401 and error.value.headers["WWW-Authenticate"].startswith("Basic")
            error.value.close()
    finally:
        server.close()


def test_a_malformed_or_oversized_request_is_refused(cap: Capture) -> None:
    """A request line that is not HTTP gets 400, a head over the limit 431, and the server keeps serving."""
    server = PrometheusServer(cap.telemetry.collect, port=0)
    try:
        for payload, status in [(b"HELLO\r\n\r\n", b"400"), (b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000, b"431")]:
            with socket.create_connection((server.host, server.port), timeout=10) as sock:
                sock.sendall(payload)
                assert sock.recv(64).split()[1] == status
        with urllib.request.urlopen(server.url, timeout=10) as response:
            assert response.status == 200
    finally:
        server.close()


def test_a_non_loopback_bind_without_protection_warns(caplog: pytest.LogCaptureFixture) -> None:
    """Binding 0.0.0.0 without TLS or basic auth logs one warning naming the risk; 127.0.0.1 logs none."""
    with caplog.at_level(logging.WARNING, logger="tradetel"):
        PrometheusServer(lambda: None, host="127.0.0.1", port=0).close()  # type: ignore[arg-type, return-value]
        assert caplog.records == []
        PrometheusServer(lambda: None, host="0.0.0.0", port=0).close()  # type: ignore[arg-type, return-value]
    warnings = [r for r in caplog.records if "without TLS or basic auth" in r.getMessage()]
    assert len(warnings) == 1 and "0.0.0.0" in warnings[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tradetel"):
        PrometheusServer(lambda: None, host="0.0.0.0", port=0, basic_auth=("u", "p")).close()  # type: ignore[arg-type, return-value]
    assert caplog.records == []


def test_curl_compressed_gets_gzip(tel: tradetel.Telemetry) -> None:
    """`curl --compressed` is answered with gzip, which curl decodes to the exposition."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("curl not found")
    url = tel.prometheus_url
    assert url is not None
    result = subprocess.run([curl, "-sS", "--compressed", "-D", "-", url], capture_output=True, timeout=30, check=True)
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert b"content-encoding: gzip" in head.lower()
    assert b'trading_orders_filled_total{exchange="binance",side="buy",symbol="BTC-USD"} 3\n' in body


def test_an_attached_registry_is_served_as_text_and_filtered_by_name() -> None:
    """With a prometheus_client registry attached, OpenMetrics requests get text 0.0.4 and name[] filters it too."""
    registry = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("legacy_jobs", "Jobs.", registry=registry).inc(4)
    prometheus_client.Gauge("legacy_queue", "Queue.", registry=registry).set(2)
    env: dict[str, str] = {}
    with tradetel.configure(prometheus_port=0, env=env, prometheus_registry=registry) as tel:
        tel.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
        status, headers, body = _builtin(
            tel, "GET", "/metrics?name[]=legacy_jobs_total", {"Accept": "application/openmetrics-text"}
        )
    assert status == 200 and headers["content-type"] == CONTENT_TYPE
    samples = {s.name: s.value for family in parse_text(body.decode()) for s in family.samples}
    assert samples == {"legacy_jobs_total": 4}
