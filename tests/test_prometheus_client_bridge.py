"""tradetel and prometheus_client registries, both ways: same samples, no duplicate family, collisions logged once."""

from __future__ import annotations

import logging
import subprocess
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.metrics import CallbackOptions, Observation
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

import tradetel
from tradetel.catalog import Attribute, InstrumentSpec, Kind
from tradetel.errors import ConfigurationError
from tradetel.exporters.prometheus import render
from tradetel.exporters.prometheus_client import RegistrySource, TradetelCollector
from tradetel.labels import Free

Sample = tuple[str, tuple[tuple[str, str], ...], float]


def _parse(text: bytes | str) -> dict[str, tuple[str, str, set[Sample]]]:
    """Family name → (type, help, samples), failing on a family that appears twice."""
    out: dict[str, tuple[str, str, set[Sample]]] = {}
    for family in text_string_to_metric_families(text.decode() if isinstance(text, bytes) else text):
        assert family.name not in out, f"family {family.name} served twice"
        samples = {(s.name, tuple(sorted(s.labels.items())), s.value) for s in family.samples}
        out[family.name] = (family.type, family.documentation, samples)
    return out


def _type_lines(text: bytes) -> list[str]:
    return [line.split()[2] for line in text.decode().splitlines() if line.startswith("# TYPE ")]


NOTES = InstrumentSpec(
    "bot.notes", Kind.GAUGE, "1", "Notes with awkward text.", (Attribute("note", Free(max_length=64)),)
)


@pytest.fixture
def tel() -> Iterator[tradetel.Telemetry]:
    """A Telemetry with every kind of series: catalog counter, up-down, gauge, histogram, overflow, foreign."""
    telemetry = tradetel.configure(
        exporters="none", env={}, catalog=[NOTES], instruments={"orders.rejected": {"cardinality_limit": 2}}
    )
    telemetry.orders.filled.add(3, exchange="binance", symbol="BTC-USD", side="buy")
    telemetry.orders.filled.add(2.5, exchange="kraken", symbol="ETH-USD", side="sell")
    telemetry.orders.pending.add(4, exchange="binance", symbol="BTC-USD")
    telemetry.orders.pending.add(-1, exchange="binance", symbol="BTC-USD")
    telemetry.account.equity.set(10_250.75, account="main")
    for value in (0.004, 0.2, 0.2, 7.5, 100.0):
        telemetry.orders.latency.record(value, exchange="binance", symbol="BTC-USD", order_type="limit")
    for reason in ("insufficient funds", "rate limit", "post only", "timeout", "unknown error"):
        telemetry.orders.rejected.add(1, exchange="binance", reason=reason)
    for note in ['quote " inside', "back\\slash", "new\nline", "ünïcödé €"]:
        telemetry["bot.notes"].set(1, note=note)
    # instruments outside the catalog, as instrumentation packages create them on the provider
    meter = telemetry.meter_provider.get_meter("opentelemetry.instrumentation.fastapi", "0.66b2")
    meter.create_histogram("http.server.duration", unit="ms").record(12.5, {"http.method": "GET", "http.status": 200})
    meter.create_up_down_counter("http.server.active_requests", unit="{request}").add(2, {"http.method": "GET"})

    def observe(options: CallbackOptions) -> list[Observation]:
        return [Observation(41, {"cpu": "0"}), Observation(43.5, {"cpu": "1"})]

    meter.create_observable_counter("process.cpu.time", [observe], unit="s")
    try:
        yield telemetry
    finally:
        telemetry.shutdown()


def _registry_with(collector: Any) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def test_collector_serves_the_samples_of_tradetels_endpoint(tel: tradetel.Telemetry) -> None:
    """Parsed by prometheus_client, the registry's exposition and tradetel's own hold the same families and samples."""
    ours = _parse(render(tel.collect()))
    theirs = _parse(generate_latest(_registry_with(TradetelCollector(tel))))
    assert {"trading_orders_filled", "http_server_duration_milliseconds", "process_cpu_time_seconds"} <= set(ours)
    assert theirs.keys() == ours.keys()
    for name, (kind, documentation, samples) in ours.items():
        assert theirs[name][0] == kind, name
        assert theirs[name][1] == documentation, name
        assert theirs[name][2] == samples, name
    overflow = [s for s in ours["trading_orders_rejected"][2] if ("otel_metric_overflow", "true") in s[1]]
    assert overflow and overflow[0][2] >= 1


def _promtool(promtool: str, text: bytes) -> tuple[int, set[str]]:
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=60)
    return result.returncode, set((result.stdout + result.stderr).decode().splitlines())


def test_collector_passes_promtool_like_tradetels_endpoint(tel: tradetel.Telemetry, promtool: str) -> None:
    """promtool finds no error in the bot's registry with tradetel's collector, and lints it as tradetel's own text."""
    registry = _registry_with(TradetelCollector(tel))
    Counter("bot_signals", "Signals received.", registry=registry).inc(5)
    text = generate_latest(registry)
    status, problems = _promtool(promtool, text)
    own_status, own_problems = _promtool(promtool, render(tel.collect()))
    # 3 is a lint finding, 1 a parse error: the instrumentation's milliseconds are linted on both endpoints
    assert (status, problems) == (own_status, own_problems)
    assert status in (0, 3), problems
    assert len(_type_lines(text)) == len(set(_type_lines(text)))


def test_openmetrics_units_are_the_name_suffixes(tel: tradetel.Telemetry) -> None:
    """In prometheus_client's OpenMetrics output the unit of each family is the suffix tradetel gave its name."""
    text = generate_openmetrics(_registry_with(TradetelCollector(tel))).decode()
    units = {family.name: family.unit for family in parse_openmetrics(text)}
    assert units["trading_orders_latency_seconds"] == "seconds"
    assert units["http_server_duration_milliseconds"] == "milliseconds"
    assert units["process_cpu_time_seconds"] == "seconds"
    assert units["trading_orders_filled"] == ""


def test_describe_lets_the_registry_refuse_a_duplicate_at_start_up(tel: tradetel.Telemetry) -> None:
    """A registry already holding a catalog name refuses the collector, before anything is served twice."""
    registry = CollectorRegistry()
    Counter("trading_orders_filled", "The bot's own count.", registry=registry)
    with pytest.raises(ValueError, match="trading_orders_filled"):
        registry.register(TradetelCollector(tel))


def test_collector_of_a_closed_telemetry_yields_nothing(tel: tradetel.Telemetry) -> None:
    """After shutdown the collector adds no family, and the bot's registry keeps serving its own."""
    registry = _registry_with(TradetelCollector(tel))
    Gauge("bot_up", "Bot is up.", registry=registry).set(1)
    tel.shutdown()
    assert set(_parse(generate_latest(registry))) == {"bot_up"}


def _scrape(telemetry: tradetel.Telemetry) -> bytes:
    url = telemetry.prometheus_url
    assert url is not None
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
        return body


@pytest.fixture
def bot_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("bot_signals", "Signals received.", ["source"], registry=registry).labels("tradingview").inc(7)
    Histogram("bot_step_seconds", "Step time.", buckets=(0.1, 1.0), registry=registry).observe(0.5)
    Counter("trading_orders_filled", "The bot's own count of fills.", registry=registry).inc(1000)
    return registry


def test_endpoint_serves_the_bots_registry_and_keeps_tradetels_family_on_collision(
    bot_registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """The bot's families follow tradetel's; a colliding name is served once, with tradetel's value, logged once."""
    caplog.set_level(logging.WARNING, logger="tradetel")
    with tradetel.configure(
        exporters="prometheus", prometheus_port=0, env={}, prometheus_registry=bot_registry
    ) as telemetry:
        telemetry.orders.filled.add(3, exchange="binance", symbol="BTC-USD", side="buy")
        first, second = _scrape(telemetry), _scrape(telemetry)
    families = _parse(second)
    assert families["bot_signals"][2] >= {("bot_signals_total", (("source", "tradingview"),), 7.0)}
    assert ("bot_step_seconds_count", (), 1.0) in families["bot_step_seconds"][2]
    filled = {s for s in families["trading_orders_filled"][2] if s[0] == "trading_orders_filled_total"}
    assert {s[2] for s in filled} == {3.0}
    assert _type_lines(first).count("trading_orders_filled_total") == 1
    assert "trading_orders_filled_created" not in _type_lines(first)
    collisions = [r for r in caplog.records if "trading_orders_filled" in r.getMessage()]
    assert len(collisions) == 1


def test_both_directions_at_once_serve_each_family_once(caplog: pytest.LogCaptureFixture) -> None:
    """A registry holding tradetel's collector, served by tradetel's endpoint, yields no duplicate and no warning."""
    caplog.set_level(logging.WARNING, logger="tradetel")
    registry = CollectorRegistry()
    Counter("bot_signals", "Signals received.", registry=registry).inc(2)
    with tradetel.configure(exporters="prometheus", prometheus_port=0, env={}, prometheus_registry=registry) as tel:
        registry.register(TradetelCollector(tel))
        tel.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
        served = _scrape(tel)
        bots_view = generate_latest(registry)
    assert len(_type_lines(served)) == len(set(_type_lines(served)))
    assert ("bot_signals_total", (), 2.0) in _parse(served)["bot_signals"][2]
    assert _parse(served)["trading_orders_filled"] == _parse(bots_view)["trading_orders_filled"]
    assert not caplog.records


class _Broken:
    def collect(self) -> list[Any]:
        raise RuntimeError("the bot's collector is broken")


def test_a_failing_registry_costs_only_its_own_families(caplog: pytest.LogCaptureFixture) -> None:
    """When the bot's registry raises, tradetel's families are still served (200) and the failure is logged."""
    caplog.set_level(logging.ERROR, logger="tradetel")
    with tradetel.configure(exporters="prometheus", prometheus_port=0, env={}, prometheus_registry=_Broken()) as tel:
        tel.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
        families = _parse(_scrape(tel))
    assert ("trading_orders_filled_total", (("exchange", "binance"), ("side", "buy"), ("symbol", "BTC-USD")), 1.0) in (
        families["trading_orders_filled"][2]
    )
    assert any("registry failed" in r.getMessage() for r in caplog.records)


def test_registry_without_the_prometheus_exporter_is_a_configuration_error() -> None:
    """prometheus_registry with no Prometheus endpoint to serve it fails configure(), naming the setting."""
    with pytest.raises(ConfigurationError, match="prometheus_registry"):
        tradetel.configure(exporters="none", env={}, prometheus_registry=CollectorRegistry())
    with pytest.raises(ConfigurationError, match="prometheus_registry"):
        RegistrySource(object())


def test_another_telemetrys_collector_is_served_by_this_endpoint() -> None:
    """Only the serving Telemetry's own collector is skipped: another one's families appear on its endpoint."""
    registry = CollectorRegistry()
    with (
        tradetel.configure(exporters="none", env={}, namespace="alpha") as alpha,
        tradetel.configure(exporters="prometheus", prometheus_port=0, env={}, prometheus_registry=registry) as beta,
    ):
        registry.register(TradetelCollector(alpha, target_info=False))
        alpha.orders.filled.add(5, exchange="binance", symbol="BTC-USD", side="buy")
        beta.orders.filled.add(1, exchange="binance", symbol="BTC-USD", side="buy")
        families = _parse(_scrape(beta))
    assert {s[2] for s in families["alpha_orders_filled"][2]} == {5.0}
    assert {s[2] for s in families["trading_orders_filled"][2]} == {1.0}
