"""The fleet configs' other paths: DogStatsD through agents and gateways, and the DataDog gateway variant."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from test_collector import _dogstatsd_bot, _send_workload  # the same DogStatsD bot and workload

import tradetel

pytestmark = pytest.mark.integration


def test_dogstatsd_counts_from_two_hosts_reach_prometheus_apart_and_exact(
    collector: Callable[..., Any],
    collector_env: Callable[..., dict[str, str]],
    prometheus_server: Callable[..., Any],
    workload: Any,
) -> None:
    """The same DogStatsD series sent to two agents become two exact series in Prometheus, one per host.

    The statsd receiver emits deltas with no resource: the agent names the host as the series' instance,
    and the gateway that owns it keeps the running total that remote write carries.
    """
    prom = prometheus_server({}, extra_args=["--web.enable-remote-write-receiver"])
    gateways = [
        collector("fleet-gateway.yaml", collector_env(REMOTE_WRITE_URL=f"{prom.url}/api/v1/write")) for _ in range(2)
    ]
    endpoints = "[" + ", ".join(gw.address("OTLP_GRPC_PORT") for gw in gateways) + "]"
    hosts = ("host-a", "host-b")
    for host in hosts:
        agent = collector("fleet-agent.yaml", collector_env(GATEWAY_ENDPOINTS=endpoints, AGENT_HOST_NAME=host))
        with _dogstatsd_bot(agent.ports["STATSD_PORT"]) as tel:
            _send_workload(tel, workload)

    for host in hosts:
        for (exchange, symbol, side), total in workload.filled.items():
            labels = f'instance="{host}",exchange="{exchange}",symbol="{symbol}",side="{side}"'
            prom.wait_for_value(f"sum(dsd_orders_filled_total{{{labels}}})", total)
        selector = f'instance="{host}",exchange="binance",stage="ack"'
        prom.wait_for_value(f"sum(dsd_orders_latency_count{{{selector}}})", workload.latency_count)
    assert prom.value("sum(dsd_orders_filled_total)") == len(hosts) * sum(workload.filled.values())
    assert {labels["instance"] for labels in prom.labels("dsd_orders_filled_total")} == set(hosts)


def test_datadog_gateway_posts_what_the_agents_route_to_it(
    collector: Callable[..., Any],
    collector_env: Callable[..., dict[str, str]],
    capture_server: Any,
    wait_until: Callable[..., Any],
    workload: Any,
) -> None:
    """fleet-agent.yaml in front of fleet-gateway-datadog.yaml: tradetel's OTLP metrics reach the DataDog intake.

    A local HTTP server stands in for the intake; the gateway must post tradetel's series and sketches
    with the API key, and the host the agent names.
    """
    api_key = "0123456789abcdef0123456789abcdef"
    gateway_env = collector_env(DD_API_KEY=api_key, DD_METRICS_ENDPOINT=capture_server.url)
    gateway = collector("fleet-gateway-datadog.yaml", gateway_env, distribution="datadog")
    agent_env = collector_env(GATEWAY_ENDPOINTS=f"[{gateway.address('OTLP_GRPC_PORT')}]", AGENT_HOST_NAME="bot-host-7")
    agent = collector("fleet-agent.yaml", agent_env)
    settings = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{agent.address('OTLP_GRPC_PORT')}",
        "OTEL_SERVICE_NAME": "dd-fleet-bot",
    }
    with tradetel.configure(exporters="otlp", export_interval=3600, env=settings) as tel:
        _send_workload(tel, workload)

    def posted() -> bool:
        series = b"".join(capture_server.bodies("/api/v2/series"))
        sketches = b"".join(capture_server.bodies("/api/beta/sketches"))
        return b"trading.orders.filled" in series and b"bot-host-7" in series and b"trading.orders.latency" in sketches

    wait_until(posted, "the DataDog gateway to post tradetel's metrics", 60, alive=gateway.process)
    posts = [r for r in capture_server.requests if r.path.startswith(("/api/v2/series", "/api/beta/sketches"))]
    assert {r.headers.get("Dd-Api-Key") for r in posts} == {api_key}
