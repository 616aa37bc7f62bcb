"""A label flood reaches a real Prometheus and the real OpenTelemetry Collector with bounded series counts."""

from __future__ import annotations

import ipaddress
import random
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import tradetel
from tradetel.views import series_limit

pytestmark = pytest.mark.integration

MEASUREMENTS = 150_000
JUNK_SYMBOLS = 30_000
FLOODED = ("market_data.updates", "orders.rejected", "security.rate_limited")

# OTLP/HTTP in, the Prometheus exporter out; nothing else, so that what Prometheus scrapes from the
# collector is exactly what tradetel pushed.
COLLECTOR_CONFIG = """\
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${env:OTLP_HTTP_PORT}
exporters:
  prometheus:
    endpoint: 127.0.0.1:${env:PROMETHEUS_EXPORTER_PORT}
    metric_expiration: 1h
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [prometheus]
"""


def _flood(tel: tradetel.Telemetry) -> dict[str, Any]:
    """Junk symbols around steady BTC-USD/ETH-USD, unique free-text reasons, unique client addresses.

    Returns the totals to expect: measurements, BTC-USD and ETH-USD updates, and the rate-limit checks
    whose /24 network came after the first L networks (the overflow series).
    """
    rng = random.Random(7)
    addresses = rng.sample(range(1 << 24, 0xE0000000), MEASUREMENTS // 3 + 1)
    networks: dict[int, int] = {}  # /24 network -> the order in which it first appeared
    limit = series_limit(tel.catalog["security.rate_limited"], tel.settings.cardinality_limit)
    expected = {"measurements": MEASUREMENTS, "BTC-USD": 0, "ETH-USD": 0, "overflow": 0}
    updates = tel.market_data.updates.add
    rejected = tel.orders.rejected.add
    limited = tel.security.rate_limited.add
    for i in range(MEASUREMENTS):
        phase = i % 5
        symbol = (
            "BTC-USD" if phase == 0 else "ETH-USD" if phase == 1 else f'J{rng.randrange(JUNK_SYMBOLS)}|,#:"\n{i % 7}'
        )
        kind = i % 3
        if kind == 0:
            updates(1, symbol=symbol, source="websocket")
            if symbol in expected:
                expected[symbol] += 1
        elif kind == 1:
            rejected(1, exchange="binance", symbol=symbol, side="buy", reason=f"reason {rng.random()} NetworkError")
        else:
            address = addresses[i // 3]
            limited(1, client=str(ipaddress.IPv4Address(address)), route="/webhook")
            if networks.setdefault(address >> 8, len(networks)) >= limit:
                expected["overflow"] += 1
    return expected


@pytest.fixture
def collector_for_flood(
    collector: Callable[..., Any], tmp_path: Path, free_ports: Callable[[], int]
) -> tuple[Any, int, int]:
    """The real collector with OTLP/HTTP in and its Prometheus exporter out: (collector, OTLP port, exporter port)."""
    config = tmp_path / "flood-collector.yaml"
    config.write_text(COLLECTOR_CONFIG)
    otlp_port, exporter_port = free_ports(), free_ports()
    env = {"OTLP_HTTP_PORT": str(otlp_port), "PROMETHEUS_EXPORTER_PORT": str(exporter_port)}
    # An absolute path: the fixture joins it to collector/, which leaves an absolute path unchanged.
    running = collector(str(config), env, wait_ports=[otlp_port])
    return running, otlp_port, exporter_port


def test_flood_leaves_prometheus_and_the_collector_bounded(
    collector_for_flood: tuple[Any, int, int], prometheus_server: Callable[..., Any]
) -> None:
    """After a flood, PromQL finds at most L + 1 series per metric from tradetel and via the collector, exact totals."""
    running, otlp_port, exporter_port = collector_for_flood
    tel = tradetel.configure(
        exporters="prometheus,otlp",
        env={},
        service_name="flooded-bot",
        prometheus_port=0,
        otlp_protocol="http/protobuf",
        otlp_endpoint=f"http://127.0.0.1:{otlp_port}/v1/metrics",
        export_interval=3600,
    )
    try:
        assert tel.prometheus_url is not None
        collector_url = f"http://127.0.0.1:{exporter_port}/metrics"
        prom = prometheus_server({"tradetel": tel.prometheus_url, "collector": collector_url})
        expected = _flood(tel)
        tel.force_flush()
        limit = tel.settings.cardinality_limit
        for job in ("tradetel", "collector"):
            selector = f'job="{job}"'
            prom.wait_for_value(
                f'sum({{__name__=~"trading_(market_data_updates|orders_rejected|security_rate_limited)_total",{selector}}})',
                expected["measurements"],
                timeout=60,
            )
            for symbol in ("BTC-USD", "ETH-USD"):
                value = prom.value(f'sum(trading_market_data_updates_total{{{selector},symbol="{symbol}"}})')
                assert value == expected[symbol]
            counts = {
                sample["metric"]["__name__"]: float(sample["value"][1])
                for sample in prom.query(f'count by (__name__) ({{__name__=~"trading_.*",{selector}}})')
            }
            assert set(counts) == {
                "trading_market_data_updates_total",
                "trading_orders_rejected_total",
                "trading_security_rate_limited_total",
            }
            for name in FLOODED:
                spec = tel.catalog[name]
                assert counts[tel.catalog.prometheus_name(spec)] <= series_limit(spec, limit) + 1
            assert counts["trading_security_rate_limited_total"] == limit + 1
            assert prom.value(f'count({{__name__=~"trading_.*",{selector}}})') <= 3 * (limit + 1)
            overflow = prom.value(f'sum(trading_security_rate_limited_total{{{selector},otel_metric_overflow="true"}})')
            counted = prom.value(
                f'sum(tradetel_cardinality_overflow_total{{{selector},instrument="trading.security.rate_limited"}})'
            )
            assert overflow == counted == expected["overflow"] > 0
        with urllib.request.urlopen(collector_url, timeout=10) as response:
            exposition = response.read().decode("utf-8")
        assert 'otel_metric_overflow="true"' in exposition
        assert 'otel_metric_overflow=""' not in exposition
    finally:
        tel.shutdown(timeout=5)
    running.process.check_alive()
