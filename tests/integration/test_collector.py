"""tradetel's OTLP into the real OpenTelemetry Collector built from collector/, read back through Prometheus."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import tradetel
from tradetel.testing import Capture

pytestmark = pytest.mark.integration

COLLECTOR = Path(__file__).resolve().parents[2] / "collector"
LATENCY = "trading_orders_latency_seconds"


def _otlp(protocol: str, port: int, *, temporality: str = "cumulative", **env: str) -> tradetel.Telemetry:
    settings = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",  # a base URL: /v1/metrics is appended for HTTP
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": temporality,
        "OTEL_SERVICE_NAME": "otlp-bot",
        **env,
    }
    return tradetel.configure(exporters=["prometheus", "otlp"], prometheus_port=0, export_interval=3600, env=settings)


def _dogstatsd_bot(port: int) -> tradetel.Telemetry:
    """A bot sending DogStatsD (statsd mode) under the namespace `dsd`, apart from the OTLP bot's series."""
    env = {
        "DD_AGENT_HOST": "127.0.0.1",
        "DD_DOGSTATSD_PORT": str(port),
        "TRADETEL_DOGSTATSD_MODE": "statsd",
        "TRADETEL_NAMESPACE": "dsd",
    }
    return tradetel.configure(exporters="dogstatsd", export_interval=3600, env=env)


def _send_workload(tel: tradetel.Telemetry, workload: Any) -> None:
    workload.record(tel, 1)
    tel.force_flush()
    workload.record(tel, 2)
    tel.force_flush()


def test_every_shipped_config_passes_validate() -> None:
    """collector/check-configs.sh runs the real collector's `validate` on every config and promtool on the rest."""
    result = subprocess.run(["bash", str(COLLECTOR / "check-configs.sh")], capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, result.stdout + result.stderr
    configs = sorted(p.name for p in COLLECTOR.glob("*.yaml") if not p.name.startswith("builder-config"))
    assert configs, "no collector configs in collector/"
    for name in configs:
        assert f"ok    {name}" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("protocol", "temporality", "compression"),
    [("grpc", "cumulative", "none"), ("http/protobuf", "delta", "gzip")],
    ids=["grpc", "http-delta-gzip"],
)
def test_gateway_shows_the_same_totals_as_tradetel(
    protocol: str,
    temporality: str,
    compression: str,
    collector: Callable[..., Any],
    collector_env: Callable[..., dict[str, str]],
    prometheus_server: Callable[..., Any],
    workload: Any,
) -> None:
    """gateway.yaml receives OTLP (gRPC, or gzip HTTP with delta temporality); Prometheus reads the recorded totals.

    The same Prometheus scrapes the bot's own endpoint, so both paths are checked against the same numbers.
    """
    env = collector_env()
    otel = collector("gateway.yaml", env, wait_ports=[int(env["OTLP_GRPC_PORT"]), int(env["OTLP_HTTP_PORT"])])
    port = int(env["OTLP_GRPC_PORT" if protocol == "grpc" else "OTLP_HTTP_PORT"])
    with _otlp(protocol, port, temporality=temporality, OTEL_EXPORTER_OTLP_COMPRESSION=compression) as tel:
        assert tel.prometheus_url is not None
        prom = prometheus_server({"gateway": otel.metrics_url, "bot": tel.prometheus_url})
        _send_workload(tel, workload)
        for job in ("bot", "gateway"):
            workload.wait_for_totals(prom, job)
            workload.check_classic_histogram(prom, job, LATENCY)
        failures = prom.query('tradetel_export_failures_total{job="bot"} > 0')  # the series exist at 0
    assert failures == [], otel.log_tail()


def test_agent_takes_otlp_and_dogstatsd_at_once(
    collector: Callable[..., Any],
    collector_env: Callable[..., dict[str, str]],
    prometheus_server: Callable[..., Any],
    workload: Any,
) -> None:
    """agent.yaml receives OTLP/HTTP from one bot and DogStatsD from another; its Prometheus exporter shows both.

    The two bots use different namespaces, so that each path's totals are checked on their own series.
    """
    env = collector_env()
    otel = collector("agent.yaml", env, wait_ports=[int(env["OTLP_HTTP_PORT"])])
    prom = prometheus_server({"agent": otel.metrics_url})
    with (
        _otlp("http/protobuf", int(env["OTLP_HTTP_PORT"]), TRADETEL_NAMESPACE="otlp") as via_otlp,
        _dogstatsd_bot(int(env["STATSD_PORT"])) as via_statsd,
    ):
        _send_workload(via_otlp, workload)
        _send_workload(via_statsd, workload)
    workload.wait_for_totals(prom, "agent", namespace="otlp")
    workload.check_classic_histogram(prom, "agent", "otlp_orders_latency_seconds")
    workload.wait_for_totals(prom, "agent", namespace="dsd")
    workload.check_classic_histogram(prom, "agent", "dsd_orders_latency", exact_sum=False)


def test_datadog_variant_posts_tradetel_metrics_to_the_intake(
    collector: Callable[..., Any],
    collector_env: Callable[..., dict[str, str]],
    capture_server: Any,
    wait_until: Callable[..., Any],
    workload: Any,
) -> None:
    """datadog.yaml, built with the DataDog exporter, posts tradetel's OTLP and DogStatsD metrics to the intake.

    A local HTTP server stands in for the DataDog intake (the only form of it reachable here): the exporter
    must post series and sketches carrying tradetel's metric names, with the API key from the environment.
    """
    api_key = "0123456789abcdef0123456789abcdef"
    env = collector_env(
        DD_API_KEY=api_key,
        DD_METRICS_ENDPOINT=capture_server.url,
        DD_TRACES_ENDPOINT=capture_server.url,
        DD_LOGS_ENDPOINT=capture_server.url,
        DD_HOSTNAME="tradetel-test",
    )
    collector("datadog.yaml", env, distribution="datadog", wait_ports=[int(env["OTLP_GRPC_PORT"])])
    with (
        _otlp("grpc", int(env["OTLP_GRPC_PORT"])) as via_otlp,
        _dogstatsd_bot(int(env["STATSD_PORT"])) as via_statsd,
    ):
        _send_workload(via_otlp, workload)
        _send_workload(via_statsd, workload)

    series_names = [
        b"trading.orders.filled",
        b"trading.orders.pending",
        b"trading.account.equity",
        b"dsd.orders.filled",
    ]
    sketch_names = [b"trading.orders.latency", b"dsd.orders.latency"]

    def posted() -> bool:
        series = b"".join(capture_server.bodies("/api/v2/series"))
        sketches = b"".join(capture_server.bodies("/api/beta/sketches"))
        return all(n in series for n in series_names) and all(n in sketches for n in sketch_names)

    wait_until(posted, "the datadog exporter to post every metric", 60)
    posts = [r for r in capture_server.requests if r.path.startswith(("/api/v2/series", "/api/beta/sketches"))]
    assert {r.headers.get("Dd-Api-Key") for r in posts} == {api_key}


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_base_endpoint_and_capitalised_header_reach_the_collector(
    protocol: str,
    collector: Callable[..., Any],
    collector_env: Callable[..., dict[str, str]],
    wait_until: Callable[..., Any],
) -> None:
    """Only OTEL_EXPORTER_OTLP_ENDPOINT=http://host:port and an `Authorization` header: the collector gets the push.

    Over HTTP the base URL must gain /v1/metrics; over gRPC the header key must be sent in lower case (gRPC
    refuses metadata keys with capitals, so the push would never leave the process).
    """
    env = collector_env()
    port = int(env["OTLP_GRPC_PORT" if protocol == "grpc" else "OTLP_HTTP_PORT"])
    otel = collector("gateway.yaml", env, wait_ports=[port])
    settings = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20t0ken,X-Desk=Grid",
        "OTEL_SERVICE_NAME": "headers-bot",
    }
    with tradetel.configure(exporters="otlp", export_interval=3600, env=settings) as tel:
        tel.orders.filled.add(3, exchange="binance", symbol="BTC-USD", side="buy")
        tel.force_flush()
        failures = [(labels, value) for labels, value in Capture(tel).series("tradetel.export.failures") if value]
    assert failures == []
    wait_until(lambda: otel.total("trading_orders_filled_total") == 3, "the fills at the collector", alive=otel.process)
