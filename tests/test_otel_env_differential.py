"""tradetel resolves the OTEL_* variables as the OpenTelemetry SDK's own code does, case by case.

For each environment in the table, the SDK reads it itself (``os.environ``): ``Resource.create()``,
the gRPC and the HTTP ``OTLPMetricExporter()`` built with no arguments. tradetel reads the same
environment as a mapping (``os.environ`` emptied), resolves its settings and builds its exporter,
which passes every value explicitly. The resolved endpoint, headers, timeout, compression, TLS
choice, client certificates, temporality and resource attributes of both must be equal; where
tradetel differs on purpose (documented in docs/backends/otlp.md), the test says so on that line.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.exporter import InvalidCompressionValueException
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as SdkGrpcExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as SdkHttpExporter
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, ObservableCounter, UpDownCounter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ConsoleMetricExporter,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    PeriodicExportingMetricReader,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from tradetel.config import load_settings
from tradetel.exporters.otlp import TemporalityConverter, _sdk_exporter
from tradetel.telemetry import _resource

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@dataclass(frozen=True)
class Case:
    """One environment; ``protocols`` are the exporters it is compared on."""

    name: str
    env: dict[str, str]
    protocols: tuple[str, ...] = ("grpc", "http/protobuf")
    files: tuple[str, ...] = field(default=())  # names of PEM files to create; "{name}" in env is their path


CASES = [
    Case("defaults", {}),
    Case("base endpoint", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}),
    Case("base endpoint, trailing slash", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}),
    Case("base endpoint with a path", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://gateway:4318/otlp"}),
    Case("base endpoint with a path and slash", {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://gateway/otlp/"}),
    Case("signal endpoint as is", {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://collector:4318/custom/path"}),
    Case("signal endpoint without path", {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://collector:4318"}),
    Case(
        "signal endpoint wins",
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://generic:4318",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://metrics:9999/v1/metrics",
        },
    ),
    Case("https endpoint", {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector.example:4317"}),
    Case(
        "http endpoint, insecure false",
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_EXPORTER_OTLP_INSECURE": "false"},
    ),
    Case(
        "https endpoint, insecure true",
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4317", "OTEL_EXPORTER_OTLP_INSECURE": "true"},
    ),
    Case(
        "signal insecure wins",
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
            "OTEL_EXPORTER_OTLP_INSECURE": "false",
            "OTEL_EXPORTER_OTLP_METRICS_INSECURE": "true",
        },
    ),
    Case("insecure in capitals", {"OTEL_EXPORTER_OTLP_INSECURE": "TRUE"}),
    Case("percent-encoded header", {"OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20abc.def"}),
    Case("capitalised header keys", {"OTEL_EXPORTER_OTLP_HEADERS": "X-Api-Key=k1,X-Tenant=Desk%2F7"}),
    Case("headers with blanks", {"OTEL_EXPORTER_OTLP_HEADERS": " a = 1 ,\tb=2 , c =3"}),
    Case("liberal header value", {"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer abc"}),
    Case("liberal value is not decoded", {"OTEL_EXPORTER_OTLP_HEADERS": "x-note=a b%20c"}),
    Case("header value with =", {"OTEL_EXPORTER_OTLP_HEADERS": "x-token=abc==,x-b=c=d"}),
    Case(
        "signal headers replace generic",
        {"OTEL_EXPORTER_OTLP_HEADERS": "x-a=1,x-b=2", "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "X-B=3"},
    ),
    Case("duplicate header key", {"OTEL_EXPORTER_OTLP_HEADERS": "x-a=1,X-A=2"}),
    Case("empty header items", {"OTEL_EXPORTER_OTLP_HEADERS": "x-a=1,,x-b=2,"}),
    Case("percent-encoded header key", {"OTEL_EXPORTER_OTLP_HEADERS": "X%2DKey=v"}),
    Case("timeout", {"OTEL_EXPORTER_OTLP_TIMEOUT": "5000"}),
    Case("signal timeout wins", {"OTEL_EXPORTER_OTLP_TIMEOUT": "5000", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "2500"}),
    Case("gzip", {"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}),
    Case("gzip in capitals", {"OTEL_EXPORTER_OTLP_COMPRESSION": " GZIP"}),
    Case(
        "signal compression wins",
        {"OTEL_EXPORTER_OTLP_COMPRESSION": "deflate", "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "gzip"},
    ),
    Case("deflate", {"OTEL_EXPORTER_OTLP_COMPRESSION": "deflate"}, protocols=("http/protobuf",)),
    Case("compression none", {"OTEL_EXPORTER_OTLP_COMPRESSION": "none"}, protocols=("http/protobuf",)),
    Case("temporality delta", {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta"}),
    Case("temporality lowmemory", {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "LowMemory"}),
    Case("temporality cumulative", {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "CUMULATIVE"}),
    Case(
        "certificate",
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4317", "OTEL_EXPORTER_OTLP_CERTIFICATE": "{ca}"},
        files=("ca",),
    ),
    Case(
        "client certificate and key",
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4317",
            "OTEL_EXPORTER_OTLP_CERTIFICATE": "{ca}",
            "OTEL_EXPORTER_OTLP_CLIENT_KEY": "{key}",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": "{cert}",
        },
        files=("ca", "key", "cert"),
    ),
    Case(
        "signal certificates win",
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4317",
            "OTEL_EXPORTER_OTLP_CERTIFICATE": "{ca}",
            "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE": "{metrics_ca}",
            "OTEL_EXPORTER_OTLP_CLIENT_KEY": "{key}",
            "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY": "{metrics_key}",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": "{cert}",
            "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE": "{metrics_cert}",
        },
        files=("ca", "metrics_ca", "key", "metrics_key", "cert", "metrics_cert"),
    ),
    Case("service name from resource attributes", {"OTEL_RESOURCE_ATTRIBUTES": "service.name=grid-bot"}),
    Case(
        "OTEL_SERVICE_NAME wins over resource attributes",
        {"OTEL_SERVICE_NAME": "from-name", "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attributes"},
    ),
    Case("instance id from resource attributes", {"OTEL_RESOURCE_ATTRIBUTES": "service.instance.id=bot-7"}),
    Case(
        "percent-encoded resource values",
        {"OTEL_RESOURCE_ATTRIBUTES": "team=r%26d,desc=grid%20bot%2C%20BTC,deployment.environment.name=paper"},
    ),
    Case("resource keys are not decoded", {"OTEL_RESOURCE_ATTRIBUTES": " desk%20id = 7 ,x=a=b"}),
    Case("empty resource items", {"OTEL_RESOURCE_ATTRIBUTES": "a=1,,b=2"}),
    Case("empty service name in attributes", {"OTEL_RESOURCE_ATTRIBUTES": "service.name=,team=x"}),
]


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No OTEL_*, TRADETEL_*, DD_* or CA-bundle variable in os.environ."""
    for key in list(os.environ):
        if key.startswith(("OTEL_", "TRADETEL_", "DD_")) or key in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            monkeypatch.delenv(key)
    return monkeypatch


def _grpc_view(exporter: Any) -> dict[str, Any]:
    return {
        "endpoint": exporter._endpoint,
        "headers": dict(exporter._headers),
        "timeout": exporter._timeout,
        "compression": exporter._compression,
        "insecure": exporter._insecure,
        "tls": exporter._credentials is not None,
    }


def _http_view(exporter: Any) -> dict[str, Any]:
    client = exporter._client
    session = client._transport._session
    return {
        "endpoint": exporter._endpoint,
        "headers": dict(client._headers),
        "timeout": client._timeout,
        "compression": client._compression,
        "verify": session.verify,
        "cert": session.cert,
    }


def _sdk_temporality(exporter: Any) -> dict[str, AggregationTemporality]:
    preferred = exporter._preferred_temporality
    return {name: preferred[kind] for name, kind in _KINDS.items()}


_KINDS = {"counter": Counter, "histogram": Histogram, "up_down_counter": UpDownCounter, "observable": ObservableCounter}


def _tradetel_temporality(preference: str) -> dict[str, AggregationTemporality]:
    """What tradetel's converter sends for each kind, read from a converted collection."""

    def point(value: int) -> NumberDataPoint:
        return NumberDataPoint({}, 1, 2, value)

    histogram_point = HistogramDataPoint({}, 1, 2, 1, 1.0, (0, 1), (1.0,), 1.0, 1.0)
    cumulative = AggregationTemporality.CUMULATIVE
    metrics = [
        Metric("counter", "", "", Sum([point(1)], cumulative, True)),
        Metric("histogram", "", "", HistogramData([histogram_point], cumulative)),
        Metric("up_down_counter", "", "", Sum([point(1)], cumulative, False)),
        Metric("observable", "", "", Sum([point(1)], cumulative, True)),
    ]
    scope = ScopeMetrics(InstrumentationScope("t"), metrics, "")
    data = MetricsData([ResourceMetrics(Resource({}), [scope], "")])
    converted = TemporalityConverter(preference, lambda: frozenset({"observable"})).convert(data)
    sent = converted.resource_metrics[0].scope_metrics[0].metrics
    return {metric.name: metric.data.aggregation_temporality for metric in sent}  # type: ignore[union-attr]


def _materialise(case: Case, tmp_path: Path) -> dict[str, str]:
    paths = {}
    for name in case.files:
        path = tmp_path / f"{name}.pem"
        path.write_text(PEM)
        paths[name] = str(path)
    return {key: value.format(**paths) for key, value in case.env.items()}


def _run_sdk(env: dict[str, str], build: Callable[[], Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        return build()
    finally:
        for key in env:
            monkeypatch.delenv(key)


def _cases() -> list[Any]:
    return [pytest.param(case, protocol, id=f"{case.name}-{protocol}") for case in CASES for protocol in case.protocols]


@pytest.mark.parametrize(("case", "protocol"), _cases())
def test_exporter_matches_the_sdk(case: Case, protocol: str, clean_environ: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """For this environment, tradetel's exporter resolves exactly what the SDK's exporter reads from it."""
    env = {**_materialise(case, tmp_path), "OTEL_EXPORTER_OTLP_PROTOCOL": protocol}
    grpc = protocol == "grpc"
    sdk = _run_sdk(env, SdkGrpcExporter if grpc else SdkHttpExporter, clean_environ)
    settings = load_settings(env=env)
    ours, _ = _sdk_exporter(settings.otlp)  # built with os.environ empty: tradetel passes everything itself
    try:
        view = _grpc_view if grpc else _http_view
        expected, actual = view(sdk), view(ours)
        if "OTEL_EXPORTER_OTLP_TIMEOUT" in env or "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT" in env:
            # Intended difference: the specification says milliseconds, the Python SDK reads seconds.
            actual["timeout"] *= 1000
        assert actual == expected
        assert _tradetel_temporality(settings.otlp.temporality) == _sdk_temporality(sdk)
    finally:
        sdk.shutdown()
        ours.shutdown()


@pytest.mark.parametrize(
    "case", [pytest.param(case, id=case.name) for case in CASES if "OTEL_EXPORTER_OTLP" not in str(case.env)]
)
def test_resource_matches_the_sdk(case: Case, clean_environ: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """tradetel's resource has every attribute Resource.create() builds from this environment, with its value."""
    env = _materialise(case, tmp_path)
    sdk = dict(_run_sdk(env, Resource.create, clean_environ).attributes)
    ours = dict(_resource(load_settings(env=env)).attributes)
    if str(sdk["service.name"]).startswith("unknown_service"):
        # Intended difference: with no service name anywhere, tradetel's default is `trading-bot`.
        assert ours.pop("service.name") == "trading-bot"
        sdk.pop("service.name")
    if "service.instance.id" not in env.get("OTEL_RESOURCE_ATTRIBUTES", ""):
        # Both make up a random id per process when none is given.
        assert ours.pop("service.instance.id") and sdk.pop("service.instance.id")
    # tradetel names itself as the distribution; nothing else is added.
    assert ours.pop("telemetry.distro.name") == "tradetel"
    assert ours.pop("telemetry.distro.version")
    assert ours == sdk


@pytest.mark.parametrize("value", ["none", "deflate"])
def test_intended_difference_grpc_compression(value: str, clean_environ: pytest.MonkeyPatch) -> None:
    """The SDK's gRPC exporter refuses `none` and `deflate` from the environment; tradetel sends them as asked."""
    env = {"OTEL_EXPORTER_OTLP_COMPRESSION": value}
    with pytest.raises(InvalidCompressionValueException):
        _run_sdk(env, SdkGrpcExporter, clean_environ)
    ours, _ = _sdk_exporter(load_settings(env=env).otlp)
    try:
        expected = {"none": grpc.Compression.NoCompression, "deflate": grpc.Compression.Deflate}[value]
        assert ours._compression == expected
    finally:
        ours.shutdown()


def test_intended_difference_service_name_blanks(clean_environ: pytest.MonkeyPatch) -> None:
    """The SDK keeps blanks around OTEL_SERVICE_NAME in service.name; tradetel strips them, as every setting."""
    env = {"OTEL_SERVICE_NAME": "  grid-bot "}
    assert _run_sdk(env, Resource.create, clean_environ).attributes["service.name"] == "  grid-bot "
    assert _resource(load_settings(env=env)).attributes["service.name"] == "grid-bot"


@pytest.mark.parametrize("value", ["always_on", "always_off", "trace_based", None])
def test_exemplar_filter_matches_the_sdk(value: str | None, clean_environ: pytest.MonkeyPatch) -> None:
    """OTEL_METRICS_EXEMPLAR_FILTER names the filter the SDK's MeterProvider picks from it (default trace_based)."""
    env = {} if value is None else {"OTEL_METRICS_EXEMPLAR_FILTER": value}
    provider = _run_sdk(env, MeterProvider, clean_environ)
    try:
        sdk_filter = type(provider._sdk_config.exemplar_filter).__name__
    finally:
        provider.shutdown()
    ours = load_settings(env=env).exemplar_filter
    assert sdk_filter == "".join(part.title() for part in ours.split("_")) + "ExemplarFilter"


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"OTEL_METRIC_EXPORT_INTERVAL": "2500"},
        {"OTEL_METRIC_EXPORT_INTERVAL": "60000", "OTEL_METRIC_EXPORT_TIMEOUT": "750.5"},
    ],
    ids=["defaults", "interval", "interval-and-timeout"],
)
def test_export_interval_and_timeout_match_the_sdk(env: dict[str, str], clean_environ: pytest.MonkeyPatch) -> None:
    """OTEL_METRIC_EXPORT_INTERVAL/TIMEOUT mean the milliseconds the SDK's periodic reader reads from them."""
    reader = _run_sdk(
        env, lambda: PeriodicExportingMetricReader(ConsoleMetricExporter(out=io.StringIO())), clean_environ
    )
    try:
        sdk = {
            "OTEL_METRIC_EXPORT_INTERVAL": (reader._export_interval_millis, 60_000),
            "OTEL_METRIC_EXPORT_TIMEOUT": (reader._export_timeout_millis, 30_000),
        }
    finally:
        reader.shutdown()
    settings = load_settings(env=env)
    ours = {
        "OTEL_METRIC_EXPORT_INTERVAL": settings.export_interval,
        "OTEL_METRIC_EXPORT_TIMEOUT": settings.export_timeout,
    }
    for name, (sdk_millis, sdk_default) in sdk.items():
        if name in env:
            assert ours[name] * 1000 == pytest.approx(sdk_millis), name
        else:
            # Intended difference: tradetel's default is 10 s for both (the SDK: 60 s interval, 30 s timeout).
            assert (ours[name], sdk_millis) == (10.0, sdk_default), name
