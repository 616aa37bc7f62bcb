"""OTLP delivery against real local servers: where requests go, which headers arrive, why a push failed.

A real gRPC server (grpcio, the metrics service from opentelemetry-proto) and a real HTTP server
(http.server) on 127.0.0.1 stand in for the collector; each can demand a bearer token, answer with
an error status, and records the path and the headers it received.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc

import tradetel
from tradetel import ConfigurationError
from tradetel.config import OtlpSettings
from tradetel.exporters.otlp import OtlpExporter, failure_reason
from tradetel.testing import Capture

TOKEN = "Bearer 0p3n-s3same"


class GrpcCollector(metrics_service_pb2_grpc.MetricsServiceServicer):  # type: ignore[misc]
    """A gRPC metrics service that demands ``authorization: Bearer ...`` and keeps the requests' metadata."""

    def __init__(self) -> None:
        self.metadata: list[dict[str, str]] = []
        self.requests = 0
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - the gRPC method name
        metadata = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
        self.metadata.append(metadata)
        if metadata.get("authorization") != TOKEN:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        self.requests += 1
        return metrics_service_pb2.ExportMetricsServiceResponse()

    def close(self) -> None:
        self._server.stop(0)


class HttpCollector:
    """An OTLP/HTTP endpoint: 200 on POST /v1/metrics with the token, else the configured error status."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.posts: list[tuple[str, dict[str, str]]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {key.lower(): value for key, value in self.headers.items()}
                collector.posts.append((self.path, headers))
                if collector.status != 200:
                    code = collector.status
                elif self.path != "/v1/metrics":
                    code = 404
                else:
                    code = 200 if headers.get("authorization") == TOKEN else 401
                self.send_response(code)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def grpc_collector() -> Iterator[GrpcCollector]:
    server = GrpcCollector()
    yield server
    server.close()


@pytest.fixture
def http_collector() -> Iterator[HttpCollector]:
    server = HttpCollector()
    yield server
    server.close()


class Failures:
    """``tradetel.export.failures`` as counted right after one push (before the final flush of shutdown)."""

    def __init__(self, capture: Capture) -> None:
        self._series = capture.series("tradetel.export.failures")

    def value(self, **attributes: str) -> float:
        """The sum of the series that have every given attribute."""
        matching = [v for have, v in self._series if all(have.get(k) == w for k, w in attributes.items())]
        return float(sum(matching))


def _push(env: dict[str, str]) -> Failures:
    """Configure an OTLP bot from ``env``, record one fill, push once, and return the failures it counted."""
    tel = tradetel.configure(exporters="otlp", export_interval=3600, env={"OTEL_EXPORTER_OTLP_TIMEOUT": "3000", **env})
    try:
        tel.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
        tel.force_flush()
        return Failures(Capture(tel))
    finally:
        tel.shutdown(timeout=5)


def test_grpc_capitalised_header_key_is_delivered(grpc_collector: GrpcCollector) -> None:
    """`Authorization=Bearer%20...` (capital A, percent-encoded space) reaches a gRPC server as lower-case metadata."""
    capture = _push(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{grpc_collector.port}",
            "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%200p3n-s3same,X-Desk=Grid",
        }
    )
    assert grpc_collector.requests >= 1
    assert grpc_collector.metadata[-1]["authorization"] == TOKEN
    assert grpc_collector.metadata[-1]["x-desk"] == "Grid"
    assert capture.value() == 0


def test_grpc_wrong_token_is_counted_as_unauthenticated(grpc_collector: GrpcCollector) -> None:
    """A gRPC UNAUTHENTICATED answer is counted with reason="unauthenticated", not "unavailable"."""
    capture = _push(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{grpc_collector.port}",
            "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20wrong",
        }
    )
    assert grpc_collector.metadata, "the server must have been asked"
    assert capture.value(exporter="otlp", reason="unauthenticated") == 1
    assert capture.value(reason="unavailable") == 0


def test_http_base_endpoint_posts_to_v1_metrics(http_collector: HttpCollector) -> None:
    """With only OTEL_EXPORTER_OTLP_ENDPOINT=http://host:port over HTTP, the push goes to /v1/metrics and succeeds."""
    capture = _push(
        {
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{http_collector.port}",
            "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%200p3n-s3same",
        }
    )
    assert http_collector.posts, "the server must have been asked"
    assert {path for path, _ in http_collector.posts} == {"/v1/metrics"}  # the push and the final flush
    assert http_collector.posts[0][1]["authorization"] == TOKEN
    assert capture.value() == 0


@pytest.mark.parametrize(
    ("env", "status", "reason"),
    [
        ({"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20wrong"}, 200, "unauthenticated"),
        ({}, 400, "bad_request"),
        ({}, 403, "unauthenticated"),
        ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://127.0.0.1:{port}/"}, 200, "configuration"),
    ],
    ids=["401", "400", "403", "404-wrong-path"],
)
def test_http_failures_are_counted_by_reason(
    env: dict[str, str], status: int, reason: str, http_collector: HttpCollector
) -> None:
    """An HTTP error status the SDK does not retry is counted under its reason, once."""
    http_collector.status = status
    full_env = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{http_collector.port}",
        **{key: value.format(port=http_collector.port) for key, value in env.items()},
    }
    capture = _push(full_env)
    assert http_collector.posts, "the server must have been asked"
    assert capture.value(exporter="otlp", reason=reason) == 1
    assert capture.value() == 1


def test_refused_connection_stays_unavailable() -> None:
    """No answer at all (nothing listens) is still reason="unavailable": retrying may cure it."""
    server = HttpCollector()
    port = server.port
    server.close()
    capture = _push(
        {
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "300",
        }
    )
    assert capture.value(exporter="otlp", reason="unavailable") == 1


def test_reason_table() -> None:
    """Each collector answer maps to the documented reason; unknown answers are "unavailable"."""
    answers: list[tuple[object, str]] = [
        (None, "unavailable"),
        (200, "unavailable"),
        (400, "bad_request"),
        (401, "unauthenticated"),
        (403, "unauthenticated"),
        (404, "configuration"),
        (405, "configuration"),
        (413, "bad_request"),
        (415, "configuration"),
        (429, "unavailable"),
        (503, "unavailable"),
        (grpc.StatusCode.UNAUTHENTICATED, "unauthenticated"),
        (grpc.StatusCode.PERMISSION_DENIED, "unauthenticated"),
        (grpc.StatusCode.INVALID_ARGUMENT, "bad_request"),
        (grpc.StatusCode.UNIMPLEMENTED, "configuration"),
        (grpc.StatusCode.UNAVAILABLE, "unavailable"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "unavailable"),
    ]
    assert [failure_reason(answer) for answer, _ in answers] == [reason for _, reason in answers]


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ("x!key=s3cr3t-value", "lower-case letters"),
        ("auth-bin=s3cr3t-value", "-bin"),
        ("authorization=Bearer%0As3cr3t-value", "printable ASCII"),
        ("authorization=Bearer%C3%A9s3cr3t-value", "printable ASCII"),
    ],
)
def test_grpc_unsendable_header_is_a_configuration_error(headers: str, problem: str) -> None:
    """A header gRPC metadata cannot carry fails configure(), naming the variable and key but not the value."""
    with pytest.raises(ConfigurationError) as raised:
        tradetel.configure(exporters="otlp", env={"OTEL_EXPORTER_OTLP_METRICS_HEADERS": headers})
    message = str(raised.value)
    assert raised.value.setting == "OTEL_EXPORTER_OTLP_METRICS_HEADERS"
    assert problem in message
    assert "s3cr3t" not in message and "s3cr3t" not in repr(vars(raised.value))


def test_http_header_name_that_decodes_to_a_space_is_a_configuration_error() -> None:
    """A percent-encoded space in a header name (`x%20key`) is refused for HTTP too, naming the variable."""
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_HEADERS": "x%20key=s3cr3t"}
    with pytest.raises(ConfigurationError, match=r"OTEL_EXPORTER_OTLP_HEADERS.*token") as raised:
        tradetel.configure(exporters="otlp", env=env)
    assert "s3cr3t" not in str(raised.value)


def test_http_header_with_a_line_break_is_a_configuration_error() -> None:
    """A percent-encoded CR/LF in a header value (header injection) fails configure() for HTTP too."""
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_HEADERS": "x-a=1%0D%0AX-Evil:%20s3cr3t"}
    with pytest.raises(ConfigurationError, match="control characters") as raised:
        tradetel.configure(exporters="otlp", env=env)
    assert "s3cr3t" not in str(raised.value)


def test_headers_for_grpc_are_checked_only_when_otlp_runs() -> None:
    """Headers that gRPC cannot send do not stop a bot that does not export over OTLP."""
    tel = tradetel.configure(exporters="none", env={"OTEL_EXPORTER_OTLP_HEADERS": "x!key=v"})
    tel.shutdown()
    assert tel.closed


def test_hand_built_settings_get_the_same_header_rules() -> None:
    """OtlpSettings built in code: keys are lower-cased for gRPC, and an unsendable header fails at construction."""
    exporter = OtlpExporter(OtlpSettings(endpoint="http://127.0.0.1:4317", headers={"Authorization": "Bearer x"}))
    try:
        assert dict(exporter._exporter._headers) == {"authorization": "Bearer x"}
    finally:
        exporter.shutdown(1)
    with pytest.raises(ConfigurationError, match="otlp_headers") as raised:
        OtlpExporter(OtlpSettings(headers={"x-token": "s3cr3t\nvalue"}))
    assert "s3cr3t" not in str(raised.value)


def test_grpc_headers_come_only_from_the_given_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Headers in os.environ do not reach a gRPC exporter configured from another environment without headers."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-from-os-environ=1")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-from-os-environ=2")
    exporter = OtlpExporter(OtlpSettings(endpoint="http://127.0.0.1:4317"))
    try:
        assert tuple(exporter._exporter._headers) == ()
    finally:
        exporter.shutdown(1)


def test_credentials_in_the_endpoint_stay_out_of_logs_and_reprs(caplog: pytest.LogCaptureFixture) -> None:
    """A user and password in the endpoint URL are redacted in the exporter's repr and its failure log line."""
    server = HttpCollector()
    port = server.port
    server.close()
    env = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://bot:s3cr3t-pw@127.0.0.1:{port}",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "300",
    }
    tel = tradetel.configure(exporters="otlp", export_interval=3600, env=env)
    try:
        tel.force_flush()
        shown = repr(tel._push._exporters) + caplog.text
    finally:
        tel.shutdown(timeout=5)
    assert f"<redacted>@127.0.0.1:{port}/v1/metrics" in shown
    assert "s3cr3t-pw" not in shown
