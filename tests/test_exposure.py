"""Exposure: the /metrics endpoint binds loopback, serves HTTPS and checks basic auth; OTLP gets TLS and headers.

Every server here runs in this process on 127.0.0.1; the clients are real (urllib, httpx, gRPC, the
OpenTelemetry SDK's own OTLP exporters).
"""

from __future__ import annotations

import base64
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc

import tradetel
from tradetel import ConfigurationError
from tradetel.config import load_settings
from tradetel.exporters import prometheus
from tradetel.testing import Capture

if TYPE_CHECKING:
    from conftest import TlsFiles

USER, PASSWORD = "prometheus", "pässwörd:with-colon"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def secured(tls_files: TlsFiles) -> Iterator[tradetel.Telemetry]:
    """An endpoint with TLS and basic auth, one fill recorded."""
    env = tls_files.prometheus_env(USER, PASSWORD)
    with tradetel.configure(exporters="prometheus", prometheus_port=0, env=env) as tel:
        tel.orders.filled.add(3, exchange="binance", symbol="BTC-USD", side="buy")
        yield tel


def _get(url: str, context: ssl.SSLContext | None, authorization: str | None, method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method)
    if authorization is not None:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        challenge = error.headers.get("WWW-Authenticate", "")
        status, body = error.code, error.read()
    assert status != 401 or challenge.startswith("Basic ")
    return status, body


def test_endpoint_binds_loopback_unless_told_otherwise() -> None:
    """With no host setting the endpoint listens on 127.0.0.1 only: 127.0.0.2 (also loopback) is refused."""
    with tradetel.configure(exporters="prometheus", prometheus_port=0, env={}) as tel:
        assert tel.settings.prometheus.host == "127.0.0.1"
        url = tel.prometheus_url
        assert url is not None and url.startswith("http://127.0.0.1:")
        port = int(url.split(":")[2].split("/")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.2", port), timeout=5):
            pass
    with tradetel.configure(exporters="prometheus", prometheus_port=0, prometheus_host="127.0.0.2", env={}) as other:
        assert other.prometheus_url is not None and other.prometheus_url.startswith("http://127.0.0.2:")


def test_basic_auth_turns_away_missing_and_wrong_credentials(secured: tradetel.Telemetry, tls_files: TlsFiles) -> None:
    """401 with a Basic challenge without credentials, with a wrong user or password, or a malformed header."""
    url = secured.prometheus_url
    assert url is not None and url.startswith("https://")
    context = ssl.create_default_context(cafile=str(tls_files.cert))
    refused = [
        None,
        _basic(USER, "wrong"),
        _basic("someone", PASSWORD),
        _basic(USER, PASSWORD + "x"),
        _basic(USER, PASSWORD[:-1]),
        "Basic not-base64!",
        "Bearer " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
        base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
    ]
    for authorization in refused:
        status, body = _get(url, context, authorization)
        assert status == 401, authorization
        assert b"trading_" not in body
    assert _get(url, context, None, method="HEAD")[0] == 401
    assert _get(url.replace("/metrics", "/elsewhere"), context, None)[0] == 401  # no hint of what exists
    status, body = _get(url, context, _basic(USER, PASSWORD))
    assert status == 200
    assert b'trading_orders_filled_total{exchange="binance",side="buy",symbol="BTC-USD"} 3' in body


def test_https_and_basic_auth_with_httpx(secured: tradetel.Telemetry, tls_files: TlsFiles) -> None:
    """A second client (httpx) verifies the certificate and authenticates with its own basic-auth support."""
    url = secured.prometheus_url
    assert url is not None
    verify = ssl.create_default_context(cafile=str(tls_files.cert))
    with httpx.Client(verify=verify, timeout=10) as client:
        assert client.get(url).status_code == 401
        response = client.get(url, auth=(USER, PASSWORD))
        assert response.status_code == 200
        assert "trading_orders_filled_total" in response.text
    with httpx.Client(timeout=10) as untrusting, pytest.raises(httpx.ConnectError):
        untrusting.get(url, auth=(USER, PASSWORD))  # a self-signed certificate is not trusted by default


def test_tls_endpoint_speaks_no_plain_http(secured: tradetel.Telemetry) -> None:
    """Plain HTTP to the TLS port gets no HTTP answer at all, so nothing is ever served unencrypted."""
    url = secured.prometheus_url
    assert url is not None
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        urllib.request.urlopen(url.replace("https://", "http://"), timeout=10)


def test_a_stalled_tls_client_does_not_block_others(secured: tradetel.Telemetry, tls_files: TlsFiles) -> None:
    """A client that connects and never shakes hands holds its own thread, not the endpoint."""
    url = secured.prometheus_url
    assert url is not None
    port = int(url.split(":")[2].split("/")[0])
    context = ssl.create_default_context(cafile=str(tls_files.cert))
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        started = time.perf_counter()
        assert _get(url, context, _basic(USER, PASSWORD))[0] == 200
        assert time.perf_counter() - started < 5


def test_the_password_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every check compares two SHA-256 digests with hmac.compare_digest, whatever the length of the guess."""
    compared: list[tuple[int, int]] = []
    real = prometheus.hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        compared.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(prometheus.hmac, "compare_digest", recording)
    check = prometheus._basic_auth(USER, PASSWORD)
    guesses = [None, "Basic", _basic(USER, "p"), _basic(USER, "p" * 500), "Basic ###", _basic(USER, PASSWORD)]
    assert [check(guess) for guess in guesses] == [False] * 5 + [True]
    assert compared == [(32, 32)] * len(guesses)


@pytest.mark.parametrize(
    ("which", "expected"),
    [
        ("missing", "TRADETEL_PROMETHEUS_TLS_CERT/TRADETEL_PROMETHEUS_TLS_KEY"),
        ("swapped", "TRADETEL_PROMETHEUS_TLS_CERT/TRADETEL_PROMETHEUS_TLS_KEY"),
        ("encrypted", "TRADETEL_PROMETHEUS_TLS_KEY"),
    ],
)
def test_unusable_tls_files_fail_configure(tls_files: TlsFiles, which: str, expected: str) -> None:
    """A missing file, a key in place of the certificate or an encrypted key fail configure(), naming the setting."""
    cert, key = {
        "missing": (tls_files.cert.with_name("absent.pem"), tls_files.key),
        "swapped": (tls_files.key, tls_files.cert),
        "encrypted": (tls_files.cert, tls_files.encrypted_key),
    }[which]
    env = {"TRADETEL_PROMETHEUS_TLS_CERT": str(cert), "TRADETEL_PROMETHEUS_TLS_KEY": str(key)}
    with pytest.raises(ConfigurationError) as raised:
        tradetel.configure(exporters="prometheus", prometheus_port=0, env=env)
    assert str(raised.value).startswith(expected + "=")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TRADETEL_PROMETHEUS_TLS_KEY": "key.pem"}, "TRADETEL_PROMETHEUS_TLS_CERT"),
        ({"TRADETEL_PROMETHEUS_BASIC_AUTH_PASSWORD": "pw"}, "TRADETEL_PROMETHEUS_BASIC_AUTH_USERNAME"),
        ({"TRADETEL_PROMETHEUS_BASIC_AUTH_USERNAME": "a:b", "TRADETEL_PROMETHEUS_BASIC_AUTH_PASSWORD": "pw"}, ""),
    ],
)
def test_half_configured_protection_fails_at_start_up(env: dict[str, str], named: str) -> None:
    """A key without a certificate, a password without a user, or a user with ':' fail configure() by name."""
    with pytest.raises(ConfigurationError) as raised:
        tradetel.configure(exporters="none", env=env)
    assert (named or "TRADETEL_PROMETHEUS_BASIC_AUTH_USERNAME") in str(raised.value)


# --- OTLP: certificate and headers from the standard variables ---------------------------------------------


class _OtlpHttpsReceiver:
    """An HTTPS server that records the headers of every POST and answers 200 (an empty OTLP response)."""

    def __init__(self, tls_files: TlsFiles) -> None:
        self.requests: list[dict[str, str]] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls_files.cert), str(tls_files.key))
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}/v1/metrics"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class _OtlpGrpcReceiver(metrics_service_pb2_grpc.MetricsServiceServicer):
    """A gRPC OTLP metrics service over TLS that records the metadata of every export."""

    def __init__(self, tls_files: TlsFiles) -> None:
        self.metadata: list[dict[str, str]] = []
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(self, self._server)
        credentials = grpc.ssl_server_credentials([(tls_files.key.read_bytes(), tls_files.cert.read_bytes())])
        port = self._server.add_secure_port("127.0.0.1:0", credentials)
        self.url = f"https://127.0.0.1:{port}"
        self._server.start()

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - the generated service's method name
        self.metadata.append(dict(context.invocation_metadata()))
        return metrics_service_pb2.ExportMetricsServiceResponse()

    def close(self) -> None:
        self._server.stop(grace=None).wait(5)


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_otlp_uses_the_certificate_and_headers_variables(
    tls_files: TlsFiles, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_EXPORTER_OTLP_CERTIFICATE verifies a TLS collector (even beside REQUESTS_CA_BUNDLE); headers reach it."""
    import certifi

    # requests would let this variable replace the configured certificate (psf/requests#3829)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    receiver: Any = _OtlpHttpsReceiver(tls_files) if protocol == "http/protobuf" else _OtlpGrpcReceiver(tls_files)
    try:
        env = {
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": protocol,
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": receiver.url,
            "OTEL_EXPORTER_OTLP_CERTIFICATE": str(tls_files.cert),
            "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20desk-token,x-tenant=desk-1",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "5000",
        }
        with tradetel.configure(exporters="otlp", env=env, export_interval=3600) as tel:
            tel.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
            tel.force_flush()
        seen = receiver.requests if protocol == "http/protobuf" else receiver.metadata
        assert seen, "the collector received nothing"
        assert seen[0]["authorization"] == "Bearer desk-token"
        assert seen[0]["x-tenant"] == "desk-1"
    finally:
        receiver.close()


def test_otlp_without_the_certificate_does_not_trust_a_self_signed_collector(tls_files: TlsFiles) -> None:
    """Without OTEL_EXPORTER_OTLP_CERTIFICATE the same collector is refused: the variable is what made it work."""
    receiver = _OtlpHttpsReceiver(tls_files)
    try:
        env = {
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": receiver.url,
            "OTEL_EXPORTER_OTLP_TIMEOUT": "2000",
        }
        with tradetel.configure(exporters="otlp", env=env, export_interval=3600) as tel:
            tel.orders.filled.add(1)
            tel.force_flush()
            failures = Capture(tel).value("tradetel.export.failures")
        assert receiver.requests == []
        assert failures >= 1
    finally:
        receiver.close()


@pytest.mark.parametrize("scheme", ["unix", "unixgram", "unixstream"])
def test_dogstatsd_socket_urls_are_accepted(scheme: str) -> None:
    """DD_DOGSTATSD_URL takes every Unix socket form the DogStatsD client supports; other schemes fail by name."""
    url = f"{scheme}:///var/run/datadog/dsd.socket"
    assert load_settings({}, env={"DD_DOGSTATSD_URL": url}).dogstatsd.url == url
    with pytest.raises(ConfigurationError, match="DD_DOGSTATSD_URL"):
        load_settings({}, env={"DD_DOGSTATSD_URL": f"{scheme}x:///var/run/datadog/dsd.socket"})
